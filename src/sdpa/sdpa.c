/* The SDPA entry points: device buffers (clattn_sdpa) and host memory
   (clattn_sdpa_host). Both validate everything before any work. */
#include "checked_math.h"
#include "context_internal.h"
#include "device_memory.h"
#include "sdpa_plan.h"

#include <stdio.h>
#include <string.h>

clattn_status clattn_sdpa_on_queue(clattn_context *ctx, cl_command_queue queue,
                                   const clattn_sdpa_desc *desc,
                                   const clattn_sdpa_tensors *tensors,
                                   clattn_sdpa_path path,
                                   cl_uint num_events_in_wait_list,
                                   const cl_event *event_wait_list,
                                   cl_event *event)
{
    CTX_CHECK_USABLE(ctx);
    sdpa_plan plan;
    clattn_status s;
    if ((s = sdpa_prepare(ctx, queue, desc, tensors, path,
                          num_events_in_wait_list, event_wait_list, &plan)))
        return s;
    s = sdpa_launch(ctx, &plan, num_events_in_wait_list, event_wait_list,
                    event);
    sdpa_plan_release(ctx, &plan);
    return s;
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
    return ctx_buffer_make(ctx, name, flags, bytes, (void *)src, out);
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
    if (p.k_dtype != CLATTN_DTYPE_FP32 || p.v_dtype != CLATTN_DTYPE_FP32)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "clattn_sdpa_host takes fp32 arrays (k_dtype %s, "
                         "v_dtype %s): other K/V types run on device "
                         "buffers, through clattn_sdpa",
                         clattn_dtype_name(p.k_dtype),
                         clattn_dtype_name(p.v_dtype));
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
