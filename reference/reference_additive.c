/* Double-precision additive, concat and SE-gate layers (see
   reference_additive.h). */
#include "reference_additive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* y[n] = W[n][0..k) . x (+ b[n]) for a row-major W of row length ld. */
static void linear(const float *w, size_t ld, const float *b, size_t n,
                   const double *x, size_t k, double *y)
{
    for (size_t r = 0; r < n; ++r) {
        double s = b ? b[r] : 0.0;
        for (size_t c = 0; c < k; ++c)
            s += (double)w[r * ld + c] * x[c];
        y[r] = s;
    }
}

static void widen(const float *x, size_t n, double *y)
{
    for (size_t i = 0; i < n; ++i)
        y[i] = x[i];
}

/* In place; -INFINITY entries are masked; all masked gives zeros. */
static void softmax(double *s, size_t n)
{
    double m = -INFINITY;
    for (size_t j = 0; j < n; ++j)
        m = s[j] > m ? s[j] : m;
    if (m == -INFINITY) {
        memset(s, 0, n * sizeof *s);
        return;
    }
    double sum = 0.0;
    for (size_t j = 0; j < n; ++j)
        sum += s[j] = exp(s[j] - m);
    for (size_t j = 0; j < n; ++j)
        s[j] /= sum;
}

void ref_additive(const clattn_additive_desc *desc,
                  const clattn_additive_weights *w, size_t batch, size_t sq,
                  size_t skv, const float *query, const float *keys,
                  const float *values, const uint8_t *mask, double *context,
                  double *weights)
{
    size_t dq = desc->query_dim, dk = desc->key_dim, a_dim = desc->attn_dim;
    size_t dv = desc->value_dim ? desc->value_dim : dk;
    if (!values)
        values = keys;
    double *x = malloc((dq > dk ? dq : dk) * sizeof *x);
    double *qp = malloc(sq * a_dim * sizeof *qp);
    double *kp = malloc(skv * a_dim * sizeof *kp);
    double *s = malloc(skv * sizeof *s);
    for (size_t b = 0; b < batch; ++b) {
        for (size_t i = 0; i < sq; ++i) {
            widen(query + (b * sq + i) * dq, dq, x);
            linear(w->wa_weight, dq, w->wa_bias, a_dim, x, dq, qp + i * a_dim);
        }
        for (size_t j = 0; j < skv; ++j) {
            widen(keys + (b * skv + j) * dk, dk, x);
            linear(w->ua_weight, dk, w->ua_bias, a_dim, x, dk, kp + j * a_dim);
        }
        for (size_t i = 0; i < sq; ++i) {
            for (size_t j = 0; j < skv; ++j) {
                double e = w->va_bias ? w->va_bias[0] : 0.0;
                for (size_t a = 0; a < a_dim; ++a)
                    e += w->va_weight[a] *
                         tanh(qp[i * a_dim + a] + kp[j * a_dim + a]);
                s[j] = mask && mask[b * skv + j] ? -INFINITY : e;
            }
            softmax(s, skv);
            double *c = context + (b * sq + i) * dv;
            for (size_t d = 0; d < dv; ++d) {
                double acc = 0.0;
                for (size_t j = 0; j < skv; ++j)
                    acc += s[j] * values[(b * skv + j) * dv + d];
                c[d] = acc;
            }
            if (weights)
                memcpy(weights + (b * sq + i) * skv, s, skv * sizeof *s);
        }
    }
    free(x), free(qp), free(kp), free(s);
}

void ref_concat(const clattn_concat_desc *desc, const clattn_concat_weights *w,
                size_t batch, const float *query, const float *key,
                const float *values, double *out, double *weights)
{
    size_t dq = desc->query_dim, dk = desc->key_dim, dv = desc->value_dim;
    size_t l_dim = desc->max_length;
    /* The concatenations, stored here (the library never stores them). */
    double *qk = malloc((dq + dk) * sizeof *qk);
    double *qa = malloc((dq + dv) * sizeof *qa);
    double *s = malloc(l_dim * sizeof *s);
    for (size_t b = 0; b < batch; ++b) {
        widen(query + b * dq, dq, qk);
        widen(key + b * dk, dk, qk + dq);
        linear(w->attn_weight, dq + dk, w->attn_bias, l_dim, qk, dq + dk, s);
        softmax(s, l_dim);
        widen(query + b * dq, dq, qa);
        for (size_t d = 0; d < dv; ++d) {
            double acc = 0.0;
            for (size_t j = 0; j < l_dim; ++j)
                acc += s[j] * values[(b * l_dim + j) * dv + d];
            qa[dq + d] = acc;
        }
        linear(w->combine_weight, dq + dv, w->combine_bias, desc->out_dim, qa,
               dq + dv, out + b * desc->out_dim);
        if (weights)
            memcpy(weights + b * l_dim, s, l_dim * sizeof *s);
    }
    free(qk), free(qa), free(s);
}

void ref_se_gate(size_t embed_dim, const clattn_se_gate_weights *w,
                 size_t tokens, const float *x, double *out)
{
    size_t e = embed_dim;
    double *h = malloc(e * sizeof *h), *g = malloc(e * sizeof *g);
    for (size_t t = 0; t < tokens; ++t) {
        const float *row = x + t * e;
        double m = 0.0;
        for (size_t f = 0; f < e; ++f)
            m += row[f];
        m /= (double)e;
        for (size_t f = 0; f < e; ++f) {
            double z = (double)w->fc1_weight[f] * m + w->fc1_bias[f];
            h[f] = z > 0.0 ? z : 0.0;
        }
        linear(w->fc2_weight, e, w->fc2_bias, e, h, e, g);
        for (size_t f = 0; f < e; ++f)
            out[t * e + f] = row[f] / (1.0 + exp(-g[f]));
    }
    free(h), free(g);
}
