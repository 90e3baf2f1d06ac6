/* The CLBlast GEMM wrapper of the projection layers (src/gemm.h): the
   nn.Linear form with and without bias, accumulation, a column block of a
   wider weight (the concat layer's case), general transposes, buffer
   offsets, the stage timer, and CLBlast's errors becoming
   CLATTN_ERROR_BLAS. Checked against a double-precision product. */
#include "context_internal.h"
#include "device_memory.h"
#include "gemm.h"
#include "gemm_tuning.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cl_mem device_copy(clattn_context *ctx, const float *host, size_t n)
{
    cl_mem m;
    clattn_status s = layer_buffer(ctx, n * sizeof(float), host, &m);
    CHECK(s == CLATTN_SUCCESS, "layer_buffer: %s", clattn_status_string(s));
    return s == CLATTN_SUCCESS ? m : NULL;
}

typedef struct linear_case {
    size_t m, n, k;
    size_t weight_ld, weight_col; /* a column block: ld > k, first column */
    size_t offset;                /* elements before x and y in their buffers */
    int bias, accumulate;
} linear_case;

static void run_linear(clattn_context *ctx, const linear_case *c,
                       test_rng *rng)
{
    size_t xn = c->offset + c->m * c->k, wn = c->n * c->weight_ld,
           yn = c->offset + c->m * c->n;
    float *x = malloc(xn * sizeof *x), *w = malloc(wn * sizeof *w),
          *b = malloc(c->n * sizeof *b), *y = malloc(yn * sizeof *y),
          *got = malloc(yn * sizeof *got);
    double *ref = malloc(c->m * c->n * sizeof *ref);
    test_fill(rng, x, xn, -1, 1);
    test_fill(rng, w, wn, -1, 1);
    test_fill(rng, b, c->n, -1, 1);
    test_fill(rng, y, yn, -1, 1);
    for (size_t i = 0; i < c->m; ++i)
        for (size_t j = 0; j < c->n; ++j) {
            double acc = c->accumulate ? y[c->offset + i * c->n + j] : 0.0;
            for (size_t p = 0; p < c->k; ++p)
                acc += (double)x[c->offset + i * c->k + p] *
                       w[j * c->weight_ld + c->weight_col + p];
            ref[i * c->n + j] = acc + (c->bias ? b[j] : 0.0);
        }
    cl_mem dx = device_copy(ctx, x, xn), dw = device_copy(ctx, w, wn),
           db = device_copy(ctx, b, c->n), dy = device_copy(ctx, y, yn);
    gemm_matrix mx = {dx, c->offset, c->k},
                mw = {dw, c->weight_col, c->weight_ld},
                my = {dy, c->offset, c->n};
    clattn_status s =
        gemm_linear(ctx, ctx->queue, c->m, c->n, c->k, mx, mw,
                    c->bias ? db : NULL, 0, c->accumulate, my, NULL);
    CHECK(s == CLATTN_SUCCESS, "gemm_linear m=%zu n=%zu k=%zu: %s (%s)", c->m,
          c->n, c->k, clattn_status_string(s), clattn_context_last_error(ctx));
    if (s == CLATTN_SUCCESS && layer_read(ctx, dy, yn * sizeof *got, got) ==
                                   CLATTN_SUCCESS) {
        /* fp32 sums of k products of values in [-1, 1]. */
        double atol = 1e-6 * (double)c->k + TOL_ATOL;
        CHECK(compare_close("linear", got + c->offset, ref, c->m * c->n, atol,
                            TOL_RTOL) == 0,
              "linear m=%zu n=%zu k=%zu bias=%d acc=%d ld=%zu off=%zu", c->m,
              c->n, c->k, c->bias, c->accumulate, c->weight_ld, c->offset);
        CHECK(memcmp(got, y, c->offset * sizeof *y) == 0,
              "elements before the offset untouched");
    }
    ctx_buffer_release(ctx, dx);
    ctx_buffer_release(ctx, dw);
    ctx_buffer_release(ctx, db);
    ctx_buffer_release(ctx, dy);
    free(x), free(w), free(b), free(y), free(got), free(ref);
}

/* C = A^T B^T in every transpose combination, alpha and beta. */
static void run_transposes(clattn_context *ctx, test_rng *rng)
{
    const size_t m = 9, n = 11, k = 7;
    float a[9 * 7], bm[7 * 11], c0[9 * 11], got[9 * 11];
    double ref[9 * 11];
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            test_fill(rng, a, m * k, -1, 1);
            test_fill(rng, bm, k * n, -1, 1);
            test_fill(rng, c0, m * n, -1, 1);
            size_t lda = ta ? m : k, ldb = tb ? k : n;
            for (size_t i = 0; i < m; ++i)
                for (size_t j = 0; j < n; ++j) {
                    double acc = 0;
                    for (size_t p = 0; p < k; ++p)
                        acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                               (tb ? bm[j * ldb + p] : bm[p * ldb + j]);
                    ref[i * n + j] = 0.5 * acc - 2.0 * c0[i * n + j];
                }
            cl_mem da = device_copy(ctx, a, m * k),
                   db = device_copy(ctx, bm, k * n),
                   dc = device_copy(ctx, c0, m * n);
            gemm_matrix ma = {da, 0, lda}, mb = {db, 0, ldb}, mc = {dc, 0, n};
            clattn_status s = gemm_run(ctx, ctx->queue, ta, tb, m, n, k, 0.5f,
                                       ma, mb, -2.0f, mc, NULL);
            CHECK(s == CLATTN_SUCCESS, "gemm_run ta=%d tb=%d: %s", ta, tb,
                  clattn_context_last_error(ctx));
            if (s == CLATTN_SUCCESS &&
                layer_read(ctx, dc, sizeof got, got) == CLATTN_SUCCESS)
                CHECK(compare_close("gemm", got, ref, m * n, TOL_ATOL,
                                    TOL_RTOL) == 0,
                      "gemm ta=%d tb=%d", ta, tb);
            ctx_buffer_release(ctx, da);
            ctx_buffer_release(ctx, db);
            ctx_buffer_release(ctx, dc);
        }
}

/* The timer sees the GEMM and its bias add as projection time, and an
   impossible leading dimension comes back as CLATTN_ERROR_BLAS. */
static void run_timer_and_errors(clattn_context *ctx)
{
    enum { M = 64, N = 48, K = 32 };
    static float x[M * K], w[N * K], b[N];
    cl_mem dx = device_copy(ctx, x, M * K), dw = device_copy(ctx, w, N * K),
           db = device_copy(ctx, b, N), dy = device_copy(ctx, NULL, M * N);
    gemm_matrix mx = {dx, 0, K}, mw = {dw, 0, K}, my = {dy, 0, N};
    layer_timer tb, *timer = NULL;
    clattn_layer_timing timing = {-1, -1, -1};
    clattn_status s = layer_timer_begin(ctx, ctx->queue, &tb, &timer);
    if (s == CLATTN_SUCCESS)
        s = gemm_linear(ctx, ctx->queue, M, N, K, mx, mw, db, 0, 0, my, timer);
    CHECK(s == CLATTN_SUCCESS && timer && timer->count == 2,
          "timed linear records GEMM and bias add");
    s = layer_timer_finish(ctx, ctx->queue, timer, &timing);
    CHECK(s == CLATTN_SUCCESS && timing.projection_ms > 0 &&
              timing.attention_ms == 0 && timing.other_ms == 0,
          "timing: projection %.4f attention %.4f other %.4f ms",
          timing.projection_ms, timing.attention_ms, timing.other_ms);

    /* More GEMMs than the timer has slots: the total still runs from the
       start marker to the last GEMM's end. */
    enum { MANY = LAYER_TIMER_MAX_EVENTS + 36 };
    s = layer_timer_begin(ctx, ctx->queue, &tb, &timer);
    for (int i = 0; i < MANY && s == CLATTN_SUCCESS; ++i)
        s = gemm_run(ctx, ctx->queue, 0, 1, M, N, K, 1.0f, mx, mw, 0.0f, my,
                     timer);
    /* The queue's last command, recorded like a GEMM's event. */
    cl_event first = timer ? timer->start : NULL, last = NULL;
    if (s == CLATTN_SUCCESS &&
        clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &last) == CL_SUCCESS) {
        clRetainEvent(last);
        layer_timer_record(timer, LAYER_STAGE_PROJECTION, last);
    }
    CHECK(s == CLATTN_SUCCESS && first && last &&
              timer->count == LAYER_TIMER_MAX_EVENTS,
          "%d timed GEMMs fill the timer", MANY);
    if (first && last) {
        clRetainEvent(first);
        s = layer_timer_finish(ctx, ctx->queue, timer, &timing);
        cl_ulong t0 = 0, t1 = 0;
        clGetEventProfilingInfo(first, CL_PROFILING_COMMAND_END, sizeof t0, &t0,
                                NULL);
        clGetEventProfilingInfo(last, CL_PROFILING_COMMAND_END, sizeof t1, &t1,
                                NULL);
        double want = (double)(t1 - t0) * 1e-6;
        CHECK(s == CLATTN_SUCCESS &&
                  fabs(timing.projection_ms - want) <= 1e-9 * want + 1e-9,
              "past the slots: %.6f ms timed, %.6f ms from start to the last "
              "GEMM",
              timing.projection_ms, want);
        clReleaseEvent(first);
        clReleaseEvent(last);
    }

    gemm_matrix bad = {dx, 0, 1}; /* ld 1 < k: CLBlast refuses it */
    s = gemm_linear(ctx, ctx->queue, M, N, K, bad, mw, NULL, 0, 0, my, NULL);
    CHECK(s == CLATTN_ERROR_BLAS, "bad ld: %s", clattn_status_string(s));
    CHECK(strstr(clattn_context_last_error(ctx), "CLBlast") != NULL,
          "the error names CLBlast: %s", clattn_context_last_error(ctx));
    ctx_buffer_release(ctx, dx);
    ctx_buffer_release(ctx, dw);
    ctx_buffer_release(ctx, db);
    ctx_buffer_release(ctx, dy);
}

/* The embedded tuning data parses and CLBlast takes every line of the
   device's class (a malformed or partial line is an error, never a silent
   run with CLBlast's defaults); applying it twice is harmless. */
static void run_tuning(clattn_context *ctx)
{
    for (int round = 0; round < 2; ++round) {
        const char *failed = NULL;
        int code = gemm_tuning_apply(ctx->device, &failed);
        CHECK(code == 0, "gemm_tuning_apply: %d at %s", code,
              failed ? failed : "-");
    }
}

int main(void)
{
    clattn_context *ctx = test_context();
    run_tuning(ctx);
    test_rng rng = test_rng_make(17);
    const linear_case cases[] = {
        {1, 1, 1, 1, 0, 0, 0, 0},       {26, 144, 48, 48, 0, 0, 1, 0},
        {13, 37, 29, 29, 0, 3, 1, 0},   {13, 37, 29, 29, 0, 0, 0, 1},
        {7, 10, 12, 20, 0, 0, 1, 0},    {7, 10, 8, 20, 12, 5, 0, 1},
        {130, 96, 64, 64, 0, 0, 1, 0},  {65, 129, 257, 257, 0, 1, 1, 1},
    };
    size_t count = test_small() ? 4 : sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < count; ++i)
        run_linear(ctx, &cases[i], &rng);
    run_transposes(ctx, &rng);
    run_timer_and_errors(ctx);
    clattn_context_destroy(ctx);
    return test_finish("test_gemm");
}
