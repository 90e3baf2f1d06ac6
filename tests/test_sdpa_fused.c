/* The fused path against the unfused one and the double reference, each
   variant forced through clattn_sdpa's path argument: outputs and LSE on
   shapes that reach every kernel (CPU rows, CPU decode, GPU tiles) with and
   without key splitting, masks, key lengths, causal in both alignments,
   GQA, dropout (same Philox stream, so the same dropped positions); the
   CPU-class variant's probs (recomputed from the row statistics) on every
   shape against the unfused path's and the reference's; memory that grows
   linearly with the sequence; and the requests the fused path refuses,
   with nothing written. */
#include "reference.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <CL/cl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clattn_context *ctx;
static clattn_info info;

typedef struct device_case {
    sdpa_inputs in;
    cl_mem q, k, v, mask, out, lse;
    size_t dq[4], dk[4], dv[4], dout[4], dlse[4];
} device_case;

static cl_mem upload(const void *host, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(
        info.cl_ctx, CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0),
        bytes ? bytes : 4, (void *)host, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer: %d", err);
    return m;
}

static void case_make(device_case *c, const clattn_sdpa_desc *d,
                      int key_lengths, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    sdpa_inputs_make(&c->in, d, key_lengths, seed);
    const clattn_sdpa_desc *x = &c->in.desc;
    size_t hkv = x->heads_kv ? x->heads_kv : x->heads_q;
    size_t dvv = x->head_dim_v ? x->head_dim_v : x->head_dim;
    size_t dq[4] = {x->batch, x->heads_q, x->seq_q, x->head_dim};
    size_t dk[4] = {x->batch, hkv, x->seq_kv, x->head_dim};
    size_t dv[4] = {x->batch, hkv, x->seq_kv, dvv};
    size_t dout[4] = {x->batch, x->heads_q, x->seq_q, dvv};
    size_t dlse[4] = {x->batch, x->heads_q, x->seq_q, 1};
    memcpy(c->dq, dq, sizeof dq), memcpy(c->dk, dk, sizeof dk);
    memcpy(c->dv, dv, sizeof dv), memcpy(c->dout, dout, sizeof dout);
    memcpy(c->dlse, dlse, sizeof dlse);
    c->q = upload(c->in.q, c->in.n_q * 4);
    c->k = upload(c->in.k, c->in.n_k * 4);
    c->v = upload(c->in.v, c->in.n_v * 4);
    if (c->in.mask)
        c->mask =
            upload(c->in.mask,
                   c->in.n_mask * (x->mask_type == CLATTN_MASK_BOOL ? 1 : 4));
    c->out = upload(NULL, c->in.n_out * 4);
    c->lse = upload(NULL, c->in.n_out / dvv * 4);
}

static void case_free(device_case *c)
{
    cl_mem all[6] = {c->q, c->k, c->v, c->mask, c->out, c->lse};
    for (int i = 0; i < 6; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    sdpa_inputs_free(&c->in);
}

/* Runs one path; out and lse (host, n_out and rows floats) get the result. */
static clattn_status case_run(device_case *c, clattn_sdpa_path path, float *out,
                              float *lse)
{
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, c->q, 0, c->dq);
    clattn_tensor_contiguous(&t.k, c->k, 0, c->dk);
    clattn_tensor_contiguous(&t.v, c->v, 0, c->dv);
    clattn_tensor_contiguous(&t.out, c->out, 0, c->dout);
    clattn_tensor_contiguous(&t.lse, c->lse, 0, c->dlse);
    if (c->mask)
        clattn_tensor_contiguous(&t.mask, c->mask, 0, c->in.desc.mask_dims);
    clattn_status s = clattn_sdpa(ctx, &c->in.desc, &t, path, 0, NULL, NULL);
    if (s != CLATTN_SUCCESS)
        return s;
    size_t rows = c->dlse[0] * c->dlse[1] * c->dlse[2];
    clEnqueueReadBuffer(info.queue, c->out, CL_TRUE, 0, c->in.n_out * 4, out, 0,
                        NULL, NULL);
    clEnqueueReadBuffer(info.queue, c->lse, CL_TRUE, 0, rows * 4, lse, 0, NULL,
                        NULL);
    return CLATTN_SUCCESS;
}

/* case_run on outputs filled with NaN first: an element the path leaves
   unwritten cannot pass as the previous path's result. */
static clattn_status case_run_fresh(device_case *c, clattn_sdpa_path path,
                                    float *out, float *lse)
{
    const size_t rows = c->dlse[0] * c->dlse[1] * c->dlse[2];
    const float nan = NAN;
    clEnqueueFillBuffer(info.queue, c->out, &nan, sizeof nan, 0,
                        c->in.n_out * 4, 0, NULL, NULL);
    clEnqueueFillBuffer(info.queue, c->lse, &nan, sizeof nan, 0, rows * 4, 0,
                        NULL, NULL);
    return case_run(c, path, out, lse);
}

/* Runs path with a probs view (and out; an lse view when lse is not
   NULL, else the fused path keeps its own row statistics) on outputs
   filled with NaN; probs, out and lse (host) get the result. */
static clattn_status case_run_probs(device_case *c, clattn_sdpa_path path,
                                    float *out, float *probs, float *lse)
{
    const size_t rows = c->dlse[0] * c->dlse[1] * c->dlse[2];
    const size_t np = c->in.n_probs;
    cl_mem pm = upload(NULL, np * 4);
    const float nan = NAN;
    clEnqueueFillBuffer(info.queue, c->out, &nan, sizeof nan, 0,
                        c->in.n_out * 4, 0, NULL, NULL);
    clEnqueueFillBuffer(info.queue, pm, &nan, sizeof nan, 0, np * 4, 0, NULL,
                        NULL);
    clEnqueueFillBuffer(info.queue, c->lse, &nan, sizeof nan, 0, rows * 4, 0,
                        NULL, NULL);
    const clattn_sdpa_desc *x = &c->in.desc;
    size_t dp[4] = {x->batch, x->heads_q, x->seq_q, x->seq_kv};
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, c->q, 0, c->dq);
    clattn_tensor_contiguous(&t.k, c->k, 0, c->dk);
    clattn_tensor_contiguous(&t.v, c->v, 0, c->dv);
    clattn_tensor_contiguous(&t.out, c->out, 0, c->dout);
    clattn_tensor_contiguous(&t.probs, pm, 0, dp);
    if (lse)
        clattn_tensor_contiguous(&t.lse, c->lse, 0, c->dlse);
    if (c->mask)
        clattn_tensor_contiguous(&t.mask, c->mask, 0, x->mask_dims);
    clattn_status s = clattn_sdpa(ctx, x, &t, path, 0, NULL, NULL);
    if (s == CLATTN_SUCCESS) {
        clEnqueueReadBuffer(info.queue, c->out, CL_TRUE, 0, c->in.n_out * 4,
                            out, 0, NULL, NULL);
        clEnqueueReadBuffer(info.queue, pm, CL_TRUE, 0, np * 4, probs, 0, NULL,
                            NULL);
        if (lse)
            clEnqueueReadBuffer(info.queue, c->lse, CL_TRUE, 0, rows * 4, lse,
                                0, NULL, NULL);
    }
    clReleaseMemObject(pm);
    return s;
}

static size_t close_to_float(const char *what, const float *got,
                             const float *want, size_t n);

/* The fused-cpu path's weights (the plan AUTO or $CLATTN_SDPA_PROBS_PLAN
   takes) against the unfused path's and the reference's: every element of
   probs, the same dropped positions, and out unchanged by asking for
   them; with an lse view too on the second of two runs (the recompute
   plan's rows then skip their own statistics). */
static void probs_agree(const char *name, device_case *c, const double *want)
{
    const size_t n = c->in.n_out, np = c->in.n_probs;
    const size_t rows = c->dlse[0] * c->dlse[1] * c->dlse[2];
    float *u_out = malloc(n * 4), *u_p = malloc(np * 4);
    float *f_out = malloc(n * 4), *f_p = malloc(np * 4);
    float *u_lse = malloc(rows * 4), *f_lse = malloc(rows * 4);
    clattn_status s =
        case_run_probs(c, CLATTN_SDPA_PATH_UNFUSED, u_out, u_p, u_lse);
    CHECK(s == CLATTN_SUCCESS, "%s unfused with probs: %s", name,
          clattn_status_string(s));
    if (s == CLATTN_SUCCESS) {
        s = case_run_probs(c, CLATTN_SDPA_PATH_FUSED_CPU, f_out, f_p, NULL);
        CHECK(s == CLATTN_SUCCESS, "%s fused-cpu with probs: %s (%s)", name,
              clattn_status_string(s), clattn_context_last_error(ctx));
    }
    if (s == CLATTN_SUCCESS && !test_small()) {
        float *again = malloc(np * 4);
        s = case_run_probs(c, CLATTN_SDPA_PATH_FUSED_CPU, f_out, again, f_lse);
        CHECK(s == CLATTN_SUCCESS, "%s fused-cpu with probs and lse: %s (%s)",
              name, clattn_status_string(s), clattn_context_last_error(ctx));
        CHECK(s != CLATTN_SUCCESS || close_to_float("fused-cpu lse with probs",
                                                    f_lse, u_lse, rows) == 0,
              "%s fused-cpu: lse with probs differs from the unfused path",
              name);
        CHECK(s != CLATTN_SUCCESS || memcmp(again, f_p, np * 4) == 0,
              "%s fused-cpu: probs with an lse view are other bits", name);
        free(again);
    }
    if (s == CLATTN_SUCCESS) {
        CHECK(close_to_float("fused-cpu probs vs unfused", f_p, u_p, np) == 0,
              "%s fused-cpu: probs differ from the unfused path", name);
        CHECK(close_to_float("fused-cpu out with probs", f_out, u_out, n) == 0,
              "%s fused-cpu: out with probs differs from the unfused path",
              name);
        if (c->in.desc.dropout_p == 0.0f) {
            double *want_p = malloc(np * sizeof *want_p);
            double *ref_out = malloc(n * sizeof *ref_out);
            ref_sdpa(&c->in.desc, c->in.q, c->in.k, c->in.v, c->in.mask,
                     ref_out, want_p, NULL);
            free(ref_out);
            CHECK(compare_close("fused-cpu probs vs reference", f_p, want_p, np,
                                TOL_ATOL, TOL_RTOL) == 0,
                  "%s fused-cpu: probs differ from the reference", name);
            CHECK(compare_close("fused-cpu out with probs vs reference", f_out,
                                want, n, TOL_ATOL, TOL_RTOL) == 0,
                  "%s fused-cpu: out with probs differs from the reference",
                  name);
            free(want_p);
        }
    }
    free(u_out), free(u_p), free(f_out), free(f_p), free(u_lse), free(f_lse);
}

static size_t close_to_float(const char *what, const float *got,
                             const float *want, size_t n)
{
    double *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; ++i)
        w[i] = want[i];
    size_t bad = compare_close(what, got, w, n, TOL_ATOL, TOL_RTOL);
    free(w);
    return bad;
}

static const clattn_sdpa_path fused_paths[2] = {CLATTN_SDPA_PATH_FUSED_CPU,
                                                CLATTN_SDPA_PATH_FUSED_GPU};

/* Each fused variant against the unfused path and the reference; both
   fused variants twice, for identical bits. */
static void agree(const char *name, const clattn_sdpa_desc *d, int key_lengths,
                  uint64_t seed, int with_probs)
{
    device_case c;
    case_make(&c, d, key_lengths, seed);
    const size_t n = c.in.n_out, rows = c.dlse[0] * c.dlse[1] * c.dlse[2];
    float *u_out = malloc(n * 4), *u_lse = malloc(rows * 4);
    float *f_out = malloc(n * 4), *f_lse = malloc(rows * 4);
    float *again = malloc(n * 4);
    double *want = malloc(n * sizeof *want), *want_lse = malloc(rows * 8);
    ref_sdpa(&c.in.desc, c.in.q, c.in.k, c.in.v, c.in.mask, want, NULL,
             want_lse);
    clattn_status s =
        case_run_fresh(&c, CLATTN_SDPA_PATH_UNFUSED, u_out, u_lse);
    CHECK(s == CLATTN_SUCCESS, "%s unfused: %s", name, clattn_status_string(s));
    for (int v = 0; v < 2 && s == CLATTN_SUCCESS; ++v) {
        const char *path = clattn_sdpa_path_name(fused_paths[v]);
        s = case_run_fresh(&c, fused_paths[v], f_out, f_lse);
        CHECK(s == CLATTN_SUCCESS, "%s %s: %s (%s)", name, path,
              clattn_status_string(s), clattn_context_last_error(ctx));
        if (s != CLATTN_SUCCESS)
            break;
        CHECK(close_to_float("fused vs unfused", f_out, u_out, n) == 0,
              "%s %s: out differs from the unfused path", name, path);
        CHECK(close_to_float("fused vs unfused lse", f_lse, u_lse, rows) == 0,
              "%s %s: lse differs from the unfused path", name, path);
        if (c.in.desc.dropout_p == 0.0f) {
            CHECK(compare_close("fused vs reference", f_out, want, n, TOL_ATOL,
                                TOL_RTOL) == 0,
                  "%s %s: out differs from the reference", name, path);
            CHECK(compare_close("fused lse vs reference", f_lse, want_lse, rows,
                                TOL_ATOL, TOL_RTOL) == 0,
                  "%s %s: lse differs from the reference", name, path);
        }
        if (test_small())
            continue; /* Oclgrind: one run per path is enough */
        s = case_run_fresh(&c, fused_paths[v], again, f_lse);
        CHECK(s == CLATTN_SUCCESS && memcmp(again, f_out, n * 4) == 0,
              "%s %s: a second run gives other bits", name, path);
    }
    if (s == CLATTN_SUCCESS && with_probs)
        probs_agree(name, &c, want);
    free(u_out), free(u_lse), free(f_out), free(f_lse), free(again);
    free(want), free(want_lse);
    case_free(&c);
}

static clattn_sdpa_desc shape(size_t b, size_t hq, size_t hkv, size_t sq,
                              size_t skv, size_t d, size_t dv)
{
    clattn_sdpa_desc x;
    clattn_sdpa_desc_init(&x);
    x.batch = b, x.heads_q = hq, x.heads_kv = hkv, x.seq_q = sq;
    x.seq_kv = skv, x.head_dim = d, x.head_dim_v = dv;
    return x;
}

static void set_mask(clattn_sdpa_desc *d, clattn_mask_type type, int full)
{
    d->mask_type = type;
    d->mask_dims[0] = full ? d->batch : 1;
    d->mask_dims[1] = full ? d->heads_q : 1;
    d->mask_dims[2] = d->seq_q;
    d->mask_dims[3] = d->seq_kv;
}

static void agreement_suite(void)
{
    const int small = test_small();
    /* seq_q > 8 runs the CPU rows kernel, <= 8 the decode kernel; few
       (batch, head) rows with many keys split the keys. */
    const size_t sq_rows = small ? 37 : 133, skv_long = small ? 520 : 3000;
    struct {
        const char *name;
        clattn_sdpa_desc d;
        int key_lengths;
    } cases[] = {
        {"rows", shape(2, 3, 3, sq_rows, 70, 64, 64), 0},
        {"rows, d 17, dv 40", shape(1, 2, 2, 45, 129, 17, 40), 0},
        {"rows, split keys", shape(1, 1, 1, 40, skv_long, 32, 32), 0},
        {"decode, split keys", shape(1, 2, 2, 1, skv_long, 64, 64), 0},
        {"decode, 8 rows, GQA", shape(2, 4, 2, 8, skv_long, 48, 48), 1},
        /* fused_gpu_decode: one row of 4 query heads per K/V head, split
           keys; and 16 heads x 5 rows of one K/V head, more rows than a
           work-group holds, so a group's rows span heads and rows. */
        {"decode, 1 row, GQA 4", shape(2, 8, 2, 1, skv_long, 64, 64), 1},
        {"decode, 5 rows, MQA 16", shape(1, 16, 1, 5, 300, 32, 32), 0},
        {"rows, key lengths", shape(3, 2, 2, 20, 150, 16, 16), 1},
        /* the GPU kernel's head-dim 96 build (head_dim_v sets the width);
           80's runs in test_sdpa_reference */
        {"rows, d 72, dv 96, GQA", shape(1, 4, 2, 40, 90, 72, 96), 0},
        {"d 1", shape(1, 2, 2, 9, 33, 1, 1), 0},
        {"d 256", shape(1, 1, 1, small ? 10 : 40, small ? 20 : 90, 256, 256),
         0},
        {"rows, MQA", shape(2, 4, 1, 35, 77, 24, 24), 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        char name[128];
        /* On Oclgrind (small), two of the six variants per shape, in turn,
           so that every variant still meets every kernel. */
        for (int k = 0; k < (small ? 2 : 6); ++k) {
            const int variant = small ? (int)(i + 3 * (size_t)k) % 6 : k;
            clattn_sdpa_desc d = cases[i].d;
            const char *what = "plain";
            switch (variant) {
            case 1: d.causal = CLATTN_CAUSAL_TOP_LEFT, what = "causal"; break;
            case 2:
                d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT, what = "causal br";
                break;
            case 3:
                set_mask(&d, CLATTN_MASK_BOOL, 1), what = "bool mask";
                break;
            case 4:
                set_mask(&d, CLATTN_MASK_ADDITIVE, 0);
                d.causal = CLATTN_CAUSAL_TOP_LEFT, what = "additive + causal";
                break;
            case 5:
                d.dropout_p = 0.3f, d.dropout_seed = 99, d.dropout_offset = 5;
                what = "dropout";
                break;
            }
            snprintf(name, sizeof name, "%s, %s", cases[i].name, what);
            /* Probs on every variant; on Oclgrind (small) on the first of
               the two, for score matrices up to 16384 elements (the others
               tripled the suite's time there). */
            const size_t scores = d.batch * d.heads_q * d.seq_q * d.seq_kv;
            const int with_probs = !small || (k == 0 && scores <= 16384);
            agree(name, &d, cases[i].key_lengths, 1000 + i * 10 + variant,
                  with_probs);
        }
    }
}

/* The library's own device memory for one fused call. */
static size_t fused_peak(size_t seq, clattn_sdpa_path path)
{
    clattn_sdpa_desc d = shape(1, 2, 2, seq, seq, 64, 64);
    d.causal = CLATTN_CAUSAL_TOP_LEFT;
    device_case c;
    case_make(&c, &d, 0, 7);
    float *out = malloc(c.in.n_out * 4), *lse = malloc(seq * 2 * 4);
    clFinish(info.queue);
    clattn_memory_stats_reset_peak(ctx);
    clattn_status s = case_run(&c, path, out, lse);
    CHECK(s == CLATTN_SUCCESS, "memory case: %s", clattn_status_string(s));
    clattn_memory_stats st;
    clattn_memory_stats_get(ctx, &st);
    free(out), free(lse);
    case_free(&c);
    return st.peak_bytes;
}

/* Linear in the sequence: doubling it at most doubles the library's peak
   (plus a block of padding), and the peak stays far below one score
   matrix. */
static void memory_is_linear(void)
{
    const size_t s1 = test_small() ? 128 : 2048;
    for (int v = 0; v < 2; ++v) {
        size_t a = fused_peak(s1, fused_paths[v]);
        size_t b = fused_peak(2 * s1, fused_paths[v]);
        size_t scores = 2 * s1 * s1 * sizeof(float);
        printf("%s: library device memory %zu bytes at S=%zu, %zu at S=%zu\n",
               clattn_sdpa_path_name(fused_paths[v]), a, s1, b, 2 * s1);
        CHECK(b <= 2 * a + 2 * 2 * 64 * 64 * 4 * 2,
              "%s: memory grows faster than S (%zu -> %zu)",
              clattn_sdpa_path_name(fused_paths[v]), a, b);
        /* (packed K and V are 2*S*D floats per head: at the small
           shapes of the Oclgrind run that is not yet far below S*S) */
        CHECK(test_small() || a < scores / 4,
              "%s: %zu bytes is not far below the %zu of the score matrix",
              clattn_sdpa_path_name(fused_paths[v]), a, scores);
    }
    clattn_memory_stats st;
    clattn_memory_stats_get(ctx, &st);
    CHECK(st.current_bytes == 0, "%zu bytes still counted after the calls",
          st.current_bytes);
}

/* A decode call splits its keys: the only library buffer is the partials,
   (B*H*nsplit*Sq*(Dv+2) floats), so the peak shows nsplit > 1. */
static void decode_splits(void)
{
    const size_t skv = test_small() ? 1024 : 8192;
    clattn_sdpa_desc d = shape(1, 1, 1, 1, skv, 64, 64);
    device_case c;
    case_make(&c, &d, 0, 8);
    float out[64], lse[1];
    clFinish(info.queue);
    clattn_memory_stats_reset_peak(ctx);
    clattn_status s = case_run(&c, CLATTN_SDPA_PATH_FUSED_CPU, out, lse);
    clattn_memory_stats st;
    clattn_memory_stats_get(ctx, &st);
    const size_t per_split = (64 + 2) * sizeof(float);
    CHECK(s == CLATTN_SUCCESS && st.peak_bytes >= 2 * per_split &&
              st.peak_bytes % per_split == 0,
          "decode on 1 head: %zu bytes of partials, not >= 2 splits",
          st.peak_bytes);
    printf("decode Skv=%zu: %zu key slices\n", skv, st.peak_bytes / per_split);
    case_free(&c);
}

/* The fused-cpu path's plan for probs, seen in the library's memory for
   the call: packed K and V (64-key blocks, V rows padded to 64) on both
   plans, and on the recompute plan the partials too (B*H*nsplit*Sq*(Dv+2)
   floats). AUTO materializes one head of 256 rows (its keys never split
   at 256), and recomputes one head of 32 rows over 4096 keys where the
   device has more compute units than that one work-item, so that the
   split keys use them; $CLATTN_SDPA_PROBS_PLAN (the @probs-* runs) pins
   either plan for both. */
static void probs_plans(void)
{
    const char *pin = getenv("CLATTN_SDPA_PROBS_PLAN");
    const int pinned = pin && *pin && strcmp(pin, "auto") != 0;
    const struct {
        size_t sq, skv;
        int auto_recomputes;
    } cases[] = {{256, 256, 0}, {32, 4096, info.compute_units > 1}};
    for (size_t i = 0; i < 2; ++i) {
        if (test_small() && cases[i].skv > 256)
            continue; /* Oclgrind: the short case only */
        clattn_sdpa_desc d = shape(1, 1, 1, cases[i].sq, cases[i].skv, 64, 64);
        device_case c;
        case_make(&c, &d, 0, 20 + i);
        float *out = malloc(c.in.n_out * 4), *p = malloc(c.in.n_probs * 4);
        clFinish(info.queue);
        clattn_memory_stats_reset_peak(ctx);
        clattn_status s =
            case_run_probs(&c, CLATTN_SDPA_PATH_FUSED_CPU, out, p, NULL);
        clattn_memory_stats st;
        clattn_memory_stats_get(ctx, &st);
        const size_t packed = 2 * cases[i].skv * 64 * sizeof(float);
        const size_t per_split = cases[i].sq * (64 + 2) * sizeof(float);
        const int recomputes =
            pinned ? strcmp(pin, "recompute") == 0 : cases[i].auto_recomputes;
        const size_t extra = st.peak_bytes - packed;
        CHECK(s == CLATTN_SUCCESS && st.peak_bytes >= packed &&
                  (recomputes ? extra >= per_split && extra % per_split == 0
                              : extra == 0),
              "probs, 1 head of %zu rows over %zu keys (%s): %zu bytes, "
              "want %zu for packed K/V %s",
              cases[i].sq, cases[i].skv, pinned ? pin : "auto", st.peak_bytes,
              packed, recomputes ? "and whole slices of partials" : "only");
        printf("probs %zux%zu (%s): %s plan\n", cases[i].sq, cases[i].skv,
               pinned ? pin : "auto", extra ? "recompute" : "materialize");
        free(out), free(p);
        case_free(&c);
    }
}

/* Probs on the GPU-class fused path, head dims over 256 on any: UNSUPPORTED,
   nothing written; AUTO runs the unfused path for head dims over 256 and
   matches the reference. */
static void refusals(void)
{
    clattn_sdpa_desc d = shape(1, 1, 1, 5, 7, 300, 300);
    device_case c;
    case_make(&c, &d, 0, 9);
    const size_t n = c.in.n_out;
    float *sentinel = malloc(n * 4), *got = malloc(n * 4);
    for (size_t i = 0; i < n; ++i)
        sentinel[i] = -123.0f;
    clEnqueueWriteBuffer(info.queue, c.out, CL_TRUE, 0, n * 4, sentinel, 0,
                         NULL, NULL);
    for (int v = 0; v < 3; ++v) {
        clattn_sdpa_path path =
            v == 2 ? CLATTN_SDPA_PATH_FUSED : fused_paths[v];
        float lse[5];
        clattn_status s = case_run(&c, path, got, lse);
        CHECK(s == CLATTN_ERROR_UNSUPPORTED &&
                  strstr(clattn_context_last_error(ctx), "256"),
              "%s with head_dim 300: %s", clattn_sdpa_path_name(path),
              clattn_status_string(s));
    }
    clEnqueueReadBuffer(info.queue, c.out, CL_TRUE, 0, n * 4, got, 0, NULL,
                        NULL);
    CHECK(memcmp(got, sentinel, n * 4) == 0, "refused calls wrote out");
    float lse[5];
    double *want = malloc(n * sizeof *want);
    ref_sdpa(&c.in.desc, c.in.q, c.in.k, c.in.v, NULL, want, NULL, NULL);
    clattn_status s = case_run(&c, CLATTN_SDPA_PATH_AUTO, got, lse);
    CHECK(s == CLATTN_SUCCESS && compare_close("auto, head_dim 300", got, want,
                                               n, TOL_ATOL, TOL_RTOL) == 0,
          "AUTO with head_dim 300: %s", clattn_status_string(s));
    free(want);
    case_free(&c);

    /* probs requested on an explicit fused path */
    d = shape(1, 2, 2, 6, 9, 8, 8);
    case_make(&c, &d, 0, 10);
    cl_mem probs = upload(NULL, c.in.n_probs * 4);
    clEnqueueWriteBuffer(info.queue, c.out, CL_TRUE, 0, c.in.n_out * 4,
                         sentinel, 0, NULL, NULL);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    size_t dprobs[4] = {1, 2, 6, 9};
    clattn_tensor_contiguous(&t.q, c.q, 0, c.dq);
    clattn_tensor_contiguous(&t.k, c.k, 0, c.dk);
    clattn_tensor_contiguous(&t.v, c.v, 0, c.dv);
    clattn_tensor_contiguous(&t.out, c.out, 0, c.dout);
    clattn_tensor_contiguous(&t.probs, probs, 0, dprobs);
    /* fused-gpu, and FUSED where it means fused-gpu (fused-cpu writes
       probs: agree() checks them) */
    const int fused_is_gpu =
        clattn_sdpa_fused_variant(ctx) == CLATTN_SDPA_PATH_FUSED_GPU;
    for (int v = 0; v < 1 + fused_is_gpu; ++v) {
        clattn_sdpa_path path =
            v == 1 ? CLATTN_SDPA_PATH_FUSED : CLATTN_SDPA_PATH_FUSED_GPU;
        clattn_status st =
            clattn_sdpa(ctx, &c.in.desc, &t, path, 0, NULL, NULL);
        CHECK(st == CLATTN_ERROR_UNSUPPORTED &&
                  strstr(clattn_context_last_error(ctx), "probs"),
              "%s with probs: %s", clattn_sdpa_path_name(path),
              clattn_status_string(st));
    }
    clEnqueueReadBuffer(info.queue, c.out, CL_TRUE, 0, c.in.n_out * 4, got, 0,
                        NULL, NULL);
    CHECK(memcmp(got, sentinel, c.in.n_out * 4) == 0,
          "refused probs calls wrote out");
    clReleaseMemObject(probs);
    case_free(&c);
    free(sentinel), free(got);
}

int main(void)
{
    ctx = test_context();
    clattn_context_info(ctx, &info);
    printf("fused variant of this device: %s\n",
           clattn_sdpa_path_name(clattn_sdpa_fused_variant(ctx)));
    agreement_suite();
    memory_is_linear();
    decode_splits();
    probs_plans();
    refusals();
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_fused");
}
