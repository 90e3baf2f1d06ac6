/* Variable-length batches (cu_seqlens_q / cu_seqlens_k of
   clattn_sdpa_desc): checking the offsets, the device copies the kernels
   read, the key lengths they imply, and the arguments and build option
   of a varlen build (cl/core/seq_varlen.clh). */
#ifndef CLATTN_SDPA_VARLEN_H
#define CLATTN_SDPA_VARLEN_H

#include "clattn/clattn.h"
#include "kernel_args.h"
#include "sdpa_problem.h"

/* Checks the desc's offsets against p's batch, seq_q and seq_kv (set
   before) and the fields they exclude; sets p's cu_q, cu_k, total_q and
   total_k. Neither given: nothing set, success. Packed queries over a
   paged cache have cu_q only (their key counts are key_lengths). */
clattn_status sdpa_varlen_check(clattn_context *ctx, const clattn_sdpa_desc *d,
                                sdpa_problem *p);

/* The device copies of the offset arrays (p packed; *cu_k stays NULL
   for packed queries over a paged cache, which has no key offsets). */
clattn_status sdpa_varlen_upload(clattn_context *ctx, const sdpa_problem *p,
                                 cl_mem *cu_q, cl_mem *cu_k);

/* The key lengths of a packed batch, cu_k[b + 1] - cu_k[b], into a new
   host array (the caller frees); NULL when out of memory. */
int32_t *sdpa_varlen_key_lengths(const sdpa_problem *p);

/* The two trailing parameters of a varlen build (SEQ_VARLEN_PARAMS); none
   when p is not packed. */
static inline void arg_varlen(kernel_args *a, const sdpa_problem *p,
                              cl_mem cu_q, cl_mem cu_k)
{
    if (!p->cu_q)
        return;
    arg_mem(a, cu_q);
    arg_mem(a, cu_k);
}

/* " -DSEQ_VARLEN=1" appended to a build's options when p is packed. */
void sdpa_varlen_options(const sdpa_problem *p, char *buf, size_t cap);

#endif
