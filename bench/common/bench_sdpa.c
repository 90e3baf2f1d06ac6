#include "bench_sdpa.h"

#include "bench_timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) * (1.0 / 16777216.0) * 4.0 - 2.0);
    }
}

int bench_inputs_make(const bench_case *c, bench_inputs *in)
{
    size_t nq = bench_case_q_elems(c), nkv = bench_case_kv_elems(c);
    in->q = malloc(nq * sizeof(float));
    in->k = malloc(nkv * sizeof(float));
    in->v = malloc(nkv * sizeof(float));
    if (!in->q || !in->k || !in->v) {
        bench_inputs_free(in);
        return -1;
    }
    fill(in->q, nq, 1);
    fill(in->k, nkv, 2);
    fill(in->v, nkv, 3);
    return 0;
}

void bench_inputs_free(bench_inputs *in)
{
    free(in->q);
    free(in->k);
    free(in->v);
    in->q = in->k = in->v = NULL;
}

static cl_mem make_buffer(cl_context cl, size_t elems, const float *src,
                          cl_int *err)
{
    cl_mem_flags flags =
        src ? CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR : CL_MEM_READ_WRITE;
    return clCreateBuffer(cl, flags, elems * sizeof(float), (void *)src, err);
}

int bench_sdpa_setup(bench_sdpa *b, clattn_context *ctx, const bench_case *c,
                     const bench_inputs *in)
{
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
    clattn_info info;
    if (clattn_context_info(ctx, &info) != CLATTN_SUCCESS) {
        snprintf(b->error, sizeof b->error, "clattn_context_info: %s",
                 clattn_context_last_error(ctx));
        return -1;
    }
    b->queue = info.queue;
    bench_case_desc(c, &b->desc);
    size_t nq = bench_case_q_elems(c), nkv = bench_case_kv_elems(c);
    b->out_elems = bench_case_o_elems(c);
    b->caller_bytes = (nq + 2 * nkv + b->out_elems) * sizeof(float);
    cl_int e[5] = {CL_SUCCESS, CL_SUCCESS, CL_SUCCESS, CL_SUCCESS, CL_SUCCESS};
    cl_mem q = make_buffer(info.cl_ctx, nq, in->q, &e[0]);
    cl_mem k = make_buffer(info.cl_ctx, nkv, in->k, &e[1]);
    cl_mem v = make_buffer(info.cl_ctx, nkv, in->v, &e[2]);
    cl_mem o = make_buffer(info.cl_ctx, b->out_elems, NULL, &e[3]);
    if (c->probs) {
        const size_t np = c->batch * c->heads_q * c->seq_q * c->seq_kv;
        size_t dp[4] = {c->batch, c->heads_q, c->seq_q, c->seq_kv};
        cl_mem pm = make_buffer(info.cl_ctx, np, NULL, &e[4]);
        clattn_tensor_contiguous(&b->t.probs, pm, 0, dp);
        b->caller_bytes += np * sizeof(float);
    }
    size_t dq[4] = {c->batch, c->heads_q, c->seq_q, c->head_dim};
    size_t dkv[4] = {c->batch, c->heads_kv, c->seq_kv, c->head_dim};
    clattn_tensor_contiguous(&b->t.q, q, 0, dq);
    clattn_tensor_contiguous(&b->t.k, k, 0, dkv);
    clattn_tensor_contiguous(&b->t.v, v, 0, dkv);
    clattn_tensor_contiguous(&b->t.out, o, 0, dq);
    for (int i = 0; i < 5; ++i)
        if (e[i] != CL_SUCCESS) {
            snprintf(b->error, sizeof b->error,
                     "clCreateBuffer failed (%d) for %zu bytes of Q, K, V, "
                     "O (and the probabilities)",
                     (int)e[i], b->caller_bytes);
            bench_sdpa_teardown(b);
            return -1;
        }
    return 0;
}

void bench_sdpa_teardown(bench_sdpa *b)
{
    cl_mem all[5] = {b->t.q.buffer, b->t.k.buffer, b->t.v.buffer,
                     b->t.out.buffer, b->t.probs.buffer};
    if (b->queue)
        clFinish(b->queue);
    for (int i = 0; i < 5; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    memset(&b->t, 0, sizeof b->t);
}

int bench_sdpa_poison_output(bench_sdpa *b)
{
    const float nan = NAN;
    cl_int err =
        clEnqueueFillBuffer(b->queue, b->t.out.buffer, &nan, sizeof nan, 0,
                            b->out_elems * sizeof nan, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clFinish(b->queue);
    if (err != CL_SUCCESS)
        snprintf(b->error, sizeof b->error, "clEnqueueFillBuffer failed (%d)",
                 (int)err);
    return err == CL_SUCCESS ? 0 : -1;
}

/* A marker before the call and the call's own event bracket every kernel
   it enqueues; the wait makes the wall clock around it meaningful too. */
int bench_sdpa_call(void *arg, double *event_ms)
{
    bench_sdpa *b = arg;
    cl_event start = NULL, done = NULL;
    *event_ms = -1.0;
    if (clEnqueueMarkerWithWaitList(b->queue, 0, NULL, &start) != CL_SUCCESS)
        start = NULL;
    b->status = clattn_sdpa(b->ctx, &b->desc, &b->t, b->path, 0, NULL, &done);
    if (b->status != CLATTN_SUCCESS) {
        snprintf(b->error, sizeof b->error, "%s: %s",
                 clattn_status_string(b->status),
                 clattn_context_last_error(b->ctx));
    } else {
        cl_int err = clWaitForEvents(1, &done);
        cl_int exec = CL_COMPLETE;
        clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec,
                       &exec, NULL);
        if (err != CL_SUCCESS || exec < 0) {
            b->status = CLATTN_ERROR_OPENCL;
            snprintf(b->error, sizeof b->error,
                     "the call's work failed on the device (wait %d, "
                     "status %d)",
                     (int)err, (int)exec);
        } else if (start) {
            *event_ms = bench_event_span_ms(start, done);
        }
        clReleaseEvent(done);
    }
    if (start)
        clReleaseEvent(start);
    return b->status != CLATTN_SUCCESS;
}

int bench_sdpa_read_output(bench_sdpa *b, float *out)
{
    cl_int err =
        clEnqueueReadBuffer(b->queue, b->t.out.buffer, CL_TRUE, 0,
                            b->out_elems * sizeof(float), out, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        snprintf(b->error, sizeof b->error, "clEnqueueReadBuffer failed (%d)",
                 (int)err);
    return err == CL_SUCCESS ? 0 : -1;
}

static void compare_one(double got, double want, double atol, double rtol,
                        bench_compare *r)
{
    double diff = fabs(got - want);
    if (!(diff <= atol + rtol * fabs(want)))
        ++r->bad;
    if (diff > r->max_abs_err || isnan(diff))
        r->max_abs_err = isnan(diff) ? INFINITY : diff;
}

/* want is wf or wd, whichever is not NULL: the oracle's own precision. */
static void compare_all(const float *got, const float *wf, const double *wd,
                        size_t n, double atol, double rtol, bench_compare *r)
{
    r->max_abs_err = 0.0;
    r->bad = 0;
    for (size_t i = 0; i < n; ++i)
        compare_one(got[i], wf ? (double)wf[i] : wd[i], atol, rtol, r);
}

void bench_compare_float(const float *got, const float *want, size_t n,
                         double atol, double rtol, bench_compare *r)
{
    compare_all(got, want, NULL, n, atol, rtol, r);
}

void bench_compare_double(const float *got, const double *want, size_t n,
                          double atol, double rtol, bench_compare *r)
{
    compare_all(got, NULL, want, n, atol, rtol, r);
}
