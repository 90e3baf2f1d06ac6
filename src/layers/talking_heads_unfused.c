/* The unfused talking-heads path: logits, the pre-softmax head mix with the
   row softmax, the post-softmax head mix with dropout, and P'.V, as four
   kernels over [H][N][N] score buffers (three on CPU-class devices, where
   th_mix does both mixings). Every step is local to a query
   row of all heads, so the work splits into chunks of whole batches, or of
   rows of one batch, that fit the context's unfused scratch limit. */
#include "context_internal.h"
#include "device_memory.h"
#include "kernel_args.h"
#include "talking_heads_internal.h"

#include <stdint.h>

/* A score buffer as the kernels take it: element (b, h, i, j) at
   offset + b*sb + h*sh + i*ss + j, b and i absolute. */
typedef struct th_scores {
    cl_mem buffer;
    cl_ulong offset, sb, sh, ss;
} th_scores;

static void arg_scores(kernel_args *a, const th_scores *s)
{
    arg_mem(a, s->buffer);
    arg_ulong(a, s->offset);
    arg_ulong(a, s->sb);
    arg_ulong(a, s->sh);
    arg_ulong(a, s->ss);
}

/* The leading arguments of both head-mixing kernels: the scores read and
   written, the mixing Linear, then H, N and the chunk's first batch and
   row. */
static kernel_args arg_mix(cl_kernel kernel, const th_scores *from,
                           const th_scores *to, cl_mem weight, cl_mem bias,
                           cl_uint H, cl_uint N, size_t b0, size_t i0)
{
    kernel_args k = args_begin(kernel);
    arg_scores(&k, from);
    arg_scores(&k, to);
    arg_mem(&k, weight);
    arg_mem(&k, bias);
    const cl_uint ints[4] = {H, N, th_u32(b0), th_u32(i0)};
    for (int i = 0; i < 4; ++i)
        arg_uint(&k, ints[i]);
    return k;
}

/* Chunk scratch laid out [nb][H][nr][N], its offset shifted back (modulo
   2^64, as the kernels compute) so that (b0, i0) is element 0. */
static th_scores chunk_scores(const th_run *run, const th_unfused_plan *plan,
                              cl_mem buffer, size_t b0, size_t i0)
{
    th_scores s;
    s.buffer = buffer;
    s.ss = run->seq;
    s.sh = (cl_ulong)plan->nr * run->seq;
    s.sb = s.sh * run->layer->heads;
    s.offset = (cl_ulong)0 - ((cl_ulong)b0 * s.sb + (cl_ulong)i0 * s.ss);
    return s;
}

static th_scores attn_scores(const th_run *run)
{
    th_scores s;
    s.buffer = run->attn;
    s.offset = 0;
    s.ss = run->seq;
    s.sh = (cl_ulong)run->seq * run->seq;
    s.sb = s.sh * run->layer->heads;
    return s;
}

void th_unfused_release(clattn_context *ctx, th_unfused_plan *plan)
{
    ctx_buffer_release(ctx, plan->s);
    ctx_buffer_release(ctx, plan->p);
    ctx_buffer_release(ctx, plan->pv_acc);
    cl_kernel all[5] = {plan->logits, plan->mix, plan->mix_softmax,
                        plan->mix_dropout, plan->pv};
    for (int i = 0; i < 5; ++i)
        if (all[i])
            clReleaseKernel(all[i]);
    plan->s = plan->p = plan->pv_acc = NULL;
    plan->logits = plan->mix = plan->mix_softmax = plan->mix_dropout =
        plan->pv = NULL;
}

/* Bytes of score scratch a CPU-class chunk of whole batches stays
   within: 2.5 x the device's global-memory cache (its last-level cache on
   CPU runtimes), where chunks of 1 to 6 batches of the CaiT-like layer
   were measured fastest at 2, 2.3 x a 32 MiB cache (1.3x faster than 6);
   0 (no cap) on GPU-class devices or when the device reports no cache. */
static size_t cpu_chunk_bytes(const clattn_context *ctx)
{
    cl_ulong cache = 0;
    if (context_gpu_class(ctx) ||
        clGetDeviceInfo(ctx->device, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE,
                        sizeof cache, &cache, NULL) != CL_SUCCESS)
        return 0;
    const cl_ulong cap = cache / 2 * 5;
    return cap > SIZE_MAX ? SIZE_MAX : (size_t)cap;
}

clattn_status th_unfused_prepare(clattn_context *ctx, const th_run *run,
                                 th_unfused_plan *plan)
{
    const size_t H = run->layer->heads, N = run->seq;
    size_t row_bytes, batch_bytes;
    clattn_status s;
    /* Chunks are sized as two score buffers, a row of every head each
       (2 * H * N floats per row): what the GPU-class form holds without
       attn, and more than any other case (one buffer, or none with attn,
       and th_mix's slots). */
    if ((s = layer_mul_size(ctx, &row_bytes, 2 * H, N, sizeof(float))) ||
        (s = layer_mul_size(ctx, &batch_bytes, row_bytes, N, 1)))
        return s;
    size_t budget = ctx->scratch_limit; /* see scratch_limit() in context.c */
    /* CPU-class: whole batches only as far as they stay near the
       device's cache (docs/layers/talking_heads.md, "Chunks"). */
    const size_t near_cache = cpu_chunk_bytes(ctx);
    const size_t batch_budget =
        near_cache && near_cache < budget ? near_cache : budget;
    if (budget / row_bytes == 0)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "talking_heads: one query row of all %zu heads "
                         "needs %zu bytes of score scratch, over the unfused "
                         "path's limit (%zu bytes)",
                         H, row_bytes, budget);
    if (budget / batch_bytes >= 1) {
        size_t nb = batch_budget / batch_bytes ? batch_budget / batch_bytes : 1;
        plan->nb = nb < run->batch ? nb : run->batch;
        plan->nr = N;
    } else {
        plan->nb = 1;
        plan->nr = budget / row_bytes;
    }
    /* nb x nr rows of row_bytes fit the budget (itself at most
       max_alloc_bytes), so this cannot overflow. */
    const size_t bytes = plan->nb * plan->nr * (row_bytes / 2);
    /* CPU-class: th_mix's slots, one per TH_MIX_ROWS rows, else
       th_mix_dropout's input, a buffer like s. */
    const int one_mix = !context_gpu_class(ctx);
    const size_t slots =
        plan->nb * ((plan->nr + TH_MIX_ROWS - 1) / TH_MIX_ROWS);
    const size_t p_bytes = one_mix ? slots * (row_bytes / 2) : bytes;
    /* th_pv: TH_UNFUSED_ROWS padded rows per work-item */
    const size_t rows = KERNEL_PARAM_FOR(ctx, TH_UNFUSED_ROWS);
    size_t acc_bytes, tiles = (plan->nr + rows - 1) / rows * rows;
    const size_t acc[5] = {plan->nb, H, tiles, run->dpad, sizeof(float)};
    if ((s = layer_size_buffer(ctx, "talking_heads", "the P.V accumulators",
                               acc, 5, &acc_bytes)))
        return s;
    /* With the caller's attn the logits go there, to be mixed in place. */
    if ((!run->attn && (s = layer_buffer(ctx, bytes, NULL, &plan->s))) ||
        (s = layer_buffer(ctx, p_bytes, NULL, &plan->p)) ||
        (s = layer_buffer(ctx, acc_bytes, NULL, &plan->pv_acc)) ||
        (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_logits",
                            &plan->logits)) ||
        (one_mix && (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_mix",
                                        &plan->mix))) ||
        (!one_mix &&
         ((s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_mix_softmax",
                              &plan->mix_softmax)) ||
          (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_mix_dropout",
                              &plan->mix_dropout)))) ||
        (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_pv", &plan->pv)))
        th_unfused_release(ctx, plan);
    return s;
}

/* The dropout arguments both mixing kernels end with. */
static void arg_dropout(kernel_args *k, const th_run *run)
{
    const struct clattn_talking_heads *L = run->layer;
    arg_uint(k, L->drop_threshold);
    arg_float(k, L->drop_scale);
    arg_ulong(k, L->drop_seed);
    arg_ulong(k, run->drop_offset);
}

/* Runs a's kernel on global, timing it as attention. */
static clattn_status launch(clattn_context *ctx, const th_run *run,
                            const char *name, const kernel_args *a,
                            cl_uint dims, const size_t *global)
{
    return layer_launch_spread(ctx, run->queue, a, name, dims, global,
                               run->timer, LAYER_STAGE_ATTENTION);
}

/* One chunk: batches [b0, b0 + nb), rows [i0, i0 + nr). */
static clattn_status run_chunk(clattn_context *ctx, const th_run *run,
                               const th_unfused_plan *plan, size_t b0,
                               size_t nb, size_t i0, size_t nr)
{
    const struct clattn_talking_heads *L = run->layer;
    const cl_uint H = th_u32(L->heads), N = th_u32(run->seq);
    /* The logits go to the caller's attn, else to the chunk's scratch,
       and the mixed weights back to the same place (the logits are dead
       by then). */
    const th_scores s =
        run->attn ? attn_scores(run) : chunk_scores(run, plan, plan->s, b0, i0);
    const size_t rows = KERNEL_PARAM_FOR(ctx, TH_UNFUSED_ROWS);
    const size_t rows_global = (nr + rows - 1) / rows;
    clattn_status st;

    kernel_args k = args_begin(plan->logits);
    arg_mem(&k, run->qkv);
    arg_mem(&k, run->kt);
    arg_scores(&k, &s);
    arg_uint(&k, H);
    arg_uint(&k, N);
    arg_uint(&k, th_u32(L->head_dim));
    arg_uint(&k, th_u32(L->dim));
    arg_uint(&k, th_u32(run->npad));
    arg_uint(&k, th_u32(b0));
    arg_uint(&k, th_u32(i0));
    arg_uint(&k, th_u32(i0 + nr));
    size_t g_logits[3] = {rows_global, 1, nb * L->heads};
    if ((st = launch(ctx, run, "th_logits", &k, 3, g_logits)))
        return st;

    if (plan->mix) {
        k = args_begin(plan->mix);
        arg_scores(&k, &s);
        arg_mem(&k, plan->p);
        arg_scores(&k, &s);
        const cl_mem mixing[4] = {L->proj_l_weight, L->proj_l_bias,
                                  L->proj_w_weight, L->proj_w_bias};
        for (int i = 0; i < 4; ++i)
            arg_mem(&k, mixing[i]);
        const cl_uint ints[5] = {H, N, th_u32(b0), th_u32(i0), th_u32(i0 + nr)};
        for (int i = 0; i < 5; ++i)
            arg_uint(&k, ints[i]);
        arg_dropout(&k, run);
        size_t g_mix[2] = {(nr + TH_MIX_ROWS - 1) / TH_MIX_ROWS, nb};
        if ((st = launch(ctx, run, "th_mix", &k, 2, g_mix)))
            return st;
    } else {
        size_t g_rows[2] = {nb * L->heads, nr};
        const th_scores p = chunk_scores(run, plan, plan->p, b0, i0);
        k = arg_mix(plan->mix_softmax, &s, &p, L->proj_l_weight, L->proj_l_bias,
                    H, N, b0, i0);
        if ((st = launch(ctx, run, "th_mix_softmax", &k, 2, g_rows)))
            return st;
        k = arg_mix(plan->mix_dropout, &p, &s, L->proj_w_weight, L->proj_w_bias,
                    H, N, b0, i0);
        arg_dropout(&k, run);
        if ((st = launch(ctx, run, "th_mix_dropout", &k, 2, g_rows)))
            return st;
    }

    k = args_begin(plan->pv);
    arg_scores(&k, &s);
    arg_mem(&k, run->vp);
    arg_mem(&k, plan->pv_acc);
    arg_mem(&k, run->ctx_out);
    th_arg_layout(&k, run);
    arg_uint(&k, th_u32(b0));
    arg_uint(&k, th_u32(i0));
    arg_uint(&k, th_u32(i0 + nr));
    size_t g_pv[2] = {rows_global, nb * L->heads};
    return launch(ctx, run, "th_pv", &k, 2, g_pv);
}

clattn_status th_unfused_enqueue(clattn_context *ctx, const th_run *run,
                                 const th_unfused_plan *plan)
{
    for (size_t b0 = 0; b0 < run->batch; b0 += plan->nb) {
        size_t nb = run->batch - b0 < plan->nb ? run->batch - b0 : plan->nb;
        for (size_t i0 = 0; i0 < run->seq; i0 += plan->nr) {
            size_t nr = run->seq - i0 < plan->nr ? run->seq - i0 : plan->nr;
            clattn_status s = run_chunk(ctx, run, plan, b0, nb, i0, nr);
            if (s != CLATTN_SUCCESS)
                return s;
        }
    }
    return CLATTN_SUCCESS;
}
