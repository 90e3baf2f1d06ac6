/* clattn-bench's outputs: the table for people on stdout, JSON and CSV
   for machines, a gnuplot chart. All read the same run and figures. */
#ifndef CLATTN_BENCH_OUTPUT_H
#define CLATTN_BENCH_OUTPUT_H

#include "bench_results.h"

#include <stdio.h>

/* The JSON document's schema name and version (docs/bench.schema.json);
   the version changes whenever a field changes meaning or goes away. */
#define BENCH_SCHEMA_NAME "clattn-bench"
#define BENCH_SCHEMA_VERSION 2

void bench_print_header(FILE *f, const bench_run *run);
void bench_print_table(FILE *f, const bench_run *run);
void bench_print_cases(FILE *f, const bench_run *run); /* --list */

/* Each returns 0, or -1 with the reason in err. */
int bench_write_json(const char *path, const bench_run *run, char *err,
                     size_t cap);
int bench_write_csv(const char *path, const bench_run *run, char *err,
                    size_t cap);
int bench_write_plot(const char *path, const bench_run *run, char *err,
                     size_t cap);

/* Writes path with write(f, run): 0, or -1 with "cannot write PATH: why"
   in err when it cannot be opened or written. */
int bench_write_file(const char *path, const bench_run *run,
                     void (*write)(FILE *f, const bench_run *run), char *err,
                     size_t cap);

/* The method in one sentence, shared by the table and the JSON. */
const char *bench_timing_name(const bench_timing *t, int host);

#endif
