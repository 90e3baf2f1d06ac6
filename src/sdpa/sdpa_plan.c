/* sdpa_prepare / sdpa_launch (sdpa_plan.h): one validation, one choice of
   variant, then the variant's own plan and launch. */
#include "sdpa_plan.h"
#include "context_internal.h"
#include "device_memory.h"
#include "sdpa_pages.h"
#include "sdpa_varlen.h"
#include "wait_list.h"

#include <string.h>

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

/* Every check of the request, into plan's problem and views. */
static clattn_status check_request(clattn_context *ctx, cl_command_queue queue,
                                   const clattn_sdpa_desc *desc,
                                   const clattn_sdpa_tensors *tensors,
                                   clattn_sdpa_path path, cl_uint num_wait,
                                   const cl_event *wait, sdpa_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    clattn_status s;
    if ((s = sdpa_problem_init(ctx, desc, &plan->problem)) ||
        (s = sdpa_path_check(ctx, NULL, path)) ||
        (s = wait_list_check(ctx, num_wait, wait)) ||
        (queue && (s = check_queue(ctx, queue))))
        return s;
    return sdpa_views_check(ctx, &plan->problem, tensors, &plan->views);
}

/* The device copies of the request's host tables (block table, packed
   offsets). */
static void release_uploads(clattn_context *ctx, sdpa_views *v)
{
    cl_mem all[3] = {v->kv_table, v->cu_q, v->cu_k};
    for (int i = 0; i < 3; ++i)
        ctx_buffer_release(ctx, all[i]);
    v->kv_table = v->cu_q = v->cu_k = NULL;
}

/* The chosen variant's checks and prepare step. */
static clattn_status prepare_variant(clattn_context *ctx,
                                     cl_command_queue queue,
                                     const sdpa_variant *v, sdpa_plan *plan)
{
    /* An explicit variant is never swapped for another: one that cannot
       take the request refuses it. */
    clattn_status s = sdpa_variant_check(ctx, v, &plan->problem, &plan->views);
    if (s)
        return s;
    plan->variant = v;
    plan->queue = queue ? queue : ctx->queue;
    const sdpa_problem *p = &plan->problem;
    if ((p->pages.block_size &&
         (s = sdpa_pages_upload(ctx, &p->pages, p->batch, p->seq_kv,
                                p->key_lengths, &plan->views.kv_table))) ||
        (p->cu_q && (s = sdpa_varlen_upload(ctx, p, &plan->views.cu_q,
                                            &plan->views.cu_k))) ||
        (s = sdpa_rope_prepare(ctx, &plan->problem, &plan->views,
                               &plan->rope)) ||
        (s = v->prepare(ctx, plan))) {
        plan->variant = NULL;
        sdpa_rope_release(ctx, &plan->rope);
        release_uploads(ctx, &plan->views);
    }
    return s;
}

clattn_status sdpa_prepare_head_mean(
    clattn_context *ctx, cl_command_queue queue, const clattn_sdpa_desc *desc,
    const clattn_sdpa_tensors *tensors, cl_mem mean_buffer, size_t mean_offset,
    clattn_sdpa_path path, cl_uint num_wait, const cl_event *wait,
    sdpa_plan *plan, int *taken)
{
    *taken = 0;
    clattn_status s =
        check_request(ctx, queue, desc, tensors, path, num_wait, wait, plan);
    if (s)
        return s;
    const sdpa_problem *p = &plan->problem;
    checked_view *mean = &plan->views.probs;
    mean->buffer = mean_buffer;
    mean->offset = mean_offset;
    mean->strides[0] = p->seq_q * p->seq_kv;
    mean->strides[1] = 0;
    mean->strides[2] = p->seq_kv;
    mean->strides[3] = 1;
    mean->elem_size = sizeof(float);
    plan->views.probs_head_mean = 1;
    /* The variant a request with probs gets, asked with the head-mean
       view: only fused-cpu takes it, and then only where it fits. */
    const sdpa_variant *v = sdpa_variant_choose(ctx, p, &plan->views, path);
    if (!v || v->path != CLATTN_SDPA_PATH_FUSED_CPU ||
        !sdpa_fused_head_mean_fits(ctx, p)) {
        memset(plan, 0, sizeof *plan);
        return CLATTN_SUCCESS;
    }
    if (!(s = prepare_variant(ctx, queue, v, plan)))
        *taken = 1;
    return s;
}

clattn_status sdpa_prepare(clattn_context *ctx, cl_command_queue queue,
                           const clattn_sdpa_desc *desc,
                           const clattn_sdpa_tensors *tensors,
                           clattn_sdpa_path path, cl_uint num_wait,
                           const cl_event *wait, sdpa_plan *plan)
{
    clattn_status s =
        check_request(ctx, queue, desc, tensors, path, num_wait, wait, plan);
    if (s)
        return s;
    const sdpa_variant *v =
        sdpa_variant_choose(ctx, &plan->problem, &plan->views, path);
    return prepare_variant(ctx, queue, v, plan);
}

clattn_status sdpa_launch(clattn_context *ctx, const sdpa_plan *plan,
                          cl_uint num_wait, const cl_event *wait,
                          cl_event *done)
{
    if (!plan->rope.q_kernel)
        return plan->variant->launch(ctx, plan, num_wait, wait, done);
    /* The rotations first; the path reads their copies. */
    cl_event rotated = NULL;
    clattn_status s =
        sdpa_rope_enqueue(ctx, plan->queue, &plan->problem, &plan->views,
                          &plan->rope, num_wait, wait, &rotated);
    if (!s)
        s = plan->variant->launch(ctx, plan, 1, &rotated, done);
    if (rotated)
        clReleaseEvent(rotated);
    return s;
}

void sdpa_plan_release(clattn_context *ctx, sdpa_plan *plan)
{
    if (plan->variant)
        plan->variant->release(ctx, plan);
    plan->variant = NULL;
    sdpa_rope_release(ctx, &plan->rope);
    release_uploads(ctx, &plan->views);
}
