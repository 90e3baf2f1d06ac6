/* libFuzzer harness over two layers' create and host forward calls:
   clattn_mha_create / clattn_mha_forward_host (torch.nn.MultiheadAttention)
   and clattn_talking_heads_create / clattn_talking_heads_forward_host (timm
   TalkingHeadAttn). Each input decodes one layer description (every field,
   invalid values included), which weights are given (the documented set,
   then up to two toggled: a needed one dropped or an unexpected one given),
   NULL arguments, and one call (shapes, masks, need_weights, path, aliasing
   of the host arrays), made once or twice on the created layer.

   The oracle, for every API call:
   - the status is the documented one. The predictor below is written from
     docs/layers/mha.md section 8 and docs/layers/talking_heads.md section 6
     (and the header), not from src/. Those tables list the conditions but
     not the order in which they are checked, so when an input breaks
     several rules any of their statuses is accepted; an input breaking
     exactly one rule must get exactly its status, and a valid one
     CLATTN_SUCCESS;
   - a failure with a usable context leaves a non-empty last_error;
   - on failure: out / attn_weights / attn (filled with a canary, with
     GUARD canary floats each side) are untouched, the inputs unchanged,
     and a failed create returns *out = NULL;
   - on success: the guards are intact, every output element was written
     and is finite, the inputs unchanged, timing (when asked for) finite
     and >= 0; and when the scale is moderate (|scale| <= 4) and
     dropout_p <= 0.95, out and the weights equal the double references
     (reference/reference_mha.c, reference/reference_talking_heads.c; dropout
     included: they draw the same Philox stream, with the offset counting
     the layer's earlier successful calls with dropout_p > 0) within the
     suites' tolerances: mha max|got - want| <= 2e-5 * max|want| (+1e-6)
     per tensor (docs/layers/mha.md 11), talking heads
     |got - want| <= 1e-5 + 1e-4 |want| per element (talking_heads.md 7).
   A violation prints the decoded input and aborts (libFuzzer: a crash).

   Shapes stay tiny (E <= 24, seq <= 9, batch <= 3, heads <= 5), so an
   execution is a few small kernels. One context for the process, created
   in LLVMFuzzerInitialize (exit 77 without an OpenCL device); CLBlast's
   first GEMM compiles once per process. $FUZZ_LAYERS_VERBOSE=1 prints
   every call's status.

   INPUT LAYOUT. Bytes are read in order; reading past the end gives 0.
     mode     bit0: 0 mha, 1 talking heads; bit1: TOGGLES follows;
              bit2: NULLS follows; bit3: ARRAYS follows; bit4: call the
              forward twice; bit5: ask for timing; bit6: HUGE follows the
              layer's fields
     [TOGGLES] two nibbles, each the index of a weight whose presence is
              flipped (mha: 0 in_proj_weight, 1 q_proj, 2 k_proj, 3 v_proj,
              4 in_proj_bias, 5 out_proj_weight, 6 out_proj_bias,
              7 norm_weight, 8 norm_bias; talking heads: 0 qkv_weight,
              1 qkv_bias, 2 proj_l_weight, 3 proj_l_bias, 4 proj_w_weight,
              5 proj_w_bias, 6 proj_weight, 7 proj_bias; other: none)
     [NULLS]  bit0 ctx, bit1 desc, bit2 weights, bit3 out (create) NULL;
              bit4 layer, bit5 call (forward) NULL
     [ARRAYS] host arrays passed as NULL: bit0 query/x, bit1 key, bit2
              value, bit3 key_padding_mask, bit4 attn_mask, bit5 out,
              bit6 attn_weights
     mha:     E (% 25), H (% 6), kdim (% 13), vdim (% 13),
              flags (bit0 bias, bit1 batch_first, bit2 pre_layernorm,
              bit3 no_out_proj, bit4 separate q/k/v weights when kdim ==
              vdim == E, bit5 "true" is -1 instead of 1),
              SCALE, DROPOUT, EPS, seed, data,
              batch (% 4), seq_q (% 10), seq_kv (% 10),
              cflags (bit0 key_padding_mask, bit1 attn_mask_per_head,
              bit2 is_causal, bit3 self-attention: query == key == value
              pointer (when kdim == vdim == E; seq_kv := seq_q), bit4
              key == value pointer (when kdim == vdim)),
              ENUM(3) attn_mask_type, ENUM(3) need_weights, ENUM(5) path
     talking: dim (% 25), H (% 6), flags (bit0 qkv_bias, bit5 as above),
              DROPOUT, seed, data, batch (% 4), seq (% 10),
              cflags (bit0 attn wanted, bits1-2 aliasing: 1 out == x,
              2 attn == out, 3 attn == x), ENUM(5) path
   HUGE    (mha: 3 bytes for batch, seq_q, seq_kv; talking: 2 for batch,
           seq) each x % 16 indexes HUGE_DIMS below (index 0 keeps the
           decoded value; if every index is 0 batch becomes 2^31). The host
           arrays keep the sizes of the decoded (small) shape, so the call
           must be refused before it reads them: the predictor expects
           SIZE_OVERFLOW where a documented product overflows size_t, and
           UNSUPPORTED where a dimension is past the kernels' limits or,
           since every HUGE value is at least 2^23 + 1, where nothing
           overflows (a staging or scratch buffer over max_alloc_bytes, or a
           projection GEMM past CLBlast's int: docs/layers/mha.md section 8,
           talking_heads.md section 6).
   SCALE   0: 0; < 0xE0: (x % 33 - 16) / 8; 0xE0..0xEF: NaN, +inf, -inf,
           -0, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45, 1e10, -1e-10, -NaN, 4, -4,
           0, 1, 16; else 0.5
   DROPOUT < 0x80: 0; < 0xE0: 0.1, 0.25, 0.5, 0.75, 0.9, 1e-10, 2^-25,
           3*2^-25, 0.99999994, 0.95 ((x - 0x80) % 10); 0xE0..0xEF: NaN,
           +inf, -inf, -0, 1, -1e-3, 1.0000001, -NaN, 2^-24, 1.5, then 0.5
   EPS     x % 8: 0, 1e-5, 1e-3, 0.5, -1e-5, NaN, +inf, -0
   ENUM(n) < 0xF0: x % n; 0xF0: n; 0xF1: 0xFFFFFFFF; 0xF2: 0x80000000;
           0xF3: 0x7FFFFFFF; else x
   Seeds: tests/fuzz/corpus_layers (tests/fuzz/make_corpus_layers.py). */
#include "reference_mha.h"
#include "reference_talking_heads.h"

#include "fuzz_common.h"

#include <clattn/clattn.h>

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 64           /* canary floats each side of a host output */
#define WEIGHT_CAP 1728    /* floats of a weight array: 3 * 24 * 24 */
#define CANARY 0x7FC0DEADu /* a NaN no computation produces */

static clattn_context *g_ctx;
static unsigned long g_huge;
static unsigned long g_calls, g_ok, g_compared, g_multi;
static char g_input_text[1536];
static int g_verbose; /* $FUZZ_LAYERS_VERBOSE: print every call's status */

static void print_stats(void)
{
    fprintf(stderr,
            "fuzz_layers: %lu API calls, %lu succeeded, %lu compared with "
            "the reference, %lu failed calls with several applicable "
            "statuses, %lu huge-shape calls\n",
            g_calls, g_ok, g_compared, g_multi, g_huge);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    clattn_status s = clattn_context_create(NULL, &g_ctx);
    if (s != CLATTN_SUCCESS) {
        fprintf(stderr, "fuzz_layers: no context: %s: %s\n",
                clattn_status_string(s), clattn_context_last_error(g_ctx));
        clattn_context_destroy(g_ctx);
        exit(s == CLATTN_ERROR_NO_DEVICE ? 77 : 1);
    }
    const char *verbose = getenv("FUZZ_LAYERS_VERBOSE");
    g_verbose = verbose && *verbose && strcmp(verbose, "0") != 0;
    atexit(print_stats);
    return 0;
}

#define fail(...) fuzz_fail("fuzz_layers", g_input_text, __VA_ARGS__)

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    size_t len = strlen(g_input_text);
    if (len + 1 >= sizeof g_input_text)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_input_text + len, sizeof g_input_text - len, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* Decoding                                                                */
/* ---------------------------------------------------------------------- */

static float dec_scale(reader *r)
{
    uint8_t x = rd8(r);
    if (x < 0xE0)
        return dec_scale_plain(x);
    if (x >= 0xF0)
        return 0.5f;
    const float t[16] = {
        NAN,   INFINITY, -INFINITY, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f,
        1e10f, -1e-10f,  -NAN,      4.0f,  -4.0f,   0.0f,     1.0f,    16.0f};
    return t[x & 15];
}

static float dec_dropout(reader *r)
{
    uint8_t x = rd8(r);
    if (x < 0x80)
        return 0.0f;
    if (x < 0xE0) {
        const float t[10] = {0.1f,        0.25f,  0.5f,     0.75f,
                             0.9f,        1e-10f, 0x1p-25f, 3 * 0x1p-25f,
                             0.99999994f, 0.95f};
        return t[(x - 0x80) % 10];
    }
    if (x >= 0xF0)
        return 0.5f;
    const float t[16] = {NAN,        INFINITY, -INFINITY, -0.0f, 1.0f, -1e-3f,
                         1.0000001f, -NAN,     0x1p-24f,  1.5f,  0.5f, 0.5f,
                         0.5f,       0.5f,     0.5f,      0.5f};
    return t[x & 15];
}

static float dec_eps(reader *r)
{
    const float t[8] = {0.0f, 1e-5f, 1e-3f, 0.5f, -1e-5f, NAN, INFINITY, -0.0f};
    return t[rd8(r) % 8];
}

/* ---------------------------------------------------------------------- */
/* Data, guarded outputs                                                   */
/* ---------------------------------------------------------------------- */

static uint32_t g_rng;

static uint32_t rng_next(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

static float rng_unit(void) /* [-1, 1) */
{
    return (float)(rng_next() >> 8) / 8388608.0f - 1.0f;
}

static float *fill_floats(size_t n, float amp)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; ++i)
        p[i] = amp * rng_unit();
    return p;
}

static void fill_canary(float *p, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        p[i] = f32_bits(CANARY);
}

/* A host output: GUARD canaries, n canaries (the body), GUARD canaries. */
static float *guarded(size_t n)
{
    float *p = malloc((n + 2 * GUARD) * sizeof *p);
    fill_canary(p, n + 2 * GUARD);
    return p + GUARD;
}

static int is_canary(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u == CANARY;
}

static void guarded_free(float *body)
{
    if (body)
        free(body - GUARD);
}

/* Failure: all canaries. Success: guards intact, body written, finite. */
static void check_output(const char *api, const char *name, const float *body,
                         size_t n, int success)
{
    if (!body)
        return;
    for (size_t i = 0; i < GUARD; ++i)
        if (!is_canary(body[-1 - (ptrdiff_t)i]) || !is_canary(body[n + i]))
            fail("%s: %s: a guard float of %s was written", api,
                 success ? "success" : "failure", name);
    for (size_t i = 0; i < n; ++i) {
        if (!success && !is_canary(body[i]))
            fail("%s: failed, but %s[%zu] was written (%g)", api, name, i,
                 (double)body[i]);
        if (success && (is_canary(body[i]) || !isfinite(body[i])))
            fail("%s: success, but %s[%zu] is %s (%g)", api, name, i,
                 is_canary(body[i]) ? "unwritten" : "not finite",
                 (double)body[i]);
    }
}

/* Expected statuses of one call: a set (see the top of the file). */
typedef struct expect {
    unsigned set; /* bit (-status) for each applicable error */
} expect;

static void want(expect *e, int cond, clattn_status s)
{
    if (cond)
        e->set |= 1u << (unsigned)(-(int)s);
}

static const char *sname(clattn_status s)
{
    return clattn_status_string(s);
}

static void check_status(const char *api, clattn_status got, const expect *e,
                         clattn_context *ctx_for_error)
{
    ++g_calls;
    if (g_verbose)
        fprintf(stderr, "fuzz_layers: %s -> %s (expected set 0x%x)\n", api,
                sname(got), e->set);
    if (e->set == 0) {
        if (got != CLATTN_SUCCESS)
            fail("%s returned %s (%s), the documented result is "
                 "CLATTN_SUCCESS",
                 api, sname(got),
                 ctx_for_error ? clattn_context_last_error(ctx_for_error) : "");
        ++g_ok;
        return;
    }
    if (got >= 0 || got < -31 || !(e->set & (1u << (unsigned)(-(int)got)))) {
        char list[256] = "";
        for (int i = 1; i < 32; ++i)
            if (e->set & (1u << i)) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, " %s",
                         sname((clattn_status)-i));
            }
        fail("%s returned %s (%s), the documented result is one of:%s", api,
             sname(got),
             ctx_for_error && got != CLATTN_SUCCESS
                 ? clattn_context_last_error(ctx_for_error)
                 : "",
             list);
    }
    if (e->set & (e->set - 1))
        ++g_multi;
    if (ctx_for_error && !*clattn_context_last_error(ctx_for_error))
        fail("%s returned %s with an empty last_error", api, sname(got));
}

static void check_timing(const char *api, const clattn_layer_timing *t)
{
    if (!(t->projection_ms >= 0 && isfinite(t->projection_ms) &&
          t->attention_ms >= 0 && isfinite(t->attention_ms) &&
          t->other_ms >= 0 && isfinite(t->other_ms)))
        fail("%s: timing %g %g %g is not finite and >= 0", api,
             t->projection_ms, t->attention_ms, t->other_ms);
}

/* mha's bound: per tensor, relative to its largest magnitude. */
static void compare_tensor(const char *api, const char *name, const float *got,
                           const double *ref, size_t n)
{
    double mag = 0.0;
    for (size_t i = 0; i < n; ++i)
        mag = fmax(mag, fabs(ref[i]));
    double tol = 2e-5 * mag + 1e-6;
    for (size_t i = 0; i < n; ++i)
        if (!(fabs((double)got[i] - ref[i]) <= tol))
            fail("%s: %s[%zu] = %.9g, reference %.9g (bound %.3g)", api, name,
                 i, (double)got[i], ref[i], tol);
}

/* talking heads' bound: atol 1e-5 + rtol 1e-4 per element. */
static void compare_elements(const char *api, const char *name,
                             const float *got, const double *ref, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (!(fabs((double)got[i] - ref[i]) <= 1e-5 + 1e-4 * fabs(ref[i])))
            fail("%s: %s[%zu] = %.9g, reference %.9g", api, name, i,
                 (double)got[i], ref[i]);
}

static void check_unchanged(const char *api, const char *name, const void *now,
                            const void *copy, size_t bytes)
{
    if (now && copy && memcmp(now, copy, bytes) != 0)
        fail("%s: input %s changed", api, name);
}

static void *dup_bytes(const void *p, size_t bytes)
{
    if (!p)
        return NULL;
    void *c = malloc(bytes ? bytes : 1);
    memcpy(c, p, bytes);
    return c;
}

/* Logical extents far past any real array: near and past 2^31 and 2^32,
   products that overflow size_t, and ones that wrap to a small number
   (2^61 x 8 floats x 4 bytes = 2^66 = 0). Index 0: keep the decoded value. */
static const size_t HUGE_DIMS[16] = {0,
                                     ((size_t)1 << 23) + 1,
                                     ((size_t)1 << 31) - 1,
                                     (size_t)1 << 31,
                                     ((size_t)1 << 31) + 1,
                                     ((size_t)1 << 32) - 1,
                                     (size_t)1 << 32,
                                     ((size_t)1 << 32) + 1,
                                     (size_t)1 << 40,
                                     (size_t)1 << 61,
                                     (size_t)1 << 62,
                                     ((size_t)1 << 62) + ((size_t)1 << 61),
                                     SIZE_MAX / 2 + 1,
                                     SIZE_MAX / 3,
                                     SIZE_MAX - 1,
                                     SIZE_MAX};

/* Decodes n HUGE indices into dims (0 keeps a value); at least one dim is
   made huge. */
static void dec_huge(reader *r, size_t *const *dims, int n)
{
    int any = 0;
    for (int i = 0; i < n; ++i) {
        size_t v = HUGE_DIMS[rd8(r) % 16];
        if (v) {
            *dims[i] = v;
            any = 1;
        }
    }
    if (!any)
        *dims[0] = (size_t)1 << 31;
}

/* a * b, saturating at SIZE_MAX, with *overflow set on overflow. */
static size_t mulx(size_t a, size_t b, int *overflow)
{
    size_t p;
    if (__builtin_mul_overflow(a, b, &p)) {
        *overflow = 1;
        return SIZE_MAX;
    }
    return p;
}

static size_t addx(size_t a, size_t b, int *overflow)
{
    size_t p;
    if (__builtin_add_overflow(a, b, &p)) {
        *overflow = 1;
        return SIZE_MAX;
    }
    return p;
}

/* The decoded nullness of create/forward arguments. */
typedef struct opts {
    uint8_t mode, toggles, nulls, arrays;
} opts;

static int toggled(const opts *o, int index)
{
    if (!(o->mode & 0x02))
        return 0;
    return ((o->toggles & 15) == index) ^ ((o->toggles >> 4) == index);
}

/* mode bit4: the forward is called twice on the layer. */
static int forward_calls(const opts *o)
{
    return (o->mode & 0x10) ? 2 : 1;
}

/* The create call's NULL arguments (NULLS bits 0-3) and the shape rule
   both layers share: dim and heads non-zero, heads dividing dim. */
typedef struct create_args {
    clattn_context *ctx;
    int null_desc, null_w, null_out;
} create_args;

static create_args create_args_want(const opts *o, expect *e, size_t dim,
                                    size_t heads)
{
    const create_args a = {(o->nulls & 1) ? NULL : g_ctx, o->nulls & 2,
                           o->nulls & 4, o->nulls & 8};
    want(e, !a.ctx || a.null_desc || a.null_w || a.null_out,
         CLATTN_ERROR_INVALID_ARGUMENT);
    if (!a.null_desc)
        want(e, dim == 0 || heads == 0 || (heads && dim % heads),
             CLATTN_ERROR_INVALID_SHAPE);
    return a;
}

/* A double reference of n elements (at least one, for malloc). */
static double *ref_alloc(size_t n)
{
    return malloc((n ? n : 1) * sizeof(double));
}

/* The references of a compared call are done with. */
static void refs_done(double *out, double *weights)
{
    free(out);
    free(weights);
    ++g_compared;
}

/* After a successful forward: the dropout stream moves on (the references
   count the layer's earlier calls with dropout_p > 0), and the outputs go
   back to canaries for the next call. */
static void next_call(float dropout_p, uint64_t *offset, float *out,
                      size_t n_out, float *weights, size_t n_weights)
{
    if (dropout_p > 0.0f)
        ++*offset;
    fill_canary(out, n_out);
    if (weights)
        fill_canary(weights, n_weights);
}

/* ---------------------------------------------------------------------- */
/* Multi-head attention                                                    */
/* ---------------------------------------------------------------------- */

static void run_mha(reader *r, const opts *o, float *const pool[9])
{
    clattn_mha_desc d;
    clattn_mha_desc_init(&d);
    d.embed_dim = rd8(r) % 25;
    d.num_heads = rd8(r) % 6;
    d.kdim = rd8(r) % 13;
    d.vdim = rd8(r) % 13;
    uint8_t flags = rd8(r);
    const int yes = flags & 0x20 ? -1 : 1;
    d.bias = flags & 1 ? yes : 0;
    d.batch_first = flags & 2 ? yes : 0;
    d.pre_layernorm = flags & 4 ? yes : 0;
    d.no_out_proj = flags & 8 ? yes : 0;
    d.scale = dec_scale(r);
    d.dropout_p = dec_dropout(r);
    d.layernorm_eps = dec_eps(r);
    d.dropout_seed = (uint64_t)rd8(r) * 0x9E3779B97F4A7C15ull;
    g_rng = 0x2545F491u ^ ((uint32_t)rd8(r) << 8);

    const size_t E = d.embed_dim, H = d.num_heads;
    const size_t kdim = d.kdim ? d.kdim : E, vdim = d.vdim ? d.vdim : E;
    const int same = kdim == E && vdim == E;
    /* The documented weight set (docs/layers/mha.md section 1), then the
       toggles. */
    int given[9] = {0};
    given[0] = same && !(flags & 0x10);
    given[1] = given[2] = given[3] = !given[0];
    given[4] = d.bias != 0;
    given[5] = !d.no_out_proj;
    given[6] = d.bias && !d.no_out_proj;
    given[7] = given[8] = d.pre_layernorm != 0;
    for (int i = 0; i < 9; ++i)
        given[i] ^= toggled(o, i);
    clattn_mha_weights w;
    memset(&w, 0, sizeof w);
    const float **fields[9] = {
        &w.in_proj_weight, &w.q_proj_weight, &w.k_proj_weight,
        &w.v_proj_weight,  &w.in_proj_bias,  &w.out_proj_weight,
        &w.out_proj_bias,  &w.norm_weight,   &w.norm_bias};
    for (int i = 0; i < 9; ++i)
        *fields[i] = given[i] ? pool[i] : NULL;

    clattn_mha_call c;
    memset(&c, 0, sizeof c);
    c.batch = rd8(r) % 4;
    c.seq_q = rd8(r) % 10;
    c.seq_kv = rd8(r) % 10;
    uint8_t cflags = rd8(r);
    c.has_key_padding_mask = cflags & 1;
    c.attn_mask_per_head = (cflags & 2) ? yes : 0;
    c.is_causal = (cflags & 4) ? yes : 0;
    int self = (cflags & 8) && same;
    int kv_same = (cflags & 16) && kdim == vdim;
    if (self)
        c.seq_kv = c.seq_q;
    c.attn_mask_type = (clattn_mask_type)dec_enum(r, 3);
    c.need_weights = (clattn_need_weights)dec_enum(r, 3);
    c.path = (clattn_sdpa_path)dec_enum(r, 5);
    clattn_layer_timing timing;
    c.timing = (o->mode & 0x20) ? &timing : NULL;
    /* The arrays keep the decoded shape; the call gets the huge one. */
    const size_t B = c.batch, Sq = c.seq_q, Skv = c.seq_kv;
    const int huge = (o->mode & 0x40) != 0;
    if (huge) {
        size_t *const dims[3] = {&c.batch, &c.seq_q, &c.seq_kv};
        dec_huge(r, dims, 3);
    }

    note("mha: E %zu H %zu kdim %zu vdim %zu bias %d batch_first %d pre_ln %d "
         "no_out_proj %d scale %a dropout %a eps %a\n  weights given:",
         E, H, d.kdim, d.vdim, d.bias, d.batch_first, d.pre_layernorm,
         d.no_out_proj, (double)d.scale, (double)d.dropout_p,
         (double)d.layernorm_eps);
    for (int i = 0; i < 9; ++i)
        note(" %d", given[i]);
    note("\n  call: B %zu Sq %zu Skv %zu (arrays of B %zu Sq %zu Skv %zu) kpm "
         "%d attn_mask %u per_head %d causal %d need %u path %u self %d "
         "kv_same %d timing %d\n",
         c.batch, c.seq_q, c.seq_kv, B, Sq, Skv, c.has_key_padding_mask,
         (unsigned)c.attn_mask_type, c.attn_mask_per_head, c.is_causal,
         (unsigned)c.need_weights, (unsigned)c.path, self, kv_same,
         c.timing != NULL);

    /* ---- create ---- */
    expect e = {0};
    const create_args ca = create_args_want(o, &e, E, H);
    if (!ca.null_desc)
        want(&e,
             !isfinite(d.scale) ||
                 !(d.dropout_p >= 0.0f && d.dropout_p < 1.0f) ||
                 !(d.layernorm_eps >= 0.0f) || !isfinite(d.layernorm_eps) ||
                 (d.pre_layernorm && !same),
             CLATTN_ERROR_INVALID_ARGUMENT);
    if (!ca.null_desc && !ca.null_w) {
        int in_ok = same ? (given[0] && !given[1] && !given[2] && !given[3]) ||
                               (!given[0] && given[1] && given[2] && given[3])
                         : !given[0] && given[1] && given[2] && given[3];
        int rest_ok = given[4] == (d.bias != 0) && given[5] == !d.no_out_proj &&
                      given[6] == (d.bias && !d.no_out_proj) &&
                      given[7] == (d.pre_layernorm != 0) &&
                      given[8] == (d.pre_layernorm != 0);
        want(&e, !in_ok || !rest_ok, CLATTN_ERROR_INVALID_ARGUMENT);
    }
    clattn_mha *layer = (clattn_mha *)(uintptr_t)0x1;
    clattn_status s =
        clattn_mha_create(ca.ctx, ca.null_desc ? NULL : &d,
                          ca.null_w ? NULL : &w, ca.null_out ? NULL : &layer);
    check_status("clattn_mha_create", s, &e, ca.ctx);
    if (s != CLATTN_SUCCESS) {
        if (!ca.null_out && layer != NULL)
            fail("clattn_mha_create failed but *out is not NULL");
        return;
    }

    /* ---- forward (host) ---- */
    const size_t nq = B * Sq * E, nk = B * Skv * kdim, nv = B * Skv * vdim;
    const size_t plane = Sq * Skv;
    const size_t nmask = (c.attn_mask_per_head ? B * H : 1) * plane;
    const int mask_valid = (unsigned)c.attn_mask_type <= 2;
    const int need_valid = (unsigned)c.need_weights <= 2;
    const size_t nw = c.need_weights == CLATTN_NEED_WEIGHTS_PER_HEAD
                          ? B * H * plane
                          : B * plane;
    const int weights_used = need_valid && c.need_weights != 0;

    float *query = fill_floats(nq, 1.0f);
    float *key = self ? query : fill_floats(nk, 1.0f);
    float *value = self ? query : kv_same ? key : fill_floats(nv, 1.0f);
    uint8_t *kpm = malloc(B * Skv ? B * Skv : 1);
    for (size_t i = 0; i < B * Skv; ++i)
        kpm[i] = (rng_next() & 3) == 0 ? (uint8_t)(1 + (rng_next() & 0x7F)) : 0;
    void *mask;
    if (c.attn_mask_type == CLATTN_MASK_ADDITIVE) {
        float *m = malloc((nmask ? nmask : 1) * sizeof *m);
        for (size_t i = 0; i < nmask; ++i)
            m[i] = (rng_next() & 7) == 0 ? -INFINITY : 2.0f * rng_unit();
        mask = m;
    } else {
        uint8_t *m = malloc(nmask ? nmask : 1);
        for (size_t i = 0; i < nmask; ++i)
            m[i] =
                (rng_next() & 3) == 0 ? (uint8_t)(1 + (rng_next() & 0x7F)) : 0;
        mask = m;
    }
    size_t mask_bytes =
        nmask * (c.attn_mask_type == CLATTN_MASK_ADDITIVE ? sizeof(float) : 1);
    float *out = guarded(nq);
    float *attn_w = guarded(weights_used ? nw : 0);
    /* copies of the inputs, to check they are not written */
    void *cq = dup_bytes(query, nq * 4), *ck = dup_bytes(key, nk * 4),
         *cv = dup_bytes(value, nv * 4), *ckpm = dup_bytes(kpm, B * Skv),
         *cm = dup_bytes(mask, mask_bytes);

    const int null_layer = o->nulls & 16, null_call = o->nulls & 32;
    const uint8_t a = (o->mode & 0x08) ? o->arrays : 0;
    const float *pq = a & 1 ? NULL : query, *pk = a & 2 ? NULL : key,
                *pv = a & 4 ? NULL : value;
    const uint8_t *pkpm = a & 8 ? NULL : kpm;
    const void *pm = a & 16 ? NULL : mask;
    float *po = a & 32 ? NULL : out, *pw = a & 64 ? NULL : attn_w;

    uint64_t offset = 0;
    for (int k = 0; k < forward_calls(o); ++k) {
        expect f = {0};
        want(&f, null_layer || null_call, CLATTN_ERROR_INVALID_ARGUMENT);
        if (!null_call) {
            want(&f, !mask_valid || !need_valid || (unsigned)c.path > 4,
                 CLATTN_ERROR_INVALID_ARGUMENT);
            want(&f, c.batch == 0 || c.seq_q == 0 || c.seq_kv == 0,
                 CLATTN_ERROR_INVALID_SHAPE);
            if (huge && c.batch && c.seq_q && c.seq_kv) {
                /* docs/layers/mha.md section 8: the sizes that overflow,
                   and SDPA's int32 limits. */
                int ov = 0;
                const size_t rq = mulx(c.batch, c.seq_q, &ov),
                             rkv = mulx(c.batch, c.seq_kv, &ov),
                             pl = mulx(c.seq_q, c.seq_kv, &ov),
                             bh = mulx(c.batch, H, &ov);
                mulx(mulx(rq, E, &ov), 4, &ov);
                mulx(mulx(rkv, kdim, &ov), 4, &ov);
                mulx(mulx(rkv, vdim, &ov), 4, &ov);
                mulx(mulx(bh, pl, &ov), 4, &ov);
                mulx(addx(mulx(rq, E, &ov), mulx(mulx(rkv, 2, &ov), E, &ov),
                          &ov),
                     4, &ov);
                mulx(mulx(pl, c.batch, &ov), 4, &ov);
                if (mask_valid && c.attn_mask_type != CLATTN_MASK_NONE)
                    mulx(mulx(c.attn_mask_per_head ? bh : 1, pl, &ov),
                         c.attn_mask_type == CLATTN_MASK_BOOL ? 1 : 4, &ov);
                const int past = c.batch > INT32_MAX || c.seq_q > INT32_MAX ||
                                 c.seq_kv > INT32_MAX || bh > INT32_MAX;
                want(&f, ov, CLATTN_ERROR_SIZE_OVERFLOW);
                want(&f, past || !ov, CLATTN_ERROR_UNSUPPORTED);
                ++g_huge;
            }
            want(&f,
                 !pq || !pk || !pv || !po ||
                     (c.has_key_padding_mask && !pkpm) ||
                     (c.attn_mask_type != CLATTN_MASK_NONE && !pm) ||
                     (weights_used && !pw),
                 CLATTN_ERROR_INVALID_ARGUMENT);
            want(&f,
                 weights_used && (unsigned)c.path >= CLATTN_SDPA_PATH_FUSED &&
                     (unsigned)c.path <= CLATTN_SDPA_PATH_FUSED_GPU,
                 CLATTN_ERROR_UNSUPPORTED);
        }
        s = clattn_mha_forward_host(null_layer ? NULL : layer,
                                    null_call ? NULL : &c, pq, pk, pv, pkpm, pm,
                                    po, pw);
        const char *api = "clattn_mha_forward_host";
        check_status(api, s, &f, null_layer ? NULL : g_ctx);
        check_output(api, "out", po, nq, s == CLATTN_SUCCESS);
        if (weights_used)
            check_output(api, "attn_weights", pw, nw, s == CLATTN_SUCCESS);
        check_unchanged(api, "query", query, cq, nq * 4);
        check_unchanged(api, "key", key, ck, nk * 4);
        check_unchanged(api, "value", value, cv, nv * 4);
        check_unchanged(api, "key_padding_mask", kpm, ckpm, B * Skv);
        check_unchanged(api, "attn_mask", mask, cm, mask_bytes);
        if (s != CLATTN_SUCCESS)
            continue;
        if (c.timing)
            check_timing(api, &timing);
        if (fabsf(d.scale) <= 4.0f && d.dropout_p <= 0.95f) {
            double *ro = ref_alloc(nq), *rw = ref_alloc(nw);
            ref_mha(&d, &w, &c, query, key, value, kpm, mask, offset, ro,
                    weights_used ? rw : NULL);
            compare_tensor(api, "out", out, ro, nq);
            if (weights_used)
                compare_tensor(api, "attn_weights", attn_w, rw, nw);
            refs_done(ro, rw);
        }
        next_call(d.dropout_p, &offset, out, nq, weights_used ? attn_w : NULL,
                  nw);
    }
    clattn_mha_destroy(layer);
    free(query);
    if (!self)
        free(key);
    if (!self && !kv_same)
        free(value);
    free(kpm);
    free(mask);
    guarded_free(out);
    guarded_free(attn_w);
    free(cq), free(ck), free(cv), free(ckpm), free(cm);
}

/* ---------------------------------------------------------------------- */
/* Talking heads                                                           */
/* ---------------------------------------------------------------------- */

static void run_talking_heads(reader *r, const opts *o, float *const pool[9])
{
    clattn_talking_heads_desc d;
    memset(&d, 0, sizeof d);
    d.dim = rd8(r) % 25;
    d.num_heads = rd8(r) % 6;
    uint8_t flags = rd8(r);
    d.qkv_bias = flags & 1 ? (flags & 0x20 ? -1 : 1) : 0;
    d.dropout_p = dec_dropout(r);
    d.dropout_seed = (uint64_t)rd8(r) * 0x9E3779B97F4A7C15ull;
    g_rng = 0x9E3779B9u ^ ((uint32_t)rd8(r) << 8);
    clattn_talking_heads_call c;
    memset(&c, 0, sizeof c);
    c.batch = rd8(r) % 4;
    c.seq = rd8(r) % 10;
    uint8_t cflags = rd8(r);
    const int want_attn = cflags & 1, alias = (cflags >> 1) & 3;
    c.path = (clattn_sdpa_path)dec_enum(r, 5);
    clattn_layer_timing timing;
    c.timing = (o->mode & 0x20) ? &timing : NULL;
    /* The arrays keep the decoded shape; the call gets the huge one. */
    const size_t B = c.batch, N = c.seq;
    const int huge = (o->mode & 0x40) != 0;
    if (huge) {
        size_t *const dims[2] = {&c.batch, &c.seq};
        dec_huge(r, dims, 2);
    }

    int given[8];
    for (int i = 0; i < 8; ++i)
        given[i] = (i != 1 || d.qkv_bias) ^ toggled(o, i);
    clattn_talking_heads_weights w;
    const float **fields[8] = {
        &w.qkv_weight,    &w.qkv_bias,    &w.proj_l_weight, &w.proj_l_bias,
        &w.proj_w_weight, &w.proj_w_bias, &w.proj_weight,   &w.proj_bias};
    for (int i = 0; i < 8; ++i)
        *fields[i] = given[i] ? pool[i] : NULL;
    const size_t C = d.dim, H = d.num_heads;
    note("talking_heads: dim %zu H %zu qkv_bias %d dropout %a\n  weights "
         "given:",
         C, H, d.qkv_bias, (double)d.dropout_p);
    for (int i = 0; i < 8; ++i)
        note(" %d", given[i]);
    note("\n  call: B %zu N %zu (arrays of B %zu N %zu) attn %d alias %d path "
         "%u timing %d\n",
         c.batch, c.seq, B, N, want_attn, alias, (unsigned)c.path,
         c.timing != NULL);

    expect e = {0};
    const create_args ca = create_args_want(o, &e, C, H);
    if (!ca.null_desc)
        want(&e, !(d.dropout_p >= 0.0f && d.dropout_p < 1.0f),
             CLATTN_ERROR_INVALID_ARGUMENT);
    if (!ca.null_desc && !ca.null_w) {
        int ok = given[1] == (d.qkv_bias != 0);
        for (int i = 0; i < 8; ++i)
            ok &= i == 1 || given[i];
        want(&e, !ok, CLATTN_ERROR_INVALID_ARGUMENT);
    }
    clattn_talking_heads *layer = (clattn_talking_heads *)(uintptr_t)0x1;
    clattn_status s = clattn_talking_heads_create(
        ca.ctx, ca.null_desc ? NULL : &d, ca.null_w ? NULL : &w,
        ca.null_out ? NULL : &layer);
    check_status("clattn_talking_heads_create", s, &e, ca.ctx);
    if (s != CLATTN_SUCCESS) {
        if (!ca.null_out && layer != NULL)
            fail("clattn_talking_heads_create failed but *out is not NULL");
        return;
    }

    const size_t nx = B * N * C, na = B * H * N * N;
    /* Aliased arrays share one guarded block of the larger size. */
    float *x, *out, *attn = NULL, *x_copy;
    size_t nbig = nx > na ? nx : na;
    float *x_own = NULL;
    if (alias == 1 || alias == 3) { /* x is a guarded output block too */
        x = guarded(nbig);
        for (size_t i = 0; i < nx; ++i)
            x[i] = rng_unit();
    } else {
        x = x_own = fill_floats(nx, 1.0f);
    }
    out = alias == 1 ? x : guarded(alias == 2 ? nbig : nx);
    if (want_attn || alias >= 2)
        attn = alias == 2 ? out : alias == 3 ? x : guarded(na);
    const int attn_own = attn && attn != out && attn != x; /* its own block */
    x_copy = dup_bytes(x, nx * 4);

    const int null_layer = o->nulls & 16, null_call = o->nulls & 32;
    const uint8_t a = (o->mode & 0x08) ? o->arrays : 0;
    const float *px = a & 1 ? NULL : x;
    float *po = a & 32 ? NULL : out, *pa = a & 64 ? NULL : attn;

    uint64_t offset = 0;
    for (int k = 0; k < forward_calls(o); ++k) {
        expect f = {0};
        want(&f, null_layer || null_call || !px || !po,
             CLATTN_ERROR_INVALID_ARGUMENT);
        if (!null_call) {
            want(&f, c.batch == 0 || c.seq == 0, CLATTN_ERROR_INVALID_SHAPE);
            if (huge && c.batch && c.seq) {
                /* docs/layers/talking_heads.md section 6. */
                int ov = 0;
                const size_t tokens = mulx(c.batch, c.seq, &ov);
                mulx(mulx(mulx(tokens, C, &ov), 3, &ov), 4, &ov);
                mulx(mulx(mulx(mulx(c.seq, c.seq, &ov), H, &ov), c.batch, &ov),
                     4, &ov);
                const int past =
                    c.seq > UINT32_MAX - 64 || (H && c.batch > UINT32_MAX / H);
                want(&f, ov, CLATTN_ERROR_SIZE_OVERFLOW);
                want(&f, past || !ov, CLATTN_ERROR_UNSUPPORTED);
                ++g_huge;
            }
            want(&f, (unsigned)c.path > 4, CLATTN_ERROR_INVALID_ARGUMENT);
            want(&f,
                 pa && (unsigned)c.path >= CLATTN_SDPA_PATH_FUSED &&
                     (unsigned)c.path <= CLATTN_SDPA_PATH_FUSED_GPU,
                 CLATTN_ERROR_UNSUPPORTED);
        }
        /* out is x, attn is x or out (the same pointers) */
        want(&f,
             (px && po && (const float *)po == px) ||
                 (pa && px && (const float *)pa == px) ||
                 (pa && po && pa == po),
             CLATTN_ERROR_INVALID_ARGUMENT);
        s = clattn_talking_heads_forward_host(
            null_layer ? NULL : layer, null_call ? NULL : &c, px, po, pa);
        const char *api = "clattn_talking_heads_forward_host";
        check_status(api, s, &f, null_layer ? NULL : g_ctx);
        if (s != CLATTN_SUCCESS) {
            /* every guarded block: untouched (x keeps its data) */
            if (alias != 1)
                check_output(api, "out", out, alias == 2 ? nbig : nx, 0);
            if (attn_own)
                check_output(api, "attn", attn, na, 0);
            check_unchanged(api, "x", x, x_copy, nx * 4);
            if (alias == 1 || alias == 3) /* x's block: canaries past x */
                for (ptrdiff_t i = -GUARD; i < (ptrdiff_t)(nbig + GUARD); ++i)
                    if ((i < 0 || i >= (ptrdiff_t)nx) && !is_canary(x[i]))
                        fail("%s: failed, but x's block was written at %td",
                             api, i);
            continue;
        }
        check_output(api, "out", po, nx, 1);
        if (pa)
            check_output(api, "attn", pa, na, 1);
        check_unchanged(api, "x", x, x_copy, nx * 4);
        if (c.timing)
            check_timing(api, &timing);
        if (d.dropout_p <= 0.95f) {
            double *ro = ref_alloc(nx), *ra = ref_alloc(na);
            ref_talking_heads(&d, &w, B, N, x, offset, ro, pa ? ra : NULL);
            compare_elements(api, "out", out, ro, nx);
            if (pa)
                compare_elements(api, "attn", attn, ra, na);
            refs_done(ro, ra);
        }
        next_call(d.dropout_p, &offset, out, nx, pa ? attn : NULL, na);
    }
    clattn_talking_heads_destroy(layer);
    if (x_own)
        free(x_own);
    else
        guarded_free(x);
    if (alias != 1)
        guarded_free(out);
    if (attn_own)
        guarded_free(attn);
    free(x_copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t n)
{
    reader r = {bytes, n, 0};
    opts o;
    o.mode = rd8(&r);
    o.toggles = (o.mode & 0x02) ? rd8(&r) : 0;
    o.nulls = (o.mode & 0x04) ? rd8(&r) : 0;
    o.arrays = (o.mode & 0x08) ? rd8(&r) : 0;
    int len =
        snprintf(g_input_text, sizeof g_input_text, "input (%zu bytes):", n);
    for (size_t i = 0;
         i < n && i < 64 && len > 0 && (size_t)len + 4 < sizeof g_input_text;
         ++i)
        len += snprintf(g_input_text + len, sizeof g_input_text - (size_t)len,
                        " %02x", bytes[i]);
    note("\n  mode 0x%02x toggles 0x%02x nulls 0x%02x arrays 0x%02x\n", o.mode,
         o.toggles, o.nulls, o.arrays);

    /* The weights: fixed-size arrays, enough for any decoded shape; the
       scale keeps the projections' outputs O(1). */
    g_rng = 0xC0FFEEu ^ (uint32_t)n;
    float *pool[9];
    for (int i = 0; i < 9; ++i)
        pool[i] = fill_floats(WEIGHT_CAP, 0.5f);
    if (o.mode & 1)
        run_talking_heads(&r, &o, pool);
    else
        run_mha(&r, &o, pool);
    for (int i = 0; i < 9; ++i)
        free(pool[i]);
    return 0;
}
