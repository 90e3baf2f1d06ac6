/* Variable-length batches (cu_seqlens_q / cu_seqlens_k): sequences packed
   without padding, FlashAttention's varlen convention. Checked on every
   path that takes them (AUTO, FUSED, FUSED_CPU, FUSED_GPU; the CTest's
   @gpu-class run builds them as a GPU-class device does):
   - against the double reference (reference/reference.c, which reads the
     packed shapes), for lengths that include empty sequences (no queries,
     or queries and no keys), causal in both alignments per sequence, GQA
     decode with split keys, dropout, head_dim_v != head_dim, fp16 and
     bf16 K/V, the LSE, and both packed layouts: [heads][tokens][dim] and
     FlashAttention's token-major [tokens][heads][dim];
   - bit for bit against the padded batch (key lengths for the padding)
     on the same path where the two define the same rows (no causal, or
     top-left), dropout included: packing moves rows, nothing else;
   - nothing written outside the packed rows (sentinels after them);
   - the host entry point;
   - goldens from PyTorch (tests/gen_golden_varlen.py: each sequence
     attended on its own by torch, float64, concatenated);
   - then the refusals, each with nothing written. */
#include "golden_bundle.h"
#include "kv_convert.h"
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float SENTINEL = -12345.0f;
#define TAIL 64 /* floats after each output, checked untouched */

static clattn_context *ctx;
static cl_context cl;
static cl_command_queue queue;

typedef struct varlen_case {
    const char *name;
    size_t batch, heads_q, heads_kv, head_dim, head_dim_v;
    int32_t q_len[8], k_len[8];
    clattn_causal causal;
    float dropout;
    int token_major; /* views [tokens][heads][dim], else [heads][tokens][dim] */
    clattn_dtype kv_dtype;
    size_t seq_q_slack; /* seq_q above the longest sequence (a bound only) */
} varlen_case;

static size_t max_len(const int32_t *len, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; ++i)
        m = (size_t)len[i] > m ? (size_t)len[i] : m;
    return m;
}

static void cumulative(const int32_t *len, size_t n, int32_t *cu)
{
    cu[0] = 0;
    for (size_t i = 0; i < n; ++i)
        cu[i + 1] = cu[i] + len[i];
}

/* The view of a packed [heads][tokens][dim] tensor, or of one stored
   token-major [tokens][heads][dim], in buffer m. */
static clattn_tensor packed_view(cl_mem m, size_t heads, size_t tokens,
                                 size_t dim, int token_major)
{
    clattn_tensor t;
    memset(&t, 0, sizeof t);
    t.buffer = m;
    t.strides[0] = heads * tokens * dim;
    t.strides[1] = token_major ? dim : tokens * dim;
    t.strides[2] = token_major ? heads * dim : dim;
    t.strides[3] = 1;
    return t;
}

/* host [heads][tokens][dim] -> the buffer's order */
static float *to_layout(const float *x, size_t heads, size_t tokens, size_t dim,
                        int token_major)
{
    float *y = malloc(heads * tokens * dim * sizeof *y + 1);
    for (size_t h = 0; h < heads; ++h)
        for (size_t t = 0; t < tokens; ++t)
            memcpy(y + (token_major ? (t * heads + h) : (h * tokens + t)) * dim,
                   x + (h * tokens + t) * dim, dim * sizeof *y);
    return y;
}

static float *from_layout(const float *y, size_t heads, size_t tokens,
                          size_t dim, int token_major)
{
    float *x = malloc(heads * tokens * dim * sizeof *x + 1);
    for (size_t h = 0; h < heads; ++h)
        for (size_t t = 0; t < tokens; ++t)
            memcpy(x + (h * tokens + t) * dim,
                   y + (token_major ? (t * heads + h) : (h * tokens + t)) * dim,
                   dim * sizeof *x);
    return x;
}

static void desc_of(const varlen_case *c, const int32_t *cu_q,
                    const int32_t *cu_k, clattn_sdpa_desc *d)
{
    clattn_sdpa_desc_init(d);
    d->batch = c->batch;
    d->heads_q = c->heads_q;
    d->heads_kv = c->heads_kv;
    d->seq_q = max_len(c->q_len, c->batch) + c->seq_q_slack;
    d->seq_kv = max_len(c->k_len, c->batch);
    d->head_dim = c->head_dim;
    d->head_dim_v = c->head_dim_v;
    d->causal = c->causal;
    d->dropout_p = c->dropout;
    d->dropout_seed = 1234;
    d->dropout_offset = 7;
    d->k_dtype = d->v_dtype = c->kv_dtype;
    d->cu_seqlens_q = cu_q;
    d->cu_seqlens_k = cu_k;
}

/* K or V of host [heads][tokens][dim] floats (rounded to dtype in place
   first, so the reference sees the stored values) in the buffer's order
   and element type. */
static cl_mem kv_buffer(float *x, size_t heads, size_t tokens, size_t dim,
                        int token_major, clattn_dtype dtype)
{
    const size_t n = heads * tokens * dim;
    uint16_t *words = test_round_to(dtype, x, n);
    free(words);
    float *y = to_layout(x, heads, tokens, dim, token_major);
    cl_mem m;
    if (dtype == CLATTN_DTYPE_FP32) {
        m = test_buffer(cl, y, n * sizeof *y);
    } else {
        uint16_t *w = test_round_to(dtype, y, n);
        m = test_buffer(cl, w, n * sizeof *w);
        free(w);
    }
    free(y);
    return m;
}

/* The outputs of one packed call: out and lse in host [heads][tokens]
   order, and whether the sentinels after each held. */
typedef struct varlen_result {
    float *out, *lse;
    int tails_intact;
} varlen_result;

static clattn_status run_packed(const varlen_case *c, const clattn_sdpa_desc *d,
                                cl_mem qb, cl_mem kb, cl_mem vb,
                                clattn_sdpa_path path, varlen_result *r)
{
    const size_t tq = (size_t)d->cu_seqlens_q[c->batch],
                 tk = (size_t)d->cu_seqlens_k[c->batch];
    const size_t n_out = c->heads_q * tq * c->head_dim_v,
                 n_lse = c->heads_q * tq;
    cl_mem ob = test_buffer_filled(cl, n_out + TAIL, SENTINEL);
    cl_mem lb = test_buffer_filled(cl, n_lse + TAIL, SENTINEL);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q = packed_view(qb, c->heads_q, tq, c->head_dim, c->token_major);
    t.k = packed_view(kb, c->heads_kv, tk, c->head_dim, c->token_major);
    t.v = packed_view(vb, c->heads_kv, tk, c->head_dim_v, c->token_major);
    t.out = packed_view(ob, c->heads_q, tq, c->head_dim_v, c->token_major);
    t.lse = packed_view(lb, c->heads_q, tq, 1, 0);
    cl_event done = NULL;
    clattn_status s = clattn_sdpa(ctx, d, &t, path, 0, NULL, &done);
    memset(r, 0, sizeof *r);
    if (s == CLATTN_SUCCESS) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
        float *o = malloc((n_out + TAIL) * sizeof *o);
        float *l = malloc((n_lse + TAIL) * sizeof *l);
        r->tails_intact =
            test_buffer_read_tail(queue, ob, n_out, TAIL, SENTINEL, o) &
            test_buffer_read_tail(queue, lb, n_lse, TAIL, SENTINEL, l);
        r->out = from_layout(o, c->heads_q, tq, c->head_dim_v, c->token_major);
        r->lse = l;
        free(o);
    }
    clReleaseMemObject(ob);
    clReleaseMemObject(lb);
    return s;
}

/* The padded batch of the same sequences on path: [B][H][seq][dim],
   key lengths for the padding; its rows i < q_len[b] must equal the
   packed call's bit for bit (out, and lse). */
static void check_padded(const varlen_case *c, const clattn_sdpa_desc *packed,
                         const float *q, const float *k, const float *v,
                         clattn_sdpa_path path, const varlen_result *r)
{
    const size_t B = c->batch, Hq = c->heads_q, Hkv = c->heads_kv,
                 D = c->head_dim, Dv = c->head_dim_v;
    const int32_t *cq = packed->cu_seqlens_q, *ck = packed->cu_seqlens_k;
    const size_t Sq = packed->seq_q, Skv = packed->seq_kv;
    const size_t tq = (size_t)cq[B], tk = (size_t)ck[B];
    float *qp = calloc(B * Hq * Sq * D + 1, sizeof *qp);
    float *kp = calloc(B * Hkv * Skv * D + 1, sizeof *kp);
    float *vp = calloc(B * Hkv * Skv * Dv + 1, sizeof *vp);
    for (size_t b = 0; b < B; ++b) {
        for (size_t h = 0; h < Hq; ++h)
            memcpy(qp + (b * Hq + h) * Sq * D, q + (h * tq + cq[b]) * D,
                   (size_t)c->q_len[b] * D * sizeof *qp);
        for (size_t h = 0; h < Hkv; ++h) {
            memcpy(kp + (b * Hkv + h) * Skv * D, k + (h * tk + ck[b]) * D,
                   (size_t)c->k_len[b] * D * sizeof *kp);
            memcpy(vp + (b * Hkv + h) * Skv * Dv, v + (h * tk + ck[b]) * Dv,
                   (size_t)c->k_len[b] * Dv * sizeof *vp);
        }
    }
    clattn_sdpa_desc d = *packed;
    d.cu_seqlens_q = d.cu_seqlens_k = NULL;
    d.key_lengths = c->k_len;
    const size_t dq[4] = {B, Hq, Sq, D}, dk[4] = {B, Hkv, Skv, D},
                 dv[4] = {B, Hkv, Skv, Dv}, dout[4] = {B, Hq, Sq, Dv},
                 dlse[4] = {B, Hq, Sq, 1};
    cl_mem qb = test_buffer(cl, qp, B * Hq * Sq * D * sizeof *qp);
    cl_mem kb = kv_buffer(kp, Hkv, B * Skv, D, 0, c->kv_dtype);
    cl_mem vb = kv_buffer(vp, Hkv, B * Skv, Dv, 0, c->kv_dtype);
    cl_mem ob = test_buffer_filled(cl, B * Hq * Sq * Dv, SENTINEL);
    cl_mem lb = test_buffer_filled(cl, B * Hq * Sq, SENTINEL);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, qb, 0, dq);
    clattn_tensor_contiguous(&t.k, kb, 0, dk);
    clattn_tensor_contiguous(&t.v, vb, 0, dv);
    clattn_tensor_contiguous(&t.out, ob, 0, dout);
    clattn_tensor_contiguous(&t.lse, lb, 0, dlse);
    cl_event done = NULL;
    clattn_status s = clattn_sdpa(ctx, &d, &t, path, 0, NULL, &done);
    if (CHECK_SUCCESS(ctx, s, "%s padded (%s)", c->name,
                      clattn_sdpa_path_name(path))) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
        float *o = malloc(B * Hq * Sq * Dv * sizeof *o);
        float *l = malloc(B * Hq * Sq * sizeof *l);
        clEnqueueReadBuffer(queue, ob, CL_TRUE, 0, B * Hq * Sq * Dv * sizeof *o,
                            o, 0, NULL, NULL);
        clEnqueueReadBuffer(queue, lb, CL_TRUE, 0, B * Hq * Sq * sizeof *l, l,
                            0, NULL, NULL);
        size_t differ = 0;
        for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < Hq; ++h)
                for (size_t i = 0; i < (size_t)c->q_len[b]; ++i) {
                    const size_t pr = (b * Hq + h) * Sq + i,
                                 vr = h * tq + cq[b] + i;
                    differ += memcmp(o + pr * Dv, r->out + vr * Dv,
                                     Dv * sizeof *o) != 0;
                    differ += memcmp(l + pr, r->lse + vr, sizeof *l) != 0;
                }
        CHECK(differ == 0,
              "%s (%s): %zu packed rows differ from the padded "
              "batch's",
              c->name, clattn_sdpa_path_name(path), differ);
        free(o);
        free(l);
    }
    cl_mem all[5] = {qb, kb, vb, ob, lb};
    for (int i = 0; i < 5; ++i)
        clReleaseMemObject(all[i]);
    free(qp);
    free(kp);
    free(vp);
}

static void run_case(const varlen_case *c, uint64_t seed)
{
    int32_t cu_q[9], cu_k[9];
    cumulative(c->q_len, c->batch, cu_q);
    cumulative(c->k_len, c->batch, cu_k);
    clattn_sdpa_desc d;
    desc_of(c, cu_q, cu_k, &d);
    const size_t tq = (size_t)cu_q[c->batch], tk = (size_t)cu_k[c->batch];
    test_rng rng = test_rng_make(seed);
    float *q = test_random(&rng, c->heads_q * tq * c->head_dim, -2, 2);
    float *k = test_random(&rng, c->heads_kv * tk * c->head_dim, -2, 2);
    float *v = test_random(&rng, c->heads_kv * tk * c->head_dim_v, -2, 2);
    float *qy = to_layout(q, c->heads_q, tq, c->head_dim, c->token_major);
    cl_mem qb = test_buffer(cl, qy, c->heads_q * tq * c->head_dim * sizeof *qy);
    free(qy);
    cl_mem kb =
        kv_buffer(k, c->heads_kv, tk, c->head_dim, c->token_major, c->kv_dtype);
    cl_mem vb = kv_buffer(v, c->heads_kv, tk, c->head_dim_v, c->token_major,
                          c->kv_dtype);

    double *ref = malloc((c->heads_q * tq * c->head_dim_v + 1) * sizeof *ref);
    double *ref_lse = malloc((c->heads_q * tq + 1) * sizeof *ref_lse);
    ref_sdpa(&d, q, k, v, NULL, ref, NULL, ref_lse);

    const clattn_sdpa_path paths[4] = {
        CLATTN_SDPA_PATH_AUTO, CLATTN_SDPA_PATH_FUSED,
        CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU};
    for (int pi = 0; pi < 4; ++pi) {
        const clattn_sdpa_path path = paths[pi];
        varlen_result r;
        clattn_status s = run_packed(c, &d, qb, kb, vb, path, &r);
        if (!CHECK_SUCCESS(ctx, s, "%s (%s)", c->name,
                           clattn_sdpa_path_name(path)))
            continue;
        char what[96];
        snprintf(what, sizeof what, "(%s) out", clattn_sdpa_path_name(path));
        test_compare(c->name, what, r.out, ref, c->heads_q * tq * c->head_dim_v,
                     TOL_ATOL, TOL_RTOL);
        snprintf(what, sizeof what, "(%s) lse", clattn_sdpa_path_name(path));
        test_compare(c->name, what, r.lse, ref_lse, c->heads_q * tq, TOL_ATOL,
                     TOL_RTOL);
        CHECK(r.tails_intact, "%s (%s): written past the packed rows", c->name,
              clattn_sdpa_path_name(path));
        if (c->causal != CLATTN_CAUSAL_BOTTOM_RIGHT)
            check_padded(c, &d, q, k, v, path, &r);
        free(r.out);
        free(r.lse);
    }
    clReleaseMemObject(qb);
    clReleaseMemObject(kb);
    clReleaseMemObject(vb);
    free(q);
    free(k);
    free(v);
    free(ref);
    free(ref_lse);
}

/* Packed queries over a paged cache (vLLM's chunked prefill): the keys of
   case c laid into a pool of blocks of bs tokens, [block][head][slot][dim],
   the blocks in reverse order, -1 past each sequence's keys, key_lengths
   for the counts. Must give the bits of the packed call on contiguous K
   and V, on every fused path. */
static void check_paged(const varlen_case *c, size_t bs, uint64_t seed)
{
    int32_t cu_q[9], cu_k[9];
    cumulative(c->q_len, c->batch, cu_q);
    cumulative(c->k_len, c->batch, cu_k);
    clattn_sdpa_desc d;
    desc_of(c, cu_q, cu_k, &d);
    const size_t B = c->batch, H = c->heads_kv, D = c->head_dim;
    const size_t tq = (size_t)cu_q[B], tk = (size_t)cu_k[B];
    const size_t per_seq = (d.seq_kv + bs - 1) / bs, nb = B * per_seq;
    test_rng rng = test_rng_make(seed);
    float *q = test_random(&rng, c->heads_q * tq * D, -2, 2);
    float *k = test_random(&rng, H * tk * D, -2, 2);
    float *v = test_random(&rng, H * tk * D, -2, 2);
    float *kp = calloc(nb * H * bs * D + 1, sizeof *kp);
    float *vp = calloc(nb * H * bs * D + 1, sizeof *vp);
    int32_t *table = malloc(nb * sizeof *table);
    for (size_t b = 0; b < B; ++b)
        for (size_t i = 0; i < per_seq; ++i) {
            const size_t blk = nb - 1 - (b * per_seq + i);
            const int used = i * bs < (size_t)c->k_len[b];
            table[b * per_seq + i] = used ? (int32_t)blk : -1;
            for (size_t h = 0; h < H; ++h)
                for (size_t t = 0; t < bs; ++t) {
                    const size_t j = i * bs + t;
                    if (j >= (size_t)c->k_len[b])
                        break;
                    const size_t src = (h * tk + cu_k[b] + j) * D;
                    const size_t dst = ((blk * H + h) * bs + t) * D;
                    memcpy(kp + dst, k + src, D * sizeof *kp);
                    memcpy(vp + dst, v + src, D * sizeof *vp);
                }
        }
    float *qy = to_layout(q, c->heads_q, tq, D, c->token_major);
    cl_mem qb = test_buffer(cl, qy, c->heads_q * tq * D * sizeof *qy);
    free(qy);
    cl_mem kb = kv_buffer(k, H, tk, D, c->token_major, c->kv_dtype);
    cl_mem vb = kv_buffer(v, H, tk, D, c->token_major, c->kv_dtype);
    cl_mem kpb = kv_buffer(kp, H, nb * bs, D, 0, c->kv_dtype);
    cl_mem vpb = kv_buffer(vp, H, nb * bs, D, 0, c->kv_dtype);
    clattn_sdpa_desc dp = d;
    dp.cu_seqlens_k = NULL;
    dp.key_lengths = c->k_len;
    dp.kv_pages.block_size = bs;
    dp.kv_pages.num_blocks = nb;
    dp.kv_pages.blocks_per_seq = per_seq;
    dp.kv_pages.block_table = table;
    const clattn_sdpa_path paths[3] = {CLATTN_SDPA_PATH_AUTO,
                                       CLATTN_SDPA_PATH_FUSED_CPU,
                                       CLATTN_SDPA_PATH_FUSED_GPU};
    for (int pi = 0; pi < 3; ++pi) {
        const char *path = clattn_sdpa_path_name(paths[pi]);
        varlen_result want, got;
        clattn_status s = run_packed(c, &d, qb, kb, vb, paths[pi], &want);
        if (!CHECK_SUCCESS(ctx, s, "%s contiguous (%s)", c->name, path))
            continue;
        /* the pool as the K and V views: [nb][H][bs][D] */
        clattn_sdpa_tensors t;
        memset(&t, 0, sizeof t);
        t.q = packed_view(qb, c->heads_q, tq, D, c->token_major);
        const size_t pool_dims[4] = {nb, H, bs, D};
        clattn_tensor_contiguous(&t.k, kpb, 0, pool_dims);
        clattn_tensor_contiguous(&t.v, vpb, 0, pool_dims);
        const size_t n_out = c->heads_q * tq * D, n_lse = c->heads_q * tq;
        cl_mem ob = test_buffer_filled(cl, n_out + TAIL, SENTINEL);
        cl_mem lb = test_buffer_filled(cl, n_lse + TAIL, SENTINEL);
        t.out = packed_view(ob, c->heads_q, tq, D, c->token_major);
        t.lse = packed_view(lb, c->heads_q, tq, 1, 0);
        s = clattn_sdpa(ctx, &dp, &t, paths[pi], 0, NULL, NULL);
        if (CHECK_SUCCESS(ctx, s, "%s paged (%s)", c->name, path)) {
            float *o = malloc((n_out + TAIL) * sizeof *o);
            float *l = malloc((n_lse + TAIL) * sizeof *l);
            clFinish(queue);
            const int tails =
                test_buffer_read_tail(queue, ob, n_out, TAIL, SENTINEL, o) &
                test_buffer_read_tail(queue, lb, n_lse, TAIL, SENTINEL, l);
            got.out = from_layout(o, c->heads_q, tq, D, c->token_major);
            CHECK(tails, "%s paged (%s): written past the rows", c->name, path);
            CHECK(memcmp(got.out, want.out, n_out * sizeof *o) == 0 &&
                      memcmp(l, want.lse, n_lse * sizeof *l) == 0,
                  "%s paged (%s): not the bits of the contiguous call", c->name,
                  path);
            free(got.out);
            free(o);
            free(l);
        }
        clReleaseMemObject(ob);
        clReleaseMemObject(lb);
        free(want.out);
        free(want.lse);
    }
    cl_mem all[5] = {qb, kb, vb, kpb, vpb};
    for (int i = 0; i < 5; ++i)
        clReleaseMemObject(all[i]);
    free(q);
    free(k);
    free(v);
    free(kp);
    free(vp);
    free(table);
}

/* clattn_sdpa_host on a packed batch: [heads][tokens][dim] arrays. */
static void check_host(void)
{
    const int32_t len_q[3] = {3, 1, 6}, len_k[3] = {9, 4, 6};
    int32_t cu_q[4], cu_k[4];
    cumulative(len_q, 3, cu_q);
    cumulative(len_k, 3, cu_k);
    varlen_case c = {"host", 3,   2,
                     1,      16,  16,
                     {0},    {0}, CLATTN_CAUSAL_BOTTOM_RIGHT,
                     0.0f,   0,   CLATTN_DTYPE_FP32,
                     0};
    memcpy(c.q_len, len_q, sizeof len_q);
    memcpy(c.k_len, len_k, sizeof len_k);
    clattn_sdpa_desc d;
    desc_of(&c, cu_q, cu_k, &d);
    const size_t tq = 10, tk = 19;
    test_rng rng = test_rng_make(77);
    float *q = test_random(&rng, 2 * tq * 16, -2, 2);
    float *k = test_random(&rng, tk * 16, -2, 2);
    float *v = test_random(&rng, tk * 16, -2, 2);
    float *out = guarded_alloc(2 * tq * 16);
    double *ref = malloc(2 * tq * 16 * sizeof *ref);
    ref_sdpa(&d, q, k, v, NULL, ref, NULL, NULL);
    clattn_status s = clattn_sdpa_host(ctx, &d, q, k, v, NULL, out, NULL);
    if (CHECK_SUCCESS(ctx, s, "host entry point, packed batch"))
        test_compare("host", "out", out, ref, 2 * tq * 16, TOL_ATOL, TOL_RTOL);
    CHECK(guarded_intact(out, 2 * tq * 16), "host: guards overwritten");
    guarded_free(out);
    free(q);
    free(k);
    free(v);
    free(ref);
}

/* A golden of tests/gen_golden_varlen.py: token-major q, k, v and out,
   lse [heads][tokens], on every fused path. */
static void varlen_golden(const char *file, const golden_bundle *g)
{
    const size_t B = (size_t)bundle_int(g, "batch", 0),
                 Hq = (size_t)bundle_int(g, "heads_q", 0),
                 Hkv = (size_t)bundle_int(g, "heads_kv", 0),
                 D = (size_t)bundle_int(g, "head_dim", 0);
    const int32_t *cu_q = bundle_i32(g, "cu_seqlens_q"),
                  *cu_k = bundle_i32(g, "cu_seqlens_k");
    const float *q = bundle_f32(g, "q"), *k = bundle_f32(g, "k"),
                *v = bundle_f32(g, "v");
    const double *want = test_bundle_f64(g, "out"),
                 *want_lse = test_bundle_f64(g, "lse");
    const int complete = B && B <= 8 && Hq && Hkv && D && cu_q && cu_k && q &&
                         k && v && want && want_lse;
    CHECK(complete, "%s: a field is missing", file);
    if (!complete)
        return;
    varlen_case c;
    memset(&c, 0, sizeof c);
    c.name = file;
    c.batch = B;
    c.heads_q = Hq;
    c.heads_kv = Hkv;
    c.head_dim = c.head_dim_v = D;
    c.causal = (clattn_causal)bundle_int(g, "causal", 0);
    c.token_major = 1;
    for (size_t b = 0; b < B; ++b) {
        c.q_len[b] = cu_q[b + 1] - cu_q[b];
        c.k_len[b] = cu_k[b + 1] - cu_k[b];
    }
    clattn_sdpa_desc d;
    desc_of(&c, cu_q, cu_k, &d);
    CHECK(d.seq_q == (size_t)bundle_int(g, "seq_q", 0) &&
              d.seq_kv == (size_t)bundle_int(g, "seq_kv", 0),
          "%s: seq_q and seq_kv", file);
    const size_t tq = (size_t)cu_q[B], tk = (size_t)cu_k[B];
    /* the bundle's arrays are already token-major */
    cl_mem qb = test_buffer(cl, q, tq * Hq * D * sizeof *q);
    cl_mem kb = test_buffer(cl, k, tk * Hkv * D * sizeof *k);
    cl_mem vb = test_buffer(cl, v, tk * Hkv * D * sizeof *v);
    /* out comes back [heads][tokens][dim]: the golden's, transposed */
    double *want_ht = malloc(Hq * tq * D * sizeof *want_ht);
    for (size_t t = 0; t < tq; ++t)
        for (size_t h = 0; h < Hq; ++h)
            memcpy(want_ht + (h * tq + t) * D, want + (t * Hq + h) * D,
                   D * sizeof *want_ht);
    const clattn_sdpa_path paths[3] = {CLATTN_SDPA_PATH_AUTO,
                                       CLATTN_SDPA_PATH_FUSED_CPU,
                                       CLATTN_SDPA_PATH_FUSED_GPU};
    for (int pi = 0; pi < 3; ++pi) {
        varlen_result r;
        clattn_status s = run_packed(&c, &d, qb, kb, vb, paths[pi], &r);
        if (!CHECK_SUCCESS(ctx, s, "%s (%s)", file,
                           clattn_sdpa_path_name(paths[pi])))
            continue;
        char what[64];
        snprintf(what, sizeof what, "(%s) out vs torch",
                 clattn_sdpa_path_name(paths[pi]));
        test_compare(file, what, r.out, want_ht, Hq * tq * D, TOL_ATOL,
                     TOL_RTOL);
        snprintf(what, sizeof what, "(%s) lse vs torch",
                 clattn_sdpa_path_name(paths[pi]));
        test_compare(file, what, r.lse, want_lse, Hq * tq, TOL_ATOL, TOL_RTOL);
        free(r.out);
        free(r.lse);
    }
    free(want_ht);
    clReleaseMemObject(qb);
    clReleaseMemObject(kb);
    clReleaseMemObject(vb);
}

/* A refused packed call: the status, and out untouched. */
static void expect_refused(const char *what, const clattn_sdpa_desc *d,
                           const clattn_sdpa_tensors *t, clattn_sdpa_path path,
                           clattn_status want)
{
    clattn_status s = clattn_sdpa(ctx, d, t, path, 0, NULL, NULL);
    CHECK(s == want, "%s: status %s, expected %s (%s)", what,
          clattn_status_string(s), clattn_status_string(want),
          clattn_context_last_error(ctx));
    clFinish(queue);
    CHECK(test_buffer_holds(queue, t->out.buffer, 2 * 8 * 16, SENTINEL),
          "%s: out was written", what);
}

static void check_refusals(void)
{
    /* batch 2: query lengths 3 and 5, key lengths 4 and 4 */
    int32_t cu_q[3] = {0, 3, 8}, cu_k[3] = {0, 4, 8};
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 2;
    d.heads_q = 2;
    d.seq_q = 5;
    d.seq_kv = 4;
    d.head_dim = 16;
    d.cu_seqlens_q = cu_q;
    d.cu_seqlens_k = cu_k;
    cl_mem qb = test_buffer_filled(cl, 2 * 8 * 16, 0.5f);
    cl_mem kb = test_buffer_filled(cl, 2 * 8 * 16, 0.25f);
    cl_mem vb = test_buffer_filled(cl, 2 * 8 * 16, 1.0f);
    cl_mem ob = test_buffer_filled(cl, 2 * 8 * 16, SENTINEL);
    cl_mem pb = test_buffer_filled(cl, 2 * 2 * 5 * 4, SENTINEL);
    cl_mem mb = test_buffer_filled(cl, 2 * 2 * 5 * 4, 0.0f);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q = packed_view(qb, 2, 8, 16, 0);
    t.k = packed_view(kb, 2, 8, 16, 0);
    t.v = packed_view(vb, 2, 8, 16, 0);
    t.out = packed_view(ob, 2, 8, 16, 0);
    const clattn_sdpa_path fused = CLATTN_SDPA_PATH_FUSED;

    /* the valid call, on a copy of out, so that the checks below mean
       something: the request itself is fine */
    {
        cl_mem ob2 = test_buffer_filled(cl, 2 * 8 * 16, SENTINEL);
        clattn_sdpa_tensors ok = t;
        ok.out.buffer = ob2;
        clattn_status s = clattn_sdpa(ctx, &d, &ok, fused, 0, NULL, NULL);
        CHECK_SUCCESS(ctx, s, "refusals: the valid packed call");
        clFinish(queue);
        clReleaseMemObject(ob2);
    }

    clattn_sdpa_desc e = d;
    e.cu_seqlens_k = NULL;
    expect_refused("cu_seqlens_k NULL", &e, &t, fused,
                   CLATTN_ERROR_INVALID_ARGUMENT);
    e = d;
    e.cu_seqlens_q = NULL;
    expect_refused("cu_seqlens_q NULL", &e, &t, fused,
                   CLATTN_ERROR_INVALID_ARGUMENT);
    int32_t bad_first[3] = {1, 3, 8};
    e = d;
    e.cu_seqlens_q = bad_first;
    expect_refused("cu_seqlens_q[0] != 0", &e, &t, fused,
                   CLATTN_ERROR_INVALID_ARGUMENT);
    int32_t decreasing[3] = {0, 5, 4};
    e = d;
    e.cu_seqlens_k = decreasing;
    expect_refused("cu_seqlens_k decreasing", &e, &t, fused,
                   CLATTN_ERROR_INVALID_ARGUMENT);
    int32_t too_long[3] = {0, 1, 8}; /* a 7-token sequence, seq_q 5 */
    e = d;
    e.cu_seqlens_q = too_long;
    expect_refused("a sequence longer than seq_q", &e, &t, fused,
                   CLATTN_ERROR_INVALID_ARGUMENT);
    int32_t empty[3] = {0, 0, 0};
    e = d;
    e.cu_seqlens_q = empty;
    expect_refused("no query tokens at all", &e, &t, fused,
                   CLATTN_ERROR_INVALID_SHAPE);
    const int32_t lengths[2] = {4, 4};
    e = d;
    e.key_lengths = lengths;
    expect_refused("key_lengths with cu_seqlens", &e, &t, fused,
                   CLATTN_ERROR_INVALID_ARGUMENT);
    int32_t table[2] = {0, 1};
    e = d;
    e.kv_pages.block_size = 4;
    e.kv_pages.num_blocks = 2;
    e.kv_pages.blocks_per_seq = 1;
    e.kv_pages.block_table = table;
    expect_refused("kv_pages with cu_seqlens_k", &e, &t, fused,
                   CLATTN_ERROR_INVALID_ARGUMENT);
    e = d;
    e.mask_type = CLATTN_MASK_ADDITIVE;
    e.mask_dims[0] = 2, e.mask_dims[1] = 2, e.mask_dims[2] = 5;
    e.mask_dims[3] = 4;
    clattn_sdpa_tensors tm = t;
    const size_t md[4] = {2, 2, 5, 4};
    clattn_tensor_contiguous(&tm.mask, mb, 0, md);
    expect_refused("a mask with cu_seqlens", &e, &tm, fused,
                   CLATTN_ERROR_UNSUPPORTED);
    expect_refused("the unfused path", &d, &t, CLATTN_SDPA_PATH_UNFUSED,
                   CLATTN_ERROR_UNSUPPORTED);
    clattn_sdpa_tensors tp = t;
    const size_t pd[4] = {2, 2, 5, 4};
    clattn_tensor_contiguous(&tp.probs, pb, 0, pd);
    const clattn_sdpa_path with_probs[3] = {CLATTN_SDPA_PATH_AUTO,
                                            CLATTN_SDPA_PATH_FUSED_CPU,
                                            CLATTN_SDPA_PATH_FUSED_GPU};
    for (int i = 0; i < 3; ++i) {
        char what[64];
        snprintf(what, sizeof what, "probs (%s)",
                 clattn_sdpa_path_name(with_probs[i]));
        expect_refused(what, &d, &tp, with_probs[i], CLATTN_ERROR_UNSUPPORTED);
    }
    /* views sized for the padded batch's rows would be too small in the
       other direction: out one token short of the packed 8 */
    clattn_sdpa_tensors ts = t;
    cl_mem small = test_buffer_filled(cl, 2 * 7 * 16, SENTINEL);
    ts.q = packed_view(qb, 2, 8, 16, 0);
    ts.out = packed_view(small, 2, 7, 16, 0);
    clattn_status s = clattn_sdpa(ctx, &d, &ts, fused, 0, NULL, NULL);
    CHECK(s == CLATTN_ERROR_BUFFER_TOO_SMALL,
          "out of 7 packed tokens for 8: %s", clattn_status_string(s));
    clFinish(queue);
    CHECK(test_buffer_holds(queue, small, 2 * 7 * 16, SENTINEL),
          "a too-small out was written");
    /* A caller of the layout before cu_seqlens: the bytes after its
       struct_size are garbage and not read, so the call is an unpacked
       [2][2][5][16] one (keys 4). */
    {
        clattn_sdpa_desc old = d;
        old.struct_size = offsetof(clattn_sdpa_desc, cu_seqlens_q);
        old.cu_seqlens_q = old.cu_seqlens_k = (const int32_t *)(uintptr_t)8;
        const size_t dq[4] = {2, 2, 5, 16}, dk[4] = {2, 2, 4, 16};
        cl_mem q2 = test_buffer_filled(cl, 2 * 2 * 5 * 16, 0.5f);
        cl_mem o2 = test_buffer_filled(cl, 2 * 2 * 5 * 16, SENTINEL);
        clattn_sdpa_tensors tu;
        memset(&tu, 0, sizeof tu);
        clattn_tensor_contiguous(&tu.q, q2, 0, dq);
        clattn_tensor_contiguous(&tu.k, kb, 0, dk);
        clattn_tensor_contiguous(&tu.v, vb, 0, dk);
        clattn_tensor_contiguous(&tu.out, o2, 0, dq);
        clattn_status st = clattn_sdpa(ctx, &old, &tu, fused, 0, NULL, NULL);
        CHECK_SUCCESS(ctx, st, "the layout before cu_seqlens");
        clFinish(queue);
        CHECK(test_buffer_holds(queue, o2, 2 * 2 * 5 * 16, 1.0f),
              "the layout before cu_seqlens: out is not V's 1.0");
        clReleaseMemObject(q2);
        clReleaseMemObject(o2);
    }
    cl_mem all[7] = {qb, kb, vb, ob, pb, mb, small};
    for (int i = 0; i < 7; ++i)
        clReleaseMemObject(all[i]);
}

int main(void)
{
    ctx = test_context();
    clattn_info info;
    clattn_context_info(ctx, &info);
    cl = info.cl_ctx;
    queue = info.queue;
    const int small = test_small();
    const int32_t long_k = small ? 300 : 1500;
    /* clang-format off */
    const varlen_case cases[] = {
        /* an empty sequence, one with queries and no keys, odd lengths */
        {"plain", 5, 2, 2, 32, 32, {5, 0, 33, 17, 4}, {7, 3, 70, 17, 0},
         CLATTN_CAUSAL_NONE, 0.0f, 0, CLATTN_DTYPE_FP32, 3},
        {"top-left, token-major", 4, 3, 1, 24, 40, {9, 20, 1, 64},
         {12, 20, 5, 64}, CLATTN_CAUSAL_TOP_LEFT, 0.0f, 1,
         CLATTN_DTYPE_FP32, 0},
        {"bottom-right chunks", 4, 4, 2, 64, 64, {3, 16, 1, 40},
         {30, 16, 77, 41}, CLATTN_CAUSAL_BOTTOM_RIGHT, 0.0f, 1,
         CLATTN_DTYPE_FP32, 0},
        /* one query per sequence, long keys: split keys and the merge */
        {"GQA decode, split keys", 3, 8, 2, 64, 64, {1, 1, 1},
         {long_k, 37, long_k / 2}, CLATTN_CAUSAL_BOTTOM_RIGHT, 0.0f, 1,
         CLATTN_DTYPE_FP32, 0},
        {"dropout", 3, 2, 2, 16, 16, {6, 11, 2}, {6, 30, 9},
         CLATTN_CAUSAL_TOP_LEFT, 0.25f, 0, CLATTN_DTYPE_FP32, 2},
        {"fp16 K/V", 3, 4, 4, 32, 32, {7, 2, 13}, {19, 2, 13},
         CLATTN_CAUSAL_BOTTOM_RIGHT, 0.0f, 1, CLATTN_DTYPE_FP16, 0},
        {"bf16 K/V, decode", 2, 2, 1, 128, 128, {1, 2}, {long_k, 100},
         CLATTN_CAUSAL_BOTTOM_RIGHT, 0.0f, 0, CLATTN_DTYPE_BF16, 0},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        run_case(&cases[i], 100 + i);
    /* chunked prefill over paged caches: new tokens of each sequence
       against its cached keys, bottom-right per sequence */
    const varlen_case chunks = {"paged chunks",
                                4,
                                4,
                                2,
                                64,
                                64,
                                {5, 0, 16, 1},
                                {40, 9, 16, 130},
                                CLATTN_CAUSAL_BOTTOM_RIGHT,
                                0.0f,
                                1,
                                CLATTN_DTYPE_FP32,
                                0};
    check_paged(&chunks, 16, 300);
    const varlen_case chunks16 = {"paged chunks fp16, blocks of 24",
                                  3,
                                  2,
                                  2,
                                  32,
                                  32,
                                  {9, 3, 1},
                                  {9, 60, 33},
                                  CLATTN_CAUSAL_BOTTOM_RIGHT,
                                  0.0f,
                                  0,
                                  CLATTN_DTYPE_FP16,
                                  0};
    check_paged(&chunks16, 24, 301);
    check_host();
    test_golden_run("varlen_chunks.bin", varlen_golden);
    test_golden_run("varlen_prompts.bin", varlen_golden);
    check_refusals();
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_varlen");
}
