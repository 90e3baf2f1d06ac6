/* The SDPA variant registry: one row per kernel variant (the unfused path,
   the fused CPU- and GPU-class paths), holding everything the rest of the
   library needs to know about it: its public path value and name, its
   program, whether it takes a request on this device, and its plan,
   launch and release steps. Path bounds, names, AUTO's policy and the
   parsing of $CLATTN_SDPA_PATH all read this table (sdpa_variant.c), so
   adding a variant is one row, its kernel file, its plan/launch file and
   its tests (docs/internals.md). */
#ifndef CLATTN_SDPA_VARIANT_H
#define CLATTN_SDPA_VARIANT_H

#include "clattn/clattn.h"
#include "program_cache.h"
#include "sdpa_problem.h"

struct sdpa_plan;

typedef struct sdpa_variant {
    clattn_sdpa_path path; /* the public value that names it */
    const char *name;      /* clattn_sdpa_path_name and $CLATTN_SDPA_PATH */
    program_id program;
    int fused; /* memory linear in seq_kv, never writes probs */
    /* Whether this device's FUSED (and AUTO) should run it; NULL for the
       unfused path and for test-only rows, which FUSED never means. */
    int (*suits_device)(const clattn_context *ctx);
    /* Whether it takes the request: CLATTN_SUCCESS, else the status with
       the reason written to why (why_size bytes; why may be NULL). It
       records nothing on ctx: AUTO asks without making it an error. No
       allocation, nothing enqueued. */
    clattn_status (*supports)(const clattn_context *ctx, const sdpa_problem *p,
                              const sdpa_views *views, char *why,
                              size_t why_size);
    /* Kernels, geometry, buffer sizes (checked), allocations: after it
       succeeds the launch only enqueues. On failure it has released
       whatever it made. */
    clattn_status (*prepare)(clattn_context *ctx, struct sdpa_plan *plan);
    clattn_status (*launch)(clattn_context *ctx, const struct sdpa_plan *plan,
                            cl_uint num_wait, const cl_event *wait,
                            cl_event *done);
    void (*release)(clattn_context *ctx, struct sdpa_plan *plan);
} sdpa_variant;

/* The row of a concrete path (UNFUSED, FUSED_CPU, FUSED_GPU); NULL for
   AUTO, FUSED and unknown values. */
const sdpa_variant *sdpa_variant_of(clattn_sdpa_path path);

/* The fused variant this device runs for FUSED and AUTO. */
const sdpa_variant *sdpa_variant_fused_for(const clattn_context *ctx);

/* INVALID_ARGUMENT naming the value unless path is AUTO, FUSED or a row's
   path; who names the caller ("mha", "talking-heads") in the message. */
clattn_status sdpa_path_check(clattn_context *ctx, const char *who,
                              clattn_sdpa_path path);

/* Whether a layer may ask path for the attention weights: AUTO (which
   takes the CPU-class fused variant's recompute plan, or the unfused path)
   and the non-fused rows. The layers keep an explicit fused path to its
   attention without weights (and talking-heads' fused path has none). */
int sdpa_path_can_write_probs(clattn_sdpa_path path);

/* The path a name means ("auto", "unfused", "fused", "fused-cpu", ...);
   nonzero when the name is known. */
int sdpa_path_parse(const char *name, clattn_sdpa_path *path);

/* v->supports, its reason recorded on ctx when it refuses. */
clattn_status sdpa_variant_check(clattn_context *ctx, const sdpa_variant *v,
                                 const sdpa_problem *p,
                                 const sdpa_views *views);

/* What runs for a request: the explicit row, the device's fused row for
   FUSED, and for AUTO the fused row whenever it supports the request (no
   probs, head dims within its limits), else the unfused row. pin is
   $CLATTN_SDPA_PATH (AUTO when unset): it chooses among the paths AUTO may
   take and never turns a request AUTO runs into an error. */
const sdpa_variant *sdpa_variant_choose(clattn_context *ctx,
                                        const sdpa_problem *p,
                                        const sdpa_views *views,
                                        clattn_sdpa_path path);

#endif
