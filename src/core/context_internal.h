/* The context object and the error-recording helpers every op uses. */
#ifndef CLATTN_CONTEXT_INTERNAL_H
#define CLATTN_CONTEXT_INTERNAL_H

#include "clattn/clattn.h"
#include "op_settings.h"
#include "program_cache.h"

#include <pthread.h>
#include <stdatomic.h>

#define CLATTN_ERROR_TEXT_MAX 16384

struct clattn_context {
    int usable; /* 0: creation failed, only last_error and destroy work */
    cl_platform_id platform;
    cl_device_id device;
    cl_context cl_ctx;
    cl_command_queue queue;
    clattn_info info;
    clattn_programs programs;
    size_t scratch_limit;    /* bytes of score scratch per call (unfused) */
    char env_note[160];      /* why an environment setting was ignored */
    int local_mem_dedicated; /* CL_DEVICE_LOCAL_MEM_TYPE is CL_LOCAL */
    /* A GPU-class device (context_gpu_class), fixed before the programs
       are built: it picks the kernels' GPU-class parameter values.
       class_pin: $CLATTN_KERNEL_CLASS, -1 (auto: from the device), 0
       (cpu) or 1 (gpu). */
    int gpu_class, class_pin;
    /* The device's native float vectors are narrower than 16: CPU-class
       kernels take their _NARROW tiles (context_kernel_target). width_pin:
       -1 (from the device), 0 (wide) or 1 (narrow), by the same
       variable. */
    int narrow_vectors, width_pin;
    /* The device has cl_intel_subgroups: the GPU-class fused kernel
       reduces across lanes by sub-group shuffles (FG_SUBGROUPS). */
    int intel_subgroups;
    op_settings op_settings;             /* the ops' environment settings */
    atomic_size_t mem_current, mem_peak; /* see device_memory.h */
    /* Guards the programs built on first use (the layers'). */
    pthread_mutex_t build_lock;
    /* Error detail (error_text.c). Once the context is usable, each
       thread's text lives in its own slot of error_slots (threads sharing
       a context never overwrite each other's); error_lock serialises the
       slots' insertion, lookups take no lock. Before that (creation, and a
       context whose creation failed) the text is last_error, written by
       the creating thread only and readable from any thread. */
    uint64_t error_id; /* unique per context, never reused */
    _Atomic(struct error_slot *) error_slots;
    pthread_mutex_t error_lock;
    char last_error[CLATTN_ERROR_TEXT_MAX];
};

/* Records the detail text and returns status, so callers can write
   `return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE, "...", ...);`. */
clattn_status ctx_error(clattn_context *ctx, clattn_status status,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For an OpenCL call that failed: the call's name and its code. */
clattn_status ctx_cl_error(clattn_context *ctx, const char *call, cl_int code);

/* Clears the calling thread's last error on ctx. */
void ctx_clear_error(clattn_context *ctx);

/* The error state of a new context (its id, no slots; error_lock is
   initialised by the caller), and its release on destroy. */
void ctx_errors_init(clattn_context *ctx);
void ctx_errors_release(clattn_context *ctx);

/* Guard at the top of every op: NULL or unusable contexts; on a usable one
   it clears the last error, so last_error describes this call. */
#define CTX_CHECK_USABLE(ctx)                                                  \
    do {                                                                       \
        if (!(ctx))                                                            \
            return CLATTN_ERROR_INVALID_ARGUMENT;                              \
        /* keeps the creation error as the context's last error */             \
        if (!(ctx)->usable)                                                    \
            return CLATTN_ERROR_INVALID_ARGUMENT;                              \
        ctx_clear_error(ctx);                                                  \
    } while (0)

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), or "unknown". */
const char *cl_error_name(cl_int code);

/* Whether the context's device is GPU-class: not a CPU, and its local
   memory dedicated (CL_LOCAL), not carved out of global memory. Decided
   by capabilities, never by names; picks the fused SDPA variant and the
   kernel families' GPU-class parameters (kernel_params.c). */
int context_gpu_class(const clattn_context *ctx);

/* A CPU-class device's global-memory cache in bytes (its last-level
   cache on CPU runtimes), which the unfused paths size their chunks by;
   0 on GPU-class devices or when the device reports none. */
size_t context_cpu_cache_bytes(const clattn_context *ctx);

#endif
