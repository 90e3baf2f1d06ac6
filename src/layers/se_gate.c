/* Squeeze-excitation token gate, clattn_se_gate_*: per token, the mean of
   its features drives Linear(1, E) + ReLU (se_squeeze: one kernel, an outer
   product, no GEMM), then Linear(E, E) through CLBlast, written straight
   into out, then se_excite adds fc2's bias and gates in place:
   out = x * sigmoid(out + b2). One scratch buffer, h [tokens][E]. */
#include "additive_internal.h"
#include "context_internal.h"
#include "gemm.h"

#include <stdlib.h>

struct clattn_se_gate {
    clattn_context *ctx;
    size_t e;
    cl_mem fc1_w, fc1_b, fc2_w, fc2_b; /* [E], [E], [E][E], [E] */
};

static const char LAYER[] = "se_gate";

CLATTN_API clattn_status clattn_se_gate_create(
    clattn_context *ctx, size_t embed_dim,
    const clattn_se_gate_weights *weights, clattn_se_gate **out)
{
    CTX_CHECK_USABLE(ctx);
    if (!out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: out is NULL",
                         LAYER);
    *out = NULL;
    if (!weights)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: weights is NULL", LAYER);
    if (!embed_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: embed_dim must be nonzero", LAYER);
    const layer_weight list[] = {
        {"fc1_weight", weights->fc1_weight, 1},
        {"fc1_bias", weights->fc1_bias, 1},
        {"fc2_weight", weights->fc2_weight, 1},
        {"fc2_bias", weights->fc2_bias, 1},
    };
    clattn_status status = layer_check_weights(ctx, LAYER, list, 4);
    size_t n_fc2 = 0;
    if (status == CLATTN_SUCCESS)
        status = add_count(ctx, &n_fc2, NULL, embed_dim, embed_dim, 1);
    if (status != CLATTN_SUCCESS)
        return status;
    clattn_se_gate *l = calloc(1, sizeof *l);
    if (!l)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "%s: host memory for the layer", LAYER);
    l->ctx = ctx;
    l->e = embed_dim;
    const layer_weight_upload uploads[] = {
        {weights->fc1_weight, embed_dim, &l->fc1_w},
        {weights->fc1_bias, embed_dim, &l->fc1_b},
        {weights->fc2_weight, n_fc2, &l->fc2_w},
        {weights->fc2_bias, embed_dim, &l->fc2_b},
    };
    status = layer_upload_all(ctx, uploads, 4);
    if (status != CLATTN_SUCCESS) {
        clattn_se_gate_destroy(l);
        return status;
    }
    *out = l;
    return CLATTN_SUCCESS;
}

CLATTN_API void clattn_se_gate_destroy(clattn_se_gate *layer)
{
    if (!layer)
        return;
    cl_mem all[] = {layer->fc1_w, layer->fc1_b, layer->fc2_w, layer->fc2_b};
    layer_release(layer->ctx, all, 4);
    free(layer);
}

/* tokens x E elements and their bytes, checked; then the call's scratch
   h (the same size) and its GEMM (h [tokens][E] x fc2 [E][E]^T) against
   the device's limits, before anything is made. */
static clattn_status call_count(const clattn_se_gate *l, size_t tokens,
                                size_t *count, size_t *bytes)
{
    if (!tokens)
        return ctx_error(l->ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: tokens must be nonzero", LAYER);
    clattn_status status = add_count(l->ctx, count, bytes, tokens, l->e, 1);
    if (status == CLATTN_SUCCESS)
        status =
            layer_check_alloc(l->ctx, LAYER, "the hidden activations", *bytes);
    if (status == CLATTN_SUCCESS) {
        size_t ew = layer_extent(0, l->e, l->e);
        status = layer_check_gemm(l->ctx, LAYER, "fc2", tokens, l->e, l->e,
                                  *count > ew ? *count : ew);
    }
    return status;
}

static clattn_status enqueue_all(const clattn_se_gate *l, size_t tokens,
                                 size_t bytes, cl_mem x, cl_mem out,
                                 layer_timer *timer)
{
    clattn_context *ctx = l->ctx;
    cl_mem h = NULL;
    clattn_status status = layer_buffer(ctx, bytes, NULL, &h);
    cl_kernel kernel;
    kernel_args a;
    if (status == CLATTN_SUCCESS)
        status = add_kernel(ctx, "se_squeeze", &kernel, &a);
    if (status == CLATTN_SUCCESS) {
        arg_mem(&a, x);
        arg_mem(&a, l->fc1_w);
        arg_mem(&a, l->fc1_b);
        arg_mem(&a, h);
        arg_ulong(&a, l->e);
        status = add_launch(ctx, kernel, &a, "se_squeeze", tokens, 0, timer,
                            LAYER_STAGE_OTHER);
    }
    if (status == CLATTN_SUCCESS) {
        /* fc2 without its bias: se_excite adds it with the gate. */
        gemm_matrix hx = {h, 0, l->e}, w = {l->fc2_w, 0, l->e};
        gemm_matrix y = {out, 0, l->e};
        status = gemm_linear(ctx, ctx->queue, tokens, l->e, l->e, hx, w, NULL,
                             0, 0, y, timer);
    }
    if (status == CLATTN_SUCCESS)
        status = add_kernel(ctx, "se_excite", &kernel, &a);
    if (status == CLATTN_SUCCESS) {
        arg_mem(&a, x);
        arg_mem(&a, l->fc2_b);
        arg_mem(&a, out);
        arg_ulong(&a, l->e);
        status = add_launch(ctx, kernel, &a, "se_excite", l->e, tokens, timer,
                            LAYER_STAGE_OTHER);
    }
    layer_release(ctx, &h, 1);
    return status;
}

static clattn_status forward(clattn_se_gate *l, size_t tokens, size_t bytes,
                             cl_mem x, cl_mem out, clattn_layer_timing *timing)
{
    clattn_context *ctx = l->ctx;
    if (x && x == out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: out is the same buffer as x", LAYER);
    clattn_status status = layer_check_buffer(ctx, LAYER, "x", x, bytes, 0);
    if (status == CLATTN_SUCCESS)
        status = layer_check_buffer(ctx, LAYER, "out", out, bytes, 1);
    if (status != CLATTN_SUCCESS)
        return status;
    layer_timer tb, *timer;
    status = layer_timer_begin(ctx, ctx->queue, timing ? &tb : NULL, &timer);
    if (status != CLATTN_SUCCESS)
        return status;
    status = enqueue_all(l, tokens, bytes, x, out, timer);
    clattn_status done = layer_timer_finish(
        ctx, ctx->queue, timer, status == CLATTN_SUCCESS ? timing : NULL);
    return status != CLATTN_SUCCESS ? status : done;
}

CLATTN_API clattn_status clattn_se_gate_forward(clattn_se_gate *layer,
                                                size_t tokens, cl_mem x,
                                                cl_mem out,
                                                clattn_layer_timing *timing)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    CTX_CHECK_USABLE(layer->ctx);
    size_t count, bytes;
    clattn_status status = call_count(layer, tokens, &count, &bytes);
    if (status != CLATTN_SUCCESS)
        return status;
    return forward(layer, tokens, bytes, x, out, timing);
}

CLATTN_API clattn_status clattn_se_gate_forward_host(clattn_se_gate *layer,
                                                     size_t tokens,
                                                     const float *x, float *out)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_context *ctx = layer->ctx;
    CTX_CHECK_USABLE(ctx);
    size_t count, bytes;
    clattn_status status = call_count(layer, tokens, &count, &bytes);
    if (status != CLATTN_SUCCESS)
        return status;
    if (!x || !out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                         LAYER, x ? "out" : "x");
    if (layer_host_overlap(x, bytes, out, bytes))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: out overlaps x", LAYER);
    cl_mem b[2] = {NULL, NULL};
    status = layer_buffer(ctx, bytes, x, &b[0]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, bytes, NULL, &b[1]);
    if (status == CLATTN_SUCCESS)
        status = forward(layer, tokens, bytes, b[0], b[1], NULL);
    if (status == CLATTN_SUCCESS)
        status = layer_read(ctx, b[1], bytes, out);
    layer_release(ctx, b, 2);
    return status;
}
