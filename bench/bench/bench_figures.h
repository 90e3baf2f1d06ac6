/* The figures every output prints, derived from one record and the peers
   measured in the same run, so the table, JSON and CSV always agree.
   NaN = not applicable or not measured. */
#ifndef CLATTN_BENCH_FIGURES_H
#define CLATTN_BENCH_FIGURES_H

#include "bench_results.h"

typedef struct bench_figures {
    double flops, flops_effective, bytes; /* the case's work */
    double gflops;                        /* flops / min time */
    double gflops_effective;              /* allowed (unmasked) pairs only */
    double gbs;                           /* compulsory bytes / min time */
    /* Fractions of a ceiling: the device's measured fp32 peak, its
       measured copy bandwidth, OpenBLAS sgemm's GFLOP/s on the host. */
    double of_peak, of_copy, of_sgemm;
    /* Speed-ups: the peer's min time / this min time (> 1 = faster). */
    double vs_blas_attention, vs_reference, vs_torch, vs_unfused;
    /* Layer cases: OpenBLAS's time for the same projection GEMMs / this
       record's projection time (0.5 = half OpenBLAS's speed). */
    double projection_vs_openblas;
} bench_figures;

void bench_figures_compute(const bench_run *run, const bench_record *r,
                           bench_figures *f);

/* "host" or the device's "P:D". */
const char *bench_record_device_id(const bench_run *run, const bench_record *r);

#endif
