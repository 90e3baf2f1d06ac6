/* What one clattn-bench run measured: the devices, the host peers and one
   record per device x case x path. The outputs (table, JSON, CSV, plot)
   all read this, and derive their figures through bench_figures.h. */
#ifndef CLATTN_BENCH_RESULTS_H
#define CLATTN_BENCH_RESULTS_H

#include "bench_cases.h"
#include "bench_cli.h"
#include "bench_devices.h"
#include "bench_timing.h"

#include <clattn/clattn.h>

typedef enum bench_status {
    BENCH_OK,          /* measured (and checked, where an oracle exists) */
    BENCH_UNSUPPORTED, /* not on this device or build, or not run: see why */
    BENCH_FAILED       /* an error, or a wrong answer */
} bench_status;

const char *bench_status_name(bench_status s); /* "ok", "unsupported", ... */

/* A device measured: its listing, its context and its own peak. */
typedef struct bench_device {
    bench_cl_device cl; /* zeroed except id when it could not be listed */
    clattn_context *ctx;
    bench_status status;
    char error[512];
    int auto_choice;          /* the device "auto" picks */
    clattn_sdpa_path fused;   /* the variant FUSED and AUTO run here */
    bench_status peak_status; /* of the peak kernels */
    char peak_error[256];
    double peak_gflops; /* fp32 multiply-add microkernel */
    double copy_gbs;    /* global memory copy, read + write bytes */
} bench_device;

/* The CPU peers, measured once per run. */
typedef struct bench_host {
    bench_status blas_status; /* OpenBLAS sgemm */
    char blas_note[256];      /* why not, or its configuration */
    int blas_threads;
    int sgemm_n;
    bench_timing sgemm;
    double sgemm_gflops;
    bench_status torch_status;
    char torch_note[256];
    char torch_version[64];
    int torch_threads;
    int torch_requested;
} bench_host;

#define BENCH_HOST_DEVICE (-1)

typedef struct bench_check {
    const char *against; /* "reference", "openblas-attention", NULL = none */
    double max_abs_err;
    size_t bad;
} bench_check;

typedef struct bench_record {
    int device; /* index into run->devices, or BENCH_HOST_DEVICE for peers */
    size_t case_index;
    char path[24];       /* "unfused", "fused-cpu", ...; peers: "openblas-
                            attention", "openblas-projections" (layer
                            cases), "reference", "torch" */
    int default_variant; /* this path is what "fused" runs on the device */
    bench_status status;
    char error[512];
    bench_timing t;
    size_t mem_peak_bytes; /* caller's buffers + library high-water; 0 n/a */
    size_t library_peak_bytes;
    bench_check check;
    /* Layer cases: where the fastest call's time went (event-timed). */
    int has_split;
    clattn_layer_timing split;
} bench_record;

typedef struct bench_run {
    const bench_options *opt;
    const bench_case *cases;
    size_t ncases;
    bench_device *devices;
    size_t ndevices;
    bench_host host;
    bench_record *records;
    size_t nrecords, cap;
    char started[32]; /* UTC, ISO 8601 */
    double seconds;   /* the whole run */
} bench_run;

/* Appends a zeroed record; NULL when out of memory. */
bench_record *bench_run_add(bench_run *run, int device, size_t case_index,
                            const char *path);

/* The ok record of a path on a device for a case, or NULL. */
const bench_record *bench_run_find(const bench_run *run, int device,
                                   size_t case_index, const char *path);

#endif
