/* nn.Linear on CPU-class devices through clattn's own register-tiled
   kernels (cl/layers/linear_cpu.cl): the weight packed into blocks of
   LIN_BN output columns, then one work-item per LIN_RW rows by one
   block. On PoCL CLBlast ran these GEMMs at about 0.6 of OpenBLAS
   (docs/performance.md, "nn.Linear on CPU-class devices"). */
#include "context_internal.h"
#include "device_memory.h"
#include "gemm.h"
#include "kernel_args.h"
#include "kernel_params.h"

#include <stdint.h>

static size_t round_up(size_t a, size_t b)
{
    return (a + b - 1) / b * b;
}

clattn_status gemm_linear_cpu(clattn_context *ctx, cl_command_queue queue,
                              size_t m, size_t n, size_t k, gemm_matrix x,
                              gemm_matrix weight, cl_mem bias,
                              size_t bias_offset, int accumulate, gemm_matrix y,
                              layer_timer *timer)
{
    /* The kernels index rows, columns and features as uint. */
    if (m > UINT32_MAX || n > UINT32_MAX - LIN_BN || k > UINT32_MAX)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "gemm: m %zu, n %zu or k %zu exceeds the linear "
                         "kernels' 32-bit range",
                         m, n, k);
    if (x.ld < k || weight.ld < k || y.ld < n)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "gemm: leading dimension below the row length (x %zu, "
                         "weight %zu for k %zu; y %zu for n %zu)",
                         x.ld, weight.ld, k, y.ld, n);
    const size_t npad = round_up(n, LIN_BN);
    const size_t dims[3] = {npad, k, sizeof(float)};
    size_t bytes;
    clattn_status s =
        layer_size_buffer(ctx, "gemm", "the packed weight", dims, 3, &bytes);
    if (s != CLATTN_SUCCESS)
        return s;
    cl_mem packed = NULL;
    cl_kernel pack = NULL, rows = NULL;
    if ((s = layer_buffer(ctx, bytes, NULL, &packed)) ||
        (s = program_kernel(ctx, PROGRAM_LAYER_COMMON, "linear_pack_w",
                            &pack)) ||
        (s = program_kernel(ctx, PROGRAM_LAYER_COMMON, "linear_rows", &rows)))
        goto done;

    kernel_args a = args_begin(pack);
    arg_mem(&a, weight.buffer);
    arg_ulong(&a, weight.offset);
    arg_ulong(&a, weight.ld);
    arg_mem(&a, packed);
    arg_uint(&a, (cl_uint)n);
    arg_uint(&a, (cl_uint)k);
    const size_t g_pack[2] = {npad, k};
    if ((s = layer_launch(ctx, queue, &a, "linear_pack_w", 2, g_pack, timer,
                          LAYER_STAGE_PROJECTION)))
        goto done;

    a = args_begin(rows);
    arg_mem(&a, x.buffer);
    arg_ulong(&a, x.offset);
    arg_ulong(&a, x.ld);
    arg_mem(&a, packed);
    arg_mem(&a, bias);
    arg_ulong(&a, bias_offset);
    arg_mem(&a, y.buffer);
    arg_ulong(&a, y.offset);
    arg_ulong(&a, y.ld);
    arg_uint(&a, (cl_uint)m);
    arg_uint(&a, (cl_uint)n);
    arg_uint(&a, (cl_uint)k);
    arg_int(&a, accumulate ? 1 : 0);
    const size_t g_rows[2] = {npad / LIN_BN, round_up(m, LIN_RW) / LIN_RW};
    s = layer_launch_spread(ctx, queue, &a, "linear_rows", 2, g_rows, timer,
                            LAYER_STAGE_PROJECTION);
done:
    /* Released once enqueued: the runtime keeps it until the kernel
       that reads it has run. */
    ctx_buffer_release(ctx, packed);
    if (pack)
        clReleaseKernel(pack);
    if (rows)
        clReleaseKernel(rows);
    return s;
}
