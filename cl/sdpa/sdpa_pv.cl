/* Unfused SDPA, step 3: O = P V for the rows of one chunk. One work-item
   computes a TILE_Q x TILE_DV block of the output; the P view follows the
   same (signed offset) convention as sdpa_scores. A row whose
   probabilities are all zero (every key masked) is written as zeros even
   where V holds inf or NaN, which 0 * V would not give. */
#ifndef CLATTN_EMBEDDED
#include "sdpa_unfused_params.clh" /* PV_TILE_Q, PV_TILE_DV, PV_BLOCK */
#endif

__kernel void sdpa_pv(__global const float *p, long p_off, ulong p_sb,
                      ulong p_sh, ulong p_ss, __global const float *v,
                      ulong v_off, ulong v_sb, ulong v_sh, ulong v_ss,
                      __global float *o, ulong o_off, ulong o_sb, ulong o_sh,
                      ulong o_ss, uint heads_q, uint group, uint seq_kv,
                      uint head_dim_v, uint q_begin, uint q_count,
                      uint bh_begin)
{
    const uint c0 = (uint)get_global_id(0) * PV_TILE_DV;
    const uint r0 = (uint)get_global_id(1) * PV_TILE_Q;
    if (c0 >= head_dim_v || r0 >= q_count)
        return;
    const uint bh = bh_begin + (uint)get_global_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, hk = h / group;

    __global const float *prow[PV_TILE_Q];
    for (int r = 0; r < PV_TILE_Q; ++r) {
        uint i = q_begin + min(r0 + r, q_count - 1);
        prow[r] = p + (p_off + (long)(b * p_sb + h * p_sh + i * p_ss));
    }
    uint col[PV_TILE_DV];
    for (int c = 0; c < PV_TILE_DV; ++c)
        col[c] = min(c0 + c, head_dim_v - 1);
    __global const float *vhead = v + v_off + b * v_sb + hk * v_sh;

    /* Blocks of PV_BLOCK keys are summed plainly into blk, and each block
       added to acc with Kahan compensation: a running sum over all keys
       drifts by about seq_kv * eps (1e-2 at 2^20 keys). */
    float acc[PV_TILE_Q][PV_TILE_DV], comp[PV_TILE_Q][PV_TILE_DV];
    int any_weight[PV_TILE_Q];
    for (int r = 0; r < PV_TILE_Q; ++r) {
        any_weight[r] = 0;
        for (int c = 0; c < PV_TILE_DV; ++c)
            acc[r][c] = comp[r][c] = 0.0f;
    }
    for (uint j0 = 0; j0 < seq_kv; j0 += PV_BLOCK) {
        const uint j_end = min(j0 + PV_BLOCK, seq_kv);
        float blk[PV_TILE_Q][PV_TILE_DV];
        for (int r = 0; r < PV_TILE_Q; ++r)
            for (int c = 0; c < PV_TILE_DV; ++c)
                blk[r][c] = 0.0f;
        for (uint j = j0; j < j_end; ++j) {
            __global const float *vrow = vhead + j * v_ss;
            float pv[PV_TILE_Q], vv[PV_TILE_DV];
            for (int r = 0; r < PV_TILE_Q; ++r) {
                pv[r] = prow[r][j];
                any_weight[r] |= pv[r] != 0.0f;
            }
            for (int c = 0; c < PV_TILE_DV; ++c)
                vv[c] = vrow[col[c]];
            for (int r = 0; r < PV_TILE_Q; ++r)
                for (int c = 0; c < PV_TILE_DV; ++c)
                    blk[r][c] = fma(pv[r], vv[c], blk[r][c]);
        }
        for (int r = 0; r < PV_TILE_Q; ++r)
            for (int c = 0; c < PV_TILE_DV; ++c) {
                const float y = blk[r][c] - comp[r][c];
                const float t = acc[r][c] + y;
                comp[r][c] = (t - acc[r][c]) - y;
                acc[r][c] = t;
            }
    }

    /* A guard, not a break (see sdpa_scores): acc stays in registers. */
    for (int r = 0; r < PV_TILE_Q; ++r) {
        if (r0 + r >= q_count)
            continue;
        const uint i = q_begin + r0 + r;
        __global float *orow = o + o_off + b * o_sb + h * o_sh + i * o_ss;
        for (int c = 0; c < PV_TILE_DV; ++c)
            if (c0 + c < head_dim_v)
                orow[c0 + c] = any_weight[r] ? acc[r][c] : 0.0f;
    }
}
