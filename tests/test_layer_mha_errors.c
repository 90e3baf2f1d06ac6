/* Error handling of the multi-head attention layer: every bad description,
   weight set, call and buffer is rejected with its documented status and
   a detail text, nothing is written to any output (host canaries and
   pre-filled device buffers), no device memory leaks (memory statistics
   back to the baseline) and the layer stays usable.

   Each forward case is a small mutation of one valid call; the same
   runners make the valid call first, so a rejection is known to come
   from the mutation alone. Shapes are tiny: cross-attention E=8, H=2,
   kdim=6, vdim=5, B=2, Sq=3, Skv=4, with both masks and the weights. */
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { E = 8, H = 2, KD = 6, VD = 5, B = 2, SQ = 3, SKV = 4 };
enum {
    NQ = B * SQ * E,
    NK = B * SKV * KD,
    NV = B * SKV * VD,
    NOUT = B * SQ * E,
    NAVG = B * SQ * SKV,
    NHEADS = B * H * SQ * SKV,
    NMASK = SQ * SKV,
    NKPM = B * SKV
};

static clattn_context *g_ctx;
static clattn_info g_info;
static cl_context g_foreign;

static float g_wq[E * E], g_wk[E * KD], g_wv[E * VD], g_win[3 * E * E],
    g_bin[3 * E], g_wout[E * E], g_bout[E], g_norm_w[E], g_norm_b[E];
static float g_q[NQ], g_k[NK], g_v[NV], g_big[NHEADS * 4];
static uint8_t g_kpm[NKPM], g_mask[NHEADS];

static size_t memory_now(void)
{
    clattn_memory_stats st;
    clattn_memory_stats_get(g_ctx, &st);
    return st.current_bytes;
}

static int text_has(const char *needle)
{
    const char *text = clattn_context_last_error(g_ctx);
    return text && strstr(text, needle) != NULL;
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct create_args {
    clattn_mha_desc d;
    clattn_mha_weights w;
} create_args;

static void base_create(create_args *a)
{
    clattn_mha_desc_init(&a->d);
    a->d.embed_dim = E, a->d.num_heads = H, a->d.kdim = KD, a->d.vdim = VD;
    a->d.bias = 1, a->d.batch_first = 1;
    memset(&a->w, 0, sizeof a->w);
    a->w.q_proj_weight = g_wq, a->w.k_proj_weight = g_wk;
    a->w.v_proj_weight = g_wv, a->w.in_proj_bias = g_bin;
    a->w.out_proj_weight = g_wout, a->w.out_proj_bias = g_bout;
}

/* A self-attention description with the packed weight and pre-LN. */
static void packed_create(create_args *a)
{
    base_create(a);
    a->d.kdim = a->d.vdim = 0;
    a->d.pre_layernorm = 1;
    a->w.q_proj_weight = a->w.k_proj_weight = a->w.v_proj_weight = NULL;
    a->w.in_proj_weight = g_win;
    a->w.norm_weight = g_norm_w, a->w.norm_bias = g_norm_b;
}

typedef struct create_case {
    const char *name;
    void (*base)(create_args *);
    void (*mutate)(create_args *);
    clattn_status want;
    const char *text; /* in last_error, or NULL */
} create_case;

#define MUT(fn, body)                                                          \
    static void fn(create_args *a)                                             \
    {                                                                          \
        body;                                                                  \
    }
MUT(c_none, (void)a)
MUT(c_e0, a->d.embed_dim = 0)
MUT(c_h0, a->d.num_heads = 0)
MUT(c_e_mod, a->d.num_heads = 3)
MUT(c_scale_nan, a->d.scale = NAN)
MUT(c_scale_inf, a->d.scale = INFINITY)
MUT(c_drop_1, a->d.dropout_p = 1.0f)
MUT(c_drop_neg, a->d.dropout_p = -0.1f)
MUT(c_drop_nan, a->d.dropout_p = NAN)
MUT(c_eps_neg, a->d.layernorm_eps = -1e-5f)
MUT(c_eps_nan, a->d.layernorm_eps = NAN)
MUT(c_preln_kdim, a->d.pre_layernorm = 1; a->w.norm_weight = g_norm_w;
    a->w.norm_bias = g_norm_b)
MUT(c_in_with_kdim, a->w.in_proj_weight = g_win)
MUT(c_no_q, a->w.q_proj_weight = NULL)
MUT(c_no_v, a->w.v_proj_weight = NULL)
MUT(c_bias_missing, a->w.in_proj_bias = NULL)
MUT(c_bias_extra, a->d.bias = 0; a->w.out_proj_bias = NULL)
MUT(c_out_missing, a->w.out_proj_weight = NULL)
MUT(c_out_extra, a->d.no_out_proj = 1; a->w.out_proj_bias = NULL)
MUT(c_out_bias_extra, a->d.no_out_proj = 1; a->w.out_proj_weight = NULL)
MUT(c_norm_extra, a->w.norm_bias = g_norm_b)
MUT(c_overflow, a->d.embed_dim = (size_t)1 << 33; a->d.num_heads = 1;
    a->d.kdim = a->d.vdim = 0;
    a->w.q_proj_weight = a->w.k_proj_weight = a->w.v_proj_weight = NULL;
    a->w.in_proj_weight = g_win)
/* Packed (self-attention) descriptions. */
MUT(p_none_given, a->w.in_proj_weight = NULL)
MUT(p_both, a->w.q_proj_weight = g_win)
MUT(p_separate_partial, a->w.in_proj_weight = NULL; a->w.q_proj_weight = g_win;
    a->w.k_proj_weight = g_win)
MUT(p_separate_ok, a->w.in_proj_weight = NULL; a->w.q_proj_weight = g_win;
    a->w.k_proj_weight = g_win + E * E; a->w.v_proj_weight = g_win + 2 * E * E)
MUT(p_norm_missing, a->w.norm_weight = NULL)
MUT(p_norm_bias_missing, a->w.norm_bias = NULL)
#undef MUT

static const create_case create_cases[] = {
    {"valid cross-attention", base_create, c_none, CLATTN_SUCCESS, NULL},
    {"valid packed pre-LN", packed_create, c_none, CLATTN_SUCCESS, NULL},
    {"valid packed as separate", packed_create, p_separate_ok, CLATTN_SUCCESS,
     NULL},
    {"embed_dim 0", base_create, c_e0, CLATTN_ERROR_INVALID_SHAPE, "embed_dim"},
    {"num_heads 0", base_create, c_h0, CLATTN_ERROR_INVALID_SHAPE, "num_heads"},
    {"E % H != 0", base_create, c_e_mod, CLATTN_ERROR_INVALID_SHAPE,
     "multiple"},
    {"scale NaN", base_create, c_scale_nan, CLATTN_ERROR_INVALID_ARGUMENT,
     "scale"},
    {"scale inf", base_create, c_scale_inf, CLATTN_ERROR_INVALID_ARGUMENT,
     "scale"},
    {"dropout 1", base_create, c_drop_1, CLATTN_ERROR_INVALID_ARGUMENT,
     "dropout_p"},
    {"dropout < 0", base_create, c_drop_neg, CLATTN_ERROR_INVALID_ARGUMENT,
     "dropout_p"},
    {"dropout NaN", base_create, c_drop_nan, CLATTN_ERROR_INVALID_ARGUMENT,
     "dropout_p"},
    {"eps < 0", base_create, c_eps_neg, CLATTN_ERROR_INVALID_ARGUMENT,
     "layernorm_eps"},
    {"eps NaN", base_create, c_eps_nan, CLATTN_ERROR_INVALID_ARGUMENT,
     "layernorm_eps"},
    {"pre-LN with kdim != E", base_create, c_preln_kdim,
     CLATTN_ERROR_INVALID_ARGUMENT, "pre_layernorm"},
    {"in_proj_weight with kdim != E", base_create, c_in_with_kdim,
     CLATTN_ERROR_INVALID_ARGUMENT, "in_proj_weight"},
    {"q_proj_weight missing", base_create, c_no_q,
     CLATTN_ERROR_INVALID_ARGUMENT, "q_proj_weight"},
    {"v_proj_weight missing", base_create, c_no_v,
     CLATTN_ERROR_INVALID_ARGUMENT, "v_proj_weight"},
    {"in_proj_bias missing", base_create, c_bias_missing,
     CLATTN_ERROR_INVALID_ARGUMENT, "in_proj_bias"},
    {"in_proj_bias without bias", base_create, c_bias_extra,
     CLATTN_ERROR_INVALID_ARGUMENT, "in_proj_bias"},
    {"out_proj_weight missing", base_create, c_out_missing,
     CLATTN_ERROR_INVALID_ARGUMENT, "out_proj_weight"},
    {"out_proj_weight with no_out_proj", base_create, c_out_extra,
     CLATTN_ERROR_INVALID_ARGUMENT, "out_proj_weight"},
    {"out_proj_bias with no_out_proj", base_create, c_out_bias_extra,
     CLATTN_ERROR_INVALID_ARGUMENT, "out_proj_bias"},
    {"norm_bias without pre-LN", base_create, c_norm_extra,
     CLATTN_ERROR_INVALID_ARGUMENT, "norm_bias"},
    {"weights overflow size_t", base_create, c_overflow,
     CLATTN_ERROR_SIZE_OVERFLOW, "overflow"},
    {"no input projection", packed_create, p_none_given,
     CLATTN_ERROR_INVALID_ARGUMENT, "in_proj_weight"},
    {"in_proj_weight and q_proj_weight", packed_create, p_both,
     CLATTN_ERROR_INVALID_ARGUMENT, "in_proj_weight"},
    {"two of three separate weights", packed_create, p_separate_partial,
     CLATTN_ERROR_INVALID_ARGUMENT, "v_proj_weight"},
    {"norm_weight missing", packed_create, p_norm_missing,
     CLATTN_ERROR_INVALID_ARGUMENT, "norm_weight"},
    {"norm_bias missing", packed_create, p_norm_bias_missing,
     CLATTN_ERROR_INVALID_ARGUMENT, "norm_bias"},
};

static void test_create(void)
{
    size_t before = memory_now();
    for (size_t i = 0; i < sizeof create_cases / sizeof create_cases[0]; ++i) {
        const create_case *c = &create_cases[i];
        create_args a;
        c->base(&a);
        c->mutate(&a);
        clattn_mha *layer = (clattn_mha *)&a; /* must become NULL on error */
        clattn_status s = clattn_mha_create(g_ctx, &a.d, &a.w, &layer);
        CHECK(s == c->want, "create '%s': got %s, want %s (%s)", c->name,
              clattn_status_string(s), clattn_status_string(c->want),
              clattn_context_last_error(g_ctx));
        if (s != CLATTN_SUCCESS)
            CHECK(layer == NULL, "create '%s': *out not NULL on error",
                  c->name);
        if (c->text)
            CHECK(text_has(c->text), "create '%s': last_error '%s' lacks '%s'",
                  c->name, clattn_context_last_error(g_ctx), c->text);
        clattn_mha_destroy(s == CLATTN_SUCCESS ? layer : NULL);
        CHECK(memory_now() == before, "create '%s': memory leaked", c->name);
    }
    /* NULL arguments. */
    create_args a;
    base_create(&a);
    clattn_mha *layer = NULL;
    CHECK(clattn_mha_create(NULL, &a.d, &a.w, &layer) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "create with a NULL context");
    CHECK(clattn_mha_create(g_ctx, NULL, &a.w, &layer) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "create with a NULL desc");
    CHECK(clattn_mha_create(g_ctx, &a.d, NULL, &layer) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "create with NULL weights");
    CHECK(clattn_mha_create(g_ctx, &a.d, &a.w, NULL) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "create with a NULL out");
    clattn_mha_destroy(NULL);
    clattn_mha_desc_init(NULL);
    CHECK(memory_now() == before, "memory after the NULL cases");
}

/* ------------------------------------------------------------------------ */
/* Forward calls                                                             */
/* ------------------------------------------------------------------------ */

/* One call in both forms. Device buffers are shared by all cases. */
typedef struct call_args {
    clattn_mha_call call;
    const float *q, *k, *v;
    const uint8_t *kpm;
    const void *mask;
    int host_out, host_weights; /* pass the host outputs */
    clattn_mha_buffers b;
    int null_buffers;
    int null_call;
} call_args;

static struct {
    cl_mem q, k, v, kpm, mask, out, weights;
    cl_mem small, foreign;
    cl_mem read_only, write_only; /* created with those flags, large */
} g_dev;

static void base_call(call_args *a)
{
    memset(a, 0, sizeof *a);
    clattn_mha_call *c = &a->call;
    c->batch = B, c->seq_q = SQ, c->seq_kv = SKV;
    c->has_key_padding_mask = 1;
    c->attn_mask_type = CLATTN_MASK_BOOL;
    c->need_weights = CLATTN_NEED_WEIGHTS_AVERAGE;
    a->q = g_q, a->k = g_k, a->v = g_v, a->kpm = g_kpm, a->mask = g_mask;
    a->host_out = a->host_weights = 1;
    clattn_mha_buffers *b = &a->b;
    b->query = g_dev.q, b->key = g_dev.k, b->value = g_dev.v;
    b->key_padding_mask = g_dev.kpm, b->attn_mask = g_dev.mask;
    b->out = g_dev.out, b->attn_weights = g_dev.weights;
}

enum { HOST = 1, DEVICE = 2, BOTH = 3 };

typedef struct call_case {
    const char *name;
    void (*mutate)(call_args *);
    clattn_status want;
    int forms;
} call_case;

#define MUT(fn, body)                                                          \
    static void fn(call_args *a)                                               \
    {                                                                          \
        body;                                                                  \
    }
MUT(f_none, (void)a)
MUT(f_no_masks, a->call.has_key_padding_mask = 0;
    a->call.attn_mask_type = CLATTN_MASK_NONE; a->kpm = NULL; a->mask = NULL;
    a->b.key_padding_mask = a->b.attn_mask = NULL)
MUT(f_no_weights, a->call.need_weights = CLATTN_NEED_WEIGHTS_NONE;
    a->host_weights = 0; a->b.attn_weights = NULL)
MUT(f_per_head, a->call.need_weights = CLATTN_NEED_WEIGHTS_PER_HEAD)
MUT(f_null_call, a->null_call = 1)
MUT(f_mask_type, a->call.attn_mask_type = (clattn_mask_type)3)
MUT(f_mask_type_neg, a->call.attn_mask_type = (clattn_mask_type)-1)
MUT(f_need, a->call.need_weights = (clattn_need_weights)3)
MUT(f_path, a->call.path = (clattn_sdpa_path)5)
MUT(f_batch0, a->call.batch = 0)
MUT(f_sq0, a->call.seq_q = 0)
MUT(f_skv0, a->call.seq_kv = 0)
MUT(f_overflow, a->call.batch = SIZE_MAX / 2)
MUT(f_overflow_heads, a->call.seq_q = SIZE_MAX / 64; a->call.seq_kv = 64)
MUT(f_int32, a->call.batch = 1; a->call.seq_kv = (size_t)1 << 31)
/* Huge logical shapes on the suite's small arrays and buffers: each must
   be refused before any is read. */
MUT(f_batch_2_31, a->call.batch = (size_t)1 << 31)
MUT(f_batch_2_32, a->call.batch = (size_t)1 << 32)
MUT(f_wrap_zero, a->call.batch = (size_t)1 << 61; a->call.seq_q = 1)
MUT(f_plane_wraps, a->call.batch = 1; a->call.seq_q = (size_t)1 << 32;
    a->call.seq_kv = (size_t)1 << 32)
/* Below SDPA's limits, but the projections need more than one allocation
   of this device. */
MUT(f_scratch_max_alloc, a->call.batch = 1;
    a->call.seq_q = (size_t)(g_info.max_alloc_bytes / (E * sizeof(float))) + 1)
/* Small projections, but the per-head weights averaged into attn_weights
   (B x H x Sq x Skv floats) are more than one allocation. */
MUT(f_probs_max_alloc, a->call.batch = 1;
    a->call.seq_q = a->call.seq_kv =
        (size_t)sqrt((double)g_info.max_alloc_bytes / (H * sizeof(float))) + 2)
/* 256 MB of projections, but a GEMM of more than 2^31 padded elements. */
MUT(f_gemm_int, a->call.batch = 1; a->call.seq_q = ((size_t)1 << 23) + 1;
    f_no_weights(a); f_no_masks(a))
MUT(f_out_read_only, a->b.out = g_dev.read_only)
MUT(f_weights_read_only, a->b.attn_weights = g_dev.read_only)
MUT(f_query_write_only, a->b.query = g_dev.write_only)
MUT(f_mask_write_only, a->b.attn_mask = g_dev.write_only)
MUT(f_fused_weights, a->call.path = CLATTN_SDPA_PATH_FUSED)
MUT(f_fused_cpu_weights, a->call.path = CLATTN_SDPA_PATH_FUSED_CPU)
MUT(f_query_null, a->q = NULL; a->b.query = NULL)
MUT(f_key_null, a->k = NULL; a->b.key = NULL)
MUT(f_value_null, a->v = NULL; a->b.value = NULL)
MUT(f_out_null, a->host_out = 0; a->b.out = NULL)
MUT(f_kpm_null, a->kpm = NULL; a->b.key_padding_mask = NULL)
MUT(f_mask_null, a->mask = NULL; a->b.attn_mask = NULL)
MUT(f_weights_null, a->host_weights = 0; a->b.attn_weights = NULL)
MUT(f_buffers_null, a->null_buffers = 1)
MUT(f_query_small, a->b.query = g_dev.small)
MUT(f_key_small, a->b.key = g_dev.small)
MUT(f_value_small, a->b.value = g_dev.small)
MUT(f_out_small, a->b.out = g_dev.small)
MUT(f_weights_small, a->call.need_weights = CLATTN_NEED_WEIGHTS_PER_HEAD;
    a->b.attn_weights = g_dev.small)
MUT(f_mask_small, a->call.attn_mask_per_head = 1)
MUT(f_kpm_small, a->b.key_padding_mask = g_dev.small)
MUT(f_foreign, a->b.value = g_dev.foreign)
MUT(f_out_is_query, a->b.out = g_dev.q)
MUT(f_weights_is_mask, a->b.attn_mask = g_dev.weights)
MUT(f_out_is_weights, a->b.attn_weights = g_dev.out)
#undef MUT

static const call_case call_cases[] = {
    {"valid", f_none, CLATTN_SUCCESS, BOTH},
    {"valid without masks", f_no_masks, CLATTN_SUCCESS, BOTH},
    {"valid without weights", f_no_weights, CLATTN_SUCCESS, BOTH},
    {"valid per-head weights", f_per_head, CLATTN_SUCCESS, BOTH},
    {"call NULL", f_null_call, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"attn_mask_type 3", f_mask_type, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"attn_mask_type -1", f_mask_type_neg, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"need_weights 3", f_need, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"path 5", f_path, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"batch 0", f_batch0, CLATTN_ERROR_INVALID_SHAPE, BOTH},
    {"seq_q 0", f_sq0, CLATTN_ERROR_INVALID_SHAPE, BOTH},
    {"seq_kv 0", f_skv0, CLATTN_ERROR_INVALID_SHAPE, BOTH},
    {"batch overflows", f_overflow, CLATTN_ERROR_SIZE_OVERFLOW, BOTH},
    {"seq_q overflows", f_overflow_heads, CLATTN_ERROR_SIZE_OVERFLOW, BOTH},
    {"seq_kv > INT32_MAX", f_int32, CLATTN_ERROR_UNSUPPORTED, BOTH},
    {"batch 2^31 (B x H past SDPA's int32)", f_batch_2_31,
     CLATTN_ERROR_UNSUPPORTED, BOTH},
    {"batch 2^32", f_batch_2_32, CLATTN_ERROR_UNSUPPORTED, BOTH},
    {"batch 2^61: query bytes wrap to 0", f_wrap_zero,
     CLATTN_ERROR_SIZE_OVERFLOW, BOTH},
    {"seq_q x seq_kv = 2^64", f_plane_wraps, CLATTN_ERROR_SIZE_OVERFLOW, BOTH},
    {"scratch over max_alloc_bytes", f_scratch_max_alloc,
     CLATTN_ERROR_UNSUPPORTED, BOTH},
    {"per-head weights scratch over max_alloc_bytes", f_probs_max_alloc,
     CLATTN_ERROR_UNSUPPORTED, BOTH},
    {"GEMM past CLBlast's int", f_gemm_int, CLATTN_ERROR_UNSUPPORTED, BOTH},
    {"out CL_MEM_READ_ONLY", f_out_read_only, CLATTN_ERROR_INVALID_ARGUMENT,
     DEVICE},
    {"attn_weights CL_MEM_READ_ONLY", f_weights_read_only,
     CLATTN_ERROR_INVALID_ARGUMENT, DEVICE},
    {"query CL_MEM_WRITE_ONLY", f_query_write_only,
     CLATTN_ERROR_INVALID_ARGUMENT, DEVICE},
    {"attn_mask CL_MEM_WRITE_ONLY", f_mask_write_only,
     CLATTN_ERROR_INVALID_ARGUMENT, DEVICE},
    {"need_weights on the fused path", f_fused_weights,
     CLATTN_ERROR_UNSUPPORTED, BOTH},
    {"need_weights on fused-cpu", f_fused_cpu_weights, CLATTN_ERROR_UNSUPPORTED,
     BOTH},
    {"query NULL", f_query_null, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"key NULL", f_key_null, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"value NULL", f_value_null, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"out NULL", f_out_null, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"key_padding_mask NULL", f_kpm_null, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"attn_mask NULL", f_mask_null, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"attn_weights NULL", f_weights_null, CLATTN_ERROR_INVALID_ARGUMENT, BOTH},
    {"buffers NULL", f_buffers_null, CLATTN_ERROR_INVALID_ARGUMENT, DEVICE},
    {"query too small", f_query_small, CLATTN_ERROR_BUFFER_TOO_SMALL, DEVICE},
    {"key too small", f_key_small, CLATTN_ERROR_BUFFER_TOO_SMALL, DEVICE},
    {"value too small", f_value_small, CLATTN_ERROR_BUFFER_TOO_SMALL, DEVICE},
    {"out too small", f_out_small, CLATTN_ERROR_BUFFER_TOO_SMALL, DEVICE},
    {"per-head weights too small", f_weights_small,
     CLATTN_ERROR_BUFFER_TOO_SMALL, DEVICE},
    {"per-head mask in a 2-D buffer", f_mask_small,
     CLATTN_ERROR_BUFFER_TOO_SMALL, DEVICE},
    {"key_padding_mask too small", f_kpm_small, CLATTN_ERROR_BUFFER_TOO_SMALL,
     DEVICE},
    {"value of another cl_context", f_foreign, CLATTN_ERROR_INVALID_ARGUMENT,
     DEVICE},
    {"out is the query buffer", f_out_is_query, CLATTN_ERROR_INVALID_ARGUMENT,
     DEVICE},
    {"attn_weights is the mask buffer", f_weights_is_mask,
     CLATTN_ERROR_INVALID_ARGUMENT, DEVICE},
    {"attn_weights is out", f_out_is_weights, CLATTN_ERROR_INVALID_ARGUMENT,
     DEVICE},
};

/* The device outputs' fill, to see that nothing was written. */
static float g_fill[NHEADS * 4];

static void refill_outputs(void)
{
    cl_mem outs[2] = {g_dev.out, g_dev.weights};
    for (int i = 0; i < 2; ++i)
        clEnqueueWriteBuffer(g_info.queue, outs[i], CL_TRUE, 0, sizeof g_fill,
                             g_fill, 0, NULL, NULL);
}

static int outputs_untouched(void)
{
    static float got[NHEADS * 4];
    cl_mem outs[2] = {g_dev.out, g_dev.weights};
    int same = 1;
    clFinish(g_info.queue);
    for (int i = 0; i < 2; ++i) {
        clEnqueueReadBuffer(g_info.queue, outs[i], CL_TRUE, 0, sizeof got, got,
                            0, NULL, NULL);
        same &= memcmp(got, g_fill, sizeof got) == 0;
    }
    return same;
}

static void run_call_case(clattn_mha *layer, const call_case *c,
                          size_t baseline)
{
    call_args a;
    base_call(&a);
    c->mutate(&a);
    const clattn_mha_call *call = a.null_call ? NULL : &a.call;
    if (c->forms & HOST) {
        float *out = guarded_alloc(NOUT), *w = guarded_alloc(NHEADS);
        clattn_status s = clattn_mha_forward_host(
            layer, call, a.q, a.k, a.v, a.kpm, a.mask, a.host_out ? out : NULL,
            a.host_weights ? w : NULL);
        CHECK(s == c->want, "host '%s': got %s, want %s (%s)", c->name,
              clattn_status_string(s), clattn_status_string(c->want),
              clattn_context_last_error(g_ctx));
        if (c->want != CLATTN_SUCCESS) {
            CHECK(guarded_untouched(out, NOUT) && guarded_untouched(w, NHEADS),
                  "host '%s': an output was written", c->name);
            CHECK(clattn_context_last_error(g_ctx)[0] != '\0',
                  "host '%s': no detail text", c->name);
        } else {
            CHECK(!guarded_untouched(out, NOUT) && guarded_intact(out, NOUT),
                  "host '%s': out not written, or past its end", c->name);
        }
        CHECK(memory_now() == baseline, "host '%s': memory %zu, baseline %zu",
              c->name, memory_now(), baseline);
        guarded_free(out), guarded_free(w);
    }
    if (c->forms & DEVICE) {
        refill_outputs();
        clattn_status s =
            clattn_mha_forward(layer, call, a.null_buffers ? NULL : &a.b);
        CHECK(s == c->want, "device '%s': got %s, want %s (%s)", c->name,
              clattn_status_string(s), clattn_status_string(c->want),
              clattn_context_last_error(g_ctx));
        int untouched = outputs_untouched();
        if (c->want != CLATTN_SUCCESS)
            CHECK(untouched, "device '%s': an output buffer was written",
                  c->name);
        else
            CHECK(!untouched, "device '%s': nothing written", c->name);
        CHECK(memory_now() == baseline, "device '%s': memory %zu, baseline %zu",
              c->name, memory_now(), baseline);
    }
}

static void test_calls(void)
{
    size_t before = memory_now();
    create_args ca;
    base_create(&ca);
    clattn_mha *layer = NULL;
    clattn_status s = clattn_mha_create(g_ctx, &ca.d, &ca.w, &layer);
    CHECK(s == CLATTN_SUCCESS, "create: %s", clattn_status_string(s));
    if (s != CLATTN_SUCCESS)
        return;
    size_t baseline = memory_now();
    for (size_t i = 0; i < sizeof call_cases / sizeof call_cases[0]; ++i)
        run_call_case(layer, &call_cases[i], baseline);
    /* A NULL layer. */
    call_args a;
    base_call(&a);
    float out[NOUT], w[NAVG];
    CHECK(clattn_mha_forward(NULL, &a.call, &a.b) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "forward with a NULL layer");
    CHECK(clattn_mha_forward_host(NULL, &a.call, g_q, g_k, g_v, g_kpm, g_mask,
                                  out, w) == CLATTN_ERROR_INVALID_ARGUMENT,
          "forward_host with a NULL layer");
    /* Still usable after all that. */
    run_call_case(layer, &call_cases[0], baseline);
    clattn_mha_destroy(layer);
    CHECK(memory_now() == before, "memory %zu after destroy, %zu before",
          memory_now(), before);
}

/* The self-attention and pre-LN layout of the checks: the same key/query
   buffer, a key buffer too small for seq_kv != seq_q. */
static void test_self_attention_sizes(void)
{
    create_args ca;
    packed_create(&ca);
    clattn_mha *layer = NULL;
    clattn_status s = clattn_mha_create(g_ctx, &ca.d, &ca.w, &layer);
    CHECK(s == CLATTN_SUCCESS, "create packed: %s", clattn_status_string(s));
    if (s != CLATTN_SUCCESS)
        return;
    size_t baseline = memory_now();
    clattn_mha_call call = {0};
    call.batch = B, call.seq_q = SQ, call.seq_kv = SQ;
    clattn_mha_buffers b = {g_dev.q, g_dev.q,   g_dev.q, NULL,
                            NULL,    g_dev.out, NULL};
    refill_outputs();
    s = clattn_mha_forward(layer, &call, &b);
    CHECK(s == CLATTN_SUCCESS, "self-attention: %s (%s)",
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    /* seq_kv beyond what the shared buffer holds. */
    call.seq_kv = SQ * 2;
    refill_outputs();
    s = clattn_mha_forward(layer, &call, &b);
    CHECK(s == CLATTN_ERROR_BUFFER_TOO_SMALL,
          "key past the shared buffer: got %s", clattn_status_string(s));
    CHECK(outputs_untouched(), "key past the shared buffer: written");
    CHECK(memory_now() == baseline, "memory after the self-attention cases");
    clattn_mha_destroy(layer);
}

static cl_mem make(cl_context c, const void *host, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              bytes, (void *)host, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer: %d", (int)err);
    return m;
}

static void setup(void)
{
    g_ctx = test_context();
    clattn_context_info(g_ctx, &g_info);
    test_rng r = test_rng_make(5);
    test_fill(&r, g_wq, E * E, -0.3, 0.3);
    test_fill(&r, g_wk, E * KD, -0.3, 0.3);
    test_fill(&r, g_wv, E * VD, -0.3, 0.3);
    test_fill(&r, g_win, 3 * E * E, -0.3, 0.3);
    test_fill(&r, g_bin, 3 * E, -0.3, 0.3);
    test_fill(&r, g_wout, E * E, -0.3, 0.3);
    test_fill(&r, g_bout, E, -0.3, 0.3);
    test_fill(&r, g_norm_w, E, 0.5, 1.5);
    test_fill(&r, g_norm_b, E, -0.3, 0.3);
    test_fill(&r, g_q, NQ, -1, 1);
    test_fill(&r, g_k, NK, -1, 1);
    test_fill(&r, g_v, NV, -1, 1);
    for (size_t i = 0; i < NKPM; ++i)
        g_kpm[i] = i % 3 == 1;
    for (size_t i = 0; i < NHEADS; ++i)
        g_mask[i] = i % 5 == 2;
    for (size_t i = 0; i < sizeof g_fill / sizeof g_fill[0]; ++i)
        g_fill[i] = -12345.0f;
    cl_int err;
    g_dev.q = make(g_info.cl_ctx, g_q, sizeof g_q);
    g_dev.k = make(g_info.cl_ctx, g_k, sizeof g_k);
    g_dev.v = make(g_info.cl_ctx, g_v, sizeof g_v);
    g_dev.kpm = make(g_info.cl_ctx, g_kpm, NKPM);
    g_dev.mask = make(g_info.cl_ctx, g_mask, NMASK); /* exactly 2-D */
    g_dev.out = make(g_info.cl_ctx, g_fill, sizeof g_fill);
    g_dev.weights = make(g_info.cl_ctx, g_fill, sizeof g_fill);
    g_dev.small = make(g_info.cl_ctx, g_big, 7);
    g_dev.read_only = clCreateBuffer(g_info.cl_ctx, CL_MEM_READ_ONLY,
                                     sizeof g_big, NULL, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer(READ_ONLY): %d", (int)err);
    g_dev.write_only = clCreateBuffer(g_info.cl_ctx, CL_MEM_WRITE_ONLY,
                                      sizeof g_big, NULL, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer(WRITE_ONLY): %d", (int)err);
    g_foreign = clCreateContext(NULL, 1, &g_info.device, NULL, NULL, &err);
    CHECK(err == CL_SUCCESS, "second clCreateContext: %d", (int)err);
    g_dev.foreign = make(g_foreign, g_big, sizeof g_big);
}

int main(void)
{
    setup();
    size_t before = memory_now();
    test_create();
    test_calls();
    test_self_attention_sizes();
    CHECK(memory_now() == before, "memory %zu at the end, %zu at the start",
          memory_now(), before);
    cl_mem all[] = {g_dev.q,         g_dev.k,         g_dev.v,
                    g_dev.kpm,       g_dev.mask,      g_dev.out,
                    g_dev.weights,   g_dev.small,     g_dev.foreign,
                    g_dev.read_only, g_dev.write_only};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        clReleaseMemObject(all[i]);
    clReleaseContext(g_foreign);
    clattn_context_destroy(g_ctx);
    return test_finish("test_layer_mha_errors");
}
