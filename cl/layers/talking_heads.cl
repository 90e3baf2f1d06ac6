/* Talking-heads attention (timm TalkingHeadAttn), both paths.

   The qkv projection's output [B*N][3C] is read in place as [B][N][3][H][D].
   K and V are first packed (th_pack_kv) so that every inner loop makes
   contiguous vector loads: K transposed into blocks of 16 keys [d][16 keys]
   with the softmax scale folded in, V into rows padded to a multiple of 16
   features. Then:
   - UNFUSED: th_logits writes the scaled logits [b][h][i][j]; th_mix_softmax
     mixes them across heads with proj_l and takes the row softmax;
     th_mix_dropout mixes the probabilities with proj_w and applies dropout
     (its output is the layer's `attn`); on CPU-class devices th_mix does
     both mixings a row of every head at a time; th_pv multiplies by V into
     the [B][N][C] layout of the output projection's input.
   - FUSED: th_fused, one work-item per TH_FUSED_ROWS query rows with all heads,
     never stores N x N: pass 1 streams the key blocks and keeps the online
     max and sum of every mixed head's row; pass 2 recomputes the mixed
     logits, normalizes, mixes with proj_w (bias included: the mixed
     weights of a row no longer sum to 1, and padded keys would get bw[g],
     so P'.V runs over the valid keys only), applies dropout and
     accumulates P'.V per output head.
   Work-items are CPU micro-kernels (register tiles of float16, no barriers,
   no __local; see docs/kernel-notes.md).

   Dropout: element (b, g, i, j) of the mixed weights has the flat index
   ((b*H + g)*N + i)*N + j in the stream of cl/core/philox.clh, in both paths;
   the Philox offset is the layer's count of earlier dropout calls. */
/* From core/sdpa_fused_common.clh: fused_load16 / fused_store16 (partial
   16-float rows), fused_hsum16, fused_exp2_neg16 (the softmax's exp2),
   FUSED_LOG2E; and philox4x32_10 from core/philox.clh, which it includes. */
/* TH_KEY_BLOCK (keys per packed K block), TH_LB (key blocks per
   th_logits work-item), TH_UNFUSED_ROWS and TH_FUSED_ROWS (query rows per
   work-item) come from talking_heads_params.clh, which the host reads. */
#ifndef CLATTN_EMBEDDED
#include "../core/sdpa_fused_common.clh"
#include "talking_heads_params.clh"
#endif

/* Lanes at or past n become fill. */
float16 th_tail(float16 x, uint n, float fill)
{
    if (n >= 16)
        return x;
    const int16 lane =
        (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return select((float16)fill, x, lane < (int16)((int)n));
}

/* fmax, unlike fused_hmax16 (which lets a NaN through): the rows here
   are reduced with the NaN-ignoring max. */
float th_hmax16(float16 v)
{
    float8 a = fmax(v.lo, v.hi);
    float4 b = fmax(a.lo, a.hi);
    float2 c = fmax(b.lo, b.hi);
    return fmax(c.x, c.y);
}

/* Dropout of 16 consecutive elements of one row, the first at flat index
   idx0, kept values scaled by `scale`. The CPU form makes one Philox call
   per 4 elements (cl/core/philox.clh's contract) into an array indexed at
   run time; GPU-class builds (TH_DROPOUT_PER_ELEMENT) make one call per
   element instead, as the fused SDPA kernels do, since the array would
   live in private memory there (and the five blocks shifted into place
   in registers make AMD's compiler spill scalar registers). */
float16 th_dropout16(float16 y, ulong idx0, uint threshold, float scale,
                     ulong seed, ulong offset)
{
#if TH_DROPOUT_PER_ELEMENT
    return fused_dropout16(y, idx0, 0, threshold, scale, seed, offset);
#else
    uint words[20];
    const ulong first = idx0 >> 2;
    const uint2 key = (uint2)((uint)seed, (uint)(seed >> 32));
    for (uint c = 0; c < 5; ++c) {
        const ulong blk = first + c;
        vstore4(philox4x32_10((uint4)((uint)blk, (uint)(blk >> 32),
                                      (uint)offset, (uint)(offset >> 32)),
                              key),
                c, words);
    }
    float tmp[16];
    vstore16(y, 0, tmp);
    const uint lane0 = (uint)(idx0 & 3);
    for (uint t = 0; t < 16; ++t)
        tmp[t] = (words[lane0 + t] >> 8) >= threshold ? tmp[t] * scale : 0.0f;
    return vload16(0, tmp);
#endif
}

/* ---- Packing (both paths) ------------------------------------------- */

/* Range (npad, batch * heads). Key j of (b, h): K row times scale to
   kt[((bh * npad/16 + j/16) * head_dim + d) * 16 + j%16], V row to
   vp[(bh * npad + j) * dpad + d]; keys past seq and features past head_dim
   are zeros. */
__kernel void th_pack_kv(__global const float *restrict qkv,
                         __global float *restrict kt,
                         __global float *restrict vp, uint heads, uint seq,
                         uint head_dim, uint dim, uint npad, uint dpad,
                         float scale)
{
    const uint j = (uint)get_global_id(0);
    const uint bh = (uint)get_global_id(1);
    const uint b = bh / heads, h = bh % heads;
    const int valid = j < seq;
    __global const float *k = qkv +
                              ((ulong)b * seq + (valid ? j : 0)) * 3 * dim +
                              dim + (ulong)h * head_dim;
    __global const float *v = k + dim;
    __global float *kb =
        kt +
        ((ulong)bh * (npad / TH_KEY_BLOCK) + j / TH_KEY_BLOCK) * head_dim *
            TH_KEY_BLOCK +
        j % TH_KEY_BLOCK;
    for (uint d = 0; d < head_dim; ++d)
        kb[(ulong)d * TH_KEY_BLOCK] = valid ? k[d] * scale : 0.0f;
    __global float *vr = vp + ((ulong)bh * npad + j) * dpad;
    for (uint d = 0; d < dpad; ++d)
        vr[d] = valid && d < head_dim ? v[d] : 0.0f;
}

/* ---- Unfused path ---------------------------------------------------- */
/* Score buffers are views: element (b, h, i, j) at
   s[s_off + b*s_sb + h*s_sh + i*s_ss + j] with b and i absolute, so a
   chunk's scratch takes an offset that wraps below zero (ulong arithmetic
   is modular) to put its first row at element 0. Each kernel covers the
   chunk of batches [b_begin, b_begin + nb) and rows [i_begin, i_end). */

/* Range (ceil(rows/TH_UNFUSED_ROWS), 1, nb * heads): logits of
   TH_UNFUSED_ROWS rows of one (b, h) by every key, 64 keys at a time
   accumulated over d in 16 float16 registers. One work-item per row tile
   over all keys, not per 64 keys: 3.5x faster on PoCL at N = 784, H = 16
   (docs/performance.md). */
__kernel void th_logits(__global const float *restrict qkv,
                        __global const float *restrict kt,
                        __global float *restrict s, ulong s_off, ulong s_sb,
                        ulong s_sh, ulong s_ss, uint heads, uint seq,
                        uint head_dim, uint dim, uint npad, uint b_begin,
                        uint i_begin, uint i_end)
{
    const uint i0 = i_begin + (uint)get_global_id(0) * TH_UNFUSED_ROWS;
    if (i0 >= i_end)
        return;
    const uint rows = min((uint)TH_UNFUSED_ROWS, i_end - i0);
    const uint bh = b_begin * heads + (uint)get_global_id(2);
    const uint b = bh / heads, h = bh % heads;
    __global const float *qr[TH_UNFUSED_ROWS];
    for (uint t = 0; t < TH_UNFUSED_ROWS; ++t)
        qr[t] = qkv + ((ulong)b * seq + i0 + min(t, rows - 1)) * 3 * dim +
                (ulong)h * head_dim;
    const ulong kstride = (ulong)head_dim * TH_KEY_BLOCK;
    for (uint jb0 = 0; jb0 < npad / TH_KEY_BLOCK; jb0 += TH_LB) {
        __global const float *kb =
            kt +
            ((ulong)bh * (npad / TH_KEY_BLOCK) + jb0) * head_dim * TH_KEY_BLOCK;
        float16 acc[TH_UNFUSED_ROWS][TH_LB];
        for (uint t = 0; t < TH_UNFUSED_ROWS; ++t)
            for (uint c = 0; c < TH_LB; ++c)
                acc[t][c] = (float16)0.0f;
        for (uint d = 0; d < head_dim; ++d) {
            __global const float *kd = kb + d * TH_KEY_BLOCK;
            const float16 k0 = vload16(0, kd), k1 = vload16(0, kd + kstride),
                          k2 = vload16(0, kd + 2 * kstride),
                          k3 = vload16(0, kd + 3 * kstride);
#pragma unroll
            for (uint t = 0; t < TH_UNFUSED_ROWS; ++t) {
                const float16 qv = (float16)qr[t][d];
                acc[t][0] = fma(qv, k0, acc[t][0]);
                acc[t][1] = fma(qv, k1, acc[t][1]);
                acc[t][2] = fma(qv, k2, acc[t][2]);
                acc[t][3] = fma(qv, k3, acc[t][3]);
            }
        }
#pragma unroll
        for (uint t = 0; t < TH_UNFUSED_ROWS; ++t) {
            if (t >= rows)
                continue;
            __global float *row =
                s + s_off + b * s_sb + h * s_sh + (i0 + t) * s_ss;
#pragma unroll
            for (uint c = 0; c < TH_LB; ++c) {
                const uint j = (jb0 + c) * TH_KEY_BLOCK;
                if (j < seq)
                    fused_store16(row + j, 0, seq - j, acc[t][c]);
            }
        }
    }
}

/* Row i of mixed head g: L'[g] = sum_h w[h] L[h] + bias (timm's proj_l,
   w its row g; head h's logits at in + h*in_sh), then its softmax over the
   keys, into out. */
void th_mix_softmax_row(__global const float *restrict in, ulong in_sh,
                        __global float *restrict out,
                        __global const float *restrict w, float bias,
                        uint heads, uint seq)
{
    /* The mixed row in log2 units, and its max. */
    float16 mx = (float16)(-INFINITY);
    for (uint j = 0; j < seq; j += 16) {
        const uint n = seq - j;
        float16 x = (float16)bias;
        for (uint h = 0; h < heads; ++h)
            x = fma((float16)w[h], fused_load16(in + h * in_sh + j, 0, n), x);
        x = th_tail(x * FUSED_LOG2E, n, -INFINITY);
        mx = fmax(mx, x);
        fused_store16(out + j, 0, n, x);
    }
    const float m = th_hmax16(mx);
    float16 sum = (float16)0.0f;
    for (uint j = 0; j < seq; j += 16) {
        const uint n = seq - j;
        const float16 e =
            th_tail(fused_exp2_neg16(fused_load16(out + j, 0, n) - m), n, 0.0f);
        sum += e;
        fused_store16(out + j, 0, n, e);
    }
    const float inv = 1.0f / fused_hsum16(sum);
    for (uint j = 0; j < seq; j += 16) {
        const uint n = seq - j;
        fused_store16(out + j, 0, n, fused_load16(out + j, 0, n) * inv);
    }
}

/* Row i of output head g: P'[g] = sum_h w[h] P[h] + bias (timm's proj_w;
   head h's probabilities at in + h*in_sh), then dropout, whose first
   element of the row has flat index row_first; into out. */
void th_mix_dropout_row(__global const float *restrict in, ulong in_sh,
                        __global float *restrict out,
                        __global const float *restrict w, float bias,
                        uint heads, uint seq, ulong row_first, uint threshold,
                        float drop_scale, ulong seed, ulong drop_offset)
{
    for (uint j = 0; j < seq; j += 16) {
        const uint n = seq - j;
        float16 y = (float16)bias;
        for (uint h = 0; h < heads; ++h)
            y = fma((float16)w[h], fused_load16(in + h * in_sh + j, 0, n), y);
        if (threshold)
            y = th_dropout16(y, row_first + j, threshold, drop_scale, seed,
                             drop_offset);
        fused_store16(out + j, 0, n, y);
    }
}

/* Range (nb * heads, rows): th_mix_softmax_row for row i of mixed head g.
   The head is the fastest index, so the work-items reading one row of
   all heads run together and find it in cache. GPU-class devices run
   this and th_mix_dropout; CPU-class ones th_mix. */
__kernel void th_mix_softmax(__global const float *restrict s, ulong s_off,
                             ulong s_sb, ulong s_sh, ulong s_ss,
                             __global float *restrict p, ulong p_off,
                             ulong p_sb, ulong p_sh, ulong p_ss,
                             __global const float *restrict wl,
                             __global const float *restrict bl, uint heads,
                             uint seq, uint b_begin, uint i_begin)
{
    const uint bg = b_begin * heads + (uint)get_global_id(0);
    const uint i = i_begin + (uint)get_global_id(1);
    const uint b = bg / heads, g = bg % heads;
    th_mix_softmax_row(s + s_off + b * s_sb + i * s_ss, s_sh,
                       p + p_off + b * p_sb + g * p_sh + i * p_ss,
                       wl + (ulong)g * heads, bl[g], heads, seq);
}

/* Range (nb * heads, rows): th_mix_dropout_row for row i of output
   head g. */
__kernel void th_mix_dropout(__global const float *restrict p, ulong p_off,
                             ulong p_sb, ulong p_sh, ulong p_ss,
                             __global float *restrict a, ulong a_off,
                             ulong a_sb, ulong a_sh, ulong a_ss,
                             __global const float *restrict ww,
                             __global const float *restrict bw, uint heads,
                             uint seq, uint b_begin, uint i_begin,
                             uint threshold, float drop_scale, ulong seed,
                             ulong drop_offset)
{
    const uint bg = b_begin * heads + (uint)get_global_id(0);
    const uint i = i_begin + (uint)get_global_id(1);
    const uint b = bg / heads, g = bg % heads;
    th_mix_dropout_row(p + p_off + b * p_sb + i * p_ss, p_sh,
                       a + a_off + b * a_sb + g * a_sh + i * a_ss,
                       ww + (ulong)g * heads, bw[g], heads, seq,
                       ((ulong)bg * seq + i) * seq, threshold, drop_scale, seed,
                       drop_offset);
}

/* Range (ceil(rows / TH_MIX_ROWS), nb): both head mixings of
   TH_MIX_ROWS query rows of batch b, every head, one row after the
   other. Each row's mixed probabilities (H x N floats) go to the
   work-item's own slot of mid, which its next row reuses, so they stay in
   cache between the two mixings: the logits are read from memory once and
   the weights written once, where th_mix_softmax and th_mix_dropout write
   and read a second score buffer in between. The same operations per
   element as that pair, so the same bits. a may be s (not restrict): a row
   of every head is read whole before any of it is written. */
__kernel void th_mix(__global const float *s, ulong s_off, ulong s_sb,
                     ulong s_sh, ulong s_ss, __global float *restrict mid,
                     __global float *a, ulong a_off, ulong a_sb, ulong a_sh,
                     ulong a_ss, __global const float *restrict wl,
                     __global const float *restrict bl,
                     __global const float *restrict ww,
                     __global const float *restrict bw, uint heads, uint seq,
                     uint b_begin, uint i_begin, uint i_end, uint threshold,
                     float drop_scale, ulong seed, ulong drop_offset)
{
    const uint b = b_begin + (uint)get_global_id(1);
    const uint r0 = i_begin + (uint)get_global_id(0) * TH_MIX_ROWS;
    __global float *slot = mid + ((ulong)get_global_id(1) * get_global_size(0) +
                                  get_global_id(0)) *
                                     heads * seq;
    for (uint i = r0; i < min(r0 + TH_MIX_ROWS, i_end); ++i) {
        __global const float *in = s + s_off + b * s_sb + i * s_ss;
        for (uint g = 0; g < heads; ++g)
            th_mix_softmax_row(in, s_sh, slot + (ulong)g * seq,
                               wl + (ulong)g * heads, bl[g], heads, seq);
        for (uint g = 0; g < heads; ++g)
            th_mix_dropout_row(slot, seq,
                               a + a_off + b * a_sb + g * a_sh + i * a_ss,
                               ww + (ulong)g * heads, bw[g], heads, seq,
                               ((ulong)(b * heads + g) * seq + i) * seq,
                               threshold, drop_scale, seed, drop_offset);
    }
}

/* acc[t][c] += sum_k y(t, k) * v[k][16 c ..] for ROWS rows t and NC
   16-feature chunks from chunk c0, over keys k < NK: NC and ROWS are
   constants, so the NC x ROWS accumulators stay in registers and no lane
   is spent on chunks past dpad. acc rows: ACC(t) (a float pointer), V
   rows: vb + k*dpad. The weights come from a float16 state per row,
   ys_[t] = YINIT(t), read as Y(t, k, ys_[t]) and advanced by
   ys_[t] = YNEXT(ys_[t]) after each key: th_fused keeps a block's 16
   weights in one vector and rotates it, so no array is indexed by the
   key at run time (GPU compilers put such arrays in private memory);
   th_pv reads its weights from memory and leaves the state unused. */
#define TH_PV_GROUP(NC, ROWS, NK, ACC, YINIT, Y, YNEXT)                        \
    {                                                                          \
        float16 a_[ROWS][NC], ys_[ROWS];                                       \
        _Pragma("unroll") for (uint t = 0; t < ROWS; ++t)                      \
        {                                                                      \
            ys_[t] = YINIT(t);                                                 \
            _Pragma("unroll") for (uint c = 0; c < NC; ++c) a_[t][c] =         \
                vload16(c0 + c, ACC(t));                                       \
        }                                                                      \
        for (uint k = 0; k < (NK); ++k) {                                      \
            __global const float *vr = vb + (ulong)k * dpad + c0 * 16;         \
            float16 v_[NC];                                                    \
            _Pragma("unroll") for (uint c = 0; c < NC; ++c) v_[c] =            \
                vload16(c, vr);                                                \
            _Pragma("unroll") for (uint t = 0; t < ROWS; ++t)                  \
            {                                                                  \
                const float16 yv = (float16)(Y(t, k, ys_[t]));                 \
                _Pragma("unroll") for (uint c = 0; c < NC; ++c) a_[t][c] =     \
                    fma(yv, v_[c], a_[t][c]);                                  \
                ys_[t] = YNEXT(ys_[t]);                                        \
            }                                                                  \
        }                                                                      \
        _Pragma("unroll") for (uint t = 0; t < ROWS; ++t)                      \
            _Pragma("unroll") for (uint c = 0; c < NC; ++c)                    \
                vstore16(a_[t][c], c0 + c, ACC(t));                            \
    }

/* Every chunk of dpad, four at a time, then the 3, 2 or 1 left. */
#define TH_PV_ALL(ROWS, NK, ACC, YINIT, Y, YNEXT)                              \
    {                                                                          \
        const uint nch = dpad / 16;                                            \
        uint c0 = 0;                                                           \
        for (; c0 + 4 <= nch; c0 += 4)                                         \
            TH_PV_GROUP(4, ROWS, NK, ACC, YINIT, Y, YNEXT)                     \
        if (nch - c0 == 3)                                                     \
            TH_PV_GROUP(3, ROWS, NK, ACC, YINIT, Y, YNEXT)                     \
        else if (nch - c0 == 2)                                                \
            TH_PV_GROUP(2, ROWS, NK, ACC, YINIT, Y, YNEXT)                     \
        else if (nch - c0 == 1)                                                \
            TH_PV_GROUP(1, ROWS, NK, ACC, YINIT, Y, YNEXT)                     \
    }

/* Range (ceil(rows/TH_UNFUSED_ROWS), nb * heads): TH_UNFUSED_ROWS rows of
   out[b][i][g*D + d] = sum_j A[b][g][i][j] V[b][j][g][d], accumulated in
   the padded rows of pv_acc (dpad floats per row) and then written in the
   [B][N][C] layout the output projection reads. pv_acc holds
   TH_UNFUSED_ROWS * dpad floats per work-item. */
__kernel void th_pv(__global const float *restrict a, ulong a_off, ulong a_sb,
                    ulong a_sh, ulong a_ss, __global const float *restrict vp,
                    __global float *restrict pv_acc, __global float *restrict o,
                    uint heads, uint seq, uint head_dim, uint dim, uint npad,
                    uint dpad, uint b_begin, uint i_begin, uint i_end)
{
    const uint i0 = i_begin + (uint)get_global_id(0) * TH_UNFUSED_ROWS;
    if (i0 >= i_end)
        return;
    const uint rows = min((uint)TH_UNFUSED_ROWS, i_end - i0);
    const uint bg = b_begin * heads + (uint)get_global_id(1);
    const uint b = bg / heads, g = bg % heads;

    __global const float *ar[TH_UNFUSED_ROWS];
    for (uint t = 0; t < TH_UNFUSED_ROWS; ++t)
        ar[t] =
            a + a_off + b * a_sb + g * a_sh + (i0 + min(t, rows - 1)) * a_ss;
    __global const float *vb = vp + (ulong)bg * npad * dpad;
    __global float *acc =
        pv_acc +
        ((ulong)get_global_id(1) * get_global_size(0) + get_global_id(0)) *
            TH_UNFUSED_ROWS * dpad;
    for (uint e = 0; e < TH_UNFUSED_ROWS * dpad; ++e)
        acc[e] = 0.0f;
#define TH_PV_ACC(t) (acc + (t)*dpad)
#define TH_PV_YINIT(t) ((float16)0.0f)
#define TH_PV_Y(t, k, state) (ar[t][k])
#define TH_PV_YNEXT(state) (state)
    TH_PV_ALL(TH_UNFUSED_ROWS, seq, TH_PV_ACC, TH_PV_YINIT, TH_PV_Y,
              TH_PV_YNEXT)
#undef TH_PV_ACC
#undef TH_PV_YINIT
#undef TH_PV_Y
#undef TH_PV_YNEXT
    for (uint t = 0; t < rows; ++t) {
        __global float *orow =
            o + ((ulong)b * seq + i0 + t) * dim + (ulong)g * head_dim;
        for (uint d = 0; d < head_dim; ++d)
            orow[d] = acc[t * dpad + d];
    }
}

/* ---- Fused path ------------------------------------------------------ */

/* Logits of TH_FUSED_ROWS rows by the 16 keys of block jb, every head, into
   st[(h*TH_FUSED_ROWS + t)*16 + key]. */
void th_fused_logits(__global const float *const *qr,
                     __global const float *restrict kt,
                     __global float *restrict st, uint heads, uint head_dim,
                     uint nblk_pad, uint bh0, uint jb)
{
    for (uint h = 0; h < heads; ++h) {
        __global const float *kb =
            kt + ((ulong)(bh0 + h) * nblk_pad + jb) * head_dim * TH_KEY_BLOCK;
        const ulong qo = (ulong)h * head_dim;
        float16 acc[TH_FUSED_ROWS];
        for (uint t = 0; t < TH_FUSED_ROWS; ++t)
            acc[t] = (float16)0.0f;
        for (uint d = 0; d < head_dim; ++d) {
            const float16 k = vload16(d, kb);
#pragma unroll
            for (uint t = 0; t < TH_FUSED_ROWS; ++t)
                acc[t] = fma((float16)qr[t][qo + d], k, acc[t]);
        }
        for (uint t = 0; t < TH_FUSED_ROWS; ++t)
            vstore16(acc[t], h * TH_FUSED_ROWS + t, st);
    }
}

/* Head mixing of a tile src[h][t][16 keys] for the 4 output heads
   g0 .. g0+3 (indices past heads-1 repeat the last head; callers use only
   the valid ones): x[u][t] = bias[g0+u] + sum_h W[g0+u][h] src[h][t]. 16
   accumulators, each source vector loaded once for the 4 heads. */
void th_mix4(__global const float *restrict src,
             __global const float *restrict w,
             __global const float *restrict bias, uint heads, uint g0,
             float16 x[4][TH_FUSED_ROWS])
{
    uint g[4];
    for (uint u = 0; u < 4; ++u)
        g[u] = min(g0 + u, heads - 1);
#pragma unroll
    for (uint u = 0; u < 4; ++u)
#pragma unroll
        for (uint t = 0; t < TH_FUSED_ROWS; ++t)
            x[u][t] = (float16)bias[g[u]];
    for (uint h = 0; h < heads; ++h) {
        float16 sv[TH_FUSED_ROWS];
#pragma unroll
        for (uint t = 0; t < TH_FUSED_ROWS; ++t)
            sv[t] = vload16(h * TH_FUSED_ROWS + t, src);
#pragma unroll
        for (uint u = 0; u < 4; ++u) {
            const float16 wv = (float16)w[(ulong)g[u] * heads + h];
#pragma unroll
            for (uint t = 0; t < TH_FUSED_ROWS; ++t)
                x[u][t] = fma(wv, sv[t], x[u][t]);
        }
    }
}

/* y_u for u in 0..3, chosen in two halving steps. */
float16 th_pick4(float16 y0, float16 y1, float16 y2, float16 y3, uint u)
{
    const float16 lo = (u & 1) ? y1 : y0, hi = (u & 1) ? y3 : y2;
    return (u & 2) ? hi : lo;
}

/* th_mix4 of the logits tile st with proj_l, in log2 units, keys at or
   past the block's valid ones at -inf: the mixed logits both passes of
   th_fused start from. tail_inf is 0 for a valid key and -inf past them
   (th_tail of zeros, once per block): added, not selected per tile, so
   the lane compares are made once (AMD's compiler kept a mask per tile
   and lane in scalar registers, and spilled them). A padded key's mixed
   logit is bl[g] (its K is zeros), finite for finite weights. */
void th_mixed_logits(__global const float *restrict st,
                     __global const float *restrict wl,
                     __global const float *restrict bl, uint heads, uint g0,
                     float16 tail_inf, float16 x[4][TH_FUSED_ROWS])
{
    th_mix4(st, wl, bl, heads, g0, x);
#pragma unroll
    for (uint u = 0; u < 4; ++u)
#pragma unroll
        for (uint t = 0; t < TH_FUSED_ROWS; ++t)
            x[u][t] = x[u][t] * FUSED_LOG2E + tail_inf;
}

/* Range (ceil(seq/TH_FUSED_ROWS), batch). Work-item scratch (`per` floats at
   scratch + wi*per, wi = b * get_global_size(0) + gid0):
   st, pt [heads][TH_FUSED_ROWS][16] (logits, probabilities of one key block),
   ms, ls [heads][TH_FUSED_ROWS] (row max in log2 units, row sum then its
   inverse),
   acc [TH_FUSED_ROWS][heads][dpad] (the P'.V accumulators). */
__kernel void
th_fused(__global const float *restrict qkv, __global const float *restrict kt,
         __global const float *restrict vp, __global const float *restrict wl,
         __global const float *restrict bl, __global const float *restrict ww,
         __global const float *restrict bw, __global float *restrict scratch,
         ulong per, __global float *restrict o, uint heads, uint seq,
         uint head_dim, uint dim, uint npad, uint dpad, uint threshold,
         float drop_scale, ulong seed, ulong drop_offset)
{
    const uint i0 = (uint)get_global_id(0) * TH_FUSED_ROWS;
    const uint b = (uint)get_global_id(1);
    if (i0 >= seq)
        return;
    const uint rows = min((uint)TH_FUSED_ROWS, seq - i0);
    const ulong wi = (ulong)b * get_global_size(0) + get_global_id(0);
    __global float *st = scratch + wi * per;
    __global float *pt = st + heads * TH_FUSED_ROWS * 16;
    __global float *ms = pt + heads * TH_FUSED_ROWS * 16;
    __global float *ls = ms + heads * TH_FUSED_ROWS;
    __global float *acc = ls + heads * TH_FUSED_ROWS;
    const ulong acc_ss = (ulong)heads * dpad; /* between rows */

    __global const float *qr[TH_FUSED_ROWS];
    for (uint t = 0; t < TH_FUSED_ROWS; ++t)
        qr[t] = qkv + ((ulong)b * seq + i0 + min(t, rows - 1)) * 3 * dim;
    const uint nblk = (seq + TH_KEY_BLOCK - 1) / TH_KEY_BLOCK;
    const uint nblk_pad = npad / TH_KEY_BLOCK;
    const uint bh0 = b * heads;

    for (uint r = 0; r < heads * TH_FUSED_ROWS; ++r) {
        ms[r] = -INFINITY;
        ls[r] = 0.0f;
    }
    for (ulong e = 0; e < TH_FUSED_ROWS * acc_ss; ++e)
        acc[e] = 0.0f;

    /* Pass 1: online max and sum of every mixed row. Every block has a
       valid key, so the max is finite after the first. */
    for (uint jb = 0; jb < nblk; ++jb) {
        const uint n = min((uint)TH_KEY_BLOCK, seq - jb * TH_KEY_BLOCK);
        const float16 tail_inf = th_tail((float16)0.0f, n, -INFINITY);
        th_fused_logits(qr, kt, st, heads, head_dim, nblk_pad, bh0, jb);
        for (uint g0 = 0; g0 < heads; g0 += 4) {
            float16 x[4][TH_FUSED_ROWS];
            th_mixed_logits(st, wl, bl, heads, g0, tail_inf, x);
            /* Loops over the 4 heads with a guard, not a bound of
               min(4, heads - g0): a constant trip count unrolls, and x
               stays in registers (indexed at run time it was a stack
               array on GPU compilers). */
#pragma unroll
            for (uint u = 0; u < 4; ++u)
#pragma unroll
                for (uint t = 0; t < TH_FUSED_ROWS; ++t) {
                    if (u >= heads - g0)
                        continue;
                    const uint r = (g0 + u) * TH_FUSED_ROWS + t;
                    const float16 xv = x[u][t];
                    /* The max rarely moves after the first blocks: the
                       rescale's exp2 is skipped then. */
                    const float mx = th_hmax16(xv);
                    float m = ms[r], l = ls[r];
                    if (mx > m) {
                        l *= exp2(m - mx); /* m = -inf: l = 0 anyway */
                        m = mx;
                        ms[r] = m;
                    }
                    ls[r] = l + fused_hsum16(fused_exp2_neg16(xv - m));
                }
        }
    }
    for (uint r = 0; r < heads * TH_FUSED_ROWS; ++r)
        ls[r] = 1.0f / ls[r];

    /* Pass 2: probabilities, the second mix, dropout, P'.V. */
    for (uint jb = 0; jb < nblk; ++jb) {
        const uint n = min((uint)TH_KEY_BLOCK, seq - jb * TH_KEY_BLOCK);
        const float16 tail_inf = th_tail((float16)0.0f, n, -INFINITY);
        const float16 tail_one = th_tail((float16)1.0f, n, 0.0f);
        th_fused_logits(qr, kt, st, heads, head_dim, nblk_pad, bh0, jb);
        for (uint g0 = 0; g0 < heads; g0 += 4) {
            float16 x[4][TH_FUSED_ROWS];
            th_mixed_logits(st, wl, bl, heads, g0, tail_inf, x);
#pragma unroll
            for (uint u = 0; u < 4; ++u)
#pragma unroll
                for (uint t = 0; t < TH_FUSED_ROWS; ++t) {
                    if (u >= heads - g0)
                        continue;
                    const uint r = (g0 + u) * TH_FUSED_ROWS + t;
                    vstore16(fused_exp2_neg16(x[u][t] - ms[r]) * ls[r], r, pt);
                }
        }
        for (uint g0 = 0; g0 < heads; g0 += 4) {
            float16 y[4][TH_FUSED_ROWS];
            th_mix4(pt, ww, bw, heads, g0, y);
            /* Not unrolled: four copies of the P'.V loops made AMD's
               compiler spill scalar registers. Head u's tile is picked
               by selects (th_pick4), not by a run-time index, which
               would put y in private memory. */
#pragma unroll 1
            for (uint u = 0; u < min(4u, heads - g0); ++u) {
                const uint g = g0 + u;
                /* Keys past n get weight 0 (tail_one), not bw[g]: their
                   packed V rows are zeros, so all 16 keys are
                   accumulated. */
                float16 yt[TH_FUSED_ROWS];
#pragma unroll
                for (uint t = 0; t < TH_FUSED_ROWS; ++t) {
                    yt[t] = th_pick4(y[0][t], y[1][t], y[2][t], y[3][t], u) *
                            tail_one;
                    if (threshold) {
                        const uint i = i0 + min(t, rows - 1);
                        yt[t] = th_dropout16(
                            yt[t],
                            (((ulong)(bh0 + g)) * seq + i) * seq +
                                jb * TH_KEY_BLOCK,
                            threshold, drop_scale, seed, drop_offset);
                    }
                }
                __global float *ag = acc + (ulong)g * dpad;
                __global const float *vb =
                    vp + ((ulong)(bh0 + g) * npad + jb * TH_KEY_BLOCK) * dpad;
#define TH_FPV_ACC(t) (ag + (t)*acc_ss)
#define TH_FPV_YINIT(t) (yt[t])
#define TH_FPV_Y(t, k, state) ((state).s0)
#define TH_FPV_YNEXT(state) ((state).s123456789abcdef0)
                TH_PV_ALL(TH_FUSED_ROWS, TH_KEY_BLOCK, TH_FPV_ACC, TH_FPV_YINIT,
                          TH_FPV_Y, TH_FPV_YNEXT)
#undef TH_FPV_ACC
#undef TH_FPV_YINIT
#undef TH_FPV_Y
#undef TH_FPV_YNEXT
            }
        }
    }

    for (uint t = 0; t < rows; ++t) {
        __global float *orow = o + ((ulong)b * seq + i0 + t) * dim;
        for (uint g = 0; g < heads; ++g)
            for (uint d = 0; d < head_dim; ++d)
                orow[(ulong)g * head_dim + d] = acc[t * acc_ss + g * dpad + d];
    }
}
