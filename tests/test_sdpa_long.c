/* Long key sequences (label slow): the error of the softmax sum and of
   P.V must not grow with the number of keys. With near-uniform weights a
   plain running sum over the keys drifts by about seq_kv * eps: before the
   blocked, compensated sums the unfused path was 1.3e-3 off at 2^18 keys
   and 1e-2 at 2^20, the fused ones up to 2.4e-3 at 2^20; the tolerance is
   the suites' usual 1e-5 + 1e-4 * |ref| at every length.

   - near_uniform: 2^18 and 2^20 keys, q in [-0.01, 0.01] and k in [-1, 1]
     (weights within 2% of each other), v in [1, 2] (so the sums grow and
     their rounding errors do not cancel); through clattn_sdpa_host with
     and without probabilities, on the decode (seq_q <= 8) and row
     kernels, against the double reference.
   - equal_weights: 2^25 keys, past 2^24 where a float running sum of
     equal weights stops growing; K broadcast (every stride 0, so all
     scores are equal and the weights exactly uniform), V of 2^25 values
     in [1, 2] shared by the 8 heads (head stride 0). Then out is the mean
     of V and lse is log(2^25) + the score, computed here in double.
   - equal_weights_rows: 2^20 keys over 17 rows (the GPU-class unfused
     path's tiled sdpa_pv, from 16 rows; fewer take its direct form), the
     same with V one value, so that the rounding of a plain sum would all
     go one way.
   Each suite of the path runs (CLATTN_SDPA_PATH, tests/CMakeLists.txt). */
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void near_uniform(clattn_context *ctx, size_t seq_kv, size_t seq_q)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1, d.heads_q = 1, d.seq_q = seq_q, d.seq_kv = seq_kv;
    d.head_dim = 4;
    const size_t nq = seq_q * d.head_dim, nk = seq_kv * d.head_dim;
    const size_t nv = seq_kv * d.head_dim, nout = seq_q * d.head_dim;
    const size_t nprobs = seq_q * seq_kv;
    float *q = malloc(nq * sizeof *q), *k = malloc(nk * sizeof *k);
    float *v = malloc(nv * sizeof *v);
    test_rng rng = test_rng_make(seq_kv + seq_q);
    test_fill(&rng, q, nq, -0.01, 0.01);
    test_fill(&rng, k, nk, -1.0, 1.0);
    test_fill(&rng, v, nv, 1.0, 2.0);
    double *want = malloc(nout * sizeof *want);
    double *want_probs = malloc(nprobs * sizeof *want_probs);
    ref_sdpa(&d, q, k, v, NULL, want, want_probs, NULL);
    float *out = guarded_alloc(nout), *probs = guarded_alloc(nprobs);
    for (int with_probs = 0; with_probs < 2; ++with_probs) {
        clattn_status s = clattn_sdpa_host(ctx, &d, q, k, v, NULL, out,
                                           with_probs ? probs : NULL);
        CHECK(s == CLATTN_SUCCESS, "%zu keys, %zu rows: %s: %s", seq_kv, seq_q,
              clattn_status_string(s), clattn_context_last_error(ctx));
        char what[64];
        snprintf(what, sizeof what, "out, %zu keys, %zu rows%s", seq_kv, seq_q,
                 with_probs ? ", probs" : "");
        CHECK(compare_close(what, out, want, nout, TOL_ATOL, TOL_RTOL) == 0,
              "%s within tolerance", what);
        CHECK(guarded_intact(out, nout), "%s: canaries", what);
        if (with_probs)
            CHECK(compare_close("probs", probs, want_probs, nprobs, TOL_ATOL,
                                TOL_RTOL) == 0,
                  "probs, %zu keys, within tolerance", seq_kv);
    }
    guarded_free(out), guarded_free(probs);
    free(q), free(k), free(v), free(want), free(want_probs);
}

static cl_mem device_copy(const clattn_info *info, const float *host, size_t n)
{
    cl_int err;
    cl_mem m =
        clCreateBuffer(info->cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                       n * sizeof(float), (void *)host, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu floats): %d", n, (int)err);
    return err == CL_SUCCESS ? m : NULL;
}

static void equal_weights(clattn_context *ctx)
{
    const size_t seq_kv = (size_t)1 << 25, heads = 8;
    clattn_info info;
    CHECK(clattn_context_info(ctx, &info) == CLATTN_SUCCESS, "context info");
    if (info.max_alloc_bytes < seq_kv * sizeof(float)) {
        printf("equal weights: skipped, the device allocates at most %llu "
               "bytes\n",
               (unsigned long long)info.max_alloc_bytes);
        return;
    }
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1, d.heads_q = heads, d.seq_q = 1, d.seq_kv = seq_kv;
    d.head_dim = 1;
    const float qk[1] = {0.5f}; /* q = k = 0.5: every score 0.25 */
    float *v = malloc(seq_kv * sizeof *v);
    test_rng rng = test_rng_make(25);
    test_fill(&rng, v, seq_kv, 1.0, 2.0);
    double mean = 0.0;
    for (size_t j = 0; j < seq_kv; ++j)
        mean += v[j];
    mean /= (double)seq_kv;

    float init[16];
    for (int i = 0; i < 16; ++i)
        init[i] = -1.0f;
    cl_mem qbuf = device_copy(&info, qk, 1),
           vbuf = device_copy(&info, v, seq_kv);
    cl_mem obuf = device_copy(&info, init, 16);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q.buffer = qbuf; /* every stride 0: one value broadcast */
    t.k.buffer = qbuf;
    t.v.buffer = vbuf;
    t.v.strides[2] = 1; /* keys; the heads share V */
    t.out.buffer = obuf;
    t.out.strides[1] = 1;
    t.lse.buffer = obuf;
    t.lse.offset = 8;
    t.lse.strides[1] = 1;
    cl_event done = NULL;
    clattn_status s =
        clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
    CHECK(s == CLATTN_SUCCESS, "2^25 keys: %s: %s", clattn_status_string(s),
          clattn_context_last_error(ctx));
    float got[16] = {0};
    if (s == CLATTN_SUCCESS) {
        CHECK(clWaitForEvents(1, &done) == CL_SUCCESS, "event completes");
        clReleaseEvent(done);
        clEnqueueReadBuffer(info.queue, obuf, CL_TRUE, 0, sizeof got, got, 0,
                            NULL, NULL);
    }
    double want_out[8], want_lse[8];
    for (size_t h = 0; h < heads; ++h) {
        want_out[h] = mean;
        want_lse[h] = 0.25 + log((double)seq_kv);
    }
    CHECK(compare_close("out, 2^25 equal weights", got, want_out, heads,
                        TOL_ATOL, TOL_RTOL) == 0,
          "out is the mean of V (%.7f; got %.7f)", mean, (double)got[0]);
    CHECK(compare_close("lse, 2^25 equal weights", got + 8, want_lse, heads,
                        TOL_ATOL, TOL_RTOL) == 0,
          "lse is log(2^25) + 0.25 (%.7f; got %.7f)", want_lse[0],
          (double)got[8]);
    clReleaseMemObject(qbuf), clReleaseMemObject(vbuf);
    clReleaseMemObject(obuf);
    free(v);
}

/* Equal weights over 2^20 keys for 17 query rows (the GPU-class unfused
   path's tiled sdpa_pv, the CPU-class row kernels), and V one value
   broadcast (every stride 0), 4/3: each weight is exactly 2^-20 and every
   product p * v the same, so a plain running sum's rounding errors all
   fall the same way (0.0038 off at 2^20 keys with sdpa_pv's fold
   removed), where with the blocked, compensated sums the output is 4/3
   to the tolerance. */
static void equal_weights_rows(clattn_context *ctx)
{
    const size_t seq_kv = (size_t)1 << 20, seq_q = 17;
    clattn_info info;
    CHECK(clattn_context_info(ctx, &info) == CLATTN_SUCCESS, "context info");
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1, d.heads_q = 1, d.seq_q = seq_q, d.seq_kv = seq_kv;
    d.head_dim = 1;
    const float qk[1] = {0.5f}, v[1] = {4.0f / 3.0f};
    float got[17];
    for (size_t i = 0; i < seq_q; ++i)
        got[i] = -1.0f;
    cl_mem qbuf = device_copy(&info, qk, 1), vbuf = device_copy(&info, v, 1);
    cl_mem obuf = device_copy(&info, got, seq_q);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q.buffer = qbuf; /* every stride 0: one value broadcast */
    t.k.buffer = qbuf;
    t.v.buffer = vbuf;
    t.out.buffer = obuf;
    t.out.strides[2] = 1;
    cl_event done = NULL;
    clattn_status s =
        clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
    CHECK(s == CLATTN_SUCCESS, "2^20 keys, 17 rows: %s: %s",
          clattn_status_string(s), clattn_context_last_error(ctx));
    if (s == CLATTN_SUCCESS) {
        CHECK(clWaitForEvents(1, &done) == CL_SUCCESS, "event completes");
        clReleaseEvent(done);
        clEnqueueReadBuffer(info.queue, obuf, CL_TRUE, 0, sizeof got, got, 0,
                            NULL, NULL);
    }
    double want[17];
    for (size_t i = 0; i < seq_q; ++i)
        want[i] = (double)v[0];
    CHECK(compare_close("out, 2^20 equal weights, 17 rows", got, want, seq_q,
                        TOL_ATOL, TOL_RTOL) == 0,
          "out is V's value (%.7f; got %.7f)", want[0], (double)got[0]);
    clReleaseMemObject(qbuf), clReleaseMemObject(vbuf);
    clReleaseMemObject(obuf);
}

int main(void)
{
    clattn_context *ctx = test_context();
    const size_t lengths[2] = {(size_t)1 << 18, (size_t)1 << 20};
    for (int i = 0; i < 2; ++i) {
        near_uniform(ctx, lengths[i], 3);
        near_uniform(ctx, lengths[i], 9);
    }
    equal_weights(ctx);
    equal_weights_rows(ctx);
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_long");
}
