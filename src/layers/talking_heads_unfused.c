/* The unfused talking-heads path: logits, the pre-softmax head mix with the
   row softmax, the post-softmax head mix with dropout, and P'.V, as four
   kernels over [H][N][N] score buffers (three on CPU-class devices, where
   th_mix does both mixings). Every step is local to a query
   row of all heads, so the work splits into chunks of whole batches, or of
   rows of one batch, that fit the context's unfused scratch limit.

   The two GEMM-shaped steps are the layer's own register-tiled kernels on
   CPU-class devices (th_logits, th_pv, over the packed K and V) and the
   unfused SDPA path's __local-tiled ones on GPU-class devices
   (sdpa_scores, sdpa_pv, or their direct forms for chunks of few rows),
   reading Q, K and V in place from the qkv projection. */
#include "context_internal.h"
#include "device_memory.h"
#include "kernel_args.h"
#include "sdpa_unfused.h"
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
    cl_kernel all[7] = {plan->logits,      plan->mix, plan->mix_softmax,
                        plan->mix_dropout, plan->pv,  plan->logits_direct,
                        plan->pv_direct};
    for (int i = 0; i < 7; ++i)
        if (all[i])
            clReleaseKernel(all[i]);
    plan->s = plan->p = plan->pv_acc = NULL;
    plan->logits = plan->mix = plan->mix_softmax = plan->mix_dropout =
        plan->pv = plan->logits_direct = plan->pv_direct = NULL;
}

/* Bytes of score scratch a CPU-class chunk of whole batches stays
   within: 2.5 x the device's global-memory cache (its last-level cache on
   CPU runtimes), where chunks of 1 to 6 batches of the CaiT-like layer
   were measured fastest at 2, 2.3 x a 32 MiB cache (1.3x faster than 6);
   0 (no cap) on GPU-class devices or when the device reports no cache. */
static size_t cpu_chunk_bytes(const clattn_context *ctx)
{
    const size_t cache = context_cpu_cache_bytes(ctx);
    return cache > SIZE_MAX / 5 * 2 ? SIZE_MAX : cache / 2 * 5;
}

/* CPU-class: th_logits and th_pv, and th_pv's accumulators
   (TH_UNFUSED_ROWS padded rows per work-item). */
static clattn_status cpu_gemm_kernels(clattn_context *ctx, const th_run *run,
                                      th_unfused_plan *plan)
{
    const size_t rows = KERNEL_PARAM_FOR(ctx, TH_UNFUSED_ROWS);
    size_t acc_bytes, tiles = (plan->nr + rows - 1) / rows * rows;
    const size_t acc[5] = {plan->nb, run->layer->heads, tiles, run->dpad,
                           sizeof(float)};
    clattn_status s;
    if ((s = layer_size_buffer(ctx, "talking_heads", "the P.V accumulators",
                               acc, 5, &acc_bytes)) ||
        (s = layer_buffer(ctx, acc_bytes, NULL, &plan->pv_acc)) ||
        (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_logits",
                            &plan->logits)))
        return s;
    return program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_pv", &plan->pv);
}

/* GPU-class: the unfused SDPA path's GEMM steps, both forms. */
static clattn_status gpu_gemm_kernels(clattn_context *ctx,
                                      th_unfused_plan *plan)
{
    const program_id prog = PROGRAM_SDPA_UNFUSED;
    clattn_status s;
    if ((s = program_kernel(ctx, prog, "sdpa_scores", &plan->logits)) ||
        (s = program_kernel(ctx, prog, "sdpa_scores_direct",
                            &plan->logits_direct)) ||
        (s = program_kernel(ctx, prog, "sdpa_pv", &plan->pv)))
        return s;
    return program_kernel(ctx, prog, "sdpa_pv_direct", &plan->pv_direct);
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
    /* With the caller's attn the logits go there, to be mixed in place. */
    if ((!run->attn && (s = layer_buffer(ctx, bytes, NULL, &plan->s))) ||
        (s = layer_buffer(ctx, p_bytes, NULL, &plan->p)) ||
        (s = one_mix ? cpu_gemm_kernels(ctx, run, plan)
                     : gpu_gemm_kernels(ctx, plan)) ||
        (one_mix && (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_mix",
                                        &plan->mix))) ||
        (!one_mix &&
         ((s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_mix_softmax",
                              &plan->mix_softmax)) ||
          (s = program_kernel(ctx, PROGRAM_TALKING_HEADS, "th_mix_dropout",
                              &plan->mix_dropout)))))
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

/* Head part (0 Q, 1 K, 2 V) of the qkv projection as an SDPA view:
   element (b, h, i, f) at b*N*3C + i*3C + part*C + h*D + f. */
static void arg_qkv_view(kernel_args *k, const th_run *run, size_t part)
{
    const size_t C = run->layer->dim, N = run->seq;
    arg_mem(k, run->qkv);
    arg_ulong(k, (cl_ulong)part * C);
    arg_ulong(k, (cl_ulong)N * 3 * C);
    arg_ulong(k, run->layer->head_dim);
    arg_ulong(k, (cl_ulong)3 * C);
}

/* The chunk's range of (batch, head) pairs and rows, as sdpa_scores and
   sdpa_pv end their arguments. */
static void arg_sdpa_chunk(kernel_args *k, const th_run *run, size_t b0,
                           size_t i0, size_t nr)
{
    arg_uint(k, th_u32(i0));
    arg_uint(k, th_u32(nr));
    arg_uint(k, th_u32(b0 * run->layer->heads));
}

/* GPU-class logits: sdpa_scores over the chunk, scaled (the CPU-class
   th_logits reads K scaled by th_pack_kv), no mask. */
static clattn_status gpu_logits(clattn_context *ctx, const th_run *run,
                                const th_unfused_plan *plan, const th_scores *s,
                                size_t b0, size_t nb, size_t i0, size_t nr)
{
    const struct clattn_talking_heads *L = run->layer;
    unfused_gemm_grid g;
    sdpa_unfused_gemm_grid(ctx, run->seq, nr, nb * L->heads, &g);
    const char *name = g.direct ? "sdpa_scores_direct" : "sdpa_scores";
    kernel_args k = args_begin(g.direct ? plan->logits_direct : plan->logits);
    arg_qkv_view(&k, run, 0);
    arg_qkv_view(&k, run, 1);
    arg_mem(&k, s->buffer);
    arg_long(&k, (cl_long)s->offset); /* the same bits, read as signed */
    arg_ulong(&k, s->sb);
    arg_ulong(&k, s->sh);
    arg_ulong(&k, s->ss);
    arg_mem(&k, NULL); /* no bool mask, */
    arg_mem(&k, NULL); /* no additive one, */
    for (int i = 0; i < 4; ++i)
        arg_ulong(&k, 0);
    arg_mem(&k, NULL); /* no key lengths */
    const cl_uint ints[4] = {th_u32(L->heads), 1, th_u32(run->seq),
                             th_u32(L->head_dim)};
    for (int i = 0; i < 4; ++i)
        arg_uint(&k, ints[i]);
    arg_float(&k, L->scale);
    arg_int(&k, 0); /* not causal */
    arg_long(&k, 0);
    arg_sdpa_chunk(&k, run, b0, i0, nr);
    return layer_launch_local(ctx, run->queue, &k, name, 3, g.global, g.local,
                              run->timer, LAYER_STAGE_ATTENTION);
}

/* GPU-class P'.V: sdpa_pv from the mixed weights into the [B][N][C]
   output the projection reads. */
static clattn_status gpu_pv(clattn_context *ctx, const th_run *run,
                            const th_unfused_plan *plan, const th_scores *s,
                            size_t b0, size_t nb, size_t i0, size_t nr)
{
    const struct clattn_talking_heads *L = run->layer;
    const size_t C = L->dim, N = run->seq;
    unfused_gemm_grid g;
    sdpa_unfused_gemm_grid(ctx, L->head_dim, nr, nb * L->heads, &g);
    const char *name = g.direct ? "sdpa_pv_direct" : "sdpa_pv";
    kernel_args k = args_begin(g.direct ? plan->pv_direct : plan->pv);
    arg_mem(&k, s->buffer);
    arg_long(&k, (cl_long)s->offset);
    arg_ulong(&k, s->sb);
    arg_ulong(&k, s->sh);
    arg_ulong(&k, s->ss);
    arg_qkv_view(&k, run, 2);
    arg_mem(&k, run->ctx_out); /* element (b, h, i, f) at b*N*C + i*C + h*D */
    arg_ulong(&k, 0);
    arg_ulong(&k, (cl_ulong)N * C);
    arg_ulong(&k, L->head_dim);
    arg_ulong(&k, C);
    arg_mem(&k, NULL); /* no key lengths */
    const cl_uint ints[4] = {th_u32(L->heads), 1, th_u32(N),
                             th_u32(L->head_dim)};
    for (int i = 0; i < 4; ++i)
        arg_uint(&k, ints[i]);
    arg_int(&k, 0); /* not causal */
    arg_long(&k, 0);
    arg_sdpa_chunk(&k, run, b0, i0, nr);
    return layer_launch_local(ctx, run->queue, &k, name, 3, g.global, g.local,
                              run->timer, LAYER_STAGE_ATTENTION);
}

/* One chunk: batches [b0, b0 + nb), rows [i0, i0 + nr). */
/* CPU-class logits: th_logits over the packed (scaled) K. */
static clattn_status cpu_logits(clattn_context *ctx, const th_run *run,
                                const th_unfused_plan *plan, const th_scores *s,
                                size_t b0, size_t nb, size_t i0, size_t nr)
{
    const struct clattn_talking_heads *L = run->layer;
    const size_t rows = KERNEL_PARAM_FOR(ctx, TH_UNFUSED_ROWS);
    kernel_args k = args_begin(plan->logits);
    arg_mem(&k, run->qkv);
    arg_mem(&k, run->kt);
    arg_scores(&k, s);
    arg_uint(&k, th_u32(L->heads));
    arg_uint(&k, th_u32(run->seq));
    arg_uint(&k, th_u32(L->head_dim));
    arg_uint(&k, th_u32(L->dim));
    arg_uint(&k, th_u32(run->npad));
    arg_uint(&k, th_u32(b0));
    arg_uint(&k, th_u32(i0));
    arg_uint(&k, th_u32(i0 + nr));
    size_t g_logits[3] = {(nr + rows - 1) / rows, 1, nb * L->heads};
    return launch(ctx, run, "th_logits", &k, 3, g_logits);
}

/* CPU-class P'.V: th_pv over the packed V, through pv_acc. */
static clattn_status cpu_pv(clattn_context *ctx, const th_run *run,
                            const th_unfused_plan *plan, const th_scores *s,
                            size_t b0, size_t nb, size_t i0, size_t nr)
{
    const size_t rows = KERNEL_PARAM_FOR(ctx, TH_UNFUSED_ROWS);
    kernel_args k = args_begin(plan->pv);
    arg_scores(&k, s);
    arg_mem(&k, run->vp);
    arg_mem(&k, plan->pv_acc);
    arg_mem(&k, run->ctx_out);
    th_arg_layout(&k, run);
    arg_uint(&k, th_u32(b0));
    arg_uint(&k, th_u32(i0));
    arg_uint(&k, th_u32(i0 + nr));
    size_t g_pv[2] = {(nr + rows - 1) / rows, nb * run->layer->heads};
    return launch(ctx, run, "th_pv", &k, 2, g_pv);
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
    const int cpu = plan->pv_acc != NULL;
    clattn_status st = cpu ? cpu_logits(ctx, run, plan, &s, b0, nb, i0, nr)
                           : gpu_logits(ctx, run, plan, &s, b0, nb, i0, nr);
    if (st)
        return st;

    kernel_args k;
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
    return cpu ? cpu_pv(ctx, run, plan, &s, b0, nb, i0, nr)
               : gpu_pv(ctx, run, plan, &s, b0, nb, i0, nr);
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
