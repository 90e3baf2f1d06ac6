/* The shared row kernels of attention_rows.h (kernels in cl/additive.cl,
   PROGRAM_ADDITIVE). */
#include "attention_rows.h"

size_t rows_tiles(size_t n, size_t tile)
{
    return n / tile + !!(n % tile);
}

clattn_status rows_softmax(clattn_context *ctx, cl_mem scores, size_t rows,
                           size_t n, layer_timer *timer)
{
    kernel_args a;
    clattn_status status =
        layer_kernel(ctx, PROGRAM_ADDITIVE, "add_softmax_rows", &a);
    if (status != CLATTN_SUCCESS)
        return status;
    arg_mem(&a, scores);
    arg_ulong(&a, n);
    return layer_launch_once(ctx, &a, "add_softmax_rows", rows, 0, timer,
                             LAYER_STAGE_ATTENTION);
}

clattn_status rows_weighted_sum(clattn_context *ctx, cl_mem w, cl_mem v,
                                cl_mem out, size_t batch, size_t sq, size_t skv,
                                size_t dv, layer_timer *timer)
{
    kernel_args a;
    clattn_status status =
        layer_kernel(ctx, PROGRAM_ADDITIVE, "add_weighted_sum", &a);
    if (status != CLATTN_SUCCESS)
        return status;
    const size_t i_tiles = rows_tiles(sq, ADD_TI);
    arg_mem(&a, w);
    arg_mem(&a, v);
    arg_mem(&a, out);
    arg_ulong(&a, sq);
    arg_ulong(&a, skv);
    arg_ulong(&a, dv);
    arg_ulong(&a, i_tiles);
    return layer_launch_once(ctx, &a, "add_weighted_sum",
                             rows_tiles(dv, ADD_TJ), batch * i_tiles, timer,
                             LAYER_STAGE_ATTENTION);
}
