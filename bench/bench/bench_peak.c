#include "bench_peak.h"

#include <stdio.h>
#include <string.h>

/* Two shapes of the same multiply-add chain, because no one shape is
   fast everywhere: PoCL runs a work-group's items one after another on a
   CPU core and needs wide vectors with many independent accumulators to
   fill the FMA pipes; a GPU wants scalar work-items, many of them. The
   chains are independent so latency never bounds them; mad() with
   runtime operands cannot be folded, and the store keeps them alive. */
static const char source[] =
    "#define CHAINS(T, a, b) \\\n"
    "    for (int i = 0; i < iters; ++i) { \\\n"
    "        x0 = mad(x0, a, b); x1 = mad(x1, a, b); x2 = mad(x2, a, b); \\\n"
    "        x3 = mad(x3, a, b); x4 = mad(x4, a, b); x5 = mad(x5, a, b); \\\n"
    "        x6 = mad(x6, a, b); x7 = mad(x7, a, b); x8 = mad(x8, a, b); \\\n"
    "        x9 = mad(x9, a, b); xa = mad(xa, a, b); xb = mad(xb, a, b); \\\n"
    "    }\n"
    "#define INIT(T) T x0 = (T)(get_global_id(0) & 7), x1 = x0 + 1.0f, \\\n"
    "    x2 = x0 + 2.0f, x3 = x0 + 3.0f, x4 = x0 + 4.0f, x5 = x0 + 5.0f, \\\n"
    "    x6 = x0 + 6.0f, x7 = x0 + 7.0f, x8 = x0 + 8.0f, x9 = x0 + 9.0f, \\\n"
    "    xa = x0 + 10.0f, xb = x0 + 11.0f\n"
    "#define SUM (x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + xa + xb)\n"
    "__kernel void mad_v16(__global float *out, float a, float b, int iters)\n"
    "{\n"
    "    INIT(float16);\n"
    "    float16 va = (float16)(a), vb = (float16)(b);\n"
    "    CHAINS(float16, va, vb)\n"
    "    float16 s = SUM;\n"
    "    float8 h8 = s.lo + s.hi;\n"
    "    float4 h4 = h8.lo + h8.hi;\n"
    "    out[get_global_id(0)] = h4.x + h4.y + h4.z + h4.w;\n"
    "}\n"
    "__kernel void mad_v1(__global float *out, float a, float b, int iters)\n"
    "{\n"
    "    INIT(float);\n"
    "    CHAINS(float, a, b)\n"
    "    out[get_global_id(0)] = SUM;\n"
    "}\n"
    "__kernel void copy_v4(__global const float4 *src, __global float4 *dst)\n"
    "{\n"
    "    dst[get_global_id(0)] = src[get_global_id(0)];\n"
    "}\n";

enum { CHAINS = 12, ITERS = 256 };

typedef struct launch {
    cl_command_queue queue;
    cl_kernel kernel;
    size_t global;
    cl_int err;
} launch;

/* One kernel launch, waited for; its own event times it. */
static int launch_once(void *arg, double *event_ms)
{
    launch *l = arg;
    cl_event e = NULL;
    l->err = clEnqueueNDRangeKernel(l->queue, l->kernel, 1, NULL, &l->global,
                                    NULL, 0, NULL, &e);
    if (l->err == CL_SUCCESS)
        l->err = clWaitForEvents(1, &e);
    *event_ms = l->err == CL_SUCCESS ? bench_event_span_ms(NULL, e) : -1.0;
    if (e)
        clReleaseEvent(e);
    return l->err != CL_SUCCESS;
}

static double time_kernel(launch *l, const bench_method *m)
{
    bench_timing t;
    if (bench_measure(m, launch_once, l, &t) || t.min_ms <= 0.0)
        return -1.0;
    return t.min_ms;
}

/* The best GFLOP/s of the two multiply-add shapes. */
static double measure_flops(cl_context cl, cl_program prog,
                            const clattn_info *info, const bench_method *m,
                            cl_int *err)
{
    const char *names[] = {"mad_v16", "mad_v1"};
    const int lanes[] = {16, 1};
    /* Enough work-items to fill every compute unit many times over. */
    size_t global =
        (size_t)(info->compute_units ? info->compute_units : 1) * 2048;
    cl_mem out = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, global * sizeof(float),
                                NULL, err);
    if (*err != CL_SUCCESS)
        return -1.0;
    double best = -1.0;
    /* a < 1 and b small: every chain converges to b/(1-a), no overflow
       and no denormals to slow any device down. */
    float a = 0.999f, b = 0.001f;
    cl_int iters = ITERS;
    for (int v = 0; v < 2; ++v) {
        launch l = {info->queue, clCreateKernel(prog, names[v], err), global,
                    CL_SUCCESS};
        if (*err != CL_SUCCESS)
            break;
        clSetKernelArg(l.kernel, 0, sizeof out, &out);
        clSetKernelArg(l.kernel, 1, sizeof a, &a);
        clSetKernelArg(l.kernel, 2, sizeof b, &b);
        clSetKernelArg(l.kernel, 3, sizeof iters, &iters);
        double ms = time_kernel(&l, m);
        *err = l.err;
        clReleaseKernel(l.kernel);
        double flops = 2.0 * CHAINS * ITERS * lanes[v] * (double)global;
        if (ms > 0.0 && flops / (ms * 1e6) > best)
            best = flops / (ms * 1e6);
    }
    clReleaseMemObject(out);
    return best;
}

static double measure_copy(cl_context cl, cl_program prog,
                           const clattn_info *info, const bench_method *m,
                           cl_int *err)
{
    /* Large enough to leave every cache behind, small enough to fit. */
    size_t bytes = (size_t)64 << 20;
    if (bytes > info->max_alloc_bytes)
        bytes = (size_t)info->max_alloc_bytes;
    if (bytes > info->global_mem_bytes / 4)
        bytes = (size_t)(info->global_mem_bytes / 4);
    bytes &= ~(size_t)15;
    cl_mem src = clCreateBuffer(cl, CL_MEM_READ_ONLY, bytes, NULL, err);
    cl_mem dst = *err == CL_SUCCESS
                     ? clCreateBuffer(cl, CL_MEM_WRITE_ONLY, bytes, NULL, err)
                     : NULL;
    double gbs = -1.0;
    launch l = {info->queue, NULL, bytes / 16, CL_SUCCESS};
    float zero = 0.0f;
    if (dst)
        *err = clEnqueueFillBuffer(info->queue, src, &zero, sizeof zero, 0,
                                   bytes, 0, NULL, NULL);
    if (dst && *err == CL_SUCCESS)
        l.kernel = clCreateKernel(prog, "copy_v4", err);
    if (l.kernel) {
        clSetKernelArg(l.kernel, 0, sizeof src, &src);
        clSetKernelArg(l.kernel, 1, sizeof dst, &dst);
        double ms = time_kernel(&l, m);
        *err = l.err;
        if (ms > 0.0)
            gbs = 2.0 * (double)bytes / (ms * 1e6);
        clReleaseKernel(l.kernel);
    }
    if (src)
        clReleaseMemObject(src);
    if (dst)
        clReleaseMemObject(dst);
    return gbs;
}

int bench_peak_measure(clattn_context *ctx, const bench_method *m,
                       bench_peak *p)
{
    memset(p, 0, sizeof *p);
    p->gflops = p->copy_gbs = -1.0;
    clattn_info info;
    if (clattn_context_info(ctx, &info) != CLATTN_SUCCESS) {
        snprintf(p->error, sizeof p->error, "no context info");
        return -1;
    }
    const char *src = source;
    cl_int err;
    cl_program prog =
        clCreateProgramWithSource(info.cl_ctx, 1, &src, NULL, &err);
    if (err == CL_SUCCESS)
        err = clBuildProgram(prog, 1, &info.device, "", NULL, NULL);
    if (err == CL_SUCCESS) {
        p->gflops = measure_flops(info.cl_ctx, prog, &info, m, &err);
        cl_int copy_err = CL_SUCCESS;
        p->copy_gbs = measure_copy(info.cl_ctx, prog, &info, m, &copy_err);
        if (err == CL_SUCCESS)
            err = copy_err;
    }
    if (prog)
        clReleaseProgram(prog);
    if (err != CL_SUCCESS || p->gflops <= 0.0 || p->copy_gbs <= 0.0)
        snprintf(p->error, sizeof p->error,
                 "peak kernels failed (OpenCL error %d)", (int)err);
    return p->error[0] ? -1 : 0;
}
