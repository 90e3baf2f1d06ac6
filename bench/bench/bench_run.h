/* The measurement itself, in the order clattn-bench runs it: open the
   devices (each on its own, a failure recorded and skipped) and measure
   their peaks; the host's peers that do not depend on a case; then every
   case on every device and path, next to its CPU peers. */
#ifndef CLATTN_BENCH_RUN_H
#define CLATTN_BENCH_RUN_H

#include "bench_results.h"

/* Each returns 0, or -1 when out of memory (nothing else stops a run). */
int bench_run_devices(bench_run *run);
int bench_run_host(bench_run *run);
int bench_run_cases(bench_run *run);

/* Releases contexts and records. */
void bench_run_free(bench_run *run);

/* Nonzero when a device or a device record failed (peers do not count:
   a missing PyTorch is no failure of clattn's). */
int bench_run_failed(const bench_run *run);

#endif
