#include "bench_sdpa.h"

#include "bench_timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) * (1.0 / 16777216.0) * 4.0 - 2.0);
    }
}

/* fp32 to fp16 (IEEE binary16) or bf16 bits, round to nearest even, for
   the inputs' range (|x| < 2: no overflow, subnormals flushed to zero
   would be wrong only below 6e-5, which rounding to fp16 handles too). */
static uint16_t to_half_bits(float x, clattn_dtype dtype)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (dtype == CLATTN_DTYPE_BF16)
        return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const int exp = (int)((u >> 23) & 0xff) - 112;
    const uint32_t mant = u & 0x7fffffu;
    if (exp <= 0) { /* below fp16's normal range: subnormal or zero */
        const int shift = 14 - exp;
        if (shift > 24)
            return (uint16_t)sign;
        const uint32_t m = mant | 0x800000u, half = m >> shift,
                       rest = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        return (uint16_t)(sign |
                          (half + (rest > mid || (rest == mid && (half & 1)))));
    }
    const uint32_t half = ((uint32_t)exp << 10) | (mant >> 13),
                   rest = mant & 0x1fffu;
    return (uint16_t)(sign | (half + (rest > 0x1000u ||
                                      (rest == 0x1000u && (half & 1)))));
}

static float from_half_bits(uint16_t h, clattn_dtype dtype)
{
    float f;
    if (dtype == CLATTN_DTYPE_BF16) {
        const uint32_t u = (uint32_t)h << 16;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    f = exp ? ldexpf((float)(mant | 0x400u), (int)exp - 25)
            : ldexpf((float)mant, -24);
    return h & 0x8000u ? -f : f;
}

/* x rounded to dtype in place (what the device will read), and its bits. */
static uint16_t *round_to_dtype(float *x, size_t n, clattn_dtype dtype)
{
    uint16_t *w = malloc(n * sizeof *w);
    if (w)
        for (size_t i = 0; i < n; ++i) {
            w[i] = to_half_bits(x[i], dtype);
            x[i] = from_half_bits(w[i], dtype);
        }
    return w;
}

int bench_inputs_make(const bench_case *c, bench_inputs *in)
{
    size_t nq = bench_case_q_elems(c), nkv = bench_case_kv_elems(c);
    in->q = malloc(nq * sizeof(float));
    in->k = malloc(nkv * sizeof(float));
    in->v = malloc(nkv * sizeof(float));
    if (!in->q || !in->k || !in->v) {
        bench_inputs_free(in);
        return -1;
    }
    fill(in->q, nq, 1);
    fill(in->k, nkv, 2);
    fill(in->v, nkv, 3);
    in->k16 = in->v16 = NULL;
    if (c->kv_dtype != CLATTN_DTYPE_FP32) {
        in->k16 = round_to_dtype(in->k, nkv, c->kv_dtype);
        in->v16 = round_to_dtype(in->v, nkv, c->kv_dtype);
        if (!in->k16 || !in->v16) {
            bench_inputs_free(in);
            return -1;
        }
    }
    return 0;
}

void bench_inputs_free(bench_inputs *in)
{
    free(in->q);
    free(in->k);
    free(in->v);
    free(in->k16);
    free(in->v16);
    in->q = in->k = in->v = NULL;
    in->k16 = in->v16 = NULL;
}

static cl_mem make_buffer(cl_context cl, size_t bytes, const void *src,
                          cl_int *err)
{
    cl_mem_flags flags =
        src ? CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR : CL_MEM_READ_WRITE;
    return clCreateBuffer(cl, flags, bytes, (void *)src, err);
}

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        const size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A paged case's table ([batch][blocks per sequence]) and its pool of K
   or V (src [batch][heads_kv][seq_kv][dim] of esize-byte elements) laid
   out [block][head][slot][dim]: logical block l is physical block
   l * stride mod the block count, a stride coprime with it, so
   neighbouring blocks of a sequence lie far apart as in a serving
   engine's pool. */
static void *paged_pool(const bench_case *c, const void *src, size_t esize,
                        int32_t *table)
{
    const size_t bs = c->kv_block, per_seq = (c->seq_kv + bs - 1) / bs;
    const size_t nb = c->batch * per_seq, H = c->heads_kv, D = c->head_dim;
    size_t stride = nb / 2 + 1;
    while (gcd(stride, nb) != 1)
        ++stride;
    unsigned char *pool = calloc(nb * H * bs * D, esize);
    if (!pool)
        return NULL;
    const unsigned char *s = src;
    for (size_t l = 0; l < nb; ++l) {
        const size_t blk = (l * stride) % nb, b = l / per_seq;
        table[l] = (int32_t)blk;
        for (size_t h = 0; h < H; ++h)
            for (size_t t = 0; t < bs; ++t) {
                const size_t j = (l % per_seq) * bs + t;
                if (j < c->seq_kv)
                    memcpy(pool + ((blk * H + h) * bs + t) * D * esize,
                           s + ((b * H + h) * c->seq_kv + j) * D * esize,
                           D * esize);
            }
    }
    return pool;
}

int bench_sdpa_setup(bench_sdpa *b, clattn_context *ctx, const bench_case *c,
                     const bench_inputs *in)
{
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
    clattn_info info;
    if (clattn_context_info(ctx, &info) != CLATTN_SUCCESS) {
        snprintf(b->error, sizeof b->error, "clattn_context_info: %s",
                 clattn_context_last_error(ctx));
        return -1;
    }
    b->queue = info.queue;
    bench_case_desc(c, &b->desc);
    size_t nq = bench_case_q_elems(c), nkv = bench_case_kv_elems(c);
    b->out_elems = bench_case_o_elems(c);
    const int half = c->kv_dtype != CLATTN_DTYPE_FP32;
    const size_t esize = half ? sizeof(uint16_t) : sizeof(float);
    const void *k_src = half ? (const void *)in->k16 : in->k;
    const void *v_src = half ? (const void *)in->v16 : in->v;
    void *k_pool = NULL, *v_pool = NULL;
    size_t kv_bytes = nkv * esize;
    const size_t per_seq =
        c->kv_block ? (c->seq_kv + c->kv_block - 1) / c->kv_block : 0;
    if (c->kv_block) {
        b->kv_table = malloc(c->batch * per_seq * sizeof *b->kv_table);
        if (b->kv_table) {
            k_pool = paged_pool(c, k_src, esize, b->kv_table);
            v_pool = paged_pool(c, v_src, esize, b->kv_table);
        }
        if (!k_pool || !v_pool) {
            free(k_pool);
            free(v_pool);
            snprintf(b->error, sizeof b->error,
                     "out of host memory for the paged cache");
            bench_sdpa_teardown(b);
            return -1;
        }
        kv_bytes = c->batch * per_seq * c->kv_block * c->heads_kv *
                   c->head_dim * esize;
        k_src = k_pool;
        v_src = v_pool;
        b->desc.kv_pages.block_size = c->kv_block;
        b->desc.kv_pages.num_blocks = c->batch * per_seq;
        b->desc.kv_pages.blocks_per_seq = per_seq;
        b->desc.kv_pages.block_table = b->kv_table;
    }
    b->caller_bytes = (nq + b->out_elems) * sizeof(float) + 2 * kv_bytes;
    cl_int e[5] = {CL_SUCCESS, CL_SUCCESS, CL_SUCCESS, CL_SUCCESS, CL_SUCCESS};
    cl_mem q = make_buffer(info.cl_ctx, nq * sizeof(float), in->q, &e[0]);
    cl_mem k = make_buffer(info.cl_ctx, kv_bytes, k_src, &e[1]);
    cl_mem v = make_buffer(info.cl_ctx, kv_bytes, v_src, &e[2]);
    free(k_pool);
    free(v_pool);
    cl_mem o =
        make_buffer(info.cl_ctx, b->out_elems * sizeof(float), NULL, &e[3]);
    if (c->probs) {
        const size_t np = c->batch * c->heads_q * c->seq_q * c->seq_kv;
        size_t dp[4] = {c->batch, c->heads_q, c->seq_q, c->seq_kv};
        cl_mem pm = make_buffer(info.cl_ctx, np * sizeof(float), NULL, &e[4]);
        clattn_tensor_contiguous(&b->t.probs, pm, 0, dp);
        b->caller_bytes += np * sizeof(float);
    }
    size_t dq[4] = {c->batch, c->heads_q, c->seq_q, c->head_dim};
    size_t dkv[4] = {c->batch, c->heads_kv, c->seq_kv, c->head_dim};
    if (c->kv_block) { /* the pool: [block][head][slot][dim] */
        dkv[0] = c->batch * per_seq;
        dkv[2] = c->kv_block;
    }
    clattn_tensor_contiguous(&b->t.q, q, 0, dq);
    clattn_tensor_contiguous(&b->t.k, k, 0, dkv);
    clattn_tensor_contiguous(&b->t.v, v, 0, dkv);
    clattn_tensor_contiguous(&b->t.out, o, 0, dq);
    for (int i = 0; i < 5; ++i)
        if (e[i] != CL_SUCCESS) {
            snprintf(b->error, sizeof b->error,
                     "clCreateBuffer failed (%d) for %zu bytes of Q, K, V, "
                     "O (and the probabilities)",
                     (int)e[i], b->caller_bytes);
            bench_sdpa_teardown(b);
            return -1;
        }
    return 0;
}

void bench_sdpa_teardown(bench_sdpa *b)
{
    cl_mem all[5] = {b->t.q.buffer, b->t.k.buffer, b->t.v.buffer,
                     b->t.out.buffer, b->t.probs.buffer};
    if (b->queue)
        clFinish(b->queue);
    for (int i = 0; i < 5; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    memset(&b->t, 0, sizeof b->t);
    free(b->kv_table);
    b->kv_table = NULL;
}

int bench_sdpa_poison_output(bench_sdpa *b)
{
    const float nan = NAN;
    cl_int err =
        clEnqueueFillBuffer(b->queue, b->t.out.buffer, &nan, sizeof nan, 0,
                            b->out_elems * sizeof nan, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clFinish(b->queue);
    if (err != CL_SUCCESS)
        snprintf(b->error, sizeof b->error, "clEnqueueFillBuffer failed (%d)",
                 (int)err);
    return err == CL_SUCCESS ? 0 : -1;
}

/* A marker before the call and the call's own event bracket every kernel
   it enqueues; the wait makes the wall clock around it meaningful too. */
int bench_sdpa_call(void *arg, double *event_ms)
{
    bench_sdpa *b = arg;
    cl_event start = NULL, done = NULL;
    *event_ms = -1.0;
    if (clEnqueueMarkerWithWaitList(b->queue, 0, NULL, &start) != CL_SUCCESS)
        start = NULL;
    b->status = clattn_sdpa(b->ctx, &b->desc, &b->t, b->path, 0, NULL, &done);
    if (b->status != CLATTN_SUCCESS) {
        snprintf(b->error, sizeof b->error, "%s: %s",
                 clattn_status_string(b->status),
                 clattn_context_last_error(b->ctx));
    } else {
        cl_int err = clWaitForEvents(1, &done);
        cl_int exec = CL_COMPLETE;
        clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec,
                       &exec, NULL);
        if (err != CL_SUCCESS || exec < 0) {
            b->status = CLATTN_ERROR_OPENCL;
            snprintf(b->error, sizeof b->error,
                     "the call's work failed on the device (wait %d, "
                     "status %d)",
                     (int)err, (int)exec);
        } else if (start) {
            *event_ms = bench_event_span_ms(start, done);
        }
        clReleaseEvent(done);
    }
    if (start)
        clReleaseEvent(start);
    return b->status != CLATTN_SUCCESS;
}

int bench_sdpa_read_output(bench_sdpa *b, float *out)
{
    cl_int err =
        clEnqueueReadBuffer(b->queue, b->t.out.buffer, CL_TRUE, 0,
                            b->out_elems * sizeof(float), out, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        snprintf(b->error, sizeof b->error, "clEnqueueReadBuffer failed (%d)",
                 (int)err);
    return err == CL_SUCCESS ? 0 : -1;
}

static void compare_one(double got, double want, double atol, double rtol,
                        bench_compare *r)
{
    double diff = fabs(got - want);
    if (!(diff <= atol + rtol * fabs(want)))
        ++r->bad;
    if (diff > r->max_abs_err || isnan(diff))
        r->max_abs_err = isnan(diff) ? INFINITY : diff;
}

/* want is wf or wd, whichever is not NULL: the oracle's own precision. */
static void compare_all(const float *got, const float *wf, const double *wd,
                        size_t n, double atol, double rtol, bench_compare *r)
{
    r->max_abs_err = 0.0;
    r->bad = 0;
    for (size_t i = 0; i < n; ++i)
        compare_one(got[i], wf ? (double)wf[i] : wd[i], atol, rtol, r);
}

void bench_compare_float(const float *got, const float *want, size_t n,
                         double atol, double rtol, bench_compare *r)
{
    compare_all(got, want, NULL, n, atol, rtol, r);
}

void bench_compare_double(const float *got, const double *want, size_t n,
                          double atol, double rtol, bench_compare *r)
{
    compare_all(got, NULL, want, n, atol, rtol, r);
}
