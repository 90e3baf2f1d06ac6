/* SDPA request validation: everything is checked here before any buffer is
   touched, so a rejected call writes nothing. */
#include "checked_math.h"
#include "context_internal.h"
#include "sdpa_pages.h"
#include "sdpa_problem.h"
#include "sdpa_rope.h"
#include "sdpa_varlen.h"
#include "struct_size.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void clattn_sdpa_desc_init(clattn_sdpa_desc *desc)
{
    if (desc) {
        memset(desc, 0, sizeof *desc);
        desc->struct_size = sizeof *desc;
    }
}

const char *clattn_dtype_name(clattn_dtype dtype)
{
    switch (dtype) {
    case CLATTN_DTYPE_FP32: return "fp32";
    case CLATTN_DTYPE_FP16: return "fp16";
    case CLATTN_DTYPE_BF16: return "bf16";
    }
    return "unknown";
}

clattn_status sdpa_check_kv_dtypes(clattn_context *ctx, clattn_dtype k_dtype,
                                   clattn_dtype v_dtype)
{
    const clattn_dtype dtypes[2] = {k_dtype, v_dtype};
    for (int i = 0; i < 2; ++i)
        if (dtypes[i] != CLATTN_DTYPE_FP32 && dtypes[i] != CLATTN_DTYPE_FP16 &&
            dtypes[i] != CLATTN_DTYPE_BF16)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "%s_dtype (%d) is not a clattn_dtype",
                             i ? "v" : "k", (int)dtypes[i]);
    return CLATTN_SUCCESS;
}

size_t sdpa_dtype_size(clattn_dtype dtype)
{
    return dtype == CLATTN_DTYPE_FP32 ? sizeof(float) : sizeof(uint16_t);
}

void sdpa_options_append(char *buf, size_t cap, const char *option)
{
    const size_t used = strlen(buf);
    snprintf(buf + used, cap > used ? cap - used : 0, "%s%s", used ? " " : "",
             option);
}

void sdpa_kv_options(const sdpa_problem *p, char *buf, size_t cap)
{
    if (p->k_dtype == CLATTN_DTYPE_FP32 && p->v_dtype == CLATTN_DTYPE_FP32)
        snprintf(buf, cap, "%s", "");
    else
        snprintf(buf, cap, "-DK_DTYPE=%d -DV_DTYPE=%d", (int)p->k_dtype,
                 (int)p->v_dtype);
    sdpa_pages_options(&p->pages, buf, cap);
    sdpa_varlen_options(p, buf, cap);
}

void sdpa_kv_options_cpu(const sdpa_problem *p, char *buf, size_t cap)
{
    sdpa_kv_options(p, buf, cap);
    if (p->k_dtype == CLATTN_DTYPE_FP16 || p->v_dtype == CLATTN_DTYPE_FP16)
        sdpa_options_append(buf, cap, "-DKV_HALF_NATIVE=1");
}

/* Q, out and lse: [batch][heads_q][seq_q][dim], or a packed batch's
   [1][heads_q][total_q][dim]. */
static void dims_rows(const sdpa_problem *p, size_t dim, size_t d[4])
{
    d[0] = p->cu_q ? 1 : p->batch;
    d[1] = p->heads_q;
    d[2] = p->cu_q ? p->total_q : p->seq_q;
    d[3] = dim;
}
void sdpa_dims_q(const sdpa_problem *p, size_t d[4])
{
    dims_rows(p, p->head_dim, d);
}
/* K and V: [batch][heads_kv][seq_kv][dim], the pool of a paged cache,
   [num_blocks][heads_kv][block_size][dim], or a packed batch's
   [1][heads_kv][total_k][dim]. */
static void dims_kv(const sdpa_problem *p, size_t dim, size_t d[4])
{
    const int paged = p->pages.block_size != 0;
    d[0] = paged ? p->pages.num_blocks : p->cu_k ? 1 : p->batch;
    d[1] = p->heads_kv;
    d[2] = paged ? p->pages.block_size : p->cu_k ? p->total_k : p->seq_kv;
    d[3] = dim;
}
void sdpa_dims_k(const sdpa_problem *p, size_t d[4])
{
    dims_kv(p, p->head_dim, d);
}
void sdpa_dims_v(const sdpa_problem *p, size_t d[4])
{
    dims_kv(p, p->head_dim_v, d);
}
void sdpa_dims_out(const sdpa_problem *p, size_t d[4])
{
    dims_rows(p, p->head_dim_v, d);
}
void sdpa_dims_probs(const sdpa_problem *p, size_t d[4])
{
    d[0] = p->batch, d[1] = p->heads_q, d[2] = p->seq_q, d[3] = p->seq_kv;
}
void sdpa_dims_lse(const sdpa_problem *p, size_t d[4])
{
    dims_rows(p, 1, d);
}

size_t sdpa_mask_elem_size(const sdpa_problem *p)
{
    return p->mask_type == CLATTN_MASK_BOOL ? 1 : sizeof(float);
}

/* The kernels index rows, keys and features with 32-bit integers. */
#define KERNEL_INDEX_MAX ((size_t)INT32_MAX)

static clattn_status check_sizes(clattn_context *ctx, const sdpa_problem *p)
{
    const size_t dims[7] = {p->batch,  p->heads_q,  p->heads_kv,  p->seq_q,
                            p->seq_kv, p->head_dim, p->head_dim_v};
    static const char *names[7] = {"batch",  "heads_q",  "heads_kv",  "seq_q",
                                   "seq_kv", "head_dim", "head_dim_v"};
    for (int i = 0; i < 7; ++i)
        if (dims[i] == 0)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                             "%s is 0: every dimension must be at least 1",
                             names[i]);
    if (p->heads_q % p->heads_kv != 0)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                         "heads_q (%zu) is not a multiple of heads_kv (%zu)",
                         p->heads_q, p->heads_kv);
    /* The attention matrix's element count bounds every other count (the
       dropout index runs over it); Q, K, V and O are checked the same way. */
    size_t shapes[6][4];
    sdpa_dims_q(p, shapes[0]);
    sdpa_dims_k(p, shapes[1]);
    sdpa_dims_v(p, shapes[2]);
    sdpa_dims_out(p, shapes[3]);
    sdpa_dims_probs(p, shapes[4]);
    memcpy(shapes[5], p->mask_dims, sizeof shapes[5]);
    for (int i = 0; i < 6; ++i) {
        size_t n, bytes;
        if (checked_product(shapes[i], 4, &n) ||
            checked_mul(n, sizeof(float), &bytes))
            return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                             "the problem's element or byte counts overflow "
                             "size_t");
    }
    size_t bh;
    if (checked_mul(p->batch, p->heads_q, &bh) || bh > KERNEL_INDEX_MAX)
        return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                         "batch * heads_q exceeds %zu", KERNEL_INDEX_MAX);
    for (int i = 0; i < 7; ++i)
        if (dims[i] > KERNEL_INDEX_MAX)
            return ctx_error(ctx, CLATTN_ERROR_UNSUPPORTED,
                             "%s (%zu) exceeds %zu", names[i], dims[i],
                             KERNEL_INDEX_MAX);
    return CLATTN_SUCCESS;
}

static clattn_status check_mask(clattn_context *ctx, const clattn_sdpa_desc *d,
                                sdpa_problem *p)
{
    if (d->mask_type == CLATTN_MASK_NONE) {
        memset(p->mask_dims, 0, sizeof p->mask_dims);
        return CLATTN_SUCCESS;
    }
    const size_t full[4] = {p->batch, p->heads_q, p->seq_q, p->seq_kv};
    static const char *names[4] = {"batch", "heads_q", "seq_q", "seq_kv"};
    for (int i = 0; i < 4; ++i) {
        size_t m = d->mask_dims[i];
        int ok = i == 3 ? m == full[i] : (m == 1 || m == full[i]);
        if (!ok)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_SHAPE,
                             "mask_dims[%d] is %zu: must be %s%zu (%s)", i, m,
                             i == 3 ? "" : "1 or ", full[i], names[i]);
        p->mask_dims[i] = m;
    }
    return CLATTN_SUCCESS;
}

clattn_status sdpa_problem_init(clattn_context *ctx, const clattn_sdpa_desc *d,
                                sdpa_problem *p)
{
    if (!d)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "desc is NULL");
    /* The caller's desc, read no further than its struct_size. */
    clattn_sdpa_desc given;
    clattn_sdpa_desc_init(&given);
    clattn_status copied =
        ctx_struct_copy_in(ctx, &given, sizeof given, SDPA_DESC_OLDEST_SIZE, d,
                           "clattn_sdpa_desc");
    if (copied != CLATTN_SUCCESS)
        return copied;
    d = &given;
    memset(p, 0, sizeof *p);
    p->batch = d->batch;
    p->heads_q = d->heads_q;
    p->heads_kv = d->heads_kv ? d->heads_kv : d->heads_q;
    p->seq_q = d->seq_q;
    p->seq_kv = d->seq_kv;
    p->head_dim = d->head_dim;
    p->head_dim_v = d->head_dim_v ? d->head_dim_v : d->head_dim;

    if ((unsigned)d->causal > CLATTN_CAUSAL_BOTTOM_RIGHT)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "causal has unknown value %d", (int)d->causal);
    if ((unsigned)d->mask_type > CLATTN_MASK_ADDITIVE)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "mask_type has unknown value %d", (int)d->mask_type);
    if (!isfinite(d->scale))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "scale is not finite");
    if (!(d->dropout_p >= 0.0f && d->dropout_p < 1.0f))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "dropout_p (%g) must be in [0, 1)",
                         (double)d->dropout_p);
    p->mask_type = d->mask_type;
    clattn_status s = check_mask(ctx, d, p);
    /* (batch 0 is check_sizes' to refuse; the offsets have batch + 1) */
    if (s == CLATTN_SUCCESS && p->batch)
        s = sdpa_varlen_check(ctx, d, p);
    if (s == CLATTN_SUCCESS)
        s = check_sizes(ctx, p);
    if (s != CLATTN_SUCCESS)
        return s;

    if (d->key_lengths)
        for (size_t b = 0; b < p->batch; ++b)
            if (d->key_lengths[b] < 0 || (size_t)d->key_lengths[b] > p->seq_kv)
                return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                                 "key_lengths[%zu] is %d: must be in [0, %zu]",
                                 b, (int)d->key_lengths[b], p->seq_kv);
    p->key_lengths = d->key_lengths;
    if ((s = sdpa_pages_check(ctx, &d->kv_pages, p->batch, p->seq_kv,
                              d->key_lengths, "kv_pages")))
        return s;
    p->pages = d->kv_pages;
    if ((s = sdpa_check_kv_dtypes(ctx, d->k_dtype, d->v_dtype)))
        return s;
    p->k_dtype = d->k_dtype;
    p->v_dtype = d->v_dtype;
    p->group = p->heads_q / p->heads_kv;
    p->scale =
        d->scale != 0.0f ? d->scale : (float)(1.0 / sqrt((double)p->head_dim));
    p->causal = d->causal;
    p->causal_shift = d->causal == CLATTN_CAUSAL_BOTTOM_RIGHT
                          ? (long)p->seq_kv - (long)p->seq_q
                          : 0;
    p->drop_threshold = (cl_uint)lrint((double)d->dropout_p * 16777216.0);
    p->drop_scale = p->drop_threshold ? 1.0f / (1.0f - d->dropout_p) : 1.0f;
    p->drop_seed = d->dropout_seed;
    p->drop_offset = d->dropout_offset;
    return sdpa_rope_check(ctx, d, p);
}

static clattn_status check_optional(clattn_context *ctx, const char *name,
                                    const clattn_tensor *t,
                                    const size_t dims[4], size_t elem_size,
                                    int is_output, checked_view *out)
{
    if (!t->buffer) {
        memset(out, 0, sizeof *out);
        return CLATTN_SUCCESS;
    }
    return view_check(ctx, name, t, dims, elem_size, is_output, out);
}

clattn_status sdpa_views_check(clattn_context *ctx, const sdpa_problem *p,
                               const clattn_sdpa_tensors *t, sdpa_views *v)
{
    if (!t)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "tensors is NULL");
    size_t dq[4], dk[4], dv[4], dout[4], dprobs[4], dlse[4];
    sdpa_dims_q(p, dq);
    sdpa_dims_k(p, dk);
    sdpa_dims_v(p, dv);
    sdpa_dims_out(p, dout);
    sdpa_dims_probs(p, dprobs);
    sdpa_dims_lse(p, dlse);
    const size_t f = sizeof(float);
    clattn_status s;
    if ((s = view_check(ctx, "q", &t->q, dq, f, 0, &v->q)) ||
        (s = view_check(ctx, "k", &t->k, dk, sdpa_dtype_size(p->k_dtype), 0,
                        &v->k)) ||
        (s = view_check(ctx, "v", &t->v, dv, sdpa_dtype_size(p->v_dtype), 0,
                        &v->v)) ||
        (s = view_check(ctx, "out", &t->out, dout, f, 1, &v->out)) ||
        (s = check_optional(ctx, "probs", &t->probs, dprobs, f, 1,
                            &v->probs)) ||
        (s = check_optional(ctx, "lse", &t->lse, dlse, f, 1, &v->lse)))
        return s;
    if (p->mask_type == CLATTN_MASK_NONE) {
        memset(&v->mask, 0, sizeof v->mask);
    } else if ((s = view_check(ctx, "mask", &t->mask, p->mask_dims,
                               sdpa_mask_elem_size(p), 0, &v->mask))) {
        return s;
    }
    const checked_view *outputs[3] = {&v->out, &v->probs, &v->lse};
    const checked_view *all[7] = {&v->q,   &v->k,     &v->v,  &v->mask,
                                  &v->out, &v->probs, &v->lse};
    static const char *names[7] = {"q",   "k",     "v",  "mask",
                                   "out", "probs", "lse"};
    for (int o = 0; o < 3; ++o)
        for (int i = 0; i < 7; ++i)
            if (all[i] != outputs[o] && views_intersect(outputs[o], all[i]))
                return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                                 "%s overlaps %s in the same buffer",
                                 names[4 + o], names[i]);
    return CLATTN_SUCCESS;
}
