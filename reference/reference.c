#include "reference.h"
#include "philox_ref.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static int is_masked(const clattn_sdpa_desc *d, const void *mask, size_t b,
                     size_t h, size_t i, size_t j, double *add)
{
    *add = 0.0;
    if (d->key_lengths && (long)j >= (long)d->key_lengths[b])
        return 1;
    if (d->causal == CLATTN_CAUSAL_TOP_LEFT && j > i)
        return 1;
    if (d->causal == CLATTN_CAUSAL_BOTTOM_RIGHT &&
        (long)j > (long)i + (long)d->seq_kv - (long)d->seq_q)
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
    for (size_t b = 0; b < B; ++b)
        for (size_t h = 0; h < Hq; ++h) {
            size_t hk = h / (Hq / Hkv);
            for (size_t i = 0; i < Sq; ++i) {
                const float *qi = q + ((b * Hq + h) * Sq + i) * D;
                double m = -INFINITY;
                for (size_t j = 0; j < Skv; ++j) {
                    double add;
                    if (is_masked(d, mask, b, h, i, j, &add)) {
                        s[j] = -INFINITY;
                        continue;
                    }
                    const float *kj = k + ((b * Hkv + hk) * Skv + j) * D;
                    double dot = 0.0;
                    for (size_t f = 0; f < D; ++f)
                        dot += (double)qi[f] * kj[f];
                    s[j] = dot * scale + add;
                    if (s[j] > m)
                        m = s[j];
                }
                double sum = 0.0;
                if (m != -INFINITY)
                    for (size_t j = 0; j < Skv; ++j)
                        sum += exp(s[j] - m);
                size_t row = (b * Hq + h) * Sq + i;
                if (lse)
                    lse[row] = m == -INFINITY ? -INFINITY : m + log(sum);
                double *o = out + row * Dv;
                for (size_t f = 0; f < Dv; ++f)
                    o[f] = 0.0;
                for (size_t j = 0; j < Skv; ++j) {
                    double p = m == -INFINITY ? 0.0 : exp(s[j] - m) / sum;
                    if (d->dropout_p > 0.0f)
                        p = dropout_keep_ref(d->dropout_seed, d->dropout_offset,
                                             row * Skv + j, d->dropout_p)
                                ? p / (1.0 - (double)d->dropout_p)
                                : 0.0;
                    if (probs)
                        probs[row * Skv + j] = p;
                    const float *vj = v + ((b * Hkv + hk) * Skv + j) * Dv;
                    for (size_t f = 0; f < Dv; ++f)
                        o[f] += p * vj[f];
                }
            }
        }
    free(s);
}
