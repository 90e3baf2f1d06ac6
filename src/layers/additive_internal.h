/* What the additive, concat and SE-gate layers share: launching their
   kernels (cl/additive.cl, PROGRAM_ADDITIVE), the row softmax and weighted
   sum both attention layers use, and the checks of their arguments (the
   ones every layer shares are in layer_common.h). */
#ifndef CLATTN_ADDITIVE_INTERNAL_H
#define CLATTN_ADDITIVE_INTERNAL_H

#include "clattn/clattn.h"
#include "kernel_args.h"
#include "layer_common.h"

/* A fresh kernel of PROGRAM_ADDITIVE, its arguments started in *args. */
clattn_status add_kernel(clattn_context *ctx, const char *name,
                         cl_kernel *kernel, kernel_args *args);

/* Enqueues kernel (arguments set through args) on a 1-D (g1 == 0) or 2-D
   range, records its event under stage, and releases the kernel. */
clattn_status add_launch(clattn_context *ctx, cl_kernel kernel,
                         const kernel_args *args, const char *name, size_t g0,
                         size_t g1, layer_timer *timer, layer_stage stage);

/* Row softmax in place over rows x n (add_softmax_rows). */
clattn_status add_softmax(clattn_context *ctx, cl_mem scores, size_t rows,
                          size_t n, layer_timer *timer);

/* out[b][i][:] = sum_j w[b][i][j] v[b][j][:] (add_weighted_sum). */
clattn_status add_weighted_sum(clattn_context *ctx, cl_mem w, cl_mem v,
                               cl_mem out, size_t batch, size_t sq, size_t skv,
                               size_t dv, layer_timer *timer);

/* Element counts and byte counts without overflow: *out = a * b * c, and
   bytes of it as floats when bytes is not NULL. */
clattn_status add_count(clattn_context *ctx, size_t *out, size_t *bytes,
                        size_t a, size_t b, size_t c);

/* The host form's no-aliasing rule: no input overlaps either output
   (out, then the optional weights), and the two outputs do not overlap,
   naming the culprit in the error. */
clattn_status add_check_host_outputs(clattn_context *ctx, const char *layer,
                                     const void *const *in,
                                     const size_t *in_bytes,
                                     const char *const *in_names, size_t n_in,
                                     const char *out_name, const void *out,
                                     size_t out_bytes, const float *weights,
                                     size_t weights_bytes);

#endif
