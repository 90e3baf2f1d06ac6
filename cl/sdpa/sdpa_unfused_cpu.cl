/* The unfused SDPA path on CPU-class devices: the three steps of
   sdpa_scores.cl, sdpa_softmax.cl and sdpa_pv.cl, over the same score
   views and with the same results, as register-tiled kernels in the style
   of fused_cpu_rows. K and V are packed once per call by fused_pack_kv;
   each work-item takes FC_RW rows of one (batch, head) against one block
   of 64 keys (scores) or 64 value features (P.V), in tiles of FC_RT rows
   held as float16 accumulators. No barriers, no __local: on PoCL a
   work-group barrier costs more than the work between two of them
   (docs/kernel-notes.md). Head dims have no limit here: K's features are a
   loop, V's are blocks of 64. */
#ifndef CLATTN_EMBEDDED
#include "../core/sdpa_fused_common.clh"
#include "sdpa_fused_params.clh"
#endif

/* The key end of a tile whose last row is query i: keys from it on are
   masked (key lengths, causal limit) in every row of the tile. */
uint unfused_tile_key_end(__global const int *key_len, uint b, uint seq_kv,
                          int causal, long causal_shift, uint i)
{
    return fused_key_end(fused_kv_valid(key_len, b, seq_kv), causal,
                         fused_causal_last(i, causal_shift));
}

/* Step 1, grid (key blocks, ceil(q_count / FC_RW), bh pairs): scores
   s = q.k * scale, the additive mask added, masked keys -inf, exactly as
   sdpa_scores forms them (the products summed over d in order). A tile's
   block past its key end is written as -inf without being computed. */
__kernel void unfused_cpu_scores(
    __global const float *q, ulong q_off, ulong q_sb, ulong q_sh, ulong q_ss,
    __global const float *kp, __global float *s, long s_off, ulong s_sb,
    ulong s_sh, ulong s_ss, __global const uchar *mask_bool,
    __global const float *mask_add, ulong m_off, ulong m_sb, ulong m_sh,
    ulong m_ss, __global const int *key_len, uint heads_q, uint group,
    uint seq_kv, uint head_dim, uint nblk, float scale, int causal,
    long causal_shift, uint q_begin, uint q_count, uint bh_begin)
{
    const uint blk = (uint)get_global_id(0);
    const uint r_first = (uint)get_global_id(1) * FC_RW;
    if (r_first >= q_count)
        return;
    const uint bh = bh_begin + (uint)get_global_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, bhk = bh / group;
    const uint rows = min((uint)FC_RW, q_count - r_first);
    const uint j0 = blk * FC_BK, width = min((uint)FC_BK, seq_kv - j0);
    fused_masks mk =
        fused_masks_make(mask_bool, mask_add, seq_kv,
                         fused_kv_valid(key_len, b, seq_kv), causal);
    __global const float *kb =
        kp + ((ulong)bhk * nblk + blk) * FC_BK * head_dim;
    for (uint r0 = 0; r0 < rows; r0 += FC_RT) {
        const uint last_row = min(r0 + FC_RT, rows) - 1;
        const uint i_first = q_begin + r_first + r0;
        float16 sc[FC_RT][4];
        for (uint t = 0; t < FC_RT; ++t)
            for (uint c = 0; c < 4; ++c)
                sc[t][c] = (float16)0.0f;
        if (j0 < unfused_tile_key_end(key_len, b, seq_kv, causal, causal_shift,
                                      q_begin + r_first + last_row)) {
            /* Rows past the last are repeats of it, computed, not stored. */
            __global const float *qr[FC_RT];
            for (uint t = 0; t < FC_RT; ++t)
                qr[t] = q + q_off + b * q_sb + h * q_sh +
                        (i_first + min(t, last_row - r0)) * q_ss;
            FC_SCORES_TILE(sc, qr, kb, head_dim);
        }
        /* Guarded, constant trip counts: sc is never indexed at run time. */
#pragma unroll
        for (uint t = 0; t < FC_RT; ++t) {
            if (r0 + t > last_row)
                continue;
            const uint i = i_first + t;
            mk.m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
            mk.causal_last = fused_causal_last(i, causal_shift);
            const int masked = fused_block_needs_mask(j0, FC_BK, &mk);
            __global float *srow =
                s + (s_off + (long)(b * s_sb + h * s_sh + i * s_ss)) + j0;
#pragma unroll
            for (uint c = 0; c < 4; ++c) {
                float16 x = sc[t][c] * scale;
                if (masked)
                    x = fused_mask16(x, j0 + 16 * c, &mk);
                fused_store16(srow, c, width, x);
            }
        }
    }
}

/* The row's max over its n scores, 16 at a time; fused_max16, so a NaN
   score may or may not be the max: either way its weight is NaN, and so
   the row. */
float unfused_row_max(__global const float *row, uint n)
{
    const int16 lane =
        (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    float16 mx = (float16)(-INFINITY);
    for (uint c = 0; 16 * c < n; ++c) {
        float16 x = fused_load16(row, c, n);
        if (16 * c + 16 > n)
            x = select((float16)(-INFINITY), x,
                       lane + (int16)(16 * (int)c) < (int16)((int)n));
        mx = fused_max16(mx, x);
    }
    return fused_hmax16(mx);
}

/* Step 2, grid (q_count, bh pairs), one row per work-item, in place:
   max (one read), e = e^(s - M) stored and summed (block sums in
   registers, Kahan across blocks, as the fused kernels sum), then
   p = e / L with dropout at sdpa_softmax's Philox positions. The row is
   read from memory once; the other passes find it in L1/L2. A row whose
   every key is masked is zeros with LSE -inf; a NaN stays NaN. */
__kernel void unfused_cpu_softmax(__global float *s, long s_off, ulong s_sb,
                                  ulong s_sh, ulong s_ss, __global float *lse,
                                  ulong l_off, ulong l_sb, ulong l_sh,
                                  ulong l_ss, uint heads_q, uint seq_q,
                                  uint seq_kv, uint q_begin, uint bh_begin,
                                  uint drop_threshold, float drop_scale,
                                  ulong drop_seed, ulong drop_offset)
{
    const uint i = q_begin + (uint)get_global_id(0);
    const uint bh = bh_begin + (uint)get_global_id(1);
    const uint b = bh / heads_q, h = bh % heads_q;
    __global float *row = s + (s_off + (long)(b * s_sb + h * s_sh + i * s_ss));

    const float m = unfused_row_max(row, seq_kv);
    const float base = fused_max_base(m);
    float sum = 0.0f, comp = 0.0f;
    for (uint j0 = 0; j0 < seq_kv; j0 += FC_BK) {
        const uint width = min((uint)FC_BK, seq_kv - j0);
        float16 psum = (float16)0.0f;
        for (uint c = 0; c < 4; ++c) {
            const float16 e =
                fused_weights16(fused_load16(row + j0, c, width), base);
            /* lanes past the row loaded zeros: their e is not stored, and
               must not be summed */
            psum += 16 * c + 16 <= width
                        ? e
                        : select((float16)0.0f, e,
                                 (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                         12, 13, 14, 15) +
                                         (int16)(16 * (int)c) <
                                     (int16)((int)width));
            fused_store16(row + j0, c, width, e);
        }
        fused_kahan1(&sum, &comp, fused_hsum16(psum));
    }
    if (lse)
        lse[l_off + b * l_sb + h * l_sh + i * l_ss] =
            sum == 0.0f ? -INFINITY : m + log(sum);
    /* L = 0: every key masked, the row is zeros (NaN stays NaN). */
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    const ulong first = (((ulong)b * heads_q + h) * seq_q + i) * seq_kv;
    for (uint j0 = 0; j0 < seq_kv; j0 += 16) {
        float16 p = fused_load16(row + j0, 0, seq_kv - j0) * inv;
        if (drop_threshold)
            p = fused_dropout16(p, first, j0, drop_threshold, drop_scale,
                                drop_seed, drop_offset);
        fused_store16(row + j0, 0, seq_kv - j0, p);
    }
}

/* Whether any of row's first n probabilities is nonzero. */
int unfused_any_weight(__global const float *row, uint n)
{
    for (uint j = 0; j < n; ++j)
        if (row[j] != 0.0f)
            return 1;
    return 0;
}

/* Step 3, grid (dv_pad / 64, ceil(q_count / FC_RW), bh pairs): O = P V
   for 64 value features, keys up to the tile's key end (the weights past
   it are zeros). Past FC_PLAIN_KEYS keys each block of FC_BK is summed
   plainly and added with Kahan compensation, as sdpa_pv sums. A row whose
   weights are all zero is zeros even where V holds inf or NaN, which
   0 * V would not give: checked only when the sum is not finite. */
__kernel void
unfused_cpu_pv(__global const float *p, long p_off, ulong p_sb, ulong p_sh,
               ulong p_ss, __global const float *vp, __global float *o,
               ulong o_off, ulong o_sb, ulong o_sh, ulong o_ss,
               __global const int *key_len, uint heads_q, uint group,
               uint seq_kv, uint head_dim_v, uint dv_pad, uint nblk, int causal,
               long causal_shift, uint q_begin, uint q_count, uint bh_begin)
{
    const uint cg = (uint)get_global_id(0) * 4; /* first float16 chunk */
    const uint r_first = (uint)get_global_id(1) * FC_RW;
    if (r_first >= q_count)
        return;
    const uint bh = bh_begin + (uint)get_global_id(2);
    const uint b = bh / heads_q, h = bh % heads_q, bhk = bh / group;
    const uint rows = min((uint)FC_RW, q_count - r_first);
    __global const float *vb =
        vp + (ulong)bhk * nblk * FC_BK * dv_pad + 16 * cg;
    for (uint r0 = 0; r0 < rows; r0 += FC_RT) {
        const uint last_row = min(r0 + FC_RT, rows) - 1;
        const uint i_first = q_begin + r_first + r0;
        const uint key_end = unfused_tile_key_end(
            key_len, b, seq_kv, causal, causal_shift, i_first + last_row - r0);
        __global const float *pr[FC_RT];
        for (uint t = 0; t < FC_RT; ++t)
            pr[t] =
                p + (p_off + (long)(b * p_sb + h * p_sh +
                                    (i_first + min(t, last_row - r0)) * p_ss));
        float16 acc[FC_RT][4];
        for (uint t = 0; t < FC_RT; ++t)
            for (uint c = 0; c < 4; ++c)
                acc[t][c] = (float16)0.0f;
        if (key_end <= FC_PLAIN_KEYS) {
            FC_OUTER_TILE(acc, key_end, vb + (ulong)x * dv_pad, pr[t][x]);
        } else {
            float16 comp[FC_RT][4];
            for (uint t = 0; t < FC_RT; ++t)
                for (uint c = 0; c < 4; ++c)
                    comp[t][c] = (float16)0.0f;
            for (uint jb = 0; jb < key_end; jb += FC_BK) {
                float16 part[FC_RT][4];
                for (uint t = 0; t < FC_RT; ++t)
                    for (uint c = 0; c < 4; ++c)
                        part[t][c] = (float16)0.0f;
                FC_OUTER_TILE(part, min((uint)FC_BK, key_end - jb),
                              vb + (ulong)(jb + x) * dv_pad, pr[t][jb + x]);
                for (uint t = 0; t < FC_RT; ++t)
                    for (uint c = 0; c < 4; ++c)
                        fused_kahan16(&acc[t][c], &comp[t][c], part[t][c]);
            }
        }
#pragma unroll
        for (uint t = 0; t < FC_RT; ++t) {
            if (r0 + t > last_row)
                continue;
            const uint i = i_first + t;
            __global float *orow = o + o_off + b * o_sb + h * o_sh + i * o_ss;
            int16 bad = (int16)0;
#pragma unroll
            for (uint c = 0; c < 4; ++c)
                bad |= isnan(acc[t][c]) | isinf(acc[t][c]);
            const int zero = any(bad) && !unfused_any_weight(pr[t], seq_kv);
#pragma unroll
            for (uint c = 0; c < 4; ++c)
                fused_store16(orow, cg + c, head_dim_v,
                              zero ? (float16)0.0f : acc[t][c]);
        }
    }
}
