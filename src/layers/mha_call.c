/* The entry points of a multi-head attention call: device buffers, and
   host memory (staged through device buffers made for the call). */
#include "context_internal.h"
#include "mha_internal.h"

clattn_status clattn_mha_forward(clattn_mha *layer, const clattn_mha_call *call,
                                 const clattn_mha_buffers *buffers)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    CTX_CHECK_USABLE(layer->ctx);
    mha_shapes sh;
    clattn_status s;
    if ((s = mha_check_call(layer, call, &sh)) ||
        (s = mha_check_buffers(layer, call, &sh, buffers)))
        return s;
    return mha_run(layer, call, &sh, buffers);
}

static clattn_status check_host(clattn_context *ctx,
                                const clattn_mha_call *call, const float *query,
                                const float *key, const float *value,
                                const uint8_t *kpm, const void *attn_mask,
                                const float *out, const float *attn_weights)
{
    const char *missing =
        !query                               ? "query"
        : !key                               ? "key"
        : !value                             ? "value"
        : !out                               ? "out"
        : call->has_key_padding_mask && !kpm ? "key_padding_mask"
        : call->attn_mask_type != CLATTN_MASK_NONE && !attn_mask ? "attn_mask"
        : call->need_weights != CLATTN_NEED_WEIGHTS_NONE && !attn_weights
            ? "attn_weights"
            : NULL;
    if (missing)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mha: host array %s is NULL", missing);
    return CLATTN_SUCCESS;
}

/* Each staging buffer is one allocation: refused before any is made (and
   before any host array is read). */
static clattn_status check_staging(clattn_context *ctx, const mha_shapes *sh,
                                   int weights)
{
    const struct {
        const char *what;
        size_t bytes;
    } list[] = {
        {"the staged query", sh->query_bytes},
        {"the staged key", sh->key_bytes},
        {"the staged value", sh->value_bytes},
        {"the staged key_padding_mask", sh->kpm_bytes},
        {"the staged attn_mask", sh->attn_mask_bytes},
        {"the staged out", sh->out_bytes},
        {"the staged attn_weights", weights ? sh->weights_bytes : 0},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; ++i) {
        clattn_status s =
            layer_check_alloc(ctx, "mha", list[i].what, list[i].bytes);
        if (s != CLATTN_SUCCESS)
            return s;
    }
    return CLATTN_SUCCESS;
}

/* The buffer of an earlier input with the same pointer and size, so
   that self-attention stays self-attention; NULL if none. */
static cl_mem earlier(const void *host, size_t bytes, const void *prev_host,
                      size_t prev_bytes, cl_mem prev)
{
    return host == prev_host && bytes == prev_bytes ? prev : NULL;
}

static clattn_status stage_inputs(clattn_context *ctx, const mha_shapes *sh,
                                  const float *query, const float *key,
                                  const float *value, clattn_mha_buffers *b)
{
    clattn_status s = layer_buffer(ctx, sh->query_bytes, query, &b->query);
    if (s)
        return s;
    b->key = earlier(key, sh->key_bytes, query, sh->query_bytes, b->query);
    if (!b->key && (s = layer_buffer(ctx, sh->key_bytes, key, &b->key)))
        return s;
    b->value = earlier(value, sh->value_bytes, key, sh->key_bytes, b->key);
    if (!b->value)
        b->value =
            earlier(value, sh->value_bytes, query, sh->query_bytes, b->query);
    if (!b->value)
        s = layer_buffer(ctx, sh->value_bytes, value, &b->value);
    return s;
}

clattn_status
clattn_mha_forward_host(clattn_mha *layer, const clattn_mha_call *call,
                        const float *query, const float *key,
                        const float *value, const uint8_t *key_padding_mask,
                        const void *attn_mask, float *out, float *attn_weights)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_context *ctx = layer->ctx;
    CTX_CHECK_USABLE(ctx);
    mha_shapes sh;
    clattn_status s;
    if ((s = mha_check_call(layer, call, &sh)) ||
        (s = check_host(ctx, call, query, key, value, key_padding_mask,
                        attn_mask, out, attn_weights)))
        return s;
    clattn_mha_buffers b = {0};
    int weights = call->need_weights != CLATTN_NEED_WEIGHTS_NONE;
    if ((s = check_staging(ctx, &sh, weights)))
        return s;
    if (!(s = stage_inputs(ctx, &sh, query, key, value, &b)) &&
        !(sh.kpm_bytes && (s = layer_buffer(ctx, sh.kpm_bytes, key_padding_mask,
                                            &b.key_padding_mask))) &&
        !(sh.attn_mask_bytes && (s = layer_buffer(ctx, sh.attn_mask_bytes,
                                                  attn_mask, &b.attn_mask))) &&
        !(s = layer_buffer(ctx, sh.out_bytes, NULL, &b.out)) &&
        !(weights &&
          (s = layer_buffer(ctx, sh.weights_bytes, NULL, &b.attn_weights))) &&
        !(s = mha_run(layer, call, &sh, &b)) &&
        !(s = layer_read(ctx, b.out, sh.out_bytes, out)))
        if (weights)
            s = layer_read(ctx, b.attn_weights, sh.weights_bytes, attn_weights);
    cl_mem all[7] = {b.query,     b.key, b.value,       b.key_padding_mask,
                     b.attn_mask, b.out, b.attn_weights};
    layer_release(ctx, all, 7); /* inputs staged once may repeat */
    return s;
}
