/* Faults: a kernel build that fails (status, log, fallback to the next
   device when allowed, a usable context after), device allocations that
   fail one by one (out-of-memory status, outputs untouched, no cl_mem
   leaked), and work that exceeds the device's limits (a clean status).
   With --two-devices the process sees PoCL and Oclgrind (CMake points
   OCL_ICD_VENDORS at both) and the fallback between them is exercised. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "fault_injection.h"
#include "reference.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clattn_status create(const char *selector, int no_fallback,
                            clattn_context **ctx)
{
    clattn_context_options o;
    clattn_context_options_init(&o);
    o.device = selector;
    o.no_fallback = no_fallback;
    return clattn_context_create(&o, ctx);
}

/* A small SDPA on ctx matches the reference: the context is usable. */
static void check_works(clattn_context *ctx, const char *name)
{
    sdpa_inputs in;
    sdpa_inputs_plain(&in, 1, 2, 5, 7, 4, 3);
    sdpa_case_check(ctx, name, &in);
    sdpa_inputs_free(&in);
}

static void build_failure_one_device(void)
{
    clattn_context *ctx = test_context();
    clattn_info info;
    clattn_context_info(ctx, &info);
    clattn_context_destroy(ctx);

    clattn_fault_fail_builds_on(info.device_name);
    char index[32];
    snprintf(index, sizeof index, "%d:%d", info.platform_index,
             info.device_index);
    clattn_status s = create(index, 1, &ctx);
    const char *log = clattn_context_last_error(ctx);
    CHECK(s == CLATTN_ERROR_BUILD_FAILED, "injected build failure: %s",
          clattn_status_string(s));
    CHECK(strstr(log, "fault injection") && strstr(log, "sdpa_unfused"),
          "the build log is in last_error: '%.300s'", log);
    clattn_context_destroy(ctx);
    clattn_fault_fail_builds_on(NULL);

    s = create(index, 1, &ctx);
    CHECK(s == CLATTN_SUCCESS, "builds again once the fault is gone: %s",
          clattn_status_string(s));
    if (s == CLATTN_SUCCESS)
        check_works(ctx, "after a failed build");
    clattn_context_destroy(ctx);
}

/* PoCL and Oclgrind both present: a failed build on the first choice
   falls back to the other, and no_fallback refuses to. */
static void fallback_between_devices(void)
{
    clattn_context *ctx = NULL;
    clattn_status s = create("auto", 0, &ctx);
    clattn_info first;
    CHECK(s == CLATTN_SUCCESS && clattn_context_info(ctx, &first) == 0,
          "two devices: %s", clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);
    if (s != CLATTN_SUCCESS)
        return;

    clattn_fault_fail_builds_on(first.device_name);
    s = create("auto", 0, &ctx);
    clattn_info got;
    CHECK(s == CLATTN_SUCCESS && clattn_context_info(ctx, &got) == 0,
          "falls back: %s: %s", clattn_status_string(s),
          clattn_context_last_error(ctx));
    if (s == CLATTN_SUCCESS) {
        CHECK(got.fell_back && got.device != first.device,
              "lands on the other device");
        CHECK(strstr(got.selection_log, "failed") &&
                  strstr(got.selection_log, "chosen after fallback"),
              "the log says what happened: '%s'", got.selection_log);
        printf("fallback log:\n%s", got.selection_log);
        check_works(ctx, "after fallback");
    }
    clattn_context_destroy(ctx);

    s = create("auto", 1, &ctx);
    CHECK(s == CLATTN_ERROR_BUILD_FAILED &&
              strstr(clattn_context_last_error(ctx), "fault injection"),
          "no_fallback: %s", clattn_status_string(s));
    clattn_context_destroy(ctx);
    clattn_fault_fail_builds_on(NULL);
}

static unsigned context_refcount(cl_context c)
{
    cl_uint n = 0;
    clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof n, &n, NULL);
    return n;
}

/* Fails the 1st, 2nd, ... device allocation of a call until the call
   needs no more: each failure is OUT_OF_MEMORY with nothing written and
   every buffer released (each cl_mem holds a reference to its context). */
static void allocation_failures(clattn_context *ctx, int with_probs,
                                int expected)
{
    clattn_info info;
    clattn_context_info(ctx, &info);
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 2, d.heads_q = 2, d.seq_q = 9, d.seq_kv = 11, d.head_dim = 4;
    d.mask_type = CLATTN_MASK_BOOL;
    d.mask_dims[0] = 2, d.mask_dims[1] = 1, d.mask_dims[2] = 1;
    d.mask_dims[3] = 11;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 1, 11);
    /* One call that succeeds first: a program variant built on first use
       (the GPU-class kernel's build for this head dim) belongs to the
       context from then on, as the layers' programs do. A failed call
       must keep nothing beyond what a successful one does. */
    float *warm_out = guarded_alloc(in.n_out);
    float *warm_probs = with_probs ? guarded_alloc(in.n_probs) : NULL;
    CHECK(clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, in.mask, warm_out,
                           warm_probs) == CLATTN_SUCCESS,
          "the call before the failures: %s", clattn_context_last_error(ctx));
    guarded_free(warm_out), guarded_free(warm_probs);
    clFinish(info.queue);
    const unsigned baseline = context_refcount(info.cl_ctx);
    int failures = 0;
    for (long n = 0; n < 32; ++n) {
        float *out = guarded_alloc(in.n_out);
        float *probs = with_probs ? guarded_alloc(in.n_probs) : NULL;
        clattn_fault_fail_allocation_after(n);
        clattn_status s = clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v,
                                           in.mask, out, probs);
        clattn_fault_fail_allocation_after(-1);
        clFinish(info.queue);
        CHECK(context_refcount(info.cl_ctx) == baseline,
              "allocation %ld: %u cl_mem leaked", n,
              context_refcount(info.cl_ctx) - baseline);
        if (s == CLATTN_SUCCESS) {
            guarded_free(out), guarded_free(probs);
            break;
        }
        ++failures;
        CHECK(s == CLATTN_ERROR_OUT_OF_MEMORY, "allocation %ld: %s", n,
              clattn_status_string(s));
        CHECK(guarded_untouched(out, in.n_out) &&
                  (!probs || guarded_untouched(probs, in.n_probs)),
              "allocation %ld: outputs written on error", n);
        guarded_free(out), guarded_free(probs);
    }
    CHECK(failures == expected,
          "expected %d allocations to fail in turn, saw %d", expected,
          failures);
    printf("allocation failures (probs %s, SDPA path %s): %d, each "
           "OUT_OF_MEMORY, none leaked\n",
           with_probs ? "on" : "off", getenv("CLATTN_SDPA_PATH"), failures);
    check_works(ctx, "after allocation failures");
    sdpa_inputs_free(&in);
}

/* Work beyond the device: one row of scores above the scratch cap, and a
   probabilities output larger than one allocation. */
static void beyond_limits(void)
{
    setenv("CLATTN_UNFUSED_SCRATCH_BYTES", "100", 1);
    setenv("CLATTN_SDPA_PATH", "unfused", 1);
    clattn_context *ctx = test_context();
    setenv("CLATTN_SDPA_PATH", "fused", 1);
    clattn_context *fused = test_context();
    unsetenv("CLATTN_UNFUSED_SCRATCH_BYTES");
    unsetenv("CLATTN_SDPA_PATH");
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1, d.heads_q = 1, d.seq_q = 3, d.seq_kv = 70, d.head_dim = 4;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 0, 12);
    float *out = guarded_alloc(in.n_out);
    clattn_status s =
        clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, NULL, out, NULL);
    CHECK(s == CLATTN_ERROR_UNSUPPORTED && guarded_untouched(out, in.n_out),
          "a score row over the scratch cap: %s", clattn_status_string(s));
    /* The fused path has no score scratch: the same request runs (and
       with probs, the unfused path writes scores into probs directly). */
    sdpa_case_check(fused, "fused path under the scratch cap", &in);
    guarded_free(out);
    sdpa_inputs_free(&in);
    clattn_context_destroy(ctx);
    clattn_context_destroy(fused);

    ctx = test_context();
    clattn_info info;
    clattn_context_info(ctx, &info);
    size_t seq = (size_t)sqrt((double)info.max_alloc_bytes / 4.0) + 2;
    d.seq_q = d.seq_kv = seq, d.head_dim = 1;
    size_t n_probs = seq * seq;
    float *q = calloc(seq, 4), *k = calloc(seq, 4), *v = calloc(seq, 4);
    out = guarded_alloc(seq);
    /* Left unwritten by the test; the library must not write it either. */
    float *probs = malloc(n_probs * sizeof *probs);
    if (probs) {
        probs[0] = probs[n_probs - 1] = -7.0f;
        s = clattn_sdpa_host(ctx, &d, q, k, v, NULL, out, probs);
        CHECK(s == CLATTN_ERROR_UNSUPPORTED, "probs over max alloc: %s: %s",
              clattn_status_string(s), clattn_context_last_error(ctx));
        CHECK(probs[0] == -7.0f && probs[n_probs - 1] == -7.0f &&
                  guarded_untouched(out, seq),
              "nothing written");
    }
    free(probs), free(q), free(k), free(v);
    guarded_free(out);
    clattn_context_destroy(ctx);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--two-devices") == 0) {
        fallback_between_devices();
        return test_finish("test_faults --two-devices");
    }
    build_failure_one_device();
    /* Allocations of a call: q, k, v, mask, out, key lengths, plus the
       path's own: probs or the score scratch (unfused), packed K and V
       (unfused on CPU-class devices, which PoCL's is; fused-cpu,
       seq_q > 8), nothing (fused-gpu). */
    static const struct {
        const char *path;
        int with_probs, expected;
    } runs[] = {{"unfused", 1, 9},
                {"unfused", 0, 9},
                {"fused-cpu", 0, 8},
                {"fused-gpu", 0, 6}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; ++i) {
        setenv("CLATTN_SDPA_PATH", runs[i].path, 1);
        clattn_context *ctx = test_context();
        allocation_failures(ctx, runs[i].with_probs, runs[i].expected);
        clattn_context_destroy(ctx);
    }
    unsetenv("CLATTN_SDPA_PATH");
    beyond_limits();
    return test_finish("test_faults");
}
