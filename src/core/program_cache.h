/* The OpenCL programs of a context: which sources make each one, the build
   options (the family's parameters, kernel_params.h, and what the device
   decides), the cache of built programs keyed by (program, options) and
   the kernel objects handed out from them. */
#ifndef CLATTN_PROGRAM_CACHE_H
#define CLATTN_PROGRAM_CACHE_H

#include "clattn/clattn.h"
#include "kernel_cache.h"
#include "program_disk_cache.h"

#include <stdatomic.h>

typedef enum program_id {
    PROGRAM_SDPA_UNFUSED = 0,
    PROGRAM_SDPA_FUSED_CPU,
    PROGRAM_SDPA_FUSED_GPU,
    /* The layers' programs and the cache appends, built on first use so
       that a context that only runs SDPA never compiles them. */
    PROGRAM_FIRST_ON_DEMAND,
    PROGRAM_LAYER_COMMON = PROGRAM_FIRST_ON_DEMAND,
    PROGRAM_MHA,
    PROGRAM_TALKING_HEADS,
    PROGRAM_ADDITIVE,
    PROGRAM_KV_APPEND, /* clattn_kv_append */
    PROGRAM_ROPE,      /* SDPA's rotary pre-pass */
    PROGRAM_COUNT
} program_id;

/* What the persistent cache did for this context's programs (the tests
   read it; it is not in clattn_info). Updated at creation and under the
   context's build lock, like the programs themselves. */
typedef struct program_cache_stats {
    unsigned loads;   /* programs made from a cached binary */
    unsigned builds;  /* programs compiled from source */
    unsigned stores;  /* entries written */
    unsigned rejects; /* entries found but unusable, rebuilt from source */
} program_cache_stats;

/* One built program: a (program, options) pair on the context's device
   (the context has one device, so the pair is the whole key). */
typedef struct program_entry program_entry;

typedef struct clattn_programs {
    /* Every program built for this context, default options or not: a list
       that only grows until programs_release, guarded by the context's
       build_lock. Variants are unbounded; each is built on first use. */
    program_entry *entries;
    /* Each program's default-options build, once made. The SDPA ones are
       stored at creation, before any other thread sees the context; the
       layers' ones under build_lock. Read without the lock. */
    _Atomic(cl_program) defaults[PROGRAM_COUNT];
    size_t softmax_wg;   /* work-group size the softmax kernel was built for */
    size_t unfused_side; /* ... and the side of sdpa_scores' and sdpa_pv's */
    disk_cache_state cache_state;
    char cache_dir[DISK_CACHE_DIR_MAX]; /* "" unless cache_state is ON */
    char platform_version[128];         /* part of every key */
    program_cache_stats cache_stats;
    kernel_cache kernels; /* the kernel objects, per thread */
} clattn_programs;

struct clattn_context;

/* Builds the SDPA programs for the context's device (the layers' ones
   are built by program_kernel on first use), each from the persistent
   cache when it holds a valid binary for it. On failure returns the
   status (CLATTN_ERROR_BUILD_FAILED with the build log in last_error) and
   leaves nothing built: context creation depends on this failing there,
   so that a device whose compiler breaks is left for the next one. */
clattn_status programs_build(struct clattn_context *ctx);

/* Releases the kernels of every thread and every program; the struct can
   be built again (the next device candidate). */
void programs_release(clattn_programs *programs);

/* The program id built with extra options appended to its family's (NULL
   or "" = the default build), built on first use; threads asking for the
   same one at once build it once. Owned by the context: not released by
   the caller. On failure the status, with the error recorded. */
clattn_status program_get(struct clattn_context *ctx, program_id id,
                          const char *extra_options, cl_program *out);

/* Kernel `name` of the program's default build in *out, building an
   on-demand program first. The object is this thread's, reused by its
   later calls (kernel_cache.h says what that asks of callers), and
   retained for the caller, who releases it. On failure the status, with
   the error recorded, and *out NULL. */
clattn_status program_kernel(struct clattn_context *ctx, program_id id,
                             const char *name, cl_kernel *out);

/* The same for the build with extra options (see program_get). */
clattn_status program_kernel_variant(struct clattn_context *ctx, program_id id,
                                     const char *extra_options,
                                     const char *name, cl_kernel *out);

/* For the offline GPU compile check (tests/gpu_compile), no device
   needed: the name of program id ("sdpa_unfused"), and what the library
   would hand a GPU-class device's compiler for its build with extra
   options (NULL or "" = the default build): in *source the embedded
   texts in program order, concatenated as clCreateProgramWithSource
   joins them (malloc'ed, the caller frees), and in options the whole
   option string, with the softmax work-group of a device that allows 256
   work-items or more (256, the cap). 0, or -1 when a source is missing,
   the options do not fit in cap or memory runs out (*source NULL). */
const char *program_name(program_id id);

/* Whether the runtime keeps compiled kernels between processes itself, so
   that clattn's program-binary cache only costs: PoCL (platform name
   "Portable Computing Language") with its kernel cache on, i.e. unless
   POCL_KERNEL_CACHE (its value passed here, NULL when unset) is "0". On
   PoCL asking for a program's binaries makes it compile every kernel of
   the program once more, for a generic work-group size, although the
   launches use its own cache's work-group-specialized builds: 21.2 s to
   the first SDPA result instead of 3.6 s with both caches cold
   (docs/performance.md). */
int runtime_keeps_kernels(const char *platform_name,
                          const char *pocl_kernel_cache);
int program_offline_inputs(program_id id, const char *extra_options,
                           char **source, char *options, size_t cap);

#endif
