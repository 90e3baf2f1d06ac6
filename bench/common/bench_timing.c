#define _POSIX_C_SOURCE 200809L
#include "bench_timing.h"

#include <stdlib.h>
#include <time.h>

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *x, int n)
{
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int bench_measure(const bench_method *m, bench_call_fn fn, void *arg,
                  bench_timing *out)
{
    double ev;
    for (int i = 0; i < m->warmup; ++i) {
        int rc = fn(arg, &ev);
        if (rc)
            return rc;
    }
    int cap = m->max_reps > 0 ? m->max_reps : 1;
    double *wall = malloc((size_t)cap * sizeof *wall);
    double *event = malloc((size_t)cap * sizeof *event);
    if (!wall || !event) {
        free(wall);
        free(event);
        return -1;
    }
    /* Calibration is adaptive: a first call that paid a one-off cost
       (a kernel compiled at first launch) does not shrink the count. */
    int n = 0, all_events = 1;
    double measured = 0.0;
    while (n < cap && (n < m->min_reps || measured < m->target_ms)) {
        double t0 = bench_now_ms();
        int rc = fn(arg, &ev);
        if (rc) {
            free(wall);
            free(event);
            return rc;
        }
        wall[n] = bench_now_ms() - t0;
        event[n] = ev;
        all_events &= ev >= 0.0;
        measured += wall[n++];
    }
    double *use = all_events ? event : wall;
    qsort(use, (size_t)n, sizeof *use, cmp_double);
    out->reps = n;
    out->min_ms = use[0];
    out->median_ms = median_sorted(use, n);
    out->event_timed = all_events;
    free(wall);
    free(event);
    return 0;
}

static int event_time(cl_event e, cl_profiling_info what, cl_ulong *t)
{
    return clGetEventProfilingInfo(e, what, sizeof *t, t, NULL) == CL_SUCCESS;
}

double bench_event_span_ms(cl_event start, cl_event done)
{
    cl_ulong t0 = 0, t1 = 0;
    if (!event_time(done, CL_PROFILING_COMMAND_END, &t1))
        return -1.0;
    /* A call of several kernels is timed from a marker before it: done
       alone would miss all but the last kernel. */
    int ok = start ? event_time(start, CL_PROFILING_COMMAND_END, &t0)
                   : event_time(done, CL_PROFILING_COMMAND_START, &t0);
    return ok && t1 > t0 ? (double)(t1 - t0) * 1e-6 : -1.0;
}
