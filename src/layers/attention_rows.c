/* The shared row kernels of attention_rows.h (kernels in
   cl/layers/additive.cl, PROGRAM_ADDITIVE). */
#include "attention_rows.h"

size_t rows_tiles(size_t n, size_t tile)
{
    return n / tile + !!(n % tile);
}

clattn_status rows_softmax(clattn_context *ctx, cl_mem scores, size_t rows,
                           size_t n, layer_timer *timer)
{
    const cl_ulong ints[1] = {n};
    return layer_run_kernel(ctx, PROGRAM_ADDITIVE, "add_softmax_rows", &scores,
                            1, ints, 1, rows, 0, timer, LAYER_STAGE_ATTENTION);
}

clattn_status rows_weighted_sum(clattn_context *ctx, cl_mem w, cl_mem v,
                                cl_mem out, size_t batch, size_t sq, size_t skv,
                                size_t dv, layer_timer *timer)
{
    const size_t i_tiles = rows_tiles(sq, ADD_TI);
    const cl_mem mems[3] = {w, v, out};
    const cl_ulong ints[4] = {sq, skv, dv, i_tiles};
    return layer_run_kernel(ctx, PROGRAM_ADDITIVE, "add_weighted_sum", mems, 3,
                            ints, 4, rows_tiles(dv, ADD_TJ), batch * i_tiles,
                            timer, LAYER_STAGE_ATTENTION);
}
