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

   The layer is built on the skeleton of layer_object.h; the row kernels
   it shares with concat are attention_rows.h's. */
#include "attention_rows.h"
#include "context_internal.h"
#include "gemm.h"
#include "layer_object.h"
#include "struct_size.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct clattn_additive {
    clattn_context *ctx;       /* first: layer_object.h */
    clattn_additive_desc desc; /* value_dim resolved */
    cl_mem wa, ua, va;         /* [A][Dq], [A][Dk], [A] */
    cl_mem qk_bias;            /* wa_b + ua_b, [A]; NULL without bias */
    float bv;                  /* Va's bias (0 without bias) */
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static const char LAYER[] = "additive";

/* Va's bias, and the two projection biases as one [A] vector (qk_bias):
   only their sum is ever used. */
static clattn_status upload_biases(clattn_additive *l,
                                   const clattn_additive_weights *w)
{
    const size_t n = l->desc.attn_dim;
    if (!l->desc.bias)
        return CLATTN_SUCCESS;
    /* attn_dim floats: va's upload checked the byte count. */
    float *sum = malloc(n * sizeof *sum);
    if (!sum)
        return ctx_error(l->ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "%s: host memory for the bias", LAYER);
    for (size_t a = 0; a < n; ++a)
        sum[a] = w->wa_bias[a] + w->ua_bias[a];
    clattn_status status = layer_upload(l->ctx, sum, n, &l->qk_bias);
    free(sum);
    l->bv = w->va_bias[0];
    return status;
}

CLATTN_API clattn_status clattn_additive_create(
    clattn_context *ctx, const clattn_additive_desc *desc,
    const clattn_additive_weights *weights, clattn_additive **out)
{
    LAYER_CREATE_BEGIN(clattn_additive_desc, d, ctx, LAYER, out, desc, weights,
                       ADDITIVE_DESC_OLDEST_SIZE);
    if (!d.value_dim)
        d.value_dim = d.key_dim;
    if (!d.query_dim || !d.key_dim || !d.attn_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: query_dim %zu, key_dim %zu and attn_dim %zu "
                         "must be nonzero",
                         LAYER, d.query_dim, d.key_dim, d.attn_dim);
    d.bias = d.bias != 0;
    size_t nwa = 0, nua = 0;
    clattn_status status =
        layer_count(ctx, &nwa, NULL, d.attn_dim, d.query_dim, 1);
    if (status == CLATTN_SUCCESS)
        status = layer_count(ctx, &nua, NULL, d.attn_dim, d.key_dim, 1);
    const layer_weight_spec list[] = {
        {"wa_weight", weights->wa_weight, 1, nwa,
         offsetof(clattn_additive, wa)},
        {"wa_bias", weights->wa_bias, d.bias, 0, LAYER_NOT_UPLOADED},
        {"ua_weight", weights->ua_weight, 1, nua,
         offsetof(clattn_additive, ua)},
        {"ua_bias", weights->ua_bias, d.bias, 0, LAYER_NOT_UPLOADED},
        {"va_weight", weights->va_weight, 1, d.attn_dim,
         offsetof(clattn_additive, va)},
        {"va_bias", weights->va_bias, d.bias, 0, LAYER_NOT_UPLOADED},
    };
    clattn_additive *l =
        layer_object_create(ctx, LAYER, sizeof *l, list, 6, &status);
    if (l) {
        l->desc = d;
        status = upload_biases(l, weights);
    }
    if (status != CLATTN_SUCCESS)
        clattn_additive_destroy(l), l = NULL;
    *out = l;
    return status;
}

CLATTN_API void clattn_additive_destroy(clattn_additive *layer)
{
    if (!layer)
        return;
    cl_mem all[] = {layer->wa, layer->ua, layer->va, layer->qk_bias};
    layer_object_free(layer, all, sizeof all / sizeof all[0]);
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
        clattn_status status = layer_count(ctx, list[i].out, list[i].bytes,
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
    const int mask = c->has_key_padding_mask != 0;
    const layer_device_arg args[6] = {
        {"query", io->query, s->query_b, 0, 0},
        {"keys", io->keys, s->keys_b, 0, 0},
        {"values", io->values, s->values_b, 0, 0},
        {"key_padding_mask", mask ? io->mask : NULL, s->mask, 0, !mask},
        {"context", io->context, s->context_b, 1, 0},
        {"weights", io->weights, s->weights_b, 1, 1},
    };
    return layer_check_device_args(ctx, LAYER, args, 6);
}

static clattn_status enqueue_scores(const clattn_additive *l,
                                    const clattn_additive_call *c, cl_mem qp,
                                    cl_mem kpt, cl_mem mask, cl_mem scores,
                                    layer_timer *timer)
{
    kernel_args a;
    clattn_status status =
        layer_kernel(l->ctx, PROGRAM_ADDITIVE, "additive_scores", &a);
    if (status != CLATTN_SUCCESS)
        return status;
    size_t i_tiles = rows_tiles(c->seq_q, ADD_TI);
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
    return layer_launch_once(l->ctx, &a, "additive_scores",
                             rows_tiles(c->seq_kv, ADD_TJ), c->batch * i_tiles,
                             timer, LAYER_STAGE_ATTENTION);
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
        status = rows_softmax(ctx, scores, rows_q, c->seq_kv, timer);
    if (status == CLATTN_SUCCESS)
        status =
            rows_weighted_sum(ctx, scores, io->values, io->context, c->batch,
                              c->seq_q, c->seq_kv, d->value_dim, timer);
    /* OpenCL keeps the buffers alive until the enqueued kernels finish. */
    layer_release(ctx, scratch, 3);
    return status;
}

/* One device-form call after its checks, for layer_timed_run. */
typedef struct additive_run {
    const clattn_additive *l;
    const clattn_additive_call *c;
    const additive_sizes *s;
    const additive_io *io;
} additive_run;

static clattn_status run_enqueue(void *state, layer_timer *timer)
{
    const additive_run *r = state;
    return enqueue_all(r->l, r->c, r->s, r->io, timer);
}

static clattn_status forward(clattn_additive *l, const clattn_additive_call *c,
                             additive_io io)
{
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
    additive_run r = {l, c, &s, &io};
    if (status == CLATTN_SUCCESS)
        status = layer_timed_run(l->ctx, c->timing, run_enqueue, &r);
    return status;
}

CLATTN_API clattn_status clattn_additive_forward(
    clattn_additive *layer, const clattn_additive_call *call, cl_mem query,
    cl_mem keys, cl_mem values, cl_mem key_padding_mask, cl_mem context,
    cl_mem weights)
{
    clattn_status status = layer_forward_check(layer, LAYER, call);
    if (status != CLATTN_SUCCESS)
        return status;
    additive_io io = {query, keys, values, key_padding_mask, context, weights};
    return forward(layer, call, io);
}

/* ------------------------------------------------------------------------ */
/* Host form                                                                 */
/* ------------------------------------------------------------------------ */

/* The device form over the staged buffers (layer_host_forward). */
static clattn_status host_run(void *layer, const void *call, const cl_mem *b)
{
    additive_io io = {b[0], b[1], b[2], b[3], b[4], b[5]};
    return forward(layer, call, io);
}

CLATTN_API clattn_status clattn_additive_forward_host(
    clattn_additive *layer, const clattn_additive_call *call,
    const float *query, const float *keys, const float *values,
    const uint8_t *key_padding_mask, float *context, float *weights)
{
    clattn_status status = layer_forward_check(layer, LAYER, call);
    additive_sizes s;
    if (status == CLATTN_SUCCESS)
        status = call_sizes(layer, call, &s);
    if (status != CLATTN_SUCCESS)
        return status;
    clattn_context *ctx = layer->ctx;
    const int has_mask = call->has_key_padding_mask != 0;
    if (has_mask && !key_padding_mask)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: has_key_padding_mask but key_padding_mask is "
                         "NULL",
                         LAYER);
    if (values == keys)
        values = NULL; /* one upload; the device form takes keys as values */
    const layer_host_array arrays[6] = {
        {"query", query, NULL, s.query_b},
        {"keys", keys, NULL, s.keys_b},
        {"values", values, NULL, s.values_b},
        {"key_padding_mask", has_mask ? key_padding_mask : NULL, NULL, s.mask},
        {"context", NULL, context, s.context_b},
        {"weights", NULL, weights, s.weights_b},
    };
    static const int required[6] = {1, 1, 0, 0, 1, 0};
    if (keys && !values && layer->desc.value_dim != layer->desc.key_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: the keys are used as values but value_dim %zu "
                         "!= key_dim %zu",
                         LAYER, layer->desc.value_dim, layer->desc.key_dim);
    /* The call's own buffers (check_limits) first, as the device form. */
    status = check_limits(layer, call, &s, !weights);
    if (status == CLATTN_SUCCESS)
        status = layer_host_forward(ctx, LAYER, arrays, required, 6, host_run,
                                    layer, call);
    return status;
}
