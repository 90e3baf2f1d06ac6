/* Concat-then-combine attention, clattn_concat_*: the attention part of
   the seq2seq tutorial's AttnDecoderRNN (attn, softmax, bmm with the
   encoder outputs, attn_combine), batched. The tutorial's F.relu after
   attn_combine is not part of the layer.

   Neither concatenation is stored: attn([q; k]) is q A1^T + k A2^T + b with
   A1, A2 the column blocks [0, Dq) and [Dq, Dq + Dk) of attn's weight,
   read in place (ld Dq + Dk), the second GEMM accumulating onto the first;
   attn_combine likewise. Between them: add_softmax_rows over max_length
   and add_weighted_sum with one query row per batch (attention_rows.h).
   The host form stages over the device form (layer_object.h). */
#include "attention_rows.h"
#include "checked_math.h"
#include "context_internal.h"
#include "gemm.h"
#include "layer_object.h"
#include "struct_size.h"

#include <stddef.h>

struct clattn_concat {
    clattn_context *ctx; /* first: layer_object.h */
    clattn_concat_desc desc;
    cl_mem attn_w, attn_b;       /* [L][Dq + Dk], [L] */
    cl_mem combine_w, combine_b; /* [out][Dq + Dv], [out] */
};

static const char LAYER[] = "concat";

/* Weight element counts (Dq + Dk and Dq + Dv checked for overflow). */
static clattn_status weight_counts(clattn_context *ctx,
                                   const clattn_concat_desc *d, size_t *attn,
                                   size_t *combine)
{
    size_t qk, qv;
    if (checked_add(d->query_dim, d->key_dim, &qk) ||
        checked_add(d->query_dim, d->value_dim, &qv))
        return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                         "%s: query_dim + key_dim or + value_dim overflows",
                         LAYER);
    clattn_status status = layer_count(ctx, attn, NULL, d->max_length, qk, 1);
    if (status == CLATTN_SUCCESS)
        status = layer_count(ctx, combine, NULL, d->out_dim, qv, 1);
    return status;
}

CLATTN_API clattn_status
clattn_concat_create(clattn_context *ctx, const clattn_concat_desc *desc,
                     const clattn_concat_weights *weights, clattn_concat **out)
{
    LAYER_CREATE_BEGIN(clattn_concat_desc, given, ctx, LAYER, out, desc,
                       weights, CONCAT_DESC_OLDEST_SIZE);
    const clattn_concat_desc *d = &given;
    if (!d->query_dim || !d->key_dim || !d->value_dim || !d->max_length ||
        !d->out_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: query_dim %zu, key_dim %zu, value_dim %zu, "
                         "max_length %zu and out_dim %zu must be nonzero",
                         LAYER, d->query_dim, d->key_dim, d->value_dim,
                         d->max_length, d->out_dim);
    size_t n_attn = 0, n_combine = 0;
    clattn_status status = weight_counts(ctx, d, &n_attn, &n_combine);
    if (status != CLATTN_SUCCESS)
        return status;
    /* nn.Linear's default bias=True: all four tensors are in the dict. */
    const layer_weight_spec list[] = {
        {"attn_weight", weights->attn_weight, 1, n_attn,
         offsetof(clattn_concat, attn_w)},
        {"attn_bias", weights->attn_bias, 1, d->max_length,
         offsetof(clattn_concat, attn_b)},
        {"combine_weight", weights->combine_weight, 1, n_combine,
         offsetof(clattn_concat, combine_w)},
        {"combine_bias", weights->combine_bias, 1, d->out_dim,
         offsetof(clattn_concat, combine_b)},
    };
    clattn_concat *l =
        layer_object_create(ctx, LAYER, sizeof *l, list, 4, &status);
    if (l)
        l->desc = *d;
    *out = l;
    return status;
}

CLATTN_API void clattn_concat_destroy(clattn_concat *layer)
{
    if (!layer)
        return;
    cl_mem all[] = {layer->attn_w, layer->attn_b, layer->combine_w,
                    layer->combine_b};
    layer_object_free(layer, all, 4);
}

/* Element counts of one call, and their bytes (as floats). */
enum { C_QUERY, C_KEY, C_VALUES, C_OUT, C_WEIGHTS, C_APPLIED, C_COUNT };
typedef struct concat_sizes {
    size_t count[C_COUNT], bytes[C_COUNT];
} concat_sizes;

static clattn_status call_sizes(const clattn_concat *l, size_t batch,
                                concat_sizes *s)
{
    const clattn_concat_desc *d = &l->desc;
    if (!batch)
        return ctx_error(l->ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: batch must be nonzero", LAYER);
    const size_t per_row[C_COUNT][2] = {
        [C_QUERY] = {d->query_dim, 1},
        [C_KEY] = {d->key_dim, 1},
        [C_VALUES] = {d->max_length, d->value_dim},
        [C_OUT] = {d->out_dim, 1},
        [C_WEIGHTS] = {d->max_length, 1},
        [C_APPLIED] = {d->value_dim, 1},
    };
    for (size_t i = 0; i < C_COUNT; ++i) {
        clattn_status status = layer_count(l->ctx, &s->count[i], &s->bytes[i],
                                           batch, per_row[i][0], per_row[i][1]);
        if (status != CLATTN_SUCCESS)
            return status;
    }
    return CLATTN_SUCCESS;
}

/* The largest element index + 1 of the two GEMMs of linear_of_concat(),
   computed as gemm_run() does: x1 [m][k1], x2 [m][k2], the weight's
   column blocks (the second at offset k1, ld k1 + k2, n rows), y [m][n]. */
static size_t concat_extent(size_t m, size_t n, size_t k1, size_t k2)
{
    size_t e[5] = {layer_extent(0, m, k1), layer_extent(0, m, k2),
                   layer_extent(0, n, k1 + k2), layer_extent(k1, n, k1 + k2),
                   layer_extent(0, m, n)};
    size_t most = 0;
    for (int i = 0; i < 5; ++i)
        most = e[i] > most ? e[i] : most;
    return most;
}

/* The call's own buffers (the scores, unless the caller's weights buffer
   holds them, and the applied values) and the four GEMMs, before anything
   is made. k1 + k2 was checked at creation. */
static clattn_status check_limits(const clattn_concat *l, size_t batch,
                                  const concat_sizes *s, int own_scores)
{
    clattn_status status = own_scores
                               ? layer_check_alloc(l->ctx, LAYER, "the scores",
                                                   s->bytes[C_WEIGHTS])
                               : CLATTN_SUCCESS;
    if (status == CLATTN_SUCCESS)
        status = layer_check_alloc(l->ctx, LAYER, "the applied values",
                                   s->bytes[C_APPLIED]);
    const clattn_concat_desc *d = &l->desc;
    const size_t k1 = d->query_dim;
    const struct {
        const char *what;
        size_t n, k2;
    } gemms[2] = {{"attn", d->max_length, d->key_dim},
                  {"attn_combine", d->out_dim, d->value_dim}};
    for (int i = 0; status == CLATTN_SUCCESS && i < 2; ++i) {
        const size_t n = gemms[i].n, k2 = gemms[i].k2;
        const size_t extent = concat_extent(batch, n, k1, k2);
        status = layer_check_gemm(l->ctx, LAYER, gemms[i].what, batch, n,
                                  k1 > k2 ? k1 : k2, extent);
    }
    return status;
}

/* The device buffers of one call, in the order of the public form. */
enum { B_QUERY, B_KEY, B_VALUES, B_OUT, B_WEIGHTS, B_COUNT };

/* Out and weights are neither an input nor each other (inputs may share
   a buffer); weights may be NULL. */
static clattn_status check_buffers(const clattn_concat *l,
                                   const concat_sizes *s, const cl_mem *b)
{
    const layer_device_arg args[B_COUNT] = {
        {"query", b[B_QUERY], s->bytes[C_QUERY], 0, 0},
        {"key", b[B_KEY], s->bytes[C_KEY], 0, 0},
        {"values", b[B_VALUES], s->bytes[C_VALUES], 0, 0},
        {"out", b[B_OUT], s->bytes[C_OUT], 1, 0},
        {"weights", b[B_WEIGHTS], s->bytes[C_WEIGHTS], 1, 1},
    };
    return layer_check_device_args(l->ctx, LAYER, args, B_COUNT);
}

/* Y = x1 W[:, :k1]^T + x2 W[:, k1:k1+k2]^T + bias, W of row length
   k1 + k2: the Linear of a concatenation, as two GEMMs. */
static clattn_status linear_of_concat(clattn_context *ctx, size_t m, size_t n,
                                      cl_mem x1, size_t k1, cl_mem x2,
                                      size_t k2, cl_mem w, cl_mem bias,
                                      cl_mem y, layer_timer *timer)
{
    gemm_matrix a1 = {x1, 0, k1}, a2 = {x2, 0, k2};
    gemm_matrix w1 = {w, 0, k1 + k2}, w2 = {w, k1, k1 + k2};
    gemm_matrix out = {y, 0, n};
    clattn_status status =
        gemm_linear(ctx, ctx->queue, m, n, k1, a1, w1, bias, 0, 0, out, timer);
    if (status == CLATTN_SUCCESS)
        status = gemm_linear(ctx, ctx->queue, m, n, k2, a2, w2, NULL, 0, 1, out,
                             timer);
    return status;
}

/* One device-form call after its checks. */
typedef struct concat_run {
    const clattn_concat *l;
    size_t batch;
    const concat_sizes *s;
    const cl_mem *b;
} concat_run;

/* Scratch (scores unless the caller's weights hold them, applied), then
   attn, softmax, weights . values, attn_combine. */
static clattn_status enqueue_all(void *state, layer_timer *timer)
{
    const concat_run *r = state;
    const clattn_concat *l = r->l;
    const clattn_concat_desc *d = &l->desc;
    clattn_context *ctx = l->ctx;
    const cl_mem *b = r->b;
    cl_mem scratch[2] = {NULL, NULL}; /* scores, applied */
    clattn_status status = CLATTN_SUCCESS;
    if (!b[B_WEIGHTS])
        status = layer_buffer(ctx, r->s->bytes[C_WEIGHTS], NULL, &scratch[0]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, r->s->bytes[C_APPLIED], NULL, &scratch[1]);
    cl_mem scores = b[B_WEIGHTS] ? b[B_WEIGHTS] : scratch[0];
    if (status == CLATTN_SUCCESS)
        status = linear_of_concat(ctx, r->batch, d->max_length, b[B_QUERY],
                                  d->query_dim, b[B_KEY], d->key_dim, l->attn_w,
                                  l->attn_b, scores, timer);
    if (status == CLATTN_SUCCESS)
        status = rows_softmax(ctx, scores, r->batch, d->max_length, timer);
    if (status == CLATTN_SUCCESS)
        status =
            rows_weighted_sum(ctx, scores, b[B_VALUES], scratch[1], r->batch, 1,
                              d->max_length, d->value_dim, timer);
    if (status == CLATTN_SUCCESS)
        status = linear_of_concat(ctx, r->batch, d->out_dim, b[B_QUERY],
                                  d->query_dim, scratch[1], d->value_dim,
                                  l->combine_w, l->combine_b, b[B_OUT], timer);
    /* OpenCL keeps the buffers alive until the enqueued kernels finish. */
    layer_release(ctx, scratch, 2);
    return status;
}

static clattn_status forward(clattn_concat *l, const clattn_concat_call *c,
                             const cl_mem *b)
{
    concat_sizes s;
    clattn_status status = call_sizes(l, c->batch, &s);
    if (status == CLATTN_SUCCESS)
        status = check_limits(l, c->batch, &s, !b[B_WEIGHTS]);
    if (status == CLATTN_SUCCESS)
        status = check_buffers(l, &s, b);
    concat_run r = {l, c->batch, &s, b};
    if (status == CLATTN_SUCCESS)
        status = layer_timed_run(l->ctx, c->timing, enqueue_all, &r);
    return status;
}

CLATTN_API clattn_status clattn_concat_forward(clattn_concat *layer,
                                               const clattn_concat_call *call,
                                               cl_mem query, cl_mem key,
                                               cl_mem values, cl_mem out,
                                               cl_mem weights)
{
    clattn_status status = layer_forward_check(layer, LAYER, call);
    const cl_mem b[B_COUNT] = {query, key, values, out, weights};
    if (status == CLATTN_SUCCESS)
        status = forward(layer, call, b);
    return status;
}

/* The device form over the staged buffers (layer_host_forward). */
static clattn_status host_run(void *layer, const void *call, const cl_mem *b)
{
    return forward(layer, call, b);
}

CLATTN_API clattn_status clattn_concat_forward_host(
    clattn_concat *layer, const clattn_concat_call *call, const float *query,
    const float *key, const float *values, float *out, float *weights)
{
    clattn_status status = layer_forward_check(layer, LAYER, call);
    concat_sizes s;
    if (status == CLATTN_SUCCESS)
        status = call_sizes(layer, call->batch, &s);
    /* The device form's limits before the host checks: a shape that cannot
       run is refused as such even where its logical extents overlap. */
    if (status == CLATTN_SUCCESS)
        status = check_limits(layer, call->batch, &s, !weights);
    if (status != CLATTN_SUCCESS)
        return status;
    const layer_host_array arrays[B_COUNT] = {
        {"query", query, NULL, s.bytes[C_QUERY]},
        {"key", key, NULL, s.bytes[C_KEY]},
        {"values", values, NULL, s.bytes[C_VALUES]},
        {"out", NULL, out, s.bytes[C_OUT]},
        {"weights", NULL, weights, s.bytes[C_WEIGHTS]},
    };
    static const int required[B_COUNT] = {1, 1, 1, 1, 0};
    return layer_host_forward(layer->ctx, LAYER, arrays, required, B_COUNT,
                              host_run, layer, call);
}
