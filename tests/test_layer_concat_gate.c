/* clattn_concat (the seq2seq tutorial's AttnDecoderRNN attention) and
   clattn_se_gate against PyTorch goldens (tests/gen_golden_additive.py,
   float64 modules) and against the double-precision reference
   (reference_additive.c) on bigger odd shapes. Outputs carry canaries;
   the SE gate also runs its device form with timing and a sentinel tail;
   memory is back at its baseline after each destroy.
   Tolerance: docs/contract.md's fp32 bound, atol 1e-5 + rtol 1e-4. */
#include "golden_bundle.h"
#include "reference_additive.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clattn_context *g_ctx;
static clattn_info g_info;

#define TAIL 16
static const float SENTINEL = -12345.0f;

static size_t mem_now(void)
{
    return test_mem_now(g_ctx);
}

static void compare(const char *name, const char *what, const float *got,
                    const double *ref, size_t n)
{
    test_compare(name, what, got, ref, n, TOL_ATOL, TOL_RTOL);
}

/* ------------------------------------------------------------------------ */
/* Concat                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct concat_problem {
    clattn_concat_desc desc;
    clattn_concat_weights w;
    size_t batch;
    const float *query, *key, *values;
} concat_problem;

/* A device buffer of n floats, copied from host (NULL: SENTINEL), with
   flags (0: CL_MEM_READ_WRITE) in context c (NULL: the test's). */
static cl_mem dev_floats(cl_context c, cl_mem_flags flags, const float *host,
                         size_t n)
{
    float *init = malloc((n ? n : 1) * sizeof *init);
    for (size_t i = 0; i < n; ++i)
        init[i] = host ? host[i] : SENTINEL;
    cl_int err;
    cl_mem m = clCreateBuffer(c ? c : g_info.cl_ctx,
                              (flags ? flags : CL_MEM_READ_WRITE) |
                                  CL_MEM_COPY_HOST_PTR,
                              (n ? n : 1) * sizeof *init, init, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer: %d", (int)err);
    free(init);
    return m;
}

/* n floats of m into a fresh array (the caller frees it). */
static float *dev_read(cl_mem m, size_t n)
{
    float *f = malloc(n * sizeof *f);
    clEnqueueReadBuffer(g_info.queue, m, CL_TRUE, 0, n * sizeof *f, f, 0, NULL,
                        NULL);
    return f;
}

/* Nonzero when the n floats of m from element from on are all SENTINEL. */
static int dev_sentinel(cl_mem m, size_t from, size_t n)
{
    float *f = dev_read(m, from + n);
    int ok = 1;
    for (size_t i = from; i < from + n; ++i)
        ok &= f[i] == SENTINEL;
    free(f);
    return ok;
}

/* The device form on a problem the host form ran (host_out, host_w): the
   same kernels in the same order, so bit-identical, with nothing written
   past out or weights, timing filled in; and without weights. */
static void concat_device(const char *name, clattn_concat *layer,
                          const concat_problem *p, const float *host_out,
                          const float *host_w)
{
    const clattn_concat_desc *d = &p->desc;
    size_t no = p->batch * d->out_dim, nw = p->batch * d->max_length;
    cl_mem q =
        dev_floats(NULL, CL_MEM_READ_ONLY, p->query, p->batch * d->query_dim);
    cl_mem k =
        dev_floats(NULL, CL_MEM_READ_ONLY, p->key, p->batch * d->key_dim);
    cl_mem v = dev_floats(NULL, CL_MEM_READ_ONLY, p->values,
                          p->batch * d->max_length * d->value_dim);
    cl_mem out = dev_floats(NULL, 0, NULL, no + TAIL);
    cl_mem w = dev_floats(NULL, 0, NULL, nw + TAIL);
    cl_mem out2 = dev_floats(NULL, 0, NULL, no + TAIL);
    clattn_layer_timing t = {-1, -1, -1};
    clattn_concat_call call = {p->batch, &t};
    clattn_status s = clattn_concat_forward(layer, &call, q, k, v, out, w);
    CHECK(s == CLATTN_SUCCESS, "%s device: %s: %s", name,
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    CHECK(t.projection_ms > 0 && t.attention_ms > 0 && t.other_ms >= 0,
          "%s device: timing %g %g %g", name, t.projection_ms, t.attention_ms,
          t.other_ms);
    call.timing = NULL;
    s = clattn_concat_forward(layer, &call, q, k, v, out2, NULL);
    CHECK(s == CLATTN_SUCCESS, "%s device without weights: %s", name,
          clattn_context_last_error(g_ctx));
    float *got_out = dev_read(out, no), *got_w = dev_read(w, nw);
    float *got_out2 = dev_read(out2, no);
    CHECK(memcmp(got_out, host_out, no * sizeof *got_out) == 0 &&
              memcmp(got_w, host_w, nw * sizeof *got_w) == 0 &&
              memcmp(got_out2, host_out, no * sizeof *got_out2) == 0,
          "%s device: not bit-identical to the host form", name);
    CHECK(dev_sentinel(out, no, TAIL) && dev_sentinel(w, nw, TAIL) &&
              dev_sentinel(out2, no, TAIL),
          "%s device: write past out or weights", name);
    free(got_out), free(got_w), free(got_out2);
    cl_mem all[] = {q, k, v, out, w, out2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        clReleaseMemObject(all[i]);
}

static void concat_run(const char *name, const concat_problem *p,
                       const double *ref_out, const double *ref_w)
{
    size_t before = mem_now();
    clattn_concat *layer = NULL;
    clattn_status s = clattn_concat_create(g_ctx, &p->desc, &p->w, &layer);
    if (!CHECK_SUCCESS(g_ctx, s, "%s create", name))
        return;
    size_t no = p->batch * p->desc.out_dim, nw = p->batch * p->desc.max_length;
    float *out = guarded_alloc(no), *w = guarded_alloc(nw);
    const clattn_concat_call call = {p->batch, NULL};
    s = clattn_concat_forward_host(layer, &call, p->query, p->key, p->values,
                                   out, w);
    CHECK(s == CLATTN_SUCCESS, "%s: %s: %s", name, clattn_status_string(s),
          clattn_context_last_error(g_ctx));
    CHECK(guarded_intact(out, no) && guarded_intact(w, nw),
          "%s: write outside the outputs", name);
    compare(name, "out", out, ref_out, no);
    compare(name, "weights", w, ref_w, nw);
    float *out2 = guarded_alloc(no);
    s = clattn_concat_forward_host(layer, &call, p->query, p->key, p->values,
                                   out2, NULL);
    CHECK(s == CLATTN_SUCCESS && guarded_intact(out2, no),
          "%s without weights: %s", name, clattn_context_last_error(g_ctx));
    compare(name, "out (no weights)", out2, ref_out, no);
    concat_device(name, layer, p, out, w);
    guarded_free(out), guarded_free(w), guarded_free(out2);
    clattn_concat_destroy(layer);
    CHECK(mem_now() == before, "%s: %zu bytes before, %zu after destroy", name,
          before, mem_now());
}

static void concat_golden(const char *file, const golden_bundle *g)
{
    concat_problem p;
    p.batch = (size_t)bundle_int(g, "batch", 0);
    p.desc.query_dim = (size_t)bundle_int(g, "query_dim", 0);
    p.desc.key_dim = (size_t)bundle_int(g, "key_dim", 0);
    p.desc.value_dim = (size_t)bundle_int(g, "value_dim", 0);
    p.desc.max_length = (size_t)bundle_int(g, "max_length", 0);
    p.desc.out_dim = (size_t)bundle_int(g, "out_dim", 0);
    p.w.attn_weight = bundle_f32(g, "attn.weight");
    p.w.attn_bias = bundle_f32(g, "attn.bias");
    p.w.combine_weight = bundle_f32(g, "attn_combine.weight");
    p.w.combine_bias = bundle_f32(g, "attn_combine.bias");
    p.query = bundle_f32(g, "query");
    p.key = bundle_f32(g, "key");
    p.values = bundle_f32(g, "values");
    const double *want_out = test_bundle_f64(g, "out");
    const double *want_w = test_bundle_f64(g, "weights");
    int complete = p.batch && p.w.attn_weight && p.w.attn_bias &&
                   p.w.combine_weight && p.w.combine_bias && p.query && p.key &&
                   p.values && want_out && want_w;
    CHECK(complete, "%s: missing tensors", file);
    if (complete) {
        size_t no = p.batch * p.desc.out_dim, nw = p.batch * p.desc.max_length;
        double *ro = malloc(no * sizeof *ro), *rw = malloc(nw * sizeof *rw);
        ref_concat(&p.desc, &p.w, p.batch, p.query, p.key, p.values, ro, rw);
        CHECK(test_max_diff(ro, want_out, no) < 1e-12 &&
                  test_max_diff(rw, want_w, nw) < 1e-12,
              "%s: reference vs torch %g, %g", file,
              test_max_diff(ro, want_out, no), test_max_diff(rw, want_w, nw));
        free(ro), free(rw);
        concat_run(file, &p, want_out, want_w);
    }
}

static void concat_reference(const char *name, uint64_t seed, size_t batch,
                             size_t dq, size_t dk, size_t dv, size_t len,
                             size_t out)
{
    test_rng r = test_rng_make(seed);
    concat_problem p;
    p.batch = batch;
    p.desc = (clattn_concat_desc){.query_dim = dq,
                                  .key_dim = dk,
                                  .value_dim = dv,
                                  .max_length = len,
                                  .out_dim = out};
    double ga = 2.0 / sqrt((double)(dq + dk)),
           gc = 2.0 / sqrt((double)(dq + dv));
    float *buf[7];
    p.w.attn_weight = buf[0] = test_random(&r, len * (dq + dk), -ga, ga);
    p.w.attn_bias = buf[1] = test_random(&r, len, -0.5, 0.5);
    p.w.combine_weight = buf[2] = test_random(&r, out * (dq + dv), -gc, gc);
    p.w.combine_bias = buf[3] = test_random(&r, out, -0.5, 0.5);
    p.query = buf[4] = test_random(&r, batch * dq, -1.5, 1.5);
    p.key = buf[5] = test_random(&r, batch * dk, -1.5, 1.5);
    p.values = buf[6] = test_random(&r, batch * len * dv, -1, 1);
    double *ro = malloc(batch * out * sizeof *ro);
    double *rw = malloc(batch * len * sizeof *rw);
    ref_concat(&p.desc, &p.w, batch, p.query, p.key, p.values, ro, rw);
    concat_run(name, &p, ro, rw);
    free(ro), free(rw);
    for (int i = 0; i < 7; ++i)
        free(buf[i]);
}

/* Nonzero when the error text names needle (NULL: anything does). */
static int names(const char *text, const char *needle)
{
    return !needle || (text && strstr(text, needle));
}

/* The device form's refusals: each returns its status with the argument
   named, writes neither out nor weights nor the timing, and holds no
   device memory afterwards. */
static void concat_device_errors(void)
{
    enum { B = 2, DQ = 5, DK = 3, DV = 4, L = 7, OUT = 6 };
    test_rng r = test_rng_make(31);
    float *aw = test_random(&r, L * (DQ + DK), -0.5, 0.5),
          *ab = test_random(&r, L, -1, 1);
    float *cw = test_random(&r, OUT * (DQ + DV), -0.5, 0.5);
    float *cb = test_random(&r, OUT, -1, 1),
          *hq = test_random(&r, B * DQ, -1, 1);
    float *hk = test_random(&r, B * DK, -1, 1),
          *hv = test_random(&r, B * L * DV, -1, 1);
    clattn_concat_desc desc;
    clattn_concat_desc_init(&desc);
    desc.query_dim = DQ, desc.key_dim = DK, desc.value_dim = DV;
    desc.max_length = L, desc.out_dim = OUT;
    const clattn_concat_weights weights = {aw, ab, cw, cb};
    clattn_concat *layer = NULL;
    clattn_status s = clattn_concat_create(g_ctx, &desc, &weights, &layer);
    CHECK(s == CLATTN_SUCCESS, "concat errors: create: %s",
          clattn_context_last_error(g_ctx));
    cl_int err;
    cl_context foreign =
        clCreateContext(NULL, 1, &g_info.device, NULL, NULL, &err);
    cl_mem q = dev_floats(NULL, 0, hq, B * DQ),
           k = dev_floats(NULL, 0, hk, B * DK);
    cl_mem v = dev_floats(NULL, 0, hv, B * L * DV);
    cl_mem out = dev_floats(NULL, 0, NULL, B * OUT);
    cl_mem w = dev_floats(NULL, 0, NULL, B * L);
    cl_mem v_short = dev_floats(NULL, 0, hv, B * L * DV - 1);
    cl_mem out_short = dev_floats(NULL, 0, NULL, B * OUT - 1);
    cl_mem w_short = dev_floats(NULL, 0, NULL, B * L - 1);
    cl_mem k_foreign = dev_floats(foreign, 0, hk, B * DK);
    cl_mem out_ro = dev_floats(NULL, CL_MEM_READ_ONLY, NULL, B * OUT);
    cl_mem q_wo = dev_floats(NULL, CL_MEM_WRITE_ONLY, hq, B * DQ);
    size_t baseline = mem_now();
#define DEV_CASE(label, want, needle, ...)                                     \
    do {                                                                       \
        clattn_concat *ll = layer;                                             \
        clattn_layer_timing timing = {-1, -1, -1};                             \
        clattn_concat_call call = {B, &timing}, *cp = &call;                   \
        cl_mem bb[5] = {q, k, v, out, w};                                      \
        __VA_ARGS__;                                                           \
        s = clattn_concat_forward(ll, cp, bb[0], bb[1], bb[2], bb[3], bb[4]);  \
        const char *text = clattn_context_last_error(g_ctx);                   \
        CHECK(s == want, "concat_forward / %s: got %s, want %s (%s)", label,   \
              clattn_status_string(s), clattn_status_string(want), text);      \
        CHECK(!ll || names(text, needle),                                      \
              "concat_forward / %s: \"%s\" does not name %s", label, text,     \
              needle ? needle : "");                                           \
        clFinish(g_info.queue);                                                \
        CHECK(dev_sentinel(out, 0, B *OUT) && dev_sentinel(w, 0, B * L) &&     \
                  dev_sentinel(out_short, 0, B * OUT - 1) &&                   \
                  dev_sentinel(w_short, 0, B * L - 1),                         \
              "concat_forward / %s: an output was written", label);            \
        CHECK(timing.projection_ms == -1 && timing.attention_ms == -1,         \
              "concat_forward / %s: timing written", label);                   \
        CHECK(mem_now() == baseline, "concat_forward / %s: %zu bytes held",    \
              label, mem_now() - baseline);                                    \
    } while (0)
    if (layer) {
        const clattn_status INVALID = CLATTN_ERROR_INVALID_ARGUMENT;
        const clattn_status SMALL = CLATTN_ERROR_BUFFER_TOO_SMALL;
        DEV_CASE("layer NULL", INVALID, NULL, ll = NULL);
        DEV_CASE("call NULL", INVALID, "call", cp = NULL);
        DEV_CASE("batch 0", CLATTN_ERROR_INVALID_SHAPE, "batch",
                 call.batch = 0);
        /* Buffer cases: the buffers in slot (and slot2) replaced. */
        enum { Q, K, V, O, W, NONE = -1 };
        const struct {
            const char *label, *needle;
            clattn_status want;
            int slot, slot2;
            cl_mem with, with2;
        } cases[] = {
            {"query NULL", "query", INVALID, Q, NONE, NULL, NULL},
            {"key NULL", "key", INVALID, K, NONE, NULL, NULL},
            {"values NULL", "values", INVALID, V, NONE, NULL, NULL},
            {"out NULL", "out", INVALID, O, NONE, NULL, NULL},
            {"values short", "values", SMALL, V, NONE, v_short, NULL},
            {"out short", "out", SMALL, O, NONE, out_short, NULL},
            {"weights short", "weights", SMALL, W, NONE, w_short, NULL},
            {"key of another cl_context", "another OpenCL context", INVALID, K,
             NONE, k_foreign, NULL},
            {"out CL_MEM_READ_ONLY", "CL_MEM_READ_ONLY", INVALID, O, NONE,
             out_ro, NULL},
            {"query CL_MEM_WRITE_ONLY", "CL_MEM_WRITE_ONLY", INVALID, Q, NONE,
             q_wo, NULL},
            {"out is the query", "query", INVALID, Q, NONE, out, NULL},
            {"weights are the values", "values", INVALID, V, NONE, w, NULL},
            {"out is the weights", "same buffer", INVALID, O, NONE, w, NULL},
            /* aliasing is refused before sizes are looked at */
            {"weights short but out is the key", "key", INVALID, W, K, w_short,
             out},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
            DEV_CASE(cases[i].label, cases[i].want, cases[i].needle,
                     bb[cases[i].slot] = cases[i].with;
                     if (cases[i].slot2 != NONE) bb[cases[i].slot2] =
                         cases[i].with2);
        /* still usable */
        const clattn_concat_call call = {B, NULL};
        s = clattn_concat_forward(layer, &call, q, k, v, out, w);
        clFinish(g_info.queue);
        CHECK(s == CLATTN_SUCCESS && !dev_sentinel(out, 0, B * OUT),
              "concat_forward: valid call after the errors: %s",
              clattn_context_last_error(g_ctx));
    }
#undef DEV_CASE
    clattn_concat_destroy(layer);
    cl_mem all[] = {q,         k,       v,         out,    w,   v_short,
                    out_short, w_short, k_foreign, out_ro, q_wo};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    clReleaseContext(foreign);
    float *owned[] = {aw, ab, cw, cb, hq, hk, hv};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; ++i)
        free(owned[i]);
}

/* ------------------------------------------------------------------------ */
/* SE gate                                                                   */
/* ------------------------------------------------------------------------ */

static void se_device(const char *name, clattn_se_gate *layer, size_t tokens,
                      size_t e, const float *x, const double *ref)
{
    size_t n = tokens * e;
    cl_int err;
    cl_mem bx =
        clCreateBuffer(g_info.cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                       n * sizeof *x, (void *)x, &err);
    float *all = malloc((n + TAIL) * sizeof *all);
    for (size_t i = 0; i < n + TAIL; ++i)
        all[i] = SENTINEL;
    cl_mem bo =
        clCreateBuffer(g_info.cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                       (n + TAIL) * sizeof *all, all, &err);
    clattn_layer_timing t = {-1, -1, -1};
    const clattn_se_gate_call call = {tokens, &t};
    clattn_status s = clattn_se_gate_forward(layer, &call, bx, bo);
    CHECK(s == CLATTN_SUCCESS, "%s device: %s: %s", name,
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    clEnqueueReadBuffer(g_info.queue, bo, CL_TRUE, 0, (n + TAIL) * sizeof *all,
                        all, 0, NULL, NULL);
    int tail_ok = 1;
    for (size_t i = n; i < n + TAIL; ++i)
        tail_ok &= all[i] == SENTINEL;
    CHECK(tail_ok, "%s device: write past out", name);
    compare(name, "device out", all, ref, n);
    CHECK(t.projection_ms > 0 && t.other_ms > 0 && t.attention_ms >= 0,
          "%s: timing %g %g %g", name, t.projection_ms, t.attention_ms,
          t.other_ms);
    free(all);
    clReleaseMemObject(bx);
    clReleaseMemObject(bo);
}

static void se_run(const char *name, size_t e, const clattn_se_gate_weights *w,
                   size_t tokens, const float *x, const double *ref)
{
    size_t before = mem_now();
    clattn_se_gate *layer = NULL;
    clattn_se_gate_desc desc;
    clattn_se_gate_desc_init(&desc);
    desc.embed_dim = e;
    clattn_status s = clattn_se_gate_create(g_ctx, &desc, w, &layer);
    if (!CHECK_SUCCESS(g_ctx, s, "%s create", name))
        return;
    size_t n = tokens * e;
    float *out = guarded_alloc(n);
    const clattn_se_gate_call call = {tokens, NULL};
    s = clattn_se_gate_forward_host(layer, &call, x, out);
    CHECK(s == CLATTN_SUCCESS, "%s: %s: %s", name, clattn_status_string(s),
          clattn_context_last_error(g_ctx));
    CHECK(guarded_intact(out, n), "%s: write outside out", name);
    compare(name, "out", out, ref, n);
    guarded_free(out);
    se_device(name, layer, tokens, e, x, ref);
    clattn_se_gate_destroy(layer);
    CHECK(mem_now() == before, "%s: %zu bytes before, %zu after destroy", name,
          before, mem_now());
}

static void se_golden(const char *file, const golden_bundle *g)
{
    size_t tokens = (size_t)bundle_int(g, "tokens", 0);
    size_t e = (size_t)bundle_int(g, "embed_dim", 0);
    clattn_se_gate_weights w = {
        bundle_f32(g, "fc1.weight"), bundle_f32(g, "fc1.bias"),
        bundle_f32(g, "fc2.weight"), bundle_f32(g, "fc2.bias")};
    const float *x = bundle_f32(g, "x");
    const double *want = test_bundle_f64(g, "out");
    int complete = tokens && e && w.fc1_weight && w.fc1_bias && w.fc2_weight &&
                   w.fc2_bias && x && want;
    CHECK(complete, "%s: missing tensors", file);
    if (complete) {
        double *ref = malloc(tokens * e * sizeof *ref);
        ref_se_gate(e, &w, tokens, x, ref);
        CHECK(test_max_diff(ref, want, tokens * e) < 1e-12,
              "%s: reference vs torch %g", file,
              test_max_diff(ref, want, tokens * e));
        free(ref);
        se_run(file, e, &w, tokens, x, want);
    }
}

static void se_reference(const char *name, uint64_t seed, size_t e,
                         size_t tokens)
{
    test_rng r = test_rng_make(seed);
    double g = 2.0 / sqrt((double)e);
    float *buf[5];
    clattn_se_gate_weights w;
    w.fc1_weight = buf[0] = test_random(&r, e, -2, 2);
    w.fc1_bias = buf[1] = test_random(&r, e, -0.5, 0.5);
    w.fc2_weight = buf[2] = test_random(&r, e * e, -g, g);
    w.fc2_bias = buf[3] = test_random(&r, e, -0.5, 0.5);
    float *x = buf[4] = test_random(&r, tokens * e, -2, 2);
    double *ref = malloc(tokens * e * sizeof *ref);
    ref_se_gate(e, &w, tokens, x, ref);
    se_run(name, e, &w, tokens, x, ref);
    free(ref);
    for (int i = 0; i < 5; ++i)
        free(buf[i]);
}

int main(void)
{
    g_ctx = test_context();
    clattn_context_info(g_ctx, &g_info);
    test_golden_run("concat_l10_b3.bin", concat_golden);
    test_golden_run("concat_l10_tutorial.bin", concat_golden);
    concat_device_errors();
    test_golden_run("se_e24_t13.bin", se_golden);
    test_golden_run("se_e40_b2_n5.bin", se_golden);
    /* name, seed, B, Dq, Dk, Dv, L, out */
    concat_reference("concat one of everything", 21, 1, 1, 1, 1, 1, 1);
    se_reference("se E 1", 22, 1, 3);
    if (test_small()) {
        concat_reference("concat odd (small)", 23, 2, 5, 3, 17, 7, 9);
        se_reference("se odd (small)", 24, 19, 7);
    } else {
        concat_reference("concat odd", 23, 5, 33, 17, 29, 50, 21);
        concat_reference("concat long", 25, 3, 64, 64, 64, 300, 64);
        se_reference("se odd", 24, 77, 301);
    }
    clattn_context_destroy(g_ctx);
    return test_finish("test_layer_concat_gate");
}
