/* libFuzzer harness over the SDPA entry points clattn_sdpa_host,
   clattn_sdpa and clattn_sdpa_on_queue: random descriptors (every field,
   out-of-range values included), small data, and for the device entry
   points random views (offsets, strides, buffer sizes, shared and foreign
   buffers), wait lists, events and queues.

   The oracle, for every call made:
   - the status is one of the documented clattn_status values, and it is
     the one docs/api.md (sections 5 and 6: the checks and their order)
     gives for the input, which the harness predicts from the decoded
     input. The one latitude: an output view that is in fact one-to-one
     (checked by brute force) may still be rejected as overlapping
     (INVALID_ARGUMENT) where the library's sufficient check (strides
     sorted, each past the reach of the inner ones: src/core/tensor_view.c)
     does not prove it; those rejections are counted, not failed. And one
     known discrepancy, also counted and reported at exit: the table of
     docs/api.md section 6 lists the on_queue queue check after the view
     checks, src/sdpa/sdpa.c makes it right after the wait-list check, so a
     foreign queue with a bad view is accepted as INVALID_ARGUMENT too;
   - a fused call whose packed K/V (CPU-class variant, seq_q > 8) would
     exceed max_alloc_bytes or overflow size_t is UNSUPPORTED: explicit
     strides of 0 (layout 5) give inputs of tiny buffers and huge logical
     shapes, which the library must size with checked arithmetic (the
     seed huge_broadcast_reported_overflow is the heap overflow of issue
     11, whose 1.2 GB out is over BUF_CAP here; tests/test_sdpa_sizes.c
     runs it with a real out);
   - last_error is "" after a success and not empty after a failure;
   - on failure: the host outputs (with 64 guard floats each side) are
     untouched, every device buffer reads back unchanged, and *event is not
     written;
   - on success: host guards intact; device bytes outside the output
     elements unchanged; the event completes; and when the inputs are
     finite and small (|q|, |k|, |v| <= 1, additive mask in [-2, 2] or -inf,
     |scale| <= 4, dropout_p <= 0.95, head_dim <= 32, seq_kv <= 4096) out,
     probs and lse equal the double-precision reference (reference/reference.c)
     within 1e-5 + 1e-4*|ref| (infinities exactly), as the test suites
     require (docs/testing.md).
   A violation prints what happened and the decoded input, then aborts, so
   libFuzzer records the input as a crash.

   Problems stay tiny when they are valid: a decoded dimension is 0..8
   unless its byte asks for a special (huge) value, and a call whose
   problem is valid is only made when its work, batch*heads_q*seq_q*seq_kv
   *(head_dim + head_dim_v), is at most WORK_MAX (and on the context with
   the 64-byte scratch, batch*heads_q*seq_q at most ROWS_SCRATCH_MAX: it
   enqueues 3 kernels per 2..16 rows), the fused-cpu path's packed K and V
   would take at most PACK_MAX bytes, and every host array has at most
   HOST_CAP elements. Huge descriptors are still passed whenever the
   library must reject them before reading the arrays that are too big to
   allocate (those are then small dummies: e.g. an overflowing shape, or a
   host array over max_alloc_bytes). Device buffers are at most BUF_CAP
   bytes.

   Created once, in LLVMFuzzerInitialize, so that no kernel build is paid
   per input: the clattn context ($CLATTN_DEVICE or auto), a second one on
   the same device with a 64-byte score scratch limit (the chunked path and
   its UNSUPPORTED case), a failed context (unmatched selector), a second
   queue of each, and another cl_context with a queue (foreign buffers and
   queue). Without an OpenCL device the harness exits with 77 (CTest:
   skipped). $FUZZ_SDPA_VERBOSE=1 prints every call's status.

   INPUT LAYOUT. Bytes are read in order; reading past the end gives 0.
   Multi-byte raw values are little-endian.

     mode      bit0: call clattn_sdpa_host      bit1: call the device API
               bit2: host asks for probs        bit3: key_lengths given
               bit4: use the context with the 64-byte scratch limit
               bit5: special values follow      bit6: host mask is NULL
               bit7: a NULLS byte follows
     [nulls]   (mode bit7) bits0-1: context 0/3 normal, 1 NULL, 2 a failed
               context; bit2: desc NULL; bit3: tensors NULL (device);
               bits4-7: host q, k, v, out NULL
     7 x DIM   batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v
     SCALE
     ENUM      causal
     ENUM      mask_type
     maskshape bits0-2: mask_dims[0..2] is 1 (broadcast) instead of batch,
               heads_q, seq_q; bits3-5 == 6: 4 x DIM follow, the raw
               mask_dims; == 7: mask_dims[3] = seq_kv + 1; else proper;
               bit6: a [rope] section follows [klens]
     DROPOUT   dropout_p
     SEED      dropout_seed
     SEED      dropout_offset
     data      seed of the data generator (q, k, v uniform in [-1, 1),
               bool mask 3/4 ones, additive mask in [-2, 2) with 1/8 -inf)
     [specials] (mode bit5) count c, then (c % 5) x 3 bytes: tensor (% 4:
               q, k, v, mask), index (% its element count), kind (% 8: NaN,
               +inf, -inf, 1e4, -1e4, 1e30, 1e-40, -0.0)
     [klens]   (mode bit3) one KL byte per batch entry when batch <= 64
               (a larger batch gets key_lengths = NULL)
     [rope]    (maskshape bit6) ENUM rope.style, DIM rope.rotary_dim,
               SCALE rope.theta, a flags byte (bit0: rope_k; bit1:
               rope_q_positions given, one POS byte per batch entry when
               batch <= 64 follows)
     [device]  (mode bit1)
       ENUM    path (% 6: auto, unfused, fused, fused-cpu, fused-gpu, and
               one invalid value)
       call    bits0-1: wait list: 0 none, 1 count 1 with a NULL list,
               2 count 0 with a non-NULL list, 3 gated by a user event
               completed after the call; bit2: ask for the event;
               bit3: probs wanted; bit4: lse wanted; bits5-6: 0 clattn_sdpa,
               else clattn_sdpa_on_queue with 1: NULL (the context's queue),
               2: a second queue of the context, 3: a queue of another
               cl_context
       7 x TENSOR  q, k, v, mask, out, probs, lse

     DIM     x < 0xC0: x % 9; 0xC0..0xEF: special[x & 15] (SIZE_MAX,
             SIZE_MAX/3, SIZE_MAX/4+1, SIZE_MAX/2+1, 2^32, INT32_MAX,
             INT32_MAX+1, 65535, 65536, 65537, 2^20, 46341, 3037000500,
             2^62, 13, 17); 0xF0..0xFF: 8 raw bytes follow
     SCALE   0: 0 (default); < 0xE0: (x % 33 - 16) / 8; 0xE0..0xEF: NaN,
             +inf, -inf, -0, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45, 1e10,
             -1e-10, sNaN, -NaN, 4, -4, 0, 1; 0xF0..0xFF: 4 raw bytes follow
     DROPOUT < 0x80: 0; < 0xE0: one of 0.1, 0.25, 0.5, 0.75, 0.9, 1e-10,
             2^-25, 3*2^-25, 0.99999994, 0.95 ((x - 0x80) % 10);
             0xE0..0xEF: NaN, +inf, -inf, -0, 1, -1e-3, 1.0000001, -NaN,
             2^-24, then 0.5; 0xF0..0xFF: 4 raw bytes follow
     ENUM    < 0xF0: x % 3; 0xF0: 3; 0xF1: 0xFFFFFFFF; 0xF2: 0x80000000;
             0xF3: 0x7FFFFFFF; else x
     SEED    < 0xF0: x * 0x9E3779B97F4A7C15 (seed) or x (offset); else 8 raw
     POS     < 0xF0: 97 * x; 0xF0: -1; 0xF1: 2^24 - seq_q (the last that
             fits); 0xF2: 2^24 - seq_q + 1; 0xF3: INT32_MAX; 0xF4:
             INT32_MIN; else 0 (all clamped to int32)
     KL      < 0xF0: x % (seq_kv + 1); 0xF0: -1; 0xF1: seq_kv + 1;
             0xF2: INT32_MIN; 0xF3: INT32_MAX; else seq_kv (all clamped to
             int32)
     TENSOR  slot byte: bits0-2: buffer slot 0..6 (tensors with the same
               slot share one cl_mem), 7: NULL buffer; bit3: the slot's
               buffer is created in a second cl_context (foreign)
             layout byte: bits0-2: strides: 0 contiguous, 1 BSHD-like
               {S*H*D, D, H*D, 1}, 2 padded (3 bytes follow: padding of the
               seq, head and batch strides, each % 8), 3 batch and head
               stride 0, 4 seq stride 0, 5 explicit (4 x STRIDE follow: b,
               h, s, f), 6 contiguous with feature stride 2, 7 head-major
               {S*D, B*S*D, D, 1};
               bits3-5: offset: 0, 1, 3, 16, 0, 0, a byte follows (that
               many elements), a byte x follows (SIZE_MAX - x);
               bits6-7: buffer size: 0 the view's exact extent; 1 exact +
               4*x (byte x follows); 2 exact - (1 + x % 16) bytes (byte x
               follows; at least 1); 3: 16*(x + 1) (byte x follows).
               Sizes are clamped to [1, BUF_CAP]; a slot's buffer has the
               largest size asked for by its tensors.
     STRIDE  < 0xE0: x; 0xE0..0xEF: special[x & 15] as for DIM; else 8 raw

   Reproduce a crash: ./fuzz_sdpa crash-<hash> (the decoded input is
   printed with the failure). */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv, strdup */

#include "reference.h"

#include "fuzz_common.h"

#include <clattn/clattn.h>

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_CAP ((size_t)1 << 20)   /* elements of any host array */
#define WORK_MAX ((size_t)1 << 20)   /* work of a call with a valid problem */
#define BUF_CAP ((size_t)1 << 18)    /* bytes of any device buffer */
#define STAGE_CAP ((size_t)64 << 20) /* bytes of a host call's staging */
#define ROWS_SCRATCH_MAX 512         /* see too_slow */
#define PACK_MAX ((size_t)1 << 30)   /* see too_slow */
#define KL_MAX 64                    /* key_lengths only up to this batch */
#define GUARD 64 /* guard floats each side of host outputs */
#define DUMMY 64 /* elements of the dummy host arrays */

enum { T_Q, T_K, T_V, T_M, T_O, T_P, T_L, T_COUNT };
static const char *const tensor_names[T_COUNT] = {"q",   "k",     "v",  "mask",
                                                  "out", "probs", "lse"};

/* ---------------------------------------------------------------------- */
/* Process-wide state, created once                                        */
/* ---------------------------------------------------------------------- */

static clattn_context *g_ctx[2]; /* [1]: scratch limit 64 B, probs recompute */
static clattn_info g_info[2];
static size_t g_scratch[2];
static clattn_sdpa_path g_variant[2];    /* each context's fused variant */
static clattn_context *g_failed;         /* a failed context (or NULL) */
static cl_context g_foreign;             /* a second cl_context, same device */
static cl_command_queue g_own_queue[2];  /* a second queue of each context */
static cl_command_queue g_foreign_queue; /* a queue of g_foreign */
static unsigned long g_calls, g_compared, g_conservative;
static int g_verbose; /* $FUZZ_SDPA_VERBOSE: print every call's status */

/* Whether the fused path takes these head dims (docs/api.md). */
static int fused_fits(const clattn_sdpa_desc *d)
{
    size_t dv = d->head_dim_v ? d->head_dim_v : d->head_dim;
    return d->head_dim <= 256 && dv <= 256;
}

static size_t scratch_limit(const clattn_info *in, const char *env)
{
    /* docs/api.md section 7 */
    size_t limit = (size_t)256 << 20;
    if (in->max_alloc_bytes < limit)
        limit = (size_t)in->max_alloc_bytes;
    if (in->global_mem_bytes / 4 < limit)
        limit = (size_t)(in->global_mem_bytes / 4);
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && v > 0 && v < limit)
            limit = (size_t)v;
    }
    return limit;
}

/* Sets name to value; returns its old value (NULL: unset) for
   env_restore. */
static char *env_swap(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *saved = old ? strdup(old) : NULL;
    setenv(name, value, 1);
    return saved;
}

static void env_restore(const char *name, char *saved)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static void print_stats(void)
{
    fprintf(stderr,
            "fuzz_sdpa: %lu API calls, %lu compared with the reference, %lu "
            "conservative overlap rejections\n",
            g_calls, g_compared, g_conservative);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    clattn_status s = clattn_context_create(NULL, &g_ctx[0]);
    if (s != CLATTN_SUCCESS) {
        fprintf(stderr, "fuzz_sdpa: no context: %s: %s\n",
                clattn_status_string(s), clattn_context_last_error(g_ctx[0]));
        clattn_context_destroy(g_ctx[0]);
        exit(s == CLATTN_ERROR_NO_DEVICE ? 77 : 1);
    }
    clattn_context_info(g_ctx[0], &g_info[0]);
    g_scratch[0] =
        scratch_limit(&g_info[0], getenv("CLATTN_UNFUSED_SCRATCH_BYTES"));
    g_variant[0] = clattn_sdpa_fused_variant(g_ctx[0]);

    /* The same device, with a 64-byte scratch limit: one row of more than
       16 keys is UNSUPPORTED without probs, and shorter rows are chunked;
       and with the fused-cpu path's recompute plan for probs, where the
       first context takes AUTO's (materialize nearly always). */
    char dev[32];
    snprintf(dev, sizeof dev, "%d:%d", g_info[0].platform_index,
             g_info[0].device_index);
    char *saved = env_swap("CLATTN_UNFUSED_SCRATCH_BYTES", "64");
    char *saved_plan = env_swap("CLATTN_SDPA_PROBS_PLAN", "recompute");
    clattn_context_options opts;
    clattn_context_options_init(&opts);
    opts.device = dev;
    opts.no_fallback = 1;
    s = clattn_context_create(&opts, &g_ctx[1]);
    env_restore("CLATTN_UNFUSED_SCRATCH_BYTES", saved);
    env_restore("CLATTN_SDPA_PROBS_PLAN", saved_plan);
    if (s != CLATTN_SUCCESS) {
        fprintf(stderr, "fuzz_sdpa: second context: %s: %s\n",
                clattn_status_string(s), clattn_context_last_error(g_ctx[1]));
        exit(1);
    }
    clattn_context_info(g_ctx[1], &g_info[1]);
    g_scratch[1] = scratch_limit(&g_info[1], "64");
    g_variant[1] = clattn_sdpa_fused_variant(g_ctx[1]);

    opts.device = "clattn-fuzz: no such device";
    s = clattn_context_create(&opts, &g_failed);
    if (s == CLATTN_SUCCESS) {
        fprintf(stderr, "fuzz_sdpa: an unmatched selector gave a context\n");
        exit(1);
    }

    cl_context_properties props[] = {
        CL_CONTEXT_PLATFORM, (cl_context_properties)g_info[0].platform, 0};
    cl_int err;
    g_foreign = clCreateContext(props, 1, &g_info[0].device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "fuzz_sdpa: clCreateContext (foreign): %d\n", err);
        exit(1);
    }
    g_foreign_queue =
        clCreateCommandQueue(g_foreign, g_info[0].device, 0, &err);
    for (int i = 0; i < 2 && err == CL_SUCCESS; ++i)
        g_own_queue[i] =
            clCreateCommandQueue(g_info[i].cl_ctx, g_info[i].device, 0, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "fuzz_sdpa: clCreateCommandQueue: %d\n", err);
        exit(1);
    }
    fprintf(stderr, "fuzz_sdpa: device %s / %s, scratch limits %zu and %zu\n",
            g_info[0].platform_name, g_info[0].device_name, g_scratch[0],
            g_scratch[1]);
    const char *verbose = getenv("FUZZ_SDPA_VERBOSE");
    g_verbose = verbose && *verbose && strcmp(verbose, "0") != 0;
    atexit(print_stats);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Failure reporting                                                       */
/* ---------------------------------------------------------------------- */

static char g_input_text[2048]; /* the decoded input, printed on failure */

#define fail(...) fuzz_fail("fuzz_sdpa", g_input_text, __VA_ARGS__)

static int documented(clattn_status s)
{
    return s == CLATTN_SUCCESS || (s <= CLATTN_ERROR_INVALID_ARGUMENT &&
                                   s >= CLATTN_ERROR_SIZE_OVERFLOW);
}

static const char *sname(clattn_status s)
{
    return clattn_status_string(s);
}

/* ---------------------------------------------------------------------- */
/* Input decoding                                                          */
/* ---------------------------------------------------------------------- */

static uint64_t rd64(reader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= (uint64_t)rd8(r) << (8 * i);
    return v;
}

static float rdf32(reader *r)
{
    uint32_t u = 0;
    for (int i = 0; i < 4; ++i)
        u |= (uint32_t)rd8(r) << (8 * i);
    return f32_bits(u);
}

static const size_t special_sizes[16] = {SIZE_MAX,
                                         SIZE_MAX / 3,
                                         SIZE_MAX / 4 + 1,
                                         SIZE_MAX / 2 + 1,
                                         (size_t)1 << 32,
                                         (size_t)INT32_MAX,
                                         (size_t)INT32_MAX + 1,
                                         65535,
                                         65536,
                                         65537,
                                         (size_t)1 << 20,
                                         46341,
                                         3037000500u,
                                         (size_t)1 << 62,
                                         13,
                                         17};

/* A size: bytes below small_end give x % mod, those up to 0xEF a special
   size, the rest a raw 64-bit value. */
static size_t dec_size(reader *r, uint8_t small_end, unsigned mod)
{
    uint8_t x = rd8(r);
    if (x < small_end)
        return x % mod;
    if (x < 0xF0)
        return special_sizes[x & 15];
    return (size_t)rd64(r);
}

static size_t dec_dim(reader *r)
{
    return dec_size(r, 0xC0, 9);
}

static size_t dec_stride(reader *r)
{
    return dec_size(r, 0xE0, 256); /* x itself */
}

static float dec_scale(reader *r)
{
    uint8_t x = rd8(r);
    if (x < 0xE0)
        return dec_scale_plain(x);
    switch (x) {
    case 0xE0: return NAN;
    case 0xE1: return INFINITY;
    case 0xE2: return -INFINITY;
    case 0xE3: return -0.0f;
    case 0xE4: return FLT_MAX;
    case 0xE5: return -FLT_MAX;
    case 0xE6: return FLT_MIN;
    case 0xE7: return f32_bits(1); /* the smallest denormal */
    case 0xE8: return 1e10f;
    case 0xE9: return -1e-10f;
    case 0xEA: return f32_bits(0x7F800001u); /* signalling NaN */
    case 0xEB: return f32_bits(0xFFC00000u); /* -NaN */
    case 0xEC: return 4.0f;
    case 0xED: return -4.0f;
    case 0xEE: return 0.0f;
    case 0xEF: return 1.0f;
    default: return rdf32(r);
    }
}

static float dec_dropout(reader *r)
{
    static const float table[10] = {0.1f,        0.25f,  0.5f,     0.75f,
                                    0.9f,        1e-10f, 0x1p-25f, 0x3p-25f,
                                    0.99999994f, 0.95f};
    uint8_t x = rd8(r);
    if (x < 0x80)
        return 0.0f;
    if (x < 0xE0)
        return table[(x - 0x80) % 10];
    switch (x) {
    case 0xE0: return NAN;
    case 0xE1: return INFINITY;
    case 0xE2: return -INFINITY;
    case 0xE3: return -0.0f;
    case 0xE4: return 1.0f;
    case 0xE5: return -1e-3f;
    case 0xE6: return 1.0000001f;
    case 0xE7: return f32_bits(0xFFC00000u);
    case 0xE8: return 0x1p-24f;
    case 0xE9:
    case 0xEA:
    case 0xEB:
    case 0xEC:
    case 0xED:
    case 0xEE:
    case 0xEF: return 0.5f;
    default: return rdf32(r);
    }
}

static uint64_t dec_seed(reader *r, uint64_t mul)
{
    uint8_t x = rd8(r);
    return x < 0xF0 ? x * mul : rd64(r);
}

static int32_t clamp_i32(size_t v)
{
    return v > (size_t)INT32_MAX ? INT32_MAX : (int32_t)v;
}

static int32_t dec_kl(reader *r, size_t seq_kv)
{
    uint8_t x = rd8(r);
    if (x < 0xF0)
        return seq_kv == SIZE_MAX ? x : clamp_i32(x % (seq_kv + 1));
    switch (x) {
    case 0xF0: return -1;
    case 0xF1: return clamp_i32(seq_kv == SIZE_MAX ? seq_kv : seq_kv + 1);
    case 0xF2: return INT32_MIN;
    case 0xF3: return INT32_MAX;
    default: return clamp_i32(seq_kv);
    }
}

static int32_t dec_pos(reader *r, size_t seq_q)
{
    const long limit = 1L << 24;
    const long rows = seq_q > (size_t)limit ? limit : (long)seq_q;
    uint8_t x = rd8(r);
    if (x < 0xF0)
        return 97 * (int32_t)x;
    switch (x) {
    case 0xF0: return -1;
    case 0xF1: return (int32_t)(limit - rows);
    case 0xF2: return (int32_t)(limit - rows + 1);
    case 0xF3: return INT32_MAX;
    case 0xF4: return INT32_MIN;
    default: return 0;
    }
}

/* Deterministic data: splitmix64. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_uniform(rng *g, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_next(g) >> 11) * 0x1.0p-53);
}

/* ---------------------------------------------------------------------- */
/* Sizes                                                                   */
/* ---------------------------------------------------------------------- */

/* Product of 4 sizes, saturating at SIZE_MAX (returns 1 on overflow). */
static int prod4(const size_t d[4], size_t *out)
{
    size_t p = 1;
    for (int i = 0; i < 4; ++i)
        if (__builtin_mul_overflow(p, d[i], &p)) {
            *out = SIZE_MAX;
            return 1;
        }
    *out = p;
    return 0;
}

static size_t sat_mul(size_t a, size_t b)
{
    size_t p;
    return __builtin_mul_overflow(a, b, &p) ? SIZE_MAX : p;
}

typedef struct problem {
    clattn_sdpa_desc d;
    size_t hkv, dv; /* resolved defaults */
    int mask_on;    /* mask_type is BOOL or ADDITIVE */
    size_t dims[T_COUNT][4];
    size_t count[T_COUNT]; /* element counts (SIZE_MAX when they overflow) */
    size_t work;
    int32_t kl[KL_MAX + 1];
    int32_t rope_pos[KL_MAX + 1];
} problem;

static void problem_shapes(problem *p)
{
    const clattn_sdpa_desc *d = &p->d;
    p->hkv = d->heads_kv ? d->heads_kv : d->heads_q;
    p->dv = d->head_dim_v ? d->head_dim_v : d->head_dim;
    p->mask_on = d->mask_type == CLATTN_MASK_BOOL ||
                 d->mask_type == CLATTN_MASK_ADDITIVE;
    const size_t B = d->batch, Hq = d->heads_q, Sq = d->seq_q, Skv = d->seq_kv,
                 D = d->head_dim;
    const size_t dims[T_COUNT][4] = {
        {B, Hq, Sq, D},
        {B, p->hkv, Skv, D},
        {B, p->hkv, Skv, p->dv},
        {d->mask_dims[0], d->mask_dims[1], d->mask_dims[2], d->mask_dims[3]},
        {B, Hq, Sq, p->dv},
        {B, Hq, Sq, Skv},
        {B, Hq, Sq, 1}};
    memcpy(p->dims, dims, sizeof dims);
    for (int t = 0; t < T_COUNT; ++t)
        prod4(p->dims[t], &p->count[t]);
    size_t dd;
    if (__builtin_add_overflow(D, p->dv, &dd))
        dd = SIZE_MAX;
    p->work = sat_mul(p->count[T_P], dd);
}

/* docs/api.md section 7a: the CPU-class fused variant packs K and V when
   seq_q > 8 or probs are wanted (K as B*Hkv*ceil(Skv/64)*64*D floats, V
   with its features padded to 64), and refuses a packed buffer over
   max_alloc_bytes (or whose size overflows) with UNSUPPORTED. With
   broadcast (stride-0) inputs these logical sizes are not bounded by any
   real buffer. */
/* The bytes of packed K and V (saturated). */
static void packed_bytes(const problem *p, size_t *k_bytes, size_t *v_bytes)
{
    const size_t keys = sat_mul((p->d.seq_kv + 63) / 64, 64);
    const size_t dv_pad = (p->dv + 63) / 64 * 64;
    const size_t bhk_keys = sat_mul(sat_mul(p->d.batch, p->hkv), keys);
    *k_bytes = sat_mul(sat_mul(bhk_keys, p->d.head_dim), 4);
    *v_bytes = sat_mul(sat_mul(bhk_keys, dv_pad), 4);
}

static int fused_packs_too_big(const problem *p, unsigned path, int ctx,
                               int probs)
{
    clattn_sdpa_path variant =
        path == CLATTN_SDPA_PATH_FUSED_CPU || path == CLATTN_SDPA_PATH_FUSED_GPU
            ? (clattn_sdpa_path)path
            : g_variant[ctx];
    if (variant != CLATTN_SDPA_PATH_FUSED_CPU || (p->d.seq_q <= 8 && !probs))
        return 0;
    size_t k_bytes, v_bytes;
    packed_bytes(p, &k_bytes, &v_bytes);
    const cl_ulong max = g_info[ctx].max_alloc_bytes;
    return k_bytes > max || v_bytes > max;
}

/* The rotary fields (docs/api.md section 4.4), checked last. */
static clattn_status predict_rope(const clattn_sdpa_desc *d)
{
    const clattn_rope *r = &d->rope;
    if (r->style == CLATTN_ROPE_NONE)
        return r->rotary_dim || r->theta != 0.0f || d->rope_q_positions ||
                       d->rope_k
                   ? CLATTN_ERROR_INVALID_ARGUMENT
                   : CLATTN_SUCCESS;
    const size_t rd = r->rotary_dim ? r->rotary_dim : d->head_dim;
    if ((r->style != CLATTN_ROPE_INTERLEAVED && r->style != CLATTN_ROPE_HALF) ||
        rd > d->head_dim || rd % 2 ||
        (r->theta != 0.0f && !(isfinite(r->theta) && r->theta >= 1.0f)))
        return CLATTN_ERROR_INVALID_ARGUMENT;
    const long limit = 1L << 24;
    for (size_t b = 0; b < d->batch; ++b) {
        const long at = d->rope_q_positions ? d->rope_q_positions[b] : 0;
        if (at < 0 || at + (long)d->seq_q > limit)
            return CLATTN_ERROR_INVALID_ARGUMENT;
    }
    if (d->rope_k && d->seq_kv > (size_t)limit)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    return CLATTN_SUCCESS;
}

/* The rotated copies of Q (and K with rope_k) exceed what one buffer may
   hold (broadcast views name more elements than their buffers): the
   rotary pre-pass refuses them with UNSUPPORTED. */
static int rope_copy_too_big(const problem *p, int ctx)
{
    if (p->d.rope.style == CLATTN_ROPE_NONE)
        return 0;
    const cl_ulong max = g_info[ctx].max_alloc_bytes;
    return sat_mul(p->count[T_Q], 4) > max ||
           (p->d.rope_k && sat_mul(p->count[T_K], 4) > max);
}

/* The status docs/api.md section 6 gives for the descriptor (the checks
   shared by both entry points, in their order). */
static clattn_status predict_desc(const problem *p)
{
    const clattn_sdpa_desc *d = &p->d;
    if ((unsigned)d->causal > CLATTN_CAUSAL_BOTTOM_RIGHT ||
        (unsigned)d->mask_type > CLATTN_MASK_ADDITIVE)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    if (!isfinite(d->scale))
        return CLATTN_ERROR_INVALID_ARGUMENT;
    if (!(d->dropout_p >= 0.0f && d->dropout_p < 1.0f))
        return CLATTN_ERROR_INVALID_ARGUMENT;
    if (p->mask_on) {
        const size_t full[4] = {d->batch, d->heads_q, d->seq_q, d->seq_kv};
        for (int i = 0; i < 4; ++i) {
            size_t m = d->mask_dims[i];
            if (!(m == full[i] || (i < 3 && m == 1)))
                return CLATTN_ERROR_INVALID_SHAPE;
        }
    }
    const size_t all[7] = {d->batch,  d->heads_q,  p->hkv, d->seq_q,
                           d->seq_kv, d->head_dim, p->dv};
    for (int i = 0; i < 7; ++i)
        if (all[i] == 0)
            return CLATTN_ERROR_INVALID_SHAPE;
    if (d->heads_q % p->hkv != 0)
        return CLATTN_ERROR_INVALID_SHAPE;
    const int counted[6] = {T_Q, T_K, T_V, T_O, T_P, T_M};
    for (int i = 0; i < 6; ++i) {
        if (counted[i] == T_M && !p->mask_on)
            continue;
        size_t n = p->count[counted[i]], bytes;
        if (n == SIZE_MAX || __builtin_mul_overflow(n, sizeof(float), &bytes))
            return CLATTN_ERROR_SIZE_OVERFLOW;
    }
    if (sat_mul(d->batch, d->heads_q) > (size_t)INT32_MAX)
        return CLATTN_ERROR_UNSUPPORTED;
    for (int i = 0; i < 7; ++i)
        if (all[i] > (size_t)INT32_MAX)
            return CLATTN_ERROR_UNSUPPORTED;
    if (d->key_lengths)
        for (size_t b = 0; b < d->batch; ++b)
            if (d->key_lengths[b] < 0 || (size_t)d->key_lengths[b] > d->seq_kv)
                return CLATTN_ERROR_INVALID_ARGUMENT;
    return predict_rope(d);
}

/* ---------------------------------------------------------------------- */
/* Data                                                                    */
/* ---------------------------------------------------------------------- */

typedef struct special {
    uint8_t tensor, index, kind;
} special;

typedef struct data {
    uint8_t seed;
    special sp[4];
    int nsp;
    int made;         /* the arrays below are filled (data_need) */
    float *q, *k, *v; /* contiguous, logical shapes; NULL when too large */
    void *mask;
    int comparable; /* the inputs are finite and small enough to compare */
} data;

/* Whether tensor t (q, k, v or mask) gets a logical array. */
static int data_has(const problem *p, int t)
{
    return p->count[t] <= HOST_CAP && (t != T_M || p->mask_on);
}

static float special_value(uint8_t kind)
{
    static const float values[8] = {NAN,   INFINITY, -INFINITY, 1e4f,
                                    -1e4f, 1e30f,    1e-40f,    -0.0f};
    return values[kind % 8];
}

/* Fills the logical q, k, v and mask (those data_has allows) and applies
   the special values; once, when a call first needs them. */
static void data_need(const problem *p, data *x)
{
    if (x->made)
        return;
    x->made = 1;
    const special *sp = x->sp;
    const int nsp = x->nsp;
    rng g = {0x5DEECE66Dull ^ ((uint64_t)x->seed << 32)};
    float **f[3] = {&x->q, &x->k, &x->v};
    for (int t = 0; t < 3; ++t)
        if (data_has(p, t)) {
            size_t n = p->count[t] ? p->count[t] : 1;
            *f[t] = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; ++i)
                (*f[t])[i] = rng_uniform(&g, -1.0f, 1.0f);
        }
    if (data_has(p, T_M)) {
        size_t n = p->count[T_M] ? p->count[T_M] : 1;
        if (p->d.mask_type == CLATTN_MASK_BOOL) {
            uint8_t *m = malloc(n);
            for (size_t i = 0; i < n; ++i)
                m[i] = (rng_next(&g) & 3) != 0;
            x->mask = m;
        } else {
            float *m = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; ++i)
                m[i] = (rng_next(&g) & 7) == 0 ? -INFINITY
                                               : rng_uniform(&g, -2.0f, 2.0f);
            x->mask = m;
        }
    }
    x->comparable = 1;
    for (int s = 0; s < nsp; ++s) {
        int t = sp[s].tensor % 4;
        size_t n = p->count[t];
        void *arr = t < 3 ? (void *)*f[t] : x->mask;
        if (!arr || n == 0 || (t == T_M && !p->mask_on))
            continue;
        size_t i = sp[s].index % n;
        float v = special_value(sp[s].kind);
        if (t == T_M && p->d.mask_type == CLATTN_MASK_BOOL) {
            ((uint8_t *)arr)[i] = (uint8_t)(sp[s].kind * 37u);
            continue;
        }
        ((float *)arr)[i] = v;
        int benign = (sp[s].kind % 8) >= 6 ||
                     (t == T_M && (sp[s].kind % 8) == 2); /* -inf mask */
        if (!benign)
            x->comparable = 0;
    }
}

static void free_data(data *x)
{
    free(x->q);
    free(x->k);
    free(x->v);
    free(x->mask);
}

/* A valid problem too slow for a fuzzer iteration: more work than
   WORK_MAX, or, on the context with the 64-byte scratch (a chunk of 2 to 16
   query rows, 3 kernels each), more than ROWS_SCRATCH_MAX query rows; or
   too large: packed K and V (should the fused-cpu path pack them) over
   PACK_MAX bytes together. That is legal (each under max_alloc_bytes) but
   can be gigabytes for small tensors, since packing pads every (batch,
   head) to 64 keys and V's features to 64 (B=46341 H=5 S=1 D=1: a 3.8 GB
   packed V for a 0.9 MB V, past the harness's 4 GB RSS limit under ASan's
   quarantine). */
static int too_slow(const problem *p, int ctx_index, int probs)
{
    if (p->work > WORK_MAX)
        return 1;
    size_t k_bytes, v_bytes;
    packed_bytes(p, &k_bytes, &v_bytes);
    if (v_bytes > PACK_MAX || k_bytes > PACK_MAX - v_bytes)
        return 1;
    return ctx_index == 1 && !probs &&
           sat_mul(sat_mul(p->d.batch, p->d.heads_q), p->d.seq_q) >
               ROWS_SCRATCH_MAX;
}

/* Whether a problem's numbers are in the range where fp32 meets the
   tests' tolerance against the double reference. */
static int numerics_comparable(const problem *p)
{
    const clattn_sdpa_desc *d = &p->d;
    return fabsf(d->scale) <= 4.0f && d->dropout_p <= 0.95f &&
           d->head_dim <= 32 && d->seq_kv <= 4096;
}

static int close_enough(float got, double ref)
{
    if (isnan(ref) || isnan(got))
        return 0;
    if (isinf(ref))
        return (double)got == ref;
    return fabs((double)got - ref) <= 1e-5 + 1e-4 * fabs(ref);
}

/* ---------------------------------------------------------------------- */
/* Common checks                                                           */
/* ---------------------------------------------------------------------- */

/* alt_ia: INVALID_ARGUMENT is also accepted (counted in *alt_count). */
static void check_status(const char *api, clattn_status got, clattn_status want,
                         int alt_ia, unsigned long *alt_count)
{
    ++g_calls;
    if (g_verbose)
        fprintf(stderr, "fuzz_sdpa: %s: %s (predicted %s)\n", api, sname(got),
                sname(want));
    if (!documented(got))
        fail("%s returned %d, which is not a documented clattn_status", api,
             (int)got);
    if (!strcmp(sname(got), "unknown status"))
        fail("%s: clattn_status_string(%d) is \"unknown status\"", api,
             (int)got);
    if (got == want)
        return;
    if (alt_ia && got == CLATTN_ERROR_INVALID_ARGUMENT) {
        ++*alt_count;
        return;
    }
    fail("%s returned %s (%d), docs/api.md gives %s (%d)%s", api, sname(got),
         (int)got, sname(want), (int)want,
         alt_ia ? " (or INVALID_ARGUMENT)" : "");
}

static void check_last_error(const char *api, clattn_context *ctx,
                             clattn_status s)
{
    if (!ctx)
        return;
    const char *e = clattn_context_last_error(ctx);
    if (!e)
        fail("%s: clattn_context_last_error returned NULL", api);
    if (s == CLATTN_SUCCESS && e[0])
        fail("%s: success, but last_error is \"%s\"", api, e);
    if (s != CLATTN_SUCCESS && !e[0])
        fail("%s: %s with an empty last_error", api, sname(s));
}

/* Host outputs with guards: GUARD floats of a NaN pattern each side, the
   body filled with another. */
#define GUARD_BITS 0x7FBADBADu
#define BODY_BITS 0xFFC0FFEEu

static float *guarded_new(size_t n)
{
    uint32_t *all = malloc((n + 2 * GUARD) * sizeof(uint32_t));
    for (size_t i = 0; i < n + 2 * GUARD; ++i)
        all[i] = i < GUARD || i >= n + GUARD ? GUARD_BITS : BODY_BITS;
    return (float *)(all + GUARD);
}

static void guarded_delete(float *body)
{
    if (body)
        free((uint32_t *)body - GUARD);
}

/* 0: intact; else 1 + the first index (from the start of the front guard)
   that differs. body_too: the body must still hold its pattern. */
static size_t guarded_changed(const float *body, size_t n, int body_too)
{
    const uint32_t *all = (const uint32_t *)body - GUARD;
    for (size_t i = 0; i < n + 2 * GUARD; ++i) {
        int guard = i < GUARD || i >= n + GUARD;
        if ((guard || body_too) && all[i] != (guard ? GUARD_BITS : BODY_BITS))
            return i + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* clattn_sdpa_host                                                        */
/* ---------------------------------------------------------------------- */

typedef struct call_opts {
    uint8_t mode, nulls;
    clattn_context *ctx;
    int ctx_index; /* 0, 1; -1: NULL or failed */
} call_opts;

static void run_host(const problem *p, data *x, const call_opts *c)
{
    const clattn_sdpa_desc *d = &p->d;
    const int want_probs = (c->mode >> 2) & 1;
    const int desc_null = (c->mode & 0x80) && (c->nulls & 0x04);
    const int null_q = (c->mode & 0x80) && (c->nulls & 0x10),
              null_k = (c->mode & 0x80) && (c->nulls & 0x20),
              null_v = (c->mode & 0x80) && (c->nulls & 0x40),
              null_out = (c->mode & 0x80) && (c->nulls & 0x80),
              null_mask = (c->mode >> 6) & 1;

    /* Prediction, in the documented order. reads[t]: the call reads host
       array t before it fails (or succeeds); those must be real arrays of
       their full size, the others may be small dummies. */
    clattn_status want;
    int reads[T_COUNT] = {0};
    size_t staged = 0; /* bytes of the largest staging buffer made */
    if (!c->ctx || c->ctx_index < 0 || desc_null)
        want = CLATTN_ERROR_INVALID_ARGUMENT;
    else if ((want = predict_desc(p)) != CLATTN_SUCCESS)
        ;
    else if (null_q || null_k || null_v || null_out ||
             (p->mask_on && null_mask))
        want = CLATTN_ERROR_INVALID_ARGUMENT;
    else {
        /* Staging, in the library's order: each array larger than
           max_alloc_bytes is refused before its buffer is made, and each
           input is copied when its buffer is made. */
        const int order[6] = {T_Q, T_K, T_V, T_O, T_P, T_M};
        const cl_ulong max_alloc = g_info[c->ctx_index].max_alloc_bytes;
        want = CLATTN_SUCCESS;
        for (int i = 0; i < 6 && want == CLATTN_SUCCESS; ++i) {
            int t = order[i];
            if ((t == T_P && !want_probs) || (t == T_M && !p->mask_on))
                continue;
            size_t es = t == T_M && d->mask_type == CLATTN_MASK_BOOL
                            ? 1
                            : sizeof(float);
            if ((cl_ulong)(p->count[t] * es) > max_alloc) {
                want = CLATTN_ERROR_UNSUPPORTED;
            } else {
                reads[t] = t == T_Q || t == T_K || t == T_V || t == T_M;
                if (p->count[t] * es > staged)
                    staged = p->count[t] * es;
            }
        }
        /* The host entry point runs AUTO: fused (no score scratch) when
           probs are not wanted and the head dims fit the fused path. */
        if (want == CLATTN_SUCCESS && !want_probs && !fused_fits(d) &&
            sat_mul(d->seq_kv, sizeof(float)) > g_scratch[c->ctx_index])
            want = CLATTN_ERROR_UNSUPPORTED;
    }

    /* Real arrays where they exist (at most HOST_CAP elements), else
       dummies; the call is made only when every array it reads is real,
       and a success needs real outputs and a bounded amount of work. */
    const int real_out = p->count[T_O] <= HOST_CAP;
    const int real_probs = p->count[T_P] <= HOST_CAP;
    for (int t = 0; t < T_COUNT; ++t)
        if (reads[t] && !data_has(p, t))
            return;
    if (staged > STAGE_CAP)
        return; /* e.g. a 2 GiB staging buffer for out before probs fails */
    if (want == CLATTN_SUCCESS && (too_slow(p, c->ctx_index, want_probs) ||
                                   !real_out || (want_probs && !real_probs)))
        return;
    data_need(p, x);
    float dummy_in[DUMMY];
    memset(dummy_in, 0, sizeof dummy_in);
    const size_t n_out = real_out ? (p->count[T_O] ? p->count[T_O] : 1) : DUMMY;
    const size_t n_probs =
        want_probs ? (real_probs ? (p->count[T_P] ? p->count[T_P] : 1) : DUMMY)
                   : 0;
    float *out = guarded_new(n_out);
    float *probs = want_probs ? guarded_new(n_probs) : NULL;
    const float *q = null_q ? NULL : x->q ? x->q : dummy_in;
    const float *k = null_k ? NULL : x->k ? x->k : dummy_in;
    const float *v = null_v ? NULL : x->v ? x->v : dummy_in;
    const void *mask = null_mask ? NULL
                       : x->mask ? x->mask
                                 : (const void *)dummy_in;

    clattn_context *ctx = c->ctx_index < 0 ? c->ctx : g_ctx[c->ctx_index];
    if (!c->ctx)
        ctx = NULL;
    clattn_status s = clattn_sdpa_host(ctx, desc_null ? NULL : d, q, k, v, mask,
                                       null_out ? NULL : out, probs);
    check_status("clattn_sdpa_host", s, want, 0, NULL);
    check_last_error("clattn_sdpa_host", ctx, s);

    if (s != CLATTN_SUCCESS) {
        size_t i;
        if ((i = guarded_changed(out, n_out, 1)))
            fail("clattn_sdpa_host: %s, but out was written (float %zu of "
                 "the guarded array)",
                 sname(s), i - 1);
        if (probs && (i = guarded_changed(probs, n_probs, 1)))
            fail("clattn_sdpa_host: %s, but probs was written (float %zu of "
                 "the guarded array)",
                 sname(s), i - 1);
    } else {
        size_t i;
        if ((i = guarded_changed(out, n_out, 0)))
            fail("clattn_sdpa_host: out written outside its %zu floats "
                 "(float %zu of the guarded array)",
                 n_out, i - 1);
        if (probs && (i = guarded_changed(probs, n_probs, 0)))
            fail("clattn_sdpa_host: probs written outside its %zu floats "
                 "(float %zu of the guarded array)",
                 n_probs, i - 1);
        if (x->comparable && numerics_comparable(p)) {
            double *ro = malloc(n_out * sizeof(double));
            double *rp = probs ? malloc(n_probs * sizeof(double)) : NULL;
            ref_sdpa(d, q, k, v, p->mask_on ? mask : NULL, ro, rp, NULL);
            for (size_t j = 0; j < p->count[T_O]; ++j)
                if (!close_enough(out[j], ro[j]))
                    fail("clattn_sdpa_host: out[%zu] = %.9g, reference %.9g", j,
                         (double)out[j], ro[j]);
            for (size_t j = 0; probs && j < p->count[T_P]; ++j)
                if (!close_enough(probs[j], rp[j]))
                    fail("clattn_sdpa_host: probs[%zu] = %.9g, reference %.9g",
                         j, (double)probs[j], rp[j]);
            free(ro);
            free(rp);
            ++g_compared;
        }
    }
    guarded_delete(out);
    guarded_delete(probs);
}

/* ---------------------------------------------------------------------- */
/* clattn_sdpa                                                             */
/* ---------------------------------------------------------------------- */

typedef struct tview {
    int slot;    /* 0..6, or -1: NULL buffer */
    int present; /* passed with a buffer (and, for probs/lse, wanted) */
    size_t dims[4], es;
    size_t offset, strides[4], eff[4]; /* eff: 0 where dims[i] == 1 */
    int ext_ovf;                       /* the extent overflows size_t */
    size_t first, end;                 /* elements, when !ext_ovf */
    size_t bytes;                      /* end * es, when !ext_ovf */
    size_t ask;                        /* buffer size it asks for */
} tview;

typedef struct device_call {
    uint8_t path_byte, call;
    unsigned path;
    tview v[T_COUNT];
    int foreign[7];
    size_t size[7]; /* bytes per slot, 0: unused */
    cl_mem mem[7];
    uint8_t *image[7]; /* what each slot's buffer holds before the call */
} device_call;

static void decode_view(reader *r, const problem *p, int t, device_call *c)
{
    tview *v = &c->v[t];
    uint8_t slot = rd8(r), layout = rd8(r);
    v->slot = (slot & 7) == 7 ? -1 : (slot & 7);
    if (v->slot >= 0 && (slot & 8))
        c->foreign[v->slot] = 1;
    memcpy(v->dims, p->dims[t], sizeof v->dims);
    v->es = t == T_M && p->d.mask_type == CLATTN_MASK_BOOL ? 1 : 4;
    const size_t B = v->dims[0], H = v->dims[1], S = v->dims[2], D = v->dims[3];
    size_t *st = v->strides;
    switch (layout & 7) {
    case 0:
    case 6:
        st[3] = (layout & 7) == 6 ? 2 : 1;
        st[2] = D;
        st[1] = sat_mul(S, D);
        st[0] = sat_mul(H, st[1]);
        break;
    case 1:
        st[3] = 1;
        st[1] = D;
        st[2] = sat_mul(H, D);
        st[0] = sat_mul(S, st[2]);
        break;
    case 2: {
        st[3] = 1;
        st[2] = D + rd8(r) % 8;
        st[1] = sat_mul(S, st[2]) + rd8(r) % 8;
        st[0] = sat_mul(H, st[1]) + rd8(r) % 8;
        break;
    }
    case 3:
        st[3] = 1;
        st[2] = D;
        st[1] = st[0] = 0;
        break;
    case 4:
        st[3] = 1;
        st[2] = 0;
        st[1] = D;
        st[0] = sat_mul(H, D);
        break;
    case 5:
        for (int i = 0; i < 4; ++i)
            st[i] = dec_stride(r);
        break;
    default: /* 7 */
        st[3] = 1;
        st[2] = D;
        st[0] = sat_mul(S, D);
        st[1] = sat_mul(B, st[0]);
        break;
    }
    switch ((layout >> 3) & 7) {
    case 1: v->offset = 1; break;
    case 2: v->offset = 3; break;
    case 3: v->offset = 16; break;
    case 6: v->offset = rd8(r); break;
    case 7: v->offset = SIZE_MAX - rd8(r); break;
    default: v->offset = 0; break;
    }
    /* The extent as docs/api.md 5.2 defines it, in 128 bits. */
    unsigned __int128 last = v->offset;
    v->ext_ovf = 0;
    for (int i = 0; i < 4; ++i) {
        v->eff[i] = v->dims[i] > 1 ? st[i] : 0;
        if (v->dims[i] > 1) {
            last += (unsigned __int128)(v->dims[i] - 1) * st[i];
            if (last > SIZE_MAX)
                v->ext_ovf = 1;
        }
        if (v->ext_ovf)
            break;
    }
    if (!v->ext_ovf && (last + 1 > SIZE_MAX || (last + 1) * v->es > SIZE_MAX))
        v->ext_ovf = 1;
    if (!v->ext_ovf) {
        v->first = v->offset;
        v->end = (size_t)last + 1;
        v->bytes = v->end * v->es;
    }
    size_t exact = v->ext_ovf || v->bytes > BUF_CAP ? BUF_CAP : v->bytes;
    size_t ask;
    switch (layout >> 6) {
    case 0: ask = exact; break;
    case 1: ask = exact + 4 * (size_t)rd8(r); break;
    case 2: {
        size_t cut = 1 + rd8(r) % 16;
        ask = exact > cut ? exact - cut : 1;
        break;
    }
    default: ask = 16 * ((size_t)rd8(r) + 1); break;
    }
    v->ask = ask < 1 ? 1 : ask > BUF_CAP ? BUF_CAP : ask;
}

static size_t view_addr(const tview *v, size_t b, size_t h, size_t s, size_t f)
{
    return v->offset + b * v->eff[0] + h * v->eff[1] + s * v->eff[2] +
           f * v->eff[3];
}

/* Brute force: do two elements of the view share an address? The view
   fits in a buffer of buf_bytes. */
static int view_self_overlaps(const tview *v, size_t buf_bytes)
{
    size_t n;
    if (prod4(v->dims, &n) || n > buf_bytes / v->es)
        return 1; /* more elements than addresses */
    size_t span = v->end - v->first;
    uint8_t *seen = calloc(span ? span : 1, 1);
    int dup = 0;
    for (size_t b = 0; b < v->dims[0] && !dup; ++b)
        for (size_t h = 0; h < v->dims[1] && !dup; ++h)
            for (size_t s = 0; s < v->dims[2] && !dup; ++s)
                for (size_t f = 0; f < v->dims[3] && !dup; ++f) {
                    size_t a = view_addr(v, b, h, s, f) - v->first;
                    dup = seen[a];
                    seen[a] = 1;
                }
    free(seen);
    return dup;
}

/* The check src/core/tensor_view.c makes, which is sufficient but not
   necessary: with the dimensions of extent > 1 sorted by stride, each
   stride must step past everything the inner ones reach. A one-to-one view
   it rejects is the documented conservative latitude, nothing else is. */
static int sorted_strides_reject(const tview *v)
{
    int idx[4], n = 0;
    for (int i = 0; i < 4; ++i)
        if (v->dims[i] > 1)
            idx[n++] = i;
    for (int a = 1; a < n; ++a)
        for (int b = a; b > 0 && v->eff[idx[b]] < v->eff[idx[b - 1]]; --b) {
            int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    unsigned __int128 reach = 0;
    for (int a = 0; a < n; ++a) {
        size_t st = v->eff[idx[a]];
        if (st == 0 || st <= reach)
            return 1;
        reach += (unsigned __int128)(v->dims[idx[a]] - 1) * st;
    }
    return 0;
}

/* docs/api.md 5.2: the byte ranges of two views in one cl_mem intersect. */
static int ranges_intersect(const tview *a, const tview *b)
{
    return a->first * a->es < b->end * b->es &&
           b->first * b->es < a->end * a->es;
}

/* Writes logical tensor t (contiguous, in src) into its slot's image. */
static void scatter(device_call *c, int t, const void *src)
{
    const tview *v = &c->v[t];
    uint8_t *img = c->image[v->slot];
    size_t i = 0;
    for (size_t b = 0; b < v->dims[0]; ++b)
        for (size_t h = 0; h < v->dims[1]; ++h)
            for (size_t s = 0; s < v->dims[2]; ++s)
                for (size_t f = 0; f < v->dims[3]; ++f, ++i)
                    memcpy(img + view_addr(v, b, h, s, f) * v->es,
                           (const uint8_t *)src + i * v->es, v->es);
}

static void *gather(const device_call *c, int t)
{
    const tview *v = &c->v[t];
    const uint8_t *img = c->image[v->slot];
    size_t n;
    prod4(v->dims, &n);
    uint8_t *dst = malloc(n ? n * v->es : 1);
    size_t i = 0;
    for (size_t b = 0; b < v->dims[0]; ++b)
        for (size_t h = 0; h < v->dims[1]; ++h)
            for (size_t s = 0; s < v->dims[2]; ++s)
                for (size_t f = 0; f < v->dims[3]; ++f, ++i)
                    memcpy(dst + i * v->es,
                           img + view_addr(v, b, h, s, f) * v->es, v->es);
    return dst;
}

static int floats_small(const float *x, size_t n, float lim, int neg_inf_ok)
{
    for (size_t i = 0; i < n; ++i)
        if (!(fabsf(x[i]) <= lim || (neg_inf_ok && x[i] == -INFINITY)))
            return 0;
    return 1;
}

#define SENTINEL_BITS 0x7FA5A5A5u /* a NaN: an input read outside its view */

static void run_device(reader *r, const problem *p, data *x, const call_opts *o)
{
    device_call c;
    memset(&c, 0, sizeof c);
    c.path = dec_enum(r, 6); /* 0..4 valid, 5 not */
    c.call = rd8(r);
    for (int t = 0; t < T_COUNT; ++t)
        decode_view(r, p, t, &c);
    const int wait_mode = c.call & 3, want_event = (c.call >> 2) & 1;
    const int queue_mode = (c.call >> 5) & 3;
    const int tensors_null = (o->mode & 0x80) && (o->nulls & 0x08);
    const int desc_null = (o->mode & 0x80) && (o->nulls & 0x04);
    for (int t = 0; t < T_COUNT; ++t) {
        tview *v = &c.v[t];
        v->present = v->slot >= 0;
        if (t == T_P)
            v->present &= (c.call >> 3) & 1;
        if (t == T_L)
            v->present &= (c.call >> 4) & 1;
        if (t == T_P && !((c.call >> 3) & 1))
            v->slot = -1;
        if (t == T_L && !((c.call >> 4) & 1))
            v->slot = -1;
        if (v->slot >= 0 && v->ask > c.size[v->slot])
            c.size[v->slot] = v->ask;
    }

    /* Prediction (docs/api.md sections 5.2 and 6, in order). */
    clattn_status want = CLATTN_SUCCESS;
    int conservative_ok = 0;
    const int checked[7] = {T_Q, T_K, T_V, T_O, T_P, T_L, T_M};
    int in_check[T_COUNT] = {0};
    if (!o->ctx || o->ctx_index < 0 || desc_null)
        want = CLATTN_ERROR_INVALID_ARGUMENT;
    else if ((want = predict_desc(p)) != CLATTN_SUCCESS)
        ;
    else if (c.path > CLATTN_SDPA_PATH_FUSED_GPU || wait_mode == 1 ||
             wait_mode == 2)
        want = CLATTN_ERROR_INVALID_ARGUMENT;
    else if (queue_mode == 3) /* a queue of another context: before views */
        want = CLATTN_ERROR_INVALID_ARGUMENT;
    else if (tensors_null)
        want = CLATTN_ERROR_INVALID_ARGUMENT;
    else {
        for (int i = 0; i < 7 && want == CLATTN_SUCCESS; ++i) {
            int t = checked[i];
            const tview *v = &c.v[t];
            if ((t == T_P || t == T_L) && !v->present)
                continue;
            if (t == T_M && !p->mask_on)
                continue;
            in_check[t] = 1;
            if (v->slot < 0)
                want = CLATTN_ERROR_INVALID_ARGUMENT;
            else if (v->dims[3] > 1 && v->strides[3] != 1)
                want = CLATTN_ERROR_INVALID_ARGUMENT;
            else if (v->ext_ovf)
                want = CLATTN_ERROR_SIZE_OVERFLOW;
            else if (c.foreign[v->slot])
                want = CLATTN_ERROR_INVALID_ARGUMENT;
            else if (v->bytes > c.size[v->slot])
                want = CLATTN_ERROR_BUFFER_TOO_SMALL;
            else if (t == T_O || t == T_P || t == T_L) {
                if (view_self_overlaps(v, c.size[v->slot]))
                    want = CLATTN_ERROR_INVALID_ARGUMENT;
                else if (sorted_strides_reject(v))
                    conservative_ok = 1; /* one-to-one, may be rejected */
            }
        }
        const int outs[3] = {T_O, T_P, T_L};
        for (int a = 0; a < 3 && want == CLATTN_SUCCESS; ++a) {
            if (!in_check[outs[a]])
                continue;
            for (int t = 0; t < T_COUNT; ++t)
                if (t != outs[a] && in_check[t] &&
                    c.v[t].slot == c.v[outs[a]].slot &&
                    ranges_intersect(&c.v[outs[a]], &c.v[t]))
                    want = CLATTN_ERROR_INVALID_ARGUMENT;
        }
        /* docs/api.md: AUTO takes the device's fused variant when it takes
           the call (head dims up to 256; probs only on the CPU-class one,
           which recomputes them), else the unfused one; an explicit fused
           path refuses head dims over 256, and the GPU-class one probs;
           only the unfused path has a score scratch limit. */
        const int probs = c.v[T_P].present;
        const clattn_sdpa_path variant =
            c.path == CLATTN_SDPA_PATH_FUSED_CPU ||
                    c.path == CLATTN_SDPA_PATH_FUSED_GPU
                ? (clattn_sdpa_path)c.path
                : g_variant[o->ctx_index < 0 ? 0 : o->ctx_index];
        const int takes = fused_fits(&p->d) &&
                          !(probs && variant == CLATTN_SDPA_PATH_FUSED_GPU);
        const int fused = c.path == CLATTN_SDPA_PATH_AUTO
                              ? takes
                              : c.path != CLATTN_SDPA_PATH_UNFUSED;
        if (want == CLATTN_SUCCESS && fused && !takes)
            want = CLATTN_ERROR_UNSUPPORTED;
        if (want == CLATTN_SUCCESS && fused &&
            fused_packs_too_big(p, c.path, o->ctx_index, probs))
            want = CLATTN_ERROR_UNSUPPORTED;
        if (want == CLATTN_SUCCESS && rope_copy_too_big(p, o->ctx_index))
            want = CLATTN_ERROR_UNSUPPORTED;
        if (want == CLATTN_SUCCESS && !fused && !c.v[T_P].present &&
            sat_mul(p->d.seq_kv, sizeof(float)) > g_scratch[o->ctx_index])
            want = CLATTN_ERROR_UNSUPPORTED;
    }
    if (want == CLATTN_SUCCESS) {
        if (too_slow(p, o->ctx_index, c.v[T_P].present) || !data_has(p, T_Q) ||
            !data_has(p, T_K) || !data_has(p, T_V) ||
            (p->mask_on && !data_has(p, T_M)))
            return; /* valid but too much work for a fuzzer iteration */
        data_need(p, x);
    }

    /* Buffers: a sentinel everywhere, then the inputs' elements (when the
       call is to succeed; otherwise the sentinel is enough). */
    const cl_context native =
        g_info[o->ctx_index < 0 ? 0 : o->ctx_index].cl_ctx;
    const cl_command_queue queue =
        g_info[o->ctx_index < 0 ? 0 : o->ctx_index].queue;
    for (int s = 0; s < 7; ++s) {
        if (!c.size[s])
            continue;
        c.image[s] = malloc(c.size[s]);
        for (size_t i = 0; i < c.size[s]; ++i)
            c.image[s][i] = (uint8_t)(SENTINEL_BITS >> (8 * (i & 3)));
    }
    int comparable = 0;
    void *gq = NULL, *gk = NULL, *gv = NULL, *gm = NULL;
    if (want == CLATTN_SUCCESS) {
        scatter(&c, T_Q, x->q);
        scatter(&c, T_K, x->k);
        scatter(&c, T_V, x->v);
        if (p->mask_on)
            scatter(&c, T_M, x->mask);
        gq = gather(&c, T_Q);
        gk = gather(&c, T_K);
        gv = gather(&c, T_V);
        if (p->mask_on)
            gm = gather(&c, T_M);
        comparable = x->comparable && numerics_comparable(p) &&
                     floats_small(gq, p->count[T_Q], 1.0f, 0) &&
                     floats_small(gk, p->count[T_K], 1.0f, 0) &&
                     floats_small(gv, p->count[T_V], 1.0f, 0) &&
                     (p->d.mask_type != CLATTN_MASK_ADDITIVE ||
                      floats_small(gm, p->count[T_M], 2.0f, 1));
    }
    for (int s = 0; s < 7; ++s) {
        if (!c.size[s])
            continue;
        cl_int err;
        c.mem[s] = clCreateBuffer(c.foreign[s] ? g_foreign : native,
                                  CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                  c.size[s], c.image[s], &err);
        if (err != CL_SUCCESS) {
            fprintf(stderr, "fuzz_sdpa: clCreateBuffer(%zu): %d\n", c.size[s],
                    err);
            abort();
        }
    }
    clattn_sdpa_tensors tensors;
    memset(&tensors, 0, sizeof tensors);
    clattn_tensor *tt[T_COUNT] = {&tensors.q,    &tensors.k,   &tensors.v,
                                  &tensors.mask, &tensors.out, &tensors.probs,
                                  &tensors.lse};
    for (int t = 0; t < T_COUNT; ++t) {
        const tview *v = &c.v[t];
        tt[t]->buffer = v->slot >= 0 ? c.mem[v->slot] : NULL;
        tt[t]->offset = v->offset;
        memcpy(tt[t]->strides, v->strides, sizeof v->strides);
    }

    cl_event gate = NULL, dummy_event = (cl_event)(uintptr_t)0x2;
    const cl_event *wait_list = NULL;
    cl_uint n_wait = 0;
    if (wait_mode == 1) {
        n_wait = 1;
    } else if (wait_mode == 2) {
        wait_list = &dummy_event;
    } else if (wait_mode == 3) {
        cl_int err;
        gate = clCreateUserEvent(native, &err);
        if (err != CL_SUCCESS)
            abort();
        wait_list = &gate;
        n_wait = 1;
    }
    const cl_event unset = (cl_event)(uintptr_t)0x1;
    cl_event ev = unset;
    clattn_context *ctx = o->ctx_index < 0 ? o->ctx : g_ctx[o->ctx_index];
    if (!o->ctx)
        ctx = NULL;
    const int qi = o->ctx_index < 0 ? 0 : o->ctx_index;
    cl_command_queue call_queue = queue_mode == 2   ? g_own_queue[qi]
                                  : queue_mode == 3 ? g_foreign_queue
                                                    : NULL;
    const char *api = queue_mode ? "clattn_sdpa_on_queue" : "clattn_sdpa";
    clattn_status s;
    if (queue_mode == 0)
        s = clattn_sdpa(ctx, desc_null ? NULL : &p->d,
                        tensors_null ? NULL : &tensors,
                        (clattn_sdpa_path)c.path, n_wait, wait_list,
                        want_event ? &ev : NULL);
    else
        s = clattn_sdpa_on_queue(ctx, call_queue, desc_null ? NULL : &p->d,
                                 tensors_null ? NULL : &tensors,
                                 (clattn_sdpa_path)c.path, n_wait, wait_list,
                                 want_event ? &ev : NULL);
    if (gate) {
        clSetUserEventStatus(gate, CL_COMPLETE);
        clReleaseEvent(gate);
    }
    check_status(api, s, want, conservative_ok, &g_conservative);
    check_last_error(api, ctx, s);
    if (s != CLATTN_SUCCESS && want_event && ev != unset)
        fail("%s: %s, but *event was written", api, sname(s));
    if (s == CLATTN_SUCCESS && want_event) {
        if (ev == unset || !ev)
            fail("%s: success without an event", api);
        cl_int st = 0;
        clWaitForEvents(1, &ev);
        clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st,
                       NULL);
        if (st != CL_COMPLETE)
            fail("%s: the event ended with status %d", api, (int)st);
        clReleaseEvent(ev);
    }
    if (queue_mode == 2)
        clFinish(call_queue);
    clFinish(queue);

    /* Read every buffer of this context back. */
    double *ro = NULL, *rp = NULL, *rl = NULL;
    if (s == CLATTN_SUCCESS && comparable) {
        ro = malloc((p->count[T_O] ? p->count[T_O] : 1) * sizeof(double));
        rp = malloc((p->count[T_P] ? p->count[T_P] : 1) * sizeof(double));
        rl = malloc((p->count[T_L] ? p->count[T_L] : 1) * sizeof(double));
        ref_sdpa(&p->d, gq, gk, gv, gm, ro, rp, rl);
        ++g_compared;
    }
    for (int sl = 0; sl < 7; ++sl) {
        if (!c.mem[sl] || c.foreign[sl])
            continue;
        uint8_t *now = malloc(c.size[sl]);
        uint8_t *written = calloc(c.size[sl], 1);
        cl_int err = clEnqueueReadBuffer(queue, c.mem[sl], CL_TRUE, 0,
                                         c.size[sl], now, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            fail("clEnqueueReadBuffer of slot %d failed: %d", sl, err);
        if (s == CLATTN_SUCCESS) {
            const int outs[3] = {T_O, T_P, T_L};
            const double *refs[3] = {ro, rp, rl};
            for (int a = 0; a < 3; ++a) {
                const tview *v = &c.v[outs[a]];
                if (!v->present || v->slot != sl)
                    continue;
                size_t i = 0;
                for (size_t b = 0; b < v->dims[0]; ++b)
                    for (size_t h = 0; h < v->dims[1]; ++h)
                        for (size_t q = 0; q < v->dims[2]; ++q)
                            for (size_t f = 0; f < v->dims[3]; ++f, ++i) {
                                size_t at = view_addr(v, b, h, q, f) * 4;
                                memset(written + at, 1, 4);
                                if (!refs[a])
                                    continue;
                                float got;
                                memcpy(&got, now + at, 4);
                                if (!close_enough(got, refs[a][i]))
                                    fail("%s: %s[%zu] (b %zu, h %zu, "
                                         "row %zu, col %zu) = %.9g, reference "
                                         "%.9g",
                                         api, tensor_names[outs[a]], i, b, h, q,
                                         f, (double)got, refs[a][i]);
                            }
            }
        }
        for (size_t i = 0; i < c.size[sl]; ++i)
            if (!written[i] && now[i] != c.image[sl][i])
                fail("%s: %s, but byte %zu of buffer slot %d "
                     "changed (0x%02x -> 0x%02x), outside every output "
                     "element",
                     api, sname(s), i, sl, c.image[sl][i], now[i]);
        free(now);
        free(written);
    }
    free(ro);
    free(rp);
    free(rl);
    free(gq);
    free(gk);
    free(gv);
    free(gm);
    for (int sl = 0; sl < 7; ++sl) {
        if (c.mem[sl])
            clReleaseMemObject(c.mem[sl]);
        free(c.image[sl]);
    }
}

/* ---------------------------------------------------------------------- */
/* Entry                                                                   */
/* ---------------------------------------------------------------------- */

static void describe(const problem *p, const call_opts *o, size_t n,
                     const uint8_t *bytes)
{
    const clattn_sdpa_desc *d = &p->d;
    int len = snprintf(
        g_input_text, sizeof g_input_text,
        "input (%zu bytes): mode 0x%02x nulls 0x%02x context %d\n"
        "desc: batch %zu heads_q %zu heads_kv %zu seq_q %zu seq_kv %zu "
        "head_dim %zu head_dim_v %zu\n"
        "      scale %a causal %u mask_type %u mask_dims {%zu, %zu, %zu, %zu}\n"
        "      dropout_p %a seed 0x%llx offset 0x%llx key_lengths %s\n"
        "      rope style %u rotary_dim %zu theta %a rope_k %d "
        "rope_q_positions[0] %d%s\n",
        n, o->mode, o->nulls, o->ctx_index, d->batch, d->heads_q, d->heads_kv,
        d->seq_q, d->seq_kv, d->head_dim, d->head_dim_v, (double)d->scale,
        (unsigned)d->causal, (unsigned)d->mask_type, d->mask_dims[0],
        d->mask_dims[1], d->mask_dims[2], d->mask_dims[3], (double)d->dropout_p,
        (unsigned long long)d->dropout_seed,
        (unsigned long long)d->dropout_offset,
        d->key_lengths ? "given" : "NULL", (unsigned)d->rope.style,
        d->rope.rotary_dim, (double)d->rope.theta, d->rope_k,
        d->rope_q_positions ? (int)d->rope_q_positions[0] : 0,
        d->rope_q_positions ? "" : " (NULL)");
    if (d->key_lengths && len > 0 && (size_t)len < sizeof g_input_text) {
        len += snprintf(g_input_text + len, sizeof g_input_text - (size_t)len,
                        "key_lengths:");
        for (size_t b = 0;
             b < d->batch && b < 16 && (size_t)len < sizeof g_input_text; ++b)
            len +=
                snprintf(g_input_text + len, sizeof g_input_text - (size_t)len,
                         " %d", (int)d->key_lengths[b]);
        if ((size_t)len < sizeof g_input_text)
            len += snprintf(g_input_text + len,
                            sizeof g_input_text - (size_t)len, "\n");
    }
    if (len > 0 && (size_t)len < sizeof g_input_text) {
        len += snprintf(g_input_text + len, sizeof g_input_text - (size_t)len,
                        "hex:");
        for (size_t i = 0;
             i < n && i < 256 && (size_t)len + 4 < sizeof g_input_text; ++i)
            len +=
                snprintf(g_input_text + len, sizeof g_input_text - (size_t)len,
                         " %02x", bytes[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t n)
{
    reader r = {bytes, n, 0};
    call_opts o;
    memset(&o, 0, sizeof o);
    o.mode = rd8(&r);
    o.nulls = (o.mode & 0x80) ? rd8(&r) : 0;
    o.ctx_index = (o.mode >> 4) & 1;
    o.ctx = g_ctx[o.ctx_index];
    if (o.mode & 0x80) {
        switch (o.nulls & 3) {
        case 1: o.ctx = NULL, o.ctx_index = -1; break;
        case 2: o.ctx = g_failed, o.ctx_index = -1; break;
        default: break;
        }
    }

    problem p;
    memset(&p, 0, sizeof p);
    clattn_sdpa_desc_init(&p.d);
    clattn_sdpa_desc *d = &p.d;
    d->batch = dec_dim(&r);
    d->heads_q = dec_dim(&r);
    d->heads_kv = dec_dim(&r);
    d->seq_q = dec_dim(&r);
    d->seq_kv = dec_dim(&r);
    d->head_dim = dec_dim(&r);
    d->head_dim_v = dec_dim(&r);
    d->scale = dec_scale(&r);
    d->causal = (clattn_causal)dec_enum(&r, 3);
    d->mask_type = (clattn_mask_type)dec_enum(&r, 3);
    uint8_t shape = rd8(&r);
    if (((shape >> 3) & 7) == 6) {
        for (int i = 0; i < 4; ++i)
            d->mask_dims[i] = dec_dim(&r);
    } else {
        d->mask_dims[0] = shape & 1 ? 1 : d->batch;
        d->mask_dims[1] = shape & 2 ? 1 : d->heads_q;
        d->mask_dims[2] = shape & 4 ? 1 : d->seq_q;
        d->mask_dims[3] = d->seq_kv;
        if (((shape >> 3) & 7) == 7)
            d->mask_dims[3] = d->seq_kv + 1; /* wraps for SIZE_MAX: fine */
    }
    d->dropout_p = dec_dropout(&r);
    d->dropout_seed = dec_seed(&r, 0x9E3779B97F4A7C15ull);
    d->dropout_offset = dec_seed(&r, 1);
    uint8_t data_seed = rd8(&r);
    special sp[4] = {{0, 0, 0}};
    int nsp = 0;
    if (o.mode & 0x20) {
        nsp = rd8(&r) % 5;
        for (int i = 0; i < nsp; ++i) {
            sp[i].tensor = rd8(&r);
            sp[i].index = rd8(&r);
            sp[i].kind = rd8(&r);
        }
    }
    if ((o.mode & 0x08) && d->batch <= KL_MAX) {
        for (size_t b = 0; b < d->batch; ++b)
            p.kl[b] = dec_kl(&r, d->seq_kv);
        d->key_lengths = p.kl;
    }
    if (shape & 0x40) {
        d->rope.style = (clattn_rope_style)dec_enum(&r, 3);
        d->rope.rotary_dim = dec_dim(&r);
        d->rope.theta = dec_scale(&r);
        const uint8_t flags = rd8(&r);
        d->rope_k = flags & 1;
        if ((flags & 2) && d->batch <= KL_MAX) {
            for (size_t b = 0; b < d->batch; ++b)
                p.rope_pos[b] = dec_pos(&r, d->seq_q);
            d->rope_q_positions = p.rope_pos;
        }
    }
    problem_shapes(&p);
    describe(&p, &o, n, bytes);

    data x;
    memset(&x, 0, sizeof x);
    x.seed = data_seed;
    memcpy(x.sp, sp, sizeof sp);
    x.nsp = nsp;
    if (o.mode & 0x01)
        run_host(&p, &x, &o);
    if (o.mode & 0x02)
        run_device(&r, &p, &x, &o);
    free_data(&x);
    return 0;
}
