/* clattn-call-overhead: the host cost of one small SDPA call, the shape of
   a decode step (B=1 H=8 Sq=1 Skv=128 D=64, no probs), on the auto device.
   Three numbers per call, each as median and p10/p90 over N calls:
   - call: wall clock of clattn_sdpa() alone. It returns before the work is
     done; the queue is drained every DRAIN calls, outside the timing, so
     it never grows without bound.
   - wall: call + clFinish, the cost of one step of a decode loop;
   - host: wall clock of call + clFinish, minus the run time (profiled
     start to end) of every kernel the call enqueued. What remains is what
     the host and the driver spend around the kernels: validation,
     planning, buffers, kernel objects, argument setting, enqueue, the
     driver's scheduling and the wake-up at the finish. Its medians are
     split into phases: clattn before its first launch, the driver's
     enqueue calls, clattn after its last launch, and clFinish beyond the
     kernels' run time.
   The kernels are seen by interposition: this program defines
   clEnqueueNDRangeKernel (exported, so the library's calls resolve here)
   and forwards to the driver's, keeping each launch's event while
   recording is on. The library asks for an event at every launch, so
   recording adds only a retain per kernel.
   Exit status: 0, or 1 when the context or a call fails. */
#define _GNU_SOURCE /* RTLD_NEXT, clock_gettime */
#include "clattn/clattn.h"

#include <dlfcn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DRAIN 64

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

typedef cl_int (*enqueue_fn)(cl_command_queue, cl_kernel, cl_uint,
                             const size_t *, const size_t *, const size_t *,
                             cl_uint, const cl_event *, cl_event *);

#define RECORD_MAX 16
static int recording;
static cl_event recorded[RECORD_MAX];
static size_t recorded_count, recorded_lost;
/* Wall clock of the recorded launches: the first one's entry, the last
   one's exit, and the time spent inside the driver's enqueue. */
static double first_enter, last_exit, in_enqueue;

cl_int clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dims,
                              const size_t *offset, const size_t *global,
                              const size_t *local, cl_uint num_wait,
                              const cl_event *wait, cl_event *event)
{
    static enqueue_fn real;
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    if (!real)
        return CL_INVALID_OPERATION;
    if (!recording)
        return real(q, k, dims, offset, global, local, num_wait, wait, event);
    cl_event mine = NULL;
    const double enter = now_us();
    if (recorded_count == 0)
        first_enter = enter;
    cl_int err = real(q, k, dims, offset, global, local, num_wait, wait,
                      event ? event : &mine);
    last_exit = now_us();
    in_enqueue += last_exit - enter;
    cl_event e = event ? *event : mine;
    if (err == CL_SUCCESS && e) {
        if (recorded_count < RECORD_MAX) {
            if (event)
                clRetainEvent(e);
            recorded[recorded_count++] = e;
            return err;
        }
        recorded_lost++;
    }
    if (mine)
        clReleaseEvent(mine);
    return err;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v and prints its median and p10/p90. */
static void report(const char *path, const char *what, double *v, size_t n,
                   size_t kernels)
{
    qsort(v, n, sizeof *v, cmp_double);
    printf("%-8s %-5s median %8.1f us  p10 %8.1f  p90 %8.1f", path, what,
           v[n / 2], v[n / 10], v[n * 9 / 10]);
    if (kernels)
        printf("  (%zu kernels a call)", kernels);
    printf("\n");
}

typedef struct problem {
    clattn_sdpa_desc desc;
    clattn_sdpa_tensors t;
    cl_mem buf[4];
} problem;

static cl_mem make_buffer(cl_context cl, cl_command_queue q, size_t floats)
{
    cl_int err;
    cl_mem m = clCreateBuffer(cl, CL_MEM_READ_WRITE, floats * sizeof(float),
                              NULL, &err);
    if (err != CL_SUCCESS)
        return NULL;
    float *host = malloc(floats * sizeof(float));
    if (!host) {
        clReleaseMemObject(m);
        return NULL;
    }
    for (size_t i = 0; i < floats; ++i)
        host[i] = (float)((i * 7919u) % 1000u) / 1000.0f - 0.5f;
    err = clEnqueueWriteBuffer(q, m, CL_TRUE, 0, floats * sizeof(float), host,
                               0, NULL, NULL);
    free(host);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(m);
        return NULL;
    }
    return m;
}

static int problem_make(const clattn_info *info, problem *p)
{
    memset(p, 0, sizeof *p);
    clattn_sdpa_desc_init(&p->desc);
    clattn_sdpa_desc *d = &p->desc;
    d->batch = 1;
    d->heads_q = 8;
    d->seq_q = 1;
    d->seq_kv = 128;
    d->head_dim = 64;
    const size_t qd[4] = {1, 8, 1, 64}, kd[4] = {1, 8, 128, 64};
    const size_t *dims[4] = {qd, kd, kd, qd};
    clattn_tensor *views[4] = {&p->t.q, &p->t.k, &p->t.v, &p->t.out};
    for (int i = 0; i < 4; ++i) {
        p->buf[i] =
            make_buffer(info->cl_ctx, info->queue,
                        dims[i][0] * dims[i][1] * dims[i][2] * dims[i][3]);
        if (!p->buf[i])
            return -1;
        clattn_tensor_contiguous(views[i], p->buf[i], 0, dims[i]);
    }
    return 0;
}

static void problem_free(problem *p)
{
    for (int i = 0; i < 4; ++i)
        if (p->buf[i])
            clReleaseMemObject(p->buf[i]);
}

static cl_ulong profile(cl_event e, cl_profiling_info what)
{
    cl_ulong t = 0;
    clGetEventProfilingInfo(e, what, sizeof t, &t, NULL);
    return t;
}

/* (a): the call alone, the queue drained every DRAIN calls untimed. */
static int time_calls(clattn_context *ctx, cl_command_queue q, const problem *p,
                      clattn_sdpa_path path, double *out, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        double t0 = now_us();
        clattn_status s =
            clattn_sdpa(ctx, &p->desc, &p->t, path, 0, NULL, NULL);
        out[i] = now_us() - t0;
        if (s != CLATTN_SUCCESS)
            return -1;
        if ((i + 1) % DRAIN == 0)
            clFinish(q);
    }
    clFinish(q);
    return 0;
}

/* Where the wall clock of call + clFinish goes, per call. */
enum {
    PHASE_BEFORE,  /* clattn: checks, plan, buffers, kernels, arguments */
    PHASE_ENQUEUE, /* the driver's clEnqueueNDRangeKernel calls */
    PHASE_AFTER,   /* clattn after its last launch: releases */
    PHASE_FINISH,  /* clFinish beyond the kernels' run time */
    PHASE_COUNT
};
static const char *phase_names[PHASE_COUNT] = {
    "clattn before the first launch", "driver enqueue calls",
    "clattn after the last launch", "clFinish beyond the kernels"};

/* (b): call + clFinish, minus the recorded kernels' run times. *kernels
   is how many kernels one call enqueues; phases[k * n + i] is phase k of
   call i. */
static int time_host(clattn_context *ctx, cl_command_queue q, const problem *p,
                     clattn_sdpa_path path, double *out, double *wall_out,
                     double *phases, size_t n, size_t *kernels)
{
    for (size_t i = 0; i < n; ++i) {
        clFinish(q);
        recorded_count = 0;
        in_enqueue = 0;
        recording = 1;
        double t0 = now_us();
        clattn_status s =
            clattn_sdpa(ctx, &p->desc, &p->t, path, 0, NULL, NULL);
        double returned = now_us();
        clFinish(q);
        double wall = now_us() - t0;
        recording = 0;
        double device = 0;
        for (size_t e = 0; e < recorded_count; ++e) {
            device +=
                (double)(profile(recorded[e], CL_PROFILING_COMMAND_END) -
                         profile(recorded[e], CL_PROFILING_COMMAND_START)) /
                1e3;
            clReleaseEvent(recorded[e]);
        }
        *kernels = recorded_count;
        if (s != CLATTN_SUCCESS || recorded_lost)
            return -1;
        out[i] = wall - device;
        wall_out[i] = wall;
        phases[PHASE_BEFORE * n + i] = first_enter - t0;
        phases[PHASE_ENQUEUE * n + i] = in_enqueue;
        phases[PHASE_AFTER * n + i] = returned - last_exit;
        phases[PHASE_FINISH * n + i] = t0 + wall - returned - device;
    }
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 2000;
    if (argc > 1 &&
        (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: clattn-call-overhead [calls]   (default 2000; device "
               "from $CLATTN_DEVICE, else auto)\n");
        return 0;
    }
    if (argc > 1)
        n = strtoul(argv[1], NULL, 10);
    if (n < 10)
        n = 10;

    clattn_context *ctx = NULL;
    if (clattn_context_create(NULL, &ctx) != CLATTN_SUCCESS) {
        fprintf(stderr, "context: %s\n", clattn_context_last_error(ctx));
        clattn_context_destroy(ctx);
        return 1;
    }
    clattn_info info;
    clattn_context_info(ctx, &info);
    printf("device: %s (%s); B=1 H=8 Sq=1 Skv=128 D=64, %zu calls\n",
           info.device_name, info.platform_name, n);

    problem p;
    memset(&p, 0, sizeof p);
    double *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
    double *phases = malloc(PHASE_COUNT * n * sizeof *phases);
    int rc = 0;
    if (!v || !w || !phases || problem_make(&info, &p) != 0) {
        fprintf(stderr, "out of memory\n");
        rc = 1;
    }
    const clattn_sdpa_path paths[2] = {CLATTN_SDPA_PATH_AUTO,
                                       CLATTN_SDPA_PATH_UNFUSED};
    const char *names[2] = {"fused", "unfused"};
    for (int k = 0; rc == 0 && k < 2; ++k) {
        /* Warm-up: programs, kernels, the driver's own caches. */
        if (time_calls(ctx, info.queue, &p, paths[k], v, 200) != 0 ||
            time_calls(ctx, info.queue, &p, paths[k], v, n) != 0) {
            rc = 1;
            break;
        }
        report(names[k], "call", v, n, 0);
        size_t kernels = 0;
        if (time_host(ctx, info.queue, &p, paths[k], v, w, phases, n,
                      &kernels) != 0) {
            rc = 1;
            break;
        }
        report(names[k], "wall", w, n, 0);
        report(names[k], "host", v, n, kernels);
        for (int ph = 0; ph < PHASE_COUNT; ++ph) {
            double *x = phases + (size_t)ph * n;
            qsort(x, n, sizeof *x, cmp_double);
            printf("           %-31s median %6.1f us\n", phase_names[ph],
                   x[n / 2]);
        }
    }
    if (rc)
        fprintf(stderr, "sdpa: %s\n", clattn_context_last_error(ctx));
    problem_free(&p);
    free(v);
    free(w);
    free(phases);
    clattn_context_destroy(ctx);
    return rc;
}
