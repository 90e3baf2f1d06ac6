/* The SDPA entry points: device buffers (clattn_sdpa) and host memory
   (clattn_sdpa_host). Both validate everything before any work. */
#include "checked_math.h"
#include "context_internal.h"
#include "device_memory.h"
#include "sdpa_problem.h"
#include "wait_list.h"

#include <stdio.h>
#include <string.h>

static clattn_status check_path(clattn_context *ctx, clattn_sdpa_path path)
{
    if (path < CLATTN_SDPA_PATH_AUTO || path > CLATTN_SDPA_PATH_FUSED_GPU)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "unknown SDPA path %d", (int)path);
    return CLATTN_SUCCESS;
}

/* What runs: UNFUSED, FUSED_CPU or FUSED_GPU. AUTO takes the fused path
   whenever it supports the request (no probs, head dims within its limit),
   else the unfused one; $CLATTN_SDPA_PATH (ctx->auto_path) can pin AUTO's
   choice for requests the fused path supports. An explicit fused path is never
   swapped for the unfused one: sdpa_fused_enqueue refuses what it cannot
   do. */
static clattn_sdpa_path resolve_path(clattn_context *ctx, const sdpa_problem *p,
                                     const sdpa_views *views,
                                     clattn_sdpa_path path)
{
    if (path == CLATTN_SDPA_PATH_AUTO) {
        if (views->probs.buffer)
            return CLATTN_SDPA_PATH_UNFUSED;
        /* The pin picks among the paths AUTO may take; it never turns a
           request AUTO runs into an error (head dims over the fused
           limit still run unfused). */
        if (sdpa_fused_check(ctx, p, views) != CLATTN_SUCCESS)
            path = CLATTN_SDPA_PATH_UNFUSED;
        else if (ctx->auto_path != CLATTN_SDPA_PATH_AUTO)
            path = ctx->auto_path;
        else
            path = CLATTN_SDPA_PATH_FUSED;
        ctx_clear_error(ctx); /* the check's reason is not this call's error */
    }
    if (path == CLATTN_SDPA_PATH_FUSED)
        path = ctx->fused_variant;
    return path;
}

/* A caller's queue must be on the context's OpenCL context and device:
   the kernels were built there. */
static clattn_status check_queue(clattn_context *ctx, cl_command_queue queue)
{
    cl_context owner = NULL;
    cl_device_id device = NULL;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof owner,
                                       &owner, NULL);
    if (err == CL_SUCCESS)
        err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof device,
                                    &device, NULL);
    if (err != CL_SUCCESS)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "queue: not a valid command queue (%s)",
                         cl_error_name(err));
    if (owner != ctx->cl_ctx || device != ctx->device)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "queue: not on the context's OpenCL context and "
                         "device");
    return CLATTN_SUCCESS;
}

clattn_status clattn_sdpa_on_queue(clattn_context *ctx, cl_command_queue queue,
                                   const clattn_sdpa_desc *desc,
                                   const clattn_sdpa_tensors *tensors,
                                   clattn_sdpa_path path,
                                   cl_uint num_events_in_wait_list,
                                   const cl_event *event_wait_list,
                                   cl_event *event)
{
    CTX_CHECK_USABLE(ctx);
    sdpa_problem p;
    sdpa_views views;
    clattn_status s;
    if ((s = sdpa_problem_init(ctx, desc, &p)) || (s = check_path(ctx, path)) ||
        (s = wait_list_check(ctx, num_events_in_wait_list, event_wait_list)) ||
        (queue && (s = check_queue(ctx, queue))) ||
        (s = sdpa_views_check(ctx, &p, tensors, &views)))
        return s;
    path = resolve_path(ctx, &p, &views, path);
    if (path == CLATTN_SDPA_PATH_UNFUSED)
        return sdpa_unfused_enqueue(ctx, queue ? queue : ctx->queue, &p, &views,
                                    num_events_in_wait_list, event_wait_list,
                                    event);
    return sdpa_fused_enqueue(ctx, queue ? queue : ctx->queue, &p, &views, path,
                              num_events_in_wait_list, event_wait_list, event);
}

clattn_status clattn_sdpa(clattn_context *ctx, const clattn_sdpa_desc *desc,
                          const clattn_sdpa_tensors *tensors,
                          clattn_sdpa_path path,
                          cl_uint num_events_in_wait_list,
                          const cl_event *event_wait_list, cl_event *event)
{
    return clattn_sdpa_on_queue(ctx, NULL, desc, tensors, path,
                                num_events_in_wait_list, event_wait_list,
                                event);
}

/* Host staging: one device buffer per array. */
typedef struct host_buffers {
    cl_mem q, k, v, mask, out, probs;
} host_buffers;

static void host_buffers_release(clattn_context *ctx, host_buffers *b)
{
    cl_mem all[6] = {b->q, b->k, b->v, b->mask, b->out, b->probs};
    for (int i = 0; i < 6; ++i)
        ctx_buffer_release(ctx, all[i]);
}

static clattn_status make_buffer(clattn_context *ctx, const char *name,
                                 const size_t dims[4], size_t elem_size,
                                 const void *src, cl_mem *out)
{
    size_t n, bytes;
    if (checked_product(dims, 4, &n) || checked_mul(n, elem_size, &bytes))
        return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                         "%s: byte count overflows size_t", name);
    if (bytes > ctx->info.max_alloc_bytes)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "%s needs %zu bytes in one buffer; this device "
                         "allocates at most %llu (use the device entry point "
                         "with your own buffers, or a smaller problem)",
                         name, bytes,
                         (unsigned long long)ctx->info.max_alloc_bytes);
    cl_mem_flags flags =
        src ? CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR : CL_MEM_READ_WRITE;
    cl_int err;
    *out = ctx_buffer_create(ctx, flags, bytes, (void *)src, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        char call[64];
        snprintf(call, sizeof call, "clCreateBuffer (%s)", name);
        return ctx_cl_error(ctx, call, err);
    }
    return CLATTN_SUCCESS;
}

static size_t element_count(const size_t dims[4])
{
    return dims[0] * dims[1] * dims[2] * dims[3]; /* checked in make_buffer */
}

clattn_status clattn_sdpa_host(clattn_context *ctx,
                               const clattn_sdpa_desc *desc, const float *q,
                               const float *k, const float *v, const void *mask,
                               float *out, float *probs)
{
    CTX_CHECK_USABLE(ctx);
    sdpa_problem p;
    clattn_status s = sdpa_problem_init(ctx, desc, &p);
    if (s != CLATTN_SUCCESS)
        return s;
    if (!q || !k || !v || !out)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s is NULL",
                         !q   ? "q"
                         : !k ? "k"
                         : !v ? "v"
                              : "out");
    if (p.mask_type != CLATTN_MASK_NONE && !mask)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mask is NULL but mask_type is %d", (int)p.mask_type);

    size_t dq[4], dk[4], dv[4], dout[4], dprobs[4];
    sdpa_dims_q(&p, dq);
    sdpa_dims_k(&p, dk);
    sdpa_dims_v(&p, dv);
    sdpa_dims_out(&p, dout);
    sdpa_dims_probs(&p, dprobs);
    host_buffers b = {0};
    if ((s = make_buffer(ctx, "q", dq, sizeof(float), q, &b.q)) ||
        (s = make_buffer(ctx, "k", dk, sizeof(float), k, &b.k)) ||
        (s = make_buffer(ctx, "v", dv, sizeof(float), v, &b.v)) ||
        (s = make_buffer(ctx, "out", dout, sizeof(float), NULL, &b.out)) ||
        (probs && (s = make_buffer(ctx, "probs", dprobs, sizeof(float), NULL,
                                   &b.probs))) ||
        (p.mask_type != CLATTN_MASK_NONE &&
         (s = make_buffer(ctx, "mask", p.mask_dims, sdpa_mask_elem_size(&p),
                          mask, &b.mask)))) {
        host_buffers_release(ctx, &b);
        return s;
    }

    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, b.q, 0, dq);
    clattn_tensor_contiguous(&t.k, b.k, 0, dk);
    clattn_tensor_contiguous(&t.v, b.v, 0, dv);
    clattn_tensor_contiguous(&t.out, b.out, 0, dout);
    if (b.probs)
        clattn_tensor_contiguous(&t.probs, b.probs, 0, dprobs);
    if (b.mask)
        clattn_tensor_contiguous(&t.mask, b.mask, 0, p.mask_dims);

    cl_event done = NULL;
    s = clattn_sdpa(ctx, desc, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
    /* Read into the caller's arrays only once everything has succeeded:
       staging keeps the outputs untouched on any error before this. */
    if (s == CLATTN_SUCCESS) {
        cl_int err = clWaitForEvents(1, &done);
        if (err != CL_SUCCESS)
            s = ctx_cl_error(ctx, "clWaitForEvents", err);
    }
    if (done)
        clReleaseEvent(done);
    if (s == CLATTN_SUCCESS) {
        cl_int err = clEnqueueReadBuffer(ctx->queue, b.out, CL_TRUE, 0,
                                         element_count(dout) * sizeof(float),
                                         out, 0, NULL, NULL);
        if (err == CL_SUCCESS && probs)
            err = clEnqueueReadBuffer(ctx->queue, b.probs, CL_TRUE, 0,
                                      element_count(dprobs) * sizeof(float),
                                      probs, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            s = ctx_cl_error(ctx, "clEnqueueReadBuffer", err);
    }
    host_buffers_release(ctx, &b);
    return s;
}

const char *clattn_sdpa_path_name(clattn_sdpa_path path)
{
    switch (path) {
    case CLATTN_SDPA_PATH_AUTO: return "auto";
    case CLATTN_SDPA_PATH_UNFUSED: return "unfused";
    case CLATTN_SDPA_PATH_FUSED: return "fused";
    case CLATTN_SDPA_PATH_FUSED_CPU: return "fused-cpu";
    case CLATTN_SDPA_PATH_FUSED_GPU: return "fused-gpu";
    }
    return "unknown";
}

clattn_sdpa_path clattn_sdpa_fused_variant(const clattn_context *ctx)
{
    if (!ctx || !ctx->usable)
        return CLATTN_SDPA_PATH_AUTO;
    return ctx->fused_variant;
}
