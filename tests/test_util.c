#define _POSIX_C_SOURCE 200809L /* pthreads */
#include "test_util.h"

#include "golden_bundle.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned passed, failed;

void test_check(int ok, const char *file, int line, const char *expr,
                const char *fmt, ...)
{
    if (ok) {
        ++passed;
        return;
    }
    ++failed;
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int test_check_success(clattn_context *ctx, clattn_status s, const char *file,
                       int line, const char *fmt, ...)
{
    char label[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(label, sizeof label, fmt, ap);
    va_end(ap);
    test_check(s == CLATTN_SUCCESS, file, line, "s == CLATTN_SUCCESS",
               "%s: %s: %s", label, clattn_status_string(s),
               clattn_context_last_error(ctx));
    return s == CLATTN_SUCCESS;
}

int test_finish(const char *suite)
{
    printf("%s: %u passed, %u failed\n", suite, passed, failed);
    return failed ? 1 : 0;
}

clattn_context *test_context(void)
{
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(NULL, &ctx);
    if (s == CLATTN_ERROR_NO_DEVICE) {
        printf("skipped: %s\n", clattn_context_last_error(ctx));
        clattn_context_destroy(ctx);
        exit(TEST_SKIP);
    }
    if (s != CLATTN_SUCCESS) {
        fprintf(stderr, "context creation failed: %s: %s\n",
                clattn_status_string(s), clattn_context_last_error(ctx));
        exit(1);
    }
    clattn_info info;
    clattn_context_info(ctx, &info);
    printf("device: %s / %s\n", info.platform_name, info.device_name);
    return ctx;
}

int test_small(void)
{
    const char *env = getenv("CLATTN_TEST_SMALL");
    return env && *env && strcmp(env, "0") != 0;
}

test_rng test_rng_make(uint64_t seed)
{
    test_rng r = {seed * 0x9E3779B97F4A7C15ull + 1};
    return r;
}

double test_rng_uniform(test_rng *r, double lo, double hi)
{
    /* splitmix64 */
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * 0x1.0p-53;
}

void test_fill(test_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; ++i)
        x[i] = (float)test_rng_uniform(r, lo, hi);
}

float *test_random(test_rng *r, size_t n, double lo, double hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    test_fill(r, x, n, lo, hi);
    return x;
}

/* A quiet-NaN bit pattern no computation produces by accident. */
static const uint32_t GUARD_BITS = 0x7fc0beefu;
static const uint32_t BODY_BITS = 0x7fc0cafeu;

static void fill_bits(float *x, size_t n, uint32_t bits)
{
    for (size_t i = 0; i < n; ++i)
        memcpy(&x[i], &bits, sizeof bits);
}

static int all_bits(const float *x, size_t n, uint32_t bits)
{
    for (size_t i = 0; i < n; ++i)
        if (memcmp(&x[i], &bits, sizeof bits) != 0)
            return 0;
    return 1;
}

float *guarded_alloc(size_t n)
{
    float *raw = malloc((n + 2 * TEST_GUARD) * sizeof *raw);
    if (!raw) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    fill_bits(raw, TEST_GUARD, GUARD_BITS);
    fill_bits(raw + TEST_GUARD, n, BODY_BITS);
    fill_bits(raw + TEST_GUARD + n, TEST_GUARD, GUARD_BITS);
    return raw + TEST_GUARD;
}

void guarded_free(float *body)
{
    if (body)
        free(body - TEST_GUARD);
}

int guarded_intact(const float *body, size_t n)
{
    return all_bits(body - TEST_GUARD, TEST_GUARD, GUARD_BITS) &&
           all_bits(body + n, TEST_GUARD, GUARD_BITS);
}

int guarded_untouched(const float *body, size_t n)
{
    return guarded_intact(body, n) && all_bits(body, n, BODY_BITS);
}

size_t compare_close(const char *what, const float *got, const double *ref,
                     size_t n, double atol, double rtol)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
        double g = got[i], r = ref[i];
        int ok = isinf(r) ? g == r : fabs(g - r) <= atol + rtol * fabs(r);
        if (!ok && bad++ < 5)
            fprintf(stderr, "  %s[%zu]: got %.9g, want %.9g (diff %.3g)\n",
                    what, i, g, r, fabs(g - r));
    }
    if (bad > 5)
        fprintf(stderr, "  %s: %zu mismatches in %zu\n", what, bad, n);
    return bad;
}

size_t test_mem_now(clattn_context *ctx)
{
    clattn_memory_stats s;
    clattn_memory_stats_get(ctx, &s);
    return s.current_bytes;
}

size_t test_mem_peak(clattn_context *ctx)
{
    clattn_memory_stats s;
    clattn_memory_stats_get(ctx, &s);
    return s.peak_bytes;
}

void test_compare(const char *name, const char *what, const float *got,
                  const double *ref, size_t n, double atol, double rtol)
{
    char label[160];
    snprintf(label, sizeof label, "%s %s", name, what);
    size_t bad = compare_close(label, got, ref, n, atol, rtol);
    CHECK(bad == 0, "%s: %zu of %zu elements off", label, bad, n);
}

double *test_to_double(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; ++i)
        d[i] = x[i];
    return d;
}

double test_max_diff(const double *a, const double *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; ++i)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

int test_golden_load(const char *file, golden_bundle *g)
{
    char path[1024];
    bundle_path(path, sizeof path, file);
    if (bundle_load(path, g) != 0) {
        CHECK(0, "%s: cannot load", path);
        return -1;
    }
    return 0;
}

void test_golden_run(const char *file,
                     void (*fn)(const char *file, const golden_bundle *g))
{
    golden_bundle g;
    if (test_golden_load(file, &g) != 0)
        return;
    fn(file, &g);
    bundle_free(&g);
}

const double *test_bundle_f64(const golden_bundle *b, const char *name)
{
    const bundle_tensor *t = bundle_get(b, name);
    return t && t->dtype == BUNDLE_F64 ? t->data : NULL;
}

cl_mem test_buffer(cl_context c, const void *host, size_t bytes)
{
    cl_int err;
    cl_mem m =
        clCreateBuffer(c, CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0),
                       bytes, (void *)host, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clCreateBuffer: %d\n", err);
        exit(1);
    }
    return m;
}

cl_mem test_buffer_filled(cl_context c, size_t n, float value)
{
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; ++i)
        f[i] = value;
    cl_mem m = test_buffer(c, f, n * sizeof *f);
    free(f);
    return m;
}

int test_buffer_holds(cl_command_queue q, cl_mem m, size_t n, float value)
{
    float *f = malloc(n * sizeof *f);
    clEnqueueReadBuffer(q, m, CL_TRUE, 0, n * sizeof *f, f, 0, NULL, NULL);
    int ok = 1;
    for (size_t i = 0; i < n; ++i)
        ok &= f[i] == value;
    free(f);
    return ok;
}

int test_buffer_read_tail(cl_command_queue q, cl_mem m, size_t n, size_t tail,
                          float sentinel, float *got)
{
    float *all = malloc((n + tail) * sizeof *all);
    clEnqueueReadBuffer(q, m, CL_TRUE, 0, (n + tail) * sizeof *all, all, 0,
                        NULL, NULL);
    memcpy(got, all, n * sizeof *got);
    int tail_ok = 1;
    for (size_t i = n; i < n + tail; ++i)
        tail_ok &= all[i] == sentinel;
    free(all);
    return tail_ok;
}

void test_threads(int n, void *(*fn)(void *), void *jobs, size_t job_size)
{
    pthread_t *threads = malloc((size_t)n * sizeof *threads);
    for (int t = 0; t < n; ++t)
        pthread_create(&threads[t], NULL, fn, (char *)jobs + t * job_size);
    for (int t = 0; t < n; ++t)
        pthread_join(threads[t], NULL);
    free(threads);
}
