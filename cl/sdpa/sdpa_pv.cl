/* Unfused SDPA, step 3: O = P V for the rows of one chunk; the P view
   follows the same (signed offset) convention as sdpa_scores.

   Tiled as sdpa_scores is (sdpa_unfused_params.clh): a work-group owns
   UT_BLOCK query rows x UT_BLOCK value features of one (batch, head),
   and the keys are staged UT_DEPTH at a time, a P tile (rows x keys) and
   a V tile (keys x features) in __local memory, both loaded with
   consecutive work-items on consecutive elements of a row. Work-item
   (tx, ty) keeps the outputs of rows ty + UT_SIDE * r and features
   tx + UT_SIDE * c. Blocks of PV_BLOCK keys are summed plainly, and each
   block added to the output with Kahan compensation: a running sum over
   all keys drifts by about seq_kv * eps (1e-2 at 2^20 keys).

   Keys past the block's causal limit or past the key length have zero
   probability and are not read (as the fused paths never read them). A
   row whose probabilities are all zero (every key masked) is written as
   zeros even where V holds inf or NaN, which 0 * V would not give. */
#ifndef CLATTN_EMBEDDED
#include "../core/kv_dtype.clh"     /* V_ELEM, V_LOAD */
#include "../core/kv_pages.clh"     /* KV_HEAD, KV_ROW, KV_PAGE_PARAMS */
#include "sdpa_unfused_params.clh" /* UT_*, PV_BLOCK */
#endif

#if (UT_MICRO * UT_DEPTH) % UT_SIDE || PV_BLOCK % UT_DEPTH
#error "sdpa_pv: UT_SIDE must divide UT_MICRO * UT_DEPTH, UT_DEPTH PV_BLOCK"
#endif
#define PV_LOADS (UT_MICRO * UT_DEPTH / UT_SIDE) /* per work-item, per tile */
#define PV_STRIDE (UT_BLOCK + 1) /* a __local tile's padded row */

/* The keys any row of a block of rows before row_end (chunk-relative)
   may weigh: up to the key length and the block's last row's causal
   limit. */
static uint pv_key_end(__global const int *key_len, uint b, uint seq_kv,
                       int causal, long causal_shift, uint q_begin,
                       uint row_end, uint q_count)
{
    long key_end = key_len ? min((long)key_len[b], (long)seq_kv) : (long)seq_kv;
    if (causal) {
        const long last_row = (long)q_begin + min(row_end, q_count) - 1;
        key_end = min(key_end, last_row + causal_shift + 1);
    }
    return key_end > 0 ? (uint)key_end : 0u;
}

__kernel __attribute__((reqd_work_group_size(UT_SIDE, UT_SIDE, 1))) void
sdpa_pv(__global const float *p, long p_off, ulong p_sb, ulong p_sh, ulong p_ss,
        __global const V_ELEM *v, ulong v_off, ulong v_sb, ulong v_sh,
        ulong v_ss KV_PAGE_PARAMS, __global float *o, ulong o_off, ulong o_sb, ulong o_sh,
        ulong o_ss, __global const int *key_len, uint heads_q, uint group,
        uint seq_kv, uint head_dim_v, int causal, long causal_shift,
        uint q_begin, uint q_count, uint bh_begin)
{
    __local float p_tile[UT_DEPTH * PV_STRIDE]; /* [key][row] */
    __local float v_tile[UT_DEPTH * PV_STRIDE]; /* [key][feature] */
    const uint tx = (uint)get_local_id(0), ty = (uint)get_local_id(1);
    const uint lid = ty * UT_SIDE + tx;
    const uint c0 = (uint)get_group_id(0) * UT_BLOCK;
    const uint r0 = (uint)get_group_id(1) * UT_BLOCK;
    const uint bh = bh_begin + (uint)get_group_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, hk = h / group;

    const uint keys = pv_key_end(key_len, b, seq_kv, causal, causal_shift,
                                 q_begin, r0 + UT_BLOCK, q_count);

    __global const float *phead =
        p + (p_off + (long)(b * p_sb + h * p_sh + (q_begin + r0) * p_ss));
    __global const V_ELEM *vhead = KV_HEAD(v, v_off, b, hk, v_sb, v_sh);
    float acc[UT_MICRO][UT_MICRO], comp[UT_MICRO][UT_MICRO];
    float blk[UT_MICRO][UT_MICRO];
    int any_weight[UT_MICRO];
    for (int r = 0; r < UT_MICRO; ++r) {
        any_weight[r] = 0;
        for (int c = 0; c < UT_MICRO; ++c)
            acc[r][c] = comp[r][c] = blk[r][c] = 0.0f;
    }
    for (uint j0 = 0; j0 < keys; j0 += UT_DEPTH) {
        for (int n = 0; n < PV_LOADS; ++n) {
            const uint e = lid + n * (UT_SIDE * UT_SIDE);
            const uint row = e / UT_DEPTH, jp = e % UT_DEPTH;
            p_tile[jp * PV_STRIDE + row] = r0 + row < q_count && j0 + jp < keys
                                               ? phead[row * p_ss + j0 + jp]
                                               : 0.0f;
            const uint jv = e / UT_BLOCK, f = e % UT_BLOCK;
            v_tile[jv * PV_STRIDE + f] = j0 + jv < keys && c0 + f < head_dim_v
                                             ? V_LOAD(vhead, KV_ROW(b, j0 + jv, v_sb, v_ss) + c0 + f)
                                             : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int jj = 0; jj < UT_DEPTH; ++jj) {
            float pv[UT_MICRO], vv[UT_MICRO];
            for (int r = 0; r < UT_MICRO; ++r) {
                pv[r] = p_tile[jj * PV_STRIDE + ty + UT_SIDE * r];
                any_weight[r] |= pv[r] != 0.0f;
            }
            for (int c = 0; c < UT_MICRO; ++c)
                vv[c] = v_tile[jj * PV_STRIDE + tx + UT_SIDE * c];
            for (int r = 0; r < UT_MICRO; ++r)
                for (int c = 0; c < UT_MICRO; ++c)
                    blk[r][c] = fma(pv[r], vv[c], blk[r][c]);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* the tiles are reloaded next */
        /* A block of PV_BLOCK keys ends (or the keys do): fold it. */
        if ((j0 + UT_DEPTH) % PV_BLOCK == 0 || j0 + UT_DEPTH >= keys) {
            for (int r = 0; r < UT_MICRO; ++r)
                for (int c = 0; c < UT_MICRO; ++c) {
                    const float y = blk[r][c] - comp[r][c];
                    const float t = acc[r][c] + y;
                    comp[r][c] = (t - acc[r][c]) - y;
                    acc[r][c] = t;
                    blk[r][c] = 0.0f;
                }
        }
    }

    /* A guard, not a break (see sdpa_scores): acc stays in registers. */
    for (int r = 0; r < UT_MICRO; ++r) {
        const uint row = r0 + ty + UT_SIDE * r;
        if (row >= q_count)
            continue;
        __global float *orow =
            o + o_off + b * o_sb + h * o_sh + (q_begin + row) * o_ss;
        for (int c = 0; c < UT_MICRO; ++c) {
            const uint f = c0 + tx + UT_SIDE * c;
            if (f < head_dim_v)
                orow[f] = any_weight[r] ? acc[r][c] : 0.0f;
        }
    }
}

/* The same product for chunks of few query rows (see sdpa_scores_direct):
   a work-item per DIRECT_ROWS x DIRECT_KEYS block of outputs (rows x
   value features), reading P and V directly. */
__kernel void sdpa_pv_direct(__global const float *p, long p_off, ulong p_sb,
                             ulong p_sh, ulong p_ss, __global const V_ELEM *v,
                             ulong v_off, ulong v_sb, ulong v_sh,
                             ulong v_ss KV_PAGE_PARAMS, __global float *o, ulong o_off, ulong o_sb,
                             ulong o_sh, ulong o_ss,
                             __global const int *key_len, uint heads_q,
                             uint group, uint seq_kv, uint head_dim_v,
                             int causal, long causal_shift, uint q_begin,
                             uint q_count, uint bh_begin)
{
    const uint c0 = (uint)get_global_id(0) * DIRECT_KEYS;
    const uint r0 = (uint)get_global_id(1) * DIRECT_ROWS;
    if (c0 >= head_dim_v || r0 >= q_count)
        return;
    const uint bh = bh_begin + (uint)get_global_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, hk = h / group;
    const uint keys = pv_key_end(key_len, b, seq_kv, causal, causal_shift,
                                 q_begin, r0 + DIRECT_ROWS, q_count);

    __global const float *prow[DIRECT_ROWS];
    for (int r = 0; r < DIRECT_ROWS; ++r) {
        uint i = q_begin + min(r0 + r, q_count - 1);
        prow[r] = p + (p_off + (long)(b * p_sb + h * p_sh + i * p_ss));
    }
    uint col[DIRECT_KEYS];
    for (int c = 0; c < DIRECT_KEYS; ++c)
        col[c] = min(c0 + c, head_dim_v - 1);
    __global const V_ELEM *vhead = KV_HEAD(v, v_off, b, hk, v_sb, v_sh);

    /* Blocks of PV_BLOCK keys are summed plainly into blk, and each block
       added to acc with Kahan compensation: a running sum over all keys
       drifts by about seq_kv * eps (1e-2 at 2^20 keys). */
    float acc[DIRECT_ROWS][DIRECT_KEYS], comp[DIRECT_ROWS][DIRECT_KEYS];
    int any_weight[DIRECT_ROWS];
    for (int r = 0; r < DIRECT_ROWS; ++r) {
        any_weight[r] = 0;
        for (int c = 0; c < DIRECT_KEYS; ++c)
            acc[r][c] = comp[r][c] = 0.0f;
    }
    for (uint j0 = 0; j0 < keys; j0 += PV_BLOCK) {
        const uint j_end = min(j0 + PV_BLOCK, keys);
        float blk[DIRECT_ROWS][DIRECT_KEYS];
        for (int r = 0; r < DIRECT_ROWS; ++r)
            for (int c = 0; c < DIRECT_KEYS; ++c)
                blk[r][c] = 0.0f;
        for (uint j = j0; j < j_end; ++j) {
            __global const V_ELEM *vrow = vhead + KV_ROW(b, j, v_sb, v_ss);
            float pv[DIRECT_ROWS], vv[DIRECT_KEYS];
            for (int r = 0; r < DIRECT_ROWS; ++r) {
                pv[r] = prow[r][j];
                any_weight[r] |= pv[r] != 0.0f;
            }
            for (int c = 0; c < DIRECT_KEYS; ++c)
                vv[c] = V_LOAD(vrow, col[c]);
            for (int r = 0; r < DIRECT_ROWS; ++r)
                for (int c = 0; c < DIRECT_KEYS; ++c)
                    blk[r][c] = fma(pv[r], vv[c], blk[r][c]);
        }
        for (int r = 0; r < DIRECT_ROWS; ++r)
            for (int c = 0; c < DIRECT_KEYS; ++c) {
                const float y = blk[r][c] - comp[r][c];
                const float t = acc[r][c] + y;
                comp[r][c] = (t - acc[r][c]) - y;
                acc[r][c] = t;
            }
    }

    /* A guard, not a break (as above). */
    for (int r = 0; r < DIRECT_ROWS; ++r) {
        if (r0 + r >= q_count)
            continue;
        const uint i = q_begin + r0 + r;
        __global float *orow = o + o_off + b * o_sb + h * o_sh + i * o_ss;
        for (int c = 0; c < DIRECT_KEYS; ++c)
            if (c0 + c < head_dim_v)
                orow[c0 + c] = any_weight[r] ? acc[r][c] : 0.0f;
    }
}
