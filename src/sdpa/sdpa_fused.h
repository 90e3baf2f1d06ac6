/* The fused SDPA variants (CPU-class rows/decode, GPU-class tiles): their
   part of a plan, and their steps for the registry (sdpa_variant.c). */
#ifndef CLATTN_SDPA_FUSED_H
#define CLATTN_SDPA_FUSED_H

#include "sdpa_problem.h"

struct sdpa_plan;

typedef enum fused_kernel_kind {
    FUSED_CPU_ROWS,
    FUSED_CPU_DECODE,
    FUSED_GPU_TILES
} fused_kernel_kind;

/* How the fused-cpu path writes probs ($CLATTN_SDPA_PROBS_PLAN). */
enum { FUSED_PROBS_AUTO, FUSED_PROBS_MATERIALIZE, FUSED_PROBS_RECOMPUTE };

typedef struct fused_plan {
    fused_kernel_kind kind;
    size_t rows_per_unit; /* query rows per work-item (CPU) or group (GPU) */
    size_t wg;            /* GPU: work-group size */
    /* fused_gpu_decode (GPU) or fused_cpu_decode_gqa (CPU), whose units
       own the rows of every query head of a K/V head (group * seq_q rows
       per (batch, K/V head)) and read its K/V once for all of them, not
       the rows of one query head. */
    int gqa_rows;
    /* The build options of the K/V element types (sdpa_kv_options): every
       kernel that reads K or V in place, and the pack, comes from it. */
    char kv_options[96];
    size_t nsplit, split_keys;
    size_t nblk, dv_pad; /* CPU rows: packed K/V geometry */
    /* probs requested (CPU rows only), by one of two plans:
       - materialize: fused_cpu_probs writes the scores into probs,
         normalizes them in place and reads them for P V (keys not split);
       - recompute: the rows write partials (nsplit of 1 or more), the
         merge writes out and lse, and fused_cpu_weights runs last,
         recomputing the scores and normalizing by the partials' max and
         sum. */
    int probs, materialize;
    /* probs is the head average (views.probs_head_mean): materialize with
       one work-item per (row block, batch) looping over the heads, their
       scores in the scratch `rows` (batch * seq_q * seq_kv floats). */
    int head_mean;
    cl_kernel pack, attention, merge, weights, probs_kernel;
    cl_mem key_len, kp, vp, part, rows;
} fused_plan;

/* Whether a fused variant takes the request: head dims within the limit,
   and (GPU-class) no probs; the reason recorded otherwise. The CPU-class
   variant writes probs by recomputing the weights from the LSE. */
clattn_status sdpa_fused_cpu_supports(const clattn_context *ctx,
                                      const sdpa_problem *p,
                                      const sdpa_views *views, char *why,
                                      size_t why_size);
clattn_status sdpa_fused_gpu_supports(const clattn_context *ctx,
                                      const sdpa_problem *p,
                                      const sdpa_views *views, char *why,
                                      size_t why_size);

/* Which device class suits each variant (capabilities, never names). */
int sdpa_fused_cpu_suits(const clattn_context *ctx);
int sdpa_fused_gpu_suits(const clattn_context *ctx);

/* The extra build options ("-DFG_D=.. -DFG_BM=.. ...") of the GPU-class
   kernel's configuration that a device with work-groups up to
   max_work_group and local_mem bytes of local memory gets for head dims
   up to width (max of head_dim and head_dim_v): the first the plan tries,
   before the built kernel's own limits are asked (for the offline compile
   check, tests/gpu_compile); decode nonzero: the build of fused_gpu_decode
   (-DFG_DECODE=1) instead of fused_gpu_flash. 0, or -1 when none fits
   (buf ""). */
int sdpa_fused_gpu_options(size_t width, size_t max_work_group,
                           cl_ulong local_mem, int decode, char *buf,
                           size_t cap);

/* Whether the fused-cpu path averages p's weights over heads in its
   kernel (sdpa_prepare_head_mean): the materialize plan's rule with one
   work-item per (row block, batch), and no recompute pin. */
int sdpa_fused_head_mean_fits(const clattn_context *ctx, const sdpa_problem *p);

/* Enqueues fused_pack_kv (kernel k, of the fused-cpu program): K and V of
   every (batch, K/V head) into kp and vp, nblk blocks of FC_BK keys, V
   rows of dv_pad features (cl/sdpa/sdpa_fused_cpu.cl). The fused-cpu and
   the CPU-class unfused paths pack alike. */
clattn_status sdpa_enqueue_pack_kv(clattn_context *ctx, cl_command_queue queue,
                                   cl_kernel k, const sdpa_problem *p,
                                   const sdpa_views *v, cl_mem kp, cl_mem vp,
                                   size_t nblk, size_t dv_pad, cl_uint num_wait,
                                   const cl_event *wait, cl_event *done);

clattn_status sdpa_fused_prepare(clattn_context *ctx, struct sdpa_plan *plan);
clattn_status sdpa_fused_launch(clattn_context *ctx,
                                const struct sdpa_plan *plan, cl_uint num_wait,
                                const cl_event *wait, cl_event *done);
void sdpa_fused_release(clattn_context *ctx, struct sdpa_plan *plan);

#endif
