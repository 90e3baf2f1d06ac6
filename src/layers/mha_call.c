/* The entry points of a multi-head attention call: device buffers, and
   host memory (staged through device buffers made for the call), both on
   the skeleton of layer_object.h. */
#include "context_internal.h"
#include "layer_object.h"
#include "mha_internal.h"

static const char LAYER[] = "mha";

clattn_status clattn_mha_forward(clattn_mha *layer, const clattn_mha_call *call,
                                 const clattn_mha_buffers *buffers)
{
    mha_shapes sh;
    clattn_status s;
    if ((s = layer_forward_check(layer, LAYER, call)) ||
        (s = mha_check_call(layer, call, &sh)) ||
        (s = mha_check_buffers(layer, call, &sh, buffers)))
        return s;
    return mha_run(layer, call, &sh, buffers);
}

/* A host call after its checks: the call and its validated shapes. */
typedef struct mha_host_call {
    const clattn_mha_call *call;
    const mha_shapes *shapes;
} mha_host_call;

/* The device form's run on the staged buffers (layer_host_forward: in the
   order of clattn_mha_buffers). Made by the staging to the call's sizes,
   on this context, read-write and outputs of their own, they pass
   mha_check_buffers by construction, so the run follows at once, as it
   did before the skeleton. */
static clattn_status host_run(void *layer, const void *state, const cl_mem *b)
{
    const mha_host_call *h = state;
    const clattn_mha_buffers buffers = {
        .query = b[0],
        .key = b[1],
        .value = b[2],
        .key_padding_mask = b[3],
        .attn_mask = b[4],
        .out = b[5],
        .attn_weights = b[6],
    };
    return mha_run(layer, h->call, h->shapes, &buffers);
}

clattn_status
clattn_mha_forward_host(clattn_mha *layer, const clattn_mha_call *call,
                        const float *query, const float *key,
                        const float *value, const uint8_t *key_padding_mask,
                        const void *attn_mask, float *out, float *attn_weights)
{
    mha_shapes sh;
    clattn_status s;
    if ((s = layer_forward_check(layer, LAYER, call)) ||
        (s = mha_check_call(layer, call, &sh)))
        return s;
    /* A mask or the weights the call does not use are absent whatever
       the caller passed: not required, not staged, not read or written.
       query == key == value (one pointer and size) stays one buffer:
       self-attention. */
    const int kpm = call->has_key_padding_mask != 0,
              mask = call->attn_mask_type != CLATTN_MASK_NONE,
              weights = call->need_weights != CLATTN_NEED_WEIGHTS_NONE;
    const layer_host_array arrays[7] = {
        {"query", query, NULL, sh.query_bytes},
        {"key", key, NULL, sh.key_bytes},
        {"value", value, NULL, sh.value_bytes},
        {"key_padding_mask", kpm ? key_padding_mask : NULL, NULL, sh.kpm_bytes},
        {"attn_mask", mask ? attn_mask : NULL, NULL, sh.attn_mask_bytes},
        {"out", NULL, out, sh.out_bytes},
        {"attn_weights", NULL, weights ? attn_weights : NULL, sh.weights_bytes},
    };
    const int required[7] = {1, 1, 1, kpm, mask, 1, weights};
    const mha_host_call h = {call, &sh};
    /* MHA's host form has always taken overlapping arrays (out over query:
       in place); staging keeps that well defined. */
    return layer_host_forward_rules(layer->ctx, LAYER, arrays, required, 7,
                                    host_run, layer, &h, 0);
}
