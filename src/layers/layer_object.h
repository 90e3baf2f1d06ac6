/* The skeleton every layer is built on, so that a layer file holds only
   what is its own (its sizes, its kernels, its weight list):

   - create(ctx, desc, weights, &layer): layer_create_check (context
     usable, out / desc / weights given), the layer's desc checks,
     layer_check_weights (layer_common.h, names in the messages),
     layer_object_new, layer_upload_all, and the layer's destroy on a
     failure, so a failed create holds nothing;
   - destroy: layer_object_free (the device weights, each once, then the
     object);
   - device form forward(layer, call, buffers...): layer_forward_check
     (layer, context, call), the call's sizes and limits, the aliasing rule
     and layer_check_buffer on each buffer, then the enqueues under the
     stage timer;
   - host form forward_host(layer, call, arrays...): the same call sizes,
     layer_host_check (NULL arrays, each staging buffer against the
     device's limit, the overlap rule), then layer_host_forward: upload the
     inputs, run the device form, read the outputs only when it succeeded,
     release.

   Every layer struct starts with its clattn_context * (the first member),
   which is how these helpers find the context of a layer they are given. */
#ifndef CLATTN_LAYER_OBJECT_H
#define CLATTN_LAYER_OBJECT_H

#include "clattn/clattn.h"
#include "layer_common.h"

/* The most host arrays one _host form stages (MHA's seven). */
#define LAYER_HOST_MAX_ARRAYS 8

/* The start of every create: INVALID_ARGUMENT without a message for a NULL
   or unusable context (there is nowhere to put one), else the context's
   error is cleared and out, desc and weights must be non-NULL ("layer: out
   is NULL"). The caller clears *out first. */
clattn_status layer_create_check(clattn_context *ctx, const char *layer,
                                 const void *out, const void *desc,
                                 const void *weights);

/* A zeroed object of size bytes with its first member, the context
   pointer, set; NULL and OUT_OF_MEMORY in *status when the host has no
   memory. */
void *layer_object_new(clattn_context *ctx, const char *layer, size_t size,
                       clattn_status *status);

/* Releases weights (each distinct one once, NULL entries fine) and frees
   obj; NULL obj is fine. */
void layer_object_free(void *obj, cl_mem *weights, size_t count);

/* The start of every forward, device or host form: INVALID_ARGUMENT for a
   NULL layer or an unusable context (no message: the context's error stays
   as it was), else the error is cleared and call must be non-NULL. */
clattn_status layer_forward_check(void *layer, const char *name,
                                  const void *call);

/* One device buffer of a forward call, for layer_check_device_args. */
typedef struct layer_device_arg {
    const char *name;
    cl_mem mem;
    size_t bytes;  /* what the call reads or writes */
    int is_output; /* else an input */
    int optional;  /* NULL allowed (and then not checked) */
} layer_device_arg;

/* The buffer rule of every device form, in order: aliasing first (a shared
   buffer is the error whatever its size): an output is neither an input
   ("layer: x is also an output buffer (the same buffer as out)") nor
   another output ("layer: a and b are the same buffer"), while inputs may
   share one; then layer_check_buffer on each (NULL refused unless
   optional): this context, large enough, flags that allow the direction. */
clattn_status layer_check_device_args(clattn_context *ctx, const char *layer,
                                      const layer_device_arg *args,
                                      size_t count);

/* The enqueues of a device form, after its checks. */
typedef clattn_status (*layer_enqueue_run)(void *state, layer_timer *timer);

/* Runs enqueue under the stage timer: with timing, waits for the queue and
   writes the split into *timing, only when everything succeeded; without
   it, returns once enqueued (timer NULL). */
clattn_status layer_timed_run(clattn_context *ctx, clattn_layer_timing *timing,
                              layer_enqueue_run enqueue, void *state);

/* The context of a layer object (its first member). */
clattn_context *layer_context(const void *layer);

/* One host array of a _host form. An input has in (NULL: absent, no
   buffer: the device form gets NULL); an output has out (NULL: not
   wanted). Listed in the order of the device form's buffers. */
typedef struct layer_host_array {
    const char *name; /* as in messages: "query" */
    const void *in;
    void *out;
    size_t bytes;
} layer_host_array;

/* The checks of a host form, in order: a required array that is NULL
   ("layer: name is NULL"; required[i] says which), each staging buffer
   against max_alloc_bytes ("the staged name"), then the no-aliasing rule:
   no input overlaps an output (naming the input) and no two outputs
   overlap. An input may be another input (self-attention, keys as values).
   required may be NULL (nothing required). */
clattn_status layer_host_check(clattn_context *ctx, const char *layer,
                               const layer_host_array *arrays,
                               const int *required, size_t count);

/* The device form a host form stages for: runs on buffers[i], the device
   copy of arrays[i] (NULL where the array is absent). */
typedef clattn_status (*layer_device_run)(void *state, const cl_mem *buffers);

/* Host staging: a device buffer for each present array (an input copied in;
   an input with the pointer and size of an earlier one shares its buffer),
   run(state, buffers), then, only when it succeeded, a blocking read of
   each output; every staging buffer is released on every path, so an error
   writes no output. */
clattn_status layer_host_forward(clattn_context *ctx,
                                 const layer_host_array *arrays, size_t count,
                                 layer_device_run run, void *state);

#endif
