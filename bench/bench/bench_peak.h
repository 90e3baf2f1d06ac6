/* A device's own ceiling, measured as clpeak does: a multiply-add
   microkernel for fp32 GFLOP/s and a copy kernel for global memory GB/s.
   The SDPA figures are quoted as fractions of these. */
#ifndef CLATTN_BENCH_PEAK_H
#define CLATTN_BENCH_PEAK_H

#include "bench_timing.h"

#include <clattn/clattn.h>

typedef struct bench_peak {
    double gflops;   /* the best of the kernel variants */
    double copy_gbs; /* bytes read + bytes written per second */
    char error[256]; /* set when a figure could not be measured */
} bench_peak;

/* Builds and times the kernels on the context's device and queue.
   Returns 0, or -1 with the reason in p->error. */
int bench_peak_measure(clattn_context *ctx, const bench_method *m,
                       bench_peak *p);

#endif
