/* The multi-head attention layer (clattn_mha_*) against PyTorch's
   nn.MultiheadAttention (golden files from tests/gen_golden_mha.py) and
   against the double-precision reference (reference/reference_mha.c) for what
   torch cannot give: Philox dropout, fully masked rows, a larger odd
   shape, a custom scale and LayerNorm eps.

   Every golden runs in both layouts (the stored one and its transpose),
   with the packed in_proj_weight and the same rows as three separate
   weights, with need_weights NONE / AVERAGE / PER_HEAD, on the unfused
   and the fused (or AUTO) SDPA path, in the host and the device form; the
   two forms must agree bit for bit, and the memory statistics must come
   back to the layer's baseline after each call and to the context's
   after destroy.

   Tolerance: max |got - want| <= 2e-5 * max |want| over each output
   tensor (fp32 GEMMs and attention against float64 torch); the C
   reference must match torch within 2e-6 of the same magnitude. */
#include "golden_bundle.h"
#include "reference_mha.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL_TOL 2e-5
#define REF_TOL 2e-6

static clattn_context *g_ctx;
static clattn_info g_info;
static double g_worst; /* the largest error / magnitude seen */

/* A call as the layer takes it; need_weights and path are set per run. */
typedef struct problem {
    clattn_mha_desc desc;
    clattn_mha_weights w;
    clattn_mha_call call;
    const float *query, *key, *value;
    const uint8_t *kpm;
    const void *attn_mask;
} problem;

typedef struct sizes {
    size_t q, k, v, out, avg, heads, kpm, mask_bytes;
} sizes;

static sizes sizes_of(const problem *p)
{
    const clattn_mha_desc *d = &p->desc;
    const clattn_mha_call *c = &p->call;
    size_t kd = d->kdim ? d->kdim : d->embed_dim;
    size_t vd = d->vdim ? d->vdim : d->embed_dim;
    sizes s = {c->batch * c->seq_q * d->embed_dim,
               c->batch * c->seq_kv * kd,
               c->batch * c->seq_kv * vd,
               c->batch * c->seq_q * d->embed_dim,
               c->batch * c->seq_q * c->seq_kv,
               c->batch * d->num_heads * c->seq_q * c->seq_kv,
               c->batch * c->seq_kv,
               0};
    if (c->attn_mask_type != CLATTN_MASK_NONE)
        s.mask_bytes = (c->attn_mask_per_head ? c->batch * d->num_heads : 1) *
                       c->seq_q * c->seq_kv *
                       (c->attn_mask_type == CLATTN_MASK_BOOL ? 1 : 4);
    return s;
}

static size_t weights_count(const problem *p, clattn_need_weights need)
{
    sizes s = sizes_of(p);
    return need == CLATTN_NEED_WEIGHTS_AVERAGE    ? s.avg
           : need == CLATTN_NEED_WEIGHTS_PER_HEAD ? s.heads
                                                  : 0;
}

/* max |got - want| <= REL_TOL * max |want|. */
static int close_enough(const char *what, const float *got, const double *want,
                        size_t n, double rel)
{
    double mag = 1e-6, err = 0.0;
    for (size_t i = 0; i < n; ++i)
        mag = fmax(mag, fabs(want[i]));
    for (size_t i = 0; i < n; ++i) {
        double e = fabs((double)got[i] - want[i]);
        err = isnan(got[i]) ? INFINITY : fmax(err, e);
    }
    if (rel == REL_TOL && err / mag > g_worst)
        g_worst = err / mag;
    return compare_close(what, got, want, n, rel * mag, 0.0) == 0;
}

/* The head mean of per-head weights, to compare with torch's average. */
static double *head_mean(const float *heads, size_t B, size_t H, size_t plane)
{
    double *m = calloc(B * plane, sizeof *m);
    for (size_t b = 0; b < B; ++b)
        for (size_t h = 0; h < H; ++h)
            for (size_t p = 0; p < plane; ++p)
                m[b * plane + p] += heads[(b * H + h) * plane + p] / (double)H;
    return m;
}

static size_t memory_now(void)
{
    clattn_memory_stats st;
    clattn_memory_stats_get(g_ctx, &st);
    return st.current_bytes;
}

/* ------------------------------------------------------------------------ */
/* Device form                                                               */
/* ------------------------------------------------------------------------ */

static cl_mem device_array(const void *host, size_t bytes)
{
    cl_int err;
    cl_mem m =
        clCreateBuffer(g_info.cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                       bytes ? bytes : 4, (void *)host, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer: %d", (int)err);
    return m;
}

/* A device output pre-filled with a NaN pattern. */
static cl_mem device_output(size_t n, float **pattern)
{
    *pattern = guarded_alloc(n);
    return device_array(*pattern, n * sizeof(float));
}

static void device_read(cl_mem m, void *host, size_t bytes)
{
    cl_int err = clEnqueueReadBuffer(g_info.queue, m, CL_TRUE, 0, bytes, host,
                                     0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", (int)err);
}

/* The device form of p; returns out and weights (malloc'd) for the
   caller to compare with the host form. Inputs that are one pointer in p
   are one cl_mem here, as a caller would pass them. */
static int run_device(clattn_mha *layer, const problem *p, float **out,
                      float **weights)
{
    sizes s = sizes_of(p);
    size_t nw = weights_count(p, p->call.need_weights);
    clattn_mha_buffers b = {0};
    b.query = device_array(p->query, s.q * 4);
    b.key = p->key == p->query ? b.query : device_array(p->key, s.k * 4);
    b.value = p->value == p->key     ? b.key
              : p->value == p->query ? b.query
                                     : device_array(p->value, s.v * 4);
    if (p->call.has_key_padding_mask)
        b.key_padding_mask = device_array(p->kpm, s.kpm);
    if (s.mask_bytes)
        b.attn_mask = device_array(p->attn_mask, s.mask_bytes);
    float *out_fill, *w_fill;
    size_t w_alloc = s.heads; /* a weights buffer even when not wanted */
    b.out = device_output(s.out, &out_fill);
    b.attn_weights = device_output(w_alloc, &w_fill);
    clattn_status st = clattn_mha_forward(layer, &p->call, &b);
    CHECK(st == CLATTN_SUCCESS, "device form: %s: %s", clattn_status_string(st),
          clattn_context_last_error(g_ctx));
    *out = malloc(s.out * sizeof(float));
    *weights = malloc(w_alloc * sizeof(float));
    clFinish(g_info.queue);
    device_read(b.out, *out, s.out * 4);
    device_read(b.attn_weights, *weights, w_alloc * 4);
    /* Unwanted weights, or the part past them, stay untouched. */
    CHECK(memcmp(*weights + nw, w_fill + nw, (w_alloc - nw) * 4) == 0,
          "device form wrote attn_weights beyond need_weights");
    cl_mem all[7] = {b.query,     b.key, b.value,       b.key_padding_mask,
                     b.attn_mask, b.out, b.attn_weights};
    for (int i = 0; i < 7; ++i) {
        int repeated = 0;
        for (int j = 0; j < i; ++j)
            repeated |= all[j] == all[i];
        if (all[i] && !repeated)
            clReleaseMemObject(all[i]);
    }
    guarded_free(out_fill), guarded_free(w_fill);
    return st == CLATTN_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* One call in both forms against expected results                           */
/* ------------------------------------------------------------------------ */

typedef struct expected {
    const double *out;
    const double *avg;   /* head-mean weights, or NULL */
    const double *heads; /* per-head weights, or NULL */
} expected;

static void check_weights(const char *name, const problem *p, const float *w,
                          const expected *e)
{
    const clattn_mha_call *c = &p->call;
    size_t plane = c->seq_q * c->seq_kv, H = p->desc.num_heads;
    if (c->need_weights == CLATTN_NEED_WEIGHTS_AVERAGE && e->avg)
        CHECK(close_enough("weights", w, e->avg, c->batch * plane, REL_TOL),
              "%s: head-averaged weights differ", name);
    if (c->need_weights != CLATTN_NEED_WEIGHTS_PER_HEAD)
        return;
    if (e->heads) {
        CHECK(
            close_enough("weights", w, e->heads, c->batch * H * plane, REL_TOL),
            "%s: per-head weights differ", name);
    } else if (e->avg) {
        /* Their mean must be torch's average. */
        double *mean = head_mean(w, c->batch, H, plane);
        float *mf = malloc(c->batch * plane * sizeof *mf);
        for (size_t i = 0; i < c->batch * plane; ++i)
            mf[i] = (float)mean[i];
        CHECK(close_enough("weights", mf, e->avg, c->batch * plane, REL_TOL),
              "%s: the mean of the per-head weights differs", name);
        free(mean), free(mf);
    }
}

static void run_forms(const char *what, clattn_mha *layer, const problem *p,
                      const expected *e, size_t baseline)
{
    char name[256];
    snprintf(name, sizeof name, "%s [need %d, path %s, %s]", what,
             (int)p->call.need_weights, clattn_sdpa_path_name(p->call.path),
             p->desc.batch_first ? "batch_first" : "seq-first");
    sizes s = sizes_of(p);
    size_t nw = weights_count(p, p->call.need_weights);
    float *out = guarded_alloc(s.out), *w = nw ? guarded_alloc(nw) : NULL;
    clattn_status st =
        clattn_mha_forward_host(layer, &p->call, p->query, p->key, p->value,
                                p->kpm, p->attn_mask, out, w);
    CHECK(st == CLATTN_SUCCESS, "%s: host form: %s: %s", name,
          clattn_status_string(st), clattn_context_last_error(g_ctx));
    if (st == CLATTN_SUCCESS) {
        CHECK(close_enough("out", out, e->out, s.out, REL_TOL),
              "%s: output differs", name);
        if (w)
            check_weights(name, p, w, e);
    }
    CHECK(guarded_intact(out, s.out) && (!w || guarded_intact(w, nw)),
          "%s: host form wrote outside its outputs", name);
    CHECK(memory_now() == baseline,
          "%s: memory %zu after the host form, "
          "layer baseline %zu",
          name, memory_now(), baseline);

    float *dout = NULL, *dw = NULL;
    if (run_device(layer, p, &dout, &dw) && st == CLATTN_SUCCESS) {
        CHECK(memcmp(dout, out, s.out * 4) == 0,
              "%s: device and host forms differ (out)", name);
        CHECK(!w || memcmp(dw, w, nw * 4) == 0,
              "%s: device and host forms differ (weights)", name);
    }
    CHECK(memory_now() == baseline,
          "%s: memory %zu after the device form, "
          "layer baseline %zu",
          name, memory_now(), baseline);
    free(dout), free(dw);
    guarded_free(out), guarded_free(w);
}

/* Every need_weights on the paths that take it (only need only_need,
   unless it is -1). expect(need) gives the expected results of p with
   that need. */
typedef void (*expect_fn)(void *arg, const problem *p, expected *e);

static void run_all_calls(const char *what, problem *p, expect_fn expect,
                          void *arg, int small, int only_need)
{
    size_t before = memory_now();
    clattn_mha *layer = NULL;
    clattn_status st = clattn_mha_create(g_ctx, &p->desc, &p->w, &layer);
    if (!CHECK_SUCCESS(g_ctx, st, "%s: create", what))
        return;
    size_t baseline = memory_now();
    CHECK(baseline > before, "%s: the weights are not counted", what);
    for (int need = 0; need <= 2; ++need) {
        if (only_need >= 0 && need != only_need)
            continue;
        clattn_sdpa_path paths[2] = {CLATTN_SDPA_PATH_UNFUSED,
                                     need ? CLATTN_SDPA_PATH_AUTO
                                          : CLATTN_SDPA_PATH_FUSED};
        for (int i = 0; i < 2; ++i) {
            if (small && i != (need + 1) % 2)
                continue;
            p->call.need_weights = (clattn_need_weights)need;
            p->call.path = paths[i];
            expected e;
            expect(arg, p, &e);
            run_forms(what, layer, p, &e, baseline);
        }
    }
    clattn_mha_destroy(layer);
    CHECK(memory_now() == before, "%s: memory %zu after destroy, %zu before",
          what, memory_now(), before);
}

/* ------------------------------------------------------------------------ */
/* Golden files                                                              */
/* ------------------------------------------------------------------------ */

/* [B][S][F] <-> [S][B][F] (from_batch_first says which it is now). */
static void *flip(const void *src, size_t B, size_t S, size_t row_bytes,
                  int from_batch_first)
{
    unsigned char *dst = malloc(B * S * row_bytes + 1);
    const unsigned char *in = src;
    for (size_t b = 0; b < B; ++b)
        for (size_t s = 0; s < S; ++s) {
            size_t bf = (b * S + s) * row_bytes, sf = (s * B + b) * row_bytes;
            memcpy(dst + (from_batch_first ? sf : bf),
                   in + (from_batch_first ? bf : sf), row_bytes);
        }
    return dst;
}

typedef struct golden_case {
    expected e; /* for AVERAGE/PER_HEAD; out for all */
} golden_case;

static void expect_golden(void *arg, const problem *p, expected *e)
{
    (void)p;
    *e = ((golden_case *)arg)->e;
}

static void load_problem(const golden_bundle *g, problem *p)
{
    memset(p, 0, sizeof *p);
    clattn_mha_desc *d = &p->desc;
    clattn_mha_desc_init(d);
    d->embed_dim = (size_t)bundle_int(g, "E", 0);
    d->num_heads = (size_t)bundle_int(g, "H", 0);
    d->kdim = (size_t)bundle_int(g, "kdim", 0);
    d->vdim = (size_t)bundle_int(g, "vdim", 0);
    d->bias = (int)bundle_int(g, "bias", 0);
    d->batch_first = (int)bundle_int(g, "batch_first", 0);
    d->pre_layernorm = (int)bundle_int(g, "pre_ln", 0);
    d->no_out_proj = (int)bundle_int(g, "no_out_proj", 0);
    clattn_mha_weights *w = &p->w;
    w->in_proj_weight = bundle_f32(g, "in_proj_weight");
    w->q_proj_weight = bundle_f32(g, "q_proj_weight");
    w->k_proj_weight = bundle_f32(g, "k_proj_weight");
    w->v_proj_weight = bundle_f32(g, "v_proj_weight");
    w->in_proj_bias = bundle_f32(g, "in_proj_bias");
    w->out_proj_weight = bundle_f32(g, "out_proj_weight");
    w->out_proj_bias = bundle_f32(g, "out_proj_bias");
    w->norm_weight = bundle_f32(g, "norm_weight");
    w->norm_bias = bundle_f32(g, "norm_bias");
    clattn_mha_call *c = &p->call;
    c->batch = (size_t)bundle_int(g, "B", 0);
    c->seq_q = (size_t)bundle_int(g, "Sq", 0);
    c->seq_kv = (size_t)bundle_int(g, "Skv", 0);
    c->has_key_padding_mask = (int)bundle_int(g, "kpm", 0);
    c->attn_mask_type = (clattn_mask_type)bundle_int(g, "attn_mask_type", 0);
    c->attn_mask_per_head = (int)bundle_int(g, "per_head", 0);
    c->is_causal = (int)bundle_int(g, "is_causal", 0);
    long inputs = bundle_int(g, "inputs", 1);
    p->query = bundle_f32(g, "query");
    p->key = inputs == 1 ? p->query : bundle_f32(g, "key");
    p->value = inputs == 3 ? bundle_f32(g, "value") : p->key;
    p->kpm = bundle_u8(g, "key_padding_mask");
    p->attn_mask = c->attn_mask_type == CLATTN_MASK_BOOL
                       ? (const void *)bundle_u8(g, "attn_mask")
                       : (const void *)bundle_f32(g, "attn_mask");
}

/* The C reference against torch on the golden problem. */
static void check_reference(const char *name, problem *p, const expected *e)
{
    sizes s = sizes_of(p);
    double *out = malloc(s.out * sizeof *out), *w = malloc(s.avg * sizeof *w);
    p->call.need_weights = CLATTN_NEED_WEIGHTS_AVERAGE;
    ref_mha(&p->desc, &p->w, &p->call, p->query, p->key, p->value, p->kpm,
            p->attn_mask, 0, out, w);
    float *of = malloc(s.out * sizeof *of), *wf = malloc(s.avg * sizeof *wf);
    for (size_t i = 0; i < s.out; ++i)
        of[i] = (float)out[i];
    for (size_t i = 0; i < s.avg; ++i)
        wf[i] = (float)w[i];
    CHECK(close_enough("reference out", of, e->out, s.out, REF_TOL),
          "%s: the C reference differs from torch (out)", name);
    CHECK(close_enough("reference weights", wf, e->avg, s.avg, REF_TOL),
          "%s: the C reference differs from torch (weights)", name);
    free(out), free(w), free(of), free(wf);
}

/* Small runs (Oclgrind, valgrind) take one need_weights per file, in
   turn by the file's index: every need still runs on six files, and a
   simulator's run of CLBlast's GEMMs per call is what costs. */
static void run_golden(const char *file, size_t index, int small)
{
    golden_bundle g;
    if (test_golden_load(file, &g) != 0)
        return;
    problem p;
    load_problem(&g, &p);
    sizes s = sizes_of(&p);
    const float *want_heads = bundle_f32(&g, "weights_per_head");
    golden_case gc;
    double *out = test_to_double(bundle_f32(&g, "out"), s.out);
    double *avg = test_to_double(bundle_f32(&g, "weights_avg"), s.avg);
    double *heads = want_heads ? test_to_double(want_heads, s.heads) : NULL;
    gc.e = (expected){out, avg, heads};
    check_reference(file, &p, &gc.e);

    int packed = p.w.in_proj_weight != NULL;
    for (int flipped = 0; flipped <= !small; ++flipped) {
        problem v = p;
        void *owned[4] = {0};
        expected e = gc.e;
        if (flipped) {
            const clattn_mha_desc *d = &p.desc;
            size_t B = p.call.batch, Sq = p.call.seq_q, Skv = p.call.seq_kv;
            size_t kd = d->kdim ? d->kdim : d->embed_dim;
            size_t vd = d->vdim ? d->vdim : d->embed_dim;
            int bf = d->batch_first;
            owned[0] = flip(p.query, B, Sq, d->embed_dim * 4, bf);
            v.query = owned[0];
            if (p.key == p.query) {
                v.key = v.query;
            } else {
                owned[1] = flip(p.key, B, Skv, kd * 4, bf);
                v.key = owned[1];
            }
            if (p.value == p.key) {
                v.value = v.key;
            } else {
                owned[2] = flip(p.value, B, Skv, vd * 4, bf);
                v.value = owned[2];
            }
            owned[3] = flip(out, B, Sq, d->embed_dim * 8, bf);
            e.out = owned[3];
            v.desc.batch_first = !bf;
        }
        golden_case fc = {e};
        for (int separate = 0; separate <= (packed && !small); ++separate) {
            problem u = v;
            if (separate) {
                size_t E = p.desc.embed_dim;
                u.w.q_proj_weight = p.w.in_proj_weight;
                u.w.k_proj_weight = p.w.in_proj_weight + E * E;
                u.w.v_proj_weight = p.w.in_proj_weight + 2 * E * E;
                u.w.in_proj_weight = NULL;
            }
            char what[160];
            snprintf(what, sizeof what, "%s%s", file,
                     separate ? " (separate q/k/v weights)" : "");
            run_all_calls(what, &u, expect_golden, &fc, small,
                          small ? (int)(index % 3) : -1);
        }
        for (int i = 0; i < 4; ++i)
            free(owned[i]);
    }
    free(out), free(avg), free(heads);
    bundle_free(&g);
}

/* ------------------------------------------------------------------------ */
/* Problems for the C reference                                              */
/* ------------------------------------------------------------------------ */

typedef struct spec {
    const char *name;
    size_t E, H, kdim, vdim, B, Sq, Skv;
    int bias, batch_first, pre_ln, no_out_proj;
    int inputs; /* 1 q=k=v, 2 k=v, 3 distinct, 4 q=k, v distinct */
    int kpm;
    clattn_mask_type attn;
    int per_head, causal;
    float scale, eps, dropout;
    int full_rows; /* some rows fully masked */
} spec;

/* The rotary embeddings random_problem gives its layer (none unless a
   case sets them). */
static clattn_rope g_rope;

/* The arrays of a random problem (owned). */
typedef struct arrays {
    float *q, *k, *v, *w_in[3], *b_in, *w_out, *b_out, *nw, *nb;
    uint8_t *kpm;
    void *mask;
} arrays;

static void random_problem(const spec *sp, uint64_t seed, problem *p, arrays *a)
{
    test_rng r = test_rng_make(seed);
    memset(p, 0, sizeof *p);
    memset(a, 0, sizeof *a);
    clattn_mha_desc *d = &p->desc;
    clattn_mha_desc_init(d);
    d->embed_dim = sp->E, d->num_heads = sp->H, d->kdim = sp->kdim;
    d->vdim = sp->vdim, d->bias = sp->bias, d->batch_first = sp->batch_first;
    d->pre_layernorm = sp->pre_ln, d->no_out_proj = sp->no_out_proj;
    d->scale = sp->scale, d->layernorm_eps = sp->eps;
    d->dropout_p = sp->dropout, d->dropout_seed = seed;
    d->rope = g_rope;
    size_t E = sp->E, kd = sp->kdim ? sp->kdim : E,
           vd = sp->vdim ? sp->vdim : E;
    double ws = 1.0 / sqrt((double)E);
    a->w_in[0] = test_random(&r, E * E, -ws, ws);
    a->w_in[1] = test_random(&r, E * kd, -1.0 / sqrt((double)kd),
                             1.0 / sqrt((double)kd));
    a->w_in[2] = test_random(&r, E * vd, -1.0 / sqrt((double)vd),
                             1.0 / sqrt((double)vd));
    p->w.q_proj_weight = a->w_in[0];
    p->w.k_proj_weight = a->w_in[1];
    p->w.v_proj_weight = a->w_in[2];
    if (sp->bias) {
        p->w.in_proj_bias = a->b_in = test_random(&r, 3 * E, -0.5, 0.5);
        if (!sp->no_out_proj)
            p->w.out_proj_bias = a->b_out = test_random(&r, E, -0.5, 0.5);
    }
    if (!sp->no_out_proj)
        p->w.out_proj_weight = a->w_out = test_random(&r, E * E, -ws, ws);
    if (sp->pre_ln) {
        p->w.norm_weight = a->nw = test_random(&r, E, 0.5, 1.5);
        p->w.norm_bias = a->nb = test_random(&r, E, -0.5, 0.5);
    }
    clattn_mha_call *c = &p->call;
    c->batch = sp->B, c->seq_q = sp->Sq, c->seq_kv = sp->Skv;
    c->has_key_padding_mask = sp->kpm;
    c->attn_mask_type = sp->attn;
    c->attn_mask_per_head = sp->per_head;
    c->is_causal = sp->causal;
    size_t B = sp->B, Sq = sp->Sq, Skv = sp->Skv;
    p->query = a->q = test_random(&r, B * Sq * E, -1, 1);
    p->key = sp->inputs == 1 || sp->inputs == 4
                 ? p->query
                 : (a->k = test_random(&r, B * Skv * kd, -1, 1));
    p->value = sp->inputs == 1 ? p->query
               : sp->inputs == 2
                   ? p->key
                   : (a->v = test_random(&r, B * Skv * vd, -1, 1));
    if (sp->kpm) {
        p->kpm = a->kpm = malloc(B * Skv);
        for (size_t i = 0; i < B * Skv; ++i)
            a->kpm[i] = test_rng_uniform(&r, 0, 1) < 0.25;
        if (sp->full_rows) /* the last batch: every key padded */
            memset(a->kpm + (B - 1) * Skv, 1, Skv);
    }
    size_t mn = (sp->per_head ? B * sp->H : 1) * Sq * Skv;
    if (sp->attn == CLATTN_MASK_BOOL) {
        uint8_t *m = malloc(mn);
        for (size_t i = 0; i < mn; ++i)
            m[i] = test_rng_uniform(&r, 0, 1) < 0.3;
        if (sp->full_rows) /* row 1 of the first plane: all not allowed */
            memset(m + Skv, 1, Skv);
        a->mask = m;
    } else if (sp->attn == CLATTN_MASK_ADDITIVE) {
        float *m = test_random(&r, mn, -2, 2);
        for (size_t i = 0; i < mn; i += 5)
            m[i] = -INFINITY;
        if (sp->full_rows)
            for (size_t j = 0; j < Skv; ++j)
                m[Skv + j] = -INFINITY;
        a->mask = m;
    }
    p->attn_mask = a->mask;
}

static void arrays_free(arrays *a)
{
    void *all[] = {a->q,       a->k,    a->v,     a->w_in[0], a->w_in[1],
                   a->w_in[2], a->b_in, a->w_out, a->b_out,   a->nw,
                   a->nb,      a->kpm,  a->mask};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        free(all[i]);
}

typedef struct ref_expect {
    double *out, *w;
} ref_expect;

static void expect_reference(void *arg, const problem *p, expected *e)
{
    ref_expect *r = arg;
    ref_mha(&p->desc, &p->w, &p->call, p->query, p->key, p->value, p->kpm,
            p->attn_mask, 0, r->out, r->w);
    e->out = r->out;
    e->avg = p->call.need_weights == CLATTN_NEED_WEIGHTS_AVERAGE ? r->w : NULL;
    e->heads =
        p->call.need_weights == CLATTN_NEED_WEIGHTS_PER_HEAD ? r->w : NULL;
}

static void run_reference_case(const spec *sp, int small)
{
    problem p;
    arrays a;
    random_problem(sp, 1000 + (uint64_t)sp->Skv, &p, &a);
    sizes s = sizes_of(&p);
    ref_expect r = {malloc(s.out * sizeof(double)),
                    malloc(s.heads * sizeof(double))};
    run_all_calls(sp->name, &p, expect_reference, &r, small, -1);
    free(r.out), free(r.w);
    arrays_free(&a);
}

/* A rope the head dim cannot take is refused at creation, and the
   layout before rope reads none. */
static void check_rope_refused(void)
{
    const spec sp = {
        "rope refused",   32, 4, 0,    0,    1,    3, 3, 0, 1, 0, 0, 1, 0,
        CLATTN_MASK_NONE, 0,  0, 0.0f, 0.0f, 0.0f, 0};
    problem p;
    arrays a;
    random_problem(&sp, 5, &p, &a);
    p.desc.rope.style = CLATTN_ROPE_HALF;
    p.desc.rope.rotary_dim = 10; /* head dim 8 */
    clattn_mha *layer = NULL;
    clattn_status s = clattn_mha_create(g_ctx, &p.desc, &p.w, &layer);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && !layer,
          "mha: rotary_dim above the head dim: got %s",
          clattn_status_string(s));
    clattn_mha_destroy(layer);
    layer = NULL;
    p.desc.struct_size = offsetof(clattn_mha_desc, rope);
    s = clattn_mha_create(g_ctx, &p.desc, &p.w, &layer);
    CHECK(s == CLATTN_SUCCESS, "mha: the layout before rope: got %s (%s)",
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    clattn_mha_destroy(layer);
    arrays_free(&a);
}

/* Fully masked rows: zeros in the weights, and an attention output of
   zeros (so out is the output projection's bias), never NaN. */
static void check_full_rows(void)
{
    spec sp = {"fully masked rows", 16, 4, 0, 0, 2, 5, 9, 1, 1, 0, 0, 3, 1,
               CLATTN_MASK_BOOL,    0,  0, 0, 0, 0, 1};
    problem p;
    arrays a;
    random_problem(&sp, 77, &p, &a);
    clattn_mha *layer = NULL;
    clattn_status st = clattn_mha_create(g_ctx, &p.desc, &p.w, &layer);
    CHECK(st == CLATTN_SUCCESS, "create: %s", clattn_status_string(st));
    sizes s = sizes_of(&p);
    float *out = malloc(s.out * 4), *w = malloc(s.heads * 4);
    p.call.need_weights = CLATTN_NEED_WEIGHTS_PER_HEAD;
    st = clattn_mha_forward_host(layer, &p.call, p.query, p.key, p.value, p.kpm,
                                 p.attn_mask, out, w);
    CHECK(st == CLATTN_SUCCESS, "full rows: %s", clattn_status_string(st));
    size_t E = sp.E, plane = sp.Sq * sp.Skv;
    for (size_t i = 0; st == CLATTN_SUCCESS && i < sp.Sq; ++i) {
        /* batch 1: every key padded; batch 0 row 1: attn_mask all set */
        const float *o = out + (1 * sp.Sq + i) * E;
        for (size_t f = 0; f < E; ++f)
            CHECK(o[f] == p.w.out_proj_bias[f],
                  "padded batch: out[%zu][%zu] = %g, not the bias", i, f,
                  (double)o[f]);
        for (size_t h = 0; h < sp.H; ++h)
            for (size_t j = 0; j < sp.Skv; ++j) {
                CHECK(w[(1 * sp.H + h) * plane + i * sp.Skv + j] == 0.0f,
                      "padded batch: weight not zero");
                if (i == 1)
                    CHECK(w[(0 * sp.H + h) * plane + sp.Skv + j] == 0.0f,
                          "masked row: weight not zero");
            }
    }
    free(out), free(w);
    clattn_mha_destroy(layer);
    arrays_free(&a);
}

/* ------------------------------------------------------------------------ */
/* Dropout: Philox positions as SDPA's, a fresh draw per call                */
/* ------------------------------------------------------------------------ */

static void check_dropout(void)
{
    spec sp = {"dropout",        16, 4, 0, 0, 2,     13, 13, 1, 1, 0, 0, 1, 0,
               CLATTN_MASK_NONE, 0,  0, 0, 0, 0.25f, 0};
    problem p;
    arrays a;
    random_problem(&sp, 4242, &p, &a);
    sizes s = sizes_of(&p);
    clattn_mha *layer = NULL, *again = NULL;
    clattn_status st = clattn_mha_create(g_ctx, &p.desc, &p.w, &layer);
    CHECK(st == CLATTN_SUCCESS, "create: %s", clattn_status_string(st));
    double *ref_out = malloc(s.out * 8), *ref_w = malloc(s.heads * 8);
    float *out = malloc(s.out * 4), *w = malloc(s.heads * 4),
          *first = malloc(s.out * 4);
    /* Calls 0..5: the offset is the call's number. */
    const clattn_need_weights needs[6] = {
        CLATTN_NEED_WEIGHTS_PER_HEAD, CLATTN_NEED_WEIGHTS_NONE,
        CLATTN_NEED_WEIGHTS_AVERAGE,  CLATTN_NEED_WEIGHTS_NONE,
        CLATTN_NEED_WEIGHTS_NONE,     CLATTN_NEED_WEIGHTS_PER_HEAD};
    const clattn_sdpa_path paths[6] = {
        CLATTN_SDPA_PATH_UNFUSED, CLATTN_SDPA_PATH_FUSED,
        CLATTN_SDPA_PATH_AUTO,    CLATTN_SDPA_PATH_UNFUSED,
        CLATTN_SDPA_PATH_AUTO,    CLATTN_SDPA_PATH_AUTO};
    for (uint64_t call = 0; call < 6 && st == CLATTN_SUCCESS; ++call) {
        p.call.need_weights = needs[call];
        p.call.path = paths[call];
        ref_mha(&p.desc, &p.w, &p.call, p.query, p.key, p.value, NULL, NULL,
                call, ref_out, ref_w);
        clattn_status cs = clattn_mha_forward_host(
            layer, &p.call, p.query, p.key, p.value, NULL, NULL, out, w);
        CHECK(cs == CLATTN_SUCCESS, "dropout call %d: %s", (int)call,
              clattn_status_string(cs));
        CHECK(close_enough("dropout out", out, ref_out, s.out, REL_TOL),
              "dropout call %d (path %s): output differs from the reference",
              (int)call, clattn_sdpa_path_name(paths[call]));
        size_t nw = weights_count(&p, needs[call]);
        if (nw)
            CHECK(close_enough("dropout weights", w, ref_w, nw, REL_TOL),
                  "dropout call %d: weights differ from the reference",
                  (int)call);
        if (call == 0)
            memcpy(first, out, s.out * 4);
        else if (call == 1)
            CHECK(memcmp(first, out, s.out * 4) != 0,
                  "dropout: the second call drew the same mask");
    }
    /* A new layer with the same seed repeats the first call. */
    st = clattn_mha_create(g_ctx, &p.desc, &p.w, &again);
    p.call.need_weights = CLATTN_NEED_WEIGHTS_PER_HEAD;
    p.call.path = CLATTN_SDPA_PATH_UNFUSED;
    if (st == CLATTN_SUCCESS)
        st = clattn_mha_forward_host(again, &p.call, p.query, p.key, p.value,
                                     NULL, NULL, out, w);
    CHECK(st == CLATTN_SUCCESS && memcmp(first, out, s.out * 4) == 0,
          "dropout: a new layer with the same seed does not repeat call 0");
    clattn_mha_destroy(layer);
    clattn_mha_destroy(again);
    free(ref_out), free(ref_w), free(out), free(w), free(first);
    arrays_free(&a);
}

/* Head-averaged weights without per-head weights: where SDPA's fused-cpu
   path averages them in its kernel (AUTO on a CPU-class device, no
   unfused/fused-gpu or recompute pin, batch * row blocks of 32 filling
   the compute units), the call holds a head-mean score scratch of
   B*Sq*Skv floats beside the host staging of the weights; elsewhere the
   per-head weights (B*H*Sq*Skv floats) exist. Seen in the library's peak
   and its growth over the same call without weights. */
/* A random problem of sp and its layer (NULL, reported, when creation
   fails). */
static clattn_mha *layer_for(const spec *sp, uint64_t seed, problem *p,
                             arrays *a, sizes *s)
{
    random_problem(sp, seed, p, a);
    *s = sizes_of(p);
    clattn_mha *layer = NULL;
    clattn_status st = clattn_mha_create(g_ctx, &p->desc, &p->w, &layer);
    CHECK(st == CLATTN_SUCCESS, "%s: create: %s", sp->name,
          clattn_status_string(st));
    return layer;
}

static size_t peak_of_call(clattn_mha *layer, problem *p,
                           clattn_need_weights need, float *out, float *w)
{
    clattn_memory_stats st;
    clattn_memory_stats_reset_peak(g_ctx);
    p->call.need_weights = need;
    clattn_status s =
        clattn_mha_forward_host(layer, &p->call, p->query, p->key, p->value,
                                p->kpm, p->attn_mask, out, w);
    CHECK(s == CLATTN_SUCCESS, "weights memory call: %s",
          clattn_status_string(s));
    clattn_memory_stats_get(g_ctx, &st);
    return st.peak_bytes;
}

static void check_weights_memory(void)
{
    spec sp = {"weights memory", 64, 8, 0, 0, 4, 64, 64, 1, 1, 0, 0, 1, 0,
               CLATTN_MASK_NONE, 0,  0, 0, 0, 0, 0};
    problem p;
    arrays a;
    sizes s;
    clattn_mha *layer = layer_for(&sp, 12, &p, &a, &s);
    if (!layer)
        return;
    float *out = malloc(s.out * 4), *w = malloc(s.avg * 4);
    const size_t plain =
        peak_of_call(layer, &p, CLATTN_NEED_WEIGHTS_NONE, out, NULL);
    const size_t with =
        peak_of_call(layer, &p, CLATTN_NEED_WEIGHTS_AVERAGE, out, w);
    const char *path = getenv("CLATTN_SDPA_PATH");
    const char *plan = getenv("CLATTN_SDPA_PROBS_PLAN");
    const int in_kernel =
        clattn_sdpa_fused_variant(g_ctx) == CLATTN_SDPA_PATH_FUSED_CPU &&
        !(path && (!strcmp(path, "unfused") || !strcmp(path, "fused-gpu"))) &&
        !(plan && !strcmp(plan, "recompute")) &&
        p.call.batch * ((p.call.seq_q + 31) / 32) >= g_info.compute_units;
    const size_t grew = with > plain ? with - plain : 0;
    /* (per-head: the unfused path's own score scratch, which the call
       without weights holds, may be about as large, so the peak itself
       is what must hold the per-head weights) */
    CHECK(in_kernel ? grew < s.heads * 4 : with >= s.heads * 4,
          "head-averaged weights: peak %zu bytes, %zu more than without "
          "weights; per-head weights are %zu (%s expected)",
          with, grew, s.heads * 4,
          in_kernel ? "averaged in SDPA's kernel" : "per-head");
    printf("head-averaged weights %s: peak +%zu bytes (per-head weights %zu)\n",
           in_kernel ? "in SDPA's kernel" : "through per-head weights", grew,
           s.heads * 4);
    double *ref_out = malloc(s.out * 8), *ref_w = malloc(s.avg * 8);
    ref_mha(&p.desc, &p.w, &p.call, p.query, p.key, p.value, p.kpm, p.attn_mask,
            0, ref_out, ref_w);
    CHECK(close_enough("weights memory out", out, ref_out, s.out, REL_TOL) &&
              close_enough("weights memory weights", w, ref_w, s.avg, REL_TOL),
          "weights memory: wrong result");
    clattn_mha_destroy(layer);
    free(out), free(w), free(ref_out), free(ref_w);
    arrays_free(&a);
}

/* ------------------------------------------------------------------------ */
/* Timing                                                                    */
/* ------------------------------------------------------------------------ */

static void check_timing(void)
{
    spec sp = {"timing",         16, 4, 0, 0, 2, 13, 13, 1, 0, 1, 0, 1, 1,
               CLATTN_MASK_BOOL, 0,  0, 0, 0, 0, 0};
    problem p;
    arrays a;
    sizes s;
    clattn_mha *layer = layer_for(&sp, 9, &p, &a, &s);
    clattn_status st = layer ? CLATTN_SUCCESS : CLATTN_ERROR_INVALID_ARGUMENT;
    double *ref_out = malloc(s.out * 8), *ref_w = malloc(s.avg * 8);
    float *out = malloc(s.out * 4), *w = malloc(s.avg * 4);
    clattn_layer_timing t = {-1, -1, -1};
    p.call.need_weights = CLATTN_NEED_WEIGHTS_AVERAGE;
    p.call.timing = &t;
    if (st == CLATTN_SUCCESS)
        st = clattn_mha_forward_host(layer, &p.call, p.query, p.key, p.value,
                                     p.kpm, p.attn_mask, out, w);
    CHECK(st == CLATTN_SUCCESS, "timing call: %s", clattn_status_string(st));
    CHECK(t.projection_ms > 0 && t.attention_ms > 0 && t.other_ms > 0,
          "timing: projection %g attention %g other %g ms (all stages ran)",
          t.projection_ms, t.attention_ms, t.other_ms);
    ref_mha(&p.desc, &p.w, &p.call, p.query, p.key, p.value, p.kpm, p.attn_mask,
            0, ref_out, ref_w);
    CHECK(close_enough("timed out", out, ref_out, s.out, REL_TOL) &&
              close_enough("timed weights", w, ref_w, s.avg, REL_TOL),
          "timing: wrong result");
    printf("timing (pre-LN, masks, E=16 H=4 B=2 S=13): projection %.3f, "
           "attention %.3f, other %.3f ms\n",
           t.projection_ms, t.attention_ms, t.other_ms);
    clattn_mha_destroy(layer);
    free(ref_out), free(ref_w), free(out), free(w);
    arrays_free(&a);
}

int main(void)
{
    g_ctx = test_context();
    clattn_context_info(g_ctx, &g_info);
    int small = test_small();
    static const char *const goldens[] = {
        "mha_self_bf.bin",       "mha_self_sf.bin",
        "mha_self_nobias.bin",   "mha_cross_kvdims_kpm.bin",
        "mha_cross_same_kv.bin", "mha_cross_distinct.bin",
        "mha_kpm.bin",           "mha_bool2d.bin",
        "mha_bool3d.bin",        "mha_add2d.bin",
        "mha_add3d_kpm.bin",     "mha_bool2d_kpm_cross.bin",
        "mha_causal.bin",        "mha_causal_kpm.bin",
        "mha_pre_ln_self.bin",   "mha_pre_ln_cross.bin",
        "mha_long_seq.bin",      "mha_seed_single_head.bin"};
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; ++i)
        run_golden(goldens[i], i, small);

    /* name, E, H, kdim, vdim, B, Sq, Skv, bias, bf, pre_ln, no_out,
       inputs, kpm, attn, per_head, causal, scale, eps, dropout, full */
    const spec big = {
        "big odd shape",      48, 6, 40, 24, 3, 37, 53, 1, 0, 0, 0, 3, 1,
        CLATTN_MASK_ADDITIVE, 1,  1, 0,  0,  0, 0};
    const spec small_big = {
        "odd shape",          24, 3, 20, 12, 2, 7, 11, 1, 0, 0, 0, 3, 1,
        CLATTN_MASK_ADDITIVE, 1,  1, 0,  0,  0, 0};
    const spec ln_qk = {"pre-LN, query is key, scale and eps",
                        24,
                        2,
                        0,
                        0,
                        2,
                        9,
                        9,
                        1,
                        1,
                        1,
                        0,
                        4,
                        0,
                        CLATTN_MASK_BOOL,
                        0,
                        1,
                        0.3f,
                        1e-3f,
                        0,
                        0};
    const spec full = {"fully masked rows (reference)",
                       16,
                       4,
                       0,
                       0,
                       2,
                       5,
                       9,
                       1,
                       0,
                       0,
                       0,
                       3,
                       1,
                       CLATTN_MASK_BOOL,
                       0,
                       0,
                       0,
                       0,
                       0,
                       1};
    run_reference_case(small ? &small_big : &big, small);
    run_reference_case(&ln_qk, small);
    run_reference_case(&full, small);
    /* Rotary embeddings on each head's q and k: self-attention (NeoX
       form, causal, batch-first) and cross-attention (GPT-J form on 16
       of 24 features, key padding). */
    const spec rope_self = {"rope neox self-attention (reference)",
                            64,
                            4,
                            0,
                            0,
                            2,
                            13,
                            13,
                            1,
                            1,
                            0,
                            0,
                            1,
                            0,
                            CLATTN_MASK_NONE,
                            0,
                            1,
                            0.0f,
                            0.0f,
                            0.0f,
                            0};
    const spec rope_cross = {"rope gptj cross-attention (reference)",
                             48,
                             2,
                             0,
                             0,
                             2,
                             7,
                             11,
                             1,
                             0,
                             0,
                             0,
                             3,
                             1,
                             CLATTN_MASK_NONE,
                             0,
                             0,
                             0.0f,
                             0.0f,
                             0.0f,
                             0};
    g_rope = (clattn_rope){CLATTN_ROPE_HALF, 0, 0.0f};
    run_reference_case(&rope_self, small);
    g_rope = (clattn_rope){CLATTN_ROPE_INTERLEAVED, 16, 0.0f};
    run_reference_case(&rope_cross, small);
    g_rope = (clattn_rope){CLATTN_ROPE_NONE, 0, 0.0f};
    check_rope_refused();
    check_full_rows();
    check_dropout();
    check_timing();
    check_weights_memory();
    printf("largest error / magnitude against torch and the reference: "
           "%.3g (bound %.0e)\n",
           g_worst, REL_TOL);
    clattn_context_destroy(g_ctx);
    return test_finish("test_layer_mha");
}
