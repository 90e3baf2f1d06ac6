/* Squeeze-excitation token gate, clattn_se_gate_*: per token, the mean of
   its features drives Linear(1, E) + ReLU (se_squeeze: one kernel, an outer
   product, no GEMM), then Linear(E, E) through CLBlast, written straight
   into out, then se_excite adds fc2's bias and gates in place:
   out = x * sigmoid(out + b2). One scratch buffer, h [tokens][E]. Built on
   the skeleton of layer_object.h. */
#include "context_internal.h"
#include "gemm.h"
#include "layer_object.h"

#include <stddef.h>
#include <string.h>

struct clattn_se_gate {
    clattn_context *ctx; /* first: layer_object.h */
    size_t e;
    cl_mem fc1_w, fc1_b, fc2_w, fc2_b; /* [E], [E], [E][E], [E] */
};

static const char LAYER[] = "se_gate";

/* The first layout of clattn_se_gate_desc (struct_size.h has the
   others'): when the desc grows, this stays. */
#define SE_GATE_DESC_OLDEST_SIZE sizeof(clattn_se_gate_desc)

CLATTN_API void clattn_se_gate_desc_init(clattn_se_gate_desc *desc)
{
    if (desc) {
        memset(desc, 0, sizeof *desc);
        desc->struct_size = sizeof *desc;
    }
}

CLATTN_API clattn_status clattn_se_gate_create(
    clattn_context *ctx, const clattn_se_gate_desc *desc,
    const clattn_se_gate_weights *weights, clattn_se_gate **out)
{
    LAYER_CREATE_BEGIN(clattn_se_gate_desc, d, ctx, LAYER, out, desc, weights,
                       SE_GATE_DESC_OLDEST_SIZE);
    const size_t e = d.embed_dim;
    if (!e)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: embed_dim must be nonzero", LAYER);
    size_t n_fc2 = 0;
    clattn_status status = layer_count(ctx, &n_fc2, NULL, e, e, 1);
    if (status != CLATTN_SUCCESS)
        return status;
    const layer_weight_spec list[] = {
        {"fc1_weight", weights->fc1_weight, 1, e,
         offsetof(clattn_se_gate, fc1_w)},
        {"fc1_bias", weights->fc1_bias, 1, e, offsetof(clattn_se_gate, fc1_b)},
        {"fc2_weight", weights->fc2_weight, 1, n_fc2,
         offsetof(clattn_se_gate, fc2_w)},
        {"fc2_bias", weights->fc2_bias, 1, e, offsetof(clattn_se_gate, fc2_b)},
    };
    clattn_se_gate *l =
        layer_object_create(ctx, LAYER, sizeof *l, list, 4, &status);
    if (l)
        l->e = e;
    *out = l;
    return status;
}

CLATTN_API void clattn_se_gate_destroy(clattn_se_gate *layer)
{
    if (!layer)
        return;
    cl_mem all[] = {layer->fc1_w, layer->fc1_b, layer->fc2_w, layer->fc2_b};
    layer_object_free(layer, all, 4);
}

/* tokens x E elements and their bytes, checked; then the call's scratch
   h (the same size) and its GEMM (h [tokens][E] x fc2 [E][E]^T) against
   the device's limits, before anything is made. */
static clattn_status call_count(const clattn_se_gate *l, size_t tokens,
                                size_t *bytes)
{
    if (!tokens)
        return ctx_error(l->ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: tokens must be nonzero", LAYER);
    size_t count = 0;
    clattn_status status = layer_count(l->ctx, &count, bytes, tokens, l->e, 1);
    if (status == CLATTN_SUCCESS)
        status =
            layer_check_alloc(l->ctx, LAYER, "the hidden activations", *bytes);
    if (status == CLATTN_SUCCESS) {
        size_t ew = layer_extent(0, l->e, l->e);
        status = layer_check_gemm(l->ctx, LAYER, "fc2", tokens, l->e, l->e,
                                  count > ew ? count : ew);
    }
    return status;
}

/* One device-form call after its checks. */
typedef struct se_run {
    const clattn_se_gate *l;
    size_t tokens, bytes;
    cl_mem x, out;
} se_run;

static clattn_status enqueue_all(void *state, layer_timer *timer)
{
    const se_run *r = state;
    const clattn_se_gate *l = r->l;
    clattn_context *ctx = l->ctx;
    cl_mem h = NULL;
    clattn_status status = layer_buffer(ctx, r->bytes, NULL, &h);
    const cl_ulong e = l->e;
    if (status == CLATTN_SUCCESS) {
        const cl_mem mems[4] = {r->x, l->fc1_w, l->fc1_b, h};
        status =
            layer_run_kernel(ctx, PROGRAM_ADDITIVE, "se_squeeze", mems, 4, &e,
                             1, r->tokens, 0, timer, LAYER_STAGE_OTHER);
    }
    if (status == CLATTN_SUCCESS) {
        /* fc2 without its bias: se_excite adds it with the gate. */
        gemm_matrix hx = {h, 0, l->e}, w = {l->fc2_w, 0, l->e};
        gemm_matrix y = {r->out, 0, l->e};
        status = gemm_linear(ctx, ctx->queue, r->tokens, l->e, l->e, hx, w,
                             NULL, 0, 0, y, timer);
    }
    if (status == CLATTN_SUCCESS) {
        const cl_mem mems[3] = {r->x, l->fc2_b, r->out};
        status =
            layer_run_kernel(ctx, PROGRAM_ADDITIVE, "se_excite", mems, 3, &e, 1,
                             l->e, r->tokens, timer, LAYER_STAGE_OTHER);
    }
    layer_release(ctx, &h, 1);
    return status;
}

static clattn_status forward(clattn_se_gate *l, const clattn_se_gate_call *c,
                             cl_mem x, cl_mem out)
{
    clattn_context *ctx = l->ctx;
    se_run r = {l, c->tokens, 0, x, out};
    clattn_status status = call_count(l, c->tokens, &r.bytes);
    if (status != CLATTN_SUCCESS)
        return status;
    const layer_device_arg args[2] = {{"x", x, r.bytes, 0, 0},
                                      {"out", out, r.bytes, 1, 0}};
    status = layer_check_device_args(ctx, LAYER, args, 2);
    if (status == CLATTN_SUCCESS)
        status = layer_timed_run(ctx, c->timing, enqueue_all, &r);
    return status;
}

CLATTN_API clattn_status clattn_se_gate_forward(clattn_se_gate *layer,
                                                const clattn_se_gate_call *call,
                                                cl_mem x, cl_mem out)
{
    clattn_status status = layer_forward_check(layer, LAYER, call);
    if (status != CLATTN_SUCCESS)
        return status;
    return forward(layer, call, x, out);
}

/* The device form over the staged buffers (layer_host_forward). */
static clattn_status host_run(void *layer, const void *call, const cl_mem *b)
{
    return forward(layer, call, b[0], b[1]);
}

CLATTN_API clattn_status clattn_se_gate_forward_host(
    clattn_se_gate *layer, const clattn_se_gate_call *call, const float *x,
    float *out)
{
    clattn_status status = layer_forward_check(layer, LAYER, call);
    size_t bytes = 0;
    if (status == CLATTN_SUCCESS)
        status = call_count(layer, call->tokens, &bytes);
    if (status != CLATTN_SUCCESS)
        return status;
    const layer_host_array arrays[2] = {{"x", x, NULL, bytes},
                                        {"out", NULL, out, bytes}};
    static const int required[2] = {1, 1};
    return layer_host_forward(layer->ctx, LAYER, arrays, required, 2, host_run,
                              layer, call);
}
