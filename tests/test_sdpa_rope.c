/* Rotary position embeddings (clattn_sdpa_desc.rope, rope_q_positions,
   rope_k, and clattn_kv_append_desc.rope):
   - against the double reference (reference/reference.c rotates in
     double at the exact angles) on every path, AUTO, UNFUSED (probs
     too), FUSED_CPU and FUSED_GPU: both forms (GPT-J interleaved,
     NeoX half-split), partial rotary dims, an odd head dim, theta
     10000 and 500000, query positions, GQA decode with split keys,
     causal in both alignments, fp16 K rotated from its stored values,
     Q-only rotation, and queries 8 positions below 2^24, where an fp32
     angle p * inv_freq is off by up to half a radian (a mutation that
     forms the angle that way fails 9 checks);
   - packed batches: each sequence's keys from position 0, its queries
     from rope_q_positions[b];
   - a decode loop: the prompt appended with rope into a paged cache,
     then one token at a time appended and attended with its position,
     against the reference over the unrotated keys; and keys appended
     with rope into a contiguous cache give the same bits as rope_k on
     the unrotated keys (one rotation, in the append kernel or the
     pre-pass);
   - the host entry point, older layouts of both descs (no rotation,
     whatever follows struct_size), the PyTorch goldens
     (tests/gen_golden_rope.py: Hugging Face's formulas, float64), and
     every refusal with nothing written. */
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

static clattn_context *ctx;
static cl_context cl;
static cl_command_queue queue;

typedef struct rope_case {
    const char *name;
    size_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim;
    clattn_rope_style style;
    size_t rotary_dim;
    float theta;
    int32_t q_pos[4]; /* used when has_pos */
    int has_pos, rope_k;
    clattn_causal causal;
    clattn_dtype k_dtype;
    /* 0: AUTO only, and not in the small run (Oclgrind, Intel); 1:
       every path, AUTO only in the small run; 2: every path in both. The
       rotation is a pre-pass whatever the path, so each path needs a few
       cases (fp32 and 16-bit K, Q only), not all: the attention kernels
       are those of the other suites, and every build a case adds costs
       compile time in CI. */
    int small;
} rope_case;

/* clang-format off */
static const rope_case CASES[] = {
    {"neox full", 2, 4, 4, 37, 37, 64, CLATTN_ROPE_HALF, 0, 0.0f,
     {0}, 0, 1, CLATTN_CAUSAL_TOP_LEFT, CLATTN_DTYPE_FP32, 2},
    {"gptj partial", 1, 2, 2, 20, 33, 64, CLATTN_ROPE_INTERLEAVED, 32, 10000.0f,
     {5}, 1, 1, CLATTN_CAUSAL_NONE, CLATTN_DTYPE_FP32, 1},
    {"neox quarter gqa decode", 2, 8, 2, 1, 700, 128, CLATTN_ROPE_HALF, 32,
     0.0f, {699, 1000}, 1, 1, CLATTN_CAUSAL_NONE, CLATTN_DTYPE_FP32, 0},
    {"llama3 theta bottom-right", 1, 4, 4, 16, 40, 64, CLATTN_ROPE_HALF, 0,
     500000.0f, {24}, 1, 1, CLATTN_CAUSAL_BOTTOM_RIGHT, CLATTN_DTYPE_FP32, 0},
    {"far positions", 1, 2, 2, 8, 64, 64, CLATTN_ROPE_HALF, 0, 0.0f,
     {(1 << 24) - 8}, 1, 1, CLATTN_CAUSAL_NONE, CLATTN_DTYPE_FP32, 1},
    {"fp16 keys gptj", 1, 2, 1, 9, 50, 64, CLATTN_ROPE_INTERLEAVED, 0, 0.0f,
     {3}, 1, 1, CLATTN_CAUSAL_TOP_LEFT, CLATTN_DTYPE_FP16, 1},
    {"bf16 keys neox", 1, 2, 2, 9, 50, 64, CLATTN_ROPE_HALF, 0, 0.0f,
     {0}, 0, 1, CLATTN_CAUSAL_NONE, CLATTN_DTYPE_BF16, 0},
    {"queries only", 2, 2, 2, 3, 30, 64, CLATTN_ROPE_HALF, 0, 0.0f,
     {27, 12}, 1, 0, CLATTN_CAUSAL_NONE, CLATTN_DTYPE_FP32, 1},
    {"odd head dim", 1, 3, 3, 12, 12, 33, CLATTN_ROPE_HALF, 32, 0.0f,
     {0}, 0, 1, CLATTN_CAUSAL_TOP_LEFT, CLATTN_DTYPE_FP32, 0},
};
/* clang-format on */

/* A desc of these sizes, the rest at its defaults. */
static clattn_sdpa_desc shape_desc(size_t batch, size_t heads_q,
                                   size_t heads_kv, size_t seq_q, size_t seq_kv,
                                   size_t head_dim)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = batch;
    d.heads_q = heads_q;
    d.heads_kv = heads_kv;
    d.seq_q = seq_q;
    d.seq_kv = seq_kv;
    d.head_dim = head_dim;
    return d;
}

/* An append of new_tokens per sequence at positions, the rest at its
   defaults (a contiguous fp32 cache of cache_seq positions). */
static clattn_kv_append_desc append_desc(size_t batch, size_t heads_kv,
                                         size_t new_tokens, size_t head_dim,
                                         size_t cache_seq,
                                         const int32_t *positions)
{
    clattn_kv_append_desc a;
    clattn_kv_append_desc_init(&a);
    a.batch = batch;
    a.heads_kv = heads_kv;
    a.new_tokens = new_tokens;
    a.head_dim = head_dim;
    a.cache_seq = cache_seq;
    a.positions = positions;
    return a;
}

static void desc_of(const rope_case *c, clattn_sdpa_desc *d)
{
    *d = shape_desc(c->batch, c->heads_q, c->heads_kv, c->seq_q, c->seq_kv,
                    c->head_dim);
    d->causal = c->causal;
    d->k_dtype = c->k_dtype;
    d->rope.style = c->style;
    d->rope.rotary_dim = c->rotary_dim;
    d->rope.theta = c->theta;
    d->rope_q_positions = c->has_pos ? c->q_pos : NULL;
    d->rope_k = c->rope_k;
}

/* The shapes of d's tensors (packed or not), contiguous. */
static void dims_of(const clattn_sdpa_desc *d, size_t dq[4], size_t dk[4],
                    size_t dout[4], size_t dlse[4])
{
    const int packed = d->cu_seqlens_q != NULL;
    const size_t vb = packed ? 1 : d->batch;
    const size_t rows = packed ? (size_t)d->cu_seqlens_q[d->batch] : d->seq_q;
    const size_t keys = packed ? (size_t)d->cu_seqlens_k[d->batch] : d->seq_kv;
    const size_t hkv = d->heads_kv ? d->heads_kv : d->heads_q;
    const size_t q[4] = {vb, d->heads_q, rows, d->head_dim},
                 k[4] = {vb, hkv, keys, d->head_dim},
                 o[4] = {vb, d->heads_q, rows, d->head_dim},
                 l[4] = {vb, d->heads_q, rows, 1};
    memcpy(dq, q, sizeof q);
    memcpy(dk, k, sizeof k);
    memcpy(dout, o, sizeof o);
    memcpy(dlse, l, sizeof l);
}

static size_t count_of(const size_t d[4])
{
    return d[0] * d[1] * d[2] * d[3];
}

/* K or V floats as a buffer of dtype (x rounded to it in place first, so
   the reference sees the stored values). */
static cl_mem typed_buffer(float *x, size_t n, clattn_dtype dtype)
{
    uint16_t *words = test_round_to(dtype, x, n);
    cl_mem m = words ? test_buffer(cl, words, n * sizeof *words)
                     : test_buffer(cl, x, n * sizeof *x);
    free(words);
    return m;
}

/* One call on device buffers (V as K's type, head_dim_v = head_dim):
   out and lse (and probs when asked) read back; *intact says whether
   the sentinel after out held. */
static clattn_status run_device(const clattn_sdpa_desc *d, cl_mem qb, cl_mem kb,
                                cl_mem vb, clattn_sdpa_path path, float *out,
                                float *lse, float *probs, int *intact)
{
    size_t dq[4], dk[4], dout[4], dlse[4];
    dims_of(d, dq, dk, dout, dlse);
    const size_t dprobs[4] = {d->batch, d->heads_q, d->seq_q, d->seq_kv};
    const size_t n_out = count_of(dout), n_lse = count_of(dlse),
                 n_probs = count_of(dprobs);
    cl_mem ob = test_buffer_filled(cl, n_out + 16, SENTINEL);
    cl_mem lb = test_buffer_filled(cl, n_lse, SENTINEL);
    cl_mem pb = probs ? test_buffer_filled(cl, n_probs, SENTINEL) : NULL;
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, qb, 0, dq);
    clattn_tensor_contiguous(&t.k, kb, 0, dk);
    clattn_tensor_contiguous(&t.v, vb, 0, dk);
    clattn_tensor_contiguous(&t.out, ob, 0, dout);
    clattn_tensor_contiguous(&t.lse, lb, 0, dlse);
    if (pb)
        clattn_tensor_contiguous(&t.probs, pb, 0, dprobs);
    cl_event done = NULL;
    clattn_status s = clattn_sdpa(ctx, d, &t, path, 0, NULL, &done);
    if (s == CLATTN_SUCCESS) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
        float *o = malloc((n_out + 16) * sizeof *o);
        *intact = test_buffer_read_tail(queue, ob, n_out, 16, SENTINEL, o);
        memcpy(out, o, n_out * sizeof *o);
        free(o);
        clEnqueueReadBuffer(queue, lb, CL_TRUE, 0, n_lse * sizeof *lse, lse, 0,
                            NULL, NULL);
        if (pb)
            clEnqueueReadBuffer(queue, pb, CL_TRUE, 0, n_probs * sizeof *probs,
                                probs, 0, NULL, NULL);
    }
    clReleaseMemObject(ob);
    clReleaseMemObject(lb);
    if (pb)
        clReleaseMemObject(pb);
    return s;
}

/* Every path on d (AUTO only when auto_only) against the reference; q,
   k, v host arrays of d's shapes (k and v already rounded to d's K
   type). */
static void check_paths(const char *name, const clattn_sdpa_desc *d,
                        const float *q, const float *k, const float *v,
                        int auto_only)
{
    size_t dq[4], dk[4], dout[4], dlse[4];
    dims_of(d, dq, dk, dout, dlse);
    const size_t n_out = count_of(dout), n_lse = count_of(dlse),
                 n_probs = d->batch * d->heads_q * d->seq_q * d->seq_kv;
    const int packed = d->cu_seqlens_q != NULL;
    double *ref = malloc(n_out * sizeof *ref);
    double *ref_lse = malloc(n_lse * sizeof *ref_lse);
    double *ref_probs = packed ? NULL : malloc(n_probs * sizeof *ref_probs);
    ref_sdpa(d, q, k, v, NULL, ref, ref_probs, ref_lse);
    float *kv_copy = malloc(count_of(dk) * sizeof *kv_copy);
    memcpy(kv_copy, k, count_of(dk) * sizeof *kv_copy);
    cl_mem qb = test_buffer(cl, q, count_of(dq) * sizeof *q);
    cl_mem kb = typed_buffer(kv_copy, count_of(dk), d->k_dtype);
    memcpy(kv_copy, v, count_of(dk) * sizeof *kv_copy);
    cl_mem vb = typed_buffer(kv_copy, count_of(dk), d->v_dtype);
    free(kv_copy);
    float *out = malloc(n_out * sizeof *out);
    float *lse = malloc(n_lse * sizeof *lse);
    float *probs = malloc(n_probs * sizeof *probs);
    const clattn_sdpa_path paths[4] = {
        CLATTN_SDPA_PATH_AUTO, CLATTN_SDPA_PATH_UNFUSED,
        CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU};
    for (int pi = 0; pi < (auto_only ? 1 : 4); ++pi) {
        const clattn_sdpa_path path = paths[pi];
        if (packed && path == CLATTN_SDPA_PATH_UNFUSED)
            continue; /* packed batches run on the fused paths */
        const int with_probs = path == CLATTN_SDPA_PATH_UNFUSED;
        int intact = 0;
        clattn_status s = run_device(d, qb, kb, vb, path, out, lse,
                                     with_probs ? probs : NULL, &intact);
        if (!CHECK_SUCCESS(ctx, s, "%s (%s)", name,
                           clattn_sdpa_path_name(path)))
            continue;
        char what[96];
        snprintf(what, sizeof what, "(%s) out", clattn_sdpa_path_name(path));
        test_compare(name, what, out, ref, n_out, TOL_ATOL, TOL_RTOL);
        snprintf(what, sizeof what, "(%s) lse", clattn_sdpa_path_name(path));
        test_compare(name, what, lse, ref_lse, n_lse, TOL_ATOL, TOL_RTOL);
        if (with_probs)
            test_compare(name, "(unfused) probs", probs, ref_probs, n_probs,
                         TOL_ATOL, TOL_RTOL);
        CHECK(intact, "%s (%s): written past out", name,
              clattn_sdpa_path_name(path));
    }
    cl_mem all[3] = {qb, kb, vb};
    for (int i = 0; i < 3; ++i)
        clReleaseMemObject(all[i]);
    free(out);
    free(lse);
    free(probs);
    free(ref);
    free(ref_lse);
    free(ref_probs);
}

static void run_case(const rope_case *c, uint64_t seed, int auto_only)
{
    clattn_sdpa_desc d;
    desc_of(c, &d);
    size_t dq[4], dk[4], dout[4], dlse[4];
    dims_of(&d, dq, dk, dout, dlse);
    test_rng rng = test_rng_make(seed);
    float *q = test_random(&rng, count_of(dq), -2, 2);
    float *k = test_random(&rng, count_of(dk), -2, 2);
    float *v = test_random(&rng, count_of(dk), -2, 2);
    free(test_round_to(c->k_dtype, k, count_of(dk)));
    free(test_round_to(c->k_dtype, v, count_of(dk)));
    d.v_dtype = c->k_dtype;
    check_paths(c->name, &d, q, k, v, auto_only);
    free(q);
    free(k);
    free(v);
}

/* A packed batch: sequences of different lengths, each rotated from its
   own positions (keys from 0, queries from rope_q_positions[b]). */
static void check_packed(void)
{
    /* query lengths 5, 0, 11; key lengths 17, 4, 11 */
    const int32_t cu_q[4] = {0, 5, 5, 16}, cu_k[4] = {0, 17, 21, 32};
    const int32_t pos[3] = {12, 4, 0};
    clattn_sdpa_desc d = shape_desc(3, 4, 2, 11, 17, 64);
    d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    d.cu_seqlens_q = cu_q;
    d.cu_seqlens_k = cu_k;
    d.rope.style = CLATTN_ROPE_HALF;
    d.rope_q_positions = pos;
    d.rope_k = 1;
    size_t dq[4], dk[4], dout[4], dlse[4];
    dims_of(&d, dq, dk, dout, dlse);
    test_rng rng = test_rng_make(77);
    float *q = test_random(&rng, count_of(dq), -2, 2);
    float *k = test_random(&rng, count_of(dk), -2, 2);
    float *v = test_random(&rng, count_of(dk), -2, 2);
    check_paths("packed", &d, q, k, v, 0);
    free(q);
    free(k);
    free(v);
}

/* Appends new [batch][heads_kv][tokens][dim] K and V (fp32) into the
   cache views at positions, with rope; waits. */
static clattn_status append(const clattn_kv_append_desc *a, cl_mem kn,
                            cl_mem vn, const clattn_tensor *kc,
                            const clattn_tensor *vc)
{
    const size_t dn[4] = {a->batch, a->heads_kv, a->new_tokens, a->head_dim};
    clattn_tensor tk, tv;
    clattn_tensor_contiguous(&tk, kn, 0, dn);
    clattn_tensor_contiguous(&tv, vn, 0, dn);
    cl_event done = NULL;
    clattn_status s =
        clattn_kv_append(ctx, a, &tk, &tv, kc, vc, 0, NULL, &done);
    if (s == CLATTN_SUCCESS) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    return s;
}

/* Keys appended with rope into a contiguous cache, attended with rope_k
   0, give the bits that rope_k gives on the unrotated keys. */
static void check_append_matches_prepass(clattn_rope_style style)
{
    const size_t B = 2, H = 2, S = 24, D = 64;
    const size_t dims[4] = {B, H, S, D}, n = B * H * S * D;
    test_rng rng = test_rng_make(5 + (uint64_t)style);
    float *q = test_random(&rng, n, -2, 2);
    float *k = test_random(&rng, n, -2, 2);
    float *v = test_random(&rng, n, -2, 2);
    cl_mem qb = test_buffer(cl, q, n * sizeof *q);
    cl_mem kb = test_buffer(cl, k, n * sizeof *k);
    cl_mem vb = test_buffer(cl, v, n * sizeof *v);
    cl_mem kc = test_buffer_filled(cl, n, 0.0f);
    cl_mem vc = test_buffer_filled(cl, n, 0.0f);
    const int32_t at[2] = {0, 0};
    clattn_kv_append_desc a = append_desc(B, H, S, D, S, at);
    a.rope.style = style;
    a.rope.rotary_dim = 48;
    clattn_tensor tkc, tvc;
    clattn_tensor_contiguous(&tkc, kc, 0, dims);
    clattn_tensor_contiguous(&tvc, vc, 0, dims);
    clattn_status s = append(&a, kb, vb, &tkc, &tvc);
    CHECK_SUCCESS(ctx, s, "append with rope (style %d)", (int)style);
    clattn_sdpa_desc d = shape_desc(B, H, H, S, S, D);
    d.causal = CLATTN_CAUSAL_TOP_LEFT;
    d.rope.style = style;
    d.rope.rotary_dim = 48;
    const size_t nl = B * H * S;
    float *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
    float *l1 = malloc(nl * sizeof *l1), *l2 = malloc(nl * sizeof *l2);
    const clattn_sdpa_path paths[3] = {CLATTN_SDPA_PATH_UNFUSED,
                                       CLATTN_SDPA_PATH_FUSED_CPU,
                                       CLATTN_SDPA_PATH_FUSED_GPU};
    for (int pi = 0; pi < 3 && s == CLATTN_SUCCESS; ++pi) {
        int i1 = 0, i2 = 0;
        d.rope_k = 1;
        clattn_status s1 =
            run_device(&d, qb, kb, vb, paths[pi], o1, l1, NULL, &i1);
        d.rope_k = 0;
        clattn_status s2 =
            run_device(&d, qb, kc, vc, paths[pi], o2, l2, NULL, &i2);
        if (CHECK_SUCCESS(ctx, s1, "rope_k (%s)",
                          clattn_sdpa_path_name(paths[pi])) &&
            CHECK_SUCCESS(ctx, s2, "rotated cache (%s)",
                          clattn_sdpa_path_name(paths[pi])))
            CHECK(memcmp(o1, o2, n * sizeof *o1) == 0 &&
                      memcmp(l1, l2, nl * sizeof *l1) == 0,
                  "style %d (%s): keys rotated by the append differ from "
                  "the pre-pass's",
                  (int)style, clattn_sdpa_path_name(paths[pi]));
    }
    /* V is stored as given */
    float *vg = malloc(n * sizeof *vg);
    clEnqueueReadBuffer(queue, vc, CL_TRUE, 0, n * sizeof *vg, vg, 0, NULL,
                        NULL);
    CHECK(memcmp(vg, v, n * sizeof *vg) == 0, "append with rope changed V");
    free(vg);
    cl_mem all[5] = {qb, kb, vb, kc, vc};
    for (int i = 0; i < 5; ++i)
        clReleaseMemObject(all[i]);
    free(q);
    free(k);
    free(v);
    free(o1);
    free(o2);
    free(l1);
    free(l2);
}

/* A decode loop over a paged fp16 cache: the prompt appended with rope,
   then each step's token appended at its position and attended with
   rope_q_positions = that position; each step against the reference
   over the unrotated keys (rope_k). */
static void check_decode_loop(clattn_sdpa_path path)
{
    const size_t B = 2, Hq = 4, Hkv = 2, D = 64, P = 21, STEPS = 3;
    const size_t T = P + STEPS, BS = 16, BLOCKS_PER_SEQ = 2;
    test_rng rng = test_rng_make(31);
    /* keys and values of every position, [B][Hkv][T][D], fp16-exact */
    float *k = test_random(&rng, B * Hkv * T * D, -2, 2);
    float *v = test_random(&rng, B * Hkv * T * D, -2, 2);
    free(test_round_to(CLATTN_DTYPE_FP16, v, B * Hkv * T * D));
    float *q = test_random(&rng, B * Hq * STEPS * D, -2, 2);
    /* the pool: 4 blocks, [block][head][slot][dim], sequence b in blocks
       3 - 2b and 2 - 2b */
    const int32_t table[4] = {3, 2, 1, 0};
    const size_t pool_n = 4 * Hkv * BS * D;
    uint16_t *zeros = calloc(pool_n, sizeof *zeros);
    cl_mem kp = test_buffer(cl, zeros, pool_n * sizeof *zeros);
    cl_mem vp = test_buffer(cl, zeros, pool_n * sizeof *zeros);
    free(zeros);
    const size_t pool_dims[4] = {4, Hkv, BS, D};
    clattn_tensor tkp, tvp;
    clattn_tensor_contiguous(&tkp, kp, 0, pool_dims);
    clattn_tensor_contiguous(&tvp, vp, 0, pool_dims);
    clattn_kv_pages pages = {BS, 4, BLOCKS_PER_SEQ, table};
    const clattn_rope rope = {CLATTN_ROPE_HALF, 0, 0.0f};
    clattn_status s = CLATTN_SUCCESS;
    for (size_t step = 0; step <= STEPS && s == CLATTN_SUCCESS; ++step) {
        /* step 0 appends the prompt, step t > 0 the token at P + t - 1 */
        const size_t first = step ? P + step - 1 : 0, count = step ? 1 : P;
        float *kn = malloc(B * Hkv * count * D * sizeof *kn);
        float *vn = malloc(B * Hkv * count * D * sizeof *vn);
        for (size_t r = 0; r < B * Hkv; ++r) {
            memcpy(kn + r * count * D, k + (r * T + first) * D,
                   count * D * sizeof *kn);
            memcpy(vn + r * count * D, v + (r * T + first) * D,
                   count * D * sizeof *vn);
        }
        cl_mem knb = test_buffer(cl, kn, B * Hkv * count * D * sizeof *kn);
        cl_mem vnb = test_buffer(cl, vn, B * Hkv * count * D * sizeof *vn);
        free(kn);
        free(vn);
        const int32_t at[2] = {(int32_t)first, (int32_t)first};
        clattn_kv_append_desc a = append_desc(B, Hkv, count, D, 0, at);
        a.k_dtype = a.v_dtype = CLATTN_DTYPE_FP16;
        a.pages = pages;
        a.rope = rope;
        s = append(&a, knb, vnb, &tkp, &tvp);
        CHECK_SUCCESS(ctx, s, "decode loop: append at %zu", first);
        clReleaseMemObject(knb);
        clReleaseMemObject(vnb);
        if (!step || s)
            continue;
        /* attend: the query of this step over keys [0, first] */
        const size_t t = step - 1;
        float *qs = malloc(B * Hq * D * sizeof *qs);
        for (size_t r = 0; r < B * Hq; ++r)
            memcpy(qs + r * D, q + (r * STEPS + t) * D, D * sizeof *qs);
        const int32_t lengths[2] = {(int32_t)first + 1, (int32_t)first + 1};
        clattn_sdpa_desc d = shape_desc(B, Hq, Hkv, 1, BS * BLOCKS_PER_SEQ, D);
        d.key_lengths = lengths;
        d.k_dtype = d.v_dtype = CLATTN_DTYPE_FP16;
        d.kv_pages = pages;
        d.rope = rope;
        d.rope_q_positions = at;
        cl_mem qb = test_buffer(cl, qs, B * Hq * D * sizeof *qs);
        cl_mem ob = test_buffer_filled(cl, B * Hq * D, SENTINEL);
        const size_t dq[4] = {B, Hq, 1, D};
        clattn_sdpa_tensors tt;
        memset(&tt, 0, sizeof tt);
        clattn_tensor_contiguous(&tt.q, qb, 0, dq);
        tt.k = tkp;
        tt.v = tvp;
        clattn_tensor_contiguous(&tt.out, ob, 0, dq);
        cl_event done = NULL;
        s = clattn_sdpa(ctx, &d, &tt, path, 0, NULL, &done);
        if (CHECK_SUCCESS(ctx, s, "decode step %zu (%s)", t,
                          clattn_sdpa_path_name(path))) {
            clWaitForEvents(1, &done);
            clReleaseEvent(done);
            float *out = malloc(B * Hq * D * sizeof *out);
            clEnqueueReadBuffer(queue, ob, CL_TRUE, 0, B * Hq * D * sizeof *out,
                                out, 0, NULL, NULL);
            /* the reference: unrotated keys [0, first], rope_k; the cache
               holds them rotated and then rounded to fp16, so the
               tolerance is fp16's */
            const size_t nk = first + 1;
            float *kr = malloc(B * Hkv * nk * D * sizeof *kr);
            float *vr = malloc(B * Hkv * nk * D * sizeof *vr);
            for (size_t r = 0; r < B * Hkv; ++r) {
                memcpy(kr + r * nk * D, k + r * T * D, nk * D * sizeof *kr);
                memcpy(vr + r * nk * D, v + r * T * D, nk * D * sizeof *vr);
            }
            clattn_sdpa_desc rd = d;
            rd.seq_kv = nk;
            rd.key_lengths = NULL;
            memset(&rd.kv_pages, 0, sizeof rd.kv_pages);
            rd.k_dtype = rd.v_dtype = CLATTN_DTYPE_FP32;
            rd.rope_k = 1;
            double *ref = malloc(B * Hq * D * sizeof *ref);
            ref_sdpa(&rd, qs, kr, vr, NULL, ref, NULL, NULL);
            char what[64];
            snprintf(what, sizeof what, "step %zu (%s)", t,
                     clattn_sdpa_path_name(path));
            test_compare("decode loop", what, out, ref, B * Hq * D, 2e-3, 2e-3);
            free(out);
            free(kr);
            free(vr);
            free(ref);
        }
        clReleaseMemObject(qb);
        clReleaseMemObject(ob);
        free(qs);
    }
    clReleaseMemObject(kp);
    clReleaseMemObject(vp);
    free(q);
    free(k);
    free(v);
}

/* The host entry point rotates too. */
static void check_host(void)
{
    const rope_case *c = &CASES[1];
    clattn_sdpa_desc d;
    desc_of(c, &d);
    size_t dq[4], dk[4], dout[4], dlse[4];
    dims_of(&d, dq, dk, dout, dlse);
    test_rng rng = test_rng_make(9);
    float *q = test_random(&rng, count_of(dq), -2, 2);
    float *k = test_random(&rng, count_of(dk), -2, 2);
    float *v = test_random(&rng, count_of(dk), -2, 2);
    float *out = malloc(count_of(dout) * sizeof *out);
    double *ref = malloc(count_of(dout) * sizeof *ref);
    ref_sdpa(&d, q, k, v, NULL, ref, NULL, NULL);
    clattn_status s = clattn_sdpa_host(ctx, &d, q, k, v, NULL, out, NULL);
    if (CHECK_SUCCESS(ctx, s, "host entry point with rope"))
        test_compare("host", "out", out, ref, count_of(dout), TOL_ATOL,
                     TOL_RTOL);
    free(q);
    free(k);
    free(v);
    free(out);
    free(ref);
}

/* An older layout of each desc reads no rope, whatever lies past its
   struct_size. */
static void check_old_layouts(void)
{
    const size_t B = 1, H = 2, S = 10, D = 32, n = B * H * S * D;
    const size_t dims[4] = {B, H, S, D};
    test_rng rng = test_rng_make(3);
    float *q = test_random(&rng, n, -2, 2);
    float *k = test_random(&rng, n, -2, 2);
    float *v = test_random(&rng, n, -2, 2);
    cl_mem qb = test_buffer(cl, q, n * sizeof *q);
    cl_mem kb = test_buffer(cl, k, n * sizeof *k);
    cl_mem vb = test_buffer(cl, v, n * sizeof *v);
    clattn_sdpa_desc d = shape_desc(B, H, H, S, S, D);
    float *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
    float *l = malloc(B * H * S * sizeof *l);
    int intact = 0;
    clattn_status s1 =
        run_device(&d, qb, kb, vb, CLATTN_SDPA_PATH_AUTO, o1, l, NULL, &intact);
    d.struct_size = offsetof(clattn_sdpa_desc, rope);
    d.rope.style = CLATTN_ROPE_HALF;
    d.rope.rotary_dim = 7; /* garbage past the old layout */
    d.rope_k = 1;
    clattn_status s2 =
        run_device(&d, qb, kb, vb, CLATTN_SDPA_PATH_AUTO, o2, l, NULL, &intact);
    if (CHECK_SUCCESS(ctx, s1, "sdpa, current layout") &&
        CHECK_SUCCESS(ctx, s2, "sdpa, the layout before rope"))
        CHECK(memcmp(o1, o2, n * sizeof *o1) == 0,
              "the layout before rope rotated");

    cl_mem kc = test_buffer_filled(cl, n, 0.0f);
    cl_mem vc = test_buffer_filled(cl, n, 0.0f);
    clattn_tensor tkc, tvc;
    clattn_tensor_contiguous(&tkc, kc, 0, dims);
    clattn_tensor_contiguous(&tvc, vc, 0, dims);
    const int32_t at[1] = {0};
    clattn_kv_append_desc a = append_desc(B, H, S, D, S, at);
    a.struct_size = offsetof(clattn_kv_append_desc, rope);
    a.rope.style = (clattn_rope_style)99; /* past the old layout */
    clattn_status s3 = append(&a, kb, vb, &tkc, &tvc);
    if (CHECK_SUCCESS(ctx, s3, "append, the layout before rope")) {
        float *got = malloc(n * sizeof *got);
        clEnqueueReadBuffer(queue, kc, CL_TRUE, 0, n * sizeof *got, got, 0,
                            NULL, NULL);
        CHECK(memcmp(got, k, n * sizeof *got) == 0,
              "append's layout before rope rotated the keys");
        free(got);
    }
    cl_mem all[5] = {qb, kb, vb, kc, vc};
    for (int i = 0; i < 5; ++i)
        clReleaseMemObject(all[i]);
    free(q);
    free(k);
    free(v);
    free(o1);
    free(o2);
    free(l);
}

/* A golden of tests/gen_golden_rope.py: q, k, v [B][H][S][D] (k
   unrotated), positions, out and lse in float64. */
static void golden_case(const char *file, const golden_bundle *g)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = (size_t)bundle_int(g, "batch", 0);
    d.heads_q = (size_t)bundle_int(g, "heads_q", 0);
    d.heads_kv = (size_t)bundle_int(g, "heads_kv", 0);
    d.seq_q = (size_t)bundle_int(g, "seq_q", 0);
    d.seq_kv = (size_t)bundle_int(g, "seq_kv", 0);
    d.head_dim = (size_t)bundle_int(g, "head_dim", 0);
    d.causal = (clattn_causal)bundle_int(g, "causal", 0);
    d.rope.style = (clattn_rope_style)bundle_int(g, "rope_style", 0);
    d.rope.rotary_dim = (size_t)bundle_int(g, "rotary_dim", 0);
    d.rope.theta = (float)bundle_real(g, "theta", 0.0);
    d.rope_q_positions = bundle_i32(g, "q_positions");
    d.rope_k = 1;
    const float *q = bundle_f32(g, "q"), *k = bundle_f32(g, "k"),
                *v = bundle_f32(g, "v");
    const double *ref = test_bundle_f64(g, "out"),
                 *ref_lse = test_bundle_f64(g, "lse");
    const int complete = q && k && v && ref && ref_lse && d.rope_q_positions;
    CHECK(complete, "%s: tensors missing", file);
    if (!complete)
        return;
    size_t dq[4], dk[4], dout[4], dlse[4];
    dims_of(&d, dq, dk, dout, dlse);
    cl_mem qb = test_buffer(cl, q, count_of(dq) * sizeof *q);
    cl_mem kb = test_buffer(cl, k, count_of(dk) * sizeof *k);
    cl_mem vb = test_buffer(cl, v, count_of(dk) * sizeof *v);
    float *out = malloc(count_of(dout) * sizeof *out);
    float *lse = malloc(count_of(dlse) * sizeof *lse);
    const clattn_sdpa_path paths[4] = {
        CLATTN_SDPA_PATH_AUTO, CLATTN_SDPA_PATH_UNFUSED,
        CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU};
    for (int pi = 0; pi < (test_small() ? 1 : 4); ++pi) {
        int intact = 0;
        clattn_status s =
            run_device(&d, qb, kb, vb, paths[pi], out, lse, NULL, &intact);
        if (!CHECK_SUCCESS(ctx, s, "%s (%s)", file,
                           clattn_sdpa_path_name(paths[pi])))
            continue;
        char what[64];
        snprintf(what, sizeof what, "(%s) out",
                 clattn_sdpa_path_name(paths[pi]));
        test_compare(file, what, out, ref, count_of(dout), TOL_ATOL, TOL_RTOL);
        snprintf(what, sizeof what, "(%s) lse",
                 clattn_sdpa_path_name(paths[pi]));
        test_compare(file, what, lse, ref_lse, count_of(dlse), TOL_ATOL,
                     TOL_RTOL);
    }
    clReleaseMemObject(qb);
    clReleaseMemObject(kb);
    clReleaseMemObject(vb);
    free(out);
    free(lse);
}

/* One refused SDPA request: the status, and out untouched. */
static void refuse_sdpa(const char *what, const clattn_sdpa_desc *d,
                        clattn_status want)
{
    const size_t n = 2 * 2 * 8 * 32;
    cl_mem qb = test_buffer_filled(cl, n, 0.5f);
    cl_mem kb = test_buffer_filled(cl, n, 0.5f);
    cl_mem ob = test_buffer_filled(cl, n, SENTINEL);
    const size_t dims[4] = {2, 2, 8, 32};
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, qb, 0, dims);
    clattn_tensor_contiguous(&t.k, kb, 0, dims);
    clattn_tensor_contiguous(&t.v, kb, 0, dims);
    clattn_tensor_contiguous(&t.out, ob, 0, dims);
    clattn_status s =
        clattn_sdpa(ctx, d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    CHECK(s == want, "%s: got %s, want %s (%s)", what, clattn_status_string(s),
          clattn_status_string(want), clattn_context_last_error(ctx));
    clFinish(queue);
    if (want != CLATTN_SUCCESS)
        CHECK(test_buffer_holds(queue, ob, n, SENTINEL), "%s: out was written",
              what);
    clReleaseMemObject(qb);
    clReleaseMemObject(kb);
    clReleaseMemObject(ob);
}

/* Keys broadcast from one row (strides 0) name 2^24 keys of 256
   features for each of 64 batches: a rotated copy of 2^40 bytes, which
   no device allocates in one buffer. UNSUPPORTED, nothing written. */
static void check_copy_too_big(void)
{
    const size_t B = 64, S = (size_t)1 << 24, D = 256;
    clattn_sdpa_desc d = shape_desc(B, 1, 1, 1, S, D);
    d.rope.style = CLATTN_ROPE_HALF;
    d.rope_k = 1;
    cl_mem row = test_buffer_filled(cl, D, 0.5f);
    cl_mem qb = test_buffer_filled(cl, B * D, 0.5f);
    cl_mem ob = test_buffer_filled(cl, B * D, SENTINEL);
    const size_t dq[4] = {B, 1, 1, D};
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, qb, 0, dq);
    clattn_tensor_contiguous(&t.out, ob, 0, dq);
    t.k.buffer = t.v.buffer = row;
    t.k.strides[3] = t.v.strides[3] = 1; /* the rest 0: one row for all */
    clattn_status s =
        clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    CHECK(s == CLATTN_ERROR_UNSUPPORTED,
          "a rotated copy of 2^40 bytes: got %s (%s)", clattn_status_string(s),
          clattn_context_last_error(ctx));
    clFinish(queue);
    CHECK(test_buffer_holds(queue, ob, B * D, SENTINEL),
          "a rotated copy of 2^40 bytes: out was written");
    clReleaseMemObject(row);
    clReleaseMemObject(qb);
    clReleaseMemObject(ob);
}

static void check_refusals(void)
{
    clattn_sdpa_desc base = shape_desc(2, 2, 2, 8, 8, 32);
    base.rope.style = CLATTN_ROPE_HALF;
    const clattn_status INVALID = CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_sdpa_desc d = base;
    d.rope.style = (clattn_rope_style)3;
    refuse_sdpa("unknown style", &d, INVALID);
    d = base;
    d.rope.style = CLATTN_ROPE_NONE;
    d.rope.rotary_dim = 16;
    refuse_sdpa("NONE with rotary_dim", &d, INVALID);
    d = base;
    d.rope.style = CLATTN_ROPE_NONE;
    d.rope.theta = 10000.0f;
    refuse_sdpa("NONE with theta", &d, INVALID);
    d = base;
    d.rope.style = CLATTN_ROPE_NONE;
    d.rope_k = 1;
    refuse_sdpa("NONE with rope_k", &d, INVALID);
    const int32_t zero_pos[2] = {0, 0};
    d = base;
    d.rope.style = CLATTN_ROPE_NONE;
    d.rope_q_positions = zero_pos;
    refuse_sdpa("NONE with rope_q_positions", &d, INVALID);
    d = base;
    d.rope.rotary_dim = 15;
    refuse_sdpa("odd rotary_dim", &d, INVALID);
    d = base;
    d.rope.rotary_dim = 34;
    refuse_sdpa("rotary_dim above head_dim", &d, INVALID);
    const float thetas[5] = {-1.0f, 0.5f, 1e-45f, NAN, INFINITY};
    for (int i = 0; i < 5; ++i) {
        d = base;
        d.rope.theta = thetas[i];
        refuse_sdpa("theta below 1, NaN or infinite", &d, INVALID);
    }
    d = base;
    d.rope.theta = 1.0f;
    refuse_sdpa("(control) theta 1", &d, CLATTN_SUCCESS);
    const int32_t negative[2] = {0, -1};
    d = base;
    d.rope_q_positions = negative;
    refuse_sdpa("negative query position", &d, INVALID);
    const int32_t too_far[2] = {(1 << 24) - 7, 0}; /* 8 queries reach 2^24 */
    d = base;
    d.rope_q_positions = too_far;
    refuse_sdpa("query positions reaching 2^24", &d, INVALID);
    const int32_t last_fit[2] = {(1 << 24) - 8, 0}; /* the last: 2^24 - 1 */
    d = base;
    d.rope_q_positions = last_fit;
    refuse_sdpa("(control) query positions just below 2^24", &d,
                CLATTN_SUCCESS);
    d = base;
    d.rope_k = 1;
    d.seq_kv = ((size_t)1 << 24) + 1;
    refuse_sdpa("rope_k with keys past 2^24", &d, INVALID);
    /* rope_k over a paged cache */
    const int32_t table[2] = {0, 1};
    d = base;
    d.rope_k = 1;
    d.kv_pages.block_size = 8;
    d.kv_pages.num_blocks = 2;
    d.kv_pages.blocks_per_seq = 1;
    d.kv_pages.block_table = table;
    refuse_sdpa("rope_k with kv_pages", &d, CLATTN_ERROR_UNSUPPORTED);
    check_copy_too_big();

    /* the append's */
    const size_t n = 2 * 2 * 8 * 32, dims[4] = {2, 2, 8, 32};
    cl_mem kn = test_buffer_filled(cl, n, 0.5f);
    cl_mem kc = test_buffer_filled(cl, n, SENTINEL);
    cl_mem vc = test_buffer_filled(cl, n, SENTINEL);
    clattn_tensor tkc, tvc;
    clattn_tensor_contiguous(&tkc, kc, 0, dims);
    clattn_tensor_contiguous(&tvc, vc, 0, dims);
    clattn_kv_append_desc ab = append_desc(2, 2, 8, 32, 8, zero_pos);
    ab.rope.style = CLATTN_ROPE_INTERLEAVED;
    struct {
        const char *what;
        clattn_rope rope;
        size_t cache_seq;
        const int32_t *positions;
    } bad[] = {
        {"append: unknown style", {(clattn_rope_style)9, 0, 0.0f}, 8, zero_pos},
        {"append: NONE with rotary_dim",
         {CLATTN_ROPE_NONE, 8, 0.0f},
         8,
         zero_pos},
        {"append: odd rotary_dim", {CLATTN_ROPE_HALF, 9, 0.0f}, 8, zero_pos},
        {"append: negative theta", {CLATTN_ROPE_HALF, 0, -2.0f}, 8, zero_pos},
        {"append: positions reaching 2^24",
         {CLATTN_ROPE_HALF, 0, 0.0f},
         ((size_t)1 << 24) + 64,
         too_far},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        clattn_kv_append_desc a = ab;
        a.rope = bad[i].rope;
        a.cache_seq = bad[i].cache_seq;
        a.positions = bad[i].positions;
        clattn_status s = append(&a, kn, kn, &tkc, &tvc);
        CHECK(s == INVALID, "%s: got %s (%s)", bad[i].what,
              clattn_status_string(s), clattn_context_last_error(ctx));
        CHECK(test_buffer_holds(queue, kc, n, SENTINEL) &&
                  test_buffer_holds(queue, vc, n, SENTINEL),
              "%s: the cache was written", bad[i].what);
    }
    clReleaseMemObject(kn);
    clReleaseMemObject(kc);
    clReleaseMemObject(vc);
}

int main(void)
{
    ctx = test_context();
    clattn_info info;
    clattn_context_info(ctx, &info);
    cl = info.cl_ctx;
    queue = info.queue;
    const int small = test_small();
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; ++i)
        if (!small || CASES[i].small)
            run_case(&CASES[i], 100 + i,
                     small ? CASES[i].small == 1 : CASES[i].small == 0);
    check_packed();
    check_append_matches_prepass(CLATTN_ROPE_HALF);
    check_append_matches_prepass(CLATTN_ROPE_INTERLEAVED);
    check_decode_loop(CLATTN_SDPA_PATH_AUTO);
    if (!small)
        check_decode_loop(CLATTN_SDPA_PATH_FUSED_GPU);
    check_host();
    check_old_layouts();
    test_golden_run("rope_neox_chunk.bin", golden_case);
    test_golden_run("rope_gptj_prompt.bin", golden_case);
    check_refusals();
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_rope");
}
