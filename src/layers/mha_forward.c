/* One multi-head attention forward pass on validated arguments:
   [LayerNorm] -> input projections (CLBlast) -> SDPA on strided views of
   the projections -> [head average of the weights] -> output projection.

   Activations are [rows][features] with row b*S + s (batch_first) or
   s*B + b (sequence-first): the GEMMs treat every row alike, and only the
   strides of the SDPA views differ between the layouts. */
#include "context_internal.h"
#include "gemm.h"
#include "layer_object.h"
#include "mha_internal.h"
#include "sdpa_plan.h"

#include <string.h>

/* The library's own buffers of one call; an entry may repeat another
   (a shared normalized input) and is then released once. */
enum { S_LN_Q, S_LN_K, S_LN_V, S_PROJ, S_ATTN, S_MASK, S_PROBS, S_COUNT };

typedef struct mha_scratch {
    cl_mem mem[S_COUNT];
} mha_scratch;

static clattn_status scratch_make(clattn_context *ctx, size_t bytes,
                                  cl_mem *out)
{
    return layer_buffer(ctx, bytes, NULL, out);
}

/* How the call runs: which inputs are one buffer, what to allocate. */
typedef struct mha_plan {
    int self;                /* one GEMM for Q, K and V */
    int kv_merged;           /* key == value: one GEMM for K and V */
    cl_mem q_in, k_in, v_in; /* the projections' inputs (normalized or not) */
    size_t k_offset, v_offset, kv_ld; /* K and V inside the projections */
} mha_plan;

static void plan_inputs(const clattn_mha *layer, const clattn_mha_call *call,
                        const clattn_mha_buffers *b, mha_plan *p)
{
    size_t E = layer->embed_dim;
    int same_dims = layer->kdim == E && layer->vdim == E;
    p->self = b->key == b->query && b->value == b->query && same_dims &&
              call->seq_kv == call->seq_q;
    p->kv_merged = !p->self && b->key == b->value && layer->kdim == layer->vdim;
    p->q_in = b->query;
    p->k_in = b->key;
    p->v_in = b->value;
}

/* Pre-LayerNorm: each distinct input normalized once. */
static clattn_status alloc_layer_norm(clattn_mha *layer,
                                      const clattn_mha_call *call,
                                      const mha_shapes *sh, mha_plan *p,
                                      mha_scratch *s)
{
    clattn_context *ctx = layer->ctx;
    int same_rows = call->seq_kv == call->seq_q;
    clattn_status st = scratch_make(ctx, sh->query_bytes, &s->mem[S_LN_Q]);
    if (st)
        return st;
    if (p->k_in == p->q_in && same_rows)
        s->mem[S_LN_K] = s->mem[S_LN_Q];
    else if ((st = scratch_make(ctx, sh->key_bytes, &s->mem[S_LN_K])))
        return st;
    if (p->v_in == p->k_in)
        s->mem[S_LN_V] = s->mem[S_LN_K];
    else if (p->v_in == p->q_in && same_rows)
        s->mem[S_LN_V] = s->mem[S_LN_Q];
    else if ((st = scratch_make(ctx, sh->value_bytes, &s->mem[S_LN_V])))
        return st;
    p->q_in = s->mem[S_LN_Q];
    p->k_in = s->mem[S_LN_K];
    p->v_in = s->mem[S_LN_V];
    return CLATTN_SUCCESS;
}

static clattn_status alloc_scratch(clattn_mha *layer,
                                   const clattn_mha_call *call,
                                   const mha_shapes *sh, mha_plan *p,
                                   mha_scratch *s)
{
    clattn_context *ctx = layer->ctx;
    clattn_status st;
    if (layer->pre_layernorm && (st = alloc_layer_norm(layer, call, sh, p, s)))
        return st;
    if ((st = scratch_make(ctx, sh->proj_floats * sizeof(float),
                           &s->mem[S_PROJ])))
        return st;
    if (!layer->no_out_proj &&
        (st = scratch_make(ctx, sh->out_bytes, &s->mem[S_ATTN])))
        return st;
    if (sh->mask_merge &&
        (st = scratch_make(ctx, sh->mask_bytes, &s->mem[S_MASK])))
        return st;
    return CLATTN_SUCCESS;
}

/* A [B][H][S][D] view of an activation whose row holds head h's
   features at h*D + f, ld elements per row. seq * ld and batch * ld stay
   below the activation's element count, checked by mha_check_call. */
static clattn_tensor act_view(cl_mem buffer, size_t offset, size_t ld,
                              size_t seq, size_t batch, size_t head_dim,
                              int batch_first)
{
    clattn_tensor t = {buffer, offset, {0, head_dim, 0, 1}};
    t.strides[0] = batch_first ? seq * ld : ld;
    t.strides[2] = batch_first ? ld : batch * ld;
    return t;
}

static void sdpa_tensors(const clattn_mha *layer, const clattn_mha_call *call,
                         const mha_shapes *sh, const mha_plan *p,
                         const mha_scratch *s, const clattn_mha_buffers *b,
                         clattn_sdpa_tensors *t)
{
    size_t E = layer->embed_dim, D = layer->head_dim, B = call->batch;
    size_t Sq = call->seq_q, Skv = call->seq_kv;
    int bf = layer->batch_first;
    cl_mem proj = s->mem[S_PROJ];
    memset(t, 0, sizeof *t);
    size_t q_ld = p->self ? 3 * E : E;
    t->q = act_view(proj, 0, q_ld, Sq, B, D, bf);
    t->k = act_view(proj, p->k_offset, p->kv_ld, Skv, B, D, bf);
    t->v = act_view(proj, p->v_offset, p->kv_ld, Skv, B, D, bf);
    t->out = act_view(layer->no_out_proj ? b->out : s->mem[S_ATTN], 0, E, Sq, B,
                      D, bf);
    if (sh->mask_type != CLATTN_MASK_NONE)
        clattn_tensor_contiguous(&t->mask,
                                 sh->mask_merge ? s->mem[S_MASK] : b->attn_mask,
                                 0, sh->mask_dims);
    size_t probs_dims[4] = {B, layer->num_heads, Sq, Skv};
    if (s->mem[S_PROBS])
        clattn_tensor_contiguous(&t->probs, s->mem[S_PROBS], 0, probs_dims);
    else if (call->need_weights == CLATTN_NEED_WEIGHTS_PER_HEAD)
        clattn_tensor_contiguous(&t->probs, b->attn_weights, 0, probs_dims);
}

/* y = x W^T + b on rows, or with dry set only CLBlast's limits checked for
   the same GEMM (layer_check_gemm), so that check_gemms() sees exactly the
   GEMMs enqueue_all() will run. */
static clattn_status linear(clattn_mha *layer, size_t m, size_t n, size_t k,
                            cl_mem x, size_t x_ld, cl_mem w, size_t w_offset,
                            cl_mem bias, size_t bias_offset, cl_mem y,
                            size_t y_offset, size_t y_ld, layer_timer *timer,
                            int dry)
{
    if (dry) {
        size_t ex = layer_extent(0, m, x_ld), ew = layer_extent(w_offset, n, k),
               ey = layer_extent(y_offset, m, y_ld);
        size_t most = ex > ew ? ex : ew;
        return layer_check_gemm(layer->ctx, "mha", "projection", m, n, k,
                                most > ey ? most : ey);
    }
    gemm_matrix mx = {x, 0, x_ld}, mw = {w, w_offset, k},
                my = {y, y_offset, y_ld};
    return gemm_linear(layer->ctx, layer->ctx->queue, m, n, k, mx, mw, bias,
                       bias_offset, 0, my, timer);
}

/* Q, K and V into the projection buffer: [rows_q][3E] for
   self-attention, else Q [rows_q][E] then K and V ([rows_kv][2E] when
   merged, else [rows_kv][E] each). 3E and 2E cannot overflow: create
   checked 3E. */
static clattn_status project_inputs(clattn_mha *layer, const mha_shapes *sh,
                                    const mha_plan *p, cl_mem proj,
                                    layer_timer *timer, int dry)
{
    size_t E = layer->embed_dim, kd = layer->kdim, vd = layer->vdim;
    cl_mem w = layer->w_in, b = layer->b_in;
    if (p->self)
        return linear(layer, sh->rows_q, 3 * E, E, p->q_in, E, w, 0, b, 0, proj,
                      0, 3 * E, timer, dry);
    clattn_status s = linear(layer, sh->rows_q, E, E, p->q_in, E, w, 0, b, 0,
                             proj, 0, E, timer, dry);
    if (s)
        return s;
    if (p->kv_merged)
        return linear(layer, sh->rows_kv, 2 * E, kd, p->k_in, kd, w,
                      layer->w_k_offset, b, E, proj, p->k_offset, 2 * E, timer,
                      dry);
    if ((s = linear(layer, sh->rows_kv, E, kd, p->k_in, kd, w,
                    layer->w_k_offset, b, E, proj, p->k_offset, E, timer, dry)))
        return s;
    return linear(layer, sh->rows_kv, E, vd, p->v_in, vd, w, layer->w_v_offset,
                  b, 2 * E, proj, p->v_offset, E, timer, dry);
}

/* The output projection (none with no_out_proj). */
static clattn_status project_output(clattn_mha *layer, const mha_shapes *sh,
                                    cl_mem attn, cl_mem out, layer_timer *timer,
                                    int dry)
{
    if (layer->no_out_proj)
        return CLATTN_SUCCESS;
    size_t E = layer->embed_dim;
    return linear(layer, sh->rows_q, E, E, attn, E, layer->w_out, 0,
                  layer->b_out, 0, out, 0, E, timer, dry);
}

/* Every GEMM of the call against CLBlast's int limits, before anything is
   allocated or enqueued (the buffers do not matter to the check). */
static clattn_status check_gemms(clattn_mha *layer, const mha_shapes *sh,
                                 const mha_plan *p)
{
    clattn_status s = project_inputs(layer, sh, p, NULL, NULL, 1);
    return s ? s : project_output(layer, sh, NULL, NULL, NULL, 1);
}

/* Every offset is below proj_floats, checked by mha_check_call. */
static void place_kv(const clattn_mha *layer, const mha_shapes *sh, mha_plan *p)
{
    size_t E = layer->embed_dim, q_part = sh->rows_q * E;
    if (p->self) {
        p->k_offset = E, p->v_offset = 2 * E, p->kv_ld = 3 * E;
    } else if (p->kv_merged) {
        p->k_offset = q_part, p->v_offset = q_part + E, p->kv_ld = 2 * E;
    } else {
        p->k_offset = q_part, p->v_offset = q_part + sh->rows_kv * E;
        p->kv_ld = E;
    }
}

static clattn_status normalize_inputs(clattn_mha *layer, const mha_shapes *sh,
                                      const clattn_mha_buffers *b,
                                      const mha_scratch *s, cl_kernel kernel,
                                      layer_timer *timer)
{
    const cl_mem src[3] = {b->query, b->key, b->value};
    const cl_mem dst[3] = {s->mem[S_LN_Q], s->mem[S_LN_K], s->mem[S_LN_V]};
    const size_t rows[3] = {sh->rows_q, sh->rows_kv, sh->rows_kv};
    for (int i = 0; i < 3; ++i) {
        int done = 0;
        for (int j = 0; j < i; ++j)
            done |= dst[j] == dst[i];
        clattn_status st = done
                               ? CLATTN_SUCCESS
                               : mha_enqueue_layer_norm(layer, kernel, src[i],
                                                        dst[i], rows[i], timer);
        if (st)
            return st;
    }
    return CLATTN_SUCCESS;
}

/* One call after its checks and allocations, for layer_timed_run. */
typedef struct mha_enqueue {
    clattn_mha *layer;
    const clattn_mha_call *call;
    const mha_shapes *sh;
    const mha_plan *p;
    const mha_scratch *s;
    const clattn_mha_buffers *b;
    const mha_kernels *k;
    const sdpa_plan *attention;
} mha_enqueue;

/* Everything after the checks and allocations, in queue order. */
static clattn_status enqueue_all(void *state, layer_timer *timer)
{
    const mha_enqueue *e = state;
    clattn_mha *layer = e->layer;
    const clattn_mha_call *call = e->call;
    const mha_shapes *sh = e->sh;
    const mha_scratch *s = e->s;
    const clattn_mha_buffers *b = e->b;
    const mha_kernels *k = e->k;
    clattn_context *ctx = layer->ctx;
    clattn_status st;
    int per_head =
        call->attn_mask_type != CLATTN_MASK_NONE && call->attn_mask_per_head;
    if (k->layer_norm &&
        (st = normalize_inputs(layer, sh, b, s, k->layer_norm, timer)))
        return st;
    if (k->mask &&
        (st = mha_enqueue_mask(
             layer, k->mask, sh, per_head,
             call->has_key_padding_mask ? b->key_padding_mask : NULL,
             call->attn_mask_type != CLATTN_MASK_NONE ? b->attn_mask : NULL,
             s->mem[S_MASK], timer)))
        return st;
    if ((st = project_inputs(layer, sh, e->p, s->mem[S_PROJ], timer, 0)))
        return st;
    cl_event scratch;
    cl_event *event = layer_timer_slot(timer, &scratch);
    st = sdpa_launch(ctx, e->attention, 0, NULL, event);
    if (st)
        return st;
    if (event)
        layer_timer_record(timer, LAYER_STAGE_ATTENTION, *event);
    if (k->head_mean &&
        (st = mha_enqueue_head_mean(layer, k->head_mean, s->mem[S_PROBS],
                                    b->attn_weights, sh, timer)))
        return st;
    return project_output(layer, sh, s->mem[S_ATTN], b->out, timer, 0);
}

clattn_status mha_run(clattn_mha *layer, const clattn_mha_call *call,
                      const mha_shapes *sh, const clattn_mha_buffers *b)
{
    clattn_context *ctx = layer->ctx;
    mha_plan plan;
    mha_scratch scratch = {{0}};
    mha_kernels kernels = {0};
    clattn_sdpa_desc desc;
    clattn_sdpa_tensors tensors;
    plan_inputs(layer, call, b, &plan);
    place_kv(layer, sh, &plan);
    mha_sdpa_desc(layer, call, sh, &desc);

    clattn_status st = check_gemms(layer, sh, &plan);
    if (!st)
        st = alloc_scratch(layer, call, sh, &plan, &scratch);
    /* SDPA is prepared (checked, its kernels and buffers made) before the
       first enqueue, so a request it refuses writes nothing. Head-averaged
       weights: SDPA's kernel averages them where its path can (fused-cpu,
       materialize), else per-head weights go to a scratch buffer and the
       layer's head_mean kernel averages them. */
    sdpa_plan attention;
    memset(&attention, 0, sizeof attention);
    int averaged = 0;
    if (!st && call->need_weights == CLATTN_NEED_WEIGHTS_AVERAGE) {
        sdpa_tensors(layer, call, sh, &plan, &scratch, b, &tensors);
        st = sdpa_prepare_head_mean(ctx, NULL, &desc, &tensors, b->attn_weights,
                                    0, call->path, 0, NULL, &attention,
                                    &averaged);
        if (!st && !averaged)
            st = scratch_make(ctx, sh->per_head_bytes, &scratch.mem[S_PROBS]);
    }
    if (!st && !averaged) {
        sdpa_tensors(layer, call, sh, &plan, &scratch, b, &tensors);
        st = sdpa_prepare(ctx, NULL, &desc, &tensors, call->path, 0, NULL,
                          &attention);
    }
    if (!st)
        st = mha_kernels_create(ctx, layer->pre_layernorm, sh->mask_merge,
                                sh->mask_type, scratch.mem[S_PROBS] != NULL,
                                &kernels);
    if (!st) {
        mha_enqueue e = {layer,    call, sh,       &plan,
                         &scratch, b,    &kernels, &attention};
        st = layer_timed_run(ctx, call->timing, enqueue_all, &e);
    }
    /* Released after enqueueing: OpenCL keeps them until the kernels
       that use them are done. */
    sdpa_plan_release(ctx, &attention);
    mha_kernels_release(&kernels);
    layer_release(ctx, scratch.mem, S_COUNT);
    if (!st && layer->dropout_p > 0.0f)
        layer->dropout_calls++;
    return st;
}
