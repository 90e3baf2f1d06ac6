#include "reference_mha.h"
#include "philox_ref.h"
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct dims {
    size_t E, H, D, kdim, vdim, B, Sq, Skv;
    int batch_first;
} dims;

/* Row of (b, s) in a [rows][features] activation of the layer's layout. */
static size_t row_of(const dims *d, size_t b, size_t s, size_t seq)
{
    return d->batch_first ? b * seq + s : s * d->B + b;
}

static double *to_double(const float *x, size_t n)
{
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; ++i)
        y[i] = x[i];
    return y;
}

/* torch.nn.LayerNorm: biased variance, eps inside the square root. */
static void layer_norm(double *x, size_t rows, size_t n, const float *w,
                       const float *b, double eps)
{
    for (size_t r = 0; r < rows; ++r) {
        double *xr = x + r * n, mean = 0.0, var = 0.0;
        for (size_t c = 0; c < n; ++c)
            mean += xr[c];
        mean /= (double)n;
        for (size_t c = 0; c < n; ++c)
            var += (xr[c] - mean) * (xr[c] - mean);
        var /= (double)n;
        for (size_t c = 0; c < n; ++c)
            xr[c] = (xr[c] - mean) / sqrt(var + eps) * w[c] + b[c];
    }
}

/* y[r][o] = sum_i x[r][i] W[o][i] + bias[o] (nn.Linear). */
static double *linear(const double *x, size_t rows, size_t in, size_t outn,
                      const float *W, const float *bias)
{
    double *y = malloc(rows * outn * sizeof *y);
    for (size_t r = 0; r < rows; ++r)
        for (size_t o = 0; o < outn; ++o) {
            double acc = bias ? bias[o] : 0.0;
            for (size_t i = 0; i < in; ++i)
                acc += x[r * in + i] * W[o * in + i];
            y[r * outn + o] = acc;
        }
    return y;
}

/* The score of (b, h, i, j) after scaling and masks; -inf when masked. */
static double score(const dims *d, const clattn_mha_call *c, const double *q,
                    const double *k, const uint8_t *kpm, const void *attn,
                    double scale, size_t b, size_t h, size_t i, size_t j)
{
    if (c->has_key_padding_mask && kpm[b * d->Skv + j])
        return -INFINITY;
    if (c->is_causal && j > i)
        return -INFINITY;
    double add = 0.0;
    if (c->attn_mask_type != CLATTN_MASK_NONE) {
        size_t idx = c->attn_mask_per_head
                         ? ((b * d->H + h) * d->Sq + i) * d->Skv + j
                         : i * d->Skv + j;
        if (c->attn_mask_type == CLATTN_MASK_BOOL) {
            if (((const uint8_t *)attn)[idx])
                return -INFINITY;
        } else {
            add = ((const float *)attn)[idx];
        }
    }
    const double *qi = q + row_of(d, b, i, d->Sq) * d->E + h * d->D;
    const double *kj = k + row_of(d, b, j, d->Skv) * d->E + h * d->D;
    double dot = 0.0;
    for (size_t f = 0; f < d->D; ++f)
        dot += qi[f] * kj[f];
    return dot * scale + add;
}

/* Softmax of one row with dropout; a fully masked row becomes zeros. */
static void softmax_row(double *s, size_t n, double p, uint64_t seed,
                        uint64_t offset, uint64_t first)
{
    double m = -INFINITY, sum = 0.0;
    for (size_t j = 0; j < n; ++j)
        m = s[j] > m ? s[j] : m;
    if (m == -INFINITY) {
        memset(s, 0, n * sizeof *s);
        return;
    }
    for (size_t j = 0; j < n; ++j)
        sum += exp(s[j] - m);
    for (size_t j = 0; j < n; ++j) {
        double v = exp(s[j] - m) / sum;
        if (p > 0.0)
            v = dropout_keep_ref(seed, offset, first + j, p) ? v / (1.0 - p)
                                                             : 0.0;
        s[j] = v;
    }
}

/* Attention per head into ctx [rows_q][E] (concatenated heads). */
static void attention(const dims *d, const clattn_mha_desc *desc,
                      const clattn_mha_call *c, const double *q,
                      const double *k, const double *v, const uint8_t *kpm,
                      const void *attn, uint64_t offset, double *ctx,
                      double *per_head)
{
    double scale = desc->scale != 0.0f
                       ? desc->scale
                       : (double)(float)(1.0 / sqrt((double)d->D));
    double *s = malloc(d->Skv * sizeof *s);
    for (size_t b = 0; b < d->B; ++b)
        for (size_t h = 0; h < d->H; ++h)
            for (size_t i = 0; i < d->Sq; ++i) {
                for (size_t j = 0; j < d->Skv; ++j)
                    s[j] = score(d, c, q, k, kpm, attn, scale, b, h, i, j);
                uint64_t first = ((b * d->H + h) * d->Sq + i) * d->Skv;
                softmax_row(s, d->Skv, desc->dropout_p, desc->dropout_seed,
                            offset, first);
                memcpy(per_head + first, s, d->Skv * sizeof *s);
                double *o = ctx + row_of(d, b, i, d->Sq) * d->E + h * d->D;
                for (size_t f = 0; f < d->D; ++f) {
                    double acc = 0.0;
                    for (size_t j = 0; j < d->Skv; ++j)
                        acc += s[j] *
                               v[row_of(d, b, j, d->Skv) * d->E + h * d->D + f];
                    o[f] = acc;
                }
            }
    free(s);
}

void ref_mha(const clattn_mha_desc *desc, const clattn_mha_weights *w,
             const clattn_mha_call *c, const float *query, const float *key,
             const float *value, const uint8_t *kpm, const void *attn_mask,
             uint64_t offset, double *out, double *weights)
{
    dims d = {desc->embed_dim,
              desc->num_heads,
              desc->embed_dim / desc->num_heads,
              desc->kdim ? desc->kdim : desc->embed_dim,
              desc->vdim ? desc->vdim : desc->embed_dim,
              c->batch,
              c->seq_q,
              c->seq_kv,
              desc->batch_first != 0};
    size_t E = d.E, rq = d.B * d.Sq, rkv = d.B * d.Skv;
    double *xq = to_double(query, rq * E), *xk = to_double(key, rkv * d.kdim),
           *xv = to_double(value, rkv * d.vdim);
    if (desc->pre_layernorm) {
        double eps = desc->layernorm_eps != 0.0f ? desc->layernorm_eps : 1e-5;
        layer_norm(xq, rq, E, w->norm_weight, w->norm_bias, eps);
        layer_norm(xk, rkv, E, w->norm_weight, w->norm_bias, eps);
        layer_norm(xv, rkv, E, w->norm_weight, w->norm_bias, eps);
    }
    const float *wq = w->in_proj_weight ? w->in_proj_weight : w->q_proj_weight;
    const float *wk =
        w->in_proj_weight ? w->in_proj_weight + E * E : w->k_proj_weight;
    const float *wv =
        w->in_proj_weight ? w->in_proj_weight + 2 * E * E : w->v_proj_weight;
    const float *bi = w->in_proj_bias;
    double *q = linear(xq, rq, E, E, wq, bi);
    double *k = linear(xk, rkv, d.kdim, E, wk, bi ? bi + E : NULL);
    double *v = linear(xv, rkv, d.vdim, E, wv, bi ? bi + 2 * E : NULL);
    /* rotary embeddings per head: query i at position i, key j at j */
    for (size_t b = 0; b < d.B; ++b)
        for (size_t h = 0; h < d.H; ++h) {
            for (size_t i = 0; i < d.Sq; ++i)
                ref_rope_apply(&desc->rope, (long)i,
                               q + row_of(&d, b, i, d.Sq) * E + h * d.D, d.D);
            for (size_t j = 0; j < d.Skv; ++j)
                ref_rope_apply(&desc->rope, (long)j,
                               k + row_of(&d, b, j, d.Skv) * E + h * d.D, d.D);
        }
    double *ctx = malloc(rq * E * sizeof *ctx);
    size_t plane = d.Sq * d.Skv;
    double *per_head = malloc(d.B * d.H * plane * sizeof *per_head);
    attention(&d, desc, c, q, k, v, kpm, attn_mask, offset, ctx, per_head);
    if (desc->no_out_proj) {
        memcpy(out, ctx, rq * E * sizeof *out);
    } else {
        double *o = linear(ctx, rq, E, E, w->out_proj_weight, w->out_proj_bias);
        memcpy(out, o, rq * E * sizeof *out);
        free(o);
    }
    if (weights && c->need_weights == CLATTN_NEED_WEIGHTS_PER_HEAD)
        memcpy(weights, per_head, d.B * d.H * plane * sizeof *weights);
    if (weights && c->need_weights == CLATTN_NEED_WEIGHTS_AVERAGE)
        for (size_t b = 0; b < d.B; ++b)
            for (size_t p = 0; p < plane; ++p) {
                double acc = 0.0;
                for (size_t h = 0; h < d.H; ++h)
                    acc += per_head[(b * d.H + h) * plane + p];
                weights[b * plane + p] = acc / (double)d.H;
            }
    free(xq), free(xk), free(xv), free(q), free(k), free(v), free(ctx);
    free(per_head);
}
