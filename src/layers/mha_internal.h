/* The multi-head attention layer (torch.nn.MultiheadAttention) inside:
   the layer object, the shapes of one call after validation, and the
   pieces the forward pass is made of (mha.c creates and destroys,
   mha_validate.c checks a call, mha_kernels.c enqueues the small kernels
   of cl/layers/layer_norm.cl and cl/layers/mha.cl, mha_forward.c runs a
   call). */
#ifndef CLATTN_MHA_INTERNAL_H
#define CLATTN_MHA_INTERNAL_H

#include "clattn/clattn.h"
#include "layer_common.h"

struct clattn_mha {
    clattn_context *ctx;
    size_t embed_dim, num_heads, head_dim, kdim, vdim;
    int bias, batch_first, pre_layernorm, no_out_proj;
    float scale, dropout_p, layernorm_eps;
    uint64_t dropout_seed;
    clattn_rope rope; /* resolved (sdpa_rope.h); style NONE = none */
    /* Forward calls with dropout so far: call n draws with Philox offset
       n, so successive calls get fresh masks (torch's training mode) and a
       new layer with the same seed repeats the sequence. */
    uint64_t dropout_calls;
    /* The input projection rows in one buffer: q [E][E], then k [E][kdim]
       at w_k_offset, then v [E][vdim] at w_v_offset. With kdim == vdim ==
       E this is torch's in_proj_weight [3E][E], whichever form the weights
       came in, so self-attention is always one GEMM. */
    cl_mem w_in;
    size_t w_k_offset, w_v_offset;
    cl_mem b_in;                   /* [3E] or NULL */
    cl_mem w_out, b_out;           /* [E][E], [E]; NULL when absent */
    cl_mem norm_weight, norm_bias; /* [E] when pre_layernorm */
};

/* One call's sizes, validated against overflow. Rows of an activation
   are b*S + s (batch_first) or s*B + b (sequence-first). */
typedef struct mha_shapes {
    size_t batch, seq_q, seq_kv, rows_q, rows_kv;
    size_t query_bytes, key_bytes, value_bytes, out_bytes;
    size_t kpm_bytes;       /* [B][Skv] uint8, 0 when not used */
    size_t attn_mask_bytes; /* 0 when not used */
    size_t weights_bytes;   /* need_weights output, 0 when not used */
    size_t per_head_bytes;  /* [B][H][Sq][Skv] floats */
    size_t proj_floats;     /* Q, K and V projections: rows_q*E + 2*rows_kv*E */
    /* The mask SDPA gets: type, dims, and whether a kernel merges it
       (else the caller's additive mask goes as it is). */
    clattn_mask_type mask_type;
    size_t mask_dims[4];
    int mask_merge;
    size_t mask_bytes;
} mha_shapes;

/* Checks the call itself (enums, shapes, sizes, the path against
   need_weights) for both forms. */
clattn_status mha_check_call(clattn_mha *layer, const clattn_mha_call *call,
                             mha_shapes *shapes);

/* The SDPA description of the call (dropout offset: the layer's count). */
void mha_sdpa_desc(const clattn_mha *layer, const clattn_mha_call *call,
                   const mha_shapes *shapes, clattn_sdpa_desc *desc);

/* Checks the device buffers of a call: present where used, of this
   context, large enough, outputs distinct from each other and from the
   inputs. */
clattn_status mha_check_buffers(clattn_mha *layer, const clattn_mha_call *call,
                                const mha_shapes *shapes,
                                const clattn_mha_buffers *buffers);

/* The forward pass on validated arguments. */
clattn_status mha_run(clattn_mha *layer, const clattn_mha_call *call,
                      const mha_shapes *shapes,
                      const clattn_mha_buffers *buffers);

/* The kernels of one call, created before anything is enqueued so that a
   build failure leaves the outputs untouched. NULL where not needed. */
typedef struct mha_kernels {
    cl_kernel layer_norm, mask, head_mean;
} mha_kernels;

clattn_status mha_kernels_create(clattn_context *ctx, int layer_norm,
                                 int mask_merge, clattn_mask_type mask_type,
                                 int head_mean, mha_kernels *k);
void mha_kernels_release(mha_kernels *k);

/* y[r] = LayerNorm(x[r]) for rows r < rows, E features each. */
clattn_status mha_enqueue_layer_norm(clattn_mha *layer, cl_kernel kernel,
                                     cl_mem x, cl_mem y, size_t rows,
                                     layer_timer *timer);

/* The mask SDPA takes (shapes->mask_dims, ->mask_type), merged from the
   key padding mask (kpm, NULL = none) and the attention mask (attn, NULL
   = none; per head, else [Sq][Skv]), both in torch MHA polarity. */
clattn_status mha_enqueue_mask(clattn_mha *layer, cl_kernel kernel,
                               const mha_shapes *shapes, int per_head,
                               cl_mem kpm, cl_mem attn, cl_mem out,
                               layer_timer *timer);

/* out[b][i][j] = mean over h of probs[b][h][i][j]. */
clattn_status mha_enqueue_head_mean(clattn_mha *layer, cl_kernel kernel,
                                    cl_mem probs, cl_mem out,
                                    const mha_shapes *shapes,
                                    layer_timer *timer);

#endif
