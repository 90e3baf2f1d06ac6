/* One SDPA case on one clattn context: deterministic inputs on the host,
   the caller's device buffers, one call of a path, and reading back the
   output. Shared by clattn-bench (timed) and clattn-info (self-check). */
#ifndef CLATTN_BENCH_SDPA_H
#define CLATTN_BENCH_SDPA_H

#include "bench_cases.h"

#include <stdint.h>

#include <clattn/clattn.h>

/* Q, K, V as contiguous [batch][heads][seq][dim] host arrays. */
typedef struct bench_inputs {
    float *q, *k, *v;
    /* K and V as the device reads them when the case's kv_dtype is fp16
       or bf16 (k and v then hold the same values widened back); NULL
       for fp32. */
    uint16_t *k16, *v16;
} bench_inputs;

/* Uniform in [-2, 2), the same for every run and device; K and V rounded
   to the case's kv_dtype. Returns -1 when out of memory. */
int bench_inputs_make(const bench_case *c, bench_inputs *in);
void bench_inputs_free(bench_inputs *in);

typedef struct bench_sdpa {
    clattn_context *ctx;
    cl_command_queue queue;
    clattn_sdpa_desc desc;
    clattn_sdpa_tensors t;
    size_t out_elems;
    size_t caller_bytes; /* the buffers: Q, K, V, O (and probs) */
    int32_t *kv_table;   /* the block table of a paged case (desc's) */
    clattn_sdpa_path path;
    clattn_status status; /* of the latest call */
    char error[512];      /* its detail, when not CLATTN_SUCCESS */
} bench_sdpa;

/* Device buffers for the case on ctx's OpenCL context, inputs copied in.
   Returns 0, or -1 with the reason in b->error. */
int bench_sdpa_setup(bench_sdpa *b, clattn_context *ctx, const bench_case *c,
                     const bench_inputs *in);
void bench_sdpa_teardown(bench_sdpa *b);

/* Fills the output with NaN, so a path that writes nothing cannot pass on
   what an earlier path left there. Returns 0 or -1. */
int bench_sdpa_poison_output(bench_sdpa *b);

/* One call of b->path, waited for. A bench_call_fn (bench_timing.h):
   returns 0 on success, else nonzero with b->status and b->error set. */
int bench_sdpa_call(void *b, double *event_ms);

/* Blocking read of the output into out (b->out_elems floats). */
int bench_sdpa_read_output(bench_sdpa *b, float *out);

/* Worst |got - want| and whether every element is within
   atol + rtol*|want| (NaN never is). */
typedef struct bench_compare {
    double max_abs_err;
    size_t bad;
} bench_compare;
void bench_compare_float(const float *got, const float *want, size_t n,
                         double atol, double rtol, bench_compare *r);
void bench_compare_double(const float *got, const double *want, size_t n,
                          double atol, double rtol, bench_compare *r);

#endif
