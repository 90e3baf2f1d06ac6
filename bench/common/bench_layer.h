/* One layer case (a BERT-like multi-head attention or a CaiT-like
   talking-heads attention) on one clattn context: a layer made from
   deterministic weights, the caller's input and output buffers, timed
   forward calls that also give the projection / attention / other split,
   and the layer's projection GEMMs on the host's BLAS as their peer. */
#ifndef CLATTN_BENCH_LAYER_H
#define CLATTN_BENCH_LAYER_H

#include "bench_cases.h"
#include "bench_timing.h"

#include <clattn/clattn.h>

typedef struct bench_layer {
    clattn_context *ctx;
    const bench_case *c;
    clattn_mha *mha;
    clattn_talking_heads *th;
    cl_mem x, out;
    cl_mem weights; /* probs: MHA's head-averaged weights [B][S][S], or
                       talking-heads' attn [B][H][S][S] */
    size_t out_elems;
    size_t caller_bytes; /* x and out (and the weights) */
    clattn_sdpa_path path;
    clattn_layer_timing split; /* of the fastest call so far */
    double best_ms;
    clattn_status status; /* of the latest call */
    char error[512];
} bench_layer;

/* The embedding width of a layer case: heads * head_dim. */
size_t bench_layer_embed(const bench_case *c);

/* Creates the layer (weights from a fixed seed) and the buffers, input
   filled. Returns 0, or -1 with the reason in b->error. */
int bench_layer_setup(bench_layer *b, clattn_context *ctx, const bench_case *c);
void bench_layer_teardown(bench_layer *b);

/* Fills the output with NaN (a path that writes nothing cannot pass on
   what an earlier one left). Returns 0 or -1. */
int bench_layer_poison_output(bench_layer *b);

/* One forward call of b->path with the stage timing, waited for; a
   bench_call_fn. *event_ms is the three stages' sum (event-timed). */
int bench_layer_call(void *b, double *event_ms);

/* Nonzero when out holds a non-finite value (read back from the device):
   the sanity check of layer cases, whose correctness the tests own. */
int bench_layer_output_finite(bench_layer *b, int *finite);

/* The case's projection GEMMs (QKV: [B*N, E] x [3E, E]^T, and the output
   projection [B*N, E] x [E, E]^T) with the host's BLAS, one call of the
   pair; a bench_call_fn on a bench_layer_blas. */
typedef struct bench_layer_blas {
    size_t rows, embed;
    float *x, *w_qkv, *qkv, *w_out, *y;
} bench_layer_blas;
int bench_layer_blas_init(bench_layer_blas *p, const bench_case *c);
void bench_layer_blas_free(bench_layer_blas *p);

#endif
