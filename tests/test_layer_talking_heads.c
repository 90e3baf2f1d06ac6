/* clattn_talking_heads (timm TalkingHeadAttn) against goldens made by timm
   (tests/gen_golden_talking_heads.py: module.double().eval()) and against
   the double-precision reference (reference_talking_heads.c) for what timm
   cannot give: dropout with the Philox stream, bigger odd shapes, more
   heads than a register tile, head dims over 64.

   Every problem runs on both paths: UNFUSED with attn, FUSED (and the
   FUSED_CPU / FUSED_GPU spellings, which must give the fused
   result bit for bit), and the device form with timing; host outputs
   carry canaries, device outputs a sentinel tail. Both paths must match
   the oracle and each other within docs/contract.md's fp32 bound (atol 1e-5 +
   rtol 1e-4). With dropout, the dropped positions of attn must be exactly
   the reference's. The unfused path's chunking (batches, then rows of one
   batch) runs on a second context with a small scratch limit. Each layer
   is destroyed and the context's memory must be back at its baseline. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "golden_bundle.h"
#include "philox_ref.h"
#include "reference_talking_heads.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clattn_context *g_ctx;
static clattn_info g_info;

typedef struct problem {
    const char *name;
    clattn_talking_heads_desc desc;
    clattn_talking_heads_weights w;
    size_t batch, seq;
    const float *x;
} problem;

static size_t x_count(const problem *p)
{
    return p->batch * p->seq * p->desc.dim;
}

static size_t attn_count(const problem *p)
{
    return p->batch * p->desc.num_heads * p->seq * p->seq;
}

/* ------------------------------------------------------------------------ */
/* Device helpers                                                            */
/* ------------------------------------------------------------------------ */

#define TAIL 16 /* sentinel floats past each device output */
static const float SENTINEL = -12345.0f;

/* An output buffer of n floats plus TAIL, all SENTINEL. */
static cl_mem device_output(cl_context cl, size_t n)
{
    return test_buffer_filled(cl, n + TAIL, SENTINEL);
}

/* Reads n floats into got and checks the tail kept its sentinels. */
static int device_read(cl_command_queue q, cl_mem m, size_t n, float *got)
{
    return test_buffer_read_tail(q, m, n, TAIL, SENTINEL, got);
}

/* ------------------------------------------------------------------------ */
/* The runner                                                                */
/* ------------------------------------------------------------------------ */

/* One host-form call; out and attn (NULL = not wanted) are guarded. */
static clattn_status run_host(clattn_talking_heads *layer, const problem *p,
                              clattn_sdpa_path path, float *out, float *attn)
{
    clattn_talking_heads_call call = {p->batch, p->seq, path, NULL};
    clattn_status s =
        clattn_talking_heads_forward_host(layer, &call, p->x, out, attn);
    CHECK(s == CLATTN_SUCCESS, "%s path %s: %s: %s", p->name,
          clattn_sdpa_path_name(path), clattn_status_string(s),
          clattn_context_last_error(g_ctx));
    CHECK(guarded_intact(out, x_count(p)), "%s %s: out canaries", p->name,
          clattn_sdpa_path_name(path));
    if (attn)
        CHECK(guarded_intact(attn, attn_count(p)), "%s %s: attn canaries",
              p->name, clattn_sdpa_path_name(path));
    return s;
}

/* The device form on path with timing, x/out/attn as cl_mem; its results
   must be the host form's bit for bit. */
static void run_device(clattn_talking_heads *layer, const problem *p,
                       clattn_sdpa_path path, const float *host_out,
                       const float *host_attn)
{
    size_t nx = x_count(p), na = attn_count(p);
    cl_mem x = test_buffer(g_info.cl_ctx, p->x, nx * sizeof(float));
    cl_mem o = device_output(g_info.cl_ctx, nx);
    cl_mem a = host_attn ? device_output(g_info.cl_ctx, na) : NULL;
    clattn_layer_timing t = {-1, -1, -1};
    clattn_talking_heads_call call = {p->batch, p->seq, path, &t};
    clattn_status s = clattn_talking_heads_forward(layer, &call, x, o, a);
    CHECK(s == CLATTN_SUCCESS, "%s device %s: %s: %s", p->name,
          clattn_sdpa_path_name(path), clattn_status_string(s),
          clattn_context_last_error(g_ctx));
    CHECK(t.projection_ms > 0 && t.attention_ms > 0 && t.other_ms >= 0,
          "%s device: timing %g / %g / %g ms", p->name, t.projection_ms,
          t.attention_ms, t.other_ms);
    float *got = malloc((nx > na ? nx : na) * sizeof *got);
    CHECK(device_read(g_info.queue, o, nx, got), "%s device: out tail",
          p->name);
    CHECK(memcmp(got, host_out, nx * sizeof *got) == 0,
          "%s device %s: out differs from the host form", p->name,
          clattn_sdpa_path_name(path));
    if (a) {
        CHECK(device_read(g_info.queue, a, na, got), "%s device: attn tail",
              p->name);
        CHECK(memcmp(got, host_attn, na * sizeof *got) == 0,
              "%s device: attn differs from the host form", p->name);
        clReleaseMemObject(a);
    }
    free(got);
    clReleaseMemObject(x);
    clReleaseMemObject(o);
}

/* Both paths against the oracle (ref_out, ref_attn) and each other, every
   spelling of the path, and the device form. Without dropout only: every
   call of a layer with dropout draws a new mask (run_dropout covers it). */
static void run_problem(const problem *p, const double *ref_out,
                        const double *ref_attn, double atol, double rtol)
{
    size_t base = test_mem_now(g_ctx), nx = x_count(p), na = attn_count(p);
    clattn_talking_heads *layer = NULL;
    clattn_status s =
        clattn_talking_heads_create(g_ctx, &p->desc, &p->w, &layer);
    CHECK(s == CLATTN_SUCCESS, "%s: create: %s: %s", p->name,
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    if (s != CLATTN_SUCCESS)
        return;
    float *out_u = guarded_alloc(nx), *attn_u = guarded_alloc(na);
    float *out_f = guarded_alloc(nx), *out_x = guarded_alloc(nx);
    float *attn_x = guarded_alloc(na);

    if (run_host(layer, p, CLATTN_SDPA_PATH_UNFUSED, out_u, attn_u) == 0) {
        test_compare(p->name, "unfused out", out_u, ref_out, nx, atol, rtol);
        test_compare(p->name, "unfused attn", attn_u, ref_attn, na, atol, rtol);
    }
    if (run_host(layer, p, CLATTN_SDPA_PATH_FUSED, out_f, NULL) == 0) {
        test_compare(p->name, "fused out", out_f, ref_out, nx, atol, rtol);
        double *u = test_to_double(out_u, nx);
        test_compare(p->name, "fused vs unfused", out_f, u, nx, TOL_ATOL,
                     TOL_RTOL);
        free(u);
    }
    /* The other spellings run one of the two, bit for bit. */
    const clattn_sdpa_path fused_like[] = {CLATTN_SDPA_PATH_FUSED_CPU,
                                           CLATTN_SDPA_PATH_FUSED_GPU};
    for (int i = 0; i < 2; ++i)
        if (run_host(layer, p, fused_like[i], out_x, NULL) == 0)
            CHECK(memcmp(out_x, out_f, nx * sizeof *out_x) == 0,
                  "%s: %s is not the fused result", p->name,
                  clattn_sdpa_path_name(fused_like[i]));
    if (run_host(layer, p, CLATTN_SDPA_PATH_AUTO, out_x, attn_x) == 0)
        CHECK(memcmp(out_x, out_u, nx * sizeof *out_x) == 0 &&
                  memcmp(attn_x, attn_u, na * sizeof *attn_x) == 0,
              "%s: AUTO with attn is not the unfused result", p->name);
    /* Without attn AUTO is fused below a head dim of 32 on CPU-class
       devices, else unfused (these problems fit the scratch limit). */
    int auto_fused =
        clattn_sdpa_fused_variant(g_ctx) == CLATTN_SDPA_PATH_FUSED_CPU &&
        p->desc.dim / p->desc.num_heads < 32;
    if (run_host(layer, p, CLATTN_SDPA_PATH_AUTO, out_x, NULL) == 0)
        CHECK(memcmp(out_x, auto_fused ? out_f : out_u, nx * sizeof *out_x) ==
                  0,
              "%s: AUTO without attn is not the %s result", p->name,
              auto_fused ? "fused" : "unfused");
    /* Without attn the unfused path must give the same out. */
    if (run_host(layer, p, CLATTN_SDPA_PATH_UNFUSED, out_x, NULL) == 0)
        CHECK(memcmp(out_x, out_u, nx * sizeof *out_x) == 0,
              "%s: unfused out depends on attn being wanted", p->name);

    run_device(layer, p, CLATTN_SDPA_PATH_UNFUSED, out_u, attn_u);
    run_device(layer, p, CLATTN_SDPA_PATH_FUSED, out_f, NULL);

    clattn_talking_heads_destroy(layer);
    CHECK(test_mem_now(g_ctx) == base,
          "%s: memory %zu after destroy, %zu before", p->name,
          test_mem_now(g_ctx), base);
    guarded_free(out_u);
    guarded_free(attn_u);
    guarded_free(out_f);
    guarded_free(out_x);
    guarded_free(attn_x);
}

/* ------------------------------------------------------------------------ */
/* Goldens                                                                   */
/* ------------------------------------------------------------------------ */

static const char *GOLDENS[] = {
    "th_n1_h1_b2_bias.bin",  "th_n7_h2_b3.bin",  "th_n13_h3_b2_bias.bin",
    "th_n13_h8_b2_bias.bin", "th_n37_h4_b1.bin", "th_n37_h3_b2_bias.bin",
    "th_n7_h8_b3.bin",
};

static void golden_case(const char *file)
{
    char path[1024];
    bundle_path(path, sizeof path, file);
    golden_bundle b;
    CHECK(bundle_load(path, &b) == 0, "golden %s loads", path);
    if (b.count == 0)
        return;
    problem p = {0};
    p.name = file;
    p.desc.dim = (size_t)bundle_int(&b, "C", 0);
    p.desc.num_heads = (size_t)bundle_int(&b, "H", 0);
    p.desc.qkv_bias = (int)bundle_int(&b, "qkv_bias", 0);
    p.batch = (size_t)bundle_int(&b, "B", 0);
    p.seq = (size_t)bundle_int(&b, "N", 0);
    p.x = bundle_f32(&b, "x");
    p.w.qkv_weight = bundle_f32(&b, "qkv.weight");
    p.w.qkv_bias = bundle_f32(&b, "qkv.bias");
    p.w.proj_l_weight = bundle_f32(&b, "proj_l.weight");
    p.w.proj_l_bias = bundle_f32(&b, "proj_l.bias");
    p.w.proj_w_weight = bundle_f32(&b, "proj_w.weight");
    p.w.proj_w_bias = bundle_f32(&b, "proj_w.bias");
    p.w.proj_weight = bundle_f32(&b, "proj.weight");
    p.w.proj_bias = bundle_f32(&b, "proj.bias");
    const float *gout = bundle_f32(&b, "out"), *gattn = bundle_f32(&b, "attn");
    CHECK(p.x && gout && gattn && p.w.qkv_weight && p.w.proj_weight &&
              (p.w.qkv_bias != NULL) == (p.desc.qkv_bias != 0),
          "golden %s: tensors present", file);
    if (!p.x || !gout || !gattn) {
        bundle_free(&b);
        return;
    }
    size_t nx = x_count(&p), na = attn_count(&p);
    double *go = test_to_double(gout, nx), *ga = test_to_double(gattn, na);
    /* The oracle is pinned to timm too (the goldens are float32 roundings
       of float64 results). */
    double *ro = malloc(nx * sizeof *ro), *ra = malloc(na * sizeof *ra);
    ref_talking_heads(&p.desc, &p.w, p.batch, p.seq, p.x, 0, ro, ra);
    float *rof = malloc(nx * sizeof *rof), *raf = malloc(na * sizeof *raf);
    for (size_t i = 0; i < nx; ++i)
        rof[i] = (float)ro[i];
    for (size_t i = 0; i < na; ++i)
        raf[i] = (float)ra[i];
    test_compare(file, "reference out vs timm", rof, go, nx, 1e-6, 1e-6);
    test_compare(file, "reference attn vs timm", raf, ga, na, 1e-6, 1e-6);
    run_problem(&p, go, ga, TOL_ATOL, TOL_RTOL);
    free(go);
    free(ga);
    free(ro);
    free(ra);
    free(rof);
    free(raf);
    bundle_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Problems made here, checked against the reference                         */
/* ------------------------------------------------------------------------ */

typedef struct owned {
    problem p;
    float *x, *wqkv, *bqkv, *wl, *bl, *ww, *bw, *wp, *bp;
} owned;

static float *filled(test_rng *r, size_t n, double bound)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    test_fill(r, x, n, -bound, bound);
    return x;
}

/* Weights in nn.Linear's init range; x uniform in [-1, 1). */
static void owned_make(owned *o, const char *name, size_t B, size_t N, size_t C,
                       size_t H, int qkv_bias, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    test_rng r = test_rng_make(seed);
    double bc = 1.0 / sqrt((double)C), bh = 1.0 / sqrt((double)H);
    o->x = filled(&r, B * N * C, 1.0);
    o->wqkv = filled(&r, 3 * C * C, bc);
    o->bqkv = qkv_bias ? filled(&r, 3 * C, bc) : NULL;
    o->wl = filled(&r, H * H, bh);
    o->bl = filled(&r, H, bh);
    o->ww = filled(&r, H * H, bh);
    o->bw = filled(&r, H, bh);
    o->wp = filled(&r, C * C, bc);
    o->bp = filled(&r, C, bc);
    problem *p = &o->p;
    p->name = name;
    p->desc.dim = C;
    p->desc.num_heads = H;
    p->desc.qkv_bias = qkv_bias;
    p->batch = B;
    p->seq = N;
    p->x = o->x;
    clattn_talking_heads_weights w = {o->wqkv, o->bqkv, o->wl, o->bl,
                                      o->ww,   o->bw,   o->wp, o->bp};
    p->w = w;
}

static void owned_free(owned *o)
{
    float *all[] = {o->x,  o->wqkv, o->bqkv, o->wl, o->bl,
                    o->ww, o->bw,   o->wp,   o->bp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        free(all[i]);
}

/* x_scale > 1 makes logits in the hundreds: exp would overflow without
   the row max taken out first. */
static void reference_case(const char *name, size_t B, size_t N, size_t C,
                           size_t H, int qkv_bias, float x_scale)
{
    owned o;
    owned_make(&o, name, B, N, C, H, qkv_bias, (uint64_t)(N * 131 + C));
    for (size_t i = 0; i < x_count(&o.p); ++i)
        o.x[i] *= x_scale;
    size_t nx = x_count(&o.p), na = attn_count(&o.p);
    double *ro = malloc(nx * sizeof *ro), *ra = malloc(na * sizeof *ra);
    ref_talking_heads(&o.p.desc, &o.p.w, B, N, o.x, 0, ro, ra);
    run_problem(&o.p, ro, ra, TOL_ATOL, TOL_RTOL);
    free(ro);
    free(ra);
    owned_free(&o);
}

/* ------------------------------------------------------------------------ */
/* Dropout                                                                   */
/* ------------------------------------------------------------------------ */

/* Exactly the reference's positions are zero in attn (a kept weight of
   exactly 0 would need bw and the mix to cancel, which these random
   weights do not do). */
static void check_dropped(const problem *p, const float *attn, uint64_t offset,
                          const char *what)
{
    size_t wrong = 0, dropped = 0, n = attn_count(p);
    for (size_t e = 0; e < n; ++e) {
        int keep = dropout_keep_ref(p->desc.dropout_seed, offset, e,
                                    p->desc.dropout_p);
        dropped += !keep;
        if (keep != (attn[e] != 0.0f) && wrong++ < 5)
            fprintf(stderr, "  %s %s[%zu]: %g, reference keeps: %d\n", p->name,
                    what, e, attn[e], keep);
    }
    CHECK(wrong == 0, "%s %s: %zu dropped positions differ", p->name, what,
          wrong);
    double frac = (double)dropped / (double)n;
    CHECK(n < 500 || fabs(frac - p->desc.dropout_p) < 0.1,
          "%s: dropped fraction %g for p = %g", p->name, frac,
          (double)p->desc.dropout_p);
}

static void dropout_case(const char *name, size_t B, size_t N, size_t C,
                         size_t H, float dropout_p, uint64_t seed)
{
    owned o;
    owned_make(&o, name, B, N, C, H, 1, seed);
    problem *p = &o.p;
    p->desc.dropout_p = dropout_p;
    p->desc.dropout_seed = seed * 7 + 1;
    size_t base = test_mem_now(g_ctx), nx = x_count(p), na = attn_count(p);
    double *ro = malloc(nx * sizeof *ro), *ra = malloc(na * sizeof *ra);
    /* Two layers with one description: the first call of each draws with
       offset 0, so the unfused and fused paths see the same mask. */
    clattn_talking_heads *lu = NULL, *lf = NULL;
    CHECK(clattn_talking_heads_create(g_ctx, &p->desc, &p->w, &lu) == 0 &&
              clattn_talking_heads_create(g_ctx, &p->desc, &p->w, &lf) == 0,
          "%s: create: %s", name, clattn_context_last_error(g_ctx));
    float *out_u = guarded_alloc(nx), *attn_u = guarded_alloc(na);
    float *out_f = guarded_alloc(nx);
    if (lu && lf) {
        ref_talking_heads(&p->desc, &p->w, B, N, o.x, 0, ro, ra);
        if (run_host(lu, p, CLATTN_SDPA_PATH_UNFUSED, out_u, attn_u) == 0) {
            test_compare(name, "dropout unfused out", out_u, ro, nx, TOL_ATOL,
                         TOL_RTOL);
            test_compare(name, "dropout unfused attn", attn_u, ra, na, TOL_ATOL,
                         TOL_RTOL);
            check_dropped(p, attn_u, 0, "attn");
        }
        /* The fused path's positions show through out: one position more
           or less would move it by far more than the tolerance. */
        if (run_host(lf, p, CLATTN_SDPA_PATH_FUSED, out_f, NULL) == 0) {
            test_compare(name, "dropout fused out", out_f, ro, nx, TOL_ATOL,
                         TOL_RTOL);
            double *u = test_to_double(out_u, nx);
            test_compare(name, "dropout fused vs unfused", out_f, u, nx,
                         TOL_ATOL, TOL_RTOL);
            free(u);
        }
        /* The second call of a layer draws with offset 1 (fused first
           this time, then the unfused layer's second call). */
        ref_talking_heads(&p->desc, &p->w, B, N, o.x, 1, ro, ra);
        if (run_host(lf, p, CLATTN_SDPA_PATH_FUSED, out_f, NULL) == 0)
            test_compare(name, "dropout fused out, 2nd call", out_f, ro, nx,
                         TOL_ATOL, TOL_RTOL);
        if (run_host(lu, p, CLATTN_SDPA_PATH_UNFUSED, out_u, attn_u) == 0) {
            test_compare(name, "dropout unfused attn, 2nd call", attn_u, ra, na,
                         TOL_ATOL, TOL_RTOL);
            check_dropped(p, attn_u, 1, "attn (2nd call)");
        }
    }
    clattn_talking_heads_destroy(lu);
    clattn_talking_heads_destroy(lf);
    CHECK(test_mem_now(g_ctx) == base, "%s: memory back at baseline", name);
    guarded_free(out_u);
    guarded_free(attn_u);
    guarded_free(out_f);
    free(ro);
    free(ra);
    owned_free(&o);
}

/* p below 2^-25: threshold 0, no dropout and no scaling, so the result is
   the dropout-free one bit for bit, and the call counter never matters. */
static void dropout_negligible(void)
{
    owned o;
    owned_make(&o, "dropout p=1e-8", 2, 9, 12, 3, 0, 99);
    problem *p = &o.p;
    size_t nx = x_count(p);
    clattn_talking_heads *plain = NULL, *tiny = NULL;
    clattn_talking_heads_create(g_ctx, &p->desc, &p->w, &plain);
    p->desc.dropout_p = 1e-8f;
    clattn_talking_heads_create(g_ctx, &p->desc, &p->w, &tiny);
    CHECK(plain && tiny, "dropout p=1e-8: create");
    float *a = guarded_alloc(nx), *b = guarded_alloc(nx);
    for (int path = CLATTN_SDPA_PATH_UNFUSED; plain && tiny && path <= 2;
         ++path) {
        run_host(plain, p, (clattn_sdpa_path)path, a, NULL);
        run_host(tiny, p, (clattn_sdpa_path)path, b, NULL);
        run_host(tiny, p, (clattn_sdpa_path)path, b, NULL);
        CHECK(memcmp(a, b, nx * sizeof *a) == 0,
              "dropout p=1e-8 differs from none on %s",
              clattn_sdpa_path_name((clattn_sdpa_path)path));
    }
    clattn_talking_heads_destroy(plain);
    clattn_talking_heads_destroy(tiny);
    guarded_free(a);
    guarded_free(b);
    owned_free(&o);
}

/* ------------------------------------------------------------------------ */
/* Memory and chunking                                                       */
/* ------------------------------------------------------------------------ */

/* The fused path must not hold anything N x N: its call's high-water
   stays within a bound linear in N (qkv, packed K/V, the attention output
   and its per-row scratch). The unfused one holds an H x N x N logits
   buffer without attn; with the caller's attn it works there in place,
   holding on a CPU-class device only th_mix's slots (1/TH_MIX_ROWS of a
   score buffer) and on a GPU-class one the second score buffer between
   its two mixing kernels. Device form, so only the library's own buffers
   count. */
static void memory_case(void)
{
    /* The small form (Oclgrind): the fewest heads and features for which
       the linear bound below still falls under one score buffer; N=120,
       C=64, H=16 took 131 s of Oclgrind's 233 s for this suite. */
    const int small = test_small();
    size_t B = 1, N = small ? 128 : 200, C = small ? 16 : 64,
           H = small ? 4 : 16;
    owned o;
    owned_make(&o, "memory", B, N, C, H, 1, 5);
    clattn_talking_heads *layer = NULL;
    clattn_talking_heads_create(g_ctx, &o.p.desc, &o.p.w, &layer);
    CHECK(layer != NULL, "memory: create");
    size_t nx = x_count(&o.p), na = attn_count(&o.p);
    cl_mem x = test_buffer(g_info.cl_ctx, o.x, nx * sizeof(float));
    cl_mem out = device_output(g_info.cl_ctx, nx);
    cl_mem attn = device_output(g_info.cl_ctx, na);
    size_t peak[3] = {0, 0, 0};
    const clattn_sdpa_path paths[3] = {CLATTN_SDPA_PATH_FUSED,
                                       CLATTN_SDPA_PATH_UNFUSED,
                                       CLATTN_SDPA_PATH_UNFUSED};
    const char *names[3] = {"fused", "unfused", "unfused with attn"};
    for (int i = 0; layer && i < 3; ++i) {
        size_t base = test_mem_now(g_ctx);
        clattn_memory_stats_reset_peak(g_ctx);
        clattn_talking_heads_call call = {B, N, paths[i], NULL};
        CHECK(clattn_talking_heads_forward(layer, &call, x, out,
                                           i == 2 ? attn : NULL) == 0,
              "memory: forward %s", names[i]);
        clFinish(g_info.queue);
        peak[i] = test_mem_peak(g_ctx) - base;
        CHECK(test_mem_now(g_ctx) == base,
              "memory: %s call releases its scratch", names[i]);
    }
    /* qkv 3BNC, K/V packed (padding may double a small head dim), the
       attention output BNC, per-row tiles and statistics 34H floats and
       accumulators C (padded): 16BNC + 40BNH is generous, and for these
       sizes still far below one H x N x N buffer. */
    size_t linear_bound = (16 * B * N * C + 40 * B * N * H) * sizeof(float);
    size_t scores = B * H * N * N * sizeof(float);
    int gpu_class =
        clattn_sdpa_fused_variant(g_ctx) == CLATTN_SDPA_PATH_FUSED_GPU;
    printf("memory (B=%zu N=%zu C=%zu H=%zu): fused peak %zu bytes, unfused "
           "%zu, unfused with attn %zu\n",
           B, N, C, H, peak[0], peak[1], peak[2]);
    CHECK(peak[0] > 0 && peak[0] <= linear_bound,
          "memory: fused peak %zu over its linear bound %zu", peak[0],
          linear_bound);
    CHECK(peak[1] >= scores, "memory: unfused peak %zu under its logits %zu",
          peak[1], scores);
    CHECK(peak[2] > 0 && peak[2] + scores <= peak[1],
          "memory: unfused with attn (peak %zu) holds logits of its own "
          "(%zu without attn)",
          peak[2], peak[1]);
    /* th_mix's slots, not a second score buffer */
    if (!gpu_class)
        CHECK(peak[1] < 2 * scores,
              "memory: unfused peak %zu holds two score buffers (%zu each)",
              peak[1], scores);
    CHECK(linear_bound < scores, "memory: the case tells the paths apart");
    clReleaseMemObject(x);
    clReleaseMemObject(out);
    clReleaseMemObject(attn);
    clattn_talking_heads_destroy(layer);
    owned_free(&o);
}

/* A second context whose unfused scratch limit (9000 bytes) forces chunks
   of batches (B=3, N=13, H=3: 4056 bytes a batch) and of rows of one
   batch (N=29, H=6: 1392 bytes a row, 6 rows a chunk), dropout included:
   the results must be the ones of the first context, bit for bit. */
static void chunked_case(clattn_context *small, const char *name, size_t B,
                         size_t N, size_t C, size_t H, float dropout_p)
{
    owned o;
    owned_make(&o, name, B, N, C, H, 1, N + H);
    problem *p = &o.p;
    p->desc.dropout_p = dropout_p;
    p->desc.dropout_seed = 77;
    size_t nx = x_count(p), na = attn_count(p);
    clattn_talking_heads *a = NULL, *b = NULL;
    clattn_talking_heads_create(g_ctx, &p->desc, &p->w, &a);
    clattn_talking_heads_create(small, &p->desc, &p->w, &b);
    CHECK(a && b, "%s: create", name);
    float *oa = guarded_alloc(nx), *ob = guarded_alloc(nx);
    float *aa = guarded_alloc(na), *ab = guarded_alloc(na);
    clattn_talking_heads_call call = {B, N, CLATTN_SDPA_PATH_UNFUSED, NULL};
    for (int with_attn = 1; a && b && with_attn >= 0; --with_attn) {
        clattn_status sa = clattn_talking_heads_forward_host(
            a, &call, o.x, oa, with_attn ? aa : NULL);
        clattn_status sb = clattn_talking_heads_forward_host(
            b, &call, o.x, ob, with_attn ? ab : NULL);
        CHECK(sa == 0 && sb == 0, "%s: forward: %s", name,
              clattn_context_last_error(sb ? small : g_ctx));
        CHECK(memcmp(oa, ob, nx * sizeof *oa) == 0,
              "%s: chunked out differs (attn %d)", name, with_attn);
        if (with_attn)
            CHECK(memcmp(aa, ab, na * sizeof *aa) == 0,
                  "%s: chunked attn differs", name);
    }
    /* AUTO's choice: unfused while one batch's scores fit the scratch
       limit (the first context), fused when they do not (the small one's,
       in the rows case) and, on a CPU-class device, fused below a head
       dim of 32 (the head dims here); with attn wanted always unfused.
       (Dropout draws a new offset per call, so only dropout-free cases
       compare bits.) */
    size_t batch_scores = 2 * H * N * N * sizeof(float);
    int small_heads_fused =
        clattn_sdpa_fused_variant(g_ctx) == CLATTN_SDPA_PATH_FUSED_CPU &&
        C / H < 32;
    clattn_talking_heads_call path_call = call;
    for (int ctx_i = 0; a && b && dropout_p == 0.0f && ctx_i < 2; ++ctx_i) {
        clattn_talking_heads *layer = ctx_i ? b : a;
        int fused_expected =
            small_heads_fused || (ctx_i == 1 && batch_scores > 9000);
        path_call.path =
            fused_expected ? CLATTN_SDPA_PATH_FUSED : CLATTN_SDPA_PATH_UNFUSED;
        clattn_talking_heads_forward_host(layer, &path_call, o.x, oa, NULL);
        path_call.path = CLATTN_SDPA_PATH_AUTO;
        clattn_talking_heads_forward_host(layer, &path_call, o.x, ob, NULL);
        CHECK(memcmp(oa, ob, nx * sizeof *oa) == 0,
              "%s: AUTO is not the %s path", name,
              fused_expected ? "fused" : "unfused");
        path_call.path = CLATTN_SDPA_PATH_UNFUSED;
        clattn_talking_heads_forward_host(layer, &path_call, o.x, oa, aa);
        path_call.path = CLATTN_SDPA_PATH_AUTO;
        clattn_talking_heads_forward_host(layer, &path_call, o.x, ob, ab);
        CHECK(memcmp(oa, ob, nx * sizeof *oa) == 0,
              "%s: AUTO with attn is not the unfused path", name);
    }
    clattn_talking_heads_destroy(a);
    clattn_talking_heads_destroy(b);
    guarded_free(oa);
    guarded_free(ob);
    guarded_free(aa);
    guarded_free(ab);
    owned_free(&o);
}

static void chunked_cases(void)
{
    setenv("CLATTN_UNFUSED_SCRATCH_BYTES", "9000", 1);
    clattn_context *small = NULL;
    clattn_status s = clattn_context_create(NULL, &small);
    unsetenv("CLATTN_UNFUSED_SCRATCH_BYTES");
    CHECK(s == CLATTN_SUCCESS, "second context: %s",
          clattn_context_last_error(small));
    if (s == CLATTN_SUCCESS) {
        chunked_case(small, "chunks of batches", 3, 13, 24, 3, 0.0f);
        /* D=32 is where AUTO leaves the fused path on CPU-class devices;
           on a GPU-class one it repeats the case above (54 s of Oclgrind's
           small run, so not there). */
        if (!test_small() ||
            clattn_sdpa_fused_variant(g_ctx) == CLATTN_SDPA_PATH_FUSED_CPU)
            chunked_case(small, "chunks of batches, D=32", 3, 13, 96, 3, 0.0f);
        if (!test_small())
            chunked_case(small, "chunks of rows", 2, 29, 36, 6, 0.0f);
        chunked_case(small, "chunks of rows, dropout", 2, 29, 36, 6, 0.3f);
    }
    clattn_context_destroy(small);
}

int main(void)
{
    g_ctx = test_context();
    clattn_context_info(g_ctx, &g_info);
    const int small = test_small();

    for (size_t i = 0; i < sizeof GOLDENS / sizeof GOLDENS[0]; ++i)
        if (!small || i < 3)
            golden_case(GOLDENS[i]);

    /* Odd shapes: D = 11 (a partial 16-feature chunk), D = 72 (two P.V
       chunk groups), H = 16 and H = 20 (many heads to mix), N past one
       64-key logits tile. */
    if (small) {
        reference_case("ref N=19 C=22 H=2", 2, 19, 22, 2, 1, 1.0f);
        reference_case("ref N=9 C=40 H=20", 1, 9, 40, 20, 0, 1.0f);
    } else {
        reference_case("ref N=67 C=66 H=6", 2, 67, 66, 6, 1, 1.0f);
        reference_case("ref N=100 C=80 H=5", 1, 100, 80, 5, 0, 1.0f);
        reference_case("ref N=50 C=144 H=2", 1, 50, 144, 2, 1, 1.0f);
        reference_case("ref N=33 C=64 H=16", 1, 33, 64, 16, 0, 1.0f);
        reference_case("ref N=19 C=40 H=20", 2, 19, 40, 20, 1, 1.0f);
        reference_case("ref large logits", 1, 23, 32, 4, 1, 30.0f);
    }

    dropout_case("dropout p=0.25", 2, small ? 11 : 29, 24, 3, 0.25f, 1234);
    if (!small)
        dropout_case("dropout p=0.6", 1, 45, 32, 4, 0.6f, 99);
    dropout_negligible();
    memory_case();
    chunked_cases();

    clattn_context_destroy(g_ctx);
    return test_finish("test_layer_talking_heads");
}
