/* Error handling of the talking-heads layer: every bad description, weight
   set and call is rejected with its documented status and a detail text;
   a failed create returns no layer and holds no memory; a failed forward
   writes nothing (device outputs keep their fill, host outputs their
   canaries and fill), allocates nothing that outlives the call, and leaves
   the layer and context usable: a valid call after all of them still
   matches the double-precision reference. Tiny shapes (C=8, H=2, B=2,
   N=5): the suite is about validation, not arithmetic. */
#include "reference_talking_heads.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C 8
#define H 2
#define B 2
#define N 5
#define NX (B * N * C)
#define NA (B * H * N * N)

static clattn_context *g_ctx;
static clattn_info g_info;
static float g_x[NX], g_wqkv[3 * C * C], g_bqkv[3 * C], g_wl[H * H], g_bl[H],
    g_ww[H * H], g_bw[H], g_wp[C * C], g_bp[C];

static size_t mem_now(void)
{
    return test_mem_now(g_ctx);
}

static void base_desc(clattn_talking_heads_desc *d)
{
    memset(d, 0, sizeof *d);
    d->dim = C;
    d->num_heads = H;
    d->qkv_bias = 1;
}

static void base_weights(clattn_talking_heads_weights *w)
{
    clattn_talking_heads_weights v = {g_wqkv, g_bqkv, g_wl, g_bl,
                                      g_ww,   g_bw,   g_wp, g_bp};
    *w = v;
}

/* ------------------------------------------------------------------------ */
/* create                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct create_case {
    const char *name;
    void (*mutate)(clattn_talking_heads_desc *, clattn_talking_heads_weights *);
    clattn_status want;
    const char *in_message; /* expected in last_error, or NULL */
} create_case;

#define MUTATOR(fn, body)                                                      \
    static void fn(clattn_talking_heads_desc *d,                               \
                   clattn_talking_heads_weights *w)                            \
    {                                                                          \
        (void)d;                                                               \
        (void)w;                                                               \
        body;                                                                  \
    }

MUTATOR(dim_zero, d->dim = 0)
MUTATOR(heads_zero, d->num_heads = 0)
MUTATOR(dim_not_multiple, d->dim = 9)
MUTATOR(dropout_negative, d->dropout_p = -0.1f)
MUTATOR(dropout_one, d->dropout_p = 1.0f)
MUTATOR(dropout_nan, d->dropout_p = NAN)
MUTATOR(dim_overflow, (d->dim = (size_t)1 << 31, d->num_heads = 1))
MUTATOR(no_qkv_weight, w->qkv_weight = NULL)
MUTATOR(no_qkv_bias, w->qkv_bias = NULL)
MUTATOR(extra_qkv_bias, d->qkv_bias = 0)
MUTATOR(no_proj_l_weight, w->proj_l_weight = NULL)
MUTATOR(no_proj_l_bias, w->proj_l_bias = NULL)
MUTATOR(no_proj_w_weight, w->proj_w_weight = NULL)
MUTATOR(no_proj_w_bias, w->proj_w_bias = NULL)
MUTATOR(no_proj_weight, w->proj_weight = NULL)
MUTATOR(no_proj_bias, w->proj_bias = NULL)

static const create_case CREATE_CASES[] = {
    {"dim 0", dim_zero, CLATTN_ERROR_INVALID_SHAPE, "dim"},
    {"num_heads 0", heads_zero, CLATTN_ERROR_INVALID_SHAPE, "num_heads"},
    {"dim % num_heads", dim_not_multiple, CLATTN_ERROR_INVALID_SHAPE,
     "multiple"},
    {"dropout -0.1", dropout_negative, CLATTN_ERROR_INVALID_ARGUMENT,
     "dropout_p"},
    {"dropout 1", dropout_one, CLATTN_ERROR_INVALID_ARGUMENT, "dropout_p"},
    {"dropout NaN", dropout_nan, CLATTN_ERROR_INVALID_ARGUMENT, "dropout_p"},
    {"dim 2^31", dim_overflow, CLATTN_ERROR_SIZE_OVERFLOW, NULL},
    {"no qkv_weight", no_qkv_weight, CLATTN_ERROR_INVALID_ARGUMENT,
     "qkv_weight"},
    {"no qkv_bias", no_qkv_bias, CLATTN_ERROR_INVALID_ARGUMENT, "qkv_bias"},
    {"qkv_bias not wanted", extra_qkv_bias, CLATTN_ERROR_INVALID_ARGUMENT,
     "qkv_bias"},
    {"no proj_l_weight", no_proj_l_weight, CLATTN_ERROR_INVALID_ARGUMENT,
     "proj_l_weight"},
    {"no proj_l_bias", no_proj_l_bias, CLATTN_ERROR_INVALID_ARGUMENT,
     "proj_l_bias"},
    {"no proj_w_weight", no_proj_w_weight, CLATTN_ERROR_INVALID_ARGUMENT,
     "proj_w_weight"},
    {"no proj_w_bias", no_proj_w_bias, CLATTN_ERROR_INVALID_ARGUMENT,
     "proj_w_bias"},
    {"no proj_weight", no_proj_weight, CLATTN_ERROR_INVALID_ARGUMENT,
     "proj_weight"},
    {"no proj_bias", no_proj_bias, CLATTN_ERROR_INVALID_ARGUMENT, "proj_bias"},
};

static void create_errors(void)
{
    size_t base = mem_now();
    clattn_talking_heads_desc d;
    clattn_talking_heads_weights w;
    for (size_t i = 0; i < sizeof CREATE_CASES / sizeof CREATE_CASES[0]; ++i) {
        const create_case *c = &CREATE_CASES[i];
        base_desc(&d);
        base_weights(&w);
        c->mutate(&d, &w);
        clattn_talking_heads *layer = (clattn_talking_heads *)&d; /* junk */
        clattn_status s = clattn_talking_heads_create(g_ctx, &d, &w, &layer);
        const char *msg = clattn_context_last_error(g_ctx);
        CHECK(s == c->want, "create %s: got %s, want %s (%s)", c->name,
              clattn_status_string(s), clattn_status_string(c->want), msg);
        CHECK(layer == NULL, "create %s: *out not NULL", c->name);
        CHECK(msg[0] != '\0', "create %s: no detail text", c->name);
        if (c->in_message)
            CHECK(strstr(msg, c->in_message) != NULL,
                  "create %s: \"%s\" does not name %s", c->name, msg,
                  c->in_message);
        CHECK(mem_now() == base, "create %s: %zu bytes held", c->name,
              mem_now() - base);
        if (s == CLATTN_SUCCESS)
            clattn_talking_heads_destroy(layer);
    }

    /* NULL arguments. */
    base_desc(&d);
    base_weights(&w);
    clattn_talking_heads *layer = NULL;
    CHECK(clattn_talking_heads_create(NULL, &d, &w, &layer) ==
                  CLATTN_ERROR_INVALID_ARGUMENT &&
              layer == NULL,
          "create with NULL ctx");
    CHECK(clattn_talking_heads_create(g_ctx, NULL, &w, &layer) ==
                  CLATTN_ERROR_INVALID_ARGUMENT &&
              layer == NULL,
          "create with NULL desc");
    CHECK(clattn_talking_heads_create(g_ctx, &d, NULL, &layer) ==
                  CLATTN_ERROR_INVALID_ARGUMENT &&
              layer == NULL,
          "create with NULL weights");
    CHECK(clattn_talking_heads_create(g_ctx, &d, &w, NULL) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "create with NULL out");
    CHECK(mem_now() == base, "create NULLs: memory held");
    clattn_talking_heads_destroy(NULL); /* allowed */
}

/* ------------------------------------------------------------------------ */
/* forward (device buffers)                                                  */
/* ------------------------------------------------------------------------ */

static const float FILL = 777.0f;

static cl_mem filled_buffer(cl_context cl, size_t n)
{
    return test_buffer_filled(cl, n, FILL);
}

static int still_filled(cl_command_queue q, cl_mem m, size_t n)
{
    return test_buffer_holds(q, m, n, FILL);
}

typedef struct dev_call {
    clattn_talking_heads_call call;
    cl_mem x, out, attn;
} dev_call;

typedef struct dev_buffers {
    cl_mem x, out, attn;                   /* right sizes */
    cl_mem x_small, out_small, attn_small; /* one float short */
    cl_mem foreign;                        /* another cl_context */
    cl_mem read_only, write_only;          /* created with those flags */
} dev_buffers;

static dev_buffers g_dev;

typedef struct forward_case {
    const char *name;
    void (*mutate)(dev_call *);
    clattn_status want;
} forward_case;

#define FMUTATOR(fn, body)                                                     \
    static void fn(dev_call *c)                                                \
    {                                                                          \
        body;                                                                  \
    }

/* The cases both forms refuse alike: X(prefix##_name, change, label,
   status), expanded once into each form's mutators and once into each
   form's table (dev_call and host_call name their fields alike). Huge
   logical shapes come with the small real arrays: they are refused before
   any is read. */
#define SHARED_CASES(X, prefix)                                                \
    X(prefix##_batch0, c->call.batch = 0, "batch 0",                           \
      CLATTN_ERROR_INVALID_SHAPE)                                              \
    X(prefix##_seq0, c->call.seq = 0, "seq 0", CLATTN_ERROR_INVALID_SHAPE)     \
    X(prefix##_fused_attn, c->call.path = CLATTN_SDPA_PATH_FUSED,              \
      "FUSED with attn", CLATTN_ERROR_UNSUPPORTED)                             \
    X(prefix##_x_null, c->x = NULL, "x NULL", CLATTN_ERROR_INVALID_ARGUMENT)   \
    X(prefix##_out_null, c->out = NULL, "out NULL",                            \
      CLATTN_ERROR_INVALID_ARGUMENT)                                           \
    X(prefix##_batch_huge, c->call.batch = SIZE_MAX / 4, "batch SIZE_MAX/4",   \
      CLATTN_ERROR_SIZE_OVERFLOW)                                              \
    X(prefix##_batch_32bit,                                                    \
      (c->call.batch = (size_t)1 << 31, c->call.seq = 1),                      \
      "batch 2^31 (32-bit kernels)", CLATTN_ERROR_UNSUPPORTED)                 \
    X(prefix##_tokens_wrap,                                                    \
      (c->call.batch = (size_t)1 << 32, c->call.seq = (size_t)1 << 32),        \
      "batch x seq = 2^64", CLATTN_ERROR_SIZE_OVERFLOW)                        \
    X(prefix##_bytes_wrap_zero,                                                \
      (c->call.batch = (size_t)1 << 59, c->call.seq = 1),                      \
      "batch 2^59: qkv bytes wrap to 0", CLATTN_ERROR_SIZE_OVERFLOW)           \
    X(prefix##_scratch_max_alloc,                                              \
      (c->call.batch = 1,                                                      \
       c->call.seq =                                                           \
           (size_t)(g_info.max_alloc_bytes / (3 * C * sizeof(float))) + 1),    \
      "qkv scratch over max_alloc_bytes", CLATTN_ERROR_UNSUPPORTED)            \
    /* Small GEMMs, but the packed V (B x H x 64 padded keys x 16 features)    \
       is more than one allocation. */                                         \
    X(prefix##_vp_max_alloc,                                                   \
      (c->call.batch =                                                         \
           (size_t)(g_info.max_alloc_bytes / (H * 64 * 16 * 4)) + 1,           \
       c->call.seq = 1, c->attn = NULL),                                       \
      "packed V over max_alloc_bytes", CLATTN_ERROR_UNSUPPORTED)               \
    X(prefix##_gemm_int,                                                       \
      (c->call.batch = 1, c->call.seq = ((size_t)1 << 23) + 1,                 \
       c->attn = NULL),                                                        \
      "GEMM past CLBlast's int", CLATTN_ERROR_UNSUPPORTED)
#define SHARED_ROW(fn, change, label, status) {label, fn, status},

#define SHARED_FMUTATOR(fn, change, label, status) FMUTATOR(fn, change)
SHARED_CASES(SHARED_FMUTATOR, f)
FMUTATOR(f_path_bad, c->call.path = (clattn_sdpa_path)99)
FMUTATOR(f_path_neg, c->call.path = (clattn_sdpa_path)-1)
FMUTATOR(f_fused_cpu_attn, c->call.path = CLATTN_SDPA_PATH_FUSED_CPU)
FMUTATOR(f_fused_gpu_attn, c->call.path = CLATTN_SDPA_PATH_FUSED_GPU)
FMUTATOR(f_out_is_x, c->out = c->x)
FMUTATOR(f_attn_is_x, c->attn = c->x)
FMUTATOR(f_attn_is_out, c->attn = c->out)
FMUTATOR(f_x_small, c->x = g_dev.x_small)
FMUTATOR(f_out_small, c->out = g_dev.out_small)
FMUTATOR(f_attn_small, c->attn = g_dev.attn_small)
FMUTATOR(f_x_foreign, c->x = g_dev.foreign)
FMUTATOR(f_seq_huge, c->call.seq = (size_t)1 << 31)
FMUTATOR(f_out_read_only, c->out = g_dev.read_only)
FMUTATOR(f_attn_read_only, c->attn = g_dev.read_only)
FMUTATOR(f_x_write_only, c->x = g_dev.write_only)

static const forward_case FORWARD_CASES[] = {
    {"path 99", f_path_bad, CLATTN_ERROR_INVALID_ARGUMENT},
    {"path -1", f_path_neg, CLATTN_ERROR_INVALID_ARGUMENT},
    {"FUSED_CPU with attn", f_fused_cpu_attn, CLATTN_ERROR_UNSUPPORTED},
    {"FUSED_GPU with attn", f_fused_gpu_attn, CLATTN_ERROR_UNSUPPORTED},
    {"out is x", f_out_is_x, CLATTN_ERROR_INVALID_ARGUMENT},
    {"attn is x", f_attn_is_x, CLATTN_ERROR_INVALID_ARGUMENT},
    {"attn is out", f_attn_is_out, CLATTN_ERROR_INVALID_ARGUMENT},
    {"x too small", f_x_small, CLATTN_ERROR_BUFFER_TOO_SMALL},
    {"out too small", f_out_small, CLATTN_ERROR_BUFFER_TOO_SMALL},
    {"attn too small", f_attn_small, CLATTN_ERROR_BUFFER_TOO_SMALL},
    {"x of another context", f_x_foreign, CLATTN_ERROR_INVALID_ARGUMENT},
    {"seq 2^31", f_seq_huge, CLATTN_ERROR_SIZE_OVERFLOW},
    {"out CL_MEM_READ_ONLY", f_out_read_only, CLATTN_ERROR_INVALID_ARGUMENT},
    {"attn CL_MEM_READ_ONLY", f_attn_read_only, CLATTN_ERROR_INVALID_ARGUMENT},
    {"x CL_MEM_WRITE_ONLY", f_x_write_only, CLATTN_ERROR_INVALID_ARGUMENT},
    SHARED_CASES(SHARED_ROW, f)};

static void forward_errors(clattn_talking_heads *layer)
{
    size_t base = mem_now();
    for (size_t i = 0; i < sizeof FORWARD_CASES / sizeof FORWARD_CASES[0];
         ++i) {
        const forward_case *fc = &FORWARD_CASES[i];
        dev_call c = {{B, N, CLATTN_SDPA_PATH_UNFUSED, NULL},
                      g_dev.x,
                      g_dev.out,
                      g_dev.attn};
        clattn_layer_timing t = {-1, -1, -1};
        c.call.timing = &t;
        fc->mutate(&c);
        clattn_status s =
            clattn_talking_heads_forward(layer, &c.call, c.x, c.out, c.attn);
        const char *msg = clattn_context_last_error(g_ctx);
        CHECK(s == fc->want, "forward %s: got %s, want %s (%s)", fc->name,
              clattn_status_string(s), clattn_status_string(fc->want), msg);
        CHECK(msg[0] != '\0', "forward %s: no detail text", fc->name);
        CHECK(t.projection_ms == -1 && t.attention_ms == -1,
              "forward %s: timing written", fc->name);
        CHECK(still_filled(g_info.queue, g_dev.out, NX) &&
                  still_filled(g_info.queue, g_dev.attn, NA) &&
                  still_filled(g_info.queue, g_dev.out_small, NX - 1) &&
                  still_filled(g_info.queue, g_dev.attn_small, NA - 1),
              "forward %s: an output was written", fc->name);
        CHECK(mem_now() == base, "forward %s: %zu bytes held", fc->name,
              mem_now() - base);
    }
    clattn_talking_heads_call call = {B, N, CLATTN_SDPA_PATH_AUTO, NULL};
    CHECK(clattn_talking_heads_forward(NULL, &call, g_dev.x, g_dev.out, NULL) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "forward with NULL layer");
    CHECK(clattn_talking_heads_forward(layer, NULL, g_dev.x, g_dev.out, NULL) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "forward with NULL call");
    CHECK(still_filled(g_info.queue, g_dev.out, NX), "NULL cases wrote out");
}

/* ------------------------------------------------------------------------ */
/* forward_host                                                              */
/* ------------------------------------------------------------------------ */

typedef struct host_call {
    clattn_talking_heads_call call;
    const float *x;
    float *out, *attn;
} host_call;

static float *g_hx, *g_hout, *g_hattn; /* guarded */

typedef struct host_case {
    const char *name;
    void (*mutate)(host_call *);
    clattn_status want;
} host_case;

#define HMUTATOR(fn, body)                                                     \
    static void fn(host_call *c)                                               \
    {                                                                          \
        body;                                                                  \
    }

#define SHARED_HMUTATOR(fn, change, label, status) HMUTATOR(fn, change)
SHARED_CASES(SHARED_HMUTATOR, h)
HMUTATOR(h_path_bad, c->call.path = (clattn_sdpa_path)7)
HMUTATOR(h_out_is_x, c->out = g_hx)
HMUTATOR(h_out_overlaps_x, c->x = g_hout + 3)
HMUTATOR(h_attn_overlaps_out, c->attn = g_hout + NX - 1)
HMUTATOR(h_attn_is_x, c->x = g_hattn)

static const host_case HOST_CASES[] = {
    {"path 7", h_path_bad, CLATTN_ERROR_INVALID_ARGUMENT},
    {"out is x", h_out_is_x, CLATTN_ERROR_INVALID_ARGUMENT},
    {"out overlaps x", h_out_overlaps_x, CLATTN_ERROR_INVALID_ARGUMENT},
    {"attn overlaps out", h_attn_overlaps_out, CLATTN_ERROR_INVALID_ARGUMENT},
    {"attn is x", h_attn_is_x, CLATTN_ERROR_INVALID_ARGUMENT},
    SHARED_CASES(SHARED_ROW, h)};

static void host_errors(clattn_talking_heads *layer)
{
    size_t base = mem_now();
    for (size_t i = 0; i < sizeof HOST_CASES / sizeof HOST_CASES[0]; ++i) {
        const host_case *hc = &HOST_CASES[i];
        host_call c = {
            {B, N, CLATTN_SDPA_PATH_UNFUSED, NULL}, g_hx, g_hout, g_hattn};
        hc->mutate(&c);
        clattn_status s = clattn_talking_heads_forward_host(layer, &c.call, c.x,
                                                            c.out, c.attn);
        const char *msg = clattn_context_last_error(g_ctx);
        CHECK(s == hc->want, "host %s: got %s, want %s (%s)", hc->name,
              clattn_status_string(s), clattn_status_string(hc->want), msg);
        CHECK(msg[0] != '\0', "host %s: no detail text", hc->name);
        CHECK(guarded_untouched(g_hout, NX) && guarded_untouched(g_hattn, NA),
              "host %s: an output was written", hc->name);
        CHECK(mem_now() == base, "host %s: %zu bytes held", hc->name,
              mem_now() - base);
    }
    clattn_talking_heads_call call = {B, N, CLATTN_SDPA_PATH_AUTO, NULL};
    CHECK(clattn_talking_heads_forward_host(NULL, &call, g_x, g_hout, NULL) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "host with NULL layer");
    CHECK(clattn_talking_heads_forward_host(layer, NULL, g_x, g_hout, NULL) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "host with NULL call");
    CHECK(guarded_untouched(g_hout, NX), "host NULL cases wrote out");
}

/* After every rejection the layer still computes the right thing. */
static void still_usable(clattn_talking_heads *layer)
{
    clattn_talking_heads_desc d;
    clattn_talking_heads_weights w;
    base_desc(&d);
    base_weights(&w);
    double ref_out[NX], ref_attn[NA];
    ref_talking_heads(&d, &w, B, N, g_x, 0, ref_out, ref_attn);
    clattn_talking_heads_call call = {B, N, CLATTN_SDPA_PATH_AUTO, NULL};
    clattn_status s =
        clattn_talking_heads_forward_host(layer, &call, g_x, g_hout, g_hattn);
    CHECK(s == CLATTN_SUCCESS, "valid call after the errors: %s",
          clattn_context_last_error(g_ctx));
    CHECK(clattn_context_last_error(g_ctx)[0] == '\0',
          "last_error not cleared by a success");
    CHECK(compare_close("out", g_hout, ref_out, NX, TOL_ATOL, TOL_RTOL) == 0 &&
              compare_close("attn", g_hattn, ref_attn, NA, TOL_ATOL,
                            TOL_RTOL) == 0,
          "valid call after the errors matches the reference");
    call.path = CLATTN_SDPA_PATH_FUSED;
    s = clattn_talking_heads_forward(layer, &call, g_dev.x, g_dev.out, NULL);
    CHECK(s == CLATTN_SUCCESS, "valid device call after the errors: %s",
          clattn_context_last_error(g_ctx));
}

int main(void)
{
    g_ctx = test_context();
    clattn_context_info(g_ctx, &g_info);
    test_rng r = test_rng_make(11);
    test_fill(&r, g_x, NX, -1, 1);
    test_fill(&r, g_wqkv, 3 * C * C, -0.35, 0.35);
    test_fill(&r, g_bqkv, 3 * C, -0.35, 0.35);
    test_fill(&r, g_wl, H * H, -0.7, 0.7);
    test_fill(&r, g_bl, H, -0.7, 0.7);
    test_fill(&r, g_ww, H * H, -0.7, 0.7);
    test_fill(&r, g_bw, H, -0.7, 0.7);
    test_fill(&r, g_wp, C * C, -0.35, 0.35);
    test_fill(&r, g_bp, C, -0.35, 0.35);

    size_t empty = mem_now();
    create_errors();

    cl_int err;
    cl_context foreign =
        clCreateContext(NULL, 1, &g_info.device, NULL, NULL, &err);
    CHECK(err == CL_SUCCESS, "second cl_context: %d", err);
    g_dev.x = filled_buffer(g_info.cl_ctx, NX);
    g_dev.out = filled_buffer(g_info.cl_ctx, NX);
    g_dev.attn = filled_buffer(g_info.cl_ctx, NA);
    g_dev.x_small = filled_buffer(g_info.cl_ctx, NX - 1);
    g_dev.out_small = filled_buffer(g_info.cl_ctx, NX - 1);
    g_dev.attn_small = filled_buffer(g_info.cl_ctx, NA - 1);
    g_dev.foreign = filled_buffer(foreign, NX);
    cl_int flag_err;
    g_dev.read_only = clCreateBuffer(g_info.cl_ctx, CL_MEM_READ_ONLY,
                                     NA * sizeof(float), NULL, &flag_err);
    CHECK(flag_err == CL_SUCCESS, "clCreateBuffer(READ_ONLY)");
    g_dev.write_only = clCreateBuffer(g_info.cl_ctx, CL_MEM_WRITE_ONLY,
                                      NA * sizeof(float), NULL, &flag_err);
    CHECK(flag_err == CL_SUCCESS, "clCreateBuffer(WRITE_ONLY)");
    g_hx = guarded_alloc(NX);
    memcpy(g_hx, g_x, sizeof g_x);
    g_hout = guarded_alloc(NX);
    g_hattn = guarded_alloc(NA);

    clattn_talking_heads_desc d;
    clattn_talking_heads_weights w;
    base_desc(&d);
    base_weights(&w);
    clattn_talking_heads *layer = NULL;
    clattn_status s = clattn_talking_heads_create(g_ctx, &d, &w, &layer);
    CHECK(s == CLATTN_SUCCESS, "create: %s", clattn_context_last_error(g_ctx));
    if (layer) {
        forward_errors(layer);
        host_errors(layer);
        still_usable(layer);
        clattn_talking_heads_destroy(layer);
    }
    CHECK(mem_now() == empty, "memory %zu after destroy, %zu before create",
          mem_now(), empty);

    cl_mem all[] = {g_dev.x,       g_dev.out,       g_dev.attn,
                    g_dev.x_small, g_dev.out_small, g_dev.attn_small,
                    g_dev.foreign, g_dev.read_only, g_dev.write_only};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        clReleaseMemObject(all[i]);
    clReleaseContext(foreign);
    guarded_free(g_hx);
    guarded_free(g_hout);
    guarded_free(g_hattn);
    clattn_context_destroy(g_ctx);
    return test_finish("test_layer_talking_heads_errors");
}
