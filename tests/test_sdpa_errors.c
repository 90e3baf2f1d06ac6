/* Error handling of clattn_sdpa_host and clattn_sdpa: every bad input is
   rejected with its documented status and a detail text of its own, nothing
   is written to any output (nor to any other buffer) on error, and the
   context stays usable after each rejection.

   Each case is a small descriptor: a name, a function that mutates a valid
   call, and the expected status. One runner per API sets up the valid call,
   applies the mutation, makes the call and checks everything; valid
   variants (defaults, broadcasts, strided views, exact-size buffers) go
   through the same runners and are compared with the double-precision
   reference, so a rejection is known to come from the mutation alone.

   Shapes are tiny (B=2, Hq=2, Hkv=1, Sq=5, Skv=7, D=4, Dv=3): the suite is
   about validation, not arithmetic. */
#include "reference.h"
#include "test_util.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The valid base problem. Distinct sizes for every tensor, GQA (Hkv < Hq)
   and Dv != D, so that a size computed from the wrong dimension shows. */
#define B 2
#define HQ 2
#define HKV 1
#define SQ 5
#define SKV 7
#define D 4
#define DV 3

/* Host-side capacities: the largest valid variant fits (Hq=4 GQA etc.). */
#define CAP 4096
/* Dimensions above this are "huge" (overflow cases): no buffer is sized
   from them. */
#define SMALL_DIM 64

static clattn_context *g_ctx;
static clattn_info g_info;
static cl_context g_foreign_ctx; /* a second cl_context, same device */
static cl_command_queue g_foreign_queue;

static float g_q[CAP], g_k[CAP], g_v[CAP], g_mask_add[CAP];
static uint8_t g_mask_bool[CAP];
static double g_base_out[B * HQ * SQ * DV], g_base_probs[B * HQ * SQ * SKV];

static unsigned g_error_cases, g_valid_cases, g_calls, g_usable_checks;

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC); /* C11; a wall clock is enough here */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void base_desc(clattn_sdpa_desc *d)
{
    clattn_sdpa_desc_init(d);
    d->batch = B, d->heads_q = HQ, d->heads_kv = HKV, d->seq_q = SQ;
    d->seq_kv = SKV, d->head_dim = D, d->head_dim_v = DV;
}

/* ------------------------------------------------------------------------ */
/* Shapes                                                                    */
/* ------------------------------------------------------------------------ */

enum tensor_id {
    T_Q,
    T_K,
    T_V,
    T_OUT,
    T_PROBS,
    T_LSE,
    T_MASK_BOOL,
    T_MASK_ADD,
    T_COUNT
};
static const char *const tensor_names[T_COUNT] = {
    "q", "k", "v", "out", "probs", "lse", "bool mask", "additive mask"};

static int is_output(int which)
{
    return which == T_OUT || which == T_PROBS || which == T_LSE;
}

static size_t elem_size(int which)
{
    return which == T_MASK_BOOL ? 1 : sizeof(float);
}

/* The dims of a tensor for desc, defaults resolved. */
static void tensor_dims(const clattn_sdpa_desc *d, int which, size_t dims[4])
{
    size_t hkv = d->heads_kv ? d->heads_kv : d->heads_q;
    size_t dv = d->head_dim_v ? d->head_dim_v : d->head_dim;
    size_t bq[4] = {d->batch, d->heads_q, d->seq_q, 0};
    size_t bkv[4] = {d->batch, hkv, d->seq_kv, 0};
    switch (which) {
    case T_Q: memcpy(dims, bq, sizeof bq), dims[3] = d->head_dim; break;
    case T_K: memcpy(dims, bkv, sizeof bkv), dims[3] = d->head_dim; break;
    case T_V: memcpy(dims, bkv, sizeof bkv), dims[3] = dv; break;
    case T_OUT: memcpy(dims, bq, sizeof bq), dims[3] = dv; break;
    case T_PROBS: memcpy(dims, bq, sizeof bq), dims[3] = d->seq_kv; break;
    case T_LSE: memcpy(dims, bq, sizeof bq), dims[3] = 1; break;
    default: memcpy(dims, d->mask_dims, 4 * sizeof *dims); break;
    }
}

/* Element count of a [dims] tensor, or 0 when a dim is 0 or huge. */
static size_t small_count(const size_t dims[4])
{
    size_t n = 1;
    for (int i = 0; i < 4; ++i) {
        if (dims[i] == 0 || dims[i] > SMALL_DIM)
            return 0;
        n *= dims[i];
    }
    return n;
}

static size_t tensor_count(const clattn_sdpa_desc *d, int which)
{
    size_t dims[4];
    tensor_dims(d, which, dims);
    return small_count(dims);
}

/* Nonzero when every tensor of desc is small enough to be allocated. */
static int desc_is_small(const clattn_sdpa_desc *d)
{
    for (int w = T_Q; w <= T_LSE; ++w)
        if (tensor_count(d, w) == 0)
            return 0;
    return 1;
}

/* One element past the last one a view reaches (strides of extent-1
   dimensions do not count). */
static size_t view_reach(const size_t dims[4], size_t offset,
                         const size_t strides[4])
{
    size_t last = offset;
    for (int i = 0; i < 4; ++i)
        if (dims[i] > 1)
            last += (dims[i] - 1) * strides[i];
    return last + 1;
}

static void contiguous_strides(const size_t dims[4], size_t s[4])
{
    s[3] = 1;
    s[2] = dims[3];
    s[1] = dims[2] * dims[3];
    s[0] = dims[1] * dims[2] * dims[3];
}

/* The element index of a view's n-th element, in [dims] order. */
static size_t view_at(const size_t dims[4], size_t offset,
                      const size_t strides[4], size_t n)
{
    size_t at = offset;
    for (int d = 3; d >= 0; --d) {
        at += (n % dims[d]) * strides[d];
        n /= dims[d];
    }
    return at;
}

static size_t view_count(const size_t dims[4])
{
    return dims[0] * dims[1] * dims[2] * dims[3];
}

/* Copies a strided view out of src (bytes) into a contiguous array. */
static void gather(const unsigned char *src, const size_t dims[4],
                   size_t offset, const size_t strides[4], size_t esize,
                   void *dst)
{
    unsigned char *o = dst;
    for (size_t n = 0; n < view_count(dims); ++n)
        memcpy(o + esize * n, src + esize * view_at(dims, offset, strides, n),
               esize);
}

/* Marks the bytes a view covers. */
static void mark_view(unsigned char *map, const size_t dims[4], size_t offset,
                      const size_t strides[4], size_t esize)
{
    for (size_t n = 0; n < view_count(dims); ++n)
        memset(map + esize * view_at(dims, offset, strides, n), 1, esize);
}

static double *to_double(const float *x, size_t n)
{
    double *r = malloc(n * sizeof *r);
    for (size_t i = 0; i < n; ++i)
        r[i] = x[i];
    return r;
}

/* ------------------------------------------------------------------------ */
/* Error text: each rejected call must record its own reason                 */
/* ------------------------------------------------------------------------ */

/* Each call clears last_error first (clattn.h), so a rejected call must
   leave its own text. Not to depend on that alone (a stale text would pass
   a "non-empty" check), a known, different error is recorded before each
   rejected call (variant 0 or 1); the text after the call must differ. */
static void prime_error(int variant, char *buf, size_t cap)
{
    clattn_sdpa_desc d;
    base_desc(&d);
    clattn_status s =
        variant == 0
            ? clattn_sdpa_host(g_ctx, NULL, g_q, g_k, g_v, NULL, NULL, NULL)
            : clattn_sdpa(g_ctx, &d, NULL, CLATTN_SDPA_PATH_AUTO, 0, NULL,
                          NULL);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT, "priming error %d: got %s",
          variant, clattn_status_string(s));
    snprintf(buf, cap, "%s", clattn_context_last_error(g_ctx));
}

/* After a rejected call on ctx: a non-empty text; for g_ctx one that is not
   the primed one (returns 0 then, to retry with the other priming); for
   another context (NULL) g_ctx's text is left alone. */
static int error_text_recorded(const char *name, clattn_context *ctx,
                               const char *primed)
{
    const char *text = clattn_context_last_error(ctx);
    CHECK(text != NULL && text[0] != '\0', "%s: empty last_error", name);
    if (ctx != g_ctx) {
        CHECK(strcmp(clattn_context_last_error(g_ctx), primed) == 0,
              "%s: the main context's last_error changed", name);
        return 1;
    }
    return text != NULL && strcmp(text, primed) != 0;
}

/* ------------------------------------------------------------------------ */
/* The context stays usable                                                  */
/* ------------------------------------------------------------------------ */

static void check_usable(const char *after)
{
    clattn_sdpa_desc d;
    base_desc(&d);
    const size_t n_out = B * HQ * SQ * DV, n_probs = B * HQ * SQ * SKV;
    float *out = guarded_alloc(n_out), *probs = guarded_alloc(n_probs);
    clattn_status s =
        clattn_sdpa_host(g_ctx, &d, g_q, g_k, g_v, NULL, out, probs);
    CHECK(s == CLATTN_SUCCESS, "valid call after '%s' failed: %s: %s", after,
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    if (s == CLATTN_SUCCESS) {
        CHECK(compare_close("out", out, g_base_out, n_out, TOL_ATOL,
                            TOL_RTOL) == 0,
              "valid call after '%s': wrong output", after);
        CHECK(compare_close("probs", probs, g_base_probs, n_probs, TOL_ATOL,
                            TOL_RTOL) == 0,
              "valid call after '%s': wrong probabilities", after);
    }
    CHECK(guarded_intact(out, n_out) && guarded_intact(probs, n_probs),
          "valid call after '%s': write outside the outputs", after);
    guarded_free(out);
    guarded_free(probs);
    ++g_usable_checks;
}

/* ------------------------------------------------------------------------ */
/* Descriptor cases: run through both the host and the device API           */
/* ------------------------------------------------------------------------ */

typedef struct desc_case {
    const char *name;
    void (*mutate)(clattn_sdpa_desc *d, int32_t *key_lengths, long arg);
    long arg;
    clattn_status expect;
} desc_case;

enum dim_field { F_BATCH, F_HQ, F_HKV, F_SQ, F_SKV, F_D, F_DV };
#define DIM(field, value) ((long)(field)*1000 + (value))

static size_t *dim_field(clattn_sdpa_desc *d, int field)
{
    size_t *f[7] = {&d->batch,  &d->heads_q,  &d->heads_kv,  &d->seq_q,
                    &d->seq_kv, &d->head_dim, &d->head_dim_v};
    return f[field];
}

static void set_dim(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    *dim_field(d, (int)(arg / 1000)) = (size_t)(arg % 1000);
}

static void set_heads(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    d->heads_q = (size_t)(arg / 100);
    d->heads_kv = (size_t)(arg % 100);
}

/* MASK(type, dim, value): a mask of type with full dims except dim set to
   value; dim 9 = the valid broadcast [1, 1, 1, Skv], dim 8 = [B, 1, Sq, Skv].
   rel: -1 = 1, -2 = 0, -3 = full - 1, k >= 0 = full + k. */
#define MASK(type, dim, rel) ((long)(type)*10000 + (dim)*100 + (rel) + 50)
static void set_mask(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    int type = (int)(arg / 10000), dim = (int)(arg / 100 % 100);
    long rel = arg % 100 - 50;
    size_t full[4] = {d->batch, d->heads_q, d->seq_q, d->seq_kv};
    d->mask_type = (clattn_mask_type)type;
    memcpy(d->mask_dims, full, sizeof full);
    if (dim == 9) {
        d->mask_dims[0] = d->mask_dims[1] = d->mask_dims[2] = 1;
    } else if (dim == 8) {
        d->mask_dims[1] = 1;
    } else {
        d->mask_dims[dim] = rel == -1   ? 1
                            : rel == -2 ? 0
                            : rel == -3 ? full[dim] - 1
                                        : full[dim] + (size_t)rel;
    }
}

static void huge_mask_dim(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    set_mask(d, kl, MASK(arg, 0, 0));
    d->mask_dims[2] = SIZE_MAX;
}

static void garbage_mask_dims_no_mask(clattn_sdpa_desc *d, int32_t *kl,
                                      long arg)
{
    (void)kl, (void)arg;
    d->mask_type = CLATTN_MASK_NONE;
    d->mask_dims[0] = 17, d->mask_dims[1] = 0, d->mask_dims[2] = SIZE_MAX;
    d->mask_dims[3] = 3;
}

static void set_causal(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    d->causal = (clattn_causal)arg;
}

static void set_mask_type(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    d->mask_type = (clattn_mask_type)arg;
}

enum { V_NAN, V_PINF, V_NINF };
static float special(long arg)
{
    return arg == V_NAN ? NAN : arg == V_PINF ? INFINITY : -INFINITY;
}

static void set_scale(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    d->scale = arg < 100 ? special(arg) : -(float)(arg - 100) / 100.0f;
}

/* arg: a special value, or 100 + p * 100 (p may be negative). */
static void set_dropout(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    d->dropout_p = arg < 50 ? special(arg) : (float)(arg - 1000) / 100.0f;
    d->dropout_seed = 1234, d->dropout_offset = 77;
}
#define P(x100) (1000 + (x100))

/* The key lengths of batch 0 and 1 (each in [-1000, 1000)). */
#define KL(a, b) (((long)(a) + 1000) * 10000 + (b) + 1000)
static void set_key_lengths(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    long a = arg / 10000 - 1000, b = arg % 10000 - 1000;
    kl[0] = (int32_t)a, kl[1] = (int32_t)b;
    d->key_lengths = kl;
}

static void extreme_key_length(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    kl[0] = 3;
    kl[1] = arg ? INT32_MAX : INT32_MIN;
    d->key_lengths = kl;
}

/* Sizes whose element or byte counts overflow size_t, or that exceed the
   kernels' 32-bit indices: all rejected before anything is allocated. */
static void huge_dims(clattn_sdpa_desc *d, int32_t *kl, long arg)
{
    (void)kl;
    switch (arg) {
    case 0: /* every count overflows */
        d->batch = 4, d->seq_q = d->seq_kv = SIZE_MAX / 2;
        break;
    case 1: /* q's element count fits, its byte count does not */
        d->batch = d->heads_q = d->heads_kv = d->seq_q = d->seq_kv = 1;
        d->head_dim = SIZE_MAX / 4 + 1, d->head_dim_v = 1;
        break;
    case 2: /* only the attention matrix (B*Hq*Sq*Skv) overflows */
        d->seq_q = d->seq_kv = (size_t)1 << (sizeof(size_t) * 4 + 1);
        break;
    case 3: /* a valid mask of an overflowing shape */
        d->seq_q = d->seq_kv = SIZE_MAX / 2;
        d->mask_type = CLATTN_MASK_BOOL;
        d->mask_dims[0] = d->mask_dims[1] = 1;
        d->mask_dims[2] = d->mask_dims[3] = SIZE_MAX / 2;
        break;
    case 4: /* counts fit in size_t but seq_kv exceeds INT32_MAX */
        d->seq_kv = (size_t)INT32_MAX + 1;
        break;
    case 5: /* batch * heads_q exceeds INT32_MAX */
        d->batch = d->heads_q = (size_t)1 << 16, d->heads_kv = 1;
        break;
    }
}

static const desc_case desc_cases[] = {
    /* Defaults are valid. */
    {"heads_kv = 0 (default: heads_q)", set_dim, DIM(F_HKV, 0), CLATTN_SUCCESS},
    {"head_dim_v = 0 (default: head_dim)", set_dim, DIM(F_DV, 0),
     CLATTN_SUCCESS},
    /* Zero dimensions. */
    {"batch = 0", set_dim, DIM(F_BATCH, 0), CLATTN_ERROR_INVALID_SHAPE},
    {"heads_q = 0", set_dim, DIM(F_HQ, 0), CLATTN_ERROR_INVALID_SHAPE},
    {"seq_q = 0", set_dim, DIM(F_SQ, 0), CLATTN_ERROR_INVALID_SHAPE},
    {"seq_kv = 0", set_dim, DIM(F_SKV, 0), CLATTN_ERROR_INVALID_SHAPE},
    {"head_dim = 0", set_dim, DIM(F_D, 0), CLATTN_ERROR_INVALID_SHAPE},
    /* Head grouping. */
    {"heads_q 4, heads_kv 2 (GQA)", set_heads, 402, CLATTN_SUCCESS},
    {"heads_q 3, heads_kv 1 (MQA)", set_heads, 301, CLATTN_SUCCESS},
    {"heads_q 3, heads_kv 2", set_heads, 302, CLATTN_ERROR_INVALID_SHAPE},
    {"heads_q 2, heads_kv 3", set_heads, 203, CLATTN_ERROR_INVALID_SHAPE},
    {"heads_q 2, heads_kv 4", set_heads, 204, CLATTN_ERROR_INVALID_SHAPE},
    {"heads_q 4, heads_kv 3", set_heads, 403, CLATTN_ERROR_INVALID_SHAPE},
/* clang-format off */
#define MASK_CASES(TYPE, T)                                                    \
    {T " mask [B,Hq,Sq,Skv]", set_mask, MASK(TYPE, 0, 0), CLATTN_SUCCESS},     \
    {T " mask [1,1,1,Skv]", set_mask, MASK(TYPE, 9, 0), CLATTN_SUCCESS},       \
    {T " mask [B,1,Sq,Skv]", set_mask, MASK(TYPE, 8, 0), CLATTN_SUCCESS},      \
    {T " mask_dims[0] = B+1", set_mask, MASK(TYPE, 0, 1),                      \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[0] = 0", set_mask, MASK(TYPE, 0, -2),                       \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[1] = Hq+1", set_mask, MASK(TYPE, 1, 1),                     \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[1] = 0", set_mask, MASK(TYPE, 1, -2),                       \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[2] = Sq+1", set_mask, MASK(TYPE, 2, 1),                     \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[2] = Sq-1", set_mask, MASK(TYPE, 2, -3),                    \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[2] = 0", set_mask, MASK(TYPE, 2, -2),                       \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[3] = 1 (keys do not broadcast)", set_mask,                  \
     MASK(TYPE, 3, -1), CLATTN_ERROR_INVALID_SHAPE},                           \
    {T " mask_dims[3] = Skv+1", set_mask, MASK(TYPE, 3, 1),                    \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[3] = Skv-1", set_mask, MASK(TYPE, 3, -3),                   \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[3] = 0", set_mask, MASK(TYPE, 3, -2),                       \
     CLATTN_ERROR_INVALID_SHAPE},                                              \
    {T " mask_dims[2] = SIZE_MAX", huge_mask_dim, TYPE,                        \
     CLATTN_ERROR_INVALID_SHAPE}
    /* clang-format on */
    MASK_CASES(CLATTN_MASK_BOOL, "bool"),
    MASK_CASES(CLATTN_MASK_ADDITIVE, "additive"),
    {"garbage mask_dims with mask_type NONE (ignored)",
     garbage_mask_dims_no_mask, 0, CLATTN_SUCCESS},
    /* Enums. */
    {"causal TOP_LEFT", set_causal, CLATTN_CAUSAL_TOP_LEFT, CLATTN_SUCCESS},
    {"causal BOTTOM_RIGHT", set_causal, CLATTN_CAUSAL_BOTTOM_RIGHT,
     CLATTN_SUCCESS},
    {"causal = 3", set_causal, 3, CLATTN_ERROR_INVALID_ARGUMENT},
    {"causal = -1", set_causal, -1, CLATTN_ERROR_INVALID_ARGUMENT},
    {"causal = 1000", set_causal, 1000, CLATTN_ERROR_INVALID_ARGUMENT},
    {"mask_type = 3", set_mask_type, 3, CLATTN_ERROR_INVALID_ARGUMENT},
    {"mask_type = -1", set_mask_type, -1, CLATTN_ERROR_INVALID_ARGUMENT},
    {"mask_type = 1000", set_mask_type, 1000, CLATTN_ERROR_INVALID_ARGUMENT},
    /* Scale: any finite value. */
    {"scale = -0.25", set_scale, 125, CLATTN_SUCCESS},
    {"scale = NaN", set_scale, V_NAN, CLATTN_ERROR_INVALID_ARGUMENT},
    {"scale = +inf", set_scale, V_PINF, CLATTN_ERROR_INVALID_ARGUMENT},
    {"scale = -inf", set_scale, V_NINF, CLATTN_ERROR_INVALID_ARGUMENT},
    /* Dropout p in [0, 1). */
    {"dropout_p = 0.25", set_dropout, P(25), CLATTN_SUCCESS},
    {"dropout_p = 1", set_dropout, P(100), CLATTN_ERROR_INVALID_ARGUMENT},
    {"dropout_p = 1.5", set_dropout, P(150), CLATTN_ERROR_INVALID_ARGUMENT},
    {"dropout_p = -0.1", set_dropout, P(-10), CLATTN_ERROR_INVALID_ARGUMENT},
    {"dropout_p = NaN", set_dropout, V_NAN, CLATTN_ERROR_INVALID_ARGUMENT},
    {"dropout_p = +inf", set_dropout, V_PINF, CLATTN_ERROR_INVALID_ARGUMENT},
    {"dropout_p = -inf", set_dropout, V_NINF, CLATTN_ERROR_INVALID_ARGUMENT},
    /* Key lengths in [0, seq_kv]. */
    {"key_lengths {0, Skv}", set_key_lengths, KL(0, SKV), CLATTN_SUCCESS},
    {"key_lengths {Skv, 3}", set_key_lengths, KL(SKV, 3), CLATTN_SUCCESS},
    {"key_lengths {-1, Skv}", set_key_lengths, KL(-1, SKV),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"key_lengths {3, Skv+1}", set_key_lengths, KL(3, SKV + 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"key_lengths {3, INT32_MIN}", extreme_key_length, 0,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"key_lengths {3, INT32_MAX}", extreme_key_length, 1,
     CLATTN_ERROR_INVALID_ARGUMENT},
    /* Sizes. */
    {"batch 4, seq_q = seq_kv = SIZE_MAX/2", huge_dims, 0,
     CLATTN_ERROR_SIZE_OVERFLOW},
    {"head_dim = SIZE_MAX/4+1 (bytes overflow)", huge_dims, 1,
     CLATTN_ERROR_SIZE_OVERFLOW},
    {"seq_q = seq_kv = 2^(bits/2+1) (attention matrix overflows)", huge_dims, 2,
     CLATTN_ERROR_SIZE_OVERFLOW},
    {"bool mask [1,1,SIZE_MAX/2,SIZE_MAX/2]", huge_dims, 3,
     CLATTN_ERROR_SIZE_OVERFLOW},
    {"seq_kv = INT32_MAX+1 (kernel index range)", huge_dims, 4,
     CLATTN_ERROR_UNSUPPORTED},
    {"batch * heads_q = 2^32 (kernel index range)", huge_dims, 5,
     CLATTN_ERROR_UNSUPPORTED},
};
#define N_DESC_CASES (sizeof desc_cases / sizeof desc_cases[0])

/* ------------------------------------------------------------------------ */
/* Host API runner                                                           */
/* ------------------------------------------------------------------------ */

typedef struct host_call {
    clattn_context *ctx;
    clattn_sdpa_desc desc;
    const clattn_sdpa_desc *desc_ptr;
    const float *q, *k, *v;
    const void *mask;
    int mask_set; /* the case chose mask itself */
    int null_out;
    int32_t key_lengths[B];
} host_call;

typedef struct host_case {
    const char *name;
    void (*mutate)(host_call *c, long arg);
    long arg;
    clattn_status expect;
} host_case;

enum { H_CTX, H_DESC, H_Q, H_K, H_V, H_OUT, H_MASK_BOOL, H_MASK_ADD };
static void host_null(host_call *c, long arg)
{
    switch (arg) {
    case H_CTX: c->ctx = NULL; break;
    case H_DESC: c->desc_ptr = NULL; break;
    case H_Q: c->q = NULL; break;
    case H_K: c->k = NULL; break;
    case H_V: c->v = NULL; break;
    case H_OUT: c->null_out = 1; break;
    default:
        set_mask(
            &c->desc, NULL,
            MASK(arg == H_MASK_BOOL ? CLATTN_MASK_BOOL : CLATTN_MASK_ADDITIVE,
                 0, 0));
        c->mask = NULL, c->mask_set = 1;
        break;
    }
}

static void host_mask_without_type(host_call *c, long arg)
{
    (void)arg;
    c->mask = g_mask_bool, c->mask_set = 1; /* mask_type stays NONE */
}

static void host_apply_desc_case(host_call *c, long i)
{
    desc_cases[i].mutate(&c->desc, c->key_lengths, desc_cases[i].arg);
}

static const host_case host_cases[] = {
    {"NULL ctx", host_null, H_CTX, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL desc", host_null, H_DESC, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL q", host_null, H_Q, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL k", host_null, H_K, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL v", host_null, H_V, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL out", host_null, H_OUT, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL mask with a bool mask_type", host_null, H_MASK_BOOL,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL mask with an additive mask_type", host_null, H_MASK_ADD,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"a mask with mask_type NONE (ignored)", host_mask_without_type, 0,
     CLATTN_SUCCESS},
};
#define N_HOST_CASES (sizeof host_cases / sizeof host_cases[0])

static void host_call_init(host_call *c)
{
    memset(c, 0, sizeof *c);
    c->ctx = g_ctx;
    base_desc(&c->desc);
    c->desc_ptr = &c->desc;
    c->q = g_q, c->k = g_k, c->v = g_v;
}

/* A valid variant: the outputs against the reference. */
static void host_check_result(const char *name, const host_call *c,
                              const float *out, const float *probs)
{
    const clattn_sdpa_desc *d = &c->desc;
    size_t n_out = tensor_count(d, T_OUT), n_probs = tensor_count(d, T_PROBS);
    if (n_out == 0 || n_probs == 0) /* a valid variant is a small shape */
        return;
    double *ref_out = malloc(n_out * sizeof *ref_out);
    double *ref_probs = malloc(n_probs * sizeof *ref_probs);
    ref_sdpa(d, c->q, c->k, c->v, c->mask, ref_out, ref_probs, NULL);
    CHECK(compare_close(name, out, ref_out, n_out, TOL_ATOL, TOL_RTOL) == 0,
          "host '%s': output differs from the reference", name);
    if (probs)
        CHECK(compare_close(name, probs, ref_probs, n_probs, TOL_ATOL,
                            TOL_RTOL) == 0,
              "host '%s': probabilities differ from the reference", name);
    free(ref_out);
    free(ref_probs);
}

/* Counts a case as an error case or a valid one; returns whether it
   must fail. */
static int count_case(clattn_status expect)
{
    const int failing = expect != CLATTN_SUCCESS;
    if (failing)
        ++g_error_cases;
    else
        ++g_valid_cases;
    return failing;
}

static void run_host_case(const host_case *hc)
{
    const int failing = count_case(hc->expect);
    for (int want_probs = 0; want_probs < 2; ++want_probs) {
        int recorded = 0;
        char primed[1024] = "";
        /* A second attempt only when the first left the primed text. */
        for (int attempt = 0; attempt < 2 && !recorded; ++attempt) {
            host_call c;
            host_call_init(&c);
            hc->mutate(&c, hc->arg);
            if (!c.mask_set)
                c.mask = c.desc.mask_type == CLATTN_MASK_BOOL
                             ? (void *)g_mask_bool
                         : c.desc.mask_type == CLATTN_MASK_ADDITIVE
                             ? (void *)g_mask_add
                             : NULL;
            /* Outputs sized from the case's shape when it is a small one;
               a rejected call must not write them at all anyway. */
            const clattn_sdpa_desc *sz = &c.desc;
            clattn_sdpa_desc base;
            base_desc(&base);
            if (!desc_is_small(sz))
                sz = &base;
            size_t n_out = tensor_count(sz, T_OUT);
            size_t n_probs = tensor_count(sz, T_PROBS);
            if (!failing)
                CHECK(tensor_count(sz, T_Q) <= CAP &&
                          tensor_count(sz, T_K) <= CAP &&
                          tensor_count(sz, T_V) <= CAP &&
                          (c.desc.mask_type == CLATTN_MASK_NONE ||
                           tensor_count(sz, T_MASK_BOOL) <= CAP),
                      "host '%s': the case is larger than the test data",
                      hc->name);
            float *out = guarded_alloc(n_out);
            float *probs = want_probs ? guarded_alloc(n_probs) : NULL;

            if (failing)
                prime_error(attempt, primed, sizeof primed);
            double t0 = now_seconds();
            clattn_status s =
                clattn_sdpa_host(c.ctx, c.desc_ptr, c.q, c.k, c.v, c.mask,
                                 c.null_out ? NULL : out, probs);
            double dt = now_seconds() - t0;
            ++g_calls;
            CHECK(s == hc->expect,
                  "host '%s' (probs %s): got %s (%d), want %s: %s", hc->name,
                  want_probs ? "on" : "off", clattn_status_string(s), (int)s,
                  clattn_status_string(hc->expect),
                  s == CLATTN_SUCCESS ? "(no error)"
                                      : clattn_context_last_error(c.ctx));
            if (failing) {
                CHECK(guarded_untouched(out, n_out),
                      "host '%s' (probs %s): out written on error", hc->name,
                      want_probs ? "on" : "off");
                if (probs)
                    CHECK(guarded_untouched(probs, n_probs),
                          "host '%s': probs written on error", hc->name);
                /* An unexpected success is reported above; its text is
                   not the point then. */
                recorded = s == CLATTN_SUCCESS ||
                           error_text_recorded(hc->name, c.ctx, primed);
                if (hc->expect == CLATTN_ERROR_SIZE_OVERFLOW ||
                    hc->expect == CLATTN_ERROR_UNSUPPORTED)
                    CHECK(dt < 0.5,
                          "host '%s': took %.3f s: allocated before checking?",
                          hc->name, dt);
            } else {
                recorded = 1;
                if (s == CLATTN_SUCCESS) {
                    host_check_result(hc->name, &c, out, probs);
                    CHECK(clattn_context_last_error(g_ctx)[0] == '\0',
                          "host '%s': last_error not cleared by a success",
                          hc->name);
                }
                CHECK(guarded_intact(out, n_out) &&
                          (!probs || guarded_intact(probs, n_probs)),
                      "host '%s': write outside the outputs", hc->name);
            }
            guarded_free(out);
            guarded_free(probs);
        }
        if (failing)
            CHECK(recorded, "host '%s': the call left last_error at '%s'",
                  hc->name, primed);
        check_usable(hc->name);
    }
}

/* ------------------------------------------------------------------------ */
/* Device API runner                                                         */
/* ------------------------------------------------------------------------ */

/* Every buffer a device case creates is tracked with its initial bytes: on
   error all of them must read back unchanged; on success only the output
   views may differ. */
typedef struct tracked {
    cl_mem mem;
    cl_command_queue queue;
    size_t bytes;
    unsigned char *init;
} tracked;

#define MAX_TRACKED 32
typedef struct dev_call {
    clattn_context *ctx;
    clattn_sdpa_desc desc;
    const clattn_sdpa_desc *desc_ptr;
    clattn_sdpa_tensors t;
    const clattn_sdpa_tensors *t_ptr;
    clattn_sdpa_path path;
    cl_uint num_wait;
    const cl_event *wait;
    cl_event user_event;
    int32_t key_lengths[B];
    tracked bufs[MAX_TRACKED];
    int nbufs;
    test_rng rng;
} dev_call;

typedef struct dev_case {
    const char *name;
    void (*mutate)(dev_call *c, long arg);
    long arg;
    clattn_status expect;
} dev_case;

/* A NaN pattern the kernels never produce. */
static const uint32_t SENTINEL_BITS = 0x7fc0deadu;

enum fill { FILL_DATA, FILL_MASK, FILL_SENTINEL };

static cl_mem new_buffer_in(dev_call *c, cl_context cl_ctx,
                            cl_command_queue queue, size_t bytes,
                            enum fill fill)
{
    if (c->nbufs == MAX_TRACKED) {
        CHECK(0, "too many buffers in one case");
        return NULL;
    }
    unsigned char *init = malloc(bytes);
    size_t i = 0;
    for (; fill != FILL_MASK && i + 4 <= bytes; i += 4) {
        float x = (float)test_rng_uniform(&c->rng, -1.0, 1.0);
        if (fill == FILL_SENTINEL)
            memcpy(&x, &SENTINEL_BITS, 4);
        memcpy(init + i, &x, 4);
    }
    for (; i < bytes; ++i)
        init[i] = test_rng_uniform(&c->rng, 0.0, 1.0) < 0.8;
    cl_int err;
    cl_mem mem = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu): %d", bytes, (int)err);
    if (err == CL_SUCCESS) {
        err = clEnqueueWriteBuffer(queue, mem, CL_TRUE, 0, bytes, init, 0, NULL,
                                   NULL);
        CHECK(err == CL_SUCCESS, "clEnqueueWriteBuffer: %d", (int)err);
    }
    tracked *t = &c->bufs[c->nbufs++];
    t->mem = err == CL_SUCCESS ? mem : NULL;
    t->queue = queue;
    t->bytes = bytes;
    t->init = init;
    return t->mem;
}

static cl_mem new_buffer(dev_call *c, size_t bytes, enum fill fill)
{
    return new_buffer_in(c, g_info.cl_ctx, g_info.queue, bytes, fill);
}

static enum fill fill_of(int which)
{
    return is_output(which)       ? FILL_SENTINEL
           : which == T_MASK_BOOL ? FILL_MASK
                                  : FILL_DATA;
}

static clattn_tensor *tensor_of(dev_call *c, int which)
{
    clattn_tensor *all[T_COUNT] = {&c->t.q,    &c->t.k,     &c->t.v,
                                   &c->t.out,  &c->t.probs, &c->t.lse,
                                   &c->t.mask, &c->t.mask};
    return all[which];
}

/* A fresh buffer of n elements with a contiguous view at offset. */
static void attach(dev_call *c, int which, size_t n, size_t offset)
{
    size_t dims[4];
    tensor_dims(&c->desc, which, dims);
    cl_mem mem = new_buffer(c, n * elem_size(which), fill_of(which));
    clattn_tensor_contiguous(tensor_of(c, which), mem, offset, dims);
}

/* Switches on an optional tensor (a mask sets mask_type and its dims:
   [B,1,Sq,Skv] for bool, [1,Hq,1,Skv] for additive) with an exact buffer. */
static void enable(dev_call *c, int which)
{
    clattn_sdpa_desc *d = &c->desc;
    if (which == T_MASK_BOOL || which == T_MASK_ADD) {
        int bool_mask = which == T_MASK_BOOL;
        d->mask_type = bool_mask ? CLATTN_MASK_BOOL : CLATTN_MASK_ADDITIVE;
        d->mask_dims[0] = bool_mask ? d->batch : 1;
        d->mask_dims[1] = bool_mask ? 1 : d->heads_q;
        d->mask_dims[2] = bool_mask ? d->seq_q : 1;
        d->mask_dims[3] = d->seq_kv;
    }
    if (which >= T_PROBS)
        attach(c, which, tensor_count(d, which), 0);
}

/* Buffers for q, k, v, out (and the mask) sized from the current desc, or
   kept from the base when the desc is not a small one. */
static void dev_rebuild(dev_call *c)
{
    const clattn_sdpa_desc *d = &c->desc;
    if (desc_is_small(d))
        for (int w = T_Q; w <= T_OUT; ++w)
            attach(c, w, tensor_count(d, w), 0);
    if (d->mask_type == CLATTN_MASK_BOOL ||
        d->mask_type == CLATTN_MASK_ADDITIVE) {
        int w = d->mask_type == CLATTN_MASK_BOOL ? T_MASK_BOOL : T_MASK_ADD;
        size_t n = tensor_count(d, w);
        attach(c, w, n ? n : 1, 0);
    }
}

static void dev_call_init(dev_call *c, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->ctx = g_ctx;
    base_desc(&c->desc);
    c->desc_ptr = &c->desc;
    c->t_ptr = &c->t;
    c->path = CLATTN_SDPA_PATH_AUTO;
    c->rng = test_rng_make(seed);
    dev_rebuild(c);
}

static void dev_call_release(dev_call *c)
{
    for (int i = 0; i < c->nbufs; ++i) {
        if (c->bufs[i].mem)
            clReleaseMemObject(c->bufs[i].mem);
        free(c->bufs[i].init);
    }
    if (c->user_event)
        clReleaseEvent(c->user_event);
}

static const tracked *find_tracked(const dev_call *c, cl_mem mem)
{
    for (int i = 0; i < c->nbufs; ++i)
        if (c->bufs[i].mem == mem)
            return &c->bufs[i];
    return NULL;
}

static unsigned char *read_back(const tracked *t)
{
    unsigned char *now = malloc(t->bytes);
    cl_int err = clEnqueueReadBuffer(t->queue, t->mem, CL_TRUE, 0, t->bytes,
                                     now, 0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", (int)err);
    return now;
}

static void dev_check_unchanged(const char *name, const dev_call *c)
{
    for (int i = 0; i < c->nbufs; ++i) {
        const tracked *t = &c->bufs[i];
        if (!t->mem)
            continue;
        unsigned char *now = read_back(t);
        CHECK(memcmp(now, t->init, t->bytes) == 0,
              "device '%s': buffer #%d (%zu bytes) written on error", name, i,
              t->bytes);
        free(now);
    }
}

/* A contiguous copy of a tensor's view, from the initial bytes (inputs) or
   from bytes read back (outputs). */
static void *view_copy(const dev_call *c, int which, unsigned char *const *now)
{
    const clattn_tensor *t = tensor_of((dev_call *)c, which);
    size_t dims[4];
    tensor_dims(&c->desc, which, dims);
    size_t n = small_count(dims);
    void *dst = malloc(n * elem_size(which));
    const tracked *tr = find_tracked(c, t->buffer);
    if (!tr)
        return dst;
    const unsigned char *src = now ? now[tr - c->bufs] : tr->init;
    gather(src, dims, t->offset, t->strides, elem_size(which), dst);
    return dst;
}

/* A valid variant: outputs against the reference, and not one byte changed
   outside the output views, in any buffer of the case. */
static void dev_check_result(const char *name, const dev_call *c)
{
    const clattn_sdpa_desc *d = &c->desc;
    int mask_w = d->mask_type == CLATTN_MASK_BOOL       ? T_MASK_BOOL
                 : d->mask_type == CLATTN_MASK_ADDITIVE ? T_MASK_ADD
                                                        : -1;
    float *q = view_copy(c, T_Q, NULL), *k = view_copy(c, T_K, NULL);
    float *v = view_copy(c, T_V, NULL);
    void *mask = mask_w >= 0 ? view_copy(c, mask_w, NULL) : NULL;
    size_t n[T_LSE + 1];
    double *ref[T_LSE + 1];
    for (int w = T_OUT; w <= T_LSE; ++w) {
        n[w] = tensor_count(d, w);
        ref[w] = malloc(n[w] * sizeof(double));
    }
    ref_sdpa(d, q, k, v, mask, ref[T_OUT], ref[T_PROBS], ref[T_LSE]);

    unsigned char *now[MAX_TRACKED] = {0}, *written[MAX_TRACKED] = {0};
    for (int i = 0; i < c->nbufs; ++i)
        if (c->bufs[i].mem) {
            now[i] = read_back(&c->bufs[i]);
            written[i] = calloc(c->bufs[i].bytes, 1);
        }
    for (int w = T_OUT; w <= T_LSE; ++w) {
        const clattn_tensor *t = tensor_of((dev_call *)c, w);
        if (!t->buffer)
            continue;
        size_t dims[4];
        tensor_dims(d, w, dims);
        float *got = view_copy(c, w, now);
        char what[64];
        snprintf(what, sizeof what, "%s", tensor_names[w]);
        CHECK(compare_close(what, got, ref[w], n[w], TOL_ATOL, TOL_RTOL) == 0,
              "device '%s': %s differs from the reference", name,
              tensor_names[w]);
        free(got);
        const tracked *tr = find_tracked(c, t->buffer);
        if (tr)
            mark_view(written[tr - c->bufs], dims, t->offset, t->strides,
                      sizeof(float));
    }
    for (int i = 0; i < c->nbufs; ++i) {
        if (!now[i])
            continue;
        size_t bad = 0;
        for (size_t j = 0; j < c->bufs[i].bytes; ++j)
            bad += !written[i][j] && now[i][j] != c->bufs[i].init[j];
        CHECK(bad == 0,
              "device '%s': %zu bytes of buffer #%d changed outside "
              "the output views",
              name, bad, i);
        free(now[i]);
        free(written[i]);
    }
    for (int w = T_OUT; w <= T_LSE; ++w)
        free(ref[w]);
    free(q), free(k), free(v), free(mask);
}

static void run_dev_case(const dev_case *dc)
{
    const int failing = count_case(dc->expect);
    int recorded = 0;
    char primed[1024] = "";
    for (int attempt = 0; attempt < 2 && !recorded; ++attempt) {
        dev_call c;
        dev_call_init(&c, 1000 + (uint64_t)attempt);
        dc->mutate(&c, dc->arg);
        if (failing)
            prime_error(attempt, primed, sizeof primed);
        cl_event done = NULL;
        double t0 = now_seconds();
        clattn_status s = clattn_sdpa(c.ctx, c.desc_ptr, c.t_ptr, c.path,
                                      c.num_wait, c.wait, &done);
        double dt = now_seconds() - t0;
        ++g_calls;
        CHECK(s == dc->expect, "device '%s': got %s (%d), want %s: %s",
              dc->name, clattn_status_string(s), (int)s,
              clattn_status_string(dc->expect),
              s == CLATTN_SUCCESS ? "(no error)"
                                  : clattn_context_last_error(c.ctx));
        if (s == CLATTN_SUCCESS) {
            CHECK(done != NULL, "device '%s': no event returned", dc->name);
            if (done) {
                CHECK(clWaitForEvents(1, &done) == CL_SUCCESS,
                      "device '%s': the returned event failed", dc->name);
                clReleaseEvent(done);
            }
        } else {
            /* A rejected call returns no event (the caller would leak it). */
            CHECK(done == NULL, "device '%s': event returned on error",
                  dc->name);
        }
        if (failing) {
            dev_check_unchanged(dc->name, &c);
            recorded = s == CLATTN_SUCCESS ||
                       error_text_recorded(dc->name, c.ctx, primed);
            if (dc->expect == CLATTN_ERROR_SIZE_OVERFLOW ||
                dc->expect == CLATTN_ERROR_UNSUPPORTED)
                CHECK(dt < 0.5, "device '%s': took %.3f s", dc->name, dt);
        } else {
            recorded = 1;
            if (s == CLATTN_SUCCESS) {
                dev_check_result(dc->name, &c);
                CHECK(clattn_context_last_error(g_ctx)[0] == '\0',
                      "device '%s': last_error not cleared by a success",
                      dc->name);
            }
        }
        dev_call_release(&c);
    }
    if (failing)
        CHECK(recorded, "device '%s': the call left last_error at '%s'",
              dc->name, primed);
    check_usable(dc->name);
}

/* ---- device mutations ---- */

static void dev_apply_desc_case(dev_call *c, long i)
{
    desc_cases[i].mutate(&c->desc, c->key_lengths, desc_cases[i].arg);
    dev_rebuild(c);
}

enum {
    N_CTX,
    N_DESC,
    N_TENSORS,
    N_Q,
    N_K,
    N_V,
    N_OUT,
    N_MASK_BOOL,
    N_MASK_ADD
};
static void dev_null(dev_call *c, long arg)
{
    switch (arg) {
    case N_CTX: c->ctx = NULL; break;
    case N_DESC: c->desc_ptr = NULL; break;
    case N_TENSORS: c->t_ptr = NULL; break;
    case N_Q: c->t.q.buffer = NULL; break;
    case N_K: c->t.k.buffer = NULL; break;
    case N_V: c->t.v.buffer = NULL; break;
    case N_OUT: c->t.out.buffer = NULL; break;
    default:
        enable(c, arg == N_MASK_BOOL ? T_MASK_BOOL : T_MASK_ADD);
        c->t.mask.buffer = NULL;
        break;
    }
}

/* Buffer sizes. OpenCL cannot create a 0-byte buffer (clCreateBuffer gives
   CL_INVALID_BUFFER_SIZE), so 1 element is the smallest buffer tried. */
enum { S_ONE, S_SHORT, S_EXACT, S_OFFSET_PAST, S_OFFSET_FITS };
#define SIZE_ARG(which, variant) ((long)(which)*10 + (variant))
static void buffer_size(dev_call *c, long arg)
{
    int which = (int)(arg / 10), variant = (int)(arg % 10);
    enable(c, which);
    size_t need = tensor_count(&c->desc, which); /* contiguous: all of it */
    switch (variant) {
    case S_ONE: attach(c, which, 1, 0); break;
    case S_SHORT: attach(c, which, need - 1, 0); break;
    case S_EXACT: attach(c, which, need, 0); break;
    case S_OFFSET_PAST: attach(c, which, need, 1); break;
    case S_OFFSET_FITS: attach(c, which, need + 3, 3); break;
    }
}

/* Strided views of the base shape, with a buffer of exactly what the view
   reaches plus extra elements (extra -1: one short). */
typedef struct view_spec {
    int which;
    size_t strides[4];
    long extra;
} view_spec;

enum view_id {
    VS_Q_FEATURE_2,
    VS_K_FEATURE_0,
    VS_V_FEATURE_2,
    VS_OUT_FEATURE_2,
    VS_PROBS_FEATURE_2,
    VS_MASK_FEATURE_2,
    VS_OUT_SEQ_SHORT,
    VS_OUT_HEAD_0,
    VS_OUT_BATCH_0,
    VS_OUT_HEAD_SHORT,
    VS_OUT_SEQ_0,
    VS_PROBS_SEQ_0,
    VS_PROBS_SEQ_SHORT,
    VS_LSE_SEQ_0,
    VS_LSE_HEAD_SHORT,
    VS_OUT_BSHD,
    VS_OUT_PADDED,
    VS_OUT_PADDED_SHORT,
    VS_Q_BSHD,
    VS_Q_BSHD_SHORT,
    VS_K_BATCH_0,
    VS_K_BATCH_0_SHORT,
    VS_V_BATCH_0,
    VS_Q_HEAD_0,
    VS_MASK_BATCH_0,
    VS_LSE_BSH,
    VS_PROBS_PADDED,
    VS_PROBS_PADDED_SHORT,
};

/* clang-format off */
static const view_spec view_specs[] = {
    /* feature stride != 1 */
    [VS_Q_FEATURE_2] = {T_Q, {HQ * SQ * D * 2, SQ * D * 2, D * 2, 2}, 0},
    [VS_K_FEATURE_0] = {T_K, {HKV * SKV * D, SKV * D, D, 0}, 0},
    [VS_V_FEATURE_2] = {T_V, {HKV * SKV * DV * 2, SKV * DV * 2, DV * 2, 2}, 0},
    [VS_OUT_FEATURE_2] = {T_OUT, {HQ * SQ * DV * 2, SQ * DV * 2, DV * 2, 2}, 0},
    [VS_PROBS_FEATURE_2] =
        {T_PROBS, {HQ * SQ * SKV * 2, SQ * SKV * 2, SKV * 2, 2}, 0},
    [VS_MASK_FEATURE_2] =
        {T_MASK_BOOL, {SQ * SKV * 2, SQ * SKV * 2, SKV * 2, 2}, 0},
    /* outputs whose elements overlap */
    [VS_OUT_SEQ_SHORT] =
        {T_OUT, {HQ * SQ * (DV - 1), SQ * (DV - 1), DV - 1, 1}, 0},
    [VS_OUT_HEAD_0] = {T_OUT, {SQ * DV, 0, DV, 1}, 0},
    [VS_OUT_BATCH_0] = {T_OUT, {0, SQ * DV, DV, 1}, 0},
    [VS_OUT_HEAD_SHORT] = {T_OUT, {HQ * SQ * DV, SQ * DV - 1, DV, 1}, 0},
    [VS_OUT_SEQ_0] = {T_OUT, {HQ * DV, DV, 0, 1}, 0},
    [VS_PROBS_SEQ_0] = {T_PROBS, {HQ * SKV, SKV, 0, 1}, 0},
    [VS_PROBS_SEQ_SHORT] =
        {T_PROBS, {HQ * SQ * (SKV - 1), SQ * (SKV - 1), SKV - 1, 1}, 0},
    [VS_LSE_SEQ_0] = {T_LSE, {HQ, 1, 0, 1}, 0},
    [VS_LSE_HEAD_SHORT] = {T_LSE, {HQ * SQ, SQ - 1, 1, 1}, 0},
    /* valid layouts, and buffers one element short of them */
    [VS_OUT_BSHD] = {T_OUT, {SQ * HQ * DV, DV, HQ * DV, 1}, 0},
    [VS_OUT_PADDED] =
        {T_OUT, {HQ * SQ * (DV + 2), SQ * (DV + 2), DV + 2, 1}, 0},
    [VS_OUT_PADDED_SHORT] =
        {T_OUT, {HQ * SQ * (DV + 2), SQ * (DV + 2), DV + 2, 1}, -1},
    [VS_Q_BSHD] = {T_Q, {SQ * HQ * D, D, HQ * D, 1}, 0},
    [VS_Q_BSHD_SHORT] = {T_Q, {SQ * HQ * D, D, HQ * D, 1}, -1},
    [VS_K_BATCH_0] = {T_K, {0, SKV * D, D, 1}, 0},
    [VS_K_BATCH_0_SHORT] = {T_K, {0, SKV * D, D, 1}, -1},
    [VS_V_BATCH_0] = {T_V, {0, SKV * DV, DV, 1}, 0},
    [VS_Q_HEAD_0] = {T_Q, {SQ * D, 0, D, 1}, 0},
    [VS_MASK_BATCH_0] = {T_MASK_BOOL, {0, SQ * SKV, SKV, 1}, 0},
    [VS_LSE_BSH] = {T_LSE, {SQ * HQ, 1, HQ, 1}, 0},
    [VS_PROBS_PADDED] =
        {T_PROBS, {HQ * SQ * (SKV + 1), SQ * (SKV + 1), SKV + 1, 1}, 0},
    [VS_PROBS_PADDED_SHORT] =
        {T_PROBS, {HQ * SQ * (SKV + 1), SQ * (SKV + 1), SKV + 1, 1}, -1},
};
/* clang-format on */

static void strided(dev_call *c, long arg)
{
    const view_spec *vs = &view_specs[arg];
    enable(c, vs->which);
    size_t dims[4];
    tensor_dims(&c->desc, vs->which, dims);
    size_t n = (size_t)((long)view_reach(dims, 0, vs->strides) + vs->extra);
    cl_mem mem = new_buffer(c, n * elem_size(vs->which), fill_of(vs->which));
    clattn_tensor *t = tensor_of(c, vs->which);
    t->buffer = mem;
    t->offset = 0;
    memcpy(t->strides, vs->strides, sizeof t->strides);
}

/* Views whose extent overflows size_t. */
static void huge_view(dev_call *c, long arg)
{
    switch (arg) {
    case 0: c->t.q.strides[0] = SIZE_MAX / 2; break;
    case 1: c->t.out.offset = SIZE_MAX; break;
    case 2: /* elements fit, bytes do not */
        enable(c, T_LSE);
        c->t.lse.offset = SIZE_MAX / 4;
        break;
    case 3: c->t.k.strides[2] = SIZE_MAX / 4; break;
    }
}

/* Two tensors in one new buffer: a at element 0, b right after a, or
   overlapping a's last element (PAIR(a, b, 1)). Both float. */
#define PAIR(a, b, overlap) ((long)(a)*100 + (b)*10 + (overlap))
static void share(dev_call *c, long arg)
{
    int a = (int)(arg / 100), b = (int)(arg / 10 % 10),
        overlap = (int)(arg % 10);
    enable(c, a);
    enable(c, b);
    size_t na = tensor_count(&c->desc, a), nb = tensor_count(&c->desc, b);
    size_t off_b = na - (size_t)overlap;
    cl_mem mem = new_buffer(c, (off_b + nb) * sizeof(float), FILL_DATA);
    size_t dims[4];
    tensor_dims(&c->desc, a, dims);
    clattn_tensor_contiguous(tensor_of(c, a), mem, 0, dims);
    tensor_dims(&c->desc, b, dims);
    clattn_tensor_contiguous(tensor_of(c, b), mem, off_b, dims);
}

/* A bool mask (1-byte elements) and out (4-byte elements) in one buffer:
   arg 0 puts the mask's bytes inside out's bytes, arg 1 puts the mask's
   bytes first and out after them, disjoint. Offsets count elements of each
   view's own type, so any overlap test must compare bytes. */
static void bool_mask_and_out(dev_call *c, long arg)
{
    enable(c, T_MASK_BOOL);
    size_t n_out = tensor_count(&c->desc, T_OUT);
    size_t n_mask = tensor_count(&c->desc, T_MASK_BOOL);
    size_t mask_byte, out_elem, bytes;
    if (arg == 0) {
        out_elem = 0;      /* out: bytes [0, 4 n_out) */
        mask_byte = n_out; /* mask: [n_out, n_out + n_mask), inside */
        bytes = 4 * n_out;
        CHECK(n_out + n_mask <= bytes, "case setup: mask not inside out");
    } else {
        mask_byte = 0;               /* mask: bytes [0, n_mask) */
        out_elem = (n_mask + 3) / 4; /* out: from byte 4*ceil(n_mask/4) */
        bytes = 4 * (out_elem + n_out);
    }
    cl_mem mem = new_buffer(c, bytes, FILL_MASK);
    size_t dims[4];
    tensor_dims(&c->desc, T_MASK_BOOL, dims);
    clattn_tensor_contiguous(&c->t.mask, mem, mask_byte, dims);
    tensor_dims(&c->desc, T_OUT, dims);
    clattn_tensor_contiguous(&c->t.out, mem, out_elem, dims);
}

/* Inputs may share memory: v reads the first Dv features of k's rows. */
static void v_inside_k(dev_call *c, long arg)
{
    (void)arg;
    c->t.v.buffer = c->t.k.buffer;
    c->t.v.offset = 0;
    memcpy(c->t.v.strides, c->t.k.strides, sizeof c->t.v.strides);
}

/* A buffer of another cl_context (same device), exactly the needed size. */
static void foreign(dev_call *c, long which)
{
    enable(c, (int)which);
    size_t dims[4];
    tensor_dims(&c->desc, (int)which, dims);
    cl_mem mem = new_buffer_in(c, g_foreign_ctx, g_foreign_queue,
                               small_count(dims) * elem_size((int)which),
                               fill_of((int)which));
    clattn_tensor_contiguous(tensor_of(c, (int)which), mem, 0, dims);
}

enum {
    W_ONE_NULL,
    W_ZERO_LIST,
    W_TWO_NULL,
    W_COMPLETED_EVENT,
    W_NULL_EVENT,
    W_SECOND_NULL,
    W_FOREIGN_EVENT
};
static void wait_list(dev_call *c, long arg)
{
    static cl_event list[2];
    cl_int err;
    /* A foreign event is left incomplete: accepted, the call would hang. */
    c->user_event = clCreateUserEvent(
        arg == W_FOREIGN_EVENT ? g_foreign_ctx : g_info.cl_ctx, &err);
    CHECK(err == CL_SUCCESS, "clCreateUserEvent: %d", (int)err);
    if (arg != W_FOREIGN_EVENT)
        clSetUserEventStatus(c->user_event, CL_COMPLETE);
    list[0] = c->user_event;
    list[1] = NULL;
    switch (arg) {
    case W_ONE_NULL: c->num_wait = 1, c->wait = NULL; break;
    case W_ZERO_LIST: c->num_wait = 0, c->wait = &c->user_event; break;
    case W_TWO_NULL: c->num_wait = 2, c->wait = NULL; break;
    case W_COMPLETED_EVENT: c->num_wait = 1, c->wait = &c->user_event; break;
    case W_NULL_EVENT: c->num_wait = 1, c->wait = &list[1]; break;
    case W_SECOND_NULL: c->num_wait = 2, c->wait = list; break;
    case W_FOREIGN_EVENT: c->num_wait = 1, c->wait = &c->user_event; break;
    }
}

/* A buffer whose CL_MEM_FLAGS forbid the access the kernels make: an
   output created CL_MEM_READ_ONLY, an input CL_MEM_WRITE_ONLY. */
static void access_flags(dev_call *c, long which)
{
    enable(c, (int)which);
    size_t dims[4];
    tensor_dims(&c->desc, (int)which, dims);
    const size_t bytes = small_count(dims) * elem_size((int)which);
    /* A tracked buffer (its initial bytes are kept to check for writes),
       then swapped for a flagged one with the same bytes. */
    new_buffer(c, bytes, fill_of((int)which));
    cl_int err;
    const cl_mem_flags flags =
        is_output((int)which) ? CL_MEM_READ_ONLY : CL_MEM_WRITE_ONLY;
    tracked *t = &c->bufs[c->nbufs - 1];
    cl_mem mem = clCreateBuffer(g_info.cl_ctx, flags | CL_MEM_COPY_HOST_PTR,
                                bytes, t->init, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer (flags): %d", (int)err);
    clReleaseMemObject(t->mem);
    t->mem = mem;
    clattn_tensor_contiguous(tensor_of(c, (int)which), mem, 0, dims);
}

static void set_path(dev_call *c, long arg)
{
    c->path = (clattn_sdpa_path)arg;
}

/* clang-format off */
#define SIZE_CASES(W, NAME)                                                    \
    {NAME ": 1-element buffer", buffer_size, SIZE_ARG(W, S_ONE),               \
     CLATTN_ERROR_BUFFER_TOO_SMALL},                                           \
    {NAME ": needed-1 elements", buffer_size, SIZE_ARG(W, S_SHORT),            \
     CLATTN_ERROR_BUFFER_TOO_SMALL},                                           \
    {NAME ": needed elements", buffer_size, SIZE_ARG(W, S_EXACT),              \
     CLATTN_SUCCESS},                                                          \
    {NAME ": needed elements, offset 1", buffer_size,                          \
     SIZE_ARG(W, S_OFFSET_PAST), CLATTN_ERROR_BUFFER_TOO_SMALL},               \
    {NAME ": needed+3 elements, offset 3", buffer_size,                        \
     SIZE_ARG(W, S_OFFSET_FITS), CLATTN_SUCCESS}
/* clang-format on */

static const dev_case dev_cases[] = {
    {"NULL ctx", dev_null, N_CTX, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL desc", dev_null, N_DESC, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL tensors", dev_null, N_TENSORS, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL q buffer", dev_null, N_Q, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL k buffer", dev_null, N_K, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL v buffer", dev_null, N_V, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL out buffer", dev_null, N_OUT, CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL mask buffer, bool mask_type", dev_null, N_MASK_BOOL,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"NULL mask buffer, additive mask_type", dev_null, N_MASK_ADD,
     CLATTN_ERROR_INVALID_ARGUMENT},
    /* "needed" = what the (contiguous) view reaches. */
    SIZE_CASES(T_Q, "q"),
    SIZE_CASES(T_K, "k"),
    SIZE_CASES(T_V, "v"),
    SIZE_CASES(T_MASK_BOOL, "bool mask [B,1,Sq,Skv]"),
    SIZE_CASES(T_MASK_ADD, "additive mask [1,Hq,1,Skv]"),
    SIZE_CASES(T_OUT, "out"),
    SIZE_CASES(T_PROBS, "probs"),
    SIZE_CASES(T_LSE, "lse"),
    /* "needed" of strided views. */
    {"q BSHD, buffer = reach", strided, VS_Q_BSHD, CLATTN_SUCCESS},
    {"q BSHD, buffer = reach-1", strided, VS_Q_BSHD_SHORT,
     CLATTN_ERROR_BUFFER_TOO_SMALL},
    {"k batch stride 0, buffer = one batch", strided, VS_K_BATCH_0,
     CLATTN_SUCCESS},
    {"k batch stride 0, buffer = one batch - 1", strided, VS_K_BATCH_0_SHORT,
     CLATTN_ERROR_BUFFER_TOO_SMALL},
    {"out padded rows, buffer = reach", strided, VS_OUT_PADDED, CLATTN_SUCCESS},
    {"out padded rows, buffer = reach-1", strided, VS_OUT_PADDED_SHORT,
     CLATTN_ERROR_BUFFER_TOO_SMALL},
    {"probs padded rows, buffer = reach", strided, VS_PROBS_PADDED,
     CLATTN_SUCCESS},
    {"probs padded rows, buffer = reach-1", strided, VS_PROBS_PADDED_SHORT,
     CLATTN_ERROR_BUFFER_TOO_SMALL},
    /* Feature stride must be 1. */
    {"q feature stride 2", strided, VS_Q_FEATURE_2,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"k feature stride 0", strided, VS_K_FEATURE_0,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"v feature stride 2", strided, VS_V_FEATURE_2,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out feature stride 2", strided, VS_OUT_FEATURE_2,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs feature stride 2", strided, VS_PROBS_FEATURE_2,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"bool mask feature stride 2", strided, VS_MASK_FEATURE_2,
     CLATTN_ERROR_INVALID_ARGUMENT},
    /* Outputs must not overlap themselves. */
    {"out seq stride Dv-1", strided, VS_OUT_SEQ_SHORT,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out head stride 0", strided, VS_OUT_HEAD_0,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out batch stride 0", strided, VS_OUT_BATCH_0,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out seq stride 0", strided, VS_OUT_SEQ_0, CLATTN_ERROR_INVALID_ARGUMENT},
    {"out head stride Sq*Dv-1", strided, VS_OUT_HEAD_SHORT,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs seq stride 0", strided, VS_PROBS_SEQ_0,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs seq stride Skv-1", strided, VS_PROBS_SEQ_SHORT,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"lse seq stride 0", strided, VS_LSE_SEQ_0, CLATTN_ERROR_INVALID_ARGUMENT},
    {"lse head stride Sq-1", strided, VS_LSE_HEAD_SHORT,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out BSHD", strided, VS_OUT_BSHD, CLATTN_SUCCESS},
    {"lse [B,S,H] order", strided, VS_LSE_BSH, CLATTN_SUCCESS},
    /* Inputs broadcast with stride 0. */
    {"v batch stride 0", strided, VS_V_BATCH_0, CLATTN_SUCCESS},
    {"q head stride 0", strided, VS_Q_HEAD_0, CLATTN_SUCCESS},
    {"bool mask batch stride 0", strided, VS_MASK_BATCH_0, CLATTN_SUCCESS},
    /* Extents that overflow size_t. */
    {"q batch stride SIZE_MAX/2", huge_view, 0, CLATTN_ERROR_SIZE_OVERFLOW},
    {"out offset SIZE_MAX", huge_view, 1, CLATTN_ERROR_SIZE_OVERFLOW},
    {"lse offset SIZE_MAX/4 (bytes overflow)", huge_view, 2,
     CLATTN_ERROR_SIZE_OVERFLOW},
    {"k seq stride SIZE_MAX/4", huge_view, 3, CLATTN_ERROR_SIZE_OVERFLOW},
    /* Outputs must not alias inputs or each other. */
    {"out overlaps q's last element", share, PAIR(T_Q, T_OUT, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out right after q, same buffer", share, PAIR(T_Q, T_OUT, 0),
     CLATTN_SUCCESS},
    {"q overlaps out's last element", share, PAIR(T_OUT, T_Q, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out overlaps k", share, PAIR(T_K, T_OUT, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out overlaps v", share, PAIR(T_V, T_OUT, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs overlaps q", share, PAIR(T_Q, T_PROBS, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs overlaps v", share, PAIR(T_V, T_PROBS, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"lse overlaps k", share, PAIR(T_K, T_LSE, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs overlaps out", share, PAIR(T_OUT, T_PROBS, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"lse overlaps probs", share, PAIR(T_PROBS, T_LSE, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out and lse adjacent, same buffer", share, PAIR(T_OUT, T_LSE, 0),
     CLATTN_SUCCESS},
    {"additive mask overlaps out", share, PAIR(T_MASK_ADD, T_OUT, 1),
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"bool mask bytes inside out's bytes", bool_mask_and_out, 0,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"bool mask bytes before out's, disjoint", bool_mask_and_out, 1,
     CLATTN_SUCCESS},
    {"v a view into k's buffer (inputs may alias)", v_inside_k, 0,
     CLATTN_SUCCESS},
    /* Buffers of another cl_context. */
    {"q from another cl_context", foreign, T_Q, CLATTN_ERROR_INVALID_ARGUMENT},
    {"k from another cl_context", foreign, T_K, CLATTN_ERROR_INVALID_ARGUMENT},
    {"v from another cl_context", foreign, T_V, CLATTN_ERROR_INVALID_ARGUMENT},
    {"mask from another cl_context", foreign, T_MASK_BOOL,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"out from another cl_context", foreign, T_OUT,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs from another cl_context", foreign, T_PROBS,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"lse from another cl_context", foreign, T_LSE,
     CLATTN_ERROR_INVALID_ARGUMENT},
    /* Wait list and path. */
    {"wait list: 1 event, NULL list", wait_list, W_ONE_NULL,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"wait list: 2 events, NULL list", wait_list, W_TWO_NULL,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"wait list: 0 events, non-NULL list", wait_list, W_ZERO_LIST,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"wait list: 1 completed user event", wait_list, W_COMPLETED_EVENT,
     CLATTN_SUCCESS},
    {"wait list: {NULL}", wait_list, W_NULL_EVENT,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"wait list: {event, NULL}", wait_list, W_SECOND_NULL,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"wait list: a user event of another cl_context", wait_list,
     W_FOREIGN_EVENT, CLATTN_ERROR_INVALID_ARGUMENT},
    {"out created CL_MEM_READ_ONLY", access_flags, T_OUT,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"probs created CL_MEM_READ_ONLY", access_flags, T_PROBS,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"lse created CL_MEM_READ_ONLY", access_flags, T_LSE,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"q created CL_MEM_WRITE_ONLY", access_flags, T_Q,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"k created CL_MEM_WRITE_ONLY", access_flags, T_K,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"v created CL_MEM_WRITE_ONLY", access_flags, T_V,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"bool mask created CL_MEM_WRITE_ONLY", access_flags, T_MASK_BOOL,
     CLATTN_ERROR_INVALID_ARGUMENT},
    {"path UNFUSED", set_path, CLATTN_SDPA_PATH_UNFUSED, CLATTN_SUCCESS},
    {"path = 5", set_path, 5, CLATTN_ERROR_INVALID_ARGUMENT},
    {"path = -1", set_path, -1, CLATTN_ERROR_INVALID_ARGUMENT},
    {"path = 1000", set_path, 1000, CLATTN_ERROR_INVALID_ARGUMENT},
};
#define N_DEV_CASES (sizeof dev_cases / sizeof dev_cases[0])

/* ------------------------------------------------------------------------ */
/* Stand-alone checks                                                        */
/* ------------------------------------------------------------------------ */

/* k and v with batch stride 0 give exactly what explicit per-batch copies
   give. */
static void test_broadcast_matches_copies(void)
{
    const size_t nk1 = HKV * SKV * D, nv1 = HKV * SKV * DV;
    const size_t n_out = B * HQ * SQ * DV;
    float *results[2];
    for (int copies = 0; copies < 2; ++copies) {
        dev_call c;
        dev_call_init(&c, 77);
        size_t dk[4], dv[4], sk[4], sv[4];
        tensor_dims(&c.desc, T_K, dk);
        tensor_dims(&c.desc, T_V, dv);
        contiguous_strides(dk, sk);
        contiguous_strides(dv, sv);
        size_t reps = copies ? B : 1;
        float *kh = malloc(reps * nk1 * sizeof *kh);
        float *vh = malloc(reps * nv1 * sizeof *vh);
        for (size_t r = 0; r < reps; ++r) {
            memcpy(kh + r * nk1, g_k, nk1 * sizeof *kh);
            memcpy(vh + r * nv1, g_v, nv1 * sizeof *vh);
        }
        cl_int e1, e2;
        c.t.k.buffer = clCreateBuffer(g_info.cl_ctx,
                                      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                      reps * nk1 * sizeof *kh, kh, &e1);
        c.t.v.buffer = clCreateBuffer(g_info.cl_ctx,
                                      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                      reps * nv1 * sizeof *vh, vh, &e2);
        CHECK(e1 == CL_SUCCESS && e2 == CL_SUCCESS, "clCreateBuffer: %d %d",
              (int)e1, (int)e2);
        memcpy(c.t.k.strides, sk, sizeof sk);
        memcpy(c.t.v.strides, sv, sizeof sv);
        if (!copies)
            c.t.k.strides[0] = c.t.v.strides[0] = 0;
        cl_event done = NULL;
        clattn_status s = clattn_sdpa(g_ctx, &c.desc, &c.t,
                                      CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
        CHECK(s == CLATTN_SUCCESS, "broadcast k/v (%s): %s: %s",
              copies ? "copies" : "stride 0", clattn_status_string(s),
              clattn_context_last_error(g_ctx));
        results[copies] = malloc(n_out * sizeof(float));
        memset(results[copies], 0, n_out * sizeof(float));
        if (s == CLATTN_SUCCESS) {
            clWaitForEvents(1, &done);
            clReleaseEvent(done);
            clEnqueueReadBuffer(g_info.queue, c.t.out.buffer, CL_TRUE, 0,
                                n_out * sizeof(float), results[copies], 0, NULL,
                                NULL);
        }
        clReleaseMemObject(c.t.k.buffer);
        clReleaseMemObject(c.t.v.buffer);
        free(kh), free(vh);
        dev_call_release(&c);
    }
    double *want = to_double(results[1], n_out);
    CHECK(compare_close("broadcast", results[0], want, n_out, 0.0, 0.0) == 0,
          "k/v batch stride 0 vs explicit copies");
    free(want);
    free(results[0]), free(results[1]);
    ++g_valid_cases;
}

/* A context that failed to create answers only last_error and destroy:
   every op rejects it without touching its error text or any output. */
static void test_failed_context(void)
{
    clattn_context_options opts;
    clattn_context_options_init(&opts);
    opts.device = "no-such-device-xyz";
    for (int no_fallback = 0; no_fallback < 2; ++no_fallback) {
        opts.no_fallback = no_fallback;
        clattn_context *bad = NULL;
        clattn_status s = clattn_context_create(&opts, &bad);
        ++g_error_cases;
        CHECK(s == CLATTN_ERROR_NO_DEVICE,
              "create 'no-such-device-xyz' (no_fallback %d): got %s",
              no_fallback, clattn_status_string(s));
        CHECK(bad != NULL, "a failed create must return a context for "
                           "last_error");
        if (!bad)
            continue;
        char before[4096];
        snprintf(before, sizeof before, "%s", clattn_context_last_error(bad));
        CHECK(strstr(before, "no-such-device-xyz") != NULL &&
                  strstr(before, g_info.device_name) != NULL,
              "the NO_DEVICE text names neither the selector nor the devices: "
              "'%s'",
              before);

        clattn_sdpa_desc d;
        base_desc(&d);
        float *out = guarded_alloc(B * HQ * SQ * DV);
        float *probs = guarded_alloc(B * HQ * SQ * SKV);
        s = clattn_sdpa_host(bad, &d, g_q, g_k, g_v, NULL, out, probs);
        ++g_error_cases, ++g_calls;
        CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT,
              "clattn_sdpa_host on a failed context: got %s",
              clattn_status_string(s));
        CHECK(guarded_untouched(out, B * HQ * SQ * DV) &&
                  guarded_untouched(probs, B * HQ * SQ * SKV),
              "clattn_sdpa_host on a failed context wrote its outputs");
        CHECK(strcmp(clattn_context_last_error(bad), before) == 0,
              "clattn_sdpa_host changed a failed context's error text");
        guarded_free(out);
        guarded_free(probs);

        dev_call c;
        dev_call_init(&c, 5);
        cl_event done = NULL;
        s = clattn_sdpa(bad, &c.desc, &c.t, CLATTN_SDPA_PATH_AUTO, 0, NULL,
                        &done);
        ++g_error_cases, ++g_calls;
        CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && done == NULL,
              "clattn_sdpa on a failed context: got %s",
              clattn_status_string(s));
        dev_check_unchanged("clattn_sdpa on a failed context", &c);
        dev_call_release(&c);
        CHECK(strcmp(clattn_context_last_error(bad), before) == 0,
              "clattn_sdpa changed a failed context's error text");

        clattn_info info, untouched;
        memset(&info, 0xA5, sizeof info);
        memcpy(&untouched, &info, sizeof info);
        s = clattn_context_info(bad, &info);
        ++g_error_cases;
        CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT,
              "clattn_context_info on a failed context: got %s",
              clattn_status_string(s));
        CHECK(memcmp(&info, &untouched, sizeof info) == 0,
              "clattn_context_info on a failed context wrote info");
        CHECK(strcmp(clattn_context_last_error(bad), before) == 0,
              "clattn_context_info changed a failed context's error text");
        clattn_context_destroy(bad);
    }

    clattn_info info;
    CHECK(clattn_context_info(NULL, &info) == CLATTN_ERROR_INVALID_ARGUMENT,
          "clattn_context_info(NULL ctx)");
    CHECK(clattn_context_info(g_ctx, NULL) == CLATTN_ERROR_INVALID_ARGUMENT,
          "clattn_context_info(NULL info)");
    CHECK(clattn_context_create(&opts, NULL) == CLATTN_ERROR_INVALID_ARGUMENT,
          "clattn_context_create(NULL out)");
    clattn_context *none = (clattn_context *)&info; /* must be overwritten */
    CHECK(clattn_context_create_from_queue(NULL, &none) ==
                  CLATTN_ERROR_INVALID_ARGUMENT &&
              none == NULL,
          "clattn_context_create_from_queue(NULL queue)");
    const char *null_text = clattn_context_last_error(NULL);
    CHECK(null_text != NULL && null_text[0] != '\0',
          "last_error(NULL) must be a static non-empty text");
    clattn_context_destroy(NULL);
    g_error_cases += 4;
}

static void test_status_strings(void)
{
    static const clattn_status all[] = {
        CLATTN_SUCCESS,
        CLATTN_ERROR_INVALID_ARGUMENT,
        CLATTN_ERROR_INVALID_SHAPE,
        CLATTN_ERROR_BUFFER_TOO_SMALL,
        CLATTN_ERROR_UNSUPPORTED,
        CLATTN_ERROR_NO_DEVICE,
        CLATTN_ERROR_BUILD_FAILED,
        CLATTN_ERROR_OUT_OF_MEMORY,
        CLATTN_ERROR_OPENCL,
        CLATTN_ERROR_BLAS,
        CLATTN_ERROR_SIZE_OVERFLOW,
    };
    const size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; ++i) {
        const char *name = clattn_status_string(all[i]);
        CHECK(name != NULL && name[0] != '\0' &&
                  strcmp(name, "unknown status") != 0,
              "status %d has no name", (int)all[i]);
        for (size_t j = 0; name && j < i; ++j)
            CHECK(strcmp(name, clattn_status_string(all[j])) != 0,
                  "statuses %d and %d share the name '%s'", (int)all[i],
                  (int)all[j], name);
    }
    static const int undefined[] = {1,   2,     -11,     -12,
                                    100, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof undefined / sizeof undefined[0]; ++i) {
        const char *name = clattn_status_string((clattn_status)undefined[i]);
        CHECK(name != NULL && strcmp(name, "unknown status") == 0,
              "undefined status %d is named '%s'", undefined[i],
              name ? name : "(null)");
    }
}

/* ------------------------------------------------------------------------ */

static void setup(void)
{
    g_ctx = test_context();
    clattn_status s = clattn_context_info(g_ctx, &g_info);
    CHECK(s == CLATTN_SUCCESS, "clattn_context_info: %s",
          clattn_status_string(s));
    test_rng r = test_rng_make(42);
    test_fill(&r, g_q, CAP, -1.0, 1.0);
    test_fill(&r, g_k, CAP, -1.0, 1.0);
    test_fill(&r, g_v, CAP, -1.0, 1.0);
    test_fill(&r, g_mask_add, CAP, -2.0, 1.0);
    for (size_t i = 0; i < CAP; ++i)
        g_mask_bool[i] = test_rng_uniform(&r, 0.0, 1.0) < 0.8;
    clattn_sdpa_desc d;
    base_desc(&d);
    ref_sdpa(&d, g_q, g_k, g_v, NULL, g_base_out, g_base_probs, NULL);

    cl_int err;
    g_foreign_ctx = clCreateContext(NULL, 1, &g_info.device, NULL, NULL, &err);
    CHECK(err == CL_SUCCESS, "second clCreateContext: %d", (int)err);
    g_foreign_queue =
        clCreateCommandQueue(g_foreign_ctx, g_info.device, 0, &err);
    CHECK(err == CL_SUCCESS, "second clCreateCommandQueue: %d", (int)err);
    CHECK(g_foreign_ctx != g_info.cl_ctx, "the second cl_context is the same");
}

int main(void)
{
    double t0 = now_seconds();
    setup();
    test_status_strings();

    for (size_t i = 0; i < N_DESC_CASES; ++i) {
        host_case hc = {desc_cases[i].name, host_apply_desc_case, (long)i,
                        desc_cases[i].expect};
        run_host_case(&hc);
    }
    for (size_t i = 0; i < N_HOST_CASES; ++i)
        run_host_case(&host_cases[i]);

    for (size_t i = 0; i < N_DESC_CASES; ++i) {
        dev_case dc = {desc_cases[i].name, dev_apply_desc_case, (long)i,
                       desc_cases[i].expect};
        run_dev_case(&dc);
    }
    for (size_t i = 0; i < N_DEV_CASES; ++i)
        run_dev_case(&dev_cases[i]);

    test_broadcast_matches_copies();
    test_failed_context();
    check_usable("the whole suite");

    clReleaseCommandQueue(g_foreign_queue);
    clReleaseContext(g_foreign_ctx);
    clattn_context_destroy(g_ctx);
    printf("%u error cases, %u valid variants (tables: %zu descriptor cases "
           "run on both APIs, %zu host, %zu device), %u SDPA calls (+%u "
           "usability checks), %.2f s\n",
           g_error_cases, g_valid_cases, N_DESC_CASES, N_HOST_CASES,
           N_DEV_CASES, g_calls, g_usable_checks, now_seconds() - t0);
    return test_finish("test_sdpa_errors");
}
