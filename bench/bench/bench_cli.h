/* clattn-bench's command line. */
#ifndef CLATTN_BENCH_CLI_H
#define CLATTN_BENCH_CLI_H

#include "bench_cases.h"
#include "bench_timing.h"

#include <stdio.h>

#define BENCH_MAX_PATHS 5

typedef struct bench_options {
    const char *suite;  /* "quick", "full", "smoke"; NULL for a single case */
    bench_case one;     /* the single case (--op ...) */
    const char *device; /* "all" or selectors, comma separated */
    clattn_sdpa_path paths[BENCH_MAX_PATHS];
    int npaths;
    bench_method method;
    int peers;      /* OpenBLAS and the reference (off: --no-peers) */
    int peer_torch; /* --peer torch */
    const char *python;
    double ref_max_gflop; /* the reference only for cases up to this */
    const char *json, *csv, *plot;
    int list; /* print the cases and exit */
} bench_options;

/* Fills o from argv. Returns 0 to run, 1 when help was printed (exit 0),
   -1 on a bad argument with the reason in err (print usage, exit 2). */
int bench_parse_args(int argc, char **argv, bench_options *o, char *err,
                     size_t cap);

void bench_usage(FILE *f);

#endif
