/* Unfused SDPA, step 1: S = Q K^T * scale, with the additive mask added and
   the bool mask, key-padding lengths and causal limit applied (-inf) in the
   same pass. One work-item computes a TILE_Q x TILE_K block of one (batch,
   head); rows [q_begin, q_begin + q_count) of heads [bh_begin, ...) form
   the chunk this launch covers.

   Views: element (b, h, i, f) of X is X[x_off + b*x_sb + h*x_sh + i*x_ss + f].
   The score view's offset is signed: for a scratch chunk it is shifted
   back so that the chunk's first row lands at element 0. */
#ifndef CLATTN_EMBEDDED
#include "../core/philox.clh"
#include "sdpa_unfused_params.clh" /* TILE_Q, TILE_K */
#endif

__kernel void
sdpa_scores(__global const float *q, ulong q_off, ulong q_sb, ulong q_sh,
            ulong q_ss, __global const float *k, ulong k_off, ulong k_sb,
            ulong k_sh, ulong k_ss, __global float *s, long s_off, ulong s_sb,
            ulong s_sh, ulong s_ss, __global const uchar *mask_bool,
            __global const float *mask_add, ulong m_off, ulong m_sb, ulong m_sh,
            ulong m_ss, __global const int *key_len, uint heads_q, uint group,
            uint seq_kv, uint head_dim, float scale, int causal,
            long causal_shift, uint q_begin, uint q_count, uint bh_begin)
{
    const uint j0 = (uint)get_global_id(0) * TILE_K;
    const uint r0 = (uint)get_global_id(1) * TILE_Q;
    if (j0 >= seq_kv || r0 >= q_count)
        return;
    const uint bh = bh_begin + (uint)get_global_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, hk = h / group;

    /* Out-of-range rows and keys read the last valid one, and are not
       stored: the loop stays branch-free. */
    __global const float *qrow[TILE_Q];
    __global const float *krow[TILE_K];
    for (int r = 0; r < TILE_Q; ++r) {
        uint i = q_begin + min(r0 + r, q_count - 1);
        qrow[r] = q + q_off + b * q_sb + h * q_sh + i * q_ss;
    }
    for (int c = 0; c < TILE_K; ++c) {
        uint j = min(j0 + c, seq_kv - 1);
        krow[c] = k + k_off + b * k_sb + hk * k_sh + j * k_ss;
    }

    float acc[TILE_Q][TILE_K];
    for (int r = 0; r < TILE_Q; ++r)
        for (int c = 0; c < TILE_K; ++c)
            acc[r][c] = 0.0f;
    for (uint d = 0; d < head_dim; ++d) {
        float qv[TILE_Q], kv[TILE_K];
        for (int r = 0; r < TILE_Q; ++r)
            qv[r] = qrow[r][d];
        for (int c = 0; c < TILE_K; ++c)
            kv[c] = krow[c][d];
        for (int r = 0; r < TILE_Q; ++r)
            for (int c = 0; c < TILE_K; ++c)
                acc[r][c] = fma(qv[r], kv[c], acc[r][c]);
    }

    const long valid_keys = key_len ? (long)key_len[b] : (long)seq_kv;
    /* Guards, not breaks, around the stores: loops with a constant trip
       count unroll whole, so acc stays in registers (with a break, AMD's
       compiler kept acc in 68 bytes of private memory). */
    for (int r = 0; r < TILE_Q; ++r) {
        if (r0 + r >= q_count)
            continue;
        const uint i = q_begin + r0 + r;
        const ulong m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
        __global float *srow =
            s + (s_off + (long)(b * s_sb + h * s_sh + i * s_ss));
        for (int c = 0; c < TILE_K; ++c) {
            const uint j = j0 + c;
            if (j >= seq_kv)
                continue;
            float x = acc[r][c] * scale;
            if (mask_add)
                x += mask_add[m_row + j];
            int masked = (long)j >= valid_keys;
            if (mask_bool)
                masked |= mask_bool[m_row + j] == 0;
            if (causal)
                masked |= (long)j > (long)i + causal_shift;
            srow[j] = masked ? -INFINITY : x;
        }
    }
}
