#include "reference.h"
#include "philox_ref.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Sequence b's geometry: its rows and keys, and where its first query
   row and key lie in the host arrays' sequence dimension (a packed batch:
   batch 1, the packed tokens; else batch b's own rows). */
typedef struct ref_seq {
    size_t rows, keys, q_first, k_first, q_total, k_total, batch_at;
} ref_seq;

static ref_seq seq_of(const clattn_sdpa_desc *d, size_t b)
{
    ref_seq g;
    if (d->cu_seqlens_q) {
        const int32_t *cq = d->cu_seqlens_q, *ck = d->cu_seqlens_k;
        g.rows = (size_t)(cq[b + 1] - cq[b]);
        g.keys = (size_t)(ck[b + 1] - ck[b]);
        g.q_first = (size_t)cq[b];
        g.k_first = (size_t)ck[b];
        g.q_total = (size_t)cq[d->batch];
        g.k_total = (size_t)ck[d->batch];
        g.batch_at = 0;
    } else {
        g.rows = d->seq_q;
        g.keys = d->seq_kv;
        g.q_first = g.k_first = 0;
        g.q_total = d->seq_q;
        g.k_total = d->seq_kv;
        g.batch_at = b;
    }
    return g;
}

/* Key j of row i of sequence b (geometry g). The causal alignment is the
   sequence's own: a packed batch's lengths, else seq_q and seq_kv. */
static int is_masked(const clattn_sdpa_desc *d, const ref_seq *g,
                     const void *mask, size_t b, size_t h, size_t i, size_t j,
                     double *add)
{
    *add = 0.0;
    if (j >= g->keys)
        return 1;
    if (d->key_lengths && (long)j >= (long)d->key_lengths[b])
        return 1;
    if (d->causal == CLATTN_CAUSAL_TOP_LEFT && j > i)
        return 1;
    if (d->causal == CLATTN_CAUSAL_BOTTOM_RIGHT &&
        (long)j > (long)i + (long)g->keys - (long)g->rows)
        return 1;
    if (d->mask_type == CLATTN_MASK_NONE)
        return 0;
    const size_t *md = d->mask_dims;
    size_t mb = md[0] == 1 ? 0 : b, mh = md[1] == 1 ? 0 : h,
           mi = md[2] == 1 ? 0 : i;
    size_t idx = ((mb * md[1] + mh) * md[2] + mi) * md[3] + j;
    if (d->mask_type == CLATTN_MASK_BOOL)
        return ((const uint8_t *)mask)[idx] == 0;
    *add = ((const float *)mask)[idx];
    return 0;
}

void ref_rope_apply(const clattn_rope *rope, long pos, double *x, size_t dim)
{
    if (rope->style == CLATTN_ROPE_NONE)
        return;
    const size_t rd = rope->rotary_dim ? rope->rotary_dim : dim;
    const double theta = rope->theta != 0.0f ? rope->theta : 10000.0;
    for (size_t i = 0; i < rd / 2; ++i) {
        const size_t a = rope->style == CLATTN_ROPE_INTERLEAVED ? 2 * i : i;
        const size_t b =
            rope->style == CLATTN_ROPE_INTERLEAVED ? 2 * i + 1 : i + rd / 2;
        const double angle =
            (double)pos * pow(theta, -(double)(2 * i) / (double)rd);
        const double c = cos(angle), sn = sin(angle);
        const double xa = x[a], xb = x[b];
        x[a] = xa * c - xb * sn;
        x[b] = xb * c + xa * sn;
    }
}

void ref_rope_row(const clattn_rope *rope, long pos, const float *x, size_t dim,
                  double *out)
{
    for (size_t f = 0; f < dim; ++f)
        out[f] = x[f];
    ref_rope_apply(rope, pos, out, dim);
}

void ref_sdpa(const clattn_sdpa_desc *d, const float *q, const float *k,
              const float *v, const void *mask, double *out, double *probs,
              double *lse)
{
    const size_t B = d->batch, Hq = d->heads_q,
                 Hkv = d->heads_kv ? d->heads_kv : d->heads_q, Sq = d->seq_q,
                 Skv = d->seq_kv, D = d->head_dim,
                 Dv = d->head_dim_v ? d->head_dim_v : d->head_dim;
    /* The library resolves the default scale in float; so does this. */
    const double scale =
        d->scale != 0.0f ? d->scale : (double)(float)(1.0 / sqrt((double)D));
    double *s = malloc(Skv * sizeof *s);
    /* a row of Q and every key of the head, rotated (or as given) */
    double *qi = malloc(D * sizeof *qi);
    double *keys = malloc(Skv * D * sizeof *keys);
    for (size_t b = 0; b < B; ++b)
        for (size_t h = 0; h < Hq; ++h) {
            const ref_seq g = seq_of(d, b);
            size_t hk = h / (Hq / Hkv);
            /* rows and keys in the arrays: [batch_at][head][first + i] */
            const size_t q_row0 = (g.batch_at * Hq + h) * g.q_total + g.q_first;
            const size_t k_row0 =
                (g.batch_at * Hkv + hk) * g.k_total + g.k_first;
            const clattn_rope none = {CLATTN_ROPE_NONE, 0, 0.0f};
            const clattn_rope *rope_k = d->rope_k ? &d->rope : &none;
            for (size_t j = 0; j < g.keys; ++j)
                ref_rope_row(rope_k, (long)j, k + (k_row0 + j) * D, D,
                             keys + j * D);
            const long q_pos0 =
                d->rope_q_positions ? d->rope_q_positions[b] : 0;
            for (size_t i = 0; i < g.rows; ++i) {
                ref_rope_row(&d->rope, q_pos0 + (long)i, q + (q_row0 + i) * D,
                             D, qi);
                double m = -INFINITY;
                for (size_t j = 0; j < Skv; ++j) {
                    double add;
                    if (is_masked(d, &g, mask, b, h, i, j, &add)) {
                        s[j] = -INFINITY;
                        continue;
                    }
                    const double *kj = keys + j * D;
                    double dot = 0.0;
                    for (size_t f = 0; f < D; ++f)
                        dot += qi[f] * kj[f];
                    s[j] = dot * scale + add;
                    if (s[j] > m)
                        m = s[j];
                }
                double sum = 0.0;
                if (m != -INFINITY)
                    for (size_t j = 0; j < Skv; ++j)
                        sum += exp(s[j] - m);
                /* probs and the dropout positions: [b][h][i][j] of the
                   padded batch */
                const size_t padded = (b * Hq + h) * Sq + i;
                const size_t row = q_row0 + i;
                if (lse)
                    lse[row] = m == -INFINITY ? -INFINITY : m + log(sum);
                double *o = out + row * Dv;
                for (size_t f = 0; f < Dv; ++f)
                    o[f] = 0.0;
                for (size_t j = 0; j < Skv; ++j) {
                    double p = m == -INFINITY ? 0.0 : exp(s[j] - m) / sum;
                    if (d->dropout_p > 0.0f)
                        p = dropout_keep_ref(d->dropout_seed, d->dropout_offset,
                                             padded * Skv + j, d->dropout_p)
                                ? p / (1.0 - (double)d->dropout_p)
                                : 0.0;
                    if (probs)
                        probs[padded * Skv + j] = p;
                    if (j >= g.keys)
                        continue; /* a packed sequence's: no such key row */
                    const float *vj = v + (k_row0 + j) * Dv;
                    for (size_t f = 0; f < Dv; ++f)
                        o[f] += p * vj[f];
                }
            }
        }
    free(s);
    free(qi);
    free(keys);
}
