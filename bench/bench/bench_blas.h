/* The CPU peers built on OpenBLAS: cblas_sgemm at a square size (what the
   CPU's BLAS reaches), and attention as a C programmer would write it with
   OpenBLAS: per head, sgemm for the scores, a softmax loop, sgemm for P.V.
   Without OpenBLAS at build time they report themselves unavailable. */
#ifndef CLATTN_BENCH_BLAS_H
#define CLATTN_BENCH_BLAS_H

#include "bench_cases.h"
#include "bench_layer.h"
#include "bench_sdpa.h"
#include "bench_timing.h"

#include <stddef.h>

/* 1 when built with OpenBLAS (note: its configuration and threads), else
   0 (note: why not). */
int bench_blas_available(char *note, size_t cap, int *threads);

/* Times C = A.B for n x n matrices. Returns 0, or -1 (no BLAS, no
   memory). */
int bench_blas_sgemm(int n, const bench_method *m, bench_timing *t);

/* One attention problem on the host. */
typedef struct bench_blas_attention {
    const bench_case *c;
    const bench_inputs *in;
    float *out;    /* [batch][heads_q][seq_q][head_dim], the result */
    float *scores; /* seq_q x seq_kv scratch, one head at a time */
} bench_blas_attention;

/* Allocates out and scores. Returns 0 or -1. */
int bench_blas_attention_init(bench_blas_attention *a, const bench_case *c,
                              const bench_inputs *in);
void bench_blas_attention_free(bench_blas_attention *a);

/* One whole attention, a bench_call_fn (wall-clock timed; no events). */
int bench_blas_attention_call(void *a, double *event_ms);

/* A layer case's projection GEMMs (a bench_layer_blas), a bench_call_fn
   (wall-clock timed). */
int bench_blas_projections_call(void *p, double *event_ms);

#endif
