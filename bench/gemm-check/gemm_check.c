/* gemm_check: the projection GEMMs through CLBlast on one OpenCL device,
   untuned and with gemm_tuning_apply(), against OpenBLAS cblas_sgemm in the
   same process (timings on these machines drift between runs: compare
   within one run).

   Shape: row-major y[M,N] = x[M,K] * W[N,K]^T, i.e.
     CLBlastSgemm(RowMajor, NoTrans, Trans, M, N, K, 1, x, K, W, K, 0, y, N).

   CLBlast figures are wall time from the first enqueue to clFinish. The
   indirect GEMM path runs pad/transpose kernels around the main kernel and
   the event CLBlast hands back covers only its last one, so the device time
   ("dev") is taken between two markers enqueued before and after the whole
   GEMM (end of the first to end of the second, on the in-order queue), as
   the layers' stage timer does; GFLOP/s come from the wall time.

   The tuning applied is the embedded data's, keyed on the device's
   identity (src/layers/tuning/clblast_cpu.txt): a device no section matches runs
   CLBlast's defaults in the "tuned" column too (the header says which).

   Built as build/bench/clattn-gemm-check when OpenBLAS is found; or by
   hand:
     cmake -DOUTPUT=/tmp/gc/embedded.c \
       -DSOURCES=src/layers/tuning/clblast_cpu.txt -P cmake/embed_kernels.cmake
     gcc -std=c11 -O2 -Wall -Wextra -DCL_TARGET_OPENCL_VERSION=120 \
       -Iinclude -Isrc/core -I/usr/include/x86_64-linux-gnu/openblas-pthread \
       bench/gemm-check/gemm_check.c src/layers/gemm_tuning.c \
       src/core/device_select.c /tmp/gc/embedded.c -o /tmp/gc/gemm_check \
       -lclblast -lOpenCL -lopenblas -lm
   Run: gemm_check [--reps N] [--untuned-reps N] [--shapes a,b] [--no-untuned]
                   [--try FILE] [--device-type cpu|gpu|all]
   --try FILE: after the tuned data, each line "label: Kernel PREC N=V ...;
   Kernel PREC N=V ..." overrides those kernels and times every shape (a
   sweep of candidates; the tuned data is re-applied between lines). A line
   naming every kernel of a section measures that section's tuning on
   another device, e.g. PoCL's on Intel's CPU runtime (docs/performance.md).
   Exit status: 0 if every CLBlast result matched OpenBLAS. */
#define _POSIX_C_SOURCE 200809L
#include "gemm_tuning.h"

#include <cblas.h>
#include <clblast_c.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

#define MAX_REPS 64
#define TOLERANCE 1e-4 /* max |err| / max |ref|; fp32 sums of K<=768 terms */

typedef struct shape {
    const char *name;
    size_t m, n, k;
} shape;

static const shape shapes[] = {
    {"cait_qkv", 6272, 1152, 384}, {"cait_proj", 6272, 384, 384},
    {"bert_qkv", 4096, 2304, 768}, {"bert_out", 4096, 768, 768},
    {"small_test", 26, 144, 48},
};
#define SHAPE_COUNT (sizeof shapes / sizeof *shapes)

typedef struct stats {
    double min_s, med_s, dev_med_s; /* seconds; dev < 0 when not measured */
} stats;

typedef struct problem {
    const shape *s;
    float *x, *w, *ref, *out;
    cl_mem dx, dw, dy;
    stats blas, untuned, tuned;
    double err_untuned, err_tuned;
} problem;

static cl_context ctx;
static cl_command_queue queue;
static cl_device_id device;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double gflops(const shape *s, double seconds)
{
    return 2.0 * (double)s->m * (double)s->n * (double)s->k / seconds * 1e-9;
}

static void blas_run(problem *p)
{
    const shape *s = p->s;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->m, (int)s->n,
                (int)s->k, 1.0f, p->x, (int)s->k, p->w, (int)s->k, 0.0f, p->ref,
                (int)s->n);
}

static stats time_blas(problem *p, int reps)
{
    double t[MAX_REPS];
    blas_run(p); /* warm-up: thread start, page faults */
    for (int r = 0; r < reps; ++r) {
        double t0 = now_s();
        blas_run(p);
        t[r] = now_s() - t0;
    }
    stats st = {0, 0, -1};
    st.med_s = median(t, reps); /* sorts t: t[0] is then the minimum */
    st.min_s = t[0];
    return st;
}

/* One CLBlast GEMM: wall time to clFinish in *wall, the device time of all
   its kernels (marker to marker) in *dev, -1 if not measured. */
static int clblast_run(problem *p, double *wall, double *dev)
{
    const shape *s = p->s;
    cl_event before = NULL, after = NULL;
    double t0 = now_s();
    if (clEnqueueMarkerWithWaitList(queue, 0, NULL, &before) != CL_SUCCESS)
        before = NULL;
    CLBlastStatusCode code =
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                     CLBlastTransposeYes, s->m, s->n, s->k, 1.0f, p->dx, 0,
                     s->k, p->dw, 0, s->k, 0.0f, p->dy, 0, s->n, &queue, NULL);
    if (code != CLBlastSuccess) {
        fprintf(stderr, "CLBlastSgemm(%s) failed: %d\n", s->name, (int)code);
        if (before)
            clReleaseEvent(before);
        return (int)code;
    }
    if (clEnqueueMarkerWithWaitList(queue, 0, NULL, &after) != CL_SUCCESS)
        after = NULL;
    clFinish(queue);
    *wall = now_s() - t0;
    cl_ulong a = 0, b = 0;
    *dev = -1;
    if (before && after &&
        clGetEventProfilingInfo(before, CL_PROFILING_COMMAND_END, sizeof a, &a,
                                NULL) == CL_SUCCESS &&
        clGetEventProfilingInfo(after, CL_PROFILING_COMMAND_END, sizeof b, &b,
                                NULL) == CL_SUCCESS &&
        b > a)
        *dev = (double)(b - a) * 1e-9;
    if (before)
        clReleaseEvent(before);
    if (after)
        clReleaseEvent(after);
    return 0;
}

/* Warm-up first: CLBlast's first call per parameter set compiles its GEMM
   program (10+ s cold on PoCL). */
static int time_clblast(problem *p, int reps, stats *st)
{
    double t[MAX_REPS], e[MAX_REPS], wall, dev;
    int code = clblast_run(p, &wall, &dev);
    if (code)
        return code;
    for (int r = 0; r < reps; ++r) {
        if ((code = clblast_run(p, &t[r], &e[r])))
            return code;
    }
    int all_dev = 1;
    for (int r = 0; r < reps; ++r)
        all_dev = all_dev && e[r] > 0;
    st->dev_med_s = all_dev ? median(e, reps) : -1;
    st->med_s = median(t, reps); /* sorts t: t[0] is then the minimum */
    st->min_s = t[0];
    return 0;
}

/* max |y - ref| / max |ref|, with y read back from the device. */
static double check(problem *p)
{
    const shape *s = p->s;
    size_t count = s->m * s->n;
    if (clEnqueueReadBuffer(queue, p->dy, CL_TRUE, 0, count * sizeof(float),
                            p->out, 0, NULL, NULL) != CL_SUCCESS)
        return INFINITY;
    double err = 0, mag = 0;
    for (size_t i = 0; i < count; ++i) {
        double d = fabs((double)p->out[i] - (double)p->ref[i]);
        if (!(d <= err)) /* also catches NaN */
            err = d;
        if (fabs((double)p->ref[i]) > mag)
            mag = fabs((double)p->ref[i]);
    }
    return mag > 0 ? err / mag : err;
}

static float *random_floats(size_t count, unsigned *seed)
{
    float *v = malloc(count * sizeof *v);
    for (size_t i = 0; v && i < count; ++i) {
        *seed = *seed * 1664525u + 1013904223u;
        v[i] = (float)((*seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    return v;
}

static int setup(problem *p, const shape *s, unsigned *seed)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->x = random_floats(s->m * s->k, seed);
    p->w = random_floats(s->n * s->k, seed);
    p->ref = calloc(s->m * s->n, sizeof(float));
    p->out = calloc(s->m * s->n, sizeof(float));
    if (!p->x || !p->w || !p->ref || !p->out)
        return -1;
    cl_int err;
    p->dx = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                           s->m * s->k * sizeof(float), p->x, &err);
    if (err == CL_SUCCESS)
        p->dw = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               s->n * s->k * sizeof(float), p->w, &err);
    if (err == CL_SUCCESS)
        p->dy = clCreateBuffer(ctx, CL_MEM_READ_WRITE,
                               s->m * s->n * sizeof(float), NULL, &err);
    return err == CL_SUCCESS ? 0 : -1;
}

static int pick_device(const char *type_name)
{
    cl_device_type want = CL_DEVICE_TYPE_CPU;
    if (strcmp(type_name, "gpu") == 0)
        want = CL_DEVICE_TYPE_GPU;
    else if (strcmp(type_name, "all") == 0)
        want = CL_DEVICE_TYPE_ALL;
    cl_platform_id platforms[16];
    cl_uint np = 0;
    if (clGetPlatformIDs(16, platforms, &np) != CL_SUCCESS)
        return -1;
    for (cl_uint i = 0; i < np; ++i)
        if (clGetDeviceIDs(platforms[i], want, 1, &device, NULL) == CL_SUCCESS)
            return 0;
    return -1;
}

/* Applies one --try line: "label: Kernel PREC N=V ...; Kernel ...". */
static int apply_candidate(char *spec)
{
    char *save_kernel = NULL;
    for (char *part = strtok_r(spec, ";", &save_kernel); part;
         part = strtok_r(NULL, ";", &save_kernel)) {
        char *save = NULL, *kernel = strtok_r(part, " \t", &save);
        char *prec = kernel ? strtok_r(NULL, " \t", &save) : NULL;
        if (!prec)
            continue;
        const char *names[32];
        size_t values[32], n = 0;
        for (char *tok = strtok_r(NULL, " \t", &save); tok && n < 32;
             tok = strtok_r(NULL, " \t", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq)
                continue;
            *eq = '\0';
            names[n] = tok;
            values[n++] = strtoull(eq + 1, NULL, 10);
        }
        CLBlastStatusCode code = CLBlastOverrideParameters(
            device, kernel, (CLBlastPrecision)atoi(prec), n, names, values);
        if (code != CLBlastSuccess) {
            fprintf(stderr, "override %s failed: %d\n", kernel, (int)code);
            return (int)code;
        }
    }
    return 0;
}

static int selected(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t len = strlen(name);
    for (const char *s = strstr(list, name); s; s = strstr(s + 1, name))
        if ((s == list || s[-1] == ',') && (s[len] == ',' || s[len] == '\0'))
            return 1;
    return 0;
}

static void run_candidates(const char *path, problem *probs, size_t np,
                           int reps, int *bad)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        *bad = 1;
        return;
    }
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *colon = strchr(line, ':');
        if (line[0] == '#' || !colon)
            continue;
        *colon = '\0';
        const char *failed = NULL;
        if (gemm_tuning_apply(device, &failed) != 0 ||
            apply_candidate(colon + 1) != 0) {
            printf("%-28s override failed\n", line);
            continue;
        }
        printf("%-28s", line);
        for (size_t i = 0; i < np; ++i) {
            stats st;
            if (time_clblast(&probs[i], reps, &st) != 0) {
                printf(" %s=ERR", probs[i].s->name);
                continue;
            }
            double err = check(&probs[i]);
            printf(" %s=%.1f%s", probs[i].s->name, gflops(probs[i].s, st.med_s),
                   err <= TOLERANCE ? "" : "(WRONG)");
            if (!(err <= TOLERANCE))
                *bad = 1;
            fflush(stdout);
        }
        printf("\n");
    }
    fclose(f);
}

static int count_sink(void *user, const char *kernel, size_t precision,
                      size_t count, const char *const *names,
                      const size_t *values)
{
    (void)kernel, (void)precision, (void)count, (void)names, (void)values;
    ++*(size_t *)user;
    return 0;
}

/* Which sections of the embedded tuning data this device gets. */
static void report_tuning(void)
{
    gemm_tuning_identity id;
    char storage[4][256];
    gemm_tuning_identity_of(device, &id, storage);
    size_t lines = 0, matched = 0;
    const char *data = gemm_tuning_data();
    if (data)
        gemm_tuning_parse(data, &id, count_sink, &lines, NULL, &matched);
    printf("platform: %s (%s), driver %s\n", id.platform_name,
           id.platform_vendor, id.driver_version);
    if (matched)
        printf("tuning: %zu section(s) of clblast_cpu.txt, %zu kernel "
               "line(s)\n",
               matched, lines);
    else
        printf("tuning: no section of clblast_cpu.txt matches: 'tuned' is "
               "CLBlast's defaults\n");
}

int main(int argc, char **argv)
{
    int reps = 7, untuned_reps = 3, do_untuned = 1;
    const char *only = NULL, *try_file = NULL, *type = "cpu";
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--untuned-reps") && i + 1 < argc)
            untuned_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--try") && i + 1 < argc)
            try_file = argv[++i];
        else if (!strcmp(argv[i], "--device-type") && i + 1 < argc)
            type = argv[++i];
        else if (!strcmp(argv[i], "--no-untuned"))
            do_untuned = 0;
        else {
            fprintf(stderr,
                    "usage: %s [--reps N] [--untuned-reps N] "
                    "[--shapes a,b] [--no-untuned] [--try FILE] "
                    "[--device-type cpu|gpu|all]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || untuned_reps < 1 ||
        untuned_reps > MAX_REPS) {
        fprintf(stderr, "reps must be 1..%d\n", MAX_REPS);
        return 2;
    }
    openblas_set_num_threads(2);
    if (pick_device(type) != 0) {
        fprintf(stderr, "no OpenCL %s device\n", type);
        return 2;
    }
    char name[256] = "";
    clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof name, name, NULL);
    cl_int err;
    ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    if (err == CL_SUCCESS)
        queue =
            clCreateCommandQueue(ctx, device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "OpenCL context/queue: %d\n", err);
        return 2;
    }
    printf("device: %s\n", name);

    problem probs[SHAPE_COUNT];
    size_t np = 0;
    unsigned seed = 12345;
    for (size_t i = 0; i < SHAPE_COUNT; ++i) {
        if (!selected(only, shapes[i].name))
            continue;
        if (setup(&probs[np], &shapes[i], &seed) != 0) {
            fprintf(stderr, "allocation failed for %s\n", shapes[i].name);
            return 2;
        }
        blas_run(&probs[np]); /* the reference for every check */
        ++np;
    }

    int bad = 0;
    /* Untuned first: overrides are process-wide and cannot be undone. */
    for (size_t i = 0; do_untuned && i < np; ++i) {
        problem *p = &probs[i];
        if (time_clblast(p, untuned_reps, &p->untuned) != 0)
            return 1;
        p->err_untuned = check(p);
        fprintf(stderr, "untuned %s: %.1f GFLOP/s\n", p->s->name,
                gflops(p->s, p->untuned.med_s));
    }
    const char *failed = NULL;
    int code = gemm_tuning_apply(device, &failed);
    if (code != 0) {
        fprintf(stderr, "gemm_tuning_apply failed: %d (%s)\n", code,
                failed ? failed : "?");
        return 1;
    }
    report_tuning();
    if (try_file) {
        run_candidates(try_file, probs, np, reps, &bad);
        return bad;
    }
    for (size_t i = 0; i < np; ++i) {
        problem *p = &probs[i];
        p->blas = time_blas(p, reps); /* next to the tuned run, same load */
        if (time_clblast(p, reps, &p->tuned) != 0)
            return 1;
        p->err_tuned = check(p);
    }

    printf("GFLOP/s from median (min) wall time; CLBlast 'dev' = device time "
           "of the whole GEMM, marker to marker (median); reps %d "
           "(untuned %d)\n",
           reps, untuned_reps);
    printf("%-10s %5s %5s %4s | %12s | %12s %6s | %12s | %5s | %s\n", "shape",
           "M", "N", "K", "untuned", "tuned", "dev", "OpenBLAS", "ratio",
           "max rel err (untuned/tuned)");
    for (size_t i = 0; i < np; ++i) {
        problem *p = &probs[i];
        const shape *s = p->s;
        char un[32] = "-";
        if (do_untuned)
            snprintf(un, sizeof un, "%5.1f (%5.1f)",
                     gflops(s, p->untuned.med_s), gflops(s, p->untuned.min_s));
        double ratio = p->tuned.med_s > 0 ? p->blas.med_s / p->tuned.med_s : 0;
        char dev[16] = "-";
        if (p->tuned.dev_med_s > 0)
            snprintf(dev, sizeof dev, "%.1f", gflops(s, p->tuned.dev_med_s));
        printf("%-10s %5zu %5zu %4zu | %12s | %5.1f (%5.1f) %6s | "
               "%5.1f (%5.1f) | %5.2f | %.1e / %.1e\n",
               s->name, s->m, s->n, s->k, un, gflops(s, p->tuned.med_s),
               gflops(s, p->tuned.min_s), dev, gflops(s, p->blas.med_s),
               gflops(s, p->blas.min_s), ratio,
               do_untuned ? p->err_untuned : 0.0, p->err_tuned);
        if (!(p->err_tuned <= TOLERANCE) ||
            (do_untuned && !(p->err_untuned <= TOLERANCE)))
            bad = 1;
    }
    printf("%s\n", bad ? "RESULT MISMATCH" : "all results match OpenBLAS");
    return bad;
}
