/* An SDPA request after validation: defaults resolved, derived values
   computed. Every op path works from this, never from the raw desc. */
#ifndef CLATTN_SDPA_PROBLEM_H
#define CLATTN_SDPA_PROBLEM_H

#include "clattn/clattn.h"
#include "tensor_view.h"

typedef struct sdpa_problem {
    size_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v;
    size_t group; /* heads_q / heads_kv */
    float scale;  /* resolved: never 0 */
    clattn_causal causal;
    long causal_shift; /* key j allowed iff j <= i + causal_shift */
    clattn_mask_type mask_type;
    size_t mask_dims[4];
    cl_uint drop_threshold; /* 0 = no dropout; see cl/core/philox.clh */
    float drop_scale;       /* 1 / (1 - p) */
    uint64_t drop_seed, drop_offset;
    const int32_t *key_lengths;
    clattn_dtype k_dtype, v_dtype;
    /* A paged K/V cache (block_size 0 = none), checked (sdpa_pages.h):
       the K and V views are views of the pool. */
    clattn_kv_pages pages;
    /* A packed variable-length batch (sdpa_varlen.h): the caller's
       checked offsets, host [batch + 1] (NULL = not packed), and the
       packed token counts; every view then has batch 1. */
    const int32_t *cu_q, *cu_k;
    size_t total_q, total_k;
    /* Rotary embeddings (sdpa_rope.h), defaults resolved: style NONE =
       none. rope_q_positions is the caller's host array (NULL = 0s). */
    clattn_rope rope;
    const int32_t *rope_q_positions;
    int rope_k;
} sdpa_problem;

/* k_dtype and v_dtype each fp32, fp16 or bf16 (INVALID_ARGUMENT naming
   the field otherwise). */
clattn_status sdpa_check_kv_dtypes(clattn_context *ctx, clattn_dtype k_dtype,
                                   clattn_dtype v_dtype);

/* Bytes per element of a dtype (validated: fp32, fp16 or bf16). */
size_t sdpa_dtype_size(clattn_dtype dtype);

/* Appends option to the build options in buf (a space between). */
void sdpa_options_append(char *buf, size_t cap, const char *option);

/* The build options of the K/V element types ("" for fp32 K and V, the
   default build; else "-DK_DTYPE=.. -DV_DTYPE=..", cl/core/kv_dtype.clh)
   into buf: every kernel that reads K or V is taken from that build. */
void sdpa_kv_options(const sdpa_problem *p, char *buf, size_t cap);

/* The same for the CPU-class program (PROGRAM_SDPA_FUSED_CPU): fp16 loads
   through vload_half there (-DKV_HALF_NATIVE=1). */
void sdpa_kv_options_cpu(const sdpa_problem *p, char *buf, size_t cap);

/* Validates desc (pointers, enums, shapes, overflow, mask broadcast, key
   lengths, dropout p) into p. */
clattn_status sdpa_problem_init(clattn_context *ctx,
                                const clattn_sdpa_desc *desc, sdpa_problem *p);

/* The shapes of each tensor of the problem. */
void sdpa_dims_q(const sdpa_problem *p, size_t dims[4]);
void sdpa_dims_k(const sdpa_problem *p, size_t dims[4]);
void sdpa_dims_v(const sdpa_problem *p, size_t dims[4]);
void sdpa_dims_out(const sdpa_problem *p, size_t dims[4]);
void sdpa_dims_probs(const sdpa_problem *p, size_t dims[4]);
void sdpa_dims_lse(const sdpa_problem *p, size_t dims[4]);

/* The element size of the mask (1 for bool, 4 for additive). */
size_t sdpa_mask_elem_size(const sdpa_problem *p);

/* Validated views of every tensor the request names. */
typedef struct sdpa_views {
    checked_view q, k, v, mask, out, probs, lse; /* buffer NULL = absent */
    /* The block table of a paged cache on the device (sdpa_pages_upload),
       made by sdpa_prepare after every check; NULL when not paged. */
    cl_mem kv_table;
    /* A packed batch's offsets on the device (sdpa_varlen_upload), made
       with kv_table; NULL when not packed. */
    cl_mem cu_q, cu_k;
    /* probs is the head average, [batch][seq_q][seq_kv] with head stride
       0 (sdpa_prepare_head_mean, for MHA's need_weights), not per head. */
    int probs_head_mean;
} sdpa_views;

clattn_status sdpa_views_check(clattn_context *ctx, const sdpa_problem *p,
                               const clattn_sdpa_tensors *t, sdpa_views *views);

/* The device memory the fused prepare step would allocate for p on variant
   (every buffer together), or the status it would refuse p with; nothing is
   allocated or enqueued. For the tests of the size checks. */
clattn_status sdpa_fused_plan_bytes(clattn_context *ctx, const sdpa_problem *p,
                                    clattn_sdpa_path variant, size_t *total);

#endif
