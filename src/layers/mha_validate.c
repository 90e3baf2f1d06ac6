/* Validation of one multi-head attention call, before anything is
   allocated or enqueued, so a rejected call writes nothing. */
#include "checked_math.h"
#include "context_internal.h"
#include "layer_object.h"
#include "mha_internal.h"
#include "sdpa_problem.h"
#include "sdpa_variant.h"

#include <string.h>

static int mul_ok(size_t *out, size_t a, size_t b, size_t c)
{
    size_t ab;
    return !checked_mul(a, b, &ab) && !checked_mul(ab, c, out);
}

static clattn_status check_enums(clattn_context *ctx,
                                 const clattn_mha_call *call)
{
    if ((unsigned)call->attn_mask_type > CLATTN_MASK_ADDITIVE)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mha: attn_mask_type has unknown value %d",
                         (int)call->attn_mask_type);
    if ((unsigned)call->need_weights > CLATTN_NEED_WEIGHTS_PER_HEAD)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mha: need_weights has unknown value %d",
                         (int)call->need_weights);
    return sdpa_path_check(ctx, "mha", call->path);
}

/* Every byte count of the call's tensors and of the layer's scratch. */
static clattn_status size_call(const clattn_mha *layer,
                               const clattn_mha_call *call, mha_shapes *sh)
{
    const size_t B = call->batch, Sq = call->seq_q, Skv = call->seq_kv,
                 E = layer->embed_dim, H = layer->num_heads, f = sizeof(float);
    size_t mask_elem = call->attn_mask_type == CLATTN_MASK_BOOL ? 1 : f;
    size_t plane, bh, kv_proj;
    int ok = mul_ok(&sh->rows_q, B, Sq, 1) && mul_ok(&sh->rows_kv, B, Skv, 1) &&
             mul_ok(&sh->query_bytes, sh->rows_q, E, f) &&
             mul_ok(&sh->key_bytes, sh->rows_kv, layer->kdim, f) &&
             mul_ok(&sh->value_bytes, sh->rows_kv, layer->vdim, f) &&
             mul_ok(&plane, Sq, Skv, 1) && mul_ok(&bh, B, H, 1) &&
             mul_ok(&sh->per_head_bytes, bh, plane, f) &&
             mul_ok(&kv_proj, sh->rows_kv, 2, E) &&
             mul_ok(&sh->proj_floats, sh->rows_q, E, 1) &&
             !checked_add(sh->proj_floats, kv_proj, &sh->proj_floats) &&
             mul_ok(&sh->weights_bytes, plane, B, f);
    if (!ok || sh->proj_floats > SIZE_MAX / f)
        return CLATTN_ERROR_SIZE_OVERFLOW;
    sh->out_bytes = sh->query_bytes;
    sh->kpm_bytes = call->has_key_padding_mask ? sh->rows_kv : 0;
    sh->attn_mask_bytes = 0;
    if (call->attn_mask_type != CLATTN_MASK_NONE &&
        !mul_ok(&sh->attn_mask_bytes, call->attn_mask_per_head ? bh : 1, plane,
                mask_elem))
        return CLATTN_ERROR_SIZE_OVERFLOW;
    if (call->need_weights == CLATTN_NEED_WEIGHTS_PER_HEAD)
        sh->weights_bytes = sh->per_head_bytes;
    else if (call->need_weights == CLATTN_NEED_WEIGHTS_NONE)
        sh->weights_bytes = 0;
    return CLATTN_SUCCESS;
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* The projection GEMMs against CLBlast's int limits before any host array
   is staged, in the largest form the call can take (one [3E] GEMM when
   self-attention is possible, [2E] when key and value may be merged):
   which one runs depends on the buffers, known only later (mha_run checks
   that exact set again). 3E was checked at creation. */
static clattn_status check_gemm_limits(const clattn_mha *layer,
                                       const clattn_mha_call *call,
                                       const mha_shapes *sh)
{
    clattn_context *ctx = layer->ctx;
    const size_t E = layer->embed_dim, kd = layer->kdim, vd = layer->vdim;
    const size_t w_in = layer_extent(layer->w_v_offset, E, vd);
    const int self = kd == E && vd == E && call->seq_q == call->seq_kv;
    const size_t kv_k = kd > vd ? kd : vd;
    clattn_status s;
    if ((s = layer_check_gemm(
             ctx, "mha", "input projection", sh->rows_q, self ? 3 * E : E, E,
             max3(layer_extent(0, sh->rows_q, E), w_in, sh->proj_floats))) ||
        (s = layer_check_gemm(
             ctx, "mha", "key/value projection", sh->rows_kv,
             kd == vd ? 2 * E : E, kv_k,
             max3(layer_extent(0, sh->rows_kv, kv_k), w_in, sh->proj_floats))))
        return s;
    if (layer->no_out_proj)
        return CLATTN_SUCCESS;
    return layer_check_gemm(
        ctx, "mha", "output projection", sh->rows_q, E, E,
        max3(layer_extent(0, sh->rows_q, E), layer_extent(0, E, E), 0));
}

/* SDPA takes one mask: the caller's additive mask alone goes as it is;
   any other combination is merged by a kernel into the smallest shape
   that broadcasts (batch only with a key padding mask or per-head mask,
   heads only per head, query rows only with an attention mask). */
static int plan_mask(const clattn_mha *layer, const clattn_mha_call *call,
                     mha_shapes *sh)
{
    int kpm = call->has_key_padding_mask != 0;
    clattn_mask_type attn = call->attn_mask_type;
    int per_head = attn != CLATTN_MASK_NONE && call->attn_mask_per_head;
    sh->mask_type = CLATTN_MASK_NONE;
    sh->mask_merge = 0;
    memset(sh->mask_dims, 0, sizeof sh->mask_dims);
    if (!kpm && attn == CLATTN_MASK_NONE)
        return 0;
    sh->mask_type =
        attn == CLATTN_MASK_ADDITIVE ? CLATTN_MASK_ADDITIVE : CLATTN_MASK_BOOL;
    sh->mask_merge = kpm || attn == CLATTN_MASK_BOOL;
    sh->mask_dims[0] = kpm || per_head ? call->batch : 1;
    sh->mask_dims[1] = per_head ? layer->num_heads : 1;
    sh->mask_dims[2] = attn != CLATTN_MASK_NONE ? call->seq_q : 1;
    sh->mask_dims[3] = call->seq_kv;
    const size_t factors[5] = {
        sh->mask_dims[0], sh->mask_dims[1], sh->mask_dims[2], sh->mask_dims[3],
        sh->mask_type == CLATTN_MASK_BOOL ? 1 : sizeof(float)};
    /* At most the per-head size, already checked; checked again so that
       the bound is not an argument the reader has to trust. Nonzero: the
       size overflows. */
    return checked_product(factors, 5, &sh->mask_bytes);
}

/* The layer's own buffers of a call (both forms), each one allocation:
   over the device's max_alloc_bytes the call is refused here, before
   anything is allocated or enqueued, rather than by a failing
   clCreateBuffer in the middle of the call. */
static clattn_status check_scratch(const clattn_mha *layer,
                                   const clattn_mha_call *call,
                                   const mha_shapes *sh)
{
    clattn_context *ctx = layer->ctx;
    clattn_status s = CLATTN_SUCCESS;
    (void)((layer->pre_layernorm &&
            ((s = layer_check_alloc(ctx, "mha", "the normalized query",
                                    sh->query_bytes)) ||
             (s = layer_check_alloc(ctx, "mha", "the normalized key",
                                    sh->key_bytes)) ||
             (s = layer_check_alloc(ctx, "mha", "the normalized value",
                                    sh->value_bytes)))) ||
           (s = layer_check_alloc(ctx, "mha", "the Q, K and V projections",
                                  sh->proj_floats * sizeof(float))) ||
           (!layer->no_out_proj &&
            (s = layer_check_alloc(ctx, "mha", "the attention output",
                                   sh->out_bytes))) ||
           (sh->mask_merge &&
            (s = layer_check_alloc(ctx, "mha", "the merged mask",
                                   sh->mask_bytes))) ||
           (call->need_weights == CLATTN_NEED_WEIGHTS_AVERAGE &&
            (s = layer_check_alloc(ctx, "mha", "the per-head weights",
                                   sh->per_head_bytes))));
    return s;
}

void mha_sdpa_desc(const clattn_mha *layer, const clattn_mha_call *call,
                   const mha_shapes *sh, clattn_sdpa_desc *d)
{
    clattn_sdpa_desc_init(d);
    d->batch = call->batch;
    d->heads_q = d->heads_kv = layer->num_heads;
    d->seq_q = call->seq_q;
    d->seq_kv = call->seq_kv;
    d->head_dim = d->head_dim_v = layer->head_dim;
    d->scale = layer->scale;
    d->causal = call->is_causal ? CLATTN_CAUSAL_TOP_LEFT : CLATTN_CAUSAL_NONE;
    d->mask_type = sh->mask_type;
    memcpy(d->mask_dims, sh->mask_dims, sizeof d->mask_dims);
    d->dropout_p = layer->dropout_p;
    d->dropout_seed = layer->dropout_seed;
    d->dropout_offset = layer->dropout_calls;
    d->rope = layer->rope;
    d->rope_k = layer->rope.style != CLATTN_ROPE_NONE;
}

clattn_status mha_check_call(clattn_mha *layer, const clattn_mha_call *call,
                             mha_shapes *sh)
{
    clattn_context *ctx = layer->ctx; /* call: layer_forward_check's */
    clattn_status s = check_enums(ctx, call);
    if (s != CLATTN_SUCCESS)
        return s;
    if (call->batch == 0 || call->seq_q == 0 || call->seq_kv == 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "mha: batch (%zu), seq_q (%zu) and seq_kv (%zu) must "
                         "be >= 1",
                         call->batch, call->seq_q, call->seq_kv);
    memset(sh, 0, sizeof *sh);
    sh->batch = call->batch;
    sh->seq_q = call->seq_q;
    sh->seq_kv = call->seq_kv;
    if (size_call(layer, call, sh) != CLATTN_SUCCESS)
        return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                         "mha: the sizes of batch %zu, seq_q %zu, seq_kv %zu "
                         "overflow size_t",
                         call->batch, call->seq_q, call->seq_kv);
    if (plan_mask(layer, call, sh))
        return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                         "mha: the merged mask's size overflows size_t");
    /* SDPA's own limits (32-bit kernel indices), before any work. */
    clattn_sdpa_desc d;
    sdpa_problem p;
    mha_sdpa_desc(layer, call, sh, &d);
    if ((s = sdpa_problem_init(ctx, &d, &p)))
        return s;
    if (call->need_weights != CLATTN_NEED_WEIGHTS_NONE &&
        !sdpa_path_can_write_probs(call->path))
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "mha: need_weights needs the attention weights, "
                         "which a layer gets from AUTO or the unfused path "
                         "only (path %s)",
                         clattn_sdpa_path_name(call->path));
    if ((s = check_scratch(layer, call, sh)))
        return s;
    return check_gemm_limits(layer, call, sh);
}

clattn_status mha_check_buffers(clattn_mha *layer, const clattn_mha_call *call,
                                const mha_shapes *sh,
                                const clattn_mha_buffers *b)
{
    /* MHA's own part of the rule: the buffers come in one struct, and a
       field the call does not use (a mask, the weights) is not looked at
       at all, whatever it holds (the header: ignored, may be NULL), where
       the common rule checks an optional buffer that is given. So such a
       field goes to layer_check_device_args as absent; the rest is the
       common rule, outputs written while inputs may still be read (a mask
       read by SDPA, the weights written by it) included. */
    if (!b)
        return ctx_error(layer->ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mha: buffers is NULL");
    const int kpm = sh->kpm_bytes != 0, mask = sh->attn_mask_bytes != 0,
              weights = call->need_weights != CLATTN_NEED_WEIGHTS_NONE;
    const layer_device_arg args[7] = {
        {"query", b->query, sh->query_bytes, 0, 0},
        {"key", b->key, sh->key_bytes, 0, 0},
        {"value", b->value, sh->value_bytes, 0, 0},
        {"key_padding_mask", kpm ? b->key_padding_mask : NULL, sh->kpm_bytes, 0,
         !kpm},
        {"attn_mask", mask ? b->attn_mask : NULL, sh->attn_mask_bytes, 0,
         !mask},
        {"out", b->out, sh->out_bytes, 1, 0},
        {"attn_weights", weights ? b->attn_weights : NULL, sh->weights_bytes, 1,
         !weights},
    };
    return layer_check_device_args(layer->ctx, "mha", args, 7);
}
