/* The skeleton every layer is built on, so that a layer file holds only
   what is its own (its sizes, its kernels, its weight list):

   - create(ctx, desc, weights, &layer): layer_create_begin (context
     usable, out / desc / weights given, the desc read up to its
     struct_size), the layer's desc checks,
     then layer_object_create with the layer's weight list (each checked
     with its name in the messages, then uploaded into its member; a
     failure releases everything), so a failed create holds nothing;
   - destroy: layer_object_free (the device weights, each once, then the
     object);
   - device form forward(layer, call, buffers...): layer_forward_check
     (layer, context, call), the call's sizes and limits, the aliasing rule
     and layer_check_buffer on each buffer, then the enqueues under the
     stage timer;
   - host form forward_host(layer, call, arrays...): the same call sizes,
     then layer_host_forward: its checks (NULL arrays, each staging buffer
     against the device's limit, the overlap rule), upload the inputs, run
     the device form, read the outputs only when it succeeded, release
     (layer_host_forward_rules can leave out the overlap rule: MHA's host
     form takes out over query).

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
   is NULL"); then the caller's desc is read into copy, the library's full
   layout of desc_size bytes, as every layer desc's _init makes it (zero,
   struct_size) and no further than the caller's struct_size
   (ctx_struct_copy_in; oldest_size is the first layout, desc_type names
   the struct in its errors). The caller clears *out first. */
clattn_status layer_create_begin(clattn_context *ctx, const char *layer,
                                 const void *out, const void *desc,
                                 const void *weights, void *copy,
                                 size_t desc_size, size_t oldest_size,
                                 const char *desc_type);

/* The start of every create as one line: *out cleared, then
   layer_create_begin into a local copy named copy of the desc type T (its
   name the one errors use); returns the status on a failure, as
   CTX_CHECK_USABLE does, so that every create begins the same way. */
#define LAYER_CREATE_BEGIN(T, copy, ctx, layer, out, desc, weights, oldest)    \
    T copy;                                                                    \
    do {                                                                       \
        if (out)                                                               \
            *(out) = NULL;                                                     \
        clattn_status begun_ = layer_create_begin(                             \
            ctx, layer, out, desc, weights, &copy, sizeof copy, oldest, #T);   \
        if (begun_ != CLATTN_SUCCESS)                                          \
            return begun_;                                                     \
    } while (0)

/* One weight of a layer: its state_dict name (for messages), the caller's
   array (NULL: absent), whether the description needs it, and, when it is
   uploaded as it is, its count of floats and the offsetof of the cl_mem
   member it goes to (LAYER_NOT_UPLOADED: the layer makes its own copy, as
   additive's summed biases). */
typedef struct layer_weight_spec {
    const char *name;
    const float *host;
    int needed;
    size_t count;
    size_t field;
} layer_weight_spec;

#define LAYER_NOT_UPLOADED ((size_t)-1)

/* The end of every create, when *status is still CLATTN_SUCCESS (else
   NULL at once): each weight checked (layer_check_weight's rule and
   messages, in order), a zeroed object of size bytes with its context
   pointer set, each weight uploaded into its member. On a failure nothing
   is held: what was uploaded is released, the object freed, NULL returned
   and *status the error. */
void *layer_object_create(clattn_context *ctx, const char *layer, size_t size,
                          const layer_weight_spec *weights, size_t count,
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

/* The device form a host form stages for: runs layer's call on buffers[i],
   the device copy of arrays[i] (NULL where the array is absent). */
typedef clattn_status (*layer_device_run)(void *layer, const void *call,
                                          const cl_mem *buffers);

/* A host form after its call sizes and the limits of its device form.
   First the checks, in order: a required array that is NULL ("layer: name
   is NULL"; required[i] says which), each staging buffer against
   max_alloc_bytes ("the staged name"), then the no-aliasing rule: no input
   overlaps an output (naming the input) and no two outputs overlap (an
   input may be another input: self-attention, keys as values). Then the
   staging: a device buffer for each present array (an input copied in; an
   input with the pointer and size of an earlier one shares its buffer),
   run(layer, call, buffers), and, only when it succeeded, a blocking read
   of each output. Every staging buffer is released on every path, so an
   error writes no output. */
clattn_status layer_host_forward(clattn_context *ctx, const char *name,
                                 const layer_host_array *arrays,
                                 const int *required, size_t count,
                                 layer_device_run run, void *layer,
                                 const void *call);

/* layer_host_forward with its overlap rule on (overlap_rule 1: what
   layer_host_forward does) or off (0), for a host form whose contract
   takes overlapping arrays (MHA's: out over query, in place). Staging
   keeps that well defined: every input is copied in before the run, and
   the outputs are read back after it, in list order. */
clattn_status layer_host_forward_rules(clattn_context *ctx, const char *name,
                                       const layer_host_array *arrays,
                                       const int *required, size_t count,
                                       layer_device_run run, void *layer,
                                       const void *call, int overlap_rule);

#endif
