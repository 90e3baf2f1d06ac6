/* Rotary position embeddings: every check on the host before anything is
   enqueued, the frequency table, and SDPA's rotating pre-pass. */
#include "sdpa_rope.h"
#include "context_internal.h"
#include "device_memory.h"
#include "kernel_args.h"
#include "program_cache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROPE_THETA_DEFAULT 10000.0f

clattn_status rope_check(clattn_context *ctx, const clattn_rope *r,
                         size_t head_dim, const char *field,
                         clattn_rope *resolved)
{
    *resolved = *r;
    if (r->style == CLATTN_ROPE_NONE) {
        if (r->rotary_dim || r->theta != 0.0f)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s.style is NONE but rotary_dim or theta is "
                             "set (leave them 0)",
                             field);
        return CLATTN_SUCCESS;
    }
    if (r->style != CLATTN_ROPE_INTERLEAVED && r->style != CLATTN_ROPE_HALF)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s.style has unknown value %d", field, (int)r->style);
    resolved->rotary_dim = r->rotary_dim ? r->rotary_dim : head_dim;
    if (resolved->rotary_dim > head_dim || resolved->rotary_dim % 2)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s.rotary_dim is %zu: must be even and at most "
                         "head_dim (%zu)",
                         field, resolved->rotary_dim, head_dim);
    /* theta >= 1 keeps every frequency at most 1 radian per position,
       so p * frequency / (2 pi) stays below 2^23 turns and its reduction
       exact (cl/core/rope.clh); below 1 the frequencies grow past that,
       and overflow a float for tiny theta. */
    if (r->theta != 0.0f && !(isfinite(r->theta) && r->theta >= 1.0f))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s.theta (%g) must be finite and at least 1 (0 = "
                         "10000)",
                         field, (double)r->theta);
    resolved->theta = r->theta != 0.0f ? r->theta : ROPE_THETA_DEFAULT;
    return CLATTN_SUCCESS;
}

clattn_status rope_turns_upload(clattn_context *ctx, const clattn_rope *r,
                                cl_mem *out)
{
    const size_t pairs = r->rotary_dim / 2;
    cl_float2 *turns = malloc(pairs * sizeof *turns);
    if (!turns)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "no host memory for the rotary frequency table");
    const double two_pi = 6.283185307179586476925286766559;
    for (size_t i = 0; i < pairs; ++i) {
        /* inv_freq_i = theta^(-2i / rotary_dim), as Hugging Face's
           1 / (base ** (arange(0, dim, 2) / dim)), in double */
        const double t =
            pow((double)r->theta, -(double)(2 * i) / (double)r->rotary_dim) /
            two_pi;
        turns[i].s[0] = (float)t;
        turns[i].s[1] = (float)(t - (double)turns[i].s[0]);
    }
    clattn_status s = ctx_buffer_make(ctx, "rotary frequency table",
                                      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                      pairs * sizeof *turns, turns, out);
    free(turns);
    return s;
}

/* Sequence b's query count. */
static size_t rows_of(const sdpa_problem *p, size_t b)
{
    return p->cu_q ? (size_t)(p->cu_q[b + 1] - p->cu_q[b]) : p->seq_q;
}

clattn_status sdpa_rope_check(clattn_context *ctx, const clattn_sdpa_desc *d,
                              sdpa_problem *p)
{
    clattn_status s = rope_check(ctx, &d->rope, p->head_dim, "rope", &p->rope);
    if (s)
        return s;
    if (p->rope.style == CLATTN_ROPE_NONE) {
        if (d->rope_q_positions || d->rope_k)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "rope_q_positions or rope_k is set but "
                             "rope.style is NONE");
        return CLATTN_SUCCESS;
    }
    for (size_t b = 0; b < p->batch; ++b) {
        const long at = d->rope_q_positions ? d->rope_q_positions[b] : 0;
        if (at < 0 || (size_t)at + rows_of(p, b) > ROPE_POSITION_LIMIT)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "rope_q_positions[%zu] is %ld: positions must "
                             "be >= 0, and with the %zu queries below 2^24",
                             b, at, rows_of(p, b));
    }
    if (d->rope_k) {
        if (p->pages.block_size)
            return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                             "rope_k with kv_pages: a paged cache holds "
                             "rotated keys (rotate them as they are "
                             "appended: clattn_kv_append_desc.rope)");
        if (p->seq_kv > ROPE_POSITION_LIMIT)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "rope_k with seq_kv %zu: key positions must "
                             "stay below 2^24",
                             p->seq_kv);
    }
    p->rope_q_positions = d->rope_q_positions;
    p->rope_k = d->rope_k != 0;
    return CLATTN_SUCCESS;
}

void sdpa_rope_release(clattn_context *ctx, sdpa_rope_plan *plan)
{
    cl_mem mems[4] = {plan->q_rot, plan->k_rot, plan->turns, plan->starts};
    for (int i = 0; i < 4; ++i)
        ctx_buffer_release(ctx, mems[i]);
    if (plan->q_kernel)
        clReleaseKernel(plan->q_kernel);
    if (plan->k_kernel)
        clReleaseKernel(plan->k_kernel);
    memset(plan, 0, sizeof *plan);
}

/* A contiguous fp32 copy of dims and its view. */
static clattn_status make_copy(clattn_context *ctx, const char *what,
                               const size_t dims[4], cl_mem *buffer,
                               checked_view *view)
{
    const size_t count = dims[0] * dims[1] * dims[2] * dims[3]; /* checked */
    /* A broadcast view (stride 0) can name far more elements than its
       buffer holds; the copy holds them all. */
    if (count * sizeof(float) > ctx->info.max_alloc_bytes)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "rope: the %s needs %zu bytes in one buffer; this "
                         "device allocates at most %llu",
                         what, count * sizeof(float),
                         (unsigned long long)ctx->info.max_alloc_bytes);
    clattn_status s = ctx_buffer_make(ctx, what, CL_MEM_READ_WRITE,
                                      count * sizeof(float), NULL, buffer);
    if (s)
        return s;
    memset(view, 0, sizeof *view);
    view->buffer = *buffer;
    view->strides[3] = 1;
    view->strides[2] = dims[3];
    view->strides[1] = dims[2] * dims[3];
    view->strides[0] = dims[1] * dims[2] * dims[3];
    view->end = count;
    view->elem_size = sizeof(float);
    return CLATTN_SUCCESS;
}

static clattn_status rope_kernel(clattn_context *ctx, clattn_dtype dtype,
                                 cl_kernel *out)
{
    char options[32] = "";
    if (dtype != CLATTN_DTYPE_FP32)
        snprintf(options, sizeof options, "-DK_DTYPE=%d", (int)dtype);
    return program_kernel_variant(ctx, PROGRAM_ROPE, options, "rope_rows", out);
}

clattn_status sdpa_rope_prepare(clattn_context *ctx, sdpa_problem *p,
                                sdpa_views *views, sdpa_rope_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (p->rope.style == CLATTN_ROPE_NONE)
        return CLATTN_SUCCESS;
    size_t dq[4], dk[4];
    sdpa_dims_q(p, dq);
    sdpa_dims_k(p, dk);
    checked_view q_rot, k_rot;
    clattn_status s;
    if ((s = rope_turns_upload(ctx, &p->rope, &plan->turns)) ||
        (p->rope_q_positions &&
         (s = ctx_buffer_make(ctx, "rope_q_positions",
                              CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                              p->batch * sizeof(int32_t),
                              (void *)p->rope_q_positions, &plan->starts))) ||
        (s = rope_kernel(ctx, CLATTN_DTYPE_FP32, &plan->q_kernel)) ||
        (s = make_copy(ctx, "rotated q", dq, &plan->q_rot, &q_rot)) ||
        (p->rope_k &&
         ((s = rope_kernel(ctx, p->k_dtype, &plan->k_kernel)) ||
          (s = make_copy(ctx, "rotated k", dk, &plan->k_rot, &k_rot))))) {
        sdpa_rope_release(ctx, plan);
        return s;
    }
    plan->q_src = views->q;
    views->q = q_rot;
    if (p->rope_k) {
        plan->k_src = views->k;
        views->k = k_rot;
        p->k_dtype = CLATTN_DTYPE_FP32;
    }
    return CLATTN_SUCCESS;
}

static clattn_status enqueue_rows(clattn_context *ctx, cl_command_queue queue,
                                  cl_kernel k, const checked_view *src,
                                  const size_t dims[4], cl_mem dst,
                                  cl_mem starts, cl_mem cu, size_t batch,
                                  const sdpa_problem *p, cl_mem turns,
                                  cl_uint num_wait, const cl_event *wait,
                                  cl_event *done)
{
    kernel_args a = args_begin(k);
    arg_view(&a, src);
    arg_mem(&a, dst);
    arg_mem(&a, starts);
    arg_mem(&a, cu);
    arg_uint(&a, cu != NULL);
    arg_uint(&a, (cl_uint)batch);
    arg_mem(&a, turns);
    arg_uint(&a, (cl_uint)p->rope.style);
    arg_uint(&a, (cl_uint)p->rope.rotary_dim);
    arg_uint(&a, (cl_uint)dims[3]);
    arg_uint(&a, (cl_uint)dims[1]);
    arg_uint(&a, (cl_uint)dims[2]);
    /* CPU-class: rows in runs of 16 (see cl/sdpa/rope.cl) */
    const size_t rows_per_item = context_gpu_class(ctx) ? 1 : 16;
    arg_uint(&a, (cl_uint)rows_per_item);
    /* the pairs and the features past them; runs of rows; the view's
       batch */
    const size_t global[3] = {
        p->rope.rotary_dim / 2 + (dims[3] - p->rope.rotary_dim),
        (dims[2] + rows_per_item - 1) / rows_per_item, dims[0]};
    cl_int err = a.err;
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(queue, k, 3, NULL, global, NULL, num_wait,
                                     wait, done);
    return err == CL_SUCCESS ? CLATTN_SUCCESS
                             : ctx_cl_error(ctx, "rope_rows", err);
}

clattn_status sdpa_rope_enqueue(clattn_context *ctx, cl_command_queue queue,
                                const sdpa_problem *p, const sdpa_views *views,
                                const sdpa_rope_plan *plan, cl_uint num_wait,
                                const cl_event *wait, cl_event *done)
{
    size_t dq[4], dk[4];
    sdpa_dims_q(p, dq);
    sdpa_dims_k(p, dk);
    cl_event q_done = NULL;
    clattn_status s = enqueue_rows(
        ctx, queue, plan->q_kernel, &plan->q_src, dq, plan->q_rot, plan->starts,
        views->cu_q, p->batch, p, plan->turns, num_wait, wait, &q_done);
    if (s || !plan->k_kernel) {
        *done = q_done;
        return s;
    }
    /* The keys' positions start at 0 in each sequence. On an in-order
       queue the K pass follows the Q pass; waiting on it keeps the chain
       one event long on any queue. */
    s = enqueue_rows(ctx, queue, plan->k_kernel, &plan->k_src, dk, plan->k_rot,
                     NULL, views->cu_k, p->batch, p, plan->turns, 1, &q_done,
                     done);
    clReleaseEvent(q_done);
    return s;
}
