/* The GEMM wrappers of the projection layers (src/layers/gemm.h): the
   nn.Linear form, through CLBlast and through the CPU-class kernels
   (both on every device here), with and without bias, accumulation, a
   column block of a wider weight (the concat layer's case), general
   transposes, buffer offsets, the stage timer, CLBlast's errors becoming
   CLATTN_ERROR_BLAS and the CPU kernels' own checks. Checked against a
   double-precision product. And the tuning data's keying: PoCL gets its tuned
   kernels, other devices none. */
#include "context_internal.h"
#include "device_memory.h"
#include "gemm.h"
#include "gemm_tuning.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
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

/* gemm_linear and its two implementations take the same arguments. */
typedef clattn_status (*linear_fn)(clattn_context *, cl_command_queue, size_t,
                                   size_t, size_t, gemm_matrix, gemm_matrix,
                                   cl_mem, size_t, int, gemm_matrix,
                                   layer_timer *);
static const struct {
    const char *name;
    linear_fn run;
} linear_impls[] = {{"gemm_linear", gemm_linear},
                    {"gemm_linear_cpu", gemm_linear_cpu},
                    {"gemm_linear_blas", gemm_linear_blas}};
enum { LINEAR_IMPLS = sizeof linear_impls / sizeof linear_impls[0] };

static void run_linear(clattn_context *ctx, const linear_case *c, size_t impl,
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
    const char *name = linear_impls[impl].name;
    clattn_status s =
        linear_impls[impl].run(ctx, ctx->queue, c->m, c->n, c->k, mx, mw,
                               c->bias ? db : NULL, 0, c->accumulate, my, NULL);
    CHECK(s == CLATTN_SUCCESS, "%s m=%zu n=%zu k=%zu: %s (%s)", name, c->m,
          c->n, c->k, clattn_status_string(s), clattn_context_last_error(ctx));
    if (s == CLATTN_SUCCESS &&
        layer_read(ctx, dy, yn * sizeof *got, got) == CLATTN_SUCCESS) {
        /* fp32 sums of k products of values in [-1, 1]. */
        double atol = 1e-6 * (double)c->k + TOL_ATOL;
        CHECK(compare_close("linear", got + c->offset, ref, c->m * c->n, atol,
                            TOL_RTOL) == 0,
              "%s m=%zu n=%zu k=%zu bias=%d acc=%d ld=%zu off=%zu", name, c->m,
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
    clattn_status s;
    /* Two commands each: CLBlast's GEMM and the bias add, or the weight
       pack and the product. */
    for (size_t impl = 1; impl < LINEAR_IMPLS; ++impl) {
        s = layer_timer_begin(ctx, ctx->queue, &tb, &timer);
        if (s == CLATTN_SUCCESS)
            s = linear_impls[impl].run(ctx, ctx->queue, M, N, K, mx, mw, db, 0,
                                       0, my, timer);
        CHECK(s == CLATTN_SUCCESS && timer && timer->count == 2,
              "timed %s records both its commands", linear_impls[impl].name);
        s = layer_timer_finish(ctx, ctx->queue, timer, &timing);
        CHECK(s == CLATTN_SUCCESS && timing.projection_ms > 0 &&
                  timing.attention_ms == 0 && timing.other_ms == 0,
              "%s timing: projection %.4f attention %.4f other %.4f ms",
              linear_impls[impl].name, timing.projection_ms,
              timing.attention_ms, timing.other_ms);
    }

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
    s = gemm_linear_blas(ctx, ctx->queue, M, N, K, bad, mw, NULL, 0, 0, my,
                         NULL);
    CHECK(s == CLATTN_ERROR_BLAS, "bad ld: %s", clattn_status_string(s));
    CHECK(strstr(clattn_context_last_error(ctx), "CLBlast") != NULL,
          "the error names CLBlast: %s", clattn_context_last_error(ctx));
    /* The CPU kernels check it themselves, before any command. */
    float probe[M * N];
    for (size_t i = 0; i < (size_t)M * N; ++i)
        probe[i] = (float)i;
    clEnqueueWriteBuffer(ctx->queue, dy, CL_TRUE, 0, sizeof probe, probe, 0,
                         NULL, NULL);
    const gemm_matrix bad_x = {dx, 0, K - 1}, bad_w = {dw, 0, K - 1},
                      bad_y = {dy, 0, N - 1};
    const gemm_matrix xs[3] = {bad_x, mx, mx}, ws[3] = {mw, bad_w, mw},
                      ys[3] = {my, my, bad_y};
    for (int i = 0; i < 3; ++i) {
        s = gemm_linear_cpu(ctx, ctx->queue, M, N, K, xs[i], ws[i], NULL, 0, 0,
                            ys[i], NULL);
        CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT,
              "gemm_linear_cpu bad ld %d: %s", i, clattn_status_string(s));
    }
    /* Validation refuses a GEMM whose packed weight would not fit one
       allocation, before any work (CPU-class devices; CLBlast packs
       nothing of the library's). 46000 x 46000 stays within CLBlast's
       int sizes, and packs 8.5 GB. */
    const size_t big = 46000;
    const size_t packed = (big + 63) / 64 * 64 * big * sizeof(float);
    if (!context_gpu_class(ctx) && packed > ctx->info.max_alloc_bytes) {
        s = layer_check_gemm(ctx, "test", "big", 1, big, big, 0);
        CHECK(s == CLATTN_ERROR_UNSUPPORTED &&
                  strstr(clattn_context_last_error(ctx), "packed weight"),
              "a packed weight over max_alloc_bytes: %s (%s)",
              clattn_status_string(s), clattn_context_last_error(ctx));
    } else {
        printf("packed-weight limit not checked: %zu bytes fit this "
               "device's allocations\n",
               packed);
    }
    float after[M * N];
    layer_read(ctx, dy, sizeof after, after);
    CHECK(memcmp(after, probe, sizeof after) == 0,
          "gemm_linear_cpu with a bad ld writes nothing");
    ctx_buffer_release(ctx, dx);
    ctx_buffer_release(ctx, dw);
    ctx_buffer_release(ctx, db);
    ctx_buffer_release(ctx, dy);
}

/* What a parse handed on: the kernel lines of the matching sections. */
typedef struct tuning_log {
    size_t lines, params;
    char kernels[256];
} tuning_log;

static int log_sink(void *user, const char *kernel, size_t precision,
                    size_t count, const char *const *names,
                    const size_t *values)
{
    tuning_log *log = user;
    (void)names, (void)values;
    size_t used = strlen(log->kernels);
    snprintf(log->kernels + used, sizeof log->kernels - used, "%s%s/%zu",
             used ? " " : "", kernel, precision);
    log->lines++;
    log->params += count;
    return 0;
}

static int parse_with(const char *text, const gemm_tuning_identity *id,
                      tuning_log *log, size_t *matched, const char **failed)
{
    memset(log, 0, sizeof *log);
    return gemm_tuning_parse(text, id, log_sink, log, failed, matched);
}

/* Identities as the drivers report them (clinfo). */
static const gemm_tuning_identity pocl_id = {
    "CPU", "Portable Computing Language", "The pocl project",
    "pthread-skylake-avx512-AMD EPYC 9R14", "3.1+debian"};
static const gemm_tuning_identity intel_cpu_id = {
    "CPU", "Intel(R) OpenCL", "Intel(R) Corporation",
    "Intel(R) Xeon(R) Processor", "2026.22.10.0.01_160000"};
static const gemm_tuning_identity intel_gpu_id = {
    "GPU", "Intel(R) OpenCL Graphics", "Intel(R) Corporation",
    "Intel(R) Arc(TM) A770 Graphics", "23.35.27191.42"};
static const gemm_tuning_identity intel_fpga_id = {
    "ACCELERATOR", "Intel(R) FPGA Emulation Platform for OpenCL(TM)",
    "Intel(R) Corporation", "Intel(R) FPGA Emulation Device",
    "2026.22.10.0.01_160000"};
static const gemm_tuning_identity nvidia_id = {
    "GPU", "NVIDIA CUDA", "NVIDIA Corporation", "NVIDIA H100 80GB HBM3",
    "550.54.15"};

/* The tuning is keyed on the device's identity: the embedded data gives
   PoCL its tuned kernels, Intel's CPU runtime on the same CPU its own
   Xgemm only, and any other device (Intel's GPU and FPGA emulator
   platforms, a GPU) none, so CLBlast's own database stays. The grammar's
   conditions, and every malformed line, wherever it is, an error. */
static void run_tuning_keying(void)
{
    const char *text = gemm_tuning_data();
    CHECK(text != NULL, "tuning data embedded");
    if (!text)
        return;
    tuning_log log;
    size_t matched = 0;
    const char *failed = NULL;
    int code = parse_with(text, &pocl_id, &log, &matched, &failed);
    CHECK(code == 0 && matched == 1 && log.lines >= 2 &&
              strncmp(log.kernels, "Xgemm/32 XgemmDirect/32", 23) == 0,
          "PoCL gets the tuning: code %d at %s, %zu sections, '%s'", code,
          failed ? failed : "-", matched, log.kernels);
    code = parse_with(text, &intel_cpu_id, &log, &matched, &failed);
    CHECK(code == 0 && matched == 1 && strcmp(log.kernels, "Xgemm/32") == 0,
          "Intel's CPU runtime gets its Xgemm: code %d, %zu sections, '%s'",
          code, matched, log.kernels);
    const gemm_tuning_identity *others[] = {&intel_gpu_id, &intel_fpga_id,
                                            &nvidia_id};
    for (int i = 0; i < 3; ++i) {
        code = parse_with(text, others[i], &log, &matched, &failed);
        CHECK(code == 0 && matched == 0 && log.lines == 0,
              "%s gets no tuning: code %d, %zu sections, '%s'",
              others[i]->platform_name, code, matched, log.kernels);
    }

    /* Conditions: all must hold, case-insensitive substrings, spaces
       around keys and values ignored; platform is name or vendor. */
    const char *good = "# comment\n\n"
                       "[ type = CPU ; platform = portable computing ]\n"
                       "  Copy 32 COPY_DIMX=8 COPY_WPT=1\n"
                       "[device=h100]\nPad 32 PAD_DIMX=8\n"
                       "[platform=NVIDIA; type=CPU]\nXdot 32 WGS1=64\n"
                       "[platform=pocl; driver=3.1]\nXaxpy 64 WGS=64\n"
                       "[platform=pocl; driver=4.0]\nXger 32 WGS1=8\n";
    code = parse_with(good, &pocl_id, &log, &matched, &failed);
    CHECK(code == 0 && matched == 2 && log.params == 3 &&
              strcmp(log.kernels, "Copy/32 Xaxpy/64") == 0,
          "PoCL's sections: code %d, %zu sections, '%s'", code, matched,
          log.kernels);
    code = parse_with(good, &nvidia_id, &log, &matched, &failed);
    CHECK(code == 0 && matched == 1 && strcmp(log.kernels, "Pad/32") == 0,
          "NVIDIA's section: code %d, '%s'", code, log.kernels);
    code = parse_with(good, &intel_cpu_id, &log, &matched, &failed);
    CHECK(code == 0 && matched == 0 && log.lines == 0,
          "Intel's CPU runtime: none of these: code %d, '%s'", code,
          log.kernels);

    const char *bad[] = {
        "[device_type=CPU]\nCopy 32 COPY_WPT=1\n", /* the old class key */
        "[type=CPU]\nCopy 32 COPY_WPT=1\n",        /* no identity */
        "[type=CPU; platform=pocl\nCopy 32 COPY_WPT=1\n",
        "[type=FPGA; platform=pocl]\n",
        "[platform=]\n",
        "[platform=pocl;]\n",
        "[platform=pocl; platform=intel]\n",
        "[platform pocl]\n",
        "Copy 32 COPY_WPT=1\n[platform=pocl]\n", /* before any section */
        /* Malformed lines in a section PoCL does not match. */
        "[platform=nvidia]\nCopy 32 COPY_WPT\n",
        "[platform=nvidia]\nNoSuchKernel 32 A=1\n",
        "[platform=nvidia]\nCopy x COPY_WPT=1\n",
        "[platform=nvidia]\nCopy 32\n",
        "[platform=nvidia]\nCopy 32 COPY_WPT=-1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; ++i) {
        code = parse_with(bad[i], &pocl_id, &log, &matched, &failed);
        CHECK(code < 0 && failed && log.lines == 0,
              "malformed tuning %zu is an error: code %d", i, code);
    }
}

/* The embedded tuning data parses and CLBlast takes every line of the
   sections matching the device (a malformed or partial line is an error,
   never a silent run with CLBlast's defaults); applying it twice is
   harmless. PoCL's device gets its tuning, Intel's CPU runtime its Xgemm,
   any other device none. */
static void run_tuning(clattn_context *ctx)
{
    for (int round = 0; round < 2; ++round) {
        const char *failed = NULL;
        int code = gemm_tuning_apply(ctx->device, &failed);
        CHECK(code == 0, "gemm_tuning_apply: %d at %s", code,
              failed ? failed : "-");
    }
    gemm_tuning_identity id;
    char storage[4][256];
    gemm_tuning_identity_of(ctx->device, &id, storage);
    tuning_log log;
    size_t matched = 0;
    const char *failed = NULL;
    int code = parse_with(gemm_tuning_data(), &id, &log, &matched, &failed);
    int pocl = strstr(id.platform_vendor, "pocl") != NULL;
    int intel_cpu = strcmp(id.type, "CPU") == 0 &&
                    strncmp(id.platform_name, "Intel(R) OpenCL", 15) == 0;
    printf("tuning for %s / %s (%s): %s\n", id.platform_name, id.device_name,
           id.driver_version, matched ? log.kernels : "CLBlast's defaults");
    const char *want = pocl ? "Xgemm/32 XgemmDirect/32" : "Xgemm/32";
    CHECK(code == 0 && ((pocl || intel_cpu)
                            ? matched == 1 &&
                                  strncmp(log.kernels, want, strlen(want)) == 0
                            : matched == 0),
          "this device (%s) gets %s: %zu sections, '%s'", id.platform_name,
          pocl        ? "PoCL's tuning"
          : intel_cpu ? "Intel's Xgemm"
                      : "none",
          matched, log.kernels);
}

int main(void)
{
    run_tuning_keying();
    clattn_context *ctx = test_context();
    run_tuning(ctx);
    test_rng rng = test_rng_make(17);
    const linear_case cases[] = {
        {1, 1, 1, 1, 0, 0, 0, 0},      {26, 144, 48, 48, 0, 0, 1, 0},
        {13, 37, 29, 29, 0, 3, 1, 0},  {13, 37, 29, 29, 0, 0, 0, 1},
        {7, 10, 12, 20, 0, 0, 1, 0},   {7, 10, 8, 20, 12, 5, 0, 1},
        {130, 96, 64, 64, 0, 0, 1, 0}, {65, 129, 257, 257, 0, 1, 1, 1},
        {33, 64, 1, 1, 0, 0, 1, 1},    {35, 200, 96, 100, 4, 2, 1, 0},
    };
    size_t count = test_small() ? 4 : sizeof cases / sizeof cases[0];
    for (size_t impl = 0; impl < LINEAR_IMPLS; ++impl)
        for (size_t i = 0; i < count; ++i)
            run_linear(ctx, &cases[i], impl, &rng);
    run_transposes(ctx, &rng);
    run_timer_and_errors(ctx);
    clattn_context_destroy(ctx);
    return test_finish("test_gemm");
}
