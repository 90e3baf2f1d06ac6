/* Talking-heads attention (timm TalkingHeadAttn): the layer object and the
   two attention paths between its projections. talking_heads.c validates,
   runs the qkv and output projections and packs K/V; the paths
   (talking_heads_unfused.c, talking_heads_fused.c) fill the [B*N][C]
   attention output from the packed K/V and the in-place Q. */
#ifndef CLATTN_TALKING_HEADS_INTERNAL_H
#define CLATTN_TALKING_HEADS_INTERNAL_H

#include "clattn/clattn.h"
#include "layer_common.h"

/* TH_KEY_BLOCK, TH_KEY_PAD, TH_FEATURE_PAD, TH_FUSED_ROWS,
   TH_UNFUSED_ROWS and TH_MIX_ROWS: the kernels' own values and names
   (cl/layers/talking_heads_params.clh); th_fused's scratch layout is
   th_fused_scratch_floats(). */
#include "kernel_params.h"

struct clattn_talking_heads {
    clattn_context *ctx;
    size_t dim, heads, head_dim;
    float scale;            /* head_dim^-0.5 */
    cl_uint drop_threshold; /* 0 = no dropout (cl/core/philox.clh) */
    float drop_scale;       /* 1 / (1 - p) for kept values */
    uint64_t drop_seed;
    /* The Philox offset of the next call: successful dropout calls so far,
       so every call draws afresh (as the mha layer does). */
    uint64_t drop_calls;
    cl_mem qkv_weight, qkv_bias;       /* qkv_bias NULL without */
    cl_mem proj_l_weight, proj_l_bias; /* [H][H], [H] */
    cl_mem proj_w_weight, proj_w_bias;
    cl_mem proj_weight, proj_bias;
};

/* One forward call as the attention paths see it. */
typedef struct th_run {
    const struct clattn_talking_heads *layer;
    cl_command_queue queue;
    layer_timer *timer;
    size_t batch, seq;
    size_t npad, dpad; /* padded keys and features of the packed K/V */
    cl_mem qkv;        /* [B*N][3C], read as [B][N][3][H][D] */
    cl_mem kt, vp;     /* packed K (scaled), V; NULL: GPU-class unfused */
    cl_mem ctx_out;    /* [B*N][C]: the paths' output, proj's input */
    cl_mem attn;       /* the caller's [B][H][N][N], or NULL */
    uint64_t drop_offset;
} th_run;

/* Unfused path: chunks of whole batches, or of rows of one batch when a
   batch does not fit ctx->scratch_limit; s is the chunk's [nb][H][nr][N]
   logits, pv_acc th_pv's padded accumulator rows (O(B.H.N.D)). p is a
   second score buffer like s between th_mix_softmax and th_mix_dropout
   (GPU-class devices); on CPU-class ones th_mix does both mixings and p
   holds its slots, [nb][ceil(nr / TH_MIX_ROWS)][H][N], mix_softmax and
   mix_dropout being NULL. */
typedef struct th_unfused_plan {
    size_t nb, nr;
    cl_mem s, p, pv_acc;
    cl_kernel logits, mix, mix_softmax, mix_dropout, pv;
    /* GPU-class (pv_acc NULL): logits and pv are sdpa_scores and sdpa_pv,
       these their direct forms; CPU-class: th_logits, th_pv, unused. */
    cl_kernel logits_direct, pv_direct;
} th_unfused_plan;

/* Allocates the scratch and creates the kernels: everything that can fail
   before the first enqueue. */
clattn_status th_unfused_prepare(clattn_context *ctx, const th_run *run,
                                 th_unfused_plan *plan);
clattn_status th_unfused_enqueue(clattn_context *ctx, const th_run *run,
                                 const th_unfused_plan *plan);
void th_unfused_release(clattn_context *ctx, th_unfused_plan *plan);

/* Fused path: per-work-item scratch (tiles, row statistics, P'.V
   accumulators), O(B.H.N.D) in all. */
typedef struct th_fused_plan {
    size_t per; /* floats per work-item */
    cl_mem scratch;
    cl_kernel fused;
} th_fused_plan;

clattn_status th_fused_prepare(clattn_context *ctx, const th_run *run,
                               th_fused_plan *plan);
clattn_status th_fused_enqueue(clattn_context *ctx, const th_run *run,
                               const th_fused_plan *plan);
void th_fused_release(clattn_context *ctx, th_fused_plan *plan);

/* The dims every kernel takes, narrowed (talking_heads.c checks that they
   fit a cl_uint). */
static inline cl_uint th_u32(size_t v)
{
    return (cl_uint)v;
}

/* The layout arguments th_pack_kv, th_fused and th_pv take in this order:
   heads, seq, head_dim, dim, npad, dpad. */
static inline void th_arg_layout(kernel_args *k, const th_run *run)
{
    const struct clattn_talking_heads *l = run->layer;
    const size_t dims[6] = {l->heads, run->seq,  l->head_dim,
                            l->dim,   run->npad, run->dpad};
    for (int i = 0; i < 6; ++i)
        arg_uint(k, th_u32(dims[i]));
}

#endif
