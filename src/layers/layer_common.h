/* What every layer shares: checking and uploading its weights, checking
   the caller's buffers and host ranges, staging host data for the _host
   forms, releasing buffers, launching kernels under the per-stage event
   timer behind clattn_layer_timing, and small kernels (bias add) of
   cl/layers/layer_common.cl. */
#ifndef CLATTN_LAYER_COMMON_H
#define CLATTN_LAYER_COMMON_H

#include "clattn/clattn.h"
#include "kernel_args.h"
#include "program_cache.h"

typedef enum layer_stage {
    LAYER_STAGE_PROJECTION = 0,
    LAYER_STAGE_ATTENTION,
    LAYER_STAGE_OTHER,
    LAYER_STAGE_COUNT
} layer_stage;

#define LAYER_TIMER_MAX_EVENTS 64

/* Each recorded event ends a stage; the stage's time runs from the end of
   the event before it (or the start marker) to its own end, so on an
   in-order queue every gap is charged to the stage that follows it and the
   three stages add up to the whole call. */
typedef struct layer_timer {
    cl_event start;
    cl_event events[LAYER_TIMER_MAX_EVENTS];
    layer_stage stages[LAYER_TIMER_MAX_EVENTS];
    int count;
} layer_timer;

/* A timer for the call when the caller asked for timing (NULL otherwise,
   and then every layer_timer_* call is a no-op): enqueues the start
   marker. */
clattn_status layer_timer_begin(clattn_context *ctx, cl_command_queue queue,
                                layer_timer *timer, layer_timer **active);

/* Takes ownership of event (releases it when timer is NULL). The event
   must be the last command of its stage. */
void layer_timer_record(layer_timer *timer, layer_stage stage, cl_event event);

/* A place for an enqueue's event: &scratch when timing, NULL otherwise. */
cl_event *layer_timer_slot(layer_timer *timer, cl_event *scratch);

/* Waits for the queue, sums the stages into out, releases the events.
   out may be NULL when only releasing (an error path). */
clattn_status layer_timer_finish(clattn_context *ctx, cl_command_queue queue,
                                 layer_timer *timer, clattn_layer_timing *out);

/* A read-only device copy of count floats (counted by the memory stats).
   NULL host gives NULL and success (an absent optional weight). */
clattn_status layer_upload(clattn_context *ctx, const float *host, size_t count,
                           cl_mem *out);

/* A device buffer of bytes, written from host when host is not NULL. */
clattn_status layer_buffer(clattn_context *ctx, size_t bytes, const void *host,
                           cl_mem *out);

/* Blocking read of bytes from buffer into host. */
clattn_status layer_read(clattn_context *ctx, cl_mem buffer, size_t bytes,
                         void *host);

/* Checks that a weight the description needs is given and one it does not
   need is absent, naming it in the error. */
clattn_status layer_check_weight(clattn_context *ctx, const char *layer,
                                 const char *name, const float *weight,
                                 int needed);

/* A device argument: non-NULL, of this context, at least bytes long, and
   (mem_check) not CL_MEM_WRITE_ONLY when an input (is_output 0) nor
   CL_MEM_READ_ONLY when an output (is_output 1). Errors start
   "layer: name". */
clattn_status layer_check_buffer(clattn_context *ctx, const char *layer,
                                 const char *name, cl_mem buffer, size_t bytes,
                                 int is_output);

/* Nonzero when the host byte ranges [a, a + an) and [b, b + bn) meet
   (NULL or empty never meets anything). */
int layer_host_overlap(const void *a, size_t an, const void *b, size_t bn);

/* Releases the library buffers of an array, each distinct one once (an
   entry may repeat another; NULL entries are fine), and clears it. */
void layer_release(clattn_context *ctx, cl_mem *buffers, size_t count);

/* a * b (and * c) without overflow, else CLATTN_ERROR_SIZE_OVERFLOW. */
clattn_status layer_mul_size(clattn_context *ctx, size_t *out, size_t a,
                             size_t b, size_t c);

/* Element and byte counts without overflow: *count = a * b * c, and its
   bytes as floats in *bytes when bytes is not NULL. */
clattn_status layer_count(clattn_context *ctx, size_t *count, size_t *bytes,
                          size_t a, size_t b, size_t c);

/* The bytes of one internal buffer (scratch, staging, a padded copy) of
   the product of n factors: CLATTN_ERROR_UNSUPPORTED, naming what, when the
   product overflows size_t or exceeds the device's max_alloc_bytes. Every
   internal buffer a call makes goes through this during validation, so an
   oversized request is refused before anything is allocated or enqueued. */
clattn_status layer_size_buffer(clattn_context *ctx, const char *layer,
                                const char *what, const size_t *factors,
                                size_t n, size_t *bytes);

/* The same check for a byte count already computed (checked). */
clattn_status layer_check_alloc(clattn_context *ctx, const char *layer,
                                const char *what, size_t bytes);

/* CLBlast takes every size, leading dimension and offset as an int and
   indexes its kernels (and its padded copies, rounded up to its tiles) with
   int: a GEMM fits when m, n and k rounded up to LAYER_GEMM_TILE make
   operands of at most INT_MAX elements, and extent, the largest element
   index + 1 the call reaches in any of its three matrices (offset + rows x
   ld), is at most INT_MAX. Else CLATTN_ERROR_UNSUPPORTED naming what. */
#define LAYER_GEMM_TILE 256

/* offset + rows x ld: the element count a row-major matrix reaches, as
   layer_check_gemm takes it (SIZE_MAX on overflow, which it refuses). */
size_t layer_extent(size_t offset, size_t rows, size_t ld);
clattn_status layer_check_gemm(clattn_context *ctx, const char *layer,
                               const char *what, size_t m, size_t n, size_t k,
                               size_t extent);

/* y[r][c] += bias[c] for r < rows, c < cols, row stride ld (elements). */
clattn_status layer_bias_add(clattn_context *ctx, cl_command_queue queue,
                             cl_mem y, size_t y_offset, size_t ld, size_t rows,
                             size_t cols, cl_mem bias, size_t bias_offset,
                             cl_event *event);

/* Enqueues a kernel on a 1-D or 2-D range with the local size left to the
   driver, keeping the OpenCL error with the kernel's name. */
clattn_status layer_enqueue(clattn_context *ctx, cl_command_queue queue,
                            cl_kernel kernel, const char *name, cl_uint dims,
                            const size_t *global, cl_event *event);

/* A kernel of a program (the calling thread's, kernel_cache.h), in
   args->kernel with its arguments started: set them, then
   layer_launch_once. */
clattn_status layer_kernel(clattn_context *ctx, program_id program,
                           const char *name, kernel_args *args);

/* Enqueues args->kernel on the context's queue over a 1-D (g1 == 0) or
   2-D range as layer_launch does (a clSetKernelArg error names the kernel
   and the argument), then releases the kernel: a kernel of layer_kernel
   is launched once. */
clattn_status layer_launch_once(clattn_context *ctx, const kernel_args *args,
                                const char *name, size_t g0, size_t g1,
                                layer_timer *timer, layer_stage stage);

/* layer_kernel and layer_launch_once for the common shape of the small
   layer kernels: n_mems buffers, then n_ulongs integers. */
clattn_status layer_run_kernel(clattn_context *ctx, program_id program,
                               const char *name, const cl_mem *mems,
                               size_t n_mems, const cl_ulong *ulongs,
                               size_t n_ulongs, size_t g0, size_t g1,
                               layer_timer *timer, layer_stage stage);

/* Enqueues args->kernel once all its arguments were set (else the first
   clSetKernelArg error) and, when timing, records its event under stage.
   The kernel stays the caller's. */
clattn_status layer_launch(clattn_context *ctx, cl_command_queue queue,
                           const kernel_args *args, const char *name,
                           cl_uint dims, const size_t *global,
                           layer_timer *timer, layer_stage stage);

/* layer_launch with a work-group size (NULL: the runtime's choice). */
clattn_status layer_launch_local(clattn_context *ctx, cl_command_queue queue,
                                 const kernel_args *args, const char *name,
                                 cl_uint dims, const size_t *global,
                                 const size_t *local, layer_timer *timer,
                                 layer_stage stage);

/* layer_launch for kernels whose every work-item is a register-tiled
   loop of its own: on CPU-class devices one work-item per work-group, so
   that the runtime spreads even a small grid over every core (PoCL chose
   work-groups for th_mix's grid of 196 that ran it 2.4x slower). A
   GPU-class device chooses for itself. */
clattn_status layer_launch_spread(clattn_context *ctx, cl_command_queue queue,
                                  const kernel_args *args, const char *name,
                                  cl_uint dims, const size_t *global,
                                  layer_timer *timer, layer_stage stage);

#endif
