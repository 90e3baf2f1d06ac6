/* The OpenCL programs of a context: which sources make each one, the build
   options chosen from the device's capabilities, and the build itself. */
#ifndef CLATTN_PROGRAM_CACHE_H
#define CLATTN_PROGRAM_CACHE_H

#include "clattn/clattn.h"

typedef enum program_id {
    PROGRAM_SDPA_UNFUSED = 0,
    PROGRAM_SDPA_FUSED_CPU,
    PROGRAM_SDPA_FUSED_GPU,
    PROGRAM_COUNT
} program_id;

typedef struct clattn_programs {
    cl_program program[PROGRAM_COUNT];
    size_t softmax_wg; /* work-group size the softmax kernel was built for */
} clattn_programs;

struct clattn_context;

/* Builds every program for the context's device. On failure returns the
   status (CLATTN_ERROR_BUILD_FAILED with the build log in last_error) and
   leaves nothing built. */
clattn_status programs_build(struct clattn_context *ctx);

void programs_release(clattn_programs *programs);

/* A fresh kernel object (one per call, so threads never share argument
   state) in *out; on failure the status, with the error recorded. */
clattn_status program_kernel(struct clattn_context *ctx, program_id id,
                             const char *name, cl_kernel *out);

#endif
