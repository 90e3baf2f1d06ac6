/* clattn_kv_append: new tokens' K and V into a contiguous or paged cache
   (cl/sdpa/kv_append.cl). Every check runs before the one enqueue, so a
   refused call writes nothing. */
#include "checked_math.h"
#include "context_internal.h"
#include "device_memory.h"
#include "kernel_args.h"
#include "program_cache.h"
#include "sdpa_pages.h"
#include "sdpa_problem.h"
#include "sdpa_rope.h"
#include "struct_size.h"
#include "tensor_view.h"
#include "wait_list.h"

#include <stdlib.h>
#include <string.h>

void clattn_kv_append_desc_init(clattn_kv_append_desc *desc)
{
    if (desc) {
        memset(desc, 0, sizeof *desc);
        desc->struct_size = sizeof *desc;
    }
}

/* The kernel indexes tokens, keys and work-items with 32-bit integers. */
#define APPEND_INDEX_MAX ((size_t)INT32_MAX)

static clattn_status check_shape(clattn_context *ctx,
                                 const clattn_kv_append_desc *d)
{
    const size_t dims[5] = {d->batch, d->heads_kv, d->new_tokens, d->head_dim,
                            d->head_dim_v};
    static const char *names[5] = {"batch", "heads_kv", "new_tokens",
                                   "head_dim", "head_dim_v"};
    for (int i = 0; i < 5; ++i)
        if (dims[i] == 0 || dims[i] > APPEND_INDEX_MAX)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                             "%s is %zu: must be 1 to %zu", names[i], dims[i],
                             APPEND_INDEX_MAX);
    size_t items;
    if (checked_mul(d->batch, d->heads_kv, &items) ||
        checked_mul(items, d->new_tokens, &items) || items > APPEND_INDEX_MAX)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "batch * heads_kv * new_tokens exceeds %zu",
                         APPEND_INDEX_MAX);
    return sdpa_check_kv_dtypes(ctx, d->k_dtype, d->v_dtype);
}

/* Positions in range; *end gets the largest position + new_tokens. */
static clattn_status check_positions(clattn_context *ctx,
                                     const clattn_kv_append_desc *d,
                                     size_t capacity, size_t *end)
{
    if (!d->positions)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "positions is NULL");
    *end = 0;
    for (size_t b = 0; b < d->batch; ++b) {
        const int32_t at = d->positions[b];
        if (at < 0 || (size_t)at > capacity ||
            d->new_tokens > capacity - (size_t)at)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "positions[%zu] is %d: %zu new tokens from there "
                             "do not fit the cache's %zu positions",
                             b, (int)at, d->new_tokens, capacity);
        if ((size_t)at + d->new_tokens > *end)
            *end = (size_t)at + d->new_tokens;
    }
    return CLATTN_SUCCESS;
}

typedef struct written_block {
    int32_t id;
    size_t b, i; /* the table entry it was reached through */
} written_block;

static int by_id(const void *x, const void *y)
{
    const written_block *a = x, *b = y;
    return (a->id > b->id) - (a->id < b->id);
}

/* The table entries of every block the call writes in range, and no
   physical block reached through two entries (its slots could be written
   twice, by two work-items at once). */
static clattn_status check_written_blocks(clattn_context *ctx,
                                          const clattn_kv_append_desc *d)
{
    const clattn_kv_pages *pg = &d->pages;
    size_t count = 0;
    for (size_t b = 0; b < d->batch; ++b) {
        const size_t first = (size_t)d->positions[b] / pg->block_size;
        const size_t last =
            ((size_t)d->positions[b] + d->new_tokens - 1) / pg->block_size;
        count += last - first + 1;
    }
    written_block *w = malloc(count * sizeof *w);
    if (!w)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "no host memory to check %zu written blocks", count);
    clattn_status s = CLATTN_SUCCESS;
    size_t n = 0;
    for (size_t b = 0; b < d->batch && !s; ++b) {
        const size_t first = (size_t)d->positions[b] / pg->block_size;
        const size_t last =
            ((size_t)d->positions[b] + d->new_tokens - 1) / pg->block_size;
        for (size_t i = first; i <= last && !s; ++i) {
            s = sdpa_pages_check_entry(ctx, pg, b, i, "pages");
            w[n].id = pg->block_table[b * pg->blocks_per_seq + i];
            w[n].b = b;
            w[n++].i = i;
        }
    }
    if (!s) {
        qsort(w, n, sizeof *w, by_id);
        for (size_t k = 1; k < n && !s; ++k)
            if (w[k].id == w[k - 1].id)
                s = ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                              "pages: block %d is written through "
                              "block_table[%zu][%zu] and [%zu][%zu] in one "
                              "call (give each sequence its own block to "
                              "append to)",
                              (int)w[k].id, w[k - 1].b, w[k - 1].i, w[k].b,
                              w[k].i);
    }
    free(w);
    return s;
}

typedef struct append_views {
    checked_view k_new, v_new, k_cache, v_cache;
} append_views;

static clattn_status check_views(clattn_context *ctx,
                                 const clattn_kv_append_desc *d,
                                 const clattn_tensor *tensors[4],
                                 append_views *v)
{
    static const char *names[4] = {"k_new", "v_new", "k_cache", "v_cache"};
    for (int i = 0; i < 4; ++i)
        if (!tensors[i])
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "%s is NULL",
                             names[i]);
    const int paged = d->pages.block_size != 0;
    const size_t rows = paged ? d->pages.num_blocks : d->batch;
    const size_t seq = paged ? d->pages.block_size : d->cache_seq;
    const size_t dims[4][4] = {
        {d->batch, d->heads_kv, d->new_tokens, d->head_dim},
        {d->batch, d->heads_kv, d->new_tokens, d->head_dim_v},
        {rows, d->heads_kv, seq, d->head_dim},
        {rows, d->heads_kv, seq, d->head_dim_v}};
    const size_t elem[4] = {sizeof(float), sizeof(float),
                            sdpa_dtype_size(d->k_dtype),
                            sdpa_dtype_size(d->v_dtype)};
    checked_view *out[4] = {&v->k_new, &v->v_new, &v->k_cache, &v->v_cache};
    clattn_status s;
    for (int i = 0; i < 4; ++i)
        if ((s = view_check(ctx, names[i], tensors[i], dims[i], elem[i], i >= 2,
                            out[i])))
            return s;
    for (int o = 2; o < 4; ++o)
        for (int i = 0; i < 4; ++i)
            if (i != o && views_intersect(out[o], out[i]))
                return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                                 "%s overlaps %s in the same buffer", names[o],
                                 names[i]);
    return CLATTN_SUCCESS;
}

static clattn_status check_request(clattn_context *ctx,
                                   const clattn_kv_append_desc *d,
                                   const clattn_tensor *tensors[4],
                                   append_views *v)
{
    clattn_status s = check_shape(ctx, d);
    if (s)
        return s;
    const clattn_kv_pages *pg = &d->pages;
    size_t capacity = d->cache_seq, end = 0;
    if (pg->block_size) {
        if (d->cache_seq)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "cache_seq is %zu with a paged cache: the block "
                             "table sets the capacity (leave it 0)",
                             d->cache_seq);
        if ((s = sdpa_pages_check_fields(ctx, pg, d->batch, 1, "pages")))
            return s;
        capacity = pg->blocks_per_seq * pg->block_size; /* checked */
    } else if ((s = sdpa_pages_check_fields(ctx, pg, d->batch, 0, "pages"))) {
        return s;
    } else if (d->cache_seq == 0 || d->cache_seq > APPEND_INDEX_MAX) {
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "cache_seq is %zu: a contiguous cache needs 1 to %zu "
                         "positions",
                         d->cache_seq, APPEND_INDEX_MAX);
    }
    if ((s = check_positions(ctx, d, capacity, &end)) ||
        (pg->block_size && (s = check_written_blocks(ctx, d))))
        return s;
    if (d->rope.style != CLATTN_ROPE_NONE && end > ROPE_POSITION_LIMIT)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "rope: the new tokens reach position %zu; rotary "
                         "positions stay below 2^24",
                         end - 1);
    return check_views(ctx, d, tensors, v);
}

static clattn_status enqueue(clattn_context *ctx,
                             const clattn_kv_append_desc *d,
                             const append_views *v, cl_uint num_wait,
                             const cl_event *wait, cl_event *event)
{
    sdpa_problem types;
    memset(&types, 0, sizeof types);
    types.k_dtype = d->k_dtype;
    types.v_dtype = d->v_dtype;
    types.pages = d->pages;
    char options[96];
    sdpa_kv_options(&types, options, sizeof options);
    cl_kernel k = NULL;
    cl_mem positions = NULL, table = NULL, turns = NULL;
    clattn_status s = program_kernel_variant(ctx, PROGRAM_KV_APPEND, options,
                                             "kv_append", &k);
    if (!s && d->rope.style != CLATTN_ROPE_NONE)
        s = rope_turns_upload(ctx, &d->rope, &turns);
    if (!s)
        s = ctx_buffer_make(
            ctx, "append positions", CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
            d->batch * sizeof(int32_t), (void *)d->positions, &positions);
    /* The written entries were checked; the rest of the copy is zeros. */
    if (!s && d->pages.block_size) {
        int32_t *ends = malloc(d->batch * sizeof *ends);
        if (!ends)
            s = ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                          "no host memory for the append's block table");
        for (size_t b = 0; ends && b < d->batch; ++b)
            ends[b] = d->positions[b] + (int32_t)d->new_tokens;
        if (!s)
            s = sdpa_pages_upload(ctx, &d->pages, d->batch,
                                  d->pages.blocks_per_seq * d->pages.block_size,
                                  ends, &table);
        free(ends);
    }
    if (!s) {
        kernel_args a = args_begin(k);
        arg_view(&a, &v->k_new);
        arg_view(&a, &v->v_new);
        arg_view(&a, &v->k_cache);
        arg_view(&a, &v->v_cache);
        arg_kv_pages(&a, &d->pages, table);
        arg_mem(&a, positions);
        arg_uint(&a, (cl_uint)d->heads_kv);
        arg_uint(&a, (cl_uint)d->new_tokens);
        arg_uint(&a, (cl_uint)d->head_dim);
        arg_uint(&a, (cl_uint)d->head_dim_v);
        arg_mem(&a, turns);
        arg_uint(&a, (cl_uint)d->rope.style);
        arg_uint(&a, (cl_uint)d->rope.rotary_dim);
        const size_t global = d->batch * d->heads_kv * d->new_tokens;
        cl_int err = a.err;
        if (err == CL_SUCCESS)
            err = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global, NULL,
                                         num_wait, wait, event);
        if (err != CL_SUCCESS)
            s = ctx_cl_error(ctx, "kv_append", err);
    }
    /* Released buffers live until the kernel finishes. */
    ctx_buffer_release(ctx, positions);
    ctx_buffer_release(ctx, table);
    ctx_buffer_release(ctx, turns);
    if (k)
        clReleaseKernel(k);
    return s;
}

clattn_status
clattn_kv_append(clattn_context *ctx, const clattn_kv_append_desc *desc,
                 const clattn_tensor *k_new, const clattn_tensor *v_new,
                 const clattn_tensor *k_cache, const clattn_tensor *v_cache,
                 cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    CTX_CHECK_USABLE(ctx);
    if (!desc)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "desc is NULL");
    clattn_kv_append_desc d;
    clattn_kv_append_desc_init(&d);
    clattn_status s =
        ctx_struct_copy_in(ctx, &d, sizeof d, KV_APPEND_DESC_OLDEST_SIZE, desc,
                           "clattn_kv_append_desc");
    if (s)
        return s;
    if (!d.head_dim_v)
        d.head_dim_v = d.head_dim;
    clattn_rope given_rope = d.rope;
    const clattn_tensor *tensors[4] = {k_new, v_new, k_cache, v_cache};
    append_views v;
    if ((s = wait_list_check(ctx, num_wait, wait)) ||
        (s = rope_check(ctx, &given_rope, d.head_dim, "rope", &d.rope)) ||
        (s = check_request(ctx, &d, tensors, &v)))
        return s;
    if (event)
        *event = NULL;
    return enqueue(ctx, &d, &v, num_wait, wait, event);
}
