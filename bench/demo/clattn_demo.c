/* clattn-demo: the README's first run. Opens the auto-selected device (or
   $CLATTN_DEVICE), says which one and why, runs scaled dot-product
   attention on it, checks the result against the double-precision
   reference, and times it with OpenCL events.
   Until clattn-bench lands, this is the main job. Exit status 0 = the
   result matched the reference. */
#include <clattn/clattn.h>

#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 1, H = 8, S = 512, D = 64, REPS = 5 };

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) * (1.0 / 16777216.0) * 4.0 - 2.0);
    }
}

static int fail(clattn_context *ctx, const char *what, clattn_status s)
{
    fprintf(stderr, "clattn-demo: %s: %s\n%s\n", what, clattn_status_string(s),
            clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);
    return 1;
}

static double event_ms(cl_event e)
{
    cl_ulong t0 = 0, t1 = 0;
    clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof t0, &t0,
                            NULL);
    clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    return (double)(t1 - t0) * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(NULL, &ctx);
    if (s != CLATTN_SUCCESS)
        return fail(ctx, "no context", s);
    clattn_info info;
    clattn_context_info(ctx, &info);
    printf("clattn %u.%u.%u\n", CLATTN_VERSION_MAJOR, CLATTN_VERSION_MINOR,
           CLATTN_VERSION_PATCH);
    printf("device    %s / %s (%s)\n", info.platform_name, info.device_name,
           info.device_version);
    printf("          %u compute units at %u MHz, %.1f GiB global memory\n",
           info.compute_units, info.clock_mhz,
           (double)info.global_mem_bytes / (1 << 30));
    printf("selector  '%s'\n%s", info.selector, info.selection_log);

    const size_t n = (size_t)B * H * S * D;
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4),
          *out = malloc(n * 4);
    double *ref = malloc(n * sizeof *ref);
    fill(q, n, 1), fill(k, n, 2), fill(v, n, 3);
    clattn_sdpa_desc desc;
    clattn_sdpa_desc_init(&desc);
    desc.batch = B, desc.heads_q = H, desc.seq_q = S, desc.seq_kv = S;
    desc.head_dim = D, desc.causal = CLATTN_CAUSAL_TOP_LEFT;
    printf("sdpa      B=%d H=%d S=%d D=%d causal, unfused path\n", B, H, S, D);

    /* Device buffers and the device entry point, so events time the work
       itself and not the host copies. */
    size_t dims[4] = {B, H, S, D};
    cl_int err;
    cl_mem bq =
        clCreateBuffer(info.cl_ctx, CL_MEM_COPY_HOST_PTR, n * 4, q, &err);
    cl_mem bk =
        clCreateBuffer(info.cl_ctx, CL_MEM_COPY_HOST_PTR, n * 4, k, &err);
    cl_mem bv =
        clCreateBuffer(info.cl_ctx, CL_MEM_COPY_HOST_PTR, n * 4, v, &err);
    cl_mem bo =
        clCreateBuffer(info.cl_ctx, CL_MEM_READ_WRITE, n * 4, NULL, &err);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, bq, 0, dims);
    clattn_tensor_contiguous(&t.k, bk, 0, dims);
    clattn_tensor_contiguous(&t.v, bv, 0, dims);
    clattn_tensor_contiguous(&t.out, bo, 0, dims);

    /* The returned event covers only the last kernel of the call, so a run
       is timed from a marker enqueued before it to that event's end. The
       first run pays the device's first-launch cost and is not counted. */
    double ms[REPS];
    for (int r = -1; r < REPS; ++r) {
        cl_event start, done;
        clEnqueueMarkerWithWaitList(info.queue, 0, NULL, &start);
        s = clattn_sdpa(ctx, &desc, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
        if (s != CLATTN_SUCCESS)
            return fail(ctx, "sdpa", s);
        clWaitForEvents(1, &done);
        cl_ulong t0 = 0, t1 = 0;
        clGetEventProfilingInfo(start, CL_PROFILING_COMMAND_END, sizeof t0, &t0,
                                NULL);
        clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_END, sizeof t1, &t1,
                                NULL);
        if (r >= 0)
            ms[r] = t1 > t0 ? (double)(t1 - t0) * 1e-6 : event_ms(done);
        clReleaseEvent(start);
        clReleaseEvent(done);
    }
    clEnqueueReadBuffer(info.queue, bo, CL_TRUE, 0, n * 4, out, 0, NULL, NULL);
    qsort(ms, REPS, sizeof *ms, cmp_double);
    /* Causal: about half the 4*B*H*S*S*D flops of full attention are needed;
       the unfused path computes them all, so report the full count. */
    double gflop = 4.0 * B * H * S * S * D * 1e-9;
    printf("time      min %.2f ms, median %.2f ms over %d runs "
           "(%.1f GFLOP/s, full-matrix flops)\n",
           ms[0], ms[REPS / 2], REPS, gflop / (ms[0] * 1e-3));

    ref_sdpa(&desc, q, k, v, NULL, ref, NULL, NULL);
    double worst = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
        double diff = fabs(out[i] - ref[i]);
        if (diff > worst)
            worst = diff;
        bad += !(diff <= 1e-5 + 1e-4 * fabs(ref[i]));
    }
    printf("check     max |out - reference| = %.3g; %zu of %zu outside "
           "1e-5 + 1e-4*|ref|: %s\n",
           worst, bad, n, bad ? "FAIL" : "PASS");

    clReleaseMemObject(bq), clReleaseMemObject(bk), clReleaseMemObject(bv);
    clReleaseMemObject(bo);
    free(q), free(k), free(v), free(out), free(ref);
    clattn_context_destroy(ctx);
    return bad ? 1 : 0;
}
