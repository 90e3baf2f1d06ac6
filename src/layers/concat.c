/* Concat-then-combine attention, clattn_concat_*: the attention part of
   the seq2seq tutorial's AttnDecoderRNN (attn, softmax, bmm with the
   encoder outputs, attn_combine), batched. The tutorial's F.relu after
   attn_combine is not part of the layer.

   Neither concatenation is stored: attn([q; k]) is q A1^T + k A2^T + b with
   A1, A2 the column blocks [0, Dq) and [Dq, Dq + Dk) of attn's weight,
   read in place (ld Dq + Dk), the second GEMM accumulating onto the first;
   attn_combine likewise. Between them: add_softmax_rows over max_length
   and add_weighted_sum with one query row per batch. */
#include "additive_internal.h"
#include "checked_math.h"
#include "context_internal.h"
#include "gemm.h"

#include <stdlib.h>

struct clattn_concat {
    clattn_context *ctx;
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
    clattn_status status = add_count(ctx, attn, NULL, d->max_length, qk, 1);
    if (status == CLATTN_SUCCESS)
        status = add_count(ctx, combine, NULL, d->out_dim, qv, 1);
    return status;
}

CLATTN_API clattn_status
clattn_concat_create(clattn_context *ctx, const clattn_concat_desc *desc,
                     const clattn_concat_weights *weights, clattn_concat **out)
{
    CTX_CHECK_USABLE(ctx);
    if (!out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: out is NULL",
                         LAYER);
    *out = NULL;
    if (!desc || !weights)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                         LAYER, desc ? "weights" : "desc");
    const clattn_concat_desc *d = desc;
    if (!d->query_dim || !d->key_dim || !d->value_dim || !d->max_length ||
        !d->out_dim)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: query_dim %zu, key_dim %zu, value_dim %zu, "
                         "max_length %zu and out_dim %zu must be nonzero",
                         LAYER, d->query_dim, d->key_dim, d->value_dim,
                         d->max_length, d->out_dim);
    /* nn.Linear's default bias=True: all four tensors are in the dict. */
    const layer_weight list[] = {
        {"attn_weight", weights->attn_weight, 1},
        {"attn_bias", weights->attn_bias, 1},
        {"combine_weight", weights->combine_weight, 1},
        {"combine_bias", weights->combine_bias, 1},
    };
    clattn_status status = layer_check_weights(ctx, LAYER, list, 4);
    size_t n_attn = 0, n_combine = 0;
    if (status == CLATTN_SUCCESS)
        status = weight_counts(ctx, d, &n_attn, &n_combine);
    if (status != CLATTN_SUCCESS)
        return status;
    clattn_concat *l = calloc(1, sizeof *l);
    if (!l)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "%s: host memory for the layer", LAYER);
    l->ctx = ctx;
    l->desc = *d;
    const layer_weight_upload uploads[] = {
        {weights->attn_weight, n_attn, &l->attn_w},
        {weights->attn_bias, d->max_length, &l->attn_b},
        {weights->combine_weight, n_combine, &l->combine_w},
        {weights->combine_bias, d->out_dim, &l->combine_b},
    };
    status = layer_upload_all(ctx, uploads, 4);
    if (status != CLATTN_SUCCESS) {
        clattn_concat_destroy(l);
        return status;
    }
    *out = l;
    return CLATTN_SUCCESS;
}

CLATTN_API void clattn_concat_destroy(clattn_concat *layer)
{
    if (!layer)
        return;
    cl_mem all[] = {layer->attn_w, layer->attn_b, layer->combine_w,
                    layer->combine_b};
    layer_release(layer->ctx, all, 4);
    free(layer);
}

/* Element counts of one call, and their bytes (as floats). */
typedef struct concat_sizes {
    size_t query, key, values, out, weights, applied;
    size_t bytes[6]; /* in the order above */
} concat_sizes;

static clattn_status call_sizes(const clattn_concat *l, size_t batch,
                                concat_sizes *s)
{
    const clattn_concat_desc *d = &l->desc;
    if (!batch)
        return ctx_error(l->ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: batch must be nonzero", LAYER);
    const struct {
        size_t *out, a, b;
    } list[] = {
        {&s->query, d->query_dim, 1},
        {&s->key, d->key_dim, 1},
        {&s->values, d->max_length, d->value_dim},
        {&s->out, d->out_dim, 1},
        {&s->weights, d->max_length, 1},
        {&s->applied, d->value_dim, 1},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; ++i) {
        clattn_status status = add_count(l->ctx, list[i].out, &s->bytes[i],
                                         batch, list[i].a, list[i].b);
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

/* Every buffer of the call (all six are staging or scratch: the form is
   host only) and the four GEMMs, before anything is made. k1 + k2 was
   checked at creation. */
static clattn_status check_limits(const clattn_concat *l, size_t batch,
                                  const concat_sizes *s)
{
    static const char *const what[6] = {
        "the staged query", "the staged key", "the staged values",
        "the staged out",   "the scores",     "the applied values"};
    clattn_status status = CLATTN_SUCCESS;
    for (int i = 0; status == CLATTN_SUCCESS && i < 6; ++i)
        status = layer_check_alloc(l->ctx, LAYER, what[i], s->bytes[i]);
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

static clattn_status check_host(const clattn_concat *l, const concat_sizes *s,
                                const float *query, const float *key,
                                const float *values, const float *out,
                                const float *weights)
{
    clattn_context *ctx = l->ctx;
    if (!query || !key || !values || !out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                         LAYER,
                         !query    ? "query"
                         : !key    ? "key"
                         : !values ? "values"
                                   : "out");
    const void *in[] = {query, key, values};
    size_t in_bytes[] = {s->bytes[0], s->bytes[1], s->bytes[2]};
    const char *names[] = {"query", "key", "values"};
    return add_check_host_outputs(ctx, LAYER, in, in_bytes, names, 3, "out",
                                  out, s->bytes[3], weights, s->bytes[4]);
}

/* Y = x1 W[:, :k1]^T + x2 W[:, k1:k1+k2]^T + bias, W of row length
   k1 + k2: the Linear of a concatenation, as two GEMMs. */
static clattn_status linear_of_concat(clattn_context *ctx, size_t m, size_t n,
                                      cl_mem x1, size_t k1, cl_mem x2,
                                      size_t k2, cl_mem w, cl_mem bias,
                                      cl_mem y)
{
    gemm_matrix a1 = {x1, 0, k1}, a2 = {x2, 0, k2};
    gemm_matrix w1 = {w, 0, k1 + k2}, w2 = {w, k1, k1 + k2};
    gemm_matrix out = {y, 0, n};
    clattn_status status =
        gemm_linear(ctx, ctx->queue, m, n, k1, a1, w1, bias, 0, 0, out, NULL);
    if (status == CLATTN_SUCCESS)
        status = gemm_linear(ctx, ctx->queue, m, n, k2, a2, w2, NULL, 0, 1, out,
                             NULL);
    return status;
}

CLATTN_API clattn_status clattn_concat_forward_host(
    clattn_concat *layer, size_t batch, const float *query, const float *key,
    const float *values, float *out, float *weights)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_context *ctx = layer->ctx;
    CTX_CHECK_USABLE(ctx);
    const clattn_concat_desc *d = &layer->desc;
    concat_sizes s;
    clattn_status status = call_sizes(layer, batch, &s);
    /* The limits before the overlap rule: a shape that cannot run is
       refused as such even where its logical extents overlap. */
    if (status == CLATTN_SUCCESS)
        status = check_limits(layer, batch, &s);
    if (status == CLATTN_SUCCESS)
        status = check_host(layer, &s, query, key, values, out, weights);
    if (status != CLATTN_SUCCESS)
        return status;
    /* query, key, values, scores (the weights), applied, out */
    cl_mem b[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    status = layer_buffer(ctx, s.bytes[0], query, &b[0]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s.bytes[1], key, &b[1]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s.bytes[2], values, &b[2]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s.bytes[4], NULL, &b[3]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s.bytes[5], NULL, &b[4]);
    if (status == CLATTN_SUCCESS)
        status = layer_buffer(ctx, s.bytes[3], NULL, &b[5]);
    if (status == CLATTN_SUCCESS)
        status = linear_of_concat(ctx, batch, d->max_length, b[0], d->query_dim,
                                  b[1], d->key_dim, layer->attn_w,
                                  layer->attn_b, b[3]);
    if (status == CLATTN_SUCCESS)
        status = add_softmax(ctx, b[3], batch, d->max_length, NULL);
    if (status == CLATTN_SUCCESS)
        status = add_weighted_sum(ctx, b[3], b[2], b[4], batch, 1,
                                  d->max_length, d->value_dim, NULL);
    if (status == CLATTN_SUCCESS)
        status = linear_of_concat(ctx, batch, d->out_dim, b[0], d->query_dim,
                                  b[4], d->value_dim, layer->combine_w,
                                  layer->combine_b, b[5]);
    if (status == CLATTN_SUCCESS)
        status = layer_read(ctx, b[5], s.bytes[3], out);
    if (status == CLATTN_SUCCESS && weights)
        status = layer_read(ctx, b[3], s.bytes[4], weights);
    layer_release(ctx, b, 6);
    return status;
}
