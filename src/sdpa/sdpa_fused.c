/* The fused SDPA path: online softmax over key blocks, no score matrix,
   device memory linear in the sequence length. Plans which kernel runs
   (CPU-class rows or decode, GPU-class tiles), how many key slices each row
   is split into so that every compute unit has work, and enqueues the
   chain: pack (CPU rows) -> attention -> merge (split). See
   cl/sdpa/sdpa_fused_*.cl. */
#include "sdpa_fused.h"
#include "checked_math.h"
#include "context_internal.h"
#include "device_memory.h"
#include "device_select.h"
#include "kernel_args.h"
#include "sdpa_fused_tiles.h"
#include "sdpa_pages.h"
#include "sdpa_plan.h"
#include "sdpa_varlen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FUSED_HEAD_DIM_MAX, FC_BK, FC_RW, FD_ROWS: the kernels' own values
   (cl/sdpa/sdpa_fused_params.clh). */
#include "kernel_params.h"

/* Some drivers cap a grid dimension at 65535 groups: (batch, head) pairs
   are launched in chunks below that. */
#define GRID_DIM_MAX 65535

/* A key slice holds at least this many keys: below it the merge and the
   per-slice start-up cost more than the parallelism gains. */
#define SPLIT_MIN_KEYS 256
#define SPLIT_MAX 256

/* Bytes of each buffer a plan makes (0 = none). */
typedef struct fused_bytes {
    size_t key_len, kp, vp, part, rows;
} fused_bytes;

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static clattn_status fused_supports(const sdpa_problem *p, const sdpa_views *v,
                                    int writes_probs, char *why,
                                    size_t why_size)
{
    if (v->probs.buffer && p->cu_q) {
        if (why)
            snprintf(why, why_size,
                     "probs of a packed batch (cu_seqlens): the fused paths "
                     "write out and lse only");
        return CLATTN_ERROR_UNSUPPORTED;
    }
    if (v->probs.buffer && !writes_probs) {
        if (why)
            snprintf(why, why_size,
                     "the GPU-class fused path does not write probs: use "
                     "AUTO, CLATTN_SDPA_PATH_UNFUSED or "
                     "CLATTN_SDPA_PATH_FUSED_CPU");
        return CLATTN_ERROR_UNSUPPORTED;
    }
    if (p->head_dim > FUSED_HEAD_DIM_MAX ||
        p->head_dim_v > FUSED_HEAD_DIM_MAX) {
        if (why)
            snprintf(why, why_size,
                     "the fused path supports head_dim and head_dim_v up to "
                     "%d (got %zu and %zu): use the unfused path",
                     FUSED_HEAD_DIM_MAX, p->head_dim, p->head_dim_v);
        return CLATTN_ERROR_UNSUPPORTED;
    }
    return CLATTN_SUCCESS;
}

clattn_status sdpa_fused_cpu_supports(const clattn_context *ctx,
                                      const sdpa_problem *p,
                                      const sdpa_views *v, char *why,
                                      size_t why_size)
{
    (void)ctx;
    return fused_supports(p, v, 1, why, why_size);
}

clattn_status sdpa_fused_gpu_supports(const clattn_context *ctx,
                                      const sdpa_problem *p,
                                      const sdpa_views *v, char *why,
                                      size_t why_size)
{
    (void)ctx;
    return fused_supports(p, v, 0, why, why_size);
}

/* The variant from capabilities, never from names: a CPU, or a device
   whose "local" memory is just global memory, runs the register-tiled
   variant; a device with dedicated local memory shares tiles there. */
int sdpa_fused_cpu_suits(const clattn_context *ctx)
{
    return !sdpa_fused_gpu_suits(ctx);
}

int sdpa_fused_gpu_suits(const clattn_context *ctx)
{
    return context_gpu_class(ctx);
}

/* Slices per row so that units * nsplit work-items (CPU) or groups (GPU)
   reach the target, each slice keeping at least SPLIT_MIN_KEYS keys. */
static void choose_splits(const clattn_context *ctx, const sdpa_problem *p,
                          size_t units, size_t granule, fused_plan *plan)
{
    const size_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
    const size_t target = plan->kind == FUSED_GPU_TILES ? 2 * cu : 4 * cu;
    size_t nsplit = 1;
    if (units < target)
        nsplit = min_size(div_up(target, units), p->seq_kv / SPLIT_MIN_KEYS);
    nsplit = nsplit < 1 ? 1 : min_size(nsplit, SPLIT_MAX);
    size_t keys = div_up(div_up(p->seq_kv, nsplit), granule) * granule;
    plan->split_keys = keys;
    plan->nsplit = div_up(p->seq_kv, keys);
}

/* Configuration t's program variant and kernel into plan, when the
   built kernel's own limits (work-group size, local memory) allow it;
   *fits 0 and nothing held when they do not. */
static clattn_status gpu_try_config(clattn_context *ctx, const gpu_tiles *t,
                                    fused_plan *plan, int *fits)
{
    const size_t wg = gpu_tiles_wg(t);
    const char *name = plan->gqa_rows ? "fused_gpu_decode" : "fused_gpu_flash";
    char options[192];
    gpu_tiles_options(t, plan->gqa_rows, options, sizeof options);
    if (plan->kv_options[0]) {
        const size_t used = strlen(options);
        snprintf(options + used, sizeof options - used, " %s",
                 plan->kv_options);
    }
    cl_kernel kernel = NULL;
    *fits = 0;
    clattn_status s = program_kernel_variant(ctx, PROGRAM_SDPA_FUSED_GPU,
                                             options, name, &kernel);
    if (s != CLATTN_SUCCESS)
        return s;
    size_t kernel_wg = 0;
    cl_ulong kernel_local = 0;
    cl_int err =
        clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                 sizeof kernel_wg, &kernel_wg, NULL);
    if (err == CL_SUCCESS)
        err = clGetKernelWorkGroupInfo(
            kernel, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof kernel_local,
            &kernel_local, NULL);
    if (err != CL_SUCCESS || kernel_wg < wg ||
        kernel_local > ctx->info.local_mem_bytes) {
        clReleaseKernel(kernel);
        return err == CL_SUCCESS
                   ? CLATTN_SUCCESS
                   : ctx_cl_error(ctx, "clGetKernelWorkGroupInfo (fused_gpu)",
                                  err);
    }
    *fits = 1;
    plan->attention = kernel;
    plan->wg = wg;
    plan->rows_per_unit = t->bm;
    return CLATTN_SUCCESS;
}

/* The query rows of one unit: seq_q (per query head) or group * seq_q
   (gqa_rows: fused_gpu_decode and fused_cpu_decode_gqa, per K/V head). */
static size_t unit_rows(const sdpa_problem *p, const fused_plan *plan)
{
    return plan->gqa_rows ? p->group * p->seq_q : p->seq_q;
}

/* The units the attention kernel's grid spans in dimension 1: (batch,
   K/V head) pairs with gqa_rows, else (batch, query head) pairs. */
static size_t units_of(const sdpa_problem *p, const fused_plan *plan)
{
    return p->batch * (plan->gqa_rows ? p->heads_kv : p->heads_q);
}

/* The CPU-class decode kernel takes calls of few query rows without
   probs; grouped-query ones take its form that reads each K/V head once
   for the whole group. */
static int cpu_decode(const sdpa_problem *p, int probs)
{
    return p->seq_q <= FD_ROWS && !probs;
}

/* The tiles that override the rule at padded head dim d, and where they
   come from: $CLATTN_FUSED_GPU_TILES (validated at context creation), else
   the tuning table's row for this device; NULL when neither has d. */
static const char *gpu_tiles_override(const clattn_context *ctx, unsigned d,
                                      gpu_tiles *out)
{
    const char *env = ctx->op_settings.fused_gpu_tiles;
    if (*env) {
        gpu_tiles list[8];
        size_t n = 0;
        char why[8];
        if (gpu_tiles_parse(env, list, 8, &n, why, sizeof why) == 0)
            for (size_t i = 0; i < n; ++i)
                if (list[i].d == d) {
                    *out = list[i];
                    return "$CLATTN_FUSED_GPU_TILES";
                }
        return NULL;
    }
    return gpu_tuning_lookup(gpu_tuning_table, ctx->info.device_vendor,
                             ctx->info.device_name, d, out)
               ? "the tuning table"
               : NULL;
}

/* GPU kernel: tiles from $CLATTN_FUSED_GPU_TILES or the tuning table when
   they name the head dim (an error when the device cannot run them: no
   other tiles are tried behind a setting), else the configuration
   gpu_tiles_pick names, else the next that the built kernel can run at,
   in table order. Grouped-query attention with fewer query rows than the
   widest fitting configuration holds (decode, short prompts) takes
   fused_gpu_decode, which fills a work-group with the group's other query
   heads and reads each K/V tile once for all of them (the flash kernel
   would take a narrower configuration, or idle rows, and read K/V once
   per query head); its configuration is picked for group * seq_q rows. */
static clattn_status plan_gpu(clattn_context *ctx, const sdpa_problem *p,
                              fused_plan *plan)
{
    const size_t width =
        p->head_dim > p->head_dim_v ? p->head_dim : p->head_dim_v;
    const size_t max_wg = ctx->info.max_work_group_size;
    const cl_ulong local = ctx->info.local_mem_bytes;
    int fits = 0;
    gpu_tiles forced;
    const char *from = gpu_tiles_override(ctx, gpu_tiles_pad(width), &forced);
    if (from) {
        plan->gqa_rows = p->group > 1 && p->seq_q < forced.bm;
        clattn_status s = CLATTN_SUCCESS;
        if (gpu_tiles_wg(&forced) <= max_wg &&
            gpu_tiles_local_bytes(&forced) <= local)
            s = gpu_try_config(ctx, &forced, plan, &fits);
        if (s || fits)
            return s;
        return ctx_error(
            ctx, CLATTN_ERROR_UNSUPPORTED,
            "fused-gpu: tiles %u:%u,%u,%u,%u from %s need %zu work-items "
            "and %zu bytes of local memory; the device or its build of "
            "them allows fewer (work-groups up to %zu, %llu bytes)",
            forced.d, forced.bm, forced.tm, forced.lanes, forced.bn, from,
            gpu_tiles_wg(&forced), gpu_tiles_local_bytes(&forced), max_wg,
            (unsigned long long)local);
    }
    const size_t count = gpu_tiles_count();
    size_t pick = gpu_tiles_pick(width, max_wg, local, p->seq_q);
    const size_t widest = gpu_tiles_next(width, max_wg, local, 0);
    plan->gqa_rows =
        p->group > 1 && widest < count && p->seq_q < gpu_tiles_at(widest)->bm;
    if (plan->gqa_rows)
        pick = gpu_tiles_pick(width, max_wg, local, unit_rows(p, plan));
    clattn_status s = CLATTN_SUCCESS;
    if (pick < count)
        s = gpu_try_config(ctx, gpu_tiles_at(pick), plan, &fits);
    for (size_t i = gpu_tiles_next(width, max_wg, local, 0);
         !s && !fits && i < count;
         i = gpu_tiles_next(width, max_wg, local, i + 1))
        if (i != pick)
            s = gpu_try_config(ctx, gpu_tiles_at(i), plan, &fits);
    if (s || fits)
        return s;
    return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                     "fused-gpu: no tile configuration for head dim %zu fits "
                     "the device (work-groups up to %zu, %llu bytes of local "
                     "memory)",
                     width, max_wg, (unsigned long long)local);
}

static void release_plan(clattn_context *ctx, fused_plan *plan)
{
    ctx_buffer_release(ctx, plan->key_len);
    ctx_buffer_release(ctx, plan->kp);
    ctx_buffer_release(ctx, plan->vp);
    ctx_buffer_release(ctx, plan->part);
    ctx_buffer_release(ctx, plan->rows);
}

/* The byte count of a buffer of n factors, or UNSUPPORTED when it does not
   fit one allocation. The problem's own tensors were checked, but with
   broadcast (stride-0) inputs their logical shapes may be far larger than
   any real buffer, and the padded copies made here may overflow size_t:
   that must never wrap to a small size. */
static clattn_status size_buffer(clattn_context *ctx, const char *what,
                                 const size_t *factors, size_t n, size_t *bytes)
{
    if (checked_product(factors, n, bytes))
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "fused path: %s would need more than SIZE_MAX "
                         "bytes in one buffer",
                         what);
    if (*bytes > ctx->info.max_alloc_bytes)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "fused path: %s needs %zu bytes in one buffer; the "
                         "device allocates at most %llu",
                         what, *bytes,
                         (unsigned long long)ctx->info.max_alloc_bytes);
    return CLATTN_SUCCESS;
}

/* Every buffer of the plan is sized (and refused) before any is made. */
static clattn_status plan_sizes(clattn_context *ctx, const sdpa_problem *p,
                                const fused_plan *plan, fused_bytes *b)
{
    const size_t f = sizeof(float);
    clattn_status s = CLATTN_SUCCESS;
    memset(b, 0, sizeof *b);
    if (p->key_lengths || p->cu_k) {
        const size_t kl[2] = {p->batch, sizeof(cl_int)};
        s = size_buffer(ctx, "key lengths", kl, 2, &b->key_len);
    }
    if (!s && plan->kind == FUSED_CPU_ROWS) {
        const size_t kp[5] = {p->batch, p->heads_kv, plan->nblk, FC_BK,
                              p->head_dim * f};
        const size_t vp[5] = {p->batch, p->heads_kv, plan->nblk, FC_BK,
                              plan->dv_pad * f};
        if (!(s = size_buffer(ctx, "packed K", kp, 5, &b->kp)))
            s = size_buffer(ctx, "packed V", vp, 5, &b->vp);
    }
    /* With probs on the recompute plan the rows always go through the
       partials (one slice or more): the weights kernel reads each row's
       max and sum from them. */
    if (!s && (plan->nsplit > 1 || (plan->probs && !plan->materialize))) {
        const size_t part[6] = {p->batch, p->heads_q,        plan->nsplit,
                                p->seq_q, p->head_dim_v + 2, f};
        s = size_buffer(ctx, "split partials", part, 6, &b->part);
    }
    if (!s && plan->head_mean) {
        const size_t rows[4] = {p->batch, p->seq_q, p->seq_kv, f};
        s = size_buffer(ctx, "head-mean scores", rows, 4, &b->rows);
    }
    return s;
}

static clattn_status plan_buffers(clattn_context *ctx, const sdpa_problem *p,
                                  const fused_bytes *b, fused_plan *plan)
{
    clattn_status s = CLATTN_SUCCESS;
    if (b->key_len) {
        /* a packed batch's from its offsets (the kernels' key padding) */
        int32_t *derived = p->cu_k ? sdpa_varlen_key_lengths(p) : NULL;
        if (p->cu_k && !derived)
            return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                             "no host memory for %zu key lengths", p->batch);
        s = ctx_buffer_make(ctx, "key lengths",
                            CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b->key_len,
                            derived ? derived : (void *)p->key_lengths,
                            &plan->key_len);
        free(derived);
    }
    if (!s && b->kp)
        s = ctx_buffer_make(ctx, "packed K", CL_MEM_READ_WRITE, b->kp, NULL,
                            &plan->kp);
    if (!s && b->vp)
        s = ctx_buffer_make(ctx, "packed V", CL_MEM_READ_WRITE, b->vp, NULL,
                            &plan->vp);
    if (!s && b->part)
        s = ctx_buffer_make(ctx, "split partials", CL_MEM_READ_WRITE, b->part,
                            NULL, &plan->part);
    if (!s && b->rows)
        s = ctx_buffer_make(ctx, "head-mean scores", CL_MEM_READ_WRITE, b->rows,
                            NULL, &plan->rows);
    return s;
}

/* The plan for probs on the CPU rows kernel, given its units (work-items
   of FC_RW rows) and the key splits the rows would take: materialize
   (one kernel, each score computed once; measured 1.3-1.5x faster than
   recompute, docs/performance.md) unless the units are fewer than the
   compute units and their keys split, so that only the recompute plan,
   which splits, keeps every unit busy. $CLATTN_SDPA_PROBS_PLAN pins
   either; a pinned materialize runs unsplit. */
int sdpa_fused_head_mean_fits(const clattn_context *ctx, const sdpa_problem *p)
{
    const size_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
    return ctx->op_settings.probs_plan != FUSED_PROBS_RECOMPUTE &&
           p->seq_q > 0 && p->batch * div_up(p->seq_q, FC_RW) >= cu;
}

static void choose_probs_plan(const clattn_context *ctx, size_t units,
                              fused_plan *plan)
{
    const int pin = ctx->op_settings.probs_plan;
    const size_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
    plan->materialize = pin == FUSED_PROBS_AUTO
                            ? plan->nsplit == 1 || units >= cu
                            : pin == FUSED_PROBS_MATERIALIZE;
    /* (sdpa_fused_head_mean_fits said yes before the plan was made) */
    plan->materialize |= plan->head_mean;
    if (plan->materialize) {
        plan->nsplit = 1;
        plan->split_keys = plan->nblk * FC_BK;
    }
}

/* Which kernel, its geometry, the key splits and the buffer sizes: every
   check, no allocation. */
static clattn_status plan_geometry(clattn_context *ctx, const sdpa_problem *p,
                                   clattn_sdpa_path variant, int probs,
                                   fused_plan *plan, fused_bytes *bytes)
{
    clattn_status s; /* plan was zeroed, all but its kernels */
    plan->probs = probs;
    if (variant == CLATTN_SDPA_PATH_FUSED_GPU) {
        plan->kind = FUSED_GPU_TILES;
        if ((s = plan_gpu(ctx, p, plan)))
            return s;
    } else if (cpu_decode(p, probs)) {
        plan->kind = FUSED_CPU_DECODE;
        plan->rows_per_unit = FD_ROWS;
        plan->gqa_rows = p->group > 1;
    } else {
        plan->kind = FUSED_CPU_ROWS;
        plan->rows_per_unit = FC_RW;
        plan->nblk = div_up(p->seq_kv, FC_BK);
        plan->dv_pad = div_up(p->head_dim_v, FC_BK) * FC_BK;
    }
    const size_t units =
        units_of(p, plan) * div_up(unit_rows(p, plan), plan->rows_per_unit);
    /* Slices start on a packed block (rows) or a 16-key step (decode); the
       GPU kernel takes any start, 64 keeps tiles whole. */
    choose_splits(ctx, p, units, plan->kind == FUSED_CPU_DECODE ? 16 : FC_BK,
                  plan);
    if (probs && plan->kind == FUSED_CPU_ROWS)
        choose_probs_plan(ctx, units, plan);
    return plan_sizes(ctx, p, plan, bytes);
}

/* The masks (bool, additive, view), key lengths and the problem's
   dimensions up to head_dim: the same run of parameters in every kernel
   that scores (the attention, weights and probs kernels). */
static void arg_masks_dims(kernel_args *a, const sdpa_problem *p,
                           const sdpa_views *v, const fused_plan *plan)
{
    arg_mem(a, p->mask_type == CLATTN_MASK_BOOL ? v->mask.buffer : NULL);
    arg_mem(a, p->mask_type == CLATTN_MASK_ADDITIVE ? v->mask.buffer : NULL);
    arg_ulong(a, v->mask.offset);
    for (int i = 0; i < 3; ++i)
        arg_ulong(a, v->mask.strides[i]);
    arg_mem(a, plan->key_len);
    arg_uint(a, (cl_uint)p->heads_q);
    arg_uint(a, (cl_uint)p->group);
    arg_uint(a, (cl_uint)p->seq_q);
    arg_uint(a, (cl_uint)p->seq_kv);
    arg_uint(a, (cl_uint)p->head_dim);
}

/* Scale, causal limit and dropout, the run that follows the dimensions. */
static void arg_scale_dropout(kernel_args *a, const sdpa_problem *p)
{
    arg_float(a, p->scale);
    /* the alignment too: a packed batch aligns each sequence itself */
    arg_int(a, (cl_int)p->causal);
    arg_long(a, p->causal_shift);
    arg_uint(a, p->drop_threshold);
    arg_float(a, p->drop_scale);
    arg_ulong(a, p->drop_seed);
    arg_ulong(a, p->drop_offset);
}

/* Arguments shared by every attention kernel, after Q (and K, V). */
static void arg_tail(kernel_args *a, const sdpa_problem *p, const sdpa_views *v,
                     const fused_plan *plan)
{
    arg_view(a, &v->out);
    arg_view(a, &v->lse);
    arg_masks_dims(a, p, v, plan);
    arg_uint(a, (cl_uint)p->head_dim_v);
    if (plan->kind == FUSED_CPU_ROWS) {
        arg_uint(a, (cl_uint)plan->dv_pad);
        arg_uint(a, (cl_uint)plan->nblk);
    }
    arg_scale_dropout(a, p);
    arg_uint(a, (cl_uint)plan->split_keys);
    arg_mem(a, plan->part);
}

/* All arguments of the attention kernel; *bh_arg is the index of its
   bh_begin argument, set per launch. With splits the kernel writes only the
   partials, and the merge writes out and lse. */
static clattn_status set_attention_args(clattn_context *ctx, cl_kernel k,
                                        const sdpa_problem *p,
                                        const sdpa_views *v,
                                        const fused_plan *plan, cl_uint *bh_arg)
{
    kernel_args a = args_begin(k);
    arg_view(&a, &v->q);
    if (plan->kind == FUSED_CPU_ROWS) {
        arg_mem(&a, plan->kp);
        arg_mem(&a, plan->vp);
    } else {
        arg_view(&a, &v->k);
        arg_view(&a, &v->v);
    }
    arg_tail(&a, p, v, plan);
    *bh_arg = a.index;
    arg_uint(&a, 0);
    if (plan->kind != FUSED_CPU_ROWS) /* reads K and V in place */
        arg_kv_pages(&a, &p->pages, v->kv_table);
    arg_varlen(&a, p, v->cu_q, v->cu_k);
    if (a.err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clSetKernelArg (fused attention)", a.err);
    return CLATTN_SUCCESS;
}

/* Enqueues kernel over (dim0, bh, dim2) in chunks of (batch, head) pairs,
   each waiting on the one before; *last is the final event. */
static clattn_status enqueue_chunks(clattn_context *ctx, cl_command_queue queue,
                                    cl_kernel k, const char *name,
                                    cl_uint bh_arg, size_t bh_total,
                                    size_t dim0, size_t local0, size_t dim2,
                                    cl_uint num_wait, const cl_event *wait,
                                    cl_event *last)
{
    cl_event prev = NULL;
    for (size_t bh = 0; bh < bh_total; bh += GRID_DIM_MAX) {
        cl_uint begin = (cl_uint)bh;
        cl_int err = clSetKernelArg(k, bh_arg, sizeof begin, &begin);
        const size_t global[3] = {dim0, min_size(GRID_DIM_MAX, bh_total - bh),
                                  dim2};
        const size_t local[3] = {local0, 1, 1};
        cl_event next = NULL;
        if (err == CL_SUCCESS)
            err = clEnqueueNDRangeKernel(
                queue, k, 3, NULL, global, local0 ? local : NULL,
                prev ? 1 : num_wait, prev ? &prev : wait, &next);
        if (prev)
            clReleaseEvent(prev);
        prev = next;
        if (err != CL_SUCCESS) {
            char call[96];
            snprintf(call, sizeof call, "clEnqueueNDRangeKernel (%s)", name);
            return ctx_cl_error(ctx, call, err);
        }
    }
    *last = prev;
    return CLATTN_SUCCESS;
}

/* Enqueues the kernel of a, whose arguments are set but its last, the
   bh_begin that enqueue_chunks sets per chunk, over (dim0, bh_total, 1). */
static clattn_status launch_chunked(clattn_context *ctx, cl_command_queue queue,
                                    kernel_args *a, const char *name,
                                    size_t bh_total, size_t dim0, size_t local0,
                                    cl_uint num_wait, const cl_event *wait,
                                    cl_event *done)
{
    arg_uint(a, 0);
    if (a->err != CL_SUCCESS) {
        char call[96];
        snprintf(call, sizeof call, "clSetKernelArg (%s)", name);
        return ctx_cl_error(ctx, call, a->err);
    }
    return enqueue_chunks(ctx, queue, a->kernel, name, a->index - 1, bh_total,
                          dim0, local0, 1, num_wait, wait, done);
}

clattn_status sdpa_enqueue_pack_kv(clattn_context *ctx, cl_command_queue queue,
                                   cl_kernel k, const sdpa_problem *p,
                                   const sdpa_views *v, cl_mem kp, cl_mem vp,
                                   size_t nblk, size_t dv_pad, cl_uint num_wait,
                                   const cl_event *wait, cl_event *done)
{
    kernel_args a = args_begin(k);
    arg_view(&a, &v->k);
    arg_view(&a, &v->v);
    arg_kv_pages(&a, &p->pages, v->kv_table);
    arg_mem(&a, kp);
    arg_mem(&a, vp);
    arg_uint(&a, (cl_uint)p->heads_kv);
    arg_uint(&a, (cl_uint)p->seq_kv);
    arg_uint(&a, (cl_uint)p->head_dim);
    arg_uint(&a, (cl_uint)p->head_dim_v);
    arg_uint(&a, (cl_uint)dv_pad);
    arg_uint(&a, (cl_uint)nblk);
    arg_varlen(&a, p, v->cu_q, v->cu_k);
    /* Groups of up to a block's 64 keys (PoCL vectorizes across them:
       their stores are contiguous), as the device allows. */
    size_t local = 1;
    while (local * 2 <= min_size(FC_BK, ctx->info.max_work_group_size))
        local *= 2;
    return launch_chunked(ctx, queue, &a, "fused_pack_kv",
                          p->batch * p->heads_kv, nblk * FC_BK, local, num_wait,
                          wait, done);
}

static clattn_status enqueue_pack(clattn_context *ctx, cl_command_queue queue,
                                  cl_kernel k, const sdpa_problem *p,
                                  const sdpa_views *v, const fused_plan *plan,
                                  cl_uint num_wait, const cl_event *wait,
                                  cl_event *done)
{
    return sdpa_enqueue_pack_kv(ctx, queue, k, p, v, plan->kp, plan->vp,
                                plan->nblk, plan->dv_pad, num_wait, wait, done);
}

static clattn_status enqueue_merge(clattn_context *ctx, cl_command_queue queue,
                                   cl_kernel k, const sdpa_problem *p,
                                   const sdpa_views *v, const fused_plan *plan,
                                   cl_event *wait, cl_event *done)
{
    kernel_args a = args_begin(k);
    arg_mem(&a, plan->part);
    arg_uint(&a, (cl_uint)plan->nsplit);
    arg_view(&a, &v->out);
    arg_view(&a, &v->lse);
    arg_uint(&a, (cl_uint)p->heads_q);
    arg_uint(&a, (cl_uint)p->seq_q);
    arg_uint(&a, (cl_uint)p->head_dim_v);
    arg_varlen(&a, p, v->cu_q, v->cu_k);
    return launch_chunked(ctx, queue, &a, "fused_merge", p->batch * p->heads_q,
                          p->seq_q, 0, 1, wait, done);
}

/* probs: the CPU rows kernel at any seq_q (fused_cpu_weights reads its
   packed K), and the weights kernel. */
static clattn_status create_kernels(clattn_context *ctx,
                                    clattn_sdpa_path variant,
                                    const sdpa_problem *p, int probs,
                                    fused_plan *k)
{
    clattn_status s;
    program_id prog = variant == CLATTN_SDPA_PATH_FUSED_GPU
                          ? PROGRAM_SDPA_FUSED_GPU
                          : PROGRAM_SDPA_FUSED_CPU;
    if (prog == PROGRAM_SDPA_FUSED_CPU)
        sdpa_kv_options_cpu(p, k->kv_options, sizeof k->kv_options);
    else
        sdpa_kv_options(p, k->kv_options, sizeof k->kv_options);
    const char *kv = k->kv_options;
    /* The GPU kernel is a build variant per head dim: plan_gpu gets it. */
    const char *cpu_name = !cpu_decode(p, probs) ? "fused_cpu_rows"
                           : p->group > 1        ? "fused_cpu_decode_gqa"
                                                 : "fused_cpu_decode";
    if (prog == PROGRAM_SDPA_FUSED_CPU &&
        (s = program_kernel_variant(ctx, prog, kv, cpu_name, &k->attention)))
        return s;
    if (prog == PROGRAM_SDPA_FUSED_CPU && probs &&
        ((s = program_kernel(ctx, prog, "fused_cpu_weights", &k->weights)) ||
         (s = program_kernel(ctx, prog, "fused_cpu_probs", &k->probs_kernel))))
        return s;
    /* (the merge reads no K or V: varlen is its only variant) */
    char merge_options[32] = "";
    sdpa_varlen_options(p, merge_options, sizeof merge_options);
    if ((s = program_kernel_variant(ctx, prog, merge_options, "fused_merge",
                                    &k->merge)))
        return s;
    if (prog == PROGRAM_SDPA_FUSED_CPU &&
        (s = program_kernel_variant(ctx, prog, kv, "fused_pack_kv", &k->pack)))
        return s;
    return CLATTN_SUCCESS;
}

static void release_kernels(fused_plan *k)
{
    cl_kernel all[5] = {k->pack, k->attention, k->merge, k->weights,
                        k->probs_kernel};
    for (int i = 0; i < 5; ++i)
        if (all[i])
            clReleaseKernel(all[i]);
    k->pack = k->attention = k->merge = k->weights = k->probs_kernel = NULL;
}

/* The weights of every row, from the partials' max and sum once the
   attention (and merge) are done (wait). */
static clattn_status enqueue_weights(clattn_context *ctx,
                                     cl_command_queue queue, cl_kernel k,
                                     const sdpa_problem *p, const sdpa_views *v,
                                     const fused_plan *plan, cl_event *wait,
                                     cl_event *done)
{
    kernel_args a = args_begin(k);
    arg_view(&a, &v->q);
    arg_mem(&a, plan->kp);
    arg_mem(&a, plan->part);
    arg_uint(&a, (cl_uint)plan->nsplit);
    arg_uint(&a, (cl_uint)p->head_dim_v);
    arg_view(&a, &v->probs);
    arg_masks_dims(&a, p, v, plan);
    arg_uint(&a, (cl_uint)plan->nblk);
    arg_scale_dropout(&a, p);
    return launch_chunked(ctx, queue, &a, "fused_cpu_weights",
                          p->batch * p->heads_q, div_up(p->seq_q, FC_RW), 1, 1,
                          wait, done);
}

/* The materialize plan: scores, softmax and P V of every row in one
   kernel, after the pack (wait). */
static clattn_status enqueue_probs(clattn_context *ctx, cl_command_queue queue,
                                   cl_kernel k, const sdpa_problem *p,
                                   const sdpa_views *v, const fused_plan *plan,
                                   cl_event *wait, cl_event *done)
{
    kernel_args a = args_begin(k);
    arg_view(&a, &v->q);
    arg_mem(&a, plan->kp);
    arg_mem(&a, plan->vp);
    arg_view(&a, &v->out);
    arg_view(&a, &v->lse);
    if (plan->head_mean) {
        /* the scores of every head in one scratch row block per (batch,
           row block): head stride 0; the mean view is [b][i][j] */
        arg_mem(&a, plan->rows);
        arg_ulong(&a, 0);
        arg_ulong(&a, (cl_ulong)(p->seq_q * p->seq_kv));
        arg_ulong(&a, 0);
        arg_ulong(&a, (cl_ulong)p->seq_kv);
        arg_mem(&a, v->probs.buffer);
        arg_ulong(&a, v->probs.offset);
        arg_ulong(&a, v->probs.strides[0]);
        arg_ulong(&a, v->probs.strides[2]);
    } else {
        arg_view(&a, &v->probs);
        arg_mem(&a, NULL);
        for (int i = 0; i < 3; ++i)
            arg_ulong(&a, 0);
    }
    arg_masks_dims(&a, p, v, plan);
    arg_uint(&a, (cl_uint)p->head_dim_v);
    arg_uint(&a, (cl_uint)plan->dv_pad);
    arg_uint(&a, (cl_uint)plan->nblk);
    arg_scale_dropout(&a, p);
    return launch_chunked(ctx, queue, &a, "fused_cpu_probs",
                          plan->head_mean ? p->batch : p->batch * p->heads_q,
                          div_up(p->seq_q, FC_RW), 1, 1, wait, done);
}

static clattn_status enqueue_all(clattn_context *ctx, cl_command_queue queue,
                                 const sdpa_problem *p, const sdpa_views *v,
                                 const fused_plan *plan, cl_uint num_wait,
                                 const cl_event *wait, cl_event *done)
{
    const fused_plan *k = plan;
    cl_uint bh_arg;
    clattn_status s =
        set_attention_args(ctx, k->attention, p, v, plan, &bh_arg);
    if (s)
        return s;
    cl_event packed = NULL, attended = NULL;
    if (plan->kind == FUSED_CPU_ROWS) {
        s = enqueue_pack(ctx, queue, k->pack, p, v, plan, num_wait, wait,
                         &packed);
        if (s)
            return s;
    }
    if (plan->materialize) {
        s = enqueue_probs(ctx, queue, k->probs_kernel, p, v, plan, &packed,
                          done);
        clReleaseEvent(packed);
        return s;
    }
    const int gpu = plan->kind == FUSED_GPU_TILES;
    const size_t units0 = div_up(unit_rows(p, plan), plan->rows_per_unit);
    const size_t dim0 = gpu ? units0 * plan->wg : units0;
    s = enqueue_chunks(
        ctx, queue, k->attention, "fused attention", bh_arg, units_of(p, plan),
        dim0, plan->kind == FUSED_GPU_TILES ? plan->wg : 1, plan->nsplit,
        packed ? 1 : num_wait, packed ? &packed : wait, &attended);
    if (packed)
        clReleaseEvent(packed);
    if (s)
        return s;
    if (plan->part) {
        cl_event merged = NULL;
        s = enqueue_merge(ctx, queue, k->merge, p, v, plan, &attended, &merged);
        clReleaseEvent(attended);
        if (s)
            return s;
        attended = merged;
    }
    if (plan->probs) {
        s = enqueue_weights(ctx, queue, k->weights, p, v, plan, &attended,
                            done);
        clReleaseEvent(attended);
        return s;
    }
    *done = attended;
    return CLATTN_SUCCESS;
}

clattn_status sdpa_fused_prepare(clattn_context *ctx, sdpa_plan *plan)
{
    const sdpa_problem *p = &plan->problem;
    fused_plan *f = &plan->u.fused;
    fused_bytes bytes;
    clattn_status s;
    memset(f, 0, sizeof *f);
    const int probs = plan->views.probs.buffer != NULL;
    f->head_mean = plan->views.probs_head_mean;
    if (!(s = create_kernels(ctx, plan->variant->path, p, probs, f)) &&
        !(s = plan_geometry(ctx, p, plan->variant->path, probs, f, &bytes)))
        s = plan_buffers(ctx, p, &bytes, f);
    if (s)
        sdpa_fused_release(ctx, plan);
    return s;
}

clattn_status sdpa_fused_launch(clattn_context *ctx, const sdpa_plan *plan,
                                cl_uint num_wait, const cl_event *wait,
                                cl_event *done)
{
    cl_event last = NULL;
    clattn_status s =
        enqueue_all(ctx, plan->queue, &plan->problem, &plan->views,
                    &plan->u.fused, num_wait, wait, &last);
    if (s == CLATTN_SUCCESS && done)
        *done = last;
    else if (last)
        clReleaseEvent(last);
    return s;
}

/* Released buffers live until the enqueued kernels finish. */
void sdpa_fused_release(clattn_context *ctx, sdpa_plan *plan)
{
    fused_plan *f = &plan->u.fused;
    release_plan(ctx, f);
    release_kernels(f);
    memset(f, 0, sizeof *f);
}

clattn_status sdpa_fused_plan_bytes(clattn_context *ctx, const sdpa_problem *p,
                                    clattn_sdpa_path variant, size_t *total)
{
    fused_plan plan;
    fused_bytes b;
    memset(&plan, 0, sizeof plan);
    clattn_status s = create_kernels(ctx, variant, p, 0, &plan);
    if (!s)
        s = plan_geometry(ctx, p, variant, 0, &plan, &b);
    release_kernels(&plan);
    size_t sum = 0;
    if (!s &&
        (checked_add(b.key_len, b.kp, &sum) || checked_add(sum, b.vp, &sum) ||
         checked_add(sum, b.part, &sum) || checked_add(sum, b.rows, &sum)))
        s = ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                      "fused path: its buffers together exceed SIZE_MAX");
    if (!s)
        *total = sum;
    return s;
}
