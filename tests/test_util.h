/* Shared test helpers: a context (or skip), data, canaries, comparisons,
   and a pass/fail tally that ends each suite with "N passed, N failed". */
#ifndef CLATTN_TEST_UTIL_H
#define CLATTN_TEST_UTIL_H

#include <clattn/clattn.h>

#include <stddef.h>
#include <stdint.h>

#define TEST_SKIP 77

/* Counts a check; prints the failure with its location. */
#define CHECK(cond, ...)                                                       \
    test_check((cond) != 0, __FILE__, __LINE__, #cond, __VA_ARGS__)
void test_check(int ok, const char *file, int line, const char *expr,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Counts a check that status s is CLATTN_SUCCESS; a failure prints the
   label (printf-style), s and ctx's last error: "label: STATUS: text".
   Returns nonzero on success. */
#define CHECK_SUCCESS(ctx, s, ...)                                             \
    test_check_success((ctx), (s), __FILE__, __LINE__, __VA_ARGS__)
int test_check_success(clattn_context *ctx, clattn_status s, const char *file,
                       int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Prints the tally and returns the process exit code (0, or 1 on any
   failure). */
int test_finish(const char *suite);

/* A context from $CLATTN_DEVICE / auto; exits with 77 (skip) when there is
   no OpenCL device at all, and fails when creation fails otherwise. */
clattn_context *test_context(void);

/* Nonzero when $CLATTN_TEST_SMALL is set: suites shrink their problems
   (the Oclgrind runs, where every work-item is simulated). */
int test_small(void);

/* Deterministic data: uniform in [lo, hi). */
typedef struct test_rng {
    uint64_t state;
} test_rng;
test_rng test_rng_make(uint64_t seed);
double test_rng_uniform(test_rng *r, double lo, double hi);
void test_fill(test_rng *r, float *x, size_t n, double lo, double hi);
/* A malloc'd array of n such floats (at least one element; the caller
   frees it). */
float *test_random(test_rng *r, size_t n, double lo, double hi);

/* Host arrays with canaries: GUARD floats of a NaN pattern before and
   after n elements. guarded_intact() checks both guards; guarded_untouched()
   also checks that the body still holds its fill pattern. */
#define TEST_GUARD 64
float *guarded_alloc(size_t n);
void guarded_free(float *body);
int guarded_intact(const float *body, size_t n);
int guarded_untouched(const float *body, size_t n);

/* |got - ref| <= atol + rtol*|ref| everywhere (NaN never passes, infinities
   must match); prints the first few mismatches. Returns the mismatch count. */
size_t compare_close(const char *what, const float *got, const double *ref,
                     size_t n, double atol, double rtol);

/* The tolerances of docs/contract.md section 6 for fp32. */
#define TOL_ATOL 1e-5
#define TOL_RTOL 1e-4

/* The context's device bytes now / at their peak (clattn_memory_stats). */
size_t test_mem_now(clattn_context *ctx);
size_t test_mem_peak(clattn_context *ctx);

/* compare_close() under the label "name what", counted as one check. */
void test_compare(const char *name, const char *what, const float *got,
                  const double *ref, size_t n, double atol, double rtol);

/* A malloc'd float64 copy of n floats (the caller frees it). */
double *test_to_double(const float *x, size_t n);

/* The largest |a[i] - b[i]|. */
double test_max_diff(const double *a, const double *b, size_t n);

/* Loads the layer golden `file` (bundle_path); a file that does not load
   is a failed check. Returns 0 on success. */
struct golden_bundle;
int test_golden_load(const char *file, struct golden_bundle *g);

/* Loads the layer golden `file` and runs fn on it, then frees it; a file
   that does not load is a failed check (fn does not run). */
void test_golden_run(const char *file,
                     void (*fn)(const char *file,
                                const struct golden_bundle *g));

/* A float64 tensor of the bundle, or NULL when absent or of another
   dtype (golden_bundle.h has the float32 and uint8 forms). */
const double *test_bundle_f64(const struct golden_bundle *b, const char *name);

/* Device buffers of the tests (CL_MEM_READ_WRITE). Creation failing ends
   the suite with status 1: no case can run without them. */
/* bytes of host copied in (host NULL: left uninitialised). */
cl_mem test_buffer(cl_context c, const void *host, size_t bytes);
/* n floats, each value. */
cl_mem test_buffer_filled(cl_context c, size_t n, float value);
/* Nonzero when the first n floats of m all still hold value. */
int test_buffer_holds(cl_command_queue q, cl_mem m, size_t n, float value);
/* Reads the first n floats of m into got; nonzero when the tail floats
   after them all still hold sentinel (nothing written past the end). */
int test_buffer_read_tail(cl_command_queue q, cl_mem m, size_t n, size_t tail,
                          float sentinel, float *got);

/* Runs fn on n threads, the i-th with (char *)jobs + i * job_size, and
   joins them all. */
void test_threads(int n, void *(*fn)(void *), void *jobs, size_t job_size);

#endif
