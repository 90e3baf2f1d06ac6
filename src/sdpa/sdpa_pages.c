/* Block tables of paged K/V caches: every check on the host, before
   anything is enqueued, and the sanitized copy the kernels read. */
#include "sdpa_pages.h"
#include "checked_math.h"
#include "context_internal.h"
#include "device_memory.h"
#include "sdpa_problem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t key_count(const int32_t *lengths, size_t b, size_t seq_kv)
{
    return lengths ? (size_t)lengths[b] : seq_kv;
}

clattn_status sdpa_pages_check_fields(clattn_context *ctx,
                                      const clattn_kv_pages *pg, size_t batch,
                                      size_t seq_kv, const char *what)
{
    if (!pg->block_size) {
        if (pg->num_blocks || pg->blocks_per_seq || pg->block_table)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s.block_size is 0 (no paging) but its other "
                             "fields are set",
                             what);
        return CLATTN_SUCCESS;
    }
    if (pg->block_size > KV_BLOCK_SIZE_MAX)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s.block_size is %zu: must be 1 to %d", what,
                         pg->block_size, KV_BLOCK_SIZE_MAX);
    if (!pg->block_table)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s.block_table is NULL", what);
    if (pg->num_blocks == 0 || pg->num_blocks > (size_t)INT32_MAX)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s.num_blocks is %zu: must be 1 to %d", what,
                         pg->num_blocks, (int)INT32_MAX);
    size_t covered, entries;
    if (pg->blocks_per_seq == 0 ||
        checked_mul(pg->blocks_per_seq, pg->block_size, &covered) ||
        checked_mul(pg->blocks_per_seq, batch, &entries) ||
        entries > (size_t)INT32_MAX || covered < seq_kv)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s: blocks_per_seq (%zu) blocks of %zu tokens must "
                         "cover the %zu keys of a sequence, and the table "
                         "(%zu sequences) hold at most %d entries",
                         what, pg->blocks_per_seq, pg->block_size, seq_kv,
                         batch, (int)INT32_MAX);
    return CLATTN_SUCCESS;
}

clattn_status sdpa_pages_check_entry(clattn_context *ctx,
                                     const clattn_kv_pages *pg, size_t b,
                                     size_t i, const char *what)
{
    const int32_t id = pg->block_table[b * pg->blocks_per_seq + i];
    if (id < 0 || (size_t)id >= pg->num_blocks)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s.block_table[%zu][%zu] is %d: must be in [0, %zu) "
                         "(it holds keys of sequence %zu)",
                         what, b, i, (int)id, pg->num_blocks, b);
    return CLATTN_SUCCESS;
}

clattn_status sdpa_pages_check(clattn_context *ctx, const clattn_kv_pages *pg,
                               size_t batch, size_t seq_kv,
                               const int32_t *lengths, const char *what)
{
    clattn_status s = sdpa_pages_check_fields(ctx, pg, batch, seq_kv, what);
    if (s || !pg->block_size)
        return s;
    for (size_t b = 0; b < batch; ++b) {
        const size_t keys = key_count(lengths, b, seq_kv);
        const size_t used = (keys + pg->block_size - 1) / pg->block_size;
        for (size_t i = 0; i < used; ++i)
            if ((s = sdpa_pages_check_entry(ctx, pg, b, i, what)))
                return s;
    }
    return CLATTN_SUCCESS;
}

clattn_status sdpa_pages_upload(clattn_context *ctx, const clattn_kv_pages *pg,
                                size_t batch, size_t seq_kv,
                                const int32_t *lengths, cl_mem *table)
{
    const size_t entries = batch * pg->blocks_per_seq; /* checked */
    int32_t *copy = calloc(entries, sizeof *copy);
    if (!copy)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "no host memory for a copy of the block table "
                         "(%zu entries)",
                         entries);
    for (size_t b = 0; b < batch; ++b) {
        const size_t keys = key_count(lengths, b, seq_kv);
        const size_t used = (keys + pg->block_size - 1) / pg->block_size;
        memcpy(copy + b * pg->blocks_per_seq,
               pg->block_table + b * pg->blocks_per_seq, used * sizeof *copy);
    }
    clattn_status s = ctx_buffer_make(ctx, "block table",
                                      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                      entries * sizeof *copy, copy, table);
    free(copy);
    return s;
}

void sdpa_pages_options(const clattn_kv_pages *pg, char *buf, size_t cap)
{
    if (pg->block_size)
        sdpa_options_append(buf, cap, "-DKV_PAGED=1");
}
