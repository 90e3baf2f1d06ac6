/* Unfused SDPA, step 1: S = Q K^T * scale, with the additive mask added and
   the bool mask, key-padding lengths and causal limit applied (-inf) in the
   same pass; rows [q_begin, q_begin + q_count) of heads [bh_begin, ...)
   form the chunk this launch covers.

   Tiled as a GEMM (sdpa_unfused_params.clh): a work-group owns UT_BLOCK
   query rows x UT_BLOCK keys of one (batch, head). The features are staged
   UT_DEPTH at a time: the group loads a Q tile and a K tile into __local
   memory (consecutive work-items read consecutive features of a row, so
   the loads coalesce), stored transposed with a padded stride so that the
   reads below hit distinct banks. Work-item (tx, ty) keeps the
   UT_MICRO x UT_MICRO scores of rows ty + UT_SIDE * r and keys
   tx + UT_SIDE * c in registers: neighbouring work-items store
   neighbouring keys. Each score sums its products in feature order, as
   one fma chain. A block that the causal limit or the key lengths mask
   entirely is written as -inf without loading anything.

   Views: element (b, h, i, f) of X is X[x_off + b*x_sb + h*x_sh + i*x_ss + f].
   The score view's offset is signed: for a scratch chunk it is shifted
   back so that the chunk's first row lands at element 0. */
#ifndef CLATTN_EMBEDDED
#include "../core/kv_dtype.clh" /* K_ELEM, K_LOAD */
#include "../core/kv_pages.clh" /* KV_HEAD, KV_ROW, KV_PAGE_PARAMS */
#include "../core/philox.clh"
#include "sdpa_unfused_params.clh" /* UT_* */
#endif

#if (UT_MICRO * UT_DEPTH) % UT_SIDE
#error "sdpa_scores: UT_SIDE must divide UT_MICRO * UT_DEPTH"
#endif
#define UT_LOADS (UT_MICRO * UT_DEPTH / UT_SIDE) /* per work-item, per tile */
#define UT_STRIDE (UT_BLOCK + 1) /* a __local tile's padded row */

/* Score (i, j) from its dot product: scaled, the additive mask added,
   -inf where the bool mask, the key length, the causal limit or the
   caller (masked) says so. */
static float finish_score(float dot, uint i, uint j, int masked, ulong m_row,
                          __global const uchar *mask_bool,
                          __global const float *mask_add, long valid_keys,
                          float scale, int causal, long causal_shift)
{
    float x = dot * scale;
    if (mask_add)
        x += mask_add[m_row + j];
    masked |= (long)j >= valid_keys;
    if (mask_bool)
        masked |= mask_bool[m_row + j] == 0;
    if (causal)
        masked |= (long)j > (long)i + causal_shift;
    return masked ? -INFINITY : x;
}

__kernel __attribute__((reqd_work_group_size(UT_SIDE, UT_SIDE, 1))) void
sdpa_scores(__global const float *q, ulong q_off, ulong q_sb, ulong q_sh,
            ulong q_ss, __global const K_ELEM *k, ulong k_off, ulong k_sb,
            ulong k_sh, ulong k_ss KV_PAGE_PARAMS, __global float *s, long s_off, ulong s_sb,
            ulong s_sh, ulong s_ss, __global const uchar *mask_bool,
            __global const float *mask_add, ulong m_off, ulong m_sb, ulong m_sh,
            ulong m_ss, __global const int *key_len, uint heads_q, uint group,
            uint seq_kv, uint head_dim, float scale, int causal,
            long causal_shift, uint q_begin, uint q_count, uint bh_begin)
{
    __local float q_tile[UT_DEPTH * UT_STRIDE]; /* [feature][row] */
    __local float k_tile[UT_DEPTH * UT_STRIDE]; /* [feature][key] */
    const uint tx = (uint)get_local_id(0), ty = (uint)get_local_id(1);
    const uint lid = ty * UT_SIDE + tx;
    const uint j0 = (uint)get_group_id(0) * UT_BLOCK;
    const uint r0 = (uint)get_group_id(1) * UT_BLOCK;
    const uint bh = bh_begin + (uint)get_group_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, hk = h / group;
    const long valid_keys = key_len ? (long)key_len[b] : (long)seq_kv;

    /* The block's last row sees keys up to its causal limit; a block
       past it, or past the key length, is all -inf (the same for every
       work-item of the group, so no barrier is skipped by some only). */
    const long last_row = (long)q_begin + min(r0 + UT_BLOCK, q_count) - 1;
    const int block_masked = (long)j0 >= valid_keys ||
                             (causal && (long)j0 > last_row + causal_shift);

    __global const float *qhead = q + q_off + b * q_sb + h * q_sh;
    __global const K_ELEM *khead = KV_HEAD(k, k_off, b, hk, k_sb, k_sh);
    float acc[UT_MICRO][UT_MICRO];
    for (int r = 0; r < UT_MICRO; ++r)
        for (int c = 0; c < UT_MICRO; ++c)
            acc[r][c] = 0.0f;
    for (uint d0 = 0; !block_masked && d0 < head_dim; d0 += UT_DEPTH) {
        for (int n = 0; n < UT_LOADS; ++n) {
            const uint e = lid + n * (UT_SIDE * UT_SIDE);
            const uint row = e / UT_DEPTH, f = e % UT_DEPTH;
            const int in_f = d0 + f < head_dim;
            q_tile[f * UT_STRIDE + row] =
                in_f && r0 + row < q_count
                    ? qhead[(q_begin + r0 + row) * q_ss + d0 + f]
                    : 0.0f;
            k_tile[f * UT_STRIDE + row] =
                in_f && j0 + row < seq_kv
                    ? K_LOAD(khead, KV_ROW(b, j0 + row, k_sb, k_ss) + d0 + f)
                    : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int f = 0; f < UT_DEPTH; ++f) {
            float qv[UT_MICRO], kv[UT_MICRO];
            for (int r = 0; r < UT_MICRO; ++r)
                qv[r] = q_tile[f * UT_STRIDE + ty + UT_SIDE * r];
            for (int c = 0; c < UT_MICRO; ++c)
                kv[c] = k_tile[f * UT_STRIDE + tx + UT_SIDE * c];
            for (int r = 0; r < UT_MICRO; ++r)
                for (int c = 0; c < UT_MICRO; ++c)
                    acc[r][c] = fma(qv[r], kv[c], acc[r][c]);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* the tiles are reloaded next */
    }

    /* Guards, not breaks, around the stores: loops with a constant trip
       count unroll whole, so acc stays in registers (with a break, AMD's
       compiler kept acc in private memory). The features past head_dim
       were loaded as zeros, so their fma added +0. The pragmas: the body
       is long enough that LLVM's size limit would otherwise leave these
       loops rolled, acc indexed at run time (64 bytes of stack on sm_90). */
#pragma unroll
    for (int r = 0; r < UT_MICRO; ++r) {
        const uint row = r0 + ty + UT_SIDE * r;
        if (row >= q_count)
            continue;
        const uint i = q_begin + row;
        const ulong m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
        __global float *srow =
            s + (s_off + (long)(b * s_sb + h * s_sh + i * s_ss));
#pragma unroll
        for (int c = 0; c < UT_MICRO; ++c) {
            const uint j = j0 + tx + UT_SIDE * c;
            if (j >= seq_kv)
                continue;
            srow[j] =
                finish_score(acc[r][c], i, j, block_masked, m_row, mask_bool,
                             mask_add, valid_keys, scale, causal, causal_shift);
        }
    }
}

/* The same scores for chunks of few query rows (a decode step, a long key
   range over a few rows), where sdpa_scores' blocks would be mostly
   empty: no __local memory, a work-item per DIRECT_ROWS x DIRECT_KEYS
   block reading Q and K directly, which for one row is a read of K at
   memory speed. The host takes it below a quarter-full block
   (sdpa_unfused.c). */
__kernel void sdpa_scores_direct(
    __global const float *q, ulong q_off, ulong q_sb, ulong q_sh, ulong q_ss,
    __global const K_ELEM *k, ulong k_off, ulong k_sb, ulong k_sh,
    ulong k_ss KV_PAGE_PARAMS, __global float *s, long s_off, ulong s_sb, ulong s_sh, ulong s_ss,
    __global const uchar *mask_bool, __global const float *mask_add,
    ulong m_off, ulong m_sb, ulong m_sh, ulong m_ss,
    __global const int *key_len, uint heads_q, uint group, uint seq_kv,
    uint head_dim, float scale, int causal, long causal_shift, uint q_begin,
    uint q_count, uint bh_begin)
{
    const uint j0 = (uint)get_global_id(0) * DIRECT_KEYS;
    const uint r0 = (uint)get_global_id(1) * DIRECT_ROWS;
    if (j0 >= seq_kv || r0 >= q_count)
        return;
    const uint bh = bh_begin + (uint)get_global_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, hk = h / group;

    /* Out-of-range rows and keys read the last valid one, and are not
       stored: the loop stays branch-free. */
    __global const float *qrow[DIRECT_ROWS];
    __global const K_ELEM *krow[DIRECT_KEYS];
    for (int r = 0; r < DIRECT_ROWS; ++r) {
        uint i = q_begin + min(r0 + r, q_count - 1);
        qrow[r] = q + q_off + b * q_sb + h * q_sh + i * q_ss;
    }
    for (int c = 0; c < DIRECT_KEYS; ++c) {
        uint j = min(j0 + c, seq_kv - 1);
        krow[c] = KV_HEAD(k, k_off, b, hk, k_sb, k_sh) + KV_ROW(b, j, k_sb, k_ss);
    }

    float acc[DIRECT_ROWS][DIRECT_KEYS];
    for (int r = 0; r < DIRECT_ROWS; ++r)
        for (int c = 0; c < DIRECT_KEYS; ++c)
            acc[r][c] = 0.0f;
    for (uint d = 0; d < head_dim; ++d) {
        float qv[DIRECT_ROWS], kv[DIRECT_KEYS];
        for (int r = 0; r < DIRECT_ROWS; ++r)
            qv[r] = qrow[r][d];
        for (int c = 0; c < DIRECT_KEYS; ++c)
            kv[c] = K_LOAD(krow[c], d);
        for (int r = 0; r < DIRECT_ROWS; ++r)
            for (int c = 0; c < DIRECT_KEYS; ++c)
                acc[r][c] = fma(qv[r], kv[c], acc[r][c]);
    }

    const long valid_keys = key_len ? (long)key_len[b] : (long)seq_kv;
    /* Guards, not breaks, around the stores (as above). */
    for (int r = 0; r < DIRECT_ROWS; ++r) {
        if (r0 + r >= q_count)
            continue;
        const uint i = q_begin + r0 + r;
        const ulong m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
        __global float *srow =
            s + (s_off + (long)(b * s_sb + h * s_sh + i * s_ss));
        for (int c = 0; c < DIRECT_KEYS; ++c) {
            const uint j = j0 + c;
            if (j >= seq_kv)
                continue;
            srow[j] =
                finish_score(acc[r][c], i, j, 0, m_row, mask_bool, mask_add,
                             valid_keys, scale, causal, causal_shift);
        }
    }
}
