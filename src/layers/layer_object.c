/* The layer skeleton of layer_object.h: create and destroy boilerplate,
   the forward entry checks, and the host staging every _host form runs
   its device form through. */
#include "layer_object.h"
#include "context_internal.h"
#include "struct_size.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CTX_CHECK_USABLE as a function, for helpers that return its status. */
static clattn_status usable(clattn_context *ctx)
{
    if (!ctx || !ctx->usable)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    ctx_clear_error(ctx);
    return CLATTN_SUCCESS;
}

clattn_status layer_create_begin(clattn_context *ctx, const char *layer,
                                 const void *out, const void *desc,
                                 const void *weights, void *copy,
                                 size_t desc_size, size_t oldest_size,
                                 const char *desc_type)
{
    clattn_status status = usable(ctx);
    if (status != CLATTN_SUCCESS)
        return status;
    const char *missing = !out       ? "out"
                          : !desc    ? "desc"
                          : !weights ? "weights"
                                     : NULL;
    if (missing)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                         layer, missing);
    /* What each layer desc's _init writes: every field zero (its default)
       and struct_size. */
    memset(copy, 0, desc_size);
    *(size_t *)copy = desc_size;
    return ctx_struct_copy_in(ctx, copy, desc_size, oldest_size, desc,
                              desc_type);
}

void *layer_object_create(clattn_context *ctx, const char *layer, size_t size,
                          const layer_weight_spec *weights, size_t count,
                          clattn_status *status)
{
    for (size_t i = 0; i < count && *status == CLATTN_SUCCESS; ++i)
        *status = layer_check_weight(ctx, layer, weights[i].name,
                                     weights[i].host, weights[i].needed);
    if (*status != CLATTN_SUCCESS)
        return NULL;
    char *obj = calloc(1, size);
    if (!obj) {
        *status = ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                            "%s: host memory for the layer", layer);
        return NULL;
    }
    /* A pointer to a struct, converted, points to its first member. */
    *(clattn_context **)(void *)obj = ctx;
    size_t done = 0;
    for (; done < count && *status == CLATTN_SUCCESS; ++done)
        if (weights[done].field != LAYER_NOT_UPLOADED)
            *status =
                layer_upload(ctx, weights[done].host, weights[done].count,
                             (cl_mem *)(void *)(obj + weights[done].field));
    if (*status == CLATTN_SUCCESS)
        return obj;
    for (size_t i = 0; i < done; ++i)
        if (weights[i].field != LAYER_NOT_UPLOADED)
            layer_release(ctx, (cl_mem *)(void *)(obj + weights[i].field), 1);
    free(obj);
    return NULL;
}

clattn_context *layer_context(const void *layer)
{
    return *(clattn_context *const *)layer;
}

void layer_object_free(void *obj, cl_mem *weights, size_t count)
{
    if (!obj)
        return;
    layer_release(layer_context(obj), weights, count);
    free(obj);
}

clattn_status layer_forward_check(void *layer, const char *name,
                                  const void *call)
{
    if (!layer)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_context *ctx = layer_context(layer);
    clattn_status status = usable(ctx);
    if (status == CLATTN_SUCCESS && !call)
        status = ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                           "%s: call is NULL", name);
    return status;
}

clattn_status layer_check_device_args(clattn_context *ctx, const char *layer,
                                      const layer_device_arg *a, size_t count)
{
    for (size_t i = 0; i < count; ++i)
        for (size_t j = i + 1; j < count && a[i].mem; ++j) {
            if (a[j].mem != a[i].mem || (!a[i].is_output && !a[j].is_output))
                continue;
            const layer_device_arg *in = !a[i].is_output   ? &a[i]
                                         : !a[j].is_output ? &a[j]
                                                           : NULL;
            if (in)
                return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                                 "%s: %s is also an output buffer (the same "
                                 "buffer as %s)",
                                 layer, in->name,
                                 in == &a[i] ? a[j].name : a[i].name);
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s: %s and %s are the same buffer", layer,
                             a[i].name, a[j].name);
        }
    for (size_t i = 0; i < count; ++i) {
        if (a[i].optional && !a[i].mem)
            continue;
        clattn_status status = layer_check_buffer(
            ctx, layer, a[i].name, a[i].mem, a[i].bytes, a[i].is_output);
        if (status != CLATTN_SUCCESS)
            return status;
    }
    return CLATTN_SUCCESS;
}

clattn_status layer_timed_run(clattn_context *ctx, clattn_layer_timing *timing,
                              layer_enqueue_run enqueue, void *state)
{
    layer_timer tb, *timer;
    clattn_status status =
        layer_timer_begin(ctx, ctx->queue, timing ? &tb : NULL, &timer);
    if (status != CLATTN_SUCCESS)
        return status;
    status = enqueue(state, timer);
    clattn_status done = layer_timer_finish(
        ctx, ctx->queue, timer, status == CLATTN_SUCCESS ? timing : NULL);
    return status != CLATTN_SUCCESS ? status : done;
}

static clattn_status check_overlap(clattn_context *ctx, const char *layer,
                                   const layer_host_array *a, size_t count)
{
    for (size_t i = 0; i < count; ++i)
        for (size_t j = 0; j < count; ++j) {
            const void *p = a[i].in ? a[i].in : a[i].out;
            if (!a[j].out || i == j || (!a[i].in && j < i))
                continue; /* each pair of outputs once */
            if (!layer_host_overlap(p, a[i].bytes, a[j].out, a[j].bytes))
                continue;
            if (a[i].in)
                return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                                 "%s: %s overlaps an output array", layer,
                                 a[i].name);
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s: %s and %s overlap", layer, a[i].name,
                             a[j].name);
        }
    return CLATTN_SUCCESS;
}

static clattn_status host_check(clattn_context *ctx, const char *layer,
                                const layer_host_array *arrays,
                                const int *required, size_t count,
                                int overlap_rule)
{
    for (size_t i = 0; i < count; ++i)
        if (required && required[i] && !arrays[i].in && !arrays[i].out)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s: %s is NULL", layer, arrays[i].name);
    /* Each staging buffer is one allocation: refused before any is made or
       any host array read, and before the overlap rule, so a shape that
       cannot run is refused as such even where its extents overlap. */
    for (size_t i = 0; i < count; ++i) {
        if (!arrays[i].in && !arrays[i].out)
            continue;
        char what[64];
        snprintf(what, sizeof what, "the staged %s", arrays[i].name);
        clattn_status status =
            layer_check_alloc(ctx, layer, what, arrays[i].bytes);
        if (status != CLATTN_SUCCESS)
            return status;
    }
    return overlap_rule ? check_overlap(ctx, layer, arrays, count)
                        : CLATTN_SUCCESS;
}

/* The buffer of an earlier input with the same pointer and size (the
   device form then sees one buffer, as self-attention wants); NULL if
   none. */
static cl_mem earlier_input(const layer_host_array *a, const cl_mem *b,
                            size_t i)
{
    for (size_t j = 0; j < i; ++j)
        if (a[j].in && a[j].in == a[i].in && a[j].bytes == a[i].bytes)
            return b[j];
    return NULL;
}

clattn_status layer_host_forward_rules(clattn_context *ctx, const char *name,
                                       const layer_host_array *arrays,
                                       const int *required, size_t count,
                                       layer_device_run run, void *layer,
                                       const void *call, int overlap_rule)
{
    cl_mem b[LAYER_HOST_MAX_ARRAYS] = {NULL};
    /* A layer with more arrays is a bug of the library, not the caller's. */
    clattn_status status =
        count <= LAYER_HOST_MAX_ARRAYS
            ? host_check(ctx, name, arrays, required, count, overlap_rule)
            : ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                        "%s: %zu host arrays, at most %d", name, count,
                        LAYER_HOST_MAX_ARRAYS);
    for (size_t i = 0; i < count && status == CLATTN_SUCCESS; ++i) {
        if (arrays[i].in)
            b[i] = earlier_input(arrays, b, i);
        if (!b[i] && (arrays[i].in || arrays[i].out))
            status = layer_buffer(ctx, arrays[i].bytes, arrays[i].in, &b[i]);
    }
    if (status == CLATTN_SUCCESS)
        status = run(layer, call, b);
    for (size_t i = 0; i < count && status == CLATTN_SUCCESS; ++i)
        if (arrays[i].out)
            status = layer_read(ctx, b[i], arrays[i].bytes, arrays[i].out);
    /* Shared inputs repeat in b: layer_release frees each once. OpenCL
       keeps a buffer alive until the commands using it finish. */
    layer_release(
        ctx, b, count < LAYER_HOST_MAX_ARRAYS ? count : LAYER_HOST_MAX_ARRAYS);
    return status;
}

clattn_status layer_host_forward(clattn_context *ctx, const char *name,
                                 const layer_host_array *arrays,
                                 const int *required, size_t count,
                                 layer_device_run run, void *layer,
                                 const void *call)
{
    return layer_host_forward_rules(ctx, name, arrays, required, count, run,
                                    layer, call, 1);
}
