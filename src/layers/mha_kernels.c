/* Enqueuing the multi-head attention layer's own kernels
   (cl/layers/layer_norm.cl, cl/layers/mha.cl): layer norm, mask merging,
   head averaging. */
#include "context_internal.h"
#include "kernel_args.h"
#include "mha_internal.h"

static clattn_status make(clattn_context *ctx, int wanted, const char *name,
                          cl_kernel *out)
{
    *out = NULL;
    return wanted ? program_kernel(ctx, PROGRAM_MHA, name, out)
                  : CLATTN_SUCCESS;
}

clattn_status mha_kernels_create(clattn_context *ctx, int layer_norm,
                                 int mask_merge, clattn_mask_type mask_type,
                                 int head_mean, mha_kernels *k)
{
    k->layer_norm = k->mask = k->head_mean = NULL;
    const char *mask_name = mask_type == CLATTN_MASK_ADDITIVE
                                ? "mha_mask_additive"
                                : "mha_mask_bool";
    clattn_status s;
    if ((s = make(ctx, layer_norm, "layer_norm_rows", &k->layer_norm)) ||
        (s = make(ctx, mask_merge, mask_name, &k->mask)) ||
        (s = make(ctx, head_mean, "mha_head_mean", &k->head_mean)))
        mha_kernels_release(k);
    return s;
}

void mha_kernels_release(mha_kernels *k)
{
    cl_kernel all[3] = {k->layer_norm, k->mask, k->head_mean};
    for (int i = 0; i < 3; ++i)
        if (all[i])
            clReleaseKernel(all[i]);
    k->layer_norm = k->mask = k->head_mean = NULL;
}

clattn_status mha_enqueue_layer_norm(clattn_mha *layer, cl_kernel kernel,
                                     cl_mem x, cl_mem y, size_t rows,
                                     layer_timer *timer)
{
    kernel_args a = args_begin(kernel);
    arg_mem(&a, x);
    arg_mem(&a, y);
    arg_mem(&a, layer->norm_weight);
    arg_mem(&a, layer->norm_bias);
    arg_uint(&a, (cl_uint)layer->embed_dim);
    arg_float(&a, layer->layernorm_eps);
    size_t global[1] = {rows};
    return layer_launch(layer->ctx, layer->ctx->queue, &a, "layer_norm_rows", 1,
                        global, timer, LAYER_STAGE_OTHER);
}

clattn_status mha_enqueue_mask(clattn_mha *layer, cl_kernel kernel,
                               const mha_shapes *sh, int per_head, cl_mem kpm,
                               cl_mem attn, cl_mem out, layer_timer *timer)
{
    kernel_args a = args_begin(kernel);
    arg_mem(&a, out);
    arg_mem(&a, kpm);
    arg_mem(&a, attn);
    arg_uint(&a, (cl_uint)sh->mask_dims[1]);
    arg_uint(&a, per_head ? 1u : 0u);
    /* mask_dims[0] x [1] divides mask_bytes, checked by mha_check_call. */
    size_t global[3] = {sh->mask_dims[3], sh->mask_dims[2],
                        sh->mask_dims[0] * sh->mask_dims[1]};
    return layer_launch(layer->ctx, layer->ctx->queue, &a, "mha mask merge", 3,
                        global, timer, LAYER_STAGE_OTHER);
}

clattn_status mha_enqueue_head_mean(clattn_mha *layer, cl_kernel kernel,
                                    cl_mem probs, cl_mem out,
                                    const mha_shapes *sh, layer_timer *timer)
{
    size_t plane = sh->seq_q * sh->seq_kv; /* divides per_head_bytes */
    kernel_args a = args_begin(kernel);
    arg_mem(&a, probs);
    arg_mem(&a, out);
    arg_uint(&a, (cl_uint)layer->num_heads);
    arg_ulong(&a, plane);
    size_t global[2] = {plane, sh->batch};
    /* Part of producing the attention weights: charged to attention. */
    return layer_launch(layer->ctx, layer->ctx->queue, &a, "mha_head_mean", 2,
                        global, timer, LAYER_STAGE_ATTENTION);
}
