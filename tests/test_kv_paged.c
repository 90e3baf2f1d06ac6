/* Paged K/V caches (clattn_kv_pages) and clattn_kv_append. Paging moves
   where a key's row is read from, nothing else, so a call on a paged
   cache must give the same bits as the call on the same keys laid out
   contiguously: checked on every path (AUTO, unfused, fused-cpu,
   fused-gpu; the GPU-class unfused kernels where the CTest sets
   CLATTN_KERNEL_CLASS=gpu), with both pool layouts (OpenVINO's
   [block][head][slot][dim], vLLM's [block][slot][head][dim]), block sizes
   from 1 to 256 (48 too: no power of two needed), physical blocks in a
   shuffled order with NaN-filled spare blocks between them (a row read
   from the wrong block shows), unused table entries of -1, a prefix block
   shared by two sequences, key lengths, GQA decode with split keys,
   prefill chunks with bottom-right causal, probs, fp16 and bf16 K/V, and
   the host entry point. Appends are compared bit for bit with the host's
   rounding (kv_convert.h), specials included, and a decode loop (prefill
   appends, then a token at a time) against a contiguous cache. Goldens
   from PyTorch (tests/gen_golden_paged.py): torch's pool bits and its
   float64 output on them. Then the refusals, with nothing written. */
#include "golden_bundle.h"
#include "kv_convert.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float SENTINEL = -12345.0f;

static clattn_context *ctx;
static cl_context cl;
static cl_command_queue queue;

static cl_mem upload(const void *host, size_t bytes)
{
    return test_buffer(cl, host, bytes);
}

static void *download(cl_mem m, size_t bytes)
{
    void *x = malloc(bytes);
    cl_int err =
        clEnqueueReadBuffer(queue, m, CL_TRUE, 0, bytes, x, 0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", err);
    return x;
}

static clattn_tensor contiguous(cl_mem m, const size_t dims[4])
{
    clattn_tensor t;
    clattn_tensor_contiguous(&t, m, 0, dims);
    return t;
}

static void wait_release(cl_event e)
{
    if (e) {
        CHECK(clWaitForEvents(1, &e) == CL_SUCCESS, "clWaitForEvents");
        clReleaseEvent(e);
    }
}

static size_t elem_size(clattn_dtype t)
{
    return t == CLATTN_DTYPE_FP32 ? 4 : 2;
}

/* A pool and its table for batch sequences of seq_kv keys each (heads
   Hkv, dim D, elements of esize bytes). Sequence b's logical block i is
   physical block 2 * (a shuffled index) + 1, so the even blocks are
   spares (NaN); a sequence's entries past its keys are -1. With shared,
   sequence 1's first block is sequence 0's (the caller made their first
   block_size keys equal). */
typedef struct paged_pool {
    clattn_kv_pages pages;
    int32_t *table;
    int vllm; /* [block][slot][head][dim], else [block][head][slot][dim] */
    size_t heads, dim, esize;
} paged_pool;

static void pool_plan(paged_pool *p, size_t batch, size_t seq_kv,
                      const int32_t *lengths, size_t block_size, int vllm,
                      int shared, uint64_t seed)
{
    const size_t per_seq = (seq_kv + block_size - 1) / block_size;
    const size_t logical = batch * per_seq;
    size_t *order = malloc(logical * sizeof *order);
    for (size_t i = 0; i < logical; ++i)
        order[i] = i;
    test_rng r = test_rng_make(seed);
    for (size_t i = logical; i > 1; --i) {
        const size_t j = (size_t)test_rng_uniform(&r, 0, (double)i);
        const size_t t = order[i - 1];
        order[i - 1] = order[j < i ? j : i - 1];
        order[j < i ? j : i - 1] = t;
    }
    memset(&p->pages, 0, sizeof p->pages);
    p->vllm = vllm;
    p->table = malloc(logical * sizeof *p->table);
    for (size_t b = 0; b < batch; ++b) {
        const size_t keys = lengths ? (size_t)lengths[b] : seq_kv;
        const size_t used = (keys + block_size - 1) / block_size;
        for (size_t i = 0; i < per_seq; ++i)
            p->table[b * per_seq + i] =
                i < used ? (int32_t)(2 * order[b * per_seq + i] + 1) : -1;
    }
    if (shared && batch > 1)
        p->table[per_seq] = p->table[0];
    p->pages.block_size = block_size;
    p->pages.num_blocks = 2 * logical + 1;
    p->pages.blocks_per_seq = per_seq;
    p->pages.block_table = p->table;
    free(order);
}

/* Element offset of (block, head, slot) in the pool. */
static size_t pool_at(const paged_pool *p, size_t block, size_t h, size_t t)
{
    const size_t bs = p->pages.block_size;
    return p->vllm ? ((block * bs + t) * p->heads + h) * p->dim
                   : ((block * p->heads + h) * bs + t) * p->dim;
}

static clattn_tensor pool_view(const paged_pool *p, cl_mem m)
{
    const size_t bs = p->pages.block_size, H = p->heads, D = p->dim;
    clattn_tensor t = {m, 0, {bs * H * D, 0, 0, 1}};
    t.strides[1] = p->vllm ? D : bs * D;
    t.strides[2] = p->vllm ? H * D : D;
    return t;
}

/* The pool holding src ([batch][heads][seq_kv][dim] of esize-byte
   elements) through the table; spare blocks and slots NaN. */
static cl_mem pool_upload(paged_pool *p, const void *src, size_t batch,
                          size_t seq_kv, size_t heads, size_t dim, size_t esize)
{
    p->heads = heads;
    p->dim = dim;
    p->esize = esize;
    const size_t n = p->pages.num_blocks * p->pages.block_size * heads * dim;
    unsigned char *pool = malloc(n * esize);
    for (size_t i = 0; i < n; ++i) {
        const float nan = NAN;
        const uint16_t nan16 = 0x7e00;
        memcpy(pool + i * esize, esize == 4 ? (const void *)&nan : &nan16,
               esize);
    }
    const unsigned char *s = src;
    const size_t bs = p->pages.block_size;
    for (size_t b = 0; b < batch; ++b)
        for (size_t j = 0; j < seq_kv; ++j) {
            const int32_t blk = p->table[b * p->pages.blocks_per_seq + j / bs];
            if (blk < 0)
                continue;
            for (size_t h = 0; h < heads; ++h)
                memcpy(pool + pool_at(p, (size_t)blk, h, j % bs) * esize,
                       s + ((b * heads + h) * seq_kv + j) * dim * esize,
                       dim * esize);
        }
    cl_mem m = upload(pool, n * esize);
    free(pool);
    return m;
}

typedef struct case_opts {
    size_t block_size;
    int vllm, shared, key_lengths, probs;
    clattn_dtype k_dtype, v_dtype;
} case_opts;

/* out (and probs) of one call, read back; NULL on failure. */
static float *run_sdpa(const clattn_sdpa_desc *d, const clattn_sdpa_tensors *in,
                       clattn_sdpa_path path, int probs, float **p_out,
                       const char *label)
{
    const size_t od[4] = {d->batch, d->heads_q, d->seq_q,
                          d->head_dim_v ? d->head_dim_v : d->head_dim};
    const size_t pd[4] = {d->batch, d->heads_q, d->seq_q, d->seq_kv};
    const size_t n_out = od[0] * od[1] * od[2] * od[3];
    const size_t n_probs = pd[0] * pd[1] * pd[2] * pd[3];
    clattn_sdpa_tensors t = *in;
    cl_mem out = test_buffer_filled(cl, n_out, SENTINEL);
    cl_mem pr = probs ? test_buffer_filled(cl, n_probs, SENTINEL) : NULL;
    t.out = contiguous(out, od);
    if (pr)
        t.probs = contiguous(pr, pd);
    cl_event done = NULL;
    clattn_status s = clattn_sdpa(ctx, d, &t, path, 0, NULL, &done);
    wait_release(done);
    float *o = NULL;
    if (CHECK_SUCCESS(ctx, s, "%s", label)) {
        o = download(out, n_out * sizeof *o);
        if (probs)
            *p_out = download(pr, n_probs * sizeof **p_out);
    }
    clReleaseMemObject(out);
    if (pr)
        clReleaseMemObject(pr);
    return o;
}

static void check_same(const char *label, const char *what, const float *a,
                       const float *b, size_t n)
{
    size_t at = n;
    for (size_t i = 0; i < n && at == n; ++i)
        if (memcmp(&a[i], &b[i], sizeof *a) != 0)
            at = i;
    CHECK(at == n, "%s: %s differs from the contiguous call at %zu: %g vs %g",
          label, what, at, at < n ? (double)a[at] : 0.0,
          at < n ? (double)b[at] : 0.0);
}

/* One case on every path: paged against contiguous, bit for bit. */
static void paged_case(const char *name, const clattn_sdpa_desc *base,
                       const case_opts *o, uint64_t seed)
{
    sdpa_inputs in;
    sdpa_inputs_make(&in, base, o->key_lengths, seed);
    clattn_sdpa_desc d = in.desc;
    d.k_dtype = o->k_dtype;
    d.v_dtype = o->v_dtype;
    const size_t B = d.batch, Hkv = d.heads_kv, Skv = d.seq_kv, D = d.head_dim,
                 Dv = d.head_dim_v;
    const size_t bs = o->block_size;
    /* A shared first block: sequence 1's first keys are sequence 0's. */
    if (o->shared && B > 1)
        for (size_t h = 0; h < Hkv; ++h) {
            memcpy(in.k + (Hkv + h) * Skv * D, in.k + h * Skv * D,
                   bs * D * sizeof(float));
            memcpy(in.v + (Hkv + h) * Skv * Dv, in.v + h * Skv * Dv,
                   bs * Dv * sizeof(float));
        }
    uint16_t *kw = test_round_to(d.k_dtype, in.k, in.n_k);
    uint16_t *vw = test_round_to(d.v_dtype, in.v, in.n_v);
    const void *kh = kw ? (const void *)kw : in.k;
    const void *vh = vw ? (const void *)vw : in.v;
    const size_t ke = elem_size(d.k_dtype), ve = elem_size(d.v_dtype);

    const size_t qd[4] = {B, d.heads_q, d.seq_q, D}, kd[4] = {B, Hkv, Skv, D},
                 vd[4] = {B, Hkv, Skv, Dv};
    clattn_sdpa_tensors flat;
    memset(&flat, 0, sizeof flat);
    flat.q = contiguous(upload(in.q, in.n_q * 4), qd);
    flat.k = contiguous(upload(kh, in.n_k * ke), kd);
    flat.v = contiguous(upload(vh, in.n_v * ve), vd);
    if (d.mask_type != CLATTN_MASK_NONE)
        flat.mask = contiguous(
            upload(in.mask,
                   in.n_mask * (d.mask_type == CLATTN_MASK_BOOL ? 1 : 4)),
            d.mask_dims);

    paged_pool pk, pv;
    pool_plan(&pk, B, Skv, d.key_lengths, bs, o->vllm, o->shared, seed);
    pool_plan(&pv, B, Skv, d.key_lengths, bs, o->vllm, o->shared, seed);
    clattn_sdpa_tensors paged = flat;
    paged.k = pool_view(&pk, pool_upload(&pk, kh, B, Skv, Hkv, D, ke));
    paged.v = pool_view(&pv, pool_upload(&pv, vh, B, Skv, Hkv, Dv, ve));
    clattn_sdpa_desc dp = d;
    dp.kv_pages = pk.pages;

    static const clattn_sdpa_path paths[] = {
        CLATTN_SDPA_PATH_AUTO, CLATTN_SDPA_PATH_UNFUSED,
        CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU};
    /* Each K/V type pair and path is its own program build (seconds on a
       cold cache): under CLATTN_TEST_SMALL (Oclgrind, Intel's runtime)
       the 16-bit cases run AUTO only. */
    const int typed =
        d.k_dtype != CLATTN_DTYPE_FP32 || d.v_dtype != CLATTN_DTYPE_FP32;
    const size_t npaths =
        test_small() && typed ? 1 : sizeof paths / sizeof paths[0];
    for (size_t i = 0; i < npaths; ++i) {
        const int probs = o->probs && paths[i] != CLATTN_SDPA_PATH_FUSED_GPU;
        char label[200];
        snprintf(label, sizeof label, "%s: block %zu %s k %s v %s %s%s", name,
                 bs, o->vllm ? "vllm" : "openvino",
                 clattn_dtype_name(d.k_dtype), clattn_dtype_name(d.v_dtype),
                 clattn_sdpa_path_name(paths[i]), probs ? " probs" : "");
        float *pa = NULL, *pb = NULL;
        float *a = run_sdpa(&d, &flat, paths[i], probs, &pa, label);
        float *b = run_sdpa(&dp, &paged, paths[i], probs, &pb, label);
        if (a && b) {
            check_same(label, "out", b, a, in.n_out);
            if (probs)
                check_same(label, "probs", pb, pa, in.n_probs);
        }
        free(a);
        free(b);
        free(pa);
        free(pb);
    }
    clReleaseMemObject(paged.k.buffer);
    clReleaseMemObject(paged.v.buffer);
    sdpa_tensors_release(&flat);
    free(pk.table);
    free(pv.table);
    free(kw);
    free(vw);
    sdpa_inputs_free(&in);
}

static clattn_sdpa_desc desc_of(size_t batch, size_t hq, size_t hkv, size_t sq,
                                size_t skv, size_t d)
{
    clattn_sdpa_desc desc;
    clattn_sdpa_desc_init(&desc);
    desc.batch = batch;
    desc.heads_q = hq;
    desc.heads_kv = hkv;
    desc.seq_q = sq;
    desc.seq_kv = skv;
    desc.head_dim = d;
    desc.head_dim_v = d;
    return desc;
}

/* An append of new_tokens fp32 tokens per sequence into a paged cache of
   dtype at positions. */
static clattn_kv_append_desc append_desc(size_t batch, size_t heads_kv,
                                         size_t new_tokens, size_t head_dim,
                                         clattn_dtype dtype,
                                         const clattn_kv_pages *pages,
                                         const int32_t *positions)
{
    clattn_kv_append_desc a;
    clattn_kv_append_desc_init(&a);
    a.batch = batch;
    a.heads_kv = heads_kv;
    a.new_tokens = new_tokens;
    a.head_dim = head_dim;
    a.k_dtype = a.v_dtype = dtype;
    a.pages = *pages;
    a.positions = positions;
    return a;
}

static void paged_cases(void)
{
    const int small = test_small();
    {
        /* GQA decode, keys split over the compute units, key lengths. */
        clattn_sdpa_desc d = desc_of(2, 8, 2, 1, small ? 300 : 1000, 64);
        case_opts o = {16, 1, 0, 1, 0, CLATTN_DTYPE_FP32, CLATTN_DTYPE_FP32};
        paged_case("gqa decode", &d, &o, 11);
    }
    {
        /* MHA decode from an fp16 cache, a block size of 48. */
        clattn_sdpa_desc d = desc_of(2, 4, 4, 1, small ? 150 : 700, 128);
        case_opts o = {48, 0, 0, 1, 0, CLATTN_DTYPE_FP16, CLATTN_DTYPE_FP16};
        paged_case("fp16 decode", &d, &o, 12);
    }
    {
        /* A prefill chunk: bottom-right causal, an additive mask, GQA,
           key lengths, bf16 K and fp16 V, blocks of 64. */
        clattn_sdpa_desc d = desc_of(2, 4, 2, small ? 9 : 37, 200, 32);
        d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        d.mask_type = CLATTN_MASK_ADDITIVE;
        d.mask_dims[0] = 1;
        d.mask_dims[1] = 4;
        d.mask_dims[2] = d.seq_q;
        d.mask_dims[3] = d.seq_kv;
        case_opts o = {64, 1, 0, 1, 0, CLATTN_DTYPE_BF16, CLATTN_DTYPE_FP16};
        paged_case("chunk", &d, &o, 13);
    }
    {
        /* Decode at a block size that is no multiple of 16 (a 16-key tile
           spans blocks: every key looked up). */
        clattn_sdpa_desc d = desc_of(1, 2, 1, 2, 130, 32);
        case_opts o = {24, 0, 0, 1, 0, CLATTN_DTYPE_FP32, CLATTN_DTYPE_FP32};
        paged_case("decode block 24", &d, &o, 16);
    }
    {
        /* Blocks of one token, probs, Dv != D. */
        clattn_sdpa_desc d = desc_of(1, 2, 2, 5, 33, 16);
        d.head_dim_v = 24;
        case_opts o = {1, 0, 0, 0, 1, CLATTN_DTYPE_FP32, CLATTN_DTYPE_FP32};
        paged_case("block 1", &d, &o, 14);
    }
    {
        /* Blocks of 256 with the first shared by two sequences (a common
           prompt), probs, key lengths, a bool mask. */
        clattn_sdpa_desc d = desc_of(2, 2, 1, 3, small ? 300 : 700, 64);
        d.mask_type = CLATTN_MASK_BOOL;
        d.mask_dims[0] = 2;
        d.mask_dims[1] = 1;
        d.mask_dims[2] = 1;
        d.mask_dims[3] = d.seq_kv;
        case_opts o = {256, 1, 1, 0, 1, CLATTN_DTYPE_FP32, CLATTN_DTYPE_FP32};
        paged_case("shared prefix", &d, &o, 15);
    }
}

/* clattn_sdpa_host on a pool in host memory, against the contiguous
   host call. */
static void host_entry(void)
{
    sdpa_inputs in;
    clattn_sdpa_desc base = desc_of(2, 4, 2, 2, 90, 32);
    sdpa_inputs_make(&in, &base, 1, 21);
    paged_pool pk;
    pool_plan(&pk, 2, 90, in.desc.key_lengths, 16, 0, 0, 21);
    pk.heads = 2;
    pk.dim = 32;
    const size_t n = pk.pages.num_blocks * 16 * 2 * 32;
    float *kpool = malloc(n * sizeof *kpool),
          *vpool = malloc(n * sizeof *vpool);
    for (size_t i = 0; i < n; ++i)
        kpool[i] = vpool[i] = NAN;
    for (size_t b = 0; b < 2; ++b)
        for (size_t j = 0; j < 90; ++j) {
            const int32_t blk = pk.table[b * pk.pages.blocks_per_seq + j / 16];
            for (size_t h = 0; blk >= 0 && h < 2; ++h) {
                memcpy(kpool + pool_at(&pk, (size_t)blk, h, j % 16),
                       in.k + ((b * 2 + h) * 90 + j) * 32, 32 * sizeof(float));
                memcpy(vpool + pool_at(&pk, (size_t)blk, h, j % 16),
                       in.v + ((b * 2 + h) * 90 + j) * 32, 32 * sizeof(float));
            }
        }
    float *a = malloc(in.n_out * sizeof *a), *b = malloc(in.n_out * sizeof *b);
    clattn_status s =
        clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, NULL, a, NULL);
    CHECK_SUCCESS(ctx, s, "%s", "host, contiguous");
    clattn_sdpa_desc dp = in.desc;
    dp.kv_pages = pk.pages;
    s = clattn_sdpa_host(ctx, &dp, in.q, kpool, vpool, NULL, b, NULL);
    if (CHECK_SUCCESS(ctx, s, "%s", "host, paged"))
        check_same("host entry", "out", b, a, in.n_out);
    free(a);
    free(b);
    free(kpool);
    free(vpool);
    free(pk.table);
    sdpa_inputs_free(&in);
}

/* What an append must leave in a cache word: the host's rounding. */
static void store_word(clattn_dtype t, float x, unsigned char *dst)
{
    if (t == CLATTN_DTYPE_FP32) {
        memcpy(dst, &x, 4);
        return;
    }
    const uint16_t w =
        t == CLATTN_DTYPE_FP16 ? test_to_fp16(x) : test_to_bf16(x);
    memcpy(dst, &w, 2);
}

/* Values whose rounding is a corner: ties to even either way, the
   largest finite halves and the first that overflow, subnormals, zeros,
   infinities, NaN. */
static void put_corners(float *x, size_t n)
{
    const float corners[] = {1.0f + ldexpf(1.0f, -11),
                             1.0f + 3 * ldexpf(1.0f, -11),
                             1.0f + ldexpf(1.0f, -8),
                             1.0f + 3 * ldexpf(1.0f, -8),
                             65504.0f,
                             65519.996f,
                             65520.0f,
                             -1e6f,
                             ldexpf(1.0f, -25),
                             3 * ldexpf(1.0f, -25),
                             ldexpf(1.0f, -14) * 0.99999f,
                             1e-30f,
                             -0.0f,
                             INFINITY,
                             -INFINITY,
                             NAN,
                             3.4e38f,
                             ldexpf(1.0f, -133)};
    const size_t count = sizeof corners / sizeof corners[0];
    for (size_t i = 0; i < count && i < n; ++i)
        x[i] = corners[i];
}

/* An append of new_tokens tokens at positions into a cache (paged with
   block size bs, else contiguous of cache_seq positions) of dtype t,
   checked word for word: the appended slots hold the host's rounding,
   every other word its sentinel. */
static void append_case(const char *name, size_t bs, int vllm, clattn_dtype t,
                        uint64_t seed)
{
    const size_t B = 3, H = 2, D = 24, Dv = 8, N = 7, cache_seq = 64;
    const int32_t positions[3] = {14, 0, 57};
    test_rng r = test_rng_make(seed);
    float *kn = test_random(&r, B * H * N * D, -3, 3);
    float *vn = test_random(&r, B * H * N * Dv, -3, 3);
    put_corners(kn, B * H * N * D);
    const size_t esize = elem_size(t);

    paged_pool pk, pv;
    clattn_kv_append_desc d;
    clattn_kv_append_desc_init(&d);
    d.batch = B;
    d.heads_kv = H;
    d.new_tokens = N;
    d.head_dim = D;
    d.head_dim_v = Dv;
    d.k_dtype = d.v_dtype = t;
    d.positions = positions;
    size_t rows;
    if (bs) {
        pool_plan(&pk, B, cache_seq, NULL, bs, vllm, 0, seed);
        pool_plan(&pv, B, cache_seq, NULL, bs, vllm, 0, seed);
        pk.heads = pv.heads = H;
        pk.dim = D;
        pv.dim = Dv;
        d.pages = pk.pages;
        rows = pk.pages.num_blocks * bs;
    } else {
        d.cache_seq = cache_seq;
        rows = B * cache_seq;
    }
    const size_t nk = rows * H * D, nv = rows * H * Dv;
    unsigned char *kc = malloc(nk * esize), *vc = malloc(nv * esize);
    memset(kc, 0x5a, nk * esize);
    memset(vc, 0x5a, nv * esize);
    cl_mem kbuf = upload(kc, nk * esize), vbuf = upload(vc, nv * esize);
    const size_t nd_k[4] = {B, H, N, D}, nd_v[4] = {B, H, N, Dv};
    const size_t cd_k[4] = {B, H, cache_seq, D},
                 cd_v[4] = {B, H, cache_seq, Dv};
    clattn_tensor tk = contiguous(upload(kn, B * H * N * D * 4), nd_k);
    clattn_tensor tv = contiguous(upload(vn, B * H * N * Dv * 4), nd_v);
    clattn_tensor ck = bs ? pool_view(&pk, kbuf) : contiguous(kbuf, cd_k);
    clattn_tensor cv = bs ? pool_view(&pv, vbuf) : contiguous(vbuf, cd_v);
    cl_event done = NULL;
    clattn_status s =
        clattn_kv_append(ctx, &d, &tk, &tv, &ck, &cv, 0, NULL, &done);
    wait_release(done);
    char label[128];
    snprintf(label, sizeof label, "append %s: block %zu %s %s", name, bs,
             vllm ? "vllm" : "openvino", clattn_dtype_name(t));
    if (CHECK_SUCCESS(ctx, s, "%s", label)) {
        /* The expected caches: the sentinel bytes, the new rows rounded. */
        for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h)
                for (size_t i = 0; i < N; ++i) {
                    const size_t j = (size_t)positions[b] + i;
                    size_t ko, vo;
                    if (bs) {
                        const int32_t blk =
                            pk.table[b * pk.pages.blocks_per_seq + j / bs];
                        ko = pool_at(&pk, (size_t)blk, h, j % bs);
                        vo = pool_at(&pv, (size_t)blk, h, j % bs);
                    } else {
                        ko = ((b * H + h) * cache_seq + j) * D;
                        vo = ((b * H + h) * cache_seq + j) * Dv;
                    }
                    for (size_t f = 0; f < D; ++f)
                        store_word(t, kn[((b * H + h) * N + i) * D + f],
                                   kc + (ko + f) * esize);
                    for (size_t f = 0; f < Dv; ++f)
                        store_word(t, vn[((b * H + h) * N + i) * Dv + f],
                                   vc + (vo + f) * esize);
                }
        unsigned char *gk = download(kbuf, nk * esize);
        unsigned char *gv = download(vbuf, nv * esize);
        size_t bad_k = 0, bad_v = 0;
        for (size_t i = 0; i < nk * esize; ++i)
            bad_k += gk[i] != kc[i];
        for (size_t i = 0; i < nv * esize; ++i)
            bad_v += gv[i] != vc[i];
        CHECK(bad_k == 0 && bad_v == 0,
              "%s: %zu K and %zu V bytes differ from the expected cache", label,
              bad_k, bad_v);
        free(gk);
        free(gv);
    }
    clReleaseMemObject(kbuf);
    clReleaseMemObject(vbuf);
    clReleaseMemObject(tk.buffer);
    clReleaseMemObject(tv.buffer);
    if (bs) {
        free(pk.table);
        free(pv.table);
    }
    free(kc);
    free(vc);
    free(kn);
    free(vn);
}

static void append_cases(void)
{
    static const clattn_dtype types[] = {CLATTN_DTYPE_FP32, CLATTN_DTYPE_FP16,
                                         CLATTN_DTYPE_BF16};
    /* Each (type, paged or not) is a program build: under
       CLATTN_TEST_SMALL each type runs in one of the three layouts. */
    for (size_t i = 0; i < 3; ++i) {
        if (!test_small() || i == 0)
            append_case("contiguous", 0, 0, types[i], 31 + i);
        if (!test_small() || i == 1)
            append_case("paged", 16, 1, types[i], 41 + i);
        if (!test_small() || i == 2)
            append_case("paged", 5, 0, types[i], 51 + i);
    }
}

/* The loop a server runs, on an fp16 paged cache: the prompt appended,
   then decode steps, each appending its token and attending over the
   sequence so far (key lengths). The last step's output equals the
   contiguous call on the same (rounded) keys. */
static void decode_loop(void)
{
    const size_t B = 2, Hq = 4, Hkv = 2, D = 64, bs = 16, prompt = 40,
                 steps = 5, cap = 64;
    test_rng r = test_rng_make(61);
    const size_t total = prompt + steps;
    /* Every token's K and V, [B][Hkv][total][D], and each step's Q. */
    float *k = test_random(&r, B * Hkv * total * D, -2, 2);
    float *v = test_random(&r, B * Hkv * total * D, -2, 2);
    float *q = test_random(&r, B * Hq * D, -2, 2);
    paged_pool pool;
    pool_plan(&pool, B, cap, NULL, bs, 1, 0, 61);
    pool.heads = Hkv;
    pool.dim = D;
    const size_t n = pool.pages.num_blocks * bs * Hkv * D;
    cl_mem kc = test_buffer(cl, NULL, n * 2), vc = test_buffer(cl, NULL, n * 2);
    const clattn_tensor ck = pool_view(&pool, kc), cv = pool_view(&pool, vc);

    /* new tokens of each sequence: [B][Hkv][count][D] from k and v */
    int32_t lengths[2] = {0, 0};
    clattn_status s = CLATTN_SUCCESS;
    for (size_t step = 0; step <= steps && s == CLATTN_SUCCESS; ++step) {
        const size_t first = step ? prompt + step - 1 : 0;
        const size_t count = step ? 1 : prompt;
        float *kn = malloc(B * Hkv * count * D * sizeof *kn);
        float *vn = malloc(B * Hkv * count * D * sizeof *vn);
        for (size_t bh = 0; bh < B * Hkv; ++bh)
            for (size_t i = 0; i < count; ++i) {
                memcpy(kn + (bh * count + i) * D,
                       k + (bh * total + first + i) * D, D * sizeof *kn);
                memcpy(vn + (bh * count + i) * D,
                       v + (bh * total + first + i) * D, D * sizeof *vn);
            }
        const size_t nd[4] = {B, Hkv, count, D};
        clattn_tensor tk = contiguous(upload(kn, B * Hkv * count * D * 4), nd);
        clattn_tensor tv = contiguous(upload(vn, B * Hkv * count * D * 4), nd);
        const clattn_kv_append_desc a = append_desc(
            B, Hkv, count, D, CLATTN_DTYPE_FP16, &pool.pages, lengths);
        s = clattn_kv_append(ctx, &a, &tk, &tv, &ck, &cv, 0, NULL, NULL);
        CHECK_SUCCESS(ctx, s, "decode loop: append at step %zu", step);
        clReleaseMemObject(tk.buffer);
        clReleaseMemObject(tv.buffer);
        free(kn);
        free(vn);
        lengths[0] += (int32_t)count;
        lengths[1] += (int32_t)count;
    }
    CHECK(clFinish(queue) == CL_SUCCESS, "clFinish");

    /* The last step's attention, paged, against a contiguous fp16 cache
       built on the host. */
    clattn_sdpa_desc d = desc_of(B, Hq, Hkv, 1, cap, D);
    d.k_dtype = d.v_dtype = CLATTN_DTYPE_FP16;
    d.key_lengths = lengths;
    uint16_t *kw = calloc(B * Hkv * cap * D, 2),
             *vw = calloc(B * Hkv * cap * D, 2);
    for (size_t bh = 0; bh < B * Hkv; ++bh)
        for (size_t j = 0; j < total; ++j)
            for (size_t f = 0; f < D; ++f) {
                kw[(bh * cap + j) * D + f] =
                    test_to_fp16(k[(bh * total + j) * D + f]);
                vw[(bh * cap + j) * D + f] =
                    test_to_fp16(v[(bh * total + j) * D + f]);
            }
    const size_t qd[4] = {B, Hq, 1, D}, kd[4] = {B, Hkv, cap, D};
    clattn_sdpa_tensors flat, paged;
    memset(&flat, 0, sizeof flat);
    flat.q = contiguous(upload(q, B * Hq * D * 4), qd);
    flat.k = contiguous(upload(kw, B * Hkv * cap * D * 2), kd);
    flat.v = contiguous(upload(vw, B * Hkv * cap * D * 2), kd);
    paged = flat;
    paged.k = ck;
    paged.v = cv;
    clattn_sdpa_desc dp = d;
    dp.kv_pages = pool.pages;
    float *a = run_sdpa(&d, &flat, CLATTN_SDPA_PATH_AUTO, 0, NULL,
                        "decode loop, contiguous");
    float *b = run_sdpa(&dp, &paged, CLATTN_SDPA_PATH_AUTO, 0, NULL,
                        "decode loop, paged");
    if (a && b)
        check_same("decode loop", "out", b, a, B * Hq * D);
    free(a);
    free(b);
    sdpa_tensors_release(&flat);
    clReleaseMemObject(kc);
    clReleaseMemObject(vc);
    free(kw);
    free(vw);
    free(k);
    free(v);
    free(q);
    free(pool.table);
}

/* An int32 tensor of a golden bundle, or NULL. */
/* A golden from PyTorch (tests/gen_golden_paged.py): the fp32 K and V
   appended into an empty pool must give torch's pool bits (its .half()
   or .bfloat16() rounding), and attention over that pool torch's
   float64 output. */
static void paged_golden(const char *file, const golden_bundle *g)
{
    const size_t B = (size_t)bundle_int(g, "batch", 0),
                 Hq = (size_t)bundle_int(g, "heads_q", 0),
                 Hkv = (size_t)bundle_int(g, "heads_kv", 0),
                 Sq = (size_t)bundle_int(g, "seq_q", 0),
                 T = (size_t)bundle_int(g, "tokens", 0),
                 D = (size_t)bundle_int(g, "head_dim", 0),
                 bs = (size_t)bundle_int(g, "block_size", 0),
                 per_seq = (size_t)bundle_int(g, "blocks_per_seq", 0),
                 nb = (size_t)bundle_int(g, "num_blocks", 0),
                 Skv = (size_t)bundle_int(g, "seq_kv", 0);
    const clattn_dtype dtype = (clattn_dtype)bundle_int(g, "dtype", 0);
    const float *q = bundle_f32(g, "q"), *k = bundle_f32(g, "k"),
                *v = bundle_f32(g, "v");
    const int32_t *table = bundle_i32(g, "block_table"),
                  *lengths = bundle_i32(g, "key_lengths"),
                  *kbits = bundle_i32(g, "k_pool_bits"),
                  *vbits = bundle_i32(g, "v_pool_bits");
    const double *want = test_bundle_f64(g, "out");
    const int complete = B && Hq && Hkv && Sq && T && D && bs && per_seq &&
                         nb && q && k && v && table && lengths && kbits &&
                         vbits && want;
    CHECK(complete, "%s: a field is missing", file);
    if (!complete)
        return;
    paged_pool pool;
    memset(&pool, 0, sizeof pool);
    pool.vllm = (int)bundle_int(g, "vllm", 0);
    pool.heads = Hkv;
    pool.dim = D;
    pool.pages.block_size = bs;
    pool.pages.num_blocks = nb;
    pool.pages.blocks_per_seq = per_seq;
    pool.pages.block_table = table;
    const size_t n_pool = nb * bs * Hkv * D;
    uint16_t *zeros = calloc(n_pool, 2);
    cl_mem kc = upload(zeros, n_pool * 2), vc = upload(zeros, n_pool * 2);
    free(zeros);
    const clattn_tensor ck = pool_view(&pool, kc), cv = pool_view(&pool, vc);
    const size_t nd[4] = {B, Hkv, T, D};
    clattn_tensor tk = contiguous(upload(k, B * Hkv * T * D * 4), nd);
    clattn_tensor tv = contiguous(upload(v, B * Hkv * T * D * 4), nd);
    int32_t *positions = calloc(B, sizeof *positions);
    const clattn_kv_append_desc a =
        append_desc(B, Hkv, T, D, dtype, &pool.pages, positions);
    clattn_status s =
        clattn_kv_append(ctx, &a, &tk, &tv, &ck, &cv, 0, NULL, NULL);
    free(positions);
    CHECK(clFinish(queue) == CL_SUCCESS, "clFinish");
    if (CHECK_SUCCESS(ctx, s, "%s: append", file)) {
        uint16_t *gk = download(kc, n_pool * 2), *gv = download(vc, n_pool * 2);
        size_t bad = 0;
        for (size_t i = 0; i < n_pool; ++i)
            bad += gk[i] != (uint16_t)kbits[i] || gv[i] != (uint16_t)vbits[i];
        CHECK(bad == 0, "%s: %zu pool elements differ from torch's rounding",
              file, bad);
        free(gk);
        free(gv);
    }
    clattn_sdpa_desc d = desc_of(B, Hq, Hkv, Sq, Skv, D);
    d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    d.key_lengths = lengths;
    d.k_dtype = d.v_dtype = dtype;
    d.kv_pages = pool.pages;
    const size_t qd[4] = {B, Hq, Sq, D};
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q = contiguous(upload(q, B * Hq * Sq * D * 4), qd);
    t.k = ck;
    t.v = cv;
    static const clattn_sdpa_path paths[] = {
        CLATTN_SDPA_PATH_AUTO, CLATTN_SDPA_PATH_UNFUSED,
        CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU};
    const size_t npaths = test_small() ? 1 : sizeof paths / sizeof paths[0];
    for (size_t i = 0; i < npaths; ++i) {
        char label[160];
        snprintf(label, sizeof label, "%s %s", file,
                 clattn_sdpa_path_name(paths[i]));
        float *got = run_sdpa(&d, &t, paths[i], 0, NULL, label);
        if (got)
            test_compare(label, "out", got, want, B * Hq * Sq * D, TOL_ATOL,
                         TOL_RTOL);
        free(got);
    }
    clReleaseMemObject(t.q.buffer);
    clReleaseMemObject(kc);
    clReleaseMemObject(vc);
    clReleaseMemObject(tk.buffer);
    clReleaseMemObject(tv.buffer);
}

/* A refused SDPA call: the status, the text names what is wrong, and
   out keeps its sentinel. */
static void expect_sdpa_refused(const char *label, const clattn_sdpa_desc *d,
                                const clattn_sdpa_tensors *in,
                                clattn_status want, const char *text)
{
    const size_t n_out = d->batch * d->heads_q * d->seq_q * d->head_dim;
    const size_t od[4] = {d->batch, d->heads_q, d->seq_q, d->head_dim};
    clattn_sdpa_tensors t = *in;
    cl_mem out = test_buffer_filled(cl, n_out, SENTINEL);
    t.out = contiguous(out, od);
    cl_event done = NULL;
    clattn_status s =
        clattn_sdpa(ctx, d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
    wait_release(done);
    CHECK(s == want && strstr(clattn_context_last_error(ctx), text),
          "%s: got %s (%s), want %s mentioning \"%s\"", label,
          clattn_status_string(s), clattn_context_last_error(ctx),
          clattn_status_string(want), text);
    CHECK(test_buffer_holds(queue, out, n_out, SENTINEL),
          "%s: out written by a refused call", label);
    clReleaseMemObject(out);
}

static void sdpa_refusals(void)
{
    const size_t B = 2, H = 2, S = 40, D = 16, bs = 16;
    clattn_sdpa_desc d = desc_of(B, H, H, 1, S, D);
    int32_t table[2][4] = {{1, 2, 3, -1}, {4, 5, 6, -1}};
    d.kv_pages.block_size = bs;
    d.kv_pages.num_blocks = 7;
    d.kv_pages.blocks_per_seq = 4;
    d.kv_pages.block_table = &table[0][0];
    const size_t qd[4] = {B, H, 1, D}, pd[4] = {7, H, bs, D};
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q = contiguous(test_buffer_filled(cl, B * H * D, 1.0f), qd);
    t.k = contiguous(test_buffer_filled(cl, 7 * H * bs * D, 1.0f), pd);
    t.v = contiguous(test_buffer_filled(cl, 7 * H * bs * D, 1.0f), pd);
    /* The valid call first: the refusals below differ in one thing. */
    float *ok = run_sdpa(&d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL,
                         "the valid paged call");
    free(ok);

    clattn_sdpa_desc e = d;
    table[1][2] = 7;
    expect_sdpa_refused("block id == num_blocks", &e, &t,
                        CLATTN_ERROR_INVALID_ARGUMENT,
                        "block_table[1][2] is 7");
    table[1][2] = -1;
    expect_sdpa_refused("block id -1 in use", &e, &t,
                        CLATTN_ERROR_INVALID_ARGUMENT,
                        "block_table[1][2] is -1");
    table[1][2] = 6;
    e.kv_pages.blocks_per_seq = 2;
    expect_sdpa_refused("a table too short", &e, &t, CLATTN_ERROR_INVALID_SHAPE,
                        "cover the 40 keys");
    e = d;
    e.kv_pages.block_size = 5000;
    expect_sdpa_refused("block size", &e, &t, CLATTN_ERROR_INVALID_ARGUMENT,
                        "block_size is 5000");
    e = d;
    e.kv_pages.block_table = NULL;
    expect_sdpa_refused("no table", &e, &t, CLATTN_ERROR_INVALID_ARGUMENT,
                        "block_table is NULL");
    e = d;
    e.kv_pages.num_blocks = 0;
    expect_sdpa_refused("no blocks", &e, &t, CLATTN_ERROR_INVALID_ARGUMENT,
                        "num_blocks is 0");
    e = d;
    e.kv_pages.block_size = 0;
    expect_sdpa_refused("fields without a block size", &e, &t,
                        CLATTN_ERROR_INVALID_ARGUMENT, "block_size is 0");
    e = d;
    e.kv_pages.num_blocks = 8; /* the pool buffers hold 7 */
    expect_sdpa_refused("a pool smaller than num_blocks", &e, &t,
                        CLATTN_ERROR_BUFFER_TOO_SMALL, "k: the view reaches");
    /* Key lengths shorten what must be valid: entries past them are not
       read, so -1 there is fine. */
    int32_t lengths[2] = {40, 32};
    table[1][2] = -1;
    e = d;
    e.key_lengths = lengths;
    float *short_ok = run_sdpa(&e, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL,
                               "-1 past the key length");
    free(short_ok);
    table[1][2] = 6;
    /* A caller of the layout before kv_pages: the bytes after its
       struct_size are garbage and not read, so K is a plain view (the
       pool buffer as [B][H][S][D] is large enough). */
    e = d;
    e.struct_size = offsetof(clattn_sdpa_desc, kv_pages);
    float *old = run_sdpa(&e, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL,
                          "the layout before kv_pages");
    free(old);
    sdpa_tensors_release(&t);
}

static void
expect_append_refused(const char *label, const clattn_kv_append_desc *d,
                      const clattn_tensor *kn, const clattn_tensor *vn,
                      const clattn_tensor *kc, const clattn_tensor *vc,
                      size_t n_cache, clattn_status want, const char *text)
{
    clattn_status s = clattn_kv_append(ctx, d, kn, vn, kc, vc, 0, NULL, NULL);
    CHECK(clFinish(queue) == CL_SUCCESS, "clFinish");
    CHECK(s == want && strstr(clattn_context_last_error(ctx), text),
          "%s: got %s (%s), want %s mentioning \"%s\"", label,
          clattn_status_string(s), clattn_context_last_error(ctx),
          clattn_status_string(want), text);
    CHECK(test_buffer_holds(queue, kc->buffer, n_cache, SENTINEL) &&
              (!vc || test_buffer_holds(queue, vc->buffer, n_cache, SENTINEL)),
          "%s: the cache was written by a refused call", label);
}

static void append_refusals(void)
{
    const size_t B = 2, H = 1, D = 8, bs = 4, N = 3;
    int32_t table[2][3] = {{0, 1, 2}, {3, 4, 5}};
    int32_t positions[2] = {2, 5};
    clattn_kv_append_desc d;
    clattn_kv_append_desc_init(&d);
    d.batch = B;
    d.heads_kv = H;
    d.new_tokens = N;
    d.head_dim = D;
    d.pages.block_size = bs;
    d.pages.num_blocks = 6;
    d.pages.blocks_per_seq = 3;
    d.pages.block_table = &table[0][0];
    d.positions = positions;
    const size_t nd[4] = {B, H, N, D}, pd[4] = {6, H, bs, D};
    const size_t n_cache = 6 * H * bs * D;
    clattn_tensor kn =
        contiguous(test_buffer_filled(cl, B * H * N * D, 1.0f), nd);
    clattn_tensor vn =
        contiguous(test_buffer_filled(cl, B * H * N * D, 1.0f), nd);
    clattn_tensor kc =
        contiguous(test_buffer_filled(cl, n_cache, SENTINEL), pd);
    clattn_tensor vc =
        contiguous(test_buffer_filled(cl, n_cache, SENTINEL), pd);
    const clattn_status INVALID = CLATTN_ERROR_INVALID_ARGUMENT;

    clattn_kv_append_desc e = d;
    e.positions = NULL;
    expect_append_refused("no positions", &e, &kn, &vn, &kc, &vc, n_cache,
                          INVALID, "positions is NULL");
    positions[1] = -1;
    expect_append_refused("a negative position", &d, &kn, &vn, &kc, &vc,
                          n_cache, INVALID, "positions[1] is -1");
    positions[1] = 10; /* 10 + 3 > 3 blocks of 4 */
    expect_append_refused("past the table", &d, &kn, &vn, &kc, &vc, n_cache,
                          INVALID, "positions[1] is 10");
    positions[1] = 5;
    table[1][1] = 6;
    expect_append_refused("a block id out of range", &d, &kn, &vn, &kc, &vc,
                          n_cache, INVALID, "block_table[1][1] is 6");
    table[1][1] = 0; /* sequence 0 writes block 0 too */
    expect_append_refused("two sequences into one block", &d, &kn, &vn, &kc,
                          &vc, n_cache, INVALID, "block 0 is written");
    table[1][1] = 4;
    table[0][1] = 0; /* one sequence, one block through two entries */
    expect_append_refused("one block twice in a row", &d, &kn, &vn, &kc, &vc,
                          n_cache, INVALID, "block 0 is written");
    table[0][1] = 1;
    e = d;
    e.cache_seq = 12;
    expect_append_refused("cache_seq with pages", &e, &kn, &vn, &kc, &vc,
                          n_cache, INVALID, "cache_seq is 12");
    e = d;
    memset(&e.pages, 0, sizeof e.pages);
    expect_append_refused("contiguous without cache_seq", &e, &kn, &vn, &kc,
                          &vc, n_cache, CLATTN_ERROR_INVALID_SHAPE,
                          "cache_seq is 0");
    e = d;
    e.k_dtype = (clattn_dtype)5;
    expect_append_refused("a dtype", &e, &kn, &vn, &kc, &vc, n_cache, INVALID,
                          "k_dtype (5)");
    e = d;
    e.new_tokens = 0;
    expect_append_refused("no tokens", &e, &kn, &vn, &kc, &vc, n_cache,
                          CLATTN_ERROR_INVALID_SHAPE, "new_tokens is 0");
    expect_append_refused("v_cache is k_cache", &d, &kn, &vn, &kc, &kc, n_cache,
                          INVALID, "overlaps");
    expect_append_refused("no v_cache", &d, &kn, &vn, &kc, NULL, n_cache,
                          INVALID, "v_cache is NULL");
    /* K rows of 16 floats in a pool buffer of 6 blocks of rows of 8. */
    e = d;
    e.head_dim = 16;
    e.head_dim_v = D;
    const size_t nd16[4] = {B, H, N, 16};
    clattn_tensor kn16 =
        contiguous(test_buffer_filled(cl, B * H * N * 16, 1.0f), nd16);
    const size_t pd16[4] = {6, H, bs, 16};
    clattn_tensor kc16 = kc;
    clattn_tensor_contiguous(&kc16, kc.buffer, 0, pd16);
    expect_append_refused("a cache too small", &e, &kn16, &vn, &kc16, &vc,
                          n_cache, CLATTN_ERROR_BUFFER_TOO_SMALL, "k_cache");
    clReleaseMemObject(kn16.buffer);

    /* The valid call writes: proof the refusals were refused for their
       one difference. */
    clattn_status s =
        clattn_kv_append(ctx, &d, &kn, &vn, &kc, &vc, 0, NULL, NULL);
    CHECK(clFinish(queue) == CL_SUCCESS, "clFinish");
    CHECK_SUCCESS(ctx, s, "%s", "the valid append");
    CHECK(!test_buffer_holds(queue, kc.buffer, n_cache, SENTINEL),
          "the valid append wrote nothing");
    clReleaseMemObject(kn.buffer);
    clReleaseMemObject(vn.buffer);
    clReleaseMemObject(kc.buffer);
    clReleaseMemObject(vc.buffer);
}

int main(void)
{
    ctx = test_context();
    clattn_info info;
    clattn_context_info(ctx, &info);
    cl = info.cl_ctx;
    queue = info.queue;
    paged_cases();
    host_entry();
    append_cases();
    decode_loop();
    test_golden_run("paged_fp16_decode.bin", paged_golden);
    test_golden_run("paged_bf16_chunk.bin", paged_golden);
    sdpa_refusals();
    append_refusals();
    clattn_context_destroy(ctx);
    return test_finish("test_kv_paged");
}
