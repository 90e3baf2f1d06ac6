/* Paged K/V caches (clattn_kv_pages): checking a block table against a
   request, making the device copy the kernels read, and the kernel
   arguments of a paged build (cl/core/kv_pages.clh). */
#ifndef CLATTN_SDPA_PAGES_H
#define CLATTN_SDPA_PAGES_H

#include "clattn/clattn.h"
#include "kernel_args.h"

/* The largest block size accepted. */
#define KV_BLOCK_SIZE_MAX 4096

/* Checks pages for batch sequences whose first lengths[b] keys (NULL:
   seq_kv each) are read: the fields consistent (all zero when
   block_size is 0), the table covering seq_kv keys, and the entries of
   the blocks holding those keys in [0, num_blocks). what names the
   struct in the error text ("kv_pages"). */
clattn_status sdpa_pages_check(clattn_context *ctx, const clattn_kv_pages *pg,
                               size_t batch, size_t seq_kv,
                               const int32_t *lengths, const char *what);

/* The parts of sdpa_pages_check: the fields alone (for seq_kv keys per
   sequence), and entry i of sequence b's row. */
clattn_status sdpa_pages_check_fields(clattn_context *ctx,
                                      const clattn_kv_pages *pg, size_t batch,
                                      size_t seq_kv, const char *what);
clattn_status sdpa_pages_check_entry(clattn_context *ctx,
                                     const clattn_kv_pages *pg, size_t b,
                                     size_t i, const char *what);

/* The device copy of a checked table for batch sequences of lengths[b]
   (NULL: seq_kv) keys: the entries of blocks no key below the length
   lies in are zeros, so that a kernel that reads a masked key (past the
   length, or the last key repeated) stays in the pool. */
clattn_status sdpa_pages_upload(clattn_context *ctx, const clattn_kv_pages *pg,
                                size_t batch, size_t seq_kv,
                                const int32_t *lengths, cl_mem *table);

/* The three trailing parameters of a paged build (KV_PAGE_PARAMS); none
   when pg is not paged. */
static inline void arg_kv_pages(kernel_args *a, const clattn_kv_pages *pg,
                                cl_mem table)
{
    if (!pg->block_size)
        return;
    arg_mem(a, table);
    arg_uint(a, (cl_uint)pg->blocks_per_seq);
    arg_uint(a, (cl_uint)pg->block_size);
}

/* " -DKV_PAGED=1" appended to a build's options when paged. */
void sdpa_pages_options(const clattn_kv_pages *pg, char *buf, size_t cap);

#endif
