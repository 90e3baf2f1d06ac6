/* The fused talking-heads path: one kernel (th_fused) whose work-items each
   own TH_FUSED_ROWS query rows with all heads, in two passes over the key
   blocks; nothing N x N is stored. Its scratch is per work-item: the
   logits and probabilities of one key block for every head, the row max
   and sum of every mixed head, and the P'.V accumulators of the rows. */
#include "context_internal.h"
#include "device_memory.h"
#include "kernel_args.h"
#include "talking_heads_internal.h"

void th_fused_release(clattn_context *ctx, th_fused_plan *plan)
{
    ctx_buffer_release(ctx, plan->scratch);
    if (plan->fused)
        clReleaseKernel(plan->fused);
    plan->scratch = NULL;
    plan->fused = NULL;
}

/* th_fused's rows per work-item on this device. */
static size_t fused_rows(const clattn_context *ctx)
{
    return KERNEL_PARAM_FOR(ctx, TH_FUSED_ROWS);
}

static size_t work_items_x(const clattn_context *ctx, const th_run *run)
{
    return (run->seq + fused_rows(ctx) - 1) / fused_rows(ctx);
}

clattn_status th_fused_prepare(clattn_context *ctx, const th_run *run,
                               th_fused_plan *plan)
{
    const size_t H = run->layer->heads;
    /* st, pt: H x rows x 16; ms, ls: H x rows; acc: rows x H x dpad (the
       layout th_fused documents). H and dpad are below 2^26 (check_desc):
       per cannot overflow; the whole buffer is checked. */
    const size_t rows = fused_rows(ctx);
    size_t per = H * rows * (2 * TH_KEY_BLOCK + 2) + rows * H * run->dpad;
    size_t bytes;
    const size_t factors[3] = {per * sizeof(float), work_items_x(ctx, run),
                               run->batch};
    clattn_status s = layer_size_buffer(
        ctx, "talking_heads", "the fused path's scratch", factors, 3, &bytes);
    if (s != CLATTN_SUCCESS)
        return s;
    plan->per = per;
    if ((s = layer_buffer(ctx, bytes, NULL, &plan->scratch)) ||
        (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_fused",
                            &plan->fused)))
        th_fused_release(ctx, plan);
    return s;
}

clattn_status th_fused_enqueue(clattn_context *ctx, const th_run *run,
                               const th_fused_plan *plan)
{
    const struct clattn_talking_heads *L = run->layer;
    /* q/k/v packed, both mixing Linears, the per-work-item scratch */
    const cl_mem mems[8] = {run->qkv,         run->kt,        run->vp,
                            L->proj_l_weight, L->proj_l_bias, L->proj_w_weight,
                            L->proj_w_bias,   plan->scratch};
    kernel_args k = args_begin(plan->fused);
    for (int i = 0; i < 8; ++i)
        arg_mem(&k, mems[i]);
    arg_ulong(&k, plan->per);
    arg_mem(&k, run->ctx_out);
    th_arg_layout(&k, run);
    arg_uint(&k, L->drop_threshold);
    arg_float(&k, L->drop_scale);
    arg_ulong(&k, L->drop_seed);
    arg_ulong(&k, run->drop_offset);
    size_t global[2] = {work_items_x(ctx, run), run->batch};
    return layer_launch_spread(ctx, run->queue, &k, "th_fused", 2, global,
                               run->timer, LAYER_STAGE_ATTENTION);
}
