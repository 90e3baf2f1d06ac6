/* The OpenCL programs of a context: which sources make each one, the build
   options chosen from the device's capabilities, and the build itself. */
#ifndef CLATTN_PROGRAM_CACHE_H
#define CLATTN_PROGRAM_CACHE_H

#include "clattn/clattn.h"

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

typedef struct clattn_programs {
    cl_program program[PROGRAM_COUNT];
    size_t softmax_wg; /* work-group size the softmax kernel was built for */
} clattn_programs;

struct clattn_context;

/* Builds the SDPA programs for the context's device (the layers' ones
   are built by program_kernel on first use). On failure returns the
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
