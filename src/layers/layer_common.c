/* Shared plumbing of the layers: weights and staging buffers, the stage
   timer, weight and argument checks, kernel launches and the bias-add
   kernel. */
#include "layer_common.h"
#include "checked_math.h"
#include "context_internal.h"
#include "device_memory.h"
#include "kernel_args.h"
#include "kernel_params.h"
#include "tensor_view.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

clattn_status layer_timer_begin(clattn_context *ctx, cl_command_queue queue,
                                layer_timer *timer, layer_timer **active)
{
    *active = NULL;
    if (!timer)
        return CLATTN_SUCCESS;
    memset(timer, 0, sizeof *timer);
    cl_int err = clEnqueueMarkerWithWaitList(queue, 0, NULL, &timer->start);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clEnqueueMarkerWithWaitList", err);
    *active = timer;
    return CLATTN_SUCCESS;
}

void layer_timer_record(layer_timer *timer, layer_stage stage, cl_event event)
{
    if (!event)
        return;
    if (!timer) {
        clReleaseEvent(event);
        return;
    }
    if (timer->count == LAYER_TIMER_MAX_EVENTS) {
        /* Full (a chunked path enqueues many kernels): the new event takes
           the last slot, so the span of the one it replaces is charged to
           the new event's stage. The total stays exact, and so does the
           split when both are of one stage, as a chunk loop's are. */
        timer->count--;
        clReleaseEvent(timer->events[timer->count]);
    }
    timer->events[timer->count] = event;
    timer->stages[timer->count] = stage;
    timer->count++;
}

cl_event *layer_timer_slot(layer_timer *timer, cl_event *scratch)
{
    *scratch = NULL;
    return timer ? scratch : NULL;
}

static cl_int event_end(cl_event event, cl_ulong *end)
{
    return clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_END, sizeof *end,
                                   end, NULL);
}

clattn_status layer_timer_finish(clattn_context *ctx, cl_command_queue queue,
                                 layer_timer *timer, clattn_layer_timing *out)
{
    if (!timer)
        return CLATTN_SUCCESS;
    clattn_status status = CLATTN_SUCCESS;
    cl_int err = out ? clFinish(queue) : CL_SUCCESS;
    if (err != CL_SUCCESS)
        status = ctx_cl_error(ctx, "clFinish", err);
    double ms[LAYER_STAGE_COUNT] = {0};
    cl_ulong previous = 0;
    if (out && status == CLATTN_SUCCESS) {
        /* A marker's own end is when the queue reached it. */
        err = event_end(timer->start, &previous);
        for (int i = 0; i < timer->count && err == CL_SUCCESS; ++i) {
            cl_ulong end = 0;
            err = event_end(timer->events[i], &end);
            if (err == CL_SUCCESS && end > previous) {
                ms[timer->stages[i]] += (double)(end - previous) * 1e-6;
                previous = end;
            }
        }
        if (err != CL_SUCCESS)
            status = ctx_cl_error(ctx, "clGetEventProfilingInfo", err);
    }
    for (int i = 0; i < timer->count; ++i)
        clReleaseEvent(timer->events[i]);
    if (timer->start)
        clReleaseEvent(timer->start);
    timer->count = 0;
    timer->start = NULL;
    if (out && status == CLATTN_SUCCESS) {
        out->projection_ms = ms[LAYER_STAGE_PROJECTION];
        out->attention_ms = ms[LAYER_STAGE_ATTENTION];
        out->other_ms = ms[LAYER_STAGE_OTHER];
    }
    return status;
}

clattn_status layer_buffer(clattn_context *ctx, size_t bytes, const void *host,
                           cl_mem *out)
{
    /* The layers size their buffers during validation (layer_size_buffer);
       this is the last line against a request the device cannot hold,
       before any host memory is read. */
    *out = NULL;
    clattn_status status = layer_check_alloc(ctx, "layer", "a buffer", bytes);
    if (status != CLATTN_SUCCESS)
        return status;
    cl_int err;
    cl_mem_flags flags = CL_MEM_READ_WRITE;
    if (host)
        flags |= CL_MEM_COPY_HOST_PTR;
    *out = ctx_buffer_create(ctx, flags, bytes ? bytes : 4, (void *)host, &err);
    if (!*out)
        return err == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
                       err == CL_OUT_OF_RESOURCES ||
                       err == CL_OUT_OF_HOST_MEMORY ||
                       err == CL_INVALID_BUFFER_SIZE
                   ? ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                               "device buffer of %zu bytes: %s", bytes,
                               cl_error_name(err))
                   : ctx_cl_error(ctx, "clCreateBuffer", err);
    return CLATTN_SUCCESS;
}

clattn_status layer_upload(clattn_context *ctx, const float *host, size_t count,
                           cl_mem *out)
{
    *out = NULL;
    if (!host)
        return CLATTN_SUCCESS;
    size_t bytes = 0;
    clattn_status status = layer_mul_size(ctx, &bytes, count, sizeof(float), 1);
    if (status != CLATTN_SUCCESS)
        return status;
    return layer_buffer(ctx, bytes, host, out);
}

clattn_status layer_read(clattn_context *ctx, cl_mem buffer, size_t bytes,
                         void *host)
{
    cl_int err = clEnqueueReadBuffer(ctx->queue, buffer, CL_TRUE, 0, bytes,
                                     host, 0, NULL, NULL);
    return err == CL_SUCCESS ? CLATTN_SUCCESS
                             : ctx_cl_error(ctx, "clEnqueueReadBuffer", err);
}

clattn_status layer_check_weight(clattn_context *ctx, const char *layer,
                                 const char *name, const float *weight,
                                 int needed)
{
    if (needed && !weight)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: weight %s is NULL but the description needs it",
                         layer, name);
    if (!needed && weight)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: weight %s is given but the description has no "
                         "place for it (check bias / layout flags)",
                         layer, name);
    return CLATTN_SUCCESS;
}

clattn_status layer_check_buffer(clattn_context *ctx, const char *layer,
                                 const char *name, cl_mem buffer, size_t bytes,
                                 int is_output)
{
    if (!buffer)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: buffer %s is NULL", layer, name);
    /* mem_check's errors start with the name it is given: "layer: name". */
    char what[96];
    snprintf(what, sizeof what, "%s: %s", layer, name);
    size_t have = 0;
    clattn_status s = mem_check(ctx, what, buffer, is_output, &have);
    if (s != CLATTN_SUCCESS)
        return s;
    if (have < bytes)
        return ctx_error(ctx, CLATTN_ERROR_BUFFER_TOO_SMALL,
                         "%s: %s has %zu bytes, the call needs %zu", layer,
                         name, have, bytes);
    return CLATTN_SUCCESS;
}

int layer_host_overlap(const void *a, size_t an, const void *b, size_t bn)
{
    if (!a || !b || !an || !bn)
        return 0;
    /* As integers: comparing pointers into different objects is undefined. */
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return pa < pb + bn && pb < pa + an;
}

void layer_release(clattn_context *ctx, cl_mem *buffers, size_t count)
{
    for (size_t i = 0; i < count; ++i) {
        int repeated = 0;
        for (size_t j = 0; j < i; ++j)
            repeated |= buffers[j] == buffers[i];
        if (!repeated)
            ctx_buffer_release(ctx, buffers[i]);
    }
    for (size_t i = 0; i < count; ++i)
        buffers[i] = NULL;
}

clattn_status layer_mul_size(clattn_context *ctx, size_t *out, size_t a,
                             size_t b, size_t c)
{
    size_t ab;
    if (checked_mul(a, b, &ab) || checked_mul(ab, c, out))
        return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                         "size %zu x %zu x %zu overflows size_t", a, b, c);
    return CLATTN_SUCCESS;
}

clattn_status layer_count(clattn_context *ctx, size_t *count, size_t *bytes,
                          size_t a, size_t b, size_t c)
{
    clattn_status status = layer_mul_size(ctx, count, a, b, c);
    if (status == CLATTN_SUCCESS && bytes)
        status = layer_mul_size(ctx, bytes, *count, sizeof(float), 1);
    return status;
}

clattn_status layer_check_alloc(clattn_context *ctx, const char *layer,
                                const char *what, size_t bytes)
{
    if (bytes > ctx->info.max_alloc_bytes)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "%s: %s needs %zu bytes in one buffer; this device "
                         "allocates at most %llu",
                         layer, what, bytes,
                         (unsigned long long)ctx->info.max_alloc_bytes);
    return CLATTN_SUCCESS;
}

clattn_status layer_size_buffer(clattn_context *ctx, const char *layer,
                                const char *what, const size_t *factors,
                                size_t n, size_t *bytes)
{
    /* An internal size may overflow where the caller's shapes did not (a
       padded copy): it is then over any device's allocation limit, never a
       wrapped small number. */
    if (checked_product(factors, n, bytes))
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "%s: %s would need more than SIZE_MAX bytes in one "
                         "buffer",
                         layer, what);
    return layer_check_alloc(ctx, layer, what, *bytes);
}

size_t layer_extent(size_t offset, size_t rows, size_t ld)
{
    size_t e;
    if (checked_mul(rows, ld, &e) || checked_add(e, offset, &e))
        return SIZE_MAX;
    return e;
}

/* n rounded up to the GEMM tile, and the product of two such. */
static int gemm_operand(size_t a, size_t b, size_t *elements)
{
    size_t pa, pb;
    return checked_add(a, LAYER_GEMM_TILE - 1, &pa) ||
           checked_add(b, LAYER_GEMM_TILE - 1, &pb) ||
           checked_mul(pa / LAYER_GEMM_TILE * LAYER_GEMM_TILE,
                       pb / LAYER_GEMM_TILE * LAYER_GEMM_TILE, elements);
}

clattn_status layer_check_gemm(clattn_context *ctx, const char *layer,
                               const char *what, size_t m, size_t n, size_t k,
                               size_t extent)
{
    size_t a = 0, b = 0, c = 0;
    if (gemm_operand(m, k, &a) || gemm_operand(k, n, &b) ||
        gemm_operand(m, n, &c) || a > INT_MAX || b > INT_MAX || c > INT_MAX ||
        extent > INT_MAX)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "%s: the %s GEMM (m %zu, n %zu, k %zu, reaching "
                         "element %zu) exceeds CLBlast's int sizes and "
                         "indices (at most %d elements per matrix)",
                         layer, what, m, n, k, extent, INT_MAX);
    /* CPU-class devices run it on clattn's kernels (gemm_cpu.c), which pack
       the weight for the call: n rounded up to LIN_BN columns by k. It
       must fit one allocation, checked here so that a call fails before
       any work. (a bounds (k rounded up) x (n rounded up): no overflow.) */
    const size_t packed =
        (n + LIN_BN - 1) / LIN_BN * LIN_BN * k * sizeof(float);
    if (!context_gpu_class(ctx) && packed > ctx->info.max_alloc_bytes)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "%s: the %s GEMM's packed weight (n %zu rounded up to "
                         "%d, by k %zu) needs %zu bytes; this device allocates "
                         "at most %llu",
                         layer, what, n, LIN_BN, k, packed,
                         (unsigned long long)ctx->info.max_alloc_bytes);
    return CLATTN_SUCCESS;
}

static clattn_status enqueue_local(clattn_context *ctx, cl_command_queue queue,
                                   cl_kernel kernel, const char *name,
                                   cl_uint dims, const size_t *global,
                                   const size_t *local, cl_event *event)
{
    cl_int err = clEnqueueNDRangeKernel(queue, kernel, dims, NULL, global,
                                        local, 0, NULL, event);
    if (err != CL_SUCCESS)
        return ctx_error(ctx, CLATTN_ERROR_OPENCL,
                         "clEnqueueNDRangeKernel(%s) failed: %s (%d)", name,
                         cl_error_name(err), (int)err);
    return CLATTN_SUCCESS;
}

clattn_status layer_enqueue(clattn_context *ctx, cl_command_queue queue,
                            cl_kernel kernel, const char *name, cl_uint dims,
                            const size_t *global, cl_event *event)
{
    return enqueue_local(ctx, queue, kernel, name, dims, global, NULL, event);
}

clattn_status layer_launch_local(clattn_context *ctx, cl_command_queue queue,
                                 const kernel_args *args, const char *name,
                                 cl_uint dims, const size_t *global,
                                 const size_t *local, layer_timer *timer,
                                 layer_stage stage)
{
    if (args->err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg", args->err);
    cl_event scratch;
    cl_event *event = layer_timer_slot(timer, &scratch);
    clattn_status status = enqueue_local(ctx, queue, args->kernel, name, dims,
                                         global, local, event);
    if (status == CLATTN_SUCCESS && event)
        layer_timer_record(timer, stage, *event);
    return status;
}

clattn_status layer_launch(clattn_context *ctx, cl_command_queue queue,
                           const kernel_args *args, const char *name,
                           cl_uint dims, const size_t *global,
                           layer_timer *timer, layer_stage stage)
{
    return layer_launch_local(ctx, queue, args, name, dims, global, NULL, timer,
                              stage);
}

clattn_status layer_launch_spread(clattn_context *ctx, cl_command_queue queue,
                                  const kernel_args *args, const char *name,
                                  cl_uint dims, const size_t *global,
                                  layer_timer *timer, layer_stage stage)
{
    static const size_t ones[3] = {1, 1, 1};
    const size_t *local = context_gpu_class(ctx) || dims > 3 ? NULL : ones;
    return layer_launch_local(ctx, queue, args, name, dims, global, local,
                              timer, stage);
}

clattn_status layer_kernel(clattn_context *ctx, program_id program,
                           const char *name, kernel_args *args)
{
    cl_kernel kernel = NULL;
    clattn_status status = program_kernel(ctx, program, name, &kernel);
    *args = args_begin(kernel);
    return status;
}

clattn_status layer_launch_once(clattn_context *ctx, const kernel_args *args,
                                const char *name, size_t g0, size_t g1,
                                layer_timer *timer, layer_stage stage)
{
    clattn_status status;
    if (args->err != CL_SUCCESS) {
        status = ctx_error(
            ctx, CLATTN_ERROR_OPENCL, "clSetKernelArg(%s, %u) failed: %s (%d)",
            name, args->index - 1, cl_error_name(args->err), (int)args->err);
    } else {
        size_t global[2] = {g0, g1};
        status = layer_launch(ctx, ctx->queue, args, name, g1 ? 2 : 1, global,
                              timer, stage);
    }
    clReleaseKernel(args->kernel);
    return status;
}

clattn_status layer_run_kernel(clattn_context *ctx, program_id program,
                               const char *name, const cl_mem *mems,
                               size_t n_mems, const cl_ulong *ulongs,
                               size_t n_ulongs, size_t g0, size_t g1,
                               layer_timer *timer, layer_stage stage)
{
    kernel_args a;
    clattn_status status = layer_kernel(ctx, program, name, &a);
    if (status != CLATTN_SUCCESS)
        return status;
    for (size_t i = 0; i < n_mems; ++i)
        arg_mem(&a, mems[i]);
    for (size_t i = 0; i < n_ulongs; ++i)
        arg_ulong(&a, ulongs[i]);
    return layer_launch_once(ctx, &a, name, g0, g1, timer, stage);
}

clattn_status layer_bias_add(clattn_context *ctx, cl_command_queue queue,
                             cl_mem y, size_t y_offset, size_t ld, size_t rows,
                             size_t cols, cl_mem bias, size_t bias_offset,
                             cl_event *event)
{
    cl_kernel kernel;
    clattn_status status =
        program_kernel(ctx, PROGRAM_LAYER_COMMON, "layer_bias_add", &kernel);
    if (status != CLATTN_SUCCESS)
        return status;
    kernel_args a = args_begin(kernel);
    arg_mem(&a, y);
    arg_ulong(&a, y_offset);
    arg_ulong(&a, ld);
    arg_mem(&a, bias);
    arg_ulong(&a, bias_offset);
    if (a.err != CL_SUCCESS) {
        clReleaseKernel(kernel);
        return ctx_cl_error(ctx, "clSetKernelArg", a.err);
    }
    size_t global[2] = {cols, rows};
    status =
        layer_enqueue(ctx, queue, kernel, "layer_bias_add", 2, global, event);
    clReleaseKernel(kernel);
    return status;
}
