/* The GEMMs of the projection layers: through CLBlast, with the tuned
   parameters of the device class applied once per device, and the
   nn.Linear form (y = x W^T + b) the layers use, which CPU-class devices
   run on clattn's own kernels. */
#ifndef CLATTN_GEMM_H
#define CLATTN_GEMM_H

#include "clattn/clattn.h"
#include "layer_common.h"

/* A row-major matrix inside a device buffer: element (r, c) at
   buffer[offset + r * ld + c] (elements). */
typedef struct gemm_matrix {
    cl_mem buffer;
    size_t offset, ld;
} gemm_matrix;

/* C = alpha * op(A) op(B) + beta * C, row-major, op = transpose when
   the flag is set: op(A) is [m][k], op(B) is [k][n], C is [m][n]. The
   event of the GEMM goes to the timer under stage (timer may be NULL).
   CLBlast's failures come back as CLATTN_ERROR_BLAS with its code. */
clattn_status gemm_run(clattn_context *ctx, cl_command_queue queue, int trans_a,
                       int trans_b, size_t m, size_t n, size_t k, float alpha,
                       gemm_matrix a, gemm_matrix b, float beta, gemm_matrix c,
                       layer_timer *timer);

/* nn.Linear on rows: y[m][n] = (accumulate ? y : 0) + x[m][k] W[n][k]^T
   + bias[n] (bias buffer NULL = none). W is torch's [out][in] weight,
   read in place (weight.ld may exceed k: a column block of a wider
   weight, as the concat layer uses). CPU-class devices run
   gemm_linear_cpu, GPU-class ones gemm_linear_blas. */
clattn_status gemm_linear(clattn_context *ctx, cl_command_queue queue, size_t m,
                          size_t n, size_t k, gemm_matrix x, gemm_matrix weight,
                          cl_mem bias, size_t bias_offset, int accumulate,
                          gemm_matrix y, layer_timer *timer);

/* gemm_linear through CLBlast: the GEMM, then layer_bias_add. */
clattn_status gemm_linear_blas(clattn_context *ctx, cl_command_queue queue,
                               size_t m, size_t n, size_t k, gemm_matrix x,
                               gemm_matrix weight, cl_mem bias,
                               size_t bias_offset, int accumulate,
                               gemm_matrix y, layer_timer *timer);

/* gemm_linear through clattn's CPU-class kernels (gemm_cpu.c): the
   weight packed for the call, then the register-tiled product with the
   bias and the accumulation in its epilogue. A leading dimension below
   the row length is INVALID_ARGUMENT. */
clattn_status gemm_linear_cpu(clattn_context *ctx, cl_command_queue queue,
                              size_t m, size_t n, size_t k, gemm_matrix x,
                              gemm_matrix weight, cl_mem bias,
                              size_t bias_offset, int accumulate, gemm_matrix y,
                              layer_timer *timer);

#endif
