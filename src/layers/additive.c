/* Additive (Bahdanau) attention, clattn_additive_*: the seq2seq tutorial's
   BahdanauAttention with separate query/key/attention/value sizes and any
   number of query rows.

   Per call: qp = query Wa^T + (wa_b + ua_b) and kpt = Ua keys^T (both
   through gemm_linear; the key projection is computed transposed, [A][B*Skv],
   so the scores kernel reads 16 keys of one feature as one vector, and
   both biases are folded into qp since only qp + kp is ever used), then
   additive_scores (register tiles of 4 query rows x 16 keys; the
   [B][Sq][Skv][A] tensor is never stored), add_softmax_rows, and
   add_weighted_sum for the context. The scores are built in the caller's
   weights buffer when one is given, else in scratch.

   Also home of the helpers shared with concat.c and se_gate.c
   (additive_internal.h). */
#include "additive_internal.h"
#include "context_internal.h"
#include "gemm.h"

#include <stdint.h>
#include <stdlib.h>

#define ADD_TI 4  /* query rows per work-item, as cl/additive.cl */
#define ADD_TJ 16 /* keys / features per work-item */

struct clattn_additive {
    clattn_context *ctx;
    clattn_additive_desc desc; /* value_dim resolved */
    cl_mem wa, ua, va;         /* [A][Dq], [A][Dk], [A] */
    cl_mem qk_bias;            /* wa_b + ua_b, [A]; NULL without bias */
    float bv;                  /* Va's bias (0 without bias) */
};

/* ------------------------------------------------------------------------ */
/* Shared helpers (additive_internal.h)                                      */
/* ------------------------------------------------------------------------ */

clattn_status add_kernel(clattn_context *ctx, const char *name,
                         cl_kernel *kernel, kernel_args *args)
{
    clattn_status status = program_kernel(ctx, PROGRAM_ADDITIVE, name, kernel);
    if (status == CLATTN_SUCCESS)
        *args = args_begin(*kernel);
    return status;
}

clattn_status add_launch(clattn_context *ctx, cl_kernel kernel,
                         const kernel_args *args, const char *name, size_t g0,
                         size_t g1, layer_timer *timer, layer_stage stage)
{
    clattn_status status;
    if (args->err != CL_SUCCESS) {
        status = ctx_error(
            ctx, CLATTN_ERROR_OPENCL, "clSetKernelArg(%s, %u) failed: %s (%d)",
            name, args->index - 1, cl_error_name(args->err), (int)args->err);
    } else {
        size_t global[2] = {g0, g1};
        status = layer_launch(ctx, ctx->queue, args, name, g1 ? 2 : 1, global,
                              timer, stage);
    }
    clReleaseKernel(kernel);
    return status;
}

static size_t tiles(size_t n, size_t tile)
{
    return n / tile + !!(n % tile);
}

clattn_status add_softmax(clattn_context *ctx, cl_mem scores, size_t rows,
                          size_t n, layer_timer *timer)
{
    cl_kernel kernel;
    kernel_args a;
    clattn_status status = add_kernel(ctx, "add_softmax_rows", &kernel, &a);
    if (status != CLATTN_SUCCESS)
        return status;
    arg_mem(&a, scores);
    arg_ulong(&a, n);
    return add_launch(ctx, kernel, &a, "add_softmax_rows", rows, 0, timer,
                      LAYER_STAGE_ATTENTION);
}

clattn_status add_weighted_sum(clattn_context *ctx, cl_mem w, cl_mem v,
                               cl_mem out, size_t batch, size_t sq, size_t skv,
                               size_t dv, layer_timer *timer)
{
    cl_kernel kernel;
    kernel_args a;
    clattn_status status = add_kernel(ctx, "add_weighted_sum", &kernel, &a);
    if (status != CLATTN_SUCCESS)
        return status;
    size_t i_tiles = tiles(sq, ADD_TI);
    arg_mem(&a, w);
    arg_mem(&a, v);
    arg_mem(&a, out);
    arg_ulong(&a, sq);
    arg_ulong(&a, skv);
    arg_ulong(&a, dv);
    arg_ulong(&a, i_tiles);
    /* batch * i_tiles <= batch * sq, checked by the caller */
    return add_launch(ctx, kernel, &a, "add_weighted_sum", tiles(dv, ADD_TJ),
                      batch * i_tiles, timer, LAYER_STAGE_ATTENTION);
}

clattn_status add_count(clattn_context *ctx, size_t *out, size_t *bytes,
                        size_t a, size_t b, size_t c)
{
    clattn_status status = layer_mul_size(ctx, out, a, b, c);
    if (status == CLATTN_SUCCESS && bytes)
        status = layer_mul_size(ctx, bytes, *out, sizeof(float), 1);
    return status;
}

clattn_status add_check_host_outputs(clattn_context *ctx, const char *layer,
                                     const void *const *in,
                                     const size_t *in_bytes,
                                     const char *const *in_names, size_t n_in,
                                     const char *out_name, const void *out,
                                     size_t out_bytes, const float *weights,
                                     size_t weights_bytes)
{
    for (size_t i = 0; i < n_in; ++i)
        if (layer_host_overlap(in[i], in_bytes[i], out, out_bytes) ||
            layer_host_overlap(in[i], in_bytes[i], weights, weights_bytes))
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s: %s overlaps an output array", layer,
                             in_names[i]);
    if (layer_host_overlap(out, out_bytes, weights, weights_bytes))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: %s and weights overlap", layer, out_name);
    return CLATTN_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static const char LAYER[] = "additive";

static clattn_status check_weights(clattn_context *ctx,
                                   const clattn_additive_desc *d,
                                   const clattn_additive_weights *w)
{
    const layer_weight list[] = {
        {"wa_weight", w->wa_weight, 1}, {"wa_bias", w->wa_bias, d->bias},
        {"ua_weight", w->ua_weight, 1}, {"ua_bias", w->ua_bias, d->bias},
        {"va_weight", w->va_weight, 1}, {"va_bias", w->va_bias, d->bias},
    };
    return layer_check_weights(ctx, LAYER, list, sizeof list / sizeof list[0]);
}

/* Uploads the weights; the two projection biases become one [A] vector. */
static clattn_status upload_weights(clattn_additive *l,
                                    const clattn_additive_weights *w)
{
    const clattn_additive_desc *d = &l->desc;
    size_t nwa, nua;
    clattn_status status =
        add_count(l->ctx, &nwa, NULL, d->attn_dim, d->query_dim, 1);
    if (status == CLATTN_SUCCESS)
        status = add_count(l->ctx, &nua, NULL, d->attn_dim, d->key_dim, 1);
    if (status == CLATTN_SUCCESS)
        status = layer_upload(l->ctx, w->wa_weight, nwa, &l->wa);
    if (status == CLATTN_SUCCESS)
        status = layer_upload(l->ctx, w->ua_weight, nua, &l->ua);
    if (status == CLATTN_SUCCESS)
        status = layer_upload(l->ctx, w->va_weight, d->attn_dim, &l->va);
    if (status != CLATTN_SUCCESS || !d->bias)
        return status;
    /* attn_dim floats: va's upload above checked the byte count. */
    float *sum = malloc(d->attn_dim * sizeof *sum);
    if (!sum)
        return ctx_error(l->ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "%s: host memory for the bias", LAYER);
    for (size_t a = 0; a < d->attn_dim; ++a)
        sum[a] = w->wa_bias[a] + w->ua_bias[a];
    status = layer_upload(l->ctx, sum, d->attn_dim, &l->qk_bias);
    free(sum);
    l->bv = w->va_bias[0];
    return status;
}

CLATTN_API clattn_status clattn_additive_create(
    clattn_context *ctx, const clattn_additive_desc *desc,
    const clattn_additive_weights *weights, clattn_additive **out)
{
    CTX_CHECK_USABLE(ctx);
    if (!out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: out is NULL",
                         LAYER);
    *out = NULL;
    if (!desc || !weights)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                         LAYER, desc ? "weights" : "desc");
    clattn_additive_desc d = *desc;
    if (!d.value_dim)
        d.value_dim = d.key_dim;
    if (!d.query_dim || !d.key_dim || !d.attn_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: query_dim %zu, key_dim %zu and attn_dim %zu "
                         "must be nonzero",
                         LAYER, d.query_dim, d.key_dim, d.attn_dim);
    d.bias = d.bias != 0;
    clattn_status status = check_weights(ctx, &d, weights);
    if (status != CLATTN_SUCCESS)
        return status;
    clattn_additive *l = calloc(1, sizeof *l);
    if (!l)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "%s: host memory for the layer", LAYER);
    l->ctx = ctx;
    l->desc = d;
    status = upload_weights(l, weights);
    if (status != CLATTN_SUCCESS) {
        clattn_additive_destroy(l);
        return status;
    }
    *out = l;
    return CLATTN_SUCCESS;
}

CLATTN_API void clattn_additive_destroy(clattn_additive *layer)
{
    if (!layer)
        return;
    cl_mem all[] = {layer->wa, layer->ua, layer->va, layer->qk_bias};
    layer_release(layer->ctx, all, sizeof all / sizeof all[0]);
    free(layer);
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                   */
/* ------------------------------------------------------------------------ */

/* Element counts of one call's tensors, all checked for overflow (bytes
   included), so the kernels' 64-bit indices and the byte sizes are safe. */
typedef struct additive_sizes {
    size_t query, keys, values, mask, context, weights; /* elements */
    size_t qp, kp;                                      /* scratch */
    /* Bytes of each (the mask is uint8: its bytes are its count). */
    size_t query_b, keys_b, values_b, context_b, weights_b, qp_b, kp_b;
} additive_sizes;

static clattn_status call_sizes(const clattn_additive *l,
                                const clattn_additive_call *c,
                                additive_sizes *s)
{
    clattn_context *ctx = l->ctx;
    const clattn_additive_desc *d = &l->desc;
    if (!c->batch || !c->seq_q || !c->seq_kv)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: batch %zu, seq_q %zu and seq_kv %zu must be "
                         "nonzero",
                         LAYER, c->batch, c->seq_q, c->seq_kv);
    size_t mask_b;
    const struct {
        size_t *out, *bytes, a, b, c;
    } list[] = {
        {&s->query, &s->query_b, c->batch, c->seq_q, d->query_dim},
        {&s->keys, &s->keys_b, c->batch, c->seq_kv, d->key_dim},
        {&s->values, &s->values_b, c->batch, c->seq_kv, d->value_dim},
        {&s->mask, &mask_b, c->batch, c->seq_kv, 1},
        {&s->context, &s->context_b, c->batch, c->seq_q, d->value_dim},
        {&s->weights, &s->weights_b, c->batch, c->seq_q, c->seq_kv},
        {&s->qp, &s->qp_b, c->batch, c->seq_q, d->attn_dim},
        {&s->kp, &s->kp_b, c->batch, c->seq_kv, d->attn_dim},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; ++i) {
        clattn_status status = add_count(ctx, list[i].out, list[i].bytes,
                                         list[i].a, list[i].b, list[i].c);
        if (status != CLATTN_SUCCESS)
            return status;
    }
    return CLATTN_SUCCESS;
}

/* The two projection GEMMs of enqueue_all() against CLBlast's int limits,
   with the same shapes: qp = query Wa^T [B*Sq][A], kpt = Ua keys^T
   [A][B*Skv]. B*Sq and B*Skv are below the checked element counts. */
static clattn_status check_gemms(const clattn_additive *l,
                                 const clattn_additive_call *c,
                                 const additive_sizes *s)
{
    const clattn_additive_desc *d = &l->desc;
    size_t rows_q = c->batch * c->seq_q, cols_k = c->batch * c->seq_kv;
    size_t e1[3] = {layer_extent(0, rows_q, d->query_dim),
                    layer_extent(0, d->attn_dim, d->query_dim), s->qp};
    size_t e2[3] = {layer_extent(0, d->attn_dim, d->key_dim),
                    layer_extent(0, cols_k, d->key_dim), s->kp};
    size_t m1 = e1[0], m2 = e2[0];
    for (int i = 1; i < 3; ++i) {
        m1 = e1[i] > m1 ? e1[i] : m1;
        m2 = e2[i] > m2 ? e2[i] : m2;
    }
    clattn_status status =
        layer_check_gemm(l->ctx, LAYER, "query projection", rows_q, d->attn_dim,
                         d->query_dim, m1);
    if (status == CLATTN_SUCCESS)
        status = layer_check_gemm(l->ctx, LAYER, "key projection", d->attn_dim,
                                  cols_k, d->key_dim, m2);
    return status;
}

/* The call's own buffers (qp, kpt, and the scores unless the caller's
   weights buffer holds them) and its GEMMs, before anything is made. */
static clattn_status check_limits(const clattn_additive *l,
                                  const clattn_additive_call *c,
                                  const additive_sizes *s, int own_scores)
{
    clattn_context *ctx = l->ctx;
    clattn_status status =
        layer_check_alloc(ctx, LAYER, "the query projection", s->qp_b);
    if (status == CLATTN_SUCCESS)
        status = layer_check_alloc(ctx, LAYER, "the key projection", s->kp_b);
    if (status == CLATTN_SUCCESS && own_scores)
        status = layer_check_alloc(ctx, LAYER, "the scores", s->weights_b);
    if (status == CLATTN_SUCCESS)
        status = check_gemms(l, c, s);
    return status;
}

typedef struct additive_io {
    cl_mem query, keys, values, mask, context, weights;
} additive_io;

static clattn_status check_io(const clattn_additive *l,
                              const clattn_additive_call *c,
                              const additive_sizes *s, const additive_io *io)
{
    clattn_context *ctx = l->ctx;
    if (io->keys && io->values == io->keys &&
        l->desc.value_dim != l->desc.key_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: the keys are used as values but value_dim %zu "
                         "!= key_dim %zu",
                         LAYER, l->desc.value_dim, l->desc.key_dim);
    /* Aliasing first: a shared buffer is the error, whatever its size. */
    cl_mem inputs[] = {io->query, io->keys, io->values,
                       c->has_key_padding_mask ? io->mask : NULL};
    const char *names[] = {"query", "keys", "values", "key_padding_mask"};
    for (size_t i = 0; i < 4; ++i)
        if (inputs[i] && (inputs[i] == io->context || inputs[i] == io->weights))
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s: %s is also an output buffer", LAYER,
                             names[i]);
    if (io->context && io->context == io->weights)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: context and weights are the same buffer", LAYER);
    clattn_status status =
        layer_check_buffer(ctx, LAYER, "query", io->query, s->query_b, 0);
    if (status == CLATTN_SUCCESS)
        status = layer_check_buffer(ctx, LAYER, "keys", io->keys, s->keys_b, 0);
    if (status == CLATTN_SUCCESS)
        status = layer_check_buffer(ctx, LAYER, "values", io->values,
                                    s->values_b, 0);
    if (status == CLATTN_SUCCESS && c->has_key_padding_mask)
        status = layer_check_buffer(ctx, LAYER, "key_padding_mask", io->mask,
                                    s->mask, 0);
    if (status == CLATTN_SUCCESS)
        status = layer_check_buffer(ctx, LAYER, "context", io->context,
                                    s->context_b, 1);
    if (status == CLATTN_SUCCESS && io->weights)
        status = layer_check_buffer(ctx, LAYER, "weights", io->weights,
                                    s->weights_b, 1);
    return status;
}

static clattn_status enqueue_scores(const clattn_additive *l,
                                    const clattn_additive_call *c, cl_mem qp,
                                    cl_mem kpt, cl_mem mask, cl_mem scores,
                                    layer_timer *timer)
{
    cl_kernel kernel;
    kernel_args a;
    clattn_status status = add_kernel(l->ctx, "additive_scores", &kernel, &a);
    if (status != CLATTN_SUCCESS)
        return status;
    size_t i_tiles = tiles(c->seq_q, ADD_TI);
    arg_mem(&a, qp);
    arg_mem(&a, kpt);
    arg_ulong(&a, c->batch * c->seq_kv);
    arg_mem(&a, l->va);
    arg_float(&a, l->bv);
    arg_mem(&a, c->has_key_padding_mask ? mask : NULL);
    arg_int(&a, c->has_key_padding_mask ? 1 : 0);
    arg_mem(&a, scores);
    arg_ulong(&a, c->seq_q);
    arg_ulong(&a, c->seq_kv);
    arg_ulong(&a, l->desc.attn_dim);
    arg_ulong(&a, i_tiles);
    return add_launch(l->ctx, kernel, &a, "additive_scores",
                      tiles(c->seq_kv, ADD_TJ), c->batch * i_tiles, timer,
                      LAYER_STAGE_ATTENTION);
}

/* Everything after validation: scratch, the two projections, scores,
   softmax, context. */
static clattn_status enqueue_all(const clattn_additive *l,
                                 const clattn_additive_call *c,
                                 const additive_sizes *s, const additive_io *io,
                                 layer_timer *timer)
{
    clattn_context *ctx = l->ctx;
    const clattn_additive_desc *d = &l->desc;
    cl_mem scratch[3] = {NULL, NULL, NULL}; /* qp, kpt, scores */
    clattn_status status = layer_buffer(ctx, s->qp_b, NULL, &scratch[0]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s->kp_b, NULL, &scratch[1]);
    if (status == CLATTN_SUCCESS && !io->weights)
        status = layer_buffer(ctx, s->weights_b, NULL, &scratch[2]);
    cl_mem scores = io->weights ? io->weights : scratch[2];
    /* Both below the checked element counts (s->weights). */
    size_t rows_q = c->batch * c->seq_q, cols_k = c->batch * c->seq_kv;
    if (status == CLATTN_SUCCESS) {
        gemm_matrix x = {io->query, 0, d->query_dim};
        gemm_matrix w = {l->wa, 0, d->query_dim};
        gemm_matrix y = {scratch[0], 0, d->attn_dim};
        status = gemm_linear(ctx, ctx->queue, rows_q, d->attn_dim, d->query_dim,
                             x, w, l->qk_bias, 0, 0, y, timer);
    }
    if (status == CLATTN_SUCCESS) {
        /* kpt = Ua keys^T: the nn.Linear form with Ua as the input rows
           and the keys as the "weight". */
        gemm_matrix x = {l->ua, 0, d->key_dim};
        gemm_matrix w = {io->keys, 0, d->key_dim};
        gemm_matrix y = {scratch[1], 0, cols_k};
        status = gemm_linear(ctx, ctx->queue, d->attn_dim, cols_k, d->key_dim,
                             x, w, NULL, 0, 0, y, timer);
    }
    if (status == CLATTN_SUCCESS)
        status = enqueue_scores(l, c, scratch[0], scratch[1], io->mask, scores,
                                timer);
    if (status == CLATTN_SUCCESS)
        status = add_softmax(ctx, scores, rows_q, c->seq_kv, timer);
    if (status == CLATTN_SUCCESS)
        status =
            add_weighted_sum(ctx, scores, io->values, io->context, c->batch,
                             c->seq_q, c->seq_kv, d->value_dim, timer);
    /* OpenCL keeps the buffers alive until the enqueued kernels finish. */
    layer_release(ctx, scratch, 3);
    return status;
}

static clattn_status forward(clattn_additive *l, const clattn_additive_call *c,
                             additive_io io)
{
    clattn_context *ctx = l->ctx;
    additive_sizes s;
    clattn_status status = call_sizes(l, c, &s);
    if (status != CLATTN_SUCCESS)
        return status;
    if (!io.values)
        io.values = io.keys;
    /* The limits first, as the other layers check the call before its
       buffers. */
    status = check_limits(l, c, &s, !io.weights);
    if (status == CLATTN_SUCCESS)
        status = check_io(l, c, &s, &io);
    if (status != CLATTN_SUCCESS)
        return status;
    layer_timer tb, *timer;
    status = layer_timer_begin(ctx, ctx->queue, c->timing ? &tb : NULL, &timer);
    if (status != CLATTN_SUCCESS)
        return status;
    status = enqueue_all(l, c, &s, &io, timer);
    clattn_status done = layer_timer_finish(
        ctx, ctx->queue, timer, status == CLATTN_SUCCESS ? c->timing : NULL);
    return status != CLATTN_SUCCESS ? status : done;
}

CLATTN_API clattn_status clattn_additive_forward(
    clattn_additive *layer, const clattn_additive_call *call, cl_mem query,
    cl_mem keys, cl_mem values, cl_mem key_padding_mask, cl_mem context,
    cl_mem weights)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    CTX_CHECK_USABLE(layer->ctx);
    if (!call)
        return ctx_error(layer->ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: call is NULL", LAYER);
    additive_io io = {query, keys, values, key_padding_mask, context, weights};
    return forward(layer, call, io);
}

/* ------------------------------------------------------------------------ */
/* Host form                                                                 */
/* ------------------------------------------------------------------------ */

static clattn_status check_host(const clattn_additive *l,
                                const clattn_additive_call *c,
                                const additive_sizes *s, const float *query,
                                const float *keys, const float *values,
                                const uint8_t *mask, const float *context,
                                const float *weights)
{
    clattn_context *ctx = l->ctx;
    if (!query || !keys || !context)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                         LAYER,
                         !query  ? "query"
                         : !keys ? "keys"
                                 : "context");
    if (c->has_key_padding_mask && !mask)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: has_key_padding_mask but key_padding_mask is "
                         "NULL",
                         LAYER);
    const void *in[] = {query, keys, values,
                        c->has_key_padding_mask ? mask : NULL};
    size_t in_bytes[] = {s->query_b, s->keys_b, s->values_b, s->mask};
    const char *names[] = {"query", "keys", "values", "key_padding_mask"};
    /* The staging buffers, one allocation each, and the call's own
       (check_limits), before any is made or any host array read, and
       before the overlap rule: a shape that cannot run is refused as such
       even where its logical extents make the arrays overlap. */
    clattn_status status = CLATTN_SUCCESS;
    const struct {
        const char *what;
        size_t bytes;
    } staged[] = {
        {"the staged query", s->query_b},
        {"the staged keys", s->keys_b},
        {"the staged values", values && values != keys ? s->values_b : 0},
        {"the staged key_padding_mask", c->has_key_padding_mask ? s->mask : 0},
        {"the staged context", s->context_b},
        {"the staged weights", weights ? s->weights_b : 0},
    };
    for (size_t i = 0; status == CLATTN_SUCCESS && i < 6; ++i)
        status = layer_check_alloc(ctx, LAYER, staged[i].what, staged[i].bytes);
    if (status == CLATTN_SUCCESS)
        status = check_limits(l, c, s, !weights);
    if (status == CLATTN_SUCCESS)
        status = add_check_host_outputs(ctx, LAYER, in, in_bytes, names, 4,
                                        "context", context, s->context_b,
                                        weights, s->weights_b);
    return status;
}

CLATTN_API clattn_status clattn_additive_forward_host(
    clattn_additive *layer, const clattn_additive_call *call,
    const float *query, const float *keys, const float *values,
    const uint8_t *key_padding_mask, float *context, float *weights)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_context *ctx = layer->ctx;
    CTX_CHECK_USABLE(ctx);
    if (!call)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: call is NULL",
                         LAYER);
    additive_sizes s;
    clattn_status status = call_sizes(layer, call, &s);
    if (status == CLATTN_SUCCESS)
        status = check_host(layer, call, &s, query, keys, values,
                            key_padding_mask, context, weights);
    if (status != CLATTN_SUCCESS)
        return status;
    if (values == keys)
        values = NULL; /* one upload; the device form takes keys as values */
    if (!values && layer->desc.value_dim != layer->desc.key_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: the keys are used as values but value_dim %zu "
                         "!= key_dim %zu",
                         LAYER, layer->desc.value_dim, layer->desc.key_dim);
    /* query, keys, values, mask, context, weights */
    cl_mem b[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    status = layer_buffer(ctx, s.query_b, query, &b[0]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s.keys_b, keys, &b[1]);
    if (status == CLATTN_SUCCESS && values)
        status = layer_buffer(ctx, s.values_b, values, &b[2]);
    if (status == CLATTN_SUCCESS && call->has_key_padding_mask)
        status = layer_buffer(ctx, s.mask, key_padding_mask, &b[3]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s.context_b, NULL, &b[4]);
    if (status == CLATTN_SUCCESS && weights)
        status = layer_buffer(ctx, s.weights_b, NULL, &b[5]);
    if (status == CLATTN_SUCCESS) {
        additive_io io = {b[0], b[1], b[2], b[3], b[4], b[5]};
        status = forward(layer, call, io);
    }
    if (status == CLATTN_SUCCESS)
        status = layer_read(ctx, b[4], s.context_b, context);
    if (status == CLATTN_SUCCESS && weights)
        status = layer_read(ctx, b[5], s.weights_b, weights);
    layer_release(ctx, b, 6);
    return status;
}
