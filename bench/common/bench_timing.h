/* How every figure is measured: warm-up calls, then repetitions until both
   a minimum count and a target time are reached, reported as min and
   median. Device work is timed with OpenCL profiling events when the
   queue gives them, else with the wall clock around a wait. */
#ifndef CLATTN_BENCH_TIMING_H
#define CLATTN_BENCH_TIMING_H

#include <CL/cl.h>

typedef struct bench_method {
    double target_ms; /* keep repeating until this much time is measured */
    int warmup;       /* untimed calls first (first launch, caches) */
    int min_reps;
    int max_reps;
} bench_method;

typedef struct bench_timing {
    int reps;
    double min_ms, median_ms;
    int event_timed; /* 1: OpenCL profiling events, 0: wall clock */
} bench_timing;

/* One call of the work being measured. It must have finished when the
   call returns. *event_ms receives the device time from OpenCL events, or
   a negative value when there is none. Returns 0, or nonzero on failure
   (the callback keeps its own error detail). */
typedef int (*bench_call_fn)(void *arg, double *event_ms);

/* Runs the warm-up and the timed repetitions. Returns the first nonzero
   value of fn (then *out is not filled), or -1 if out of memory. */
int bench_measure(const bench_method *m, bench_call_fn fn, void *arg,
                  bench_timing *out);

/* Monotonic time in milliseconds. */
double bench_now_ms(void);

/* Milliseconds from the end of start (a marker enqueued before the work)
   to the end of done (the work's last command); with start NULL, the
   duration of done alone (work that is one command). Negative when the
   runtime gives no usable times: the caller then uses the wall clock. */
double bench_event_span_ms(cl_event start, cl_event done);

#endif
