/* Talking-heads attention, timm's TalkingHeadAttn: creation from the
   module's state_dict tensors, validation, and the forward call
   qkv GEMM -> pack K/V -> attention path -> proj GEMM. The attention paths
   are in talking_heads_unfused.c and talking_heads_fused.c. */
#include "context_internal.h"
#include "gemm.h"
#include "kernel_args.h"
#include "layer_object.h"
#include "sdpa_variant.h"
#include "struct_size.h"
#include "talking_heads_internal.h"
#include "tensor_view.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define TH_NAME "talking_heads"

void clattn_talking_heads_destroy(clattn_talking_heads *layer)
{
    if (!layer)
        return;
    cl_mem all[8] = {layer->qkv_weight,    layer->qkv_bias,
                     layer->proj_l_weight, layer->proj_l_bias,
                     layer->proj_w_weight, layer->proj_w_bias,
                     layer->proj_weight,   layer->proj_bias};
    layer_object_free(layer, all, 8);
}

static clattn_status check_desc(clattn_context *ctx,
                                const clattn_talking_heads_desc *d)
{
    if (d->dim == 0 || d->num_heads == 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         TH_NAME ": dim (%zu) and num_heads (%zu) must be "
                                 "nonzero",
                         d->dim, d->num_heads);
    if (d->dim % d->num_heads)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         TH_NAME ": dim (%zu) is not a multiple of "
                                 "num_heads (%zu)",
                         d->dim, d->num_heads);
    if (!(d->dropout_p >= 0.0f && d->dropout_p < 1.0f))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         TH_NAME ": dropout_p (%g) must be in [0, 1)",
                         (double)d->dropout_p);
    size_t n;
    clattn_status s;
    /* The qkv weight [3C][C] is the largest tensor. */
    if ((s = layer_mul_size(ctx, &n, d->dim, d->dim, 3 * sizeof(float))))
        return s;
    /* The kernels take dim, heads and head_dim as uint and form uint
       products of them: heads * TH_FUSED_ROWS * 16 (th_fused's scratch
       offsets), TH_UNFUSED_ROWS * dpad (th_pv's accumulator) and
       head_dim * TH_KEY_BLOCK (a packed key block). heads and head_dim are
       at most dim, and dpad at most dim + 15. */
    if (d->dim > UINT32_MAX / 64 - TH_FEATURE_PAD)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         TH_NAME ": dim %zu exceeds the kernels' 32-bit range "
                                 "(at most %u)",
                         d->dim, (unsigned)(UINT32_MAX / 64 - TH_FEATURE_PAD));
    return CLATTN_SUCCESS;
}

clattn_status clattn_talking_heads_create(clattn_context *ctx,
                                          const clattn_talking_heads_desc *desc,
                                          const clattn_talking_heads_weights *w,
                                          clattn_talking_heads **out)
{
    LAYER_CREATE_BEGIN(clattn_talking_heads_desc, given, ctx, TH_NAME, out,
                       desc, w, TALKING_HEADS_DESC_OLDEST_SIZE);
    desc = &given; /* read no further than the caller's struct_size */
    clattn_status s = check_desc(ctx, desc);
    if (s != CLATTN_SUCCESS)
        return s;
    const size_t C = desc->dim, H = desc->num_heads;
    /* check_desc bounded 3 C^2 floats, and H <= C. */
    size_t n_qkv = 0, n_hh = 0, n_cc = 0;
    (void)(layer_mul_size(ctx, &n_qkv, 3, C, C) ||
           layer_mul_size(ctx, &n_hh, H, H, 1) ||
           layer_mul_size(ctx, &n_cc, C, C, 1));
#define TH_FIELD(member) offsetof(clattn_talking_heads, member)
    const layer_weight_spec list[] = {
        {"qkv_weight", w->qkv_weight, 1, n_qkv, TH_FIELD(qkv_weight)},
        {"qkv_bias", w->qkv_bias, desc->qkv_bias != 0, 3 * C,
         TH_FIELD(qkv_bias)},
        {"proj_l_weight", w->proj_l_weight, 1, n_hh, TH_FIELD(proj_l_weight)},
        {"proj_l_bias", w->proj_l_bias, 1, H, TH_FIELD(proj_l_bias)},
        {"proj_w_weight", w->proj_w_weight, 1, n_hh, TH_FIELD(proj_w_weight)},
        {"proj_w_bias", w->proj_w_bias, 1, H, TH_FIELD(proj_w_bias)},
        {"proj_weight", w->proj_weight, 1, n_cc, TH_FIELD(proj_weight)},
        {"proj_bias", w->proj_bias, 1, C, TH_FIELD(proj_bias)},
    };
#undef TH_FIELD
    clattn_talking_heads *l =
        layer_object_create(ctx, TH_NAME, sizeof *l, list, 8, &s);
    if (!l)
        return s;
    l->dim = C;
    l->heads = H;
    l->head_dim = C / H;
    l->scale = (float)(1.0 / sqrt((double)l->head_dim));
    /* The dropout stream of cl/core/philox.clh (the SDPA rule): a
       threshold of 0 turns dropout off, its scaling included. */
    l->drop_threshold = (cl_uint)lrint((double)desc->dropout_p * 16777216.0);
    l->drop_scale = l->drop_threshold ? 1.0f / (1.0f - desc->dropout_p) : 1.0f;
    l->drop_seed = desc->dropout_seed;
    *out = l;
    return CLATTN_SUCCESS;
}

/* ---- Forward -------------------------------------------------------- */

/* The checked sizes of one call. */
typedef struct th_sizes {
    size_t tokens;   /* batch * seq */
    size_t x_floats; /* tokens * dim: x, out */
    size_t attn_floats;
    /* Bytes of the call's own buffers: the qkv projection, packed K and V,
       the attention output (x_bytes, as x and out). */
    size_t qkv_bytes, kt_bytes, vp_bytes, x_bytes;
} th_sizes;

static size_t round_up(size_t v, size_t m)
{
    return (v + m - 1) / m * m;
}

/* The call's own buffers (the path's scratch is sized by its prepare,
   still before anything is enqueued) and both GEMMs, against the
   device's limits. seq was bounded to 32 bits, so npad does not wrap. */
static clattn_status check_internal(const clattn_talking_heads *l,
                                    const clattn_talking_heads_call *call,
                                    th_sizes *sz)
{
    clattn_context *ctx = l->ctx;
    const size_t npad = round_up(call->seq, TH_KEY_PAD),
                 dpad = round_up(l->head_dim, TH_FEATURE_PAD),
                 f = sizeof(float);
    const size_t kt[5] = {call->batch, l->heads, npad, l->head_dim, f};
    const size_t vp[5] = {call->batch, l->heads, npad, dpad, f};
    sz->x_bytes = sz->x_floats * f; /* below qkv_bytes, checked */
    const size_t C = l->dim, M = sz->tokens;
    clattn_status s;
    if ((s = layer_check_alloc(ctx, TH_NAME, "the qkv projection",
                               sz->qkv_bytes)) ||
        (s = layer_size_buffer(ctx, TH_NAME, "the packed keys", kt, 5,
                               &sz->kt_bytes)) ||
        (s = layer_size_buffer(ctx, TH_NAME, "the packed values", vp, 5,
                               &sz->vp_bytes)) ||
        (s = layer_check_alloc(ctx, TH_NAME, "the attention output",
                               sz->x_bytes)) ||
        (s = layer_check_gemm(ctx, TH_NAME, "qkv", M, 3 * C, C,
                              sz->qkv_bytes / f)) ||
        (s = layer_check_gemm(ctx, TH_NAME, "proj", M, C, C, sz->x_floats)))
        return s;
    return CLATTN_SUCCESS;
}

static clattn_status check_call(const clattn_talking_heads *l,
                                const clattn_talking_heads_call *call,
                                int want_attn, th_sizes *sz)
{
    clattn_context *ctx = l->ctx;
    if (!call)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         TH_NAME ": call is NULL");
    if (call->batch == 0 || call->seq == 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         TH_NAME ": batch (%zu) and seq (%zu) must be nonzero",
                         call->batch, call->seq);
    clattn_status s = sdpa_path_check(ctx, TH_NAME, call->path);
    if (s != CLATTN_SUCCESS)
        return s;
    if (want_attn && !sdpa_path_can_write_probs(call->path))
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         TH_NAME ": the %s path cannot return attn (use "
                                 "UNFUSED or AUTO)",
                         clattn_sdpa_path_name(call->path));
    size_t nn;
    /* attn's size counts even when not wanted: it is the index space of
       the dropout stream. */
    if ((s = layer_mul_size(ctx, &sz->tokens, call->batch, call->seq, 1)) ||
        (s = layer_mul_size(ctx, &sz->x_floats, sz->tokens, l->dim, 1)) ||
        (s = layer_mul_size(ctx, &sz->qkv_bytes, sz->x_floats, 3,
                            sizeof(float))) ||
        (s = layer_mul_size(ctx, &nn, call->seq, call->seq, l->heads)) ||
        (s = layer_mul_size(ctx, &sz->attn_floats, nn, call->batch,
                            sizeof(float))))
        return s;
    sz->attn_floats /= sizeof(float);
    /* The kernels index rows, padded keys and (batch, head) pairs with
       32 bits. */
    if (call->seq > UINT32_MAX - TH_KEY_PAD ||
        call->batch > UINT32_MAX / l->heads)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         TH_NAME ": batch %zu x seq %zu exceeds the kernels' "
                                 "32-bit range",
                         call->batch, call->seq);
    return check_internal(l, call, sz);
}

/* Below this head dim AUTO takes the fused path on CPU-class devices
   even where the unfused one fits: at N = 784 on PoCL the fused path was
   1.1-1.35x faster at D = 16 and 24, the unfused one 1.2-1.35x faster
   at D = 32, 48 and 64 (docs/performance.md, "Talking-heads: one mixing
   kernel"). The fused path's extra cost, the logits computed twice,
   grows with D; the unfused path's, its N x N traffic, does not. */
#define TH_AUTO_FUSED_BELOW_HEAD_DIM 32

/* AUTO runs the unfused path while one batch's score buffers (2 H N^2
   floats) fit the context's scratch limit and, on a CPU-class device,
   the head dim is at least TH_AUTO_FUSED_BELOW_HEAD_DIM. Past that size
   the unfused path has to split the rows of a batch and was no faster
   than the fused one (N = 3136, H = 16: 430 against 405 ms), which needs
   a sixth of the memory, so AUTO takes the fused path
   (docs/performance.md). With attn wanted AUTO is unfused. */
static clattn_sdpa_path resolve_path(const clattn_talking_heads *l,
                                     const clattn_talking_heads_call *call,
                                     int want_attn)
{
    if (call->path == CLATTN_SDPA_PATH_UNFUSED)
        return CLATTN_SDPA_PATH_UNFUSED;
    if (call->path != CLATTN_SDPA_PATH_AUTO)
        return CLATTN_SDPA_PATH_FUSED;
    if (want_attn)
        return CLATTN_SDPA_PATH_UNFUSED;
    if (!context_gpu_class(l->ctx) &&
        l->head_dim < TH_AUTO_FUSED_BELOW_HEAD_DIM)
        return CLATTN_SDPA_PATH_FUSED;
    /* check_call has bounded seq and heads to 32-bit ranges; the product
       is computed in double so it cannot overflow. */
    double batch_scores = 2.0 * (double)l->heads * (double)call->seq *
                          (double)call->seq * sizeof(float);
    return batch_scores <= (double)l->ctx->scratch_limit
               ? CLATTN_SDPA_PATH_UNFUSED
               : CLATTN_SDPA_PATH_FUSED;
}

/* The call's own buffers: the projection output, packed K/V, the
   attention output, and the path's scratch and kernels. */
typedef struct th_work {
    th_run run;
    int fused;
    th_unfused_plan unfused;
    th_fused_plan fused_plan;
    cl_kernel pack;
} th_work;

static void work_release(clattn_context *ctx, th_work *w)
{
    cl_mem all[4] = {w->run.qkv, w->run.kt, w->run.vp, w->run.ctx_out};
    layer_release(ctx, all, 4);
    th_unfused_release(ctx, &w->unfused);
    th_fused_release(ctx, &w->fused_plan);
    if (w->pack)
        clReleaseKernel(w->pack);
}

/* Packed K and V: for the fused path, and the CPU-class unfused one (on
   GPU-class devices the unfused path reads K and V from qkv). */
static int uses_packs(const th_work *w)
{
    return w->fused || !context_gpu_class(w->run.layer->ctx);
}

static clattn_status work_prepare(const clattn_talking_heads *l,
                                  const th_sizes *sz, th_work *w)
{
    clattn_context *ctx = l->ctx;
    th_run *r = &w->run;
    clattn_status s;
    /* Every size was checked by check_call (check_internal). */
    if ((s = layer_buffer(ctx, sz->qkv_bytes, NULL, &r->qkv)) ||
        (s = layer_buffer(ctx, sz->x_bytes, NULL, &r->ctx_out)))
        return s;
    if (uses_packs(w) && ((s = layer_buffer(ctx, sz->kt_bytes, NULL, &r->kt)) ||
                          (s = layer_buffer(ctx, sz->vp_bytes, NULL, &r->vp)) ||
                          (s = program_kernel(ctx, PROGRAM_TALKING_HEADS,
                                              "th_pack_kv", &w->pack))))
        return s;
    return w->fused ? th_fused_prepare(ctx, r, &w->fused_plan)
                    : th_unfused_prepare(ctx, r, &w->unfused);
}

static clattn_status enqueue_pack(clattn_context *ctx, const th_work *w)
{
    const th_run *r = &w->run;
    const clattn_talking_heads *l = r->layer;
    kernel_args a = args_begin(w->pack);
    arg_mem(&a, r->qkv);
    arg_mem(&a, r->kt);
    arg_mem(&a, r->vp);
    th_arg_layout(&a, r);
    arg_float(&a, l->scale);
    size_t global[2] = {r->npad, r->batch * l->heads};
    return layer_launch(ctx, r->queue, &a, "th_pack_kv", 2, global, r->timer,
                        LAYER_STAGE_OTHER);
}

/* Everything after validation: nothing is enqueued until every buffer and
   kernel exists, so a failure to allocate writes nothing. */
static clattn_status forward_run(clattn_talking_heads *l,
                                 const clattn_talking_heads_call *call,
                                 const th_sizes *sz, cl_mem x, cl_mem out,
                                 cl_mem attn)
{
    clattn_context *ctx = l->ctx;
    th_work w = {0};
    w.fused = resolve_path(l, call, attn != NULL) != CLATTN_SDPA_PATH_UNFUSED;
    th_run *r = &w.run;
    r->layer = l;
    r->queue = ctx->queue;
    r->batch = call->batch;
    r->seq = call->seq;
    r->npad = round_up(call->seq, TH_KEY_PAD);
    r->dpad = round_up(l->head_dim, TH_FEATURE_PAD);
    r->attn = attn;
    r->drop_offset = l->drop_calls;

    layer_timer tb;
    clattn_status s = work_prepare(l, sz, &w);
    if (s == CLATTN_SUCCESS)
        s = layer_timer_begin(ctx, r->queue, call->timing ? &tb : NULL,
                              &r->timer);
    const size_t C = l->dim, M = sz->tokens;
    if (s == CLATTN_SUCCESS)
        s = gemm_linear(ctx, r->queue, M, 3 * C, C, (gemm_matrix){x, 0, C},
                        (gemm_matrix){l->qkv_weight, 0, C}, l->qkv_bias, 0, 0,
                        (gemm_matrix){r->qkv, 0, 3 * C}, r->timer);
    if (s == CLATTN_SUCCESS && uses_packs(&w))
        s = enqueue_pack(ctx, &w);
    if (s == CLATTN_SUCCESS)
        s = w.fused ? th_fused_enqueue(ctx, r, &w.fused_plan)
                    : th_unfused_enqueue(ctx, r, &w.unfused);
    if (s == CLATTN_SUCCESS)
        s = gemm_linear(ctx, r->queue, M, C, C, (gemm_matrix){r->ctx_out, 0, C},
                        (gemm_matrix){l->proj_weight, 0, C}, l->proj_bias, 0, 0,
                        (gemm_matrix){out, 0, C}, r->timer);
    /* OpenCL keeps the released buffers alive until the queued work that
       uses them is done. */
    work_release(ctx, &w);
    if (s == CLATTN_SUCCESS) {
        if (l->drop_threshold)
            l->drop_calls++;
        return layer_timer_finish(ctx, r->queue, r->timer, call->timing);
    }
    layer_timer_finish(ctx, r->queue, r->timer, NULL);
    return s;
}

/* A contiguous [rows][cols] view of a caller's buffer, checked against its
   size and context. */
static clattn_status check_buffer(clattn_context *ctx, const char *name,
                                  cl_mem buffer, size_t d0, size_t d1,
                                  size_t d2, size_t d3, int is_output)
{
    const size_t dims[4] = {d0, d1, d2, d3};
    clattn_tensor t;
    clattn_tensor_contiguous(&t, buffer, 0, dims);
    checked_view v;
    return view_check(ctx, name, &t, dims, sizeof(float), is_output, &v);
}

/* The checks both forms start with: the layer, the context, the call,
   then x and out present (what names them: " buffer" or ""). */
static clattn_status check_forward(clattn_talking_heads *layer,
                                   const clattn_talking_heads_call *call,
                                   int want_attn, const void *x,
                                   const void *out, const char *what,
                                   th_sizes *sz)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_context *ctx = layer->ctx;
    CTX_CHECK_USABLE(ctx);
    clattn_status s = check_call(layer, call, want_attn, sz);
    if (s != CLATTN_SUCCESS)
        return s;
    if (!x || !out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         TH_NAME ": %s%s is NULL", !x ? "x" : "out", what);
    return CLATTN_SUCCESS;
}

clattn_status
clattn_talking_heads_forward(clattn_talking_heads *layer,
                             const clattn_talking_heads_call *call, cl_mem x,
                             cl_mem out, cl_mem attn)
{
    th_sizes sz;
    clattn_status s =
        check_forward(layer, call, attn != NULL, x, out, " buffer", &sz);
    if (s != CLATTN_SUCCESS)
        return s;
    clattn_context *ctx = layer->ctx;
    if (x == out || attn == x || attn == out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         TH_NAME ": %s may not be the same buffer as %s",
                         x == out ? "out" : "attn",
                         x == out || attn == x ? "x" : "out");
    const size_t B = call->batch, N = call->seq, H = layer->heads;
    if ((s = check_buffer(ctx, "x", x, 1, 1, sz.tokens, layer->dim, 0)) ||
        (s = check_buffer(ctx, "out", out, 1, 1, sz.tokens, layer->dim, 1)) ||
        (attn && (s = check_buffer(ctx, "attn", attn, B, H, N, N, 1))))
        return s;
    return forward_run(layer, call, &sz, x, out, attn);
}

/* ---- Host form ------------------------------------------------------ */

/* The device form over the staged buffers x, attn, out (layer_host_forward
   reads the outputs in that order: attn before out, so that a failing read
   leaves out untouched). */
static clattn_status host_run(void *layer, const void *call, const cl_mem *b)
{
    return clattn_talking_heads_forward(layer, call, b[0], b[2], b[1]);
}

clattn_status
clattn_talking_heads_forward_host(clattn_talking_heads *layer,
                                  const clattn_talking_heads_call *call,
                                  const float *x, float *out, float *attn)
{
    th_sizes sz;
    clattn_status s = check_forward(layer, call, attn != NULL, x, out, "", &sz);
    if (s != CLATTN_SUCCESS)
        return s;
    const size_t xb = sz.x_floats * sizeof(float); /* checked by check_call */
    const layer_host_array arrays[3] = {
        {"x", x, NULL, xb},
        {"attn", NULL, attn, sz.attn_floats * sizeof(float)},
        {"out", NULL, out, xb},
    };
    return layer_host_forward(layer->ctx, TH_NAME, arrays, NULL, 3, host_run,
                              layer, call);
}
