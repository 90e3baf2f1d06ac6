/* torch.nn.MultiheadAttention: the description, its weights checked
   against it (a mismatched state_dict is caught here) and copied to the
   device once. */
#include "checked_math.h"
#include "context_internal.h"
#include "layer_object.h"
#include "mha_internal.h"
#include "sdpa_rope.h"
#include "struct_size.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char LAYER[] = "mha";

void clattn_mha_desc_init(clattn_mha_desc *desc)
{
    if (desc) {
        memset(desc, 0, sizeof *desc);
        desc->struct_size = sizeof *desc;
    }
}

static clattn_status check_desc(clattn_context *ctx, const clattn_mha_desc *d)
{
    if (d->embed_dim == 0 || d->num_heads == 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "mha: embed_dim (%zu) and num_heads (%zu) must be "
                         ">= 1",
                         d->embed_dim, d->num_heads);
    if (d->embed_dim % d->num_heads != 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "mha: embed_dim %zu is not a multiple of num_heads "
                         "%zu",
                         d->embed_dim, d->num_heads);
    /* The float fields, in order; NaN fails every range. */
    const struct {
        const char *name, *range;
        double value;
        int ok;
    } floats[3] = {
        {"scale", "finite", d->scale, isfinite(d->scale)},
        {"dropout_p", "in [0, 1)", d->dropout_p,
         d->dropout_p >= 0.0f && d->dropout_p < 1.0f},
        {"layernorm_eps", "finite and >= 0 (0 = 1e-5)", d->layernorm_eps,
         d->layernorm_eps >= 0.0f && isfinite(d->layernorm_eps)},
    };
    for (int i = 0; i < 3; ++i)
        if (!floats[i].ok)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "mha: %s %g is not %s", floats[i].name,
                             floats[i].value, floats[i].range);
    size_t kdim = d->kdim ? d->kdim : d->embed_dim;
    size_t vdim = d->vdim ? d->vdim : d->embed_dim;
    if (d->pre_layernorm && (kdim != d->embed_dim || vdim != d->embed_dim))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mha: pre_layernorm normalizes key and value over "
                         "embed_dim, so it needs kdim (%zu) == vdim (%zu) == "
                         "embed_dim (%zu)",
                         kdim, vdim, d->embed_dim);
    return CLATTN_SUCCESS;
}

/* in_proj_weight XOR the three separate ones (mandatory when kdim or vdim
   differ from embed_dim, as in torch): when neither form is given, the
   message names both (the weight list would name in_proj_weight alone).
   *separate: the separate ones are the form the description needs. */
static clattn_status check_in_proj(clattn_context *ctx,
                                   const clattn_mha_desc *d, size_t kdim,
                                   size_t vdim, const clattn_mha_weights *w,
                                   int *separate)
{
    int same_dims = kdim == d->embed_dim && vdim == d->embed_dim;
    *separate =
        !same_dims || w->q_proj_weight || w->k_proj_weight || w->v_proj_weight;
    if (same_dims && !*separate && !w->in_proj_weight)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mha: weight in_proj_weight is NULL (give it, or "
                         "q_proj_weight, k_proj_weight and v_proj_weight)");
    return CLATTN_SUCCESS;
}

/* The q, k and v rows into one buffer (see struct clattn_mha). */
static clattn_status upload_in_proj(clattn_mha *layer,
                                    const clattn_mha_weights *w)
{
    clattn_context *ctx = layer->ctx;
    size_t E = layer->embed_dim, qn, kn, vn, total, bytes;
    clattn_status s;
    if ((s = layer_mul_size(ctx, &qn, E, E, 1)) ||
        (s = layer_mul_size(ctx, &kn, E, layer->kdim, 1)) ||
        (s = layer_mul_size(ctx, &vn, E, layer->vdim, 1)))
        return s;
    if (checked_add(qn, kn, &total) || checked_add(total, vn, &total) ||
        checked_mul(total, sizeof(float), &bytes))
        return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                         "mha: the input projection weights overflow size_t");
    layer->w_k_offset = qn;
    layer->w_v_offset = qn + kn;
    if (w->in_proj_weight)
        return layer_upload(ctx, w->in_proj_weight, total, &layer->w_in);
    if ((s = layer_buffer(ctx, bytes, NULL, &layer->w_in)))
        return s;
    const float *parts[3] = {w->q_proj_weight, w->k_proj_weight,
                             w->v_proj_weight};
    /* Each part and offset is below total, whose bytes were checked. */
    size_t counts[3] = {qn, kn, vn}, offset = 0;
    for (int i = 0; i < 3; ++i) {
        cl_int err = clEnqueueWriteBuffer(
            ctx->queue, layer->w_in, CL_TRUE, offset * sizeof(float),
            counts[i] * sizeof(float), parts[i], 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return ctx_cl_error(ctx, "clEnqueueWriteBuffer", err);
        offset += counts[i];
    }
    return CLATTN_SUCCESS;
}

clattn_status clattn_mha_create(clattn_context *ctx,
                                const clattn_mha_desc *desc,
                                const clattn_mha_weights *weights,
                                clattn_mha **out)
{
    LAYER_CREATE_BEGIN(clattn_mha_desc, given, ctx, LAYER, out, desc, weights,
                       MHA_DESC_OLDEST_SIZE);
    desc = &given; /* read no further than the caller's struct_size */
    const clattn_mha_weights *w = weights;
    const size_t E = desc->embed_dim;
    size_t kdim = desc->kdim ? desc->kdim : E;
    size_t vdim = desc->vdim ? desc->vdim : E;
    size_t E3 = 0, EE = 0;
    int separate = 0;
    clattn_rope rope;
    clattn_status s = check_desc(ctx, desc);
    if (s ||
        (s = rope_check(ctx, &desc->rope, E / desc->num_heads, "mha: rope",
                        &rope)) ||
        (s = check_in_proj(ctx, desc, kdim, vdim, w, &separate)) ||
        (s = layer_mul_size(ctx, &E3, E, 3, 1)) ||
        (s = layer_mul_size(ctx, &EE, E, E, 1)))
        return s;
    /* Every weight exactly when the description has a place for it; the
       input projection is packed by upload_in_proj below. */
    const int bias = desc->bias != 0, proj = !desc->no_out_proj,
              norm = desc->pre_layernorm != 0;
    const layer_weight_spec list[] = {
        {"in_proj_weight", w->in_proj_weight, !separate, 0, LAYER_NOT_UPLOADED},
        {"q_proj_weight", w->q_proj_weight, separate, 0, LAYER_NOT_UPLOADED},
        {"k_proj_weight", w->k_proj_weight, separate, 0, LAYER_NOT_UPLOADED},
        {"v_proj_weight", w->v_proj_weight, separate, 0, LAYER_NOT_UPLOADED},
        {"in_proj_bias", w->in_proj_bias, bias, E3, offsetof(clattn_mha, b_in)},
        {"out_proj_weight", w->out_proj_weight, proj, EE,
         offsetof(clattn_mha, w_out)},
        {"out_proj_bias", w->out_proj_bias, bias && proj, E,
         offsetof(clattn_mha, b_out)},
        {"norm_weight", w->norm_weight, norm, E,
         offsetof(clattn_mha, norm_weight)},
        {"norm_bias", w->norm_bias, norm, E, offsetof(clattn_mha, norm_bias)},
    };
    clattn_mha *layer = layer_object_create(ctx, LAYER, sizeof *layer, list,
                                            sizeof list / sizeof list[0], &s);
    if (!layer)
        return s;
    layer->embed_dim = E;
    layer->num_heads = desc->num_heads;
    layer->head_dim = E / desc->num_heads;
    layer->kdim = kdim;
    layer->vdim = vdim;
    layer->bias = bias;
    layer->batch_first = desc->batch_first != 0;
    layer->pre_layernorm = norm;
    layer->no_out_proj = !proj;
    layer->scale = desc->scale;
    layer->dropout_p = desc->dropout_p;
    layer->dropout_seed = desc->dropout_seed;
    layer->rope = rope;
    layer->layernorm_eps =
        desc->layernorm_eps != 0.0f ? desc->layernorm_eps : 1e-5f;
    s = upload_in_proj(layer, w);
    if (s != CLATTN_SUCCESS) {
        clattn_mha_destroy(layer);
        return s;
    }
    *out = layer;
    return CLATTN_SUCCESS;
}

void clattn_mha_destroy(clattn_mha *layer)
{
    if (!layer)
        return;
    cl_mem all[] = {layer->w_in,  layer->b_in,        layer->w_out,
                    layer->b_out, layer->norm_weight, layer->norm_bias};
    layer_object_free(layer, all, sizeof all / sizeof all[0]);
}
