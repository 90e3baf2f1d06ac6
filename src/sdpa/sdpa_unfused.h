/* The unfused SDPA variant (scores, masked softmax, P.V): its part of a
   plan, and its steps for the registry (sdpa_variant.c). */
#ifndef CLATTN_SDPA_UNFUSED_H
#define CLATTN_SDPA_UNFUSED_H

#include "sdpa_problem.h"

struct sdpa_plan;

typedef struct unfused_plan {
    size_t bh_count; /* (batch, head) pairs per chunk */
    size_t q_count;  /* query rows per chunk, per pair */
    cl_mem scratch;  /* NULL: scores go to the probs output */
    cl_mem key_len;  /* the key lengths on the device, or NULL */
    cl_kernel scores, softmax, pv;
    cl_kernel scores_direct, pv_direct; /* few rows, GPU-class form only */
    /* cpu: CPU-class devices where the packs fit one buffer each
       (cl/sdpa/sdpa_unfused_cpu.cl): K and V packed as fused_pack_kv
       lays them out, nblk key blocks, V rows of dv_pad. */
    int cpu;
    cl_kernel pack;
    cl_mem kp, vp;
    size_t nblk, dv_pad;
} unfused_plan;

/* Where sdpa_scores and sdpa_pv (or their _direct forms) run for a chunk
   of rows query rows by cols outputs (keys, or value features) over
   bh_count (batch, head) pairs; local points into square or is NULL. The
   talking-heads layer launches them too (GPU-class devices). */
typedef struct unfused_gemm_grid {
    int direct;
    size_t global[3], square[3];
    const size_t *local;
} unfused_gemm_grid;
void sdpa_unfused_gemm_grid(const clattn_context *ctx, size_t cols, size_t rows,
                            size_t bh_count, unfused_gemm_grid *g);

clattn_status sdpa_unfused_supports(const clattn_context *ctx,
                                    const sdpa_problem *p,
                                    const sdpa_views *views, char *why,
                                    size_t why_size);
clattn_status sdpa_unfused_prepare(clattn_context *ctx, struct sdpa_plan *plan);
clattn_status sdpa_unfused_launch(clattn_context *ctx,
                                  const struct sdpa_plan *plan,
                                  cl_uint num_wait, const cl_event *wait,
                                  cl_event *done);
void sdpa_unfused_release(clattn_context *ctx, struct sdpa_plan *plan);

#endif
