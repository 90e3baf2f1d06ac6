/* The unfused SDPA path: scores, masked softmax and P.V as three kernels.
   Without a probabilities output, the scores live in a scratch buffer of
   bounded size, and the rows are processed in chunks that fit it, so any
   sequence length runs in bounded memory. CPU-class devices run the
   register-tiled forms of the three (cl/sdpa/sdpa_unfused_cpu.cl, in the
   fused-cpu program) over K and V packed once per call; GPU-class devices
   (and CPU-class ones where the packs would not fit) the __local-memory
   tiles of sdpa_scores.cl, sdpa_softmax.cl and sdpa_pv.cl, or their
   direct forms for chunks of few rows. */
#include "sdpa_unfused.h"
#include "checked_math.h"
#include "context_internal.h"
#include "device_memory.h"
#include "kernel_args.h"
#include "kernel_params.h"
#include "sdpa_fused.h"
#include "sdpa_pages.h"
#include "sdpa_plan.h"

#include <stdio.h>
#include <string.h>

/* Some drivers cap a grid dimension at 65535 groups; chunks stay below. */
#define GRID_DIM_MAX 65535

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Bytes of score scratch a CPU-class chunk stays within: a quarter of
   the device's global-memory cache (its last-level cache on CPU
   runtimes), so that the softmax and P.V find the scores the chunk's
   scores kernel wrote still in cache. On a 2-core EPYC with a 32 MiB L3
   chunks of 4, 8 and 16 MiB measured the same and 1.1-1.7x faster than
   one chunk of 32-128 MiB (docs/performance.md, "The unfused path on
   CPU-class devices"); 0 (no cap) on GPU-class devices or when the
   device reports no cache. */
static size_t cpu_chunk_bytes(const clattn_context *ctx)
{
    return context_cpu_cache_bytes(ctx) / 4;
}

static clattn_status plan_chunks(clattn_context *ctx, const sdpa_problem *p,
                                 const sdpa_views *v, unfused_plan *plan)
{
    size_t bh_total = p->batch * p->heads_q;
    plan->scratch = NULL;
    plan->bh_count = min_size(bh_total, GRID_DIM_MAX);
    plan->q_count = min_size(p->seq_q, GRID_DIM_MAX);
    /* With probs the scores live in the caller's view, without a limit;
       on a CPU-class device they are still taken in chunks near the
       cache, as the scratch is. */
    const int probs = v->probs.buffer != NULL;
    const size_t near_cache = cpu_chunk_bytes(ctx);
    if (probs && !near_cache)
        return CLATTN_SUCCESS;

    size_t budget = ctx->scratch_limit; /* see scratch_limit() in context.c */
    size_t row_bytes = p->seq_kv * sizeof(float);
    if (!probs && budget / row_bytes == 0)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "one row of %zu scores (%zu bytes) exceeds the "
                         "unfused path's scratch limit (%zu bytes)",
                         p->seq_kv, row_bytes, budget);
    if (near_cache && (probs || near_cache < budget))
        budget = near_cache > row_bytes ? near_cache : row_bytes;
    size_t max_rows = budget / row_bytes;
    if (plan->q_count > max_rows) {
        plan->bh_count = 1;
        plan->q_count = max_rows;
    } else {
        plan->bh_count = min_size(plan->bh_count, max_rows / plan->q_count);
    }
    if (probs)
        return CLATTN_SUCCESS;
    return ctx_buffer_make(ctx, "score scratch", CL_MEM_READ_WRITE,
                           plan->bh_count * plan->q_count * row_bytes, NULL,
                           &plan->scratch);
}

/* Where chunk (bh_begin, q_begin)'s scores live: the probs view, or the
   scratch laid out as [bh_count][q_count][seq_kv] with its offset shifted
   back so that the chunk's first row is element 0 (see sdpa_scores.cl). */
typedef struct score_view {
    cl_mem buffer;
    cl_long offset;
    cl_ulong sb, sh, ss;
} score_view;

static score_view chunk_scores(const sdpa_problem *p, const sdpa_views *v,
                               const unfused_plan *plan, size_t bh_begin,
                               size_t q_begin)
{
    score_view s;
    if (!plan->scratch) {
        s.buffer = v->probs.buffer;
        s.offset = (cl_long)v->probs.offset;
        s.sb = v->probs.strides[0];
        s.sh = v->probs.strides[1];
        s.ss = v->probs.strides[2];
        return s;
    }
    s.buffer = plan->scratch;
    s.ss = p->seq_kv;
    s.sh = plan->q_count * p->seq_kv;
    s.sb = p->heads_q * s.sh;
    s.offset = -(cl_long)((bh_begin * plan->q_count + q_begin) * p->seq_kv);
    return s;
}

static void arg_scores(kernel_args *a, const score_view *s)
{
    arg_mem(a, s->buffer);
    arg_long(a, s->offset);
    arg_ulong(a, s->sb);
    arg_ulong(a, s->sh);
    arg_ulong(a, s->ss);
}

static size_t round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

/* The masks' arguments of both score kernels: the bool and additive
   buffers (one NULL or both), the mask view's offset and strides. */
static void arg_masks(kernel_args *a, const sdpa_problem *p,
                      const sdpa_views *v)
{
    arg_mem(a, p->mask_type == CLATTN_MASK_BOOL ? v->mask.buffer : NULL);
    arg_mem(a, p->mask_type == CLATTN_MASK_ADDITIVE ? v->mask.buffer : NULL);
    arg_ulong(a, v->mask.offset);
    for (int i = 0; i < 3; ++i)
        arg_ulong(a, v->mask.strides[i]);
}

/* The arguments of both softmax kernels (the same signature). */
static kernel_args softmax_args(cl_kernel kernel, const sdpa_problem *p,
                                const sdpa_views *v, const score_view *s,
                                cl_uint q_begin, cl_uint bh_begin)
{
    kernel_args a = args_begin(kernel);
    arg_scores(&a, s);
    arg_view(&a, &v->lse);
    arg_uint(&a, (cl_uint)p->heads_q);
    arg_uint(&a, (cl_uint)p->seq_q);
    arg_uint(&a, (cl_uint)p->seq_kv);
    arg_uint(&a, q_begin);
    arg_uint(&a, bh_begin);
    arg_uint(&a, p->drop_threshold);
    arg_float(&a, p->drop_scale);
    arg_ulong(&a, p->drop_seed);
    arg_ulong(&a, p->drop_offset);
    return a;
}

/* The GPU-class GEMM steps' tiles (cl/sdpa/sdpa_unfused_params.clh):
   squares of side work-items, each owning a block of side * UT_MICRO
   outputs a side, unless the chunk's rows would fill less than a quarter
   of a block: then the direct forms, a work-item per DIRECT_ROWS x
   DIRECT_KEYS outputs (their arguments are the same). A CPU-class device
   (here only where the packs would not fit) always takes the direct
   forms: its caches serve their re-reads, and PoCL ran the tiles 1.6x
   slower (docs/gpu.md, "The unfused kernels"). */
void sdpa_unfused_gemm_grid(const clattn_context *ctx, size_t cols, size_t rows,
                            size_t bh_count, unfused_gemm_grid *g)
{
    const size_t side = ctx->programs.unfused_side;
    const size_t block = side * UT_MICRO;
    g->direct = !context_gpu_class(ctx) || rows * 4 < block;
    if (g->direct) {
        g->global[0] = round_up(cols, DIRECT_KEYS) / DIRECT_KEYS;
        g->global[1] = round_up(rows, DIRECT_ROWS) / DIRECT_ROWS;
        g->local = NULL;
    } else {
        g->global[0] = round_up(cols, block) / block * side;
        g->global[1] = round_up(rows, block) / block * side;
        g->square[0] = g->square[1] = side;
        g->square[2] = 1;
        g->local = g->square;
    }
    g->global[2] = bh_count;
}

static clattn_status enqueue_chunk(clattn_context *ctx, cl_command_queue queue,
                                   const sdpa_problem *p, const sdpa_views *v,
                                   const unfused_plan *k, cl_mem key_len,
                                   const score_view *s, cl_uint bh_begin,
                                   cl_uint bh_count, cl_uint q_begin,
                                   cl_uint q_count, cl_uint num_wait,
                                   const cl_event *wait, cl_event *done)
{
    const size_t wg = ctx->programs.softmax_wg;
    unfused_gemm_grid g_scores, g_pv;
    sdpa_unfused_gemm_grid(ctx, p->seq_kv, q_count, bh_count, &g_scores);
    sdpa_unfused_gemm_grid(ctx, p->head_dim_v, q_count, bh_count, &g_pv);
    cl_kernel scores = g_scores.direct ? k->scores_direct : k->scores;
    cl_kernel pv = g_pv.direct ? k->pv_direct : k->pv;

    kernel_args a = args_begin(scores);
    arg_view(&a, &v->q);
    arg_view(&a, &v->k);
    arg_kv_pages(&a, &p->pages, v->kv_table);
    arg_scores(&a, s);
    arg_masks(&a, p, v);
    arg_mem(&a, key_len);
    arg_uint(&a, (cl_uint)p->heads_q);
    arg_uint(&a, (cl_uint)p->group);
    arg_uint(&a, (cl_uint)p->seq_kv);
    arg_uint(&a, (cl_uint)p->head_dim);
    arg_float(&a, p->scale);
    arg_int(&a, p->causal != CLATTN_CAUSAL_NONE);
    arg_long(&a, p->causal_shift);
    arg_uint(&a, q_begin);
    arg_uint(&a, q_count);
    arg_uint(&a, bh_begin);
    if (a.err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg (sdpa_scores)", a.err);

    a = softmax_args(k->softmax, p, v, s, q_begin, bh_begin);
    if (a.err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg (sdpa_softmax)", a.err);

    a = args_begin(pv);
    arg_scores(&a, s);
    arg_view(&a, &v->v);
    arg_kv_pages(&a, &p->pages, v->kv_table);
    arg_view(&a, &v->out);
    arg_mem(&a, key_len);
    arg_uint(&a, (cl_uint)p->heads_q);
    arg_uint(&a, (cl_uint)p->group);
    arg_uint(&a, (cl_uint)p->seq_kv);
    arg_uint(&a, (cl_uint)p->head_dim_v);
    arg_int(&a, p->causal != CLATTN_CAUSAL_NONE);
    arg_long(&a, p->causal_shift);
    arg_uint(&a, q_begin);
    arg_uint(&a, q_count);
    arg_uint(&a, bh_begin);
    if (a.err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg (sdpa_pv)", a.err);

    const size_t g_softmax[3] = {wg, q_count, bh_count};
    const size_t l_softmax[3] = {wg, 1, 1};
    cl_event e1 = NULL, e2 = NULL;
    cl_int err = clEnqueueNDRangeKernel(queue, scores, 3, NULL, g_scores.global,
                                        g_scores.local, num_wait, wait, &e1);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clEnqueueNDRangeKernel (sdpa_scores)", err);
    err = clEnqueueNDRangeKernel(queue, k->softmax, 3, NULL, g_softmax,
                                 l_softmax, 1, &e1, &e2);
    clReleaseEvent(e1);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clEnqueueNDRangeKernel (sdpa_softmax)", err);
    err = clEnqueueNDRangeKernel(queue, pv, 3, NULL, g_pv.global, g_pv.local, 1,
                                 &e2, done);
    clReleaseEvent(e2);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clEnqueueNDRangeKernel (sdpa_pv)", err);
    return CLATTN_SUCCESS;
}

/* The CPU-class form of one chunk (cl/sdpa/sdpa_unfused_cpu.cl): the
   same steps over the same score view, from the packed K and V, in
   work-groups of one work-item (PoCL otherwise groups small grids so that
   a core idles, docs/kernel-notes.md). */
static clattn_status
enqueue_chunk_cpu(clattn_context *ctx, cl_command_queue queue,
                  const sdpa_problem *p, const sdpa_views *v,
                  const unfused_plan *k, const score_view *s, cl_uint bh_begin,
                  cl_uint bh_count, cl_uint q_begin, cl_uint q_count,
                  cl_uint num_wait, const cl_event *wait, cl_event *done)
{
    kernel_args a = args_begin(k->scores);
    arg_view(&a, &v->q);
    arg_mem(&a, k->kp);
    arg_scores(&a, s);
    arg_masks(&a, p, v);
    arg_mem(&a, k->key_len);
    arg_uint(&a, (cl_uint)p->heads_q);
    arg_uint(&a, (cl_uint)p->group);
    arg_uint(&a, (cl_uint)p->seq_kv);
    arg_uint(&a, (cl_uint)p->head_dim);
    arg_uint(&a, (cl_uint)k->nblk);
    arg_float(&a, p->scale);
    arg_int(&a, p->causal != CLATTN_CAUSAL_NONE);
    arg_long(&a, p->causal_shift);
    arg_uint(&a, q_begin);
    arg_uint(&a, q_count);
    arg_uint(&a, bh_begin);
    if (a.err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg (unfused_cpu_scores)", a.err);

    a = softmax_args(k->softmax, p, v, s, q_begin, bh_begin);
    if (a.err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg (unfused_cpu_softmax)", a.err);

    a = args_begin(k->pv);
    arg_scores(&a, s);
    arg_mem(&a, k->vp);
    arg_view(&a, &v->out);
    arg_mem(&a, k->key_len);
    arg_uint(&a, (cl_uint)p->heads_q);
    arg_uint(&a, (cl_uint)p->group);
    arg_uint(&a, (cl_uint)p->seq_kv);
    arg_uint(&a, (cl_uint)p->head_dim_v);
    arg_uint(&a, (cl_uint)k->dv_pad);
    arg_uint(&a, (cl_uint)k->nblk);
    arg_int(&a, p->causal != CLATTN_CAUSAL_NONE);
    arg_long(&a, p->causal_shift);
    arg_uint(&a, q_begin);
    arg_uint(&a, q_count);
    arg_uint(&a, bh_begin);
    if (a.err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg (unfused_cpu_pv)", a.err);

    /* The kernels' tiles (cl/sdpa/sdpa_fused_params.clh). */
    static const size_t one[3] = {1, 1, 1};
    const size_t row_blocks = round_up(q_count, FC_RW) / FC_RW;
    const size_t g_scores[3] = {k->nblk, row_blocks, bh_count};
    const size_t g_softmax[2] = {q_count, bh_count};
    const size_t g_pv[3] = {k->dv_pad / FC_BK, row_blocks, bh_count};
    cl_event e1 = NULL, e2 = NULL;
    cl_int err = clEnqueueNDRangeKernel(queue, k->scores, 3, NULL, g_scores,
                                        one, num_wait, wait, &e1);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clEnqueueNDRangeKernel (unfused_cpu_scores)",
                            err);
    err = clEnqueueNDRangeKernel(queue, k->softmax, 2, NULL, g_softmax, one, 1,
                                 &e1, &e2);
    clReleaseEvent(e1);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clEnqueueNDRangeKernel (unfused_cpu_softmax)",
                            err);
    err =
        clEnqueueNDRangeKernel(queue, k->pv, 3, NULL, g_pv, one, 1, &e2, done);
    clReleaseEvent(e2);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clEnqueueNDRangeKernel (unfused_cpu_pv)",
                            err);
    return CLATTN_SUCCESS;
}

/* The kernels from the build of p's K/V element types (kv is its
   options; the packed K and V the CPU-class kernels read are fp32). */
static clattn_status create_kernels(clattn_context *ctx, const sdpa_problem *p,
                                    unfused_plan *k)
{
    clattn_status s;
    char kv[96];
    if (k->cpu)
        sdpa_kv_options_cpu(p, kv, sizeof kv);
    else
        sdpa_kv_options(p, kv, sizeof kv);
    if (k->cpu) {
        const program_id prog = PROGRAM_SDPA_FUSED_CPU;
        if ((s = program_kernel_variant(ctx, prog, kv, "fused_pack_kv",
                                        &k->pack)) ||
            (s = program_kernel(ctx, prog, "unfused_cpu_scores", &k->scores)) ||
            (s = program_kernel(ctx, prog, "unfused_cpu_softmax",
                                &k->softmax)) ||
            (s = program_kernel(ctx, prog, "unfused_cpu_pv", &k->pv)))
            return s;
        return CLATTN_SUCCESS;
    }
    const program_id prog = PROGRAM_SDPA_UNFUSED;
    if ((s = program_kernel_variant(ctx, prog, kv, "sdpa_scores",
                                    &k->scores)) ||
        (s = program_kernel(ctx, prog, "sdpa_softmax", &k->softmax)) ||
        (s = program_kernel_variant(ctx, prog, kv, "sdpa_pv", &k->pv)) ||
        (s = program_kernel_variant(ctx, prog, kv, "sdpa_scores_direct",
                                    &k->scores_direct)) ||
        (s = program_kernel_variant(ctx, prog, kv, "sdpa_pv_direct",
                                    &k->pv_direct)))
        return s;
    return CLATTN_SUCCESS;
}

static void release_kernels(unfused_plan *k)
{
    if (k->pack)
        clReleaseKernel(k->pack);
    if (k->scores)
        clReleaseKernel(k->scores);
    if (k->softmax)
        clReleaseKernel(k->softmax);
    if (k->pv)
        clReleaseKernel(k->pv);
    if (k->scores_direct)
        clReleaseKernel(k->scores_direct);
    if (k->pv_direct)
        clReleaseKernel(k->pv_direct);
}

/* The unfused path takes every request the validation passed. */
clattn_status sdpa_unfused_supports(const clattn_context *ctx,
                                    const sdpa_problem *p,
                                    const sdpa_views *views, char *why,
                                    size_t why_size)
{
    (void)ctx, (void)views;
    if (p->cu_q) {
        if (why)
            snprintf(why, why_size,
                     "the unfused path does not take a packed batch "
                     "(cu_seqlens): use AUTO without probs or a fused path");
        return CLATTN_ERROR_UNSUPPORTED;
    }
    return CLATTN_SUCCESS;
}

/* The bytes of one packed buffer of the CPU-class form, or 0 where it
   would pass SIZE_MAX or the device's largest allocation. */
static size_t pack_bytes(const clattn_context *ctx, const size_t dims[5])
{
    size_t bytes = 0;
    if (checked_product(dims, 5, &bytes) || bytes > ctx->info.max_alloc_bytes)
        return 0;
    return bytes;
}

/* The CPU-class form's packed K and V (fused_pack_kv's layout). Where a
   pack would not fit in one buffer (millions of keys over many heads:
   the pack pads every key to 64 values of V), the plan keeps the kernels
   that read K and V in place, which need no copy: *packed says which. */
static clattn_status plan_packs(clattn_context *ctx, const sdpa_problem *p,
                                unfused_plan *u, int *packed)
{
    u->nblk = round_up(p->seq_kv, FC_BK) / FC_BK;
    u->dv_pad = round_up(p->head_dim_v, FC_BK);
    const size_t f = sizeof(float);
    const size_t kd[5] = {p->batch, p->heads_kv, u->nblk, FC_BK,
                          p->head_dim * f};
    const size_t vd[5] = {p->batch, p->heads_kv, u->nblk, FC_BK, u->dv_pad * f};
    const size_t kb = pack_bytes(ctx, kd), vb = pack_bytes(ctx, vd);
    *packed = kb && vb;
    if (!*packed)
        return CLATTN_SUCCESS;
    clattn_status s =
        ctx_buffer_make(ctx, "packed K", CL_MEM_READ_WRITE, kb, NULL, &u->kp);
    if (s == CLATTN_SUCCESS)
        s = ctx_buffer_make(ctx, "packed V", CL_MEM_READ_WRITE, vb, NULL,
                            &u->vp);
    return s;
}

clattn_status sdpa_unfused_prepare(clattn_context *ctx, sdpa_plan *plan)
{
    const sdpa_problem *p = &plan->problem;
    unfused_plan *u = &plan->u.unfused;
    memset(u, 0, sizeof *u);
    clattn_status status = plan_chunks(ctx, p, &plan->views, u);
    if (status == CLATTN_SUCCESS && !context_gpu_class(ctx))
        status = plan_packs(ctx, p, u, &u->cpu);
    if (status == CLATTN_SUCCESS)
        status = create_kernels(ctx, p, u);
    if (status == CLATTN_SUCCESS && p->key_lengths) {
        /* Copied now, so the caller's array may go away on return. */
        status = ctx_buffer_make(
            ctx, "key lengths", CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
            p->batch * sizeof(cl_int), (void *)p->key_lengths, &u->key_len);
    }
    if (status != CLATTN_SUCCESS)
        sdpa_unfused_release(ctx, plan);
    return status;
}

clattn_status sdpa_unfused_launch(clattn_context *ctx, const sdpa_plan *plan,
                                  cl_uint num_wait, const cl_event *wait,
                                  cl_event *done)
{
    const sdpa_problem *p = &plan->problem;
    const sdpa_views *v = &plan->views;
    const unfused_plan *u = &plan->u.unfused;
    clattn_status status = CLATTN_SUCCESS;
    cl_event last = NULL;
    if (u->cpu) {
        status =
            sdpa_enqueue_pack_kv(ctx, plan->queue, u->pack, p, v, u->kp, u->vp,
                                 u->nblk, u->dv_pad, num_wait, wait, &last);
        if (status != CLATTN_SUCCESS)
            return status;
    }
    /* Chunks run in order: each waits on the one before (the queue may be
       out of order), and on the scratch it reuses. */
    const size_t bh_total = p->batch * p->heads_q;
    for (size_t bh = 0; status == CLATTN_SUCCESS && bh < bh_total;
         bh += u->bh_count) {
        size_t bh_count = min_size(u->bh_count, bh_total - bh);
        for (size_t q0 = 0; status == CLATTN_SUCCESS && q0 < p->seq_q;
             q0 += u->q_count) {
            size_t q_count = min_size(u->q_count, p->seq_q - q0);
            score_view s = chunk_scores(p, v, u, bh, q0);
            cl_event next = NULL;
            if (u->cpu)
                status = enqueue_chunk_cpu(ctx, plan->queue, p, v, u, &s,
                                           (cl_uint)bh, (cl_uint)bh_count,
                                           (cl_uint)q0, (cl_uint)q_count, 1,
                                           &last, &next);
            else
                status = enqueue_chunk(
                    ctx, plan->queue, p, v, u, u->key_len, &s, (cl_uint)bh,
                    (cl_uint)bh_count, (cl_uint)q0, (cl_uint)q_count,
                    last ? 1 : num_wait, last ? &last : wait, &next);
            if (last)
                clReleaseEvent(last);
            last = next;
        }
    }
    if (status == CLATTN_SUCCESS && done)
        *done = last;
    else if (last)
        clReleaseEvent(last);
    return status;
}

/* Buffers released here stay alive until the enqueued kernels finish
   (OpenCL defers the release). */
void sdpa_unfused_release(clattn_context *ctx, sdpa_plan *plan)
{
    unfused_plan *u = &plan->u.unfused;
    ctx_buffer_release(ctx, u->key_len);
    ctx_buffer_release(ctx, u->scratch);
    ctx_buffer_release(ctx, u->kp);
    ctx_buffer_release(ctx, u->vp);
    release_kernels(u);
    memset(u, 0, sizeof *u);
}
