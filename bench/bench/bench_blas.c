#include "bench_blas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CLATTN_BENCH_OPENBLAS
#include <cblas.h>

int bench_blas_available(char *note, size_t cap, int *threads)
{
    *threads = openblas_get_num_threads();
    snprintf(note, cap, "%s", openblas_get_config());
    return 1;
}

typedef struct sgemm_call {
    int n;
    const float *a, *b;
    float *c;
} sgemm_call;

static int sgemm_once(void *arg, double *event_ms)
{
    sgemm_call *s = arg;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->n, s->n, s->n,
                1.0f, s->a, s->n, s->b, s->n, 0.0f, s->c, s->n);
    *event_ms = -1.0;
    return 0;
}

int bench_blas_sgemm(int n, const bench_method *m, bench_timing *t)
{
    size_t elems = (size_t)n * (size_t)n;
    float *a = malloc(elems * sizeof *a), *b = malloc(elems * sizeof *b),
          *c = malloc(elems * sizeof *c);
    int rc = -1;
    if (a && b && c) {
        for (size_t i = 0; i < elems; ++i) {
            a[i] = (float)(i % 17) * 0.125f - 1.0f;
            b[i] = (float)(i % 13) * 0.125f - 0.75f;
        }
        sgemm_call s = {n, a, b, c};
        rc = bench_measure(m, sgemm_once, &s, t) ? -1 : 0;
    }
    free(a);
    free(b);
    free(c);
    return rc;
}

/* Softmax of one row of masked scores; keys past `allowed` are masked.
   A row with no allowed key is all zeros, as clattn and PyTorch give. */
static void softmax_row(float *row, size_t n, size_t allowed)
{
    if (allowed == 0) {
        memset(row, 0, n * sizeof *row);
        return;
    }
    float max = row[0];
    for (size_t j = 1; j < allowed; ++j)
        max = row[j] > max ? row[j] : max;
    float sum = 0.0f;
    for (size_t j = 0; j < allowed; ++j)
        sum += row[j] = expf(row[j] - max);
    float inv = 1.0f / sum;
    for (size_t j = 0; j < allowed; ++j)
        row[j] *= inv;
    for (size_t j = allowed; j < n; ++j)
        row[j] = 0.0f;
}

/* Keys row i may attend, as the library's causal alignments define. */
static size_t allowed_keys(const bench_case *c, size_t i)
{
    if (c->causal == CLATTN_CAUSAL_NONE)
        return c->seq_kv;
    long shift = c->causal == CLATTN_CAUSAL_BOTTOM_RIGHT
                     ? (long)c->seq_kv - (long)c->seq_q
                     : 0;
    long keys = (long)i + 1 + shift;
    return keys < 0 ? 0 : keys > (long)c->seq_kv ? c->seq_kv : (size_t)keys;
}

static void one_head(const bench_case *c, const float *q, const float *k,
                     const float *v, float *scores, float *o)
{
    const int sq = (int)c->seq_q, skv = (int)c->seq_kv, d = (int)c->head_dim;
    const float scale = (float)(1.0 / sqrt((double)c->head_dim));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, sq, skv, d, scale, q,
                d, k, d, 0.0f, scores, skv);
    for (size_t i = 0; i < c->seq_q; ++i)
        softmax_row(scores + i * c->seq_kv, c->seq_kv, allowed_keys(c, i));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sq, d, skv, 1.0f,
                scores, skv, v, d, 0.0f, o, d);
}

int bench_blas_attention_call(void *arg, double *event_ms)
{
    bench_blas_attention *a = arg;
    const bench_case *c = a->c;
    size_t qh = c->seq_q * c->head_dim, kvh = c->seq_kv * c->head_dim;
    size_t group = c->heads_q / c->heads_kv;
    for (size_t b = 0; b < c->batch; ++b)
        for (size_t h = 0; h < c->heads_q; ++h) {
            size_t qi = b * c->heads_q + h, kvi = b * c->heads_kv + h / group;
            one_head(c, a->in->q + qi * qh, a->in->k + kvi * kvh,
                     a->in->v + kvi * kvh, a->scores, a->out + qi * qh);
        }
    *event_ms = -1.0;
    return 0;
}

int bench_blas_projections_call(void *arg, double *event_ms)
{
    bench_layer_blas *p = arg;
    int rows = (int)p->rows, e = (int)p->embed;
    /* nn.Linear: y = x W^T, W [out][in], as the layer runs them. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, 3 * e, e, 1.0f,
                p->x, e, p->w_qkv, e, 0.0f, p->qkv, 3 * e);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, e, e, 1.0f, p->x,
                e, p->w_out, e, 0.0f, p->y, e);
    *event_ms = -1.0;
    return 0;
}

#else /* built without OpenBLAS */

int bench_blas_available(char *note, size_t cap, int *threads)
{
    *threads = 0;
    snprintf(note, cap,
             "clattn-bench was built without OpenBLAS "
             "(install libopenblas-dev and reconfigure)");
    return 0;
}

int bench_blas_sgemm(int n, const bench_method *m, bench_timing *t)
{
    (void)n, (void)m, (void)t;
    return -1;
}

int bench_blas_attention_call(void *a, double *event_ms)
{
    (void)a;
    *event_ms = -1.0;
    return -1;
}

int bench_blas_projections_call(void *p, double *event_ms)
{
    (void)p;
    *event_ms = -1.0;
    return -1;
}

#endif

int bench_blas_attention_init(bench_blas_attention *a, const bench_case *c,
                              const bench_inputs *in)
{
    a->c = c;
    a->in = in;
    a->out = malloc(bench_case_o_elems(c) * sizeof *a->out);
    a->scores = malloc(c->seq_q * c->seq_kv * sizeof *a->scores);
    if (!a->out || !a->scores) {
        bench_blas_attention_free(a);
        return -1;
    }
    return 0;
}

void bench_blas_attention_free(bench_blas_attention *a)
{
    free(a->out);
    free(a->scores);
    a->out = a->scores = NULL;
}
