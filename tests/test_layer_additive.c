/* clattn_additive (Bahdanau attention) against PyTorch goldens
   (tests/gen_golden_additive.py: the seq2seq tutorial's BahdanauAttention
   in float64) and against the double-precision reference
   (reference_additive.c) for what the goldens cannot hold: fully masked
   rows, bigger odd shapes, full and partial register tiles.

   Every problem runs three ways: the host form with weights, the host form
   without, and the device form (with timing, keys and values as one
   cl_mem when the values are the keys); outputs carry canaries (host:
   guarded arrays; device: a sentinel tail past the output). Each layer is
   destroyed and the context's memory must be back at its baseline.
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

typedef struct problem {
    clattn_additive_desc desc;
    clattn_additive_weights w;
    size_t batch, sq, skv;
    const float *query, *keys, *values; /* values NULL = the keys */
    const uint8_t *mask;                /* NULL = none */
} problem;

static size_t value_dim(const problem *p)
{
    return p->desc.value_dim ? p->desc.value_dim : p->desc.key_dim;
}

/* ------------------------------------------------------------------------ */
/* Device helpers                                                            */
/* ------------------------------------------------------------------------ */

#define TAIL 16 /* sentinel floats past each device output */
static const float SENTINEL = -12345.0f;

static cl_mem device_copy(const void *host, size_t bytes)
{
    return test_buffer(g_info.cl_ctx, host, bytes);
}

/* An output buffer of n floats plus TAIL, all SENTINEL. */
static cl_mem device_output(size_t n)
{
    return test_buffer_filled(g_info.cl_ctx, n + TAIL, SENTINEL);
}

/* Reads n floats into got and checks the tail kept its sentinels. */
static int device_read(cl_mem m, size_t n, float *got)
{
    return test_buffer_read_tail(g_info.queue, m, n, TAIL, SENTINEL, got);
}

static size_t mem_now(void)
{
    return test_mem_now(g_ctx);
}

/* ------------------------------------------------------------------------ */
/* The runner                                                                */
/* ------------------------------------------------------------------------ */

static void run_device(const char *name, clattn_additive *layer,
                       const problem *p, const double *ref_ctx,
                       const double *ref_w)
{
    size_t dv = value_dim(p), dq = p->desc.query_dim, dk = p->desc.key_dim;
    size_t nc = p->batch * p->sq * dv, nw = p->batch * p->sq * p->skv;
    cl_mem q = device_copy(p->query, p->batch * p->sq * dq * sizeof(float));
    cl_mem k = device_copy(p->keys, p->batch * p->skv * dk * sizeof(float));
    cl_mem v = p->values ? device_copy(p->values,
                                       p->batch * p->skv * dv * sizeof(float))
                         : k; /* the same cl_mem: keys as values */
    cl_mem m = p->mask ? device_copy(p->mask, p->batch * p->skv) : NULL;
    cl_mem c = device_output(nc), w = device_output(nw);
    clattn_additive_call call = {p->batch, p->sq, p->skv, p->mask != NULL,
                                 NULL};
    clattn_layer_timing timing = {-1, -1, -1};
    call.timing = &timing;
    clattn_status s = clattn_additive_forward(layer, &call, q, k, v, m, c, w);
    CHECK(s == CLATTN_SUCCESS, "%s device: %s: %s", name,
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    float *got_c = malloc(nc * sizeof *got_c), *got_w = malloc(nw * 4);
    CHECK(device_read(c, nc, got_c), "%s device: write past context", name);
    CHECK(device_read(w, nw, got_w), "%s device: write past weights", name);
    test_compare(name, "device context", got_c, ref_ctx, nc, TOL_ATOL,
                 TOL_RTOL);
    test_compare(name, "device weights", got_w, ref_w, nw, TOL_ATOL, TOL_RTOL);
    CHECK(timing.projection_ms > 0 && timing.attention_ms > 0 &&
              timing.other_ms >= 0,
          "%s: timing %g %g %g", name, timing.projection_ms,
          timing.attention_ms, timing.other_ms);
    /* values NULL in the device form also means the keys */
    if (!p->values) {
        call.timing = NULL;
        s = clattn_additive_forward(layer, &call, q, k, NULL, m, c, NULL);
        CHECK(s == CLATTN_SUCCESS, "%s device, values NULL: %s", name,
              clattn_context_last_error(g_ctx));
        clFinish(g_info.queue);
        CHECK(device_read(c, nc, got_c), "%s: write past context", name);
        test_compare(name, "device context (values NULL)", got_c, ref_ctx, nc,
                     TOL_ATOL, TOL_RTOL);
    }
    free(got_c), free(got_w);
    cl_mem all[] = {q, k, p->values ? v : NULL, m, c, w};
    for (size_t i = 0; i < 6; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
}

/* Host form with and without weights, then the device form. */
static void run_problem(const char *name, const problem *p,
                        const double *ref_ctx, const double *ref_w)
{
    size_t before = mem_now();
    clattn_additive *layer = NULL;
    clattn_status s = clattn_additive_create(g_ctx, &p->desc, &p->w, &layer);
    if (!CHECK_SUCCESS(g_ctx, s, "%s create", name))
        return;
    size_t nc = p->batch * p->sq * value_dim(p), nw = p->batch * p->sq * p->skv;
    float *c = guarded_alloc(nc), *w = guarded_alloc(nw);
    clattn_additive_call call = {p->batch, p->sq, p->skv, p->mask != NULL,
                                 NULL};
    s = clattn_additive_forward_host(layer, &call, p->query, p->keys, p->values,
                                     p->mask, c, w);
    CHECK(s == CLATTN_SUCCESS, "%s host: %s: %s", name, clattn_status_string(s),
          clattn_context_last_error(g_ctx));
    CHECK(guarded_intact(c, nc) && guarded_intact(w, nw),
          "%s host: write outside the outputs", name);
    test_compare(name, "context", c, ref_ctx, nc, TOL_ATOL, TOL_RTOL);
    test_compare(name, "weights", w, ref_w, nw, TOL_ATOL, TOL_RTOL);

    float *c2 = guarded_alloc(nc);
    s = clattn_additive_forward_host(layer, &call, p->query, p->keys, p->values,
                                     p->mask, c2, NULL);
    CHECK(s == CLATTN_SUCCESS, "%s host, no weights: %s", name,
          clattn_context_last_error(g_ctx));
    CHECK(guarded_intact(c2, nc), "%s host: write outside context", name);
    test_compare(name, "context (no weights)", c2, ref_ctx, nc, TOL_ATOL,
                 TOL_RTOL);
    guarded_free(c), guarded_free(w), guarded_free(c2);

    run_device(name, layer, p, ref_ctx, ref_w);
    clattn_additive_destroy(layer);
    CHECK(mem_now() == before, "%s: %zu bytes before, %zu after destroy", name,
          before, mem_now());
}

/* ------------------------------------------------------------------------ */
/* Goldens                                                                   */
/* ------------------------------------------------------------------------ */

static void golden_case(const char *file, const golden_bundle *g)
{
    problem p;
    memset(&p, 0, sizeof p);
    p.batch = (size_t)bundle_int(g, "batch", 0);
    p.sq = (size_t)bundle_int(g, "seq_q", 0);
    p.skv = (size_t)bundle_int(g, "seq_kv", 0);
    p.desc.query_dim = (size_t)bundle_int(g, "query_dim", 0);
    p.desc.key_dim = (size_t)bundle_int(g, "key_dim", 0);
    p.desc.attn_dim = (size_t)bundle_int(g, "attn_dim", 0);
    p.desc.value_dim = (size_t)bundle_int(g, "value_dim", 0);
    p.desc.bias = (int)bundle_int(g, "bias", 0);
    p.w.wa_weight = bundle_f32(g, "Wa.weight");
    p.w.wa_bias = bundle_f32(g, "Wa.bias");
    p.w.ua_weight = bundle_f32(g, "Ua.weight");
    p.w.ua_bias = bundle_f32(g, "Ua.bias");
    p.w.va_weight = bundle_f32(g, "Va.weight");
    p.w.va_bias = bundle_f32(g, "Va.bias");
    p.query = bundle_f32(g, "query");
    p.keys = bundle_f32(g, "keys");
    p.values = bundle_f32(g, "values");
    p.mask = bundle_u8(g, "key_padding_mask");
    const double *want_c = test_bundle_f64(g, "context");
    const double *want_w = test_bundle_f64(g, "weights");
    int complete =
        p.batch && p.query && p.keys && p.w.wa_weight && p.w.ua_weight &&
        p.w.va_weight && want_c && want_w &&
        (!p.desc.bias || (p.w.wa_bias && p.w.ua_bias && p.w.va_bias));
    CHECK(complete, "%s: missing tensors", file);
    if (complete) {
        /* The oracle of the reference cases agrees with torch. */
        size_t nc = p.batch * p.sq * value_dim(&p), nw = p.batch * p.sq * p.skv;
        double *rc = malloc(nc * sizeof *rc), *rw = malloc(nw * sizeof *rw);
        ref_additive(&p.desc, &p.w, p.batch, p.sq, p.skv, p.query, p.keys,
                     p.values, p.mask, rc, rw);
        CHECK(test_max_diff(rc, want_c, nc) < 1e-12 &&
                  test_max_diff(rw, want_w, nw) < 1e-12,
              "%s: reference vs torch %g, %g", file,
              test_max_diff(rc, want_c, nc), test_max_diff(rw, want_w, nw));
        free(rc), free(rw);
        run_problem(file, &p, want_c, want_w);
    }
}

/* ------------------------------------------------------------------------ */
/* Reference cases                                                           */
/* ------------------------------------------------------------------------ */

enum { MASK_NONE, MASK_RANDOM, MASK_FULL_ROWS };

typedef struct owned {
    problem p;
    float *buf[9];
    uint8_t *mask;
} owned;

/* A random problem; MASK_FULL_ROWS masks every key of the last batch. */
static void make_problem(owned *o, uint64_t seed, size_t batch, size_t sq,
                         size_t skv, size_t dq, size_t dk, size_t a, size_t dv,
                         int bias, int mask_mode)
{
    test_rng r = test_rng_make(seed);
    memset(o, 0, sizeof *o);
    problem *p = &o->p;
    p->batch = batch, p->sq = sq, p->skv = skv;
    p->desc.query_dim = dq, p->desc.key_dim = dk, p->desc.attn_dim = a;
    p->desc.value_dim = dv, p->desc.bias = bias;
    double gq = 2.0 / sqrt((double)dq), gk = 2.0 / sqrt((double)dk);
    p->w.wa_weight = o->buf[0] = test_random(&r, a * dq, -gq, gq);
    p->w.ua_weight = o->buf[1] = test_random(&r, a * dk, -gk, gk);
    p->w.va_weight = o->buf[2] = test_random(&r, a, -1.5, 1.5);
    if (bias) {
        p->w.wa_bias = o->buf[3] = test_random(&r, a, -0.5, 0.5);
        p->w.ua_bias = o->buf[4] = test_random(&r, a, -0.5, 0.5);
        p->w.va_bias = o->buf[5] = test_random(&r, 1, -0.5, 0.5);
    }
    p->query = o->buf[6] = test_random(&r, batch * sq * dq, -1.5, 1.5);
    p->keys = o->buf[7] = test_random(&r, batch * skv * dk, -1.5, 1.5);
    if (dv)
        p->values = o->buf[8] = test_random(&r, batch * skv * dv, -1, 1);
    if (mask_mode != MASK_NONE) {
        o->mask = malloc(batch * skv);
        for (size_t i = 0; i < batch * skv; ++i)
            o->mask[i] = test_rng_uniform(&r, 0, 1) < 0.3;
        for (size_t j = 0; j < skv; ++j)
            o->mask[(batch - 1) * skv + j] |= mask_mode == MASK_FULL_ROWS;
        p->mask = o->mask;
    }
}

static void free_problem(owned *o)
{
    for (size_t i = 0; i < 9; ++i)
        free(o->buf[i]);
    free(o->mask);
}

static void reference_case(const char *name, uint64_t seed, size_t batch,
                           size_t sq, size_t skv, size_t dq, size_t dk,
                           size_t a, size_t dv, int bias, int mask_mode)
{
    owned o;
    make_problem(&o, seed, batch, sq, skv, dq, dk, a, dv, bias, mask_mode);
    const problem *p = &o.p;
    size_t nc = batch * sq * value_dim(p), nw = batch * sq * skv;
    double *rc = malloc(nc * sizeof *rc), *rw = malloc(nw * sizeof *rw);
    ref_additive(&p->desc, &p->w, batch, sq, skv, p->query, p->keys, p->values,
                 p->mask, rc, rw);
    if (mask_mode == MASK_FULL_ROWS) {
        /* The fully masked batch's rows: zeros, exactly (never NaN). */
        size_t first_c = (batch - 1) * sq * value_dim(p);
        size_t first_w = (batch - 1) * sq * skv;
        int zeros = 1;
        for (size_t i = first_c; i < nc; ++i)
            zeros &= rc[i] == 0.0;
        for (size_t i = first_w; i < nw; ++i)
            zeros &= rw[i] == 0.0;
        CHECK(zeros, "%s: reference's fully masked rows are not zeros", name);
    }
    run_problem(name, p, rc, rw);
    free(rc), free(rw);
    free_problem(&o);
}

int main(void)
{
    g_ctx = test_context();
    clattn_context_info(g_ctx, &g_info);
    const char *goldens[] = {"additive_sq1_skv7.bin",
                             "additive_sq5_skv37_mask.bin",
                             "additive_sq5_skv7_nobias.bin",
                             "additive_sq1_skv37_keys_mask_nobias.bin"};
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; ++i)
        test_golden_run(goldens[i], golden_case);

    /* name, seed, B, Sq, Skv, Dq, Dk, A, Dv (0 = keys), bias, mask */
    reference_case("fully masked batch", 11, 3, 6, 9, 5, 7, 8, 3, 1,
                   MASK_FULL_ROWS);
    reference_case("full tiles (Sq 8, Skv 32, Dv 16)", 12, 2, 8, 32, 4, 6, 5,
                   16, 1, MASK_RANDOM);
    reference_case("one of everything", 13, 1, 1, 1, 1, 1, 1, 0, 1, MASK_NONE);
    if (test_small()) {
        reference_case("odd shapes (small)", 14, 2, 5, 19, 5, 7, 9, 17, 0,
                       MASK_RANDOM);
    } else {
        reference_case("odd shapes", 14, 3, 19, 131, 33, 27, 40, 45, 1,
                       MASK_RANDOM);
        reference_case("odd shapes, keys as values", 15, 2, 23, 77, 21, 35, 29,
                       0, 0, MASK_FULL_ROWS);
        reference_case("long keys", 16, 1, 3, 1000, 16, 16, 32, 24, 1,
                       MASK_RANDOM);
    }
    clattn_context_destroy(g_ctx);
    return test_finish("test_layer_additive");
}
