/* Variable-length batches: every check of the offsets on the host, before
   anything is enqueued, and the copies the kernels read. */
#include "sdpa_varlen.h"
#include "context_internal.h"
#include "device_memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cu[0] = 0, never decreasing, each length at most max_len. */
static clattn_status check_offsets(clattn_context *ctx, const int32_t *cu,
                                   size_t batch, size_t max_len,
                                   const char *name, const char *bound)
{
    if (cu[0] != 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s[0] is %d: must be 0", name, (int)cu[0]);
    for (size_t b = 0; b < batch; ++b) {
        if (cu[b + 1] < cu[b])
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s decreases at %zu (%d after %d): the "
                             "offsets must never decrease",
                             name, b + 1, (int)cu[b + 1], (int)cu[b]);
        const size_t len = (size_t)(cu[b + 1] - cu[b]);
        if (len > max_len)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s: sequence %zu has %zu tokens, more than "
                             "%s (%zu)",
                             name, b, len, bound, max_len);
    }
    if (cu[batch] == 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "%s[batch] is 0: the packed batch has no tokens",
                         name);
    return CLATTN_SUCCESS;
}

clattn_status sdpa_varlen_check(clattn_context *ctx, const clattn_sdpa_desc *d,
                                sdpa_problem *p)
{
    if (!d->cu_seqlens_q && !d->cu_seqlens_k)
        return CLATTN_SUCCESS;
    const int paged = d->kv_pages.block_size != 0;
    if (!d->cu_seqlens_q)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "cu_seqlens_q is NULL but cu_seqlens_k is set: a "
                         "packed batch packs its queries");
    if (paged && d->cu_seqlens_k)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "cu_seqlens_k with kv_pages: a paged cache's keys "
                         "are found through its table (key_lengths give "
                         "each sequence's count)");
    if (!paged && !d->cu_seqlens_k)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "cu_seqlens_k is NULL but cu_seqlens_q is set: "
                         "packed queries need packed keys, or a paged "
                         "cache");
    if (d->key_lengths && !paged)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "key_lengths is set with cu_seqlens_k: the offsets "
                         "give the key lengths of a packed batch");
    if (d->mask_type != CLATTN_MASK_NONE)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "a mask with cu_seqlens: a packed batch takes "
                         "causal masking only");
    clattn_status s;
    if ((s = check_offsets(ctx, d->cu_seqlens_q, p->batch, p->seq_q,
                           "cu_seqlens_q", "seq_q")) ||
        (!paged && (s = check_offsets(ctx, d->cu_seqlens_k, p->batch, p->seq_kv,
                                      "cu_seqlens_k", "seq_kv"))))
        return s;
    p->cu_q = d->cu_seqlens_q;
    p->total_q = (size_t)d->cu_seqlens_q[p->batch];
    if (!paged) {
        p->cu_k = d->cu_seqlens_k;
        p->total_k = (size_t)d->cu_seqlens_k[p->batch];
    }
    return CLATTN_SUCCESS;
}

clattn_status sdpa_varlen_upload(clattn_context *ctx, const sdpa_problem *p,
                                 cl_mem *cu_q, cl_mem *cu_k)
{
    const size_t bytes = (p->batch + 1) * sizeof(int32_t); /* checked */
    const cl_mem_flags flags = CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR;
    clattn_status s = ctx_buffer_make(ctx, "cu_seqlens_q", flags, bytes,
                                      (void *)p->cu_q, cu_q);
    if (!s && p->cu_k &&
        (s = ctx_buffer_make(ctx, "cu_seqlens_k", flags, bytes, (void *)p->cu_k,
                             cu_k))) {
        ctx_buffer_release(ctx, *cu_q);
        *cu_q = NULL;
    }
    return s;
}

int32_t *sdpa_varlen_key_lengths(const sdpa_problem *p)
{
    int32_t *len = malloc(p->batch * sizeof *len);
    if (len)
        for (size_t b = 0; b < p->batch; ++b)
            len[b] = p->cu_k[b + 1] - p->cu_k[b];
    return len;
}

void sdpa_varlen_options(const sdpa_problem *p, char *buf, size_t cap)
{
    if (p->cu_q)
        sdpa_options_append(buf, cap, "-DSEQ_VARLEN=1");
}
