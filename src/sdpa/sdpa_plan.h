/* Prepare, then launch: the two steps of every SDPA call. sdpa_prepare
   validates the request once, chooses the variant (sdpa_variant.h), gets
   its kernels, sizes and allocates its buffers; after it succeeds
   sdpa_launch only enqueues, so a request that is refused is refused
   before anything is written. The public entry points (sdpa.c) are thin
   wrappers; the layers prepare SDPA before their own first enqueue and
   launch it in their queue order (src/layers/mha_forward.c). */
#ifndef CLATTN_SDPA_PLAN_H
#define CLATTN_SDPA_PLAN_H

#include "sdpa_fused.h"
#include "sdpa_problem.h"
#include "sdpa_rope.h"
#include "sdpa_unfused.h"
#include "sdpa_variant.h"

typedef struct sdpa_plan {
    const sdpa_variant *variant;
    cl_command_queue queue; /* the caller's or the context's */
    sdpa_problem problem;
    sdpa_views views;
    sdpa_rope_plan rope; /* the rotary pre-pass, when the request has one */
    union {
        unfused_plan unfused;
        fused_plan fused;
    } u; /* the variant's own part */
} sdpa_plan;

/* Everything before the first enqueue, the wait list the launch will be
   given included (checked only). queue NULL = the context's. On
   failure the status (reason on ctx) and nothing held; on success release
   the plan with sdpa_plan_release, launched or not. */
clattn_status sdpa_prepare(clattn_context *ctx, cl_command_queue queue,
                           const clattn_sdpa_desc *desc,
                           const clattn_sdpa_tensors *tensors,
                           clattn_sdpa_path path, cl_uint num_wait,
                           const cl_event *wait, sdpa_plan *plan);

/* sdpa_prepare for a layer that wants the attention weights averaged
   over the heads into mean ([batch][seq_q][seq_kv], contiguous, at
   element mean_offset of mean_buffer; checked by the layer) instead of
   per-head probs (tensors->probs empty): the variant AUTO or path takes
   with probs averages them in its kernel where it can (fused-cpu's
   materialize plan, sdpa_fused_head_mean_fits). Where it cannot,
   *taken = 0, CLATTN_SUCCESS, nothing held: the caller asks for per-head
   probs and averages them itself. */
clattn_status sdpa_prepare_head_mean(
    clattn_context *ctx, cl_command_queue queue, const clattn_sdpa_desc *desc,
    const clattn_sdpa_tensors *tensors, cl_mem mean_buffer, size_t mean_offset,
    clattn_sdpa_path path, cl_uint num_wait, const cl_event *wait,
    sdpa_plan *plan, int *taken);

/* Enqueues the plan after the wait list; *done (when not NULL) gets the
   event of its last command. A plan may be launched more than once, on
   the same tensors. */
clattn_status sdpa_launch(clattn_context *ctx, const sdpa_plan *plan,
                          cl_uint num_wait, const cl_event *wait,
                          cl_event *done);

/* Releases the plan's kernels and buffers (buffers live on until the
   kernels using them finish). A zeroed plan is fine. */
void sdpa_plan_release(clattn_context *ctx, sdpa_plan *plan);

#endif
