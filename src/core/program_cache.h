/* The OpenCL programs of a context: which sources make each one, the build
   options chosen from the device's capabilities, and the build itself. */
#ifndef CLATTN_PROGRAM_CACHE_H
#define CLATTN_PROGRAM_CACHE_H

#include "clattn/clattn.h"
#include "program_disk_cache.h"

typedef enum program_id {
    PROGRAM_SDPA_UNFUSED = 0,
    PROGRAM_SDPA_FUSED_CPU,
    PROGRAM_SDPA_FUSED_GPU,
    /* The layers' programs, built on first use so that a context that
       only runs SDPA never compiles them. */
    PROGRAM_FIRST_ON_DEMAND,
    PROGRAM_LAYER_COMMON = PROGRAM_FIRST_ON_DEMAND,
    PROGRAM_MHA,
    PROGRAM_TALKING_HEADS,
    PROGRAM_ADDITIVE,
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

typedef struct clattn_programs {
    cl_program program[PROGRAM_COUNT];
    size_t softmax_wg; /* work-group size the softmax kernel was built for */
    disk_cache_state cache_state;
    char cache_dir[DISK_CACHE_DIR_MAX]; /* "" unless cache_state is ON */
    char platform_version[128];         /* part of every key */
    program_cache_stats cache_stats;
} clattn_programs;

struct clattn_context;

/* Builds the SDPA programs for the context's device (the layers' ones
   are built by program_kernel on first use), each from the persistent
   cache when it holds a valid binary for it. On failure returns the
   status (CLATTN_ERROR_BUILD_FAILED with the build log in last_error) and
   leaves nothing built. */
clattn_status programs_build(struct clattn_context *ctx);

void programs_release(clattn_programs *programs);

/* A fresh kernel object (one per call, so threads never share argument
   state) in *out, building its program first if it is an on-demand one
   not built yet; on failure the status, with the error recorded. */
clattn_status program_kernel(struct clattn_context *ctx, program_id id,
                             const char *name, cl_kernel *out);

#endif
