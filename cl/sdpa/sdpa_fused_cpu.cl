/* Fused SDPA, CPU-class variant: online softmax with no score matrix.

   Written for devices that run the work-items of a group one after another
   on one core (PoCL's CPU device): each work-item is a register-tiled
   micro-kernel with explicit float16 vectors, no barriers and no __local.
   - fused_pack_kv copies K into blocks of 64 keys laid out [d][64 keys] and
     V into rows padded to a multiple of 64 features, so the inner loops
     make contiguous, aligned vector loads (docs/kernel-notes.md: strided
     rows alias in cache).
   - fused_cpu_rows: one work-item owns FC_RW query rows and streams the key
     blocks past them, FC_RT rows at a time: 16 float16 accumulators for
     Q.K^T, then 16 for P.V. Each K/V block is reused by all FC_RW rows
     while it is in cache.
   - fused_cpu_decode: for a handful of query rows (decode), vectors run
     over the feature dim instead, and K/V are read in place (packing would
     triple the memory traffic of a memory-bound kernel).
   Both can cover a slice of the keys (split) and then write unnormalized
   partial results that fused_merge (sdpa_fused_merge.cl) combines.
   - With probs: fused_cpu_probs (the materialize plan, also MHA's head
     average) or fused_cpu_weights after fused_cpu_rows (the recompute
     plan), both on the packed K/V (docs/api.md, section 7a). */
/* FC_* and FD_* (tiles, rows per work-item, compensation lengths) and
   FC_DVC come from sdpa_fused_params.clh, which the host reads too. */
#ifndef CLATTN_EMBEDDED
#include "../core/kv_dtype.clh"
#include "../core/seq_varlen.clh"
#include "../core/kv_pages.clh"
#include "../core/sdpa_fused_common.clh"
#include "sdpa_fused_params.clh"
#endif

/* One work-item per (padded key j, bhk): K row j to kp[blk][d][j % 64], V
   row j to vp[j][0 .. dv_pad); keys past seq_kv and features past
   head_dim_v are zeros. K is copied unscaled: the scale multiplies q.k, as
   on the unfused path, so a large scale cannot overflow k * scale where
   the score itself is finite. */
__kernel void fused_pack_kv(__global const K_ELEM *k, ulong k_off, ulong k_sb,
                            ulong k_sh, ulong k_ss, __global const V_ELEM *v,
                            ulong v_off, ulong v_sb, ulong v_sh,
                            ulong v_ss KV_PAGE_PARAMS, __global float *kp,
                            __global float *vp, uint heads_kv, uint seq_kv,
                            uint head_dim, uint head_dim_v, uint dv_pad,
                            uint nblk SEQ_VARLEN_PARAMS, uint bhk_begin)
{
    const uint j = (uint)get_global_id(0);
    const uint bhk = bhk_begin + (uint)get_global_id(1);
    const uint b = bhk / heads_kv, hk = bhk % heads_kv;
    /* A packed batch's shorter sequences: blocks past their keys are
       never read, so they are not written either. */
    const uint keys = SEQ_K_ROWS(b, seq_kv);
    if (j - j % FC_BK >= keys)
        return;
    const int valid = j < keys;
    const uint jr = valid ? j : 0;
    __global const K_ELEM *krow =
        KV_HEAD(k, k_off, b, hk, k_sb, k_sh) + KV_ROW(b, jr, k_sb, k_ss);
    __global const V_ELEM *vrow =
        KV_HEAD(v, v_off, b, hk, v_sb, v_sh) + KV_ROW(b, jr, v_sb, v_ss);
    __global float *kb =
        kp + ((ulong)bhk * nblk + j / FC_BK) * head_dim * FC_BK + j % FC_BK;
    for (uint d = 0; d < head_dim; ++d)
        kb[(ulong)d * FC_BK] = valid ? K_LOAD(krow, d) : 0.0f;
    __global float *vr = vp + ((ulong)bhk * nblk * FC_BK + j) * dv_pad;
    for (uint c = 0; c < dv_pad; ++c)
        vr[c] = valid && c < head_dim_v ? V_LOAD(vrow, c) : 0.0f;
}

/* ACC[t][c] += SCALAR * vload16(c, ROW) for c < 4, over x < N, for
   FC_RT rows t: FC_RT x 64 results in 16 float16 registers, one row of
   four vectors loaded per x and reused by every t. ROW and SCALAR are
   expressions in x (and t). The two tiles below are this loop, written
   once and expanded in place, as the hot loops were before they had
   several users. */
#define FC_OUTER_TILE(ACC, N, ROW, SCALAR)                                     \
    for (uint x = 0; x < (N); ++x) {                                           \
        __global const float *r_ = (ROW);                                      \
        const float16 v0 = vload16(0, r_), v1 = vload16(1, r_),                \
                      v2 = vload16(2, r_), v3 = vload16(3, r_);                \
        _Pragma("unroll") for (uint t = 0; t < FC_RT; ++t)                     \
        {                                                                      \
            const float16 b_ = (float16)(SCALAR);                              \
            (ACC)[t][0] = fma(b_, v0, (ACC)[t][0]);                            \
            (ACC)[t][1] = fma(b_, v1, (ACC)[t][1]);                            \
            (ACC)[t][2] = fma(b_, v2, (ACC)[t][2]);                            \
            (ACC)[t][3] = fma(b_, v3, (ACC)[t][3]);                            \
        }                                                                      \
    }

/* S[t][c] += the scores of FC_RT query rows (row t at QR[t]) against one
   packed K block KB ([d][64 keys]) over HEAD_DIM features (fused_cpu_rows,
   fused_cpu_weights, fused_cpu_probs). */
#define FC_SCORES_TILE(S, QR, KB, HEAD_DIM)                                    \
    FC_OUTER_TILE(S, HEAD_DIM, (KB) + x * FC_BK, (QR)[t][x])

/* A[t][c] = the P V of FC_RT rows' weights PT[t][0..64) against one
   packed V block VB (64 rows of DV_PAD features), for features
   [16 * CG, 16 * CG + 64) (fused_cpu_rows, fused_cpu_probs). */
#define FC_PV_TILE(A, PT, VB, CG, DV_PAD)                                      \
    for (uint t = 0; t < FC_RT; ++t)                                           \
        for (uint c = 0; c < 4; ++c)                                           \
            (A)[t][c] = (float16)0.0f;                                         \
    FC_OUTER_TILE(A, FC_BK, (VB) + x * (DV_PAD) + 16 * (CG), (PT)[t][x])

/* Writes one finished row: normalized output and LSE, or (split) the
   unnormalized accumulator with m and l for fused_merge. */
void fused_write_row(__global float *o, __global float *lse,
                     __global float *part, const float16 *acc, float m, float l,
                     uint head_dim_v)
{
    const uint chunks = (head_dim_v + 15) / 16;
    if (part) {
        for (uint c = 0; c < chunks; ++c)
            fused_store16(part, c, head_dim_v, acc[c]);
        part[head_dim_v] = m;
        part[head_dim_v + 1] = l;
        return;
    }
    /* l == 0: every key masked; the row is zeros, even where acc holds
       0 * inf from V (a NaN l, from a NaN score, stays NaN). */
    const float inv = 1.0f / l;
    for (uint c = 0; c < chunks; ++c)
        fused_store16(o, c, head_dim_v,
                      l == 0.0f ? (float16)0.0f : acc[c] * inv);
    if (lse)
        *lse = l == 0.0f ? -INFINITY : m + log(l);
}

__kernel void
fused_cpu_rows(__global const float *q, ulong q_off, ulong q_sb, ulong q_sh,
               ulong q_ss, __global const float *kp, __global const float *vp,
               __global float *o, ulong o_off, ulong o_sb, ulong o_sh,
               ulong o_ss, __global float *lse, ulong l_off, ulong l_sb,
               ulong l_sh, ulong l_ss, __global const uchar *mask_bool,
               __global const float *mask_add, ulong m_off, ulong m_sb,
               ulong m_sh, ulong m_ss, __global const int *key_len,
               uint heads_q, uint group, uint seq_q, uint seq_kv, uint head_dim,
               uint head_dim_v, uint dv_pad, uint nblk, float scale, int causal,
               long causal_shift, uint drop_threshold, float drop_scale,
               ulong drop_seed, ulong drop_offset, uint split_keys,
               __global float *part, uint bh_begin SEQ_VARLEN_PARAMS)
{
    const uint i0 = (uint)get_global_id(0) * FC_RW;
    const uint bh = bh_begin + (uint)get_global_id(1);
    const uint split = (uint)get_global_id(2);
    const uint nsplit = (uint)get_global_size(2);
    const uint b = bh / heads_q, h = bh % heads_q, bhk = bh / group;
    const uint q_rows = SEQ_Q_ROWS(b, seq_q);
    if (i0 >= q_rows)
        return;
    const uint rows = min((uint)FC_RW, q_rows - i0);
    const uint kv_valid = fused_kv_valid(key_len, b, seq_kv);
    causal_shift = SEQ_CAUSAL_SHIFT(causal, causal_shift, kv_valid, q_rows);
    const uint key_begin = split * split_keys;
    const uint key_end =
        min(key_begin + split_keys,
            fused_key_end(kv_valid, causal,
                          fused_causal_last(i0 + rows - 1, causal_shift)));
    const uint dvc = dv_pad / 16;
    /* Up to FC_PLAIN_KEYS keys (FC_PLAIN_KEYS / 64 block sums) a plain
       running sum of the blocks' P V stays within about 64 ulps, far
       inside the tolerance; past it the compensated add runs. It costs
       about 4% at 2048 keys, so shorter rows skip it. */
    const int compensate = key_end > key_begin + FC_PLAIN_KEYS;

    /* Per row: running max m, sum l (with its Kahan compensation lc), the
       output accumulator and its compensation. */
    float m[FC_RW], l[FC_RW], lc[FC_RW];
    float16 acc[FC_RW][FC_DVC], comp[FC_RW][FC_DVC];
    for (uint r = 0; r < FC_RW; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        lc[r] = 0.0f;
        for (uint c = 0; c < dvc; ++c)
            acc[r][c] = comp[r][c] = (float16)0.0f;
    }

    fused_masks mk =
        fused_masks_make(mask_bool, mask_add, seq_kv, kv_valid, causal);

    __global const float *kbase = kp + (ulong)bhk * nblk * FC_BK * head_dim;
    __global const float *vbase = vp + (ulong)bhk * nblk * FC_BK * dv_pad;
    for (uint j0 = key_begin; j0 < key_end; j0 += FC_BK) {
        __global const float *kb = kbase + (ulong)j0 * head_dim;
        __global const float *vb = vbase + (ulong)j0 * dv_pad;
        for (uint r0 = 0; r0 < rows; r0 += FC_RT) {
            const uint last_row = min(r0 + FC_RT, rows) - 1;
            /* Causal: a tile whose every row ends before this block
               contributes nothing (p = 0, max unchanged): skip it. */
            if (causal &&
                (long)j0 > fused_causal_last(i0 + last_row, causal_shift))
                continue;
            __global const float *qr[FC_RT];
            for (uint t = 0; t < FC_RT; ++t) {
                uint i = i0 + min(r0 + t, last_row);
                qr[t] = q + q_off + h * q_sh + SEQ_ROW(b, i, q_sb, q_ss);
            }

            /* S = Q K^T * scale: 4 rows x 64 keys in 16 float16
               registers. */
            float16 s[FC_RT][4];
            for (uint t = 0; t < FC_RT; ++t)
                for (uint c = 0; c < 4; ++c)
                    s[t][c] = (float16)0.0f;
            FC_SCORES_TILE(s, qr, kb, head_dim);

            /* Masks, then the online softmax update of each row. */
            float pt[FC_RT][FC_BK];
            float corr[FC_RT];
            for (uint t = 0; t < FC_RT; ++t) {
                const uint r = min(r0 + t, last_row), i = i0 + r;
                for (uint c = 0; c < 4; ++c)
                    s[t][c] *= scale;
                mk.m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
                mk.causal_last = fused_causal_last(i, causal_shift);
                if (fused_block_needs_mask(j0, FC_BK, &mk))
                    for (uint c = 0; c < 4; ++c)
                        s[t][c] = fused_mask16(s[t][c], j0 + 16 * c, &mk);
                const float mx =
                    fused_hmax16(fused_max16(fused_max16(s[t][0], s[t][1]),
                                             fused_max16(s[t][2], s[t][3])));
                const float m_new = fmax(m[r], mx);
                const float base = fused_max_base(m_new);
                /* The max rarely moves after the first blocks: skip the
                   rescale's exp2 then. */
                corr[t] = m_new == m[r] ? 1.0f : fused_weight1(m[r], base);
                float16 psum = (float16)0.0f;
                for (uint c = 0; c < 4; ++c) {
                    float16 p = fused_weights16(s[t][c], base);
                    psum += p;
                    if (drop_threshold)
                        p = fused_dropout16(
                            p, (((ulong)b * heads_q + h) * seq_q + i) * seq_kv,
                            j0 + 16 * c, drop_threshold, drop_scale, drop_seed,
                            drop_offset);
                    vstore16(p, c, pt[t]);
                }
                /* Rows past `rows` repeat the last row; they update their
                   own (unused) slot only when it is the last row itself. */
                if (r0 + t == r) {
                    l[r] *= corr[t];
                    lc[r] *= corr[t];
                    fused_kahan1(&l[r], &lc[r], fused_hsum16(psum));
                    m[r] = m_new;
                } else {
                    corr[t] = 1.0f;
                    for (uint jj = 0; jj < FC_BK; ++jj)
                        pt[t][jj] = 0.0f;
                }
            }

            /* O = O * corr + P V, 64 output features at a time: the
               block's P V in registers, then a compensated add. */
            for (uint cg = 0; cg < dvc; cg += 4) {
                float16 a[FC_RT][4];
                FC_PV_TILE(a, pt, vb, cg, dv_pad);
                if (compensate) {
                    for (uint t = 0; t < FC_RT; ++t)
                        for (uint c = 0; c < 4; ++c) {
                            float16 *sum = &acc[r0 + t][cg + c];
                            float16 *cc = &comp[r0 + t][cg + c];
                            *sum *= corr[t];
                            *cc *= corr[t];
                            fused_kahan16(sum, cc, a[t][c]);
                        }
                } else {
                    for (uint t = 0; t < FC_RT; ++t)
                        for (uint c = 0; c < 4; ++c)
                            acc[r0 + t][cg + c] = fma(
                                acc[r0 + t][cg + c], (float16)corr[t], a[t][c]);
                }
            }
        }
    }

    for (uint r = 0; r < rows; ++r) {
        const uint i = i0 + r;
        __global float *pr =
            part ? part + (((ulong)bh * nsplit + split) * seq_q + i) *
                              (head_dim_v + 2)
                 : 0;
        fused_write_row(o + o_off + h * o_sh + SEQ_ROW(b, i, o_sb, o_ss),
                        lse ? lse + l_off + h * l_sh + SEQ_ROW(b, i, l_sb, l_ss)
                            : 0,
                        pr, acc[r], m[r], l[r], head_dim_v);
    }
}

/* The attention weights of the recompute plan (probs requested on the
   fused-cpu path): fused_cpu_rows wrote every row's partials (one key
   slice or more: max m_s and sum l_s each), and one work-item recomputes
   the scores of its FC_RW rows block by block, as fused_cpu_rows does
   (same packed K, same tile, same masks), and writes
   p = e^(s - M) / L, with M and L combined from the slices as fused_merge
   does, into the probs view, after dropout at the same Philox positions
   (probs are after dropout, the LSE before). Not e^(s - lse): with
   scores near -3e38 the LSE rounds to M and loses log L. Keys a row does
   not see (masks, causal, past its key length) get 0, and so does every
   key of a row whose keys are all masked (L = 0). Blocks past a tile's
   causal limit or the key length are written as zeros without
   computing. */

/* Row i of bh from its slices' partials, as fused_merge combines them:
   the base to subtract (the max M, or 0 when every key is masked) and
   1 / L (0 when L = 0: the row's weights are all 0; NaN stays NaN). */
void fused_row_stats(__global const float *part, uint nsplit, uint head_dim_v,
                     uint seq_q, uint bh, uint i, float *base, float *inv)
{
    const ulong stride = head_dim_v + 2, step = (ulong)seq_q * stride;
    __global const float *first =
        part + ((ulong)bh * nsplit * seq_q + i) * stride;
    float mx = -INFINITY;
    for (uint s = 0; s < nsplit; ++s)
        mx = fmax(mx, first[s * step + head_dim_v]);
    *base = fused_max_base(mx);
    float total = 0.0f;
    for (uint s = 0; s < nsplit; ++s) {
        __global const float *ps = first + s * step;
        if (ps[head_dim_v + 1] != 0.0f)
            total += ps[head_dim_v + 1] * fused_weight1(ps[head_dim_v], *base);
    }
    *inv = total == 0.0f ? 0.0f : 1.0f / total;
}

__kernel void fused_cpu_weights(
    __global const float *q, ulong q_off, ulong q_sb, ulong q_sh, ulong q_ss,
    __global const float *kp, __global const float *part, uint nsplit,
    uint head_dim_v, __global float *probs, ulong p_off, ulong p_sb, ulong p_sh,
    ulong p_ss, __global const uchar *mask_bool, __global const float *mask_add,
    ulong m_off, ulong m_sb, ulong m_sh, ulong m_ss,
    __global const int *key_len, uint heads_q, uint group, uint seq_q,
    uint seq_kv, uint head_dim, uint nblk, float scale, int causal,
    long causal_shift, uint drop_threshold, float drop_scale, ulong drop_seed,
    ulong drop_offset, uint bh_begin)
{
    const uint i0 = (uint)get_global_id(0) * FC_RW;
    const uint bh = bh_begin + (uint)get_global_id(1);
    if (i0 >= seq_q)
        return;
    const uint rows = min((uint)FC_RW, seq_q - i0);
    const uint b = bh / heads_q, h = bh % heads_q, bhk = bh / group;
    const uint kv_valid = fused_kv_valid(key_len, b, seq_kv);
    fused_masks mk =
        fused_masks_make(mask_bool, mask_add, seq_kv, kv_valid, causal);
    __global const float *kbase = kp + (ulong)bhk * nblk * FC_BK * head_dim;

    /* Each row's base and 1 / L, once. */
    float base[FC_RW], inv[FC_RW];
    for (uint r = 0; r < rows; ++r)
        fused_row_stats(part, nsplit, head_dim_v, seq_q, bh, i0 + r, &base[r],
                        &inv[r]);

    /* Key blocks outer, as in fused_cpu_rows: each block of K is reused
       by all FC_RW rows while it is in cache. */
    for (uint j0 = 0; j0 < seq_kv; j0 += FC_BK) {
        const uint width = min((uint)FC_BK, seq_kv - j0);
        __global const float *kb = kbase + (ulong)j0 * head_dim;
        for (uint r0 = 0; r0 < rows; r0 += FC_RT) {
            const uint last_row = min(r0 + FC_RT, rows) - 1;
            /* A block past the keys the tile's last row may see is zeros
               for every row of the tile. */
            const int live =
                j0 <
                fused_key_end(kv_valid, causal,
                              fused_causal_last(i0 + last_row, causal_shift));
            __global const float *qr[FC_RT];
            for (uint t = 0; t < FC_RT; ++t)
                qr[t] = q + q_off + b * q_sb + h * q_sh +
                        (i0 + min(r0 + t, last_row)) * q_ss;
            float16 s[FC_RT][4];
            for (uint t = 0; t < FC_RT; ++t)
                for (uint c = 0; c < 4; ++c)
                    s[t][c] = (float16)0.0f;
            if (live) {
                FC_SCORES_TILE(s, qr, kb, head_dim);
            }
            for (uint t = 0; t < FC_RT; ++t) {
                if (r0 + t > last_row)
                    break; /* a repeat of the last row */
                const uint r = r0 + t, i = i0 + r;
                __global float *pr =
                    probs + p_off + b * p_sb + h * p_sh + i * p_ss + j0;
                mk.m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
                mk.causal_last = fused_causal_last(i, causal_shift);
                const int masked =
                    live && fused_block_needs_mask(j0, FC_BK, &mk);
                for (uint c = 0; c < 4; ++c) {
                    float16 p = (float16)0.0f;
                    if (live) {
                        float16 x = s[t][c] * scale;
                        if (masked)
                            x = fused_mask16(x, j0 + 16 * c, &mk);
                        p = fused_weights16(x, base[r]) * inv[r];
                        if (drop_threshold)
                            p = fused_dropout16(
                                p,
                                (((ulong)b * heads_q + h) * seq_q + i) * seq_kv,
                                j0 + 16 * c, drop_threshold, drop_scale,
                                drop_seed, drop_offset);
                    }
                    fused_store16(pr, c, width, p);
                }
            }
        }
    }
}

/* The attention weights of the materialize plan (probs requested on the
   fused-cpu path, keys not split): one work-item owns FC_RW rows of one
   (batch, head), and their rows of probs hold the scores on the way:
   - pass 1, key blocks outer as in fused_cpu_rows (same packed K, tile
     and masks): each row's scaled, masked scores go into its probs row,
     and the row's max is kept;
   - pass 2, row by row: e = e^(s - M) in place, summed to L (a block's
     weights in registers, Kahan across blocks, as fused_cpu_rows sums);
   - pass 3, key blocks outer again: p = e / L, dropout at the same
     Philox positions, stored, and O += p V from packed V.
   Each score is computed once (the recompute plan computes Q K^T a
   second time), and the FC_RW rows of probs are rewritten while they are
   in cache. O is the sum over the probs returned. Keys a tile never
   reaches (causal, key lengths) are written as zeros without computing;
   masked keys give 0 through e^(-inf), and a row whose keys are all
   masked is zeros, its output zeros and its LSE -inf. */

/* 16 stored scores of row from element 16*c: -inf past n (e^-inf = 0). */
float16 probs_load16(__global const float *row, uint c, uint n)
{
    if (16 * c + 16 <= n)
        return vload16(c, row);
    const int16 lane =
        (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return select((float16)(-INFINITY), fused_load16(row, c, n),
                  lane + (int16)(16 * (int)c) < (int16)((int)n));
}

/* The head average (MHA's need_weights): where mean is not NULL, one
   work-item takes its FC_RW rows through every head of its batch in turn,
   its probs rows are the library's scratch (head stride 0, so every head
   reuses the same rows while they are in cache), and pass 3 adds each
   head's weights (after dropout, as PyTorch averages them) into the
   [batch][seq_q][seq_kv] view mean: the first head stores, the others
   add, the last divides the sum by heads (as mha_head_mean). No per-head
   weights exist. */
typedef struct probs_mean {
    __global float *row0; /* the first row's mean (key 0), or NULL */
    ulong row_stride;
    int first, last; /* the first or last head of the average */
    float heads;     /* the divisor of the sum */
} probs_mean;

/* The weights of one head (bh) for rows [i0, i0 + rows), the three
   passes; the kernel's parameters as in fused_cpu_probs. Static: an
   external function is also compiled on its own, with the call ABI, and
   for this one LLVM 14's AMDGPU backend ran out of registers (the
   program then failed to build for gfx90a, docs/gpu.md). */
static void
probs_rows(__global const float *q, ulong q_off, ulong q_sb, ulong q_sh,
           ulong q_ss, __global const float *kp, __global const float *vp,
           __global float *o, ulong o_off, ulong o_sb, ulong o_sh, ulong o_ss,
           __global float *lse, ulong l_off, ulong l_sb, ulong l_sh, ulong l_ss,
           __global float *probs, ulong p_off, ulong p_sb, ulong p_sh,
           ulong p_ss, const probs_mean *mn, __global const uchar *mask_bool,
           __global const float *mask_add, ulong m_off, ulong m_sb, ulong m_sh,
           ulong m_ss, __global const int *key_len, uint heads_q, uint group,
           uint seq_q, uint seq_kv, uint head_dim, uint head_dim_v, uint dv_pad,
           uint nblk, float scale, int causal, long causal_shift,
           uint drop_threshold, float drop_scale, ulong drop_seed,
           ulong drop_offset, uint bh, uint i0)
{
    const uint rows = min((uint)FC_RW, seq_q - i0);
    const uint b = bh / heads_q, h = bh % heads_q, bhk = bh / group;
    const uint kv_valid = fused_kv_valid(key_len, b, seq_kv);
    fused_masks mk =
        fused_masks_make(mask_bool, mask_add, seq_kv, kv_valid, causal);
    __global const float *kbase = kp + (ulong)bhk * nblk * FC_BK * head_dim;
    __global const float *vbase = vp + (ulong)bhk * nblk * FC_BK * dv_pad;
    __global float *prow0 = probs + p_off + b * p_sb + h * p_sh + i0 * p_ss;
    const uint dvc = dv_pad / 16;

    /* Keys the tile of row r computes: those before the key end of the
       tile's last row (its causal limit, the key length). */
    uint tile_end[FC_RW];
    for (uint r = 0; r < rows; ++r)
        tile_end[r] = fused_key_end(
            kv_valid, causal,
            fused_causal_last(i0 + min((r / FC_RT) * FC_RT + FC_RT, rows) - 1,
                              causal_shift));
    const uint key_end = tile_end[rows - 1];

    /* Pass 1: scores into the probs rows, and each row's max. */
    float m[FC_RW];
    for (uint r = 0; r < FC_RW; ++r)
        m[r] = -INFINITY;
    for (uint j0 = 0; j0 < key_end; j0 += FC_BK) {
        const uint width = min((uint)FC_BK, seq_kv - j0);
        __global const float *kb = kbase + (ulong)j0 * head_dim;
        for (uint r0 = 0; r0 < rows; r0 += FC_RT) {
            if (j0 >= tile_end[r0])
                continue;
            const uint last_row = min(r0 + FC_RT, rows) - 1;
            __global const float *qr[FC_RT];
            for (uint t = 0; t < FC_RT; ++t)
                qr[t] = q + q_off + b * q_sb + h * q_sh +
                        (i0 + min(r0 + t, last_row)) * q_ss;
            float16 s[FC_RT][4];
            for (uint t = 0; t < FC_RT; ++t)
                for (uint c = 0; c < 4; ++c)
                    s[t][c] = (float16)0.0f;
            FC_SCORES_TILE(s, qr, kb, head_dim);
            for (uint t = 0; t < FC_RT; ++t) {
                if (r0 + t > last_row)
                    break; /* a repeat of the last row */
                const uint r = r0 + t, i = i0 + r;
                mk.m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
                mk.causal_last = fused_causal_last(i, causal_shift);
                const int masked = fused_block_needs_mask(j0, FC_BK, &mk);
                __global float *pr = prow0 + r * p_ss + j0;
                float16 mx = (float16)(-INFINITY);
                for (uint c = 0; c < 4; ++c) {
                    float16 x = s[t][c] * scale;
                    if (masked)
                        x = fused_mask16(x, j0 + 16 * c, &mk);
                    mx = fused_max16(mx, x);
                    fused_store16(pr, c, width, x);
                }
                m[r] = fmax(m[r], fused_hmax16(mx));
            }
        }
    }

    /* Pass 2: e = e^(s - M) in place, L; zeros past the computed keys. */
    float inv[FC_RW], l[FC_RW];
    for (uint r = 0; r < rows; ++r) {
        __global float *pr = prow0 + r * p_ss;
        const float base = fused_max_base(m[r]);
        float sum = 0.0f, comp = 0.0f;
        uint j0 = 0;
        for (; j0 < tile_end[r]; j0 += FC_BK) {
            const uint width = min((uint)FC_BK, seq_kv - j0);
            float16 psum = (float16)0.0f;
            for (uint c = 0; c < 4; ++c) {
                const float16 e =
                    fused_weights16(probs_load16(pr + j0, c, width), base);
                psum += e;
                fused_store16(pr + j0, c, width, e);
            }
            fused_kahan1(&sum, &comp, fused_hsum16(psum));
        }
        /* (the head average: in the mean rows, once; the zeros are the
           same keys in every head) */
        __global float *zr = mn->row0 ? mn->row0 + r * mn->row_stride : pr;
        if (!mn->row0 || mn->first)
            for (; j0 < seq_kv; j0 += 16)
                fused_store16(zr + j0, 0, seq_kv - j0, (float16)0.0f);
        l[r] = sum;
        /* L = 0: every key masked, the row is zeros (NaN stays NaN). */
        inv[r] = sum == 0.0f ? 0.0f : 1.0f / sum;
    }

    /* Pass 3: p = e / L with dropout, stored, and O = P V. */
    const int compensate = key_end > FC_PLAIN_KEYS;
    float16 acc[FC_RW][FC_DVC], comp[FC_RW][FC_DVC];
    for (uint r = 0; r < FC_RW; ++r)
        for (uint c = 0; c < dvc; ++c)
            acc[r][c] = comp[r][c] = (float16)0.0f;
    for (uint j0 = 0; j0 < key_end; j0 += FC_BK) {
        const uint width = min((uint)FC_BK, seq_kv - j0);
        __global const float *vb = vbase + (ulong)j0 * dv_pad;
        for (uint r0 = 0; r0 < rows; r0 += FC_RT) {
            if (j0 >= tile_end[r0])
                continue;
            const uint last_row = min(r0 + FC_RT, rows) - 1;
            float pt[FC_RT][FC_BK];
            for (uint t = 0; t < FC_RT; ++t) {
                if (r0 + t > last_row) {
                    for (uint jj = 0; jj < FC_BK; ++jj)
                        pt[t][jj] = 0.0f; /* a repeat of the last row */
                    continue;
                }
                const uint r = r0 + t, i = i0 + r;
                __global float *pr = prow0 + r * p_ss + j0;
                for (uint c = 0; c < 4; ++c) {
                    float16 p = fused_load16(pr, c, width) * inv[r];
                    if (drop_threshold)
                        p = fused_dropout16(
                            p, (((ulong)b * heads_q + h) * seq_q + i) * seq_kv,
                            j0 + 16 * c, drop_threshold, drop_scale, drop_seed,
                            drop_offset);
                    if (mn->row0) {
                        __global float *mr = mn->row0 + r * mn->row_stride + j0;
                        float16 sum = p;
                        if (!mn->first)
                            sum += fused_load16(mr, c, width);
                        fused_store16(mr, c, width,
                                      mn->last ? sum / mn->heads : sum);
                    } else {
                        fused_store16(pr, c, width, p);
                    }
                    vstore16(p, c, pt[t]);
                }
            }
            for (uint cg = 0; cg < dvc; cg += 4) {
                float16 a[FC_RT][4];
                FC_PV_TILE(a, pt, vb, cg, dv_pad);
                for (uint t = 0; t < FC_RT && r0 + t <= last_row; ++t)
                    for (uint c = 0; c < 4; ++c) {
                        if (compensate)
                            fused_kahan16(&acc[r0 + t][cg + c],
                                          &comp[r0 + t][cg + c], a[t][c]);
                        else
                            acc[r0 + t][cg + c] += a[t][c];
                    }
            }
        }
    }

    /* l stands in for the row sum: the output is already normalized. */
    for (uint r = 0; r < rows; ++r) {
        const uint i = i0 + r;
        __global float *orow = o + o_off + b * o_sb + h * o_sh + i * o_ss;
        for (uint c = 0; c < (head_dim_v + 15) / 16; ++c)
            fused_store16(orow, c, head_dim_v,
                          l[r] == 0.0f ? (float16)0.0f : acc[r][c]);
        if (lse)
            lse[l_off + b * l_sb + h * l_sh + i * l_ss] =
                l[r] == 0.0f ? -INFINITY : m[r] + log(l[r]);
    }
}

/* Grid (row blocks, bh) over the (batch, head) pairs from bh_begin; with
   mean (the head average) (row blocks, batch) from bh_begin, each
   work-item looping over the heads. */
__kernel void fused_cpu_probs(
    __global const float *q, ulong q_off, ulong q_sb, ulong q_sh, ulong q_ss,
    __global const float *kp, __global const float *vp, __global float *o,
    ulong o_off, ulong o_sb, ulong o_sh, ulong o_ss, __global float *lse,
    ulong l_off, ulong l_sb, ulong l_sh, ulong l_ss, __global float *probs,
    ulong p_off, ulong p_sb, ulong p_sh, ulong p_ss, __global float *mean,
    ulong mn_off, ulong mn_sb, ulong mn_ss, __global const uchar *mask_bool,
    __global const float *mask_add, ulong m_off, ulong m_sb, ulong m_sh,
    ulong m_ss, __global const int *key_len, uint heads_q, uint group,
    uint seq_q, uint seq_kv, uint head_dim, uint head_dim_v, uint dv_pad,
    uint nblk, float scale, int causal, long causal_shift, uint drop_threshold,
    float drop_scale, ulong drop_seed, ulong drop_offset, uint bh_begin)
{
    const uint i0 = (uint)get_global_id(0) * FC_RW;
    const uint unit = bh_begin + (uint)get_global_id(1);
    if (i0 >= seq_q)
        return;
    probs_mean mn;
    mn.row0 = mean ? mean + mn_off + unit * mn_sb + i0 * mn_ss : 0;
    mn.row_stride = mn_ss;
    mn.heads = (float)heads_q;
    const uint heads = mean ? heads_q : 1;
    for (uint h = 0; h < heads; ++h) {
        mn.first = h == 0;
        mn.last = h + 1 == heads;
        probs_rows(q, q_off, q_sb, q_sh, q_ss, kp, vp, o, o_off, o_sb, o_sh,
                   o_ss, lse, l_off, l_sb, l_sh, l_ss, probs, p_off, p_sb, p_sh,
                   p_ss, &mn, mask_bool, mask_add, m_off, m_sb, m_sh, m_ss,
                   key_len, heads_q, group, seq_q, seq_kv, head_dim, head_dim_v,
                   dv_pad, nblk, scale, causal, causal_shift, drop_threshold,
                   drop_scale, drop_seed, drop_offset,
                   mean ? unit * heads_q + h : unit, i0);
    }
}

#if KV_PAGED
/* A paged cache's next block, read ahead: the K and V rows of the 16-key
   tile from key j (clamped to last), one load per 64-byte line, issued a
   tile before they are used. The CPU's stream prefetchers restart at
   every block (a head's rows of a 16-token block are 8 KiB at fp32 and
   D = 128, the next block anywhere in the pool) and do not fill the lines
   between touched ones: touching every other line measured slower than
   touching none. Volatile, so that the loads stay. */
static inline void fd_read_ahead(__global const K_ELEM *kh,
                                 __global const V_ELEM *vh, uint b, uint j,
                                 uint last, ulong k_sb, ulong k_ss, ulong v_sb,
                                 ulong v_ss, uint head_dim,
                                 uint head_dim_v KV_PAGE_PARAMS)
{
    ulong kn[16], vn[16];
    kv_tile16_rows(kn, b, j, last, k_sb, k_ss KV_PAGE_ARGS);
    kv_tile16_rows(vn, b, j, last, v_sb, v_ss KV_PAGE_ARGS);
    for (uint t = 0; t < 16; ++t) {
        for (uint d = 0; d < head_dim; d += 64 / sizeof(K_ELEM))
            (void)*(volatile __global const K_ELEM *)(kh + kn[t] + d);
        for (uint d = 0; d < head_dim_v; d += 64 / sizeof(V_ELEM))
            (void)*(volatile __global const V_ELEM *)(vh + vn[t] + d);
    }
}
#endif

/* Decode: up to FD_ROWS query rows per work-item, keys 16 at a time, dot
   products vectorized over the feature dim; K and V read in place.
   grouped 0: a unit (dimension 1) is a (batch, query head) pair and its
   rows are that head's queries. grouped 1 (grouped-query attention): a
   unit is a (batch, K/V head) pair and its rows are the queries of every
   query head of the group, head by head (row f: head f / seq_q of the
   group, query f % seq_q), so each K/V row is read once for all of them
   instead of once per query head. */
static inline void decode_rows(FUSED_INPLACE_KERNEL_PARAMS, const uint grouped)
{
    const uint f0 = (uint)get_global_id(0) * FD_ROWS;
    const uint unit = bh_begin + (uint)get_global_id(1);
    const uint split = (uint)get_global_id(2);
    const uint nsplit = (uint)get_global_size(2);
    const uint unit_heads = grouped ? group : 1;
    const uint unit_per_b = heads_q / unit_heads;
    const uint b = unit / unit_per_b;
    const uint q_rows = SEQ_Q_ROWS(b, seq_q);
    const uint unit_rows = unit_heads * q_rows;
    if (f0 >= unit_rows)
        return;
    const uint rows = min((uint)FD_ROWS, unit_rows - f0);
    const uint h_first = (unit % unit_per_b) * unit_heads;
    const uint hk = h_first / group;
    /* Each row's query head and query index; rows past `rows` repeat the
       last one (computed, never written). */
    uint row_h[FD_ROWS], row_i[FD_ROWS];
    uint i_last = 0;
    for (uint r = 0; r < FD_ROWS; ++r) {
        const uint f = f0 + min(r, rows - 1);
        row_h[r] = h_first + f / q_rows;
        row_i[r] = f % q_rows;
        i_last = max(i_last, row_i[r]);
    }
    const uint kv_valid = fused_kv_valid(key_len, b, seq_kv);
    causal_shift = SEQ_CAUSAL_SHIFT(causal, causal_shift, kv_valid, q_rows);
    const uint key_begin = split * split_keys;
    const uint key_end =
        min(key_begin + split_keys,
            fused_key_end(kv_valid, causal,
                          fused_causal_last(i_last, causal_shift)));
    const uint dc = (head_dim + 15) / 16, dvc = (head_dim_v + 15) / 16;
    __global const K_ELEM *kh = KV_HEAD(k, k_off, b, hk, k_sb, k_sh);
    __global const V_ELEM *vh = KV_HEAD(v, v_off, b, hk, v_sb, v_sh);

    /* acc: a plain running P V over at most FD_FOLD_KEYS keys, then folded
       into outer with Kahan compensation comp (a plain sum over a whole
       long row drifts by about seq_kv * eps). Folding that rarely keeps
       the per-key work of a memory-bound kernel as it was. */
    float16 qv[FD_ROWS][FC_DVC], acc[FD_ROWS][FC_DVC];
    float16 outer[FD_ROWS][FC_DVC], comp[FD_ROWS][FC_DVC];
    float m[FD_ROWS], l[FD_ROWS], lc[FD_ROWS];
    for (uint r = 0; r < FD_ROWS; ++r) {
        __global const float *qrow =
            q + q_off + row_h[r] * q_sh + SEQ_ROW(b, row_i[r], q_sb, q_ss);
        for (uint c = 0; c < dc; ++c)
            qv[r][c] = fused_load16(qrow, c, head_dim);
        for (uint c = 0; c < dvc; ++c)
            acc[r][c] = outer[r][c] = comp[r][c] = (float16)0.0f;
        m[r] = -INFINITY;
        l[r] = lc[r] = 0.0f;
    }
    uint unfolded = 0; /* keys in acc since the last fold */

    fused_masks mk =
        fused_masks_make(mask_bool, mask_add, seq_kv, kv_valid, causal);

    for (uint j0 = key_begin; j0 < key_end; j0 += 16) {
        /* Scores of 16 keys for every row; keys past key_end are masked
           below (they lie past kv_valid or the causal limit, since splits
           are multiples of 16), so they read the last valid key. */
        float s[FD_ROWS][16];
#if KV_PAGED
        ulong k_rows[16], v_rows[16];
        kv_tile16_rows(k_rows, b, j0, key_end - 1, k_sb, k_ss KV_PAGE_ARGS);
        kv_tile16_rows(v_rows, b, j0, key_end - 1, v_sb, v_ss KV_PAGE_ARGS);
#define FD_K_ROW(t) k_rows[t]
#define FD_V_ROW(t) v_rows[t]
        /* The next tile's rows when it starts a new block, for blocks
           below 64 tokens (measured 1.2x faster at 16; from 64 up no
           difference stood out of the machine's noise). */
        if (block_size < 64 && j0 + 16 < key_end && (j0 + 16) % block_size < 16)
            fd_read_ahead(kh, vh, b, j0 + 16, key_end - 1, k_sb, k_ss, v_sb,
                          v_ss, head_dim, head_dim_v KV_PAGE_ARGS);
#else
#define FD_K_ROW(t) KV_ROW(b, min(j0 + (t), key_end - 1), k_sb, k_ss)
#define FD_V_ROW(t) KV_ROW(b, j0 + (t), v_sb, v_ss)
#endif
        for (uint t = 0; t < 16; ++t) {
            __global const K_ELEM *krow = kh + FD_K_ROW(t);
            float16 dot[FD_ROWS];
            for (uint r = 0; r < FD_ROWS; ++r)
                dot[r] = (float16)0.0f;
            for (uint c = 0; c < dc; ++c) {
                const float16 kc = k_load16(krow, c, head_dim);
                for (uint r = 0; r < rows; ++r)
                    dot[r] = fma(qv[r][c], kc, dot[r]);
            }
            for (uint r = 0; r < rows; ++r)
                s[r][t] = fused_hsum16(dot[r]) * scale;
        }
        float p[FD_ROWS][16], corr[FD_ROWS];
        for (uint r = 0; r < rows; ++r) {
            const uint h = row_h[r], i = row_i[r];
            mk.m_row = m_off + b * m_sb + h * m_sh + i * m_ss;
            mk.causal_last = fused_causal_last(i, causal_shift);
            float16 x = fused_mask16(vload16(0, s[r]), j0, &mk);
            const float m_new = fmax(m[r], fused_hmax16(x));
            const float base = fused_max_base(m_new);
            corr[r] = fused_weight1(m[r], base);
            float16 pv = fused_weights16(x, base);
            l[r] *= corr[r];
            lc[r] *= corr[r];
            fused_kahan1(&l[r], &lc[r], fused_hsum16(pv));
            m[r] = m_new;
            if (drop_threshold)
                pv = fused_dropout16(
                    pv, (((ulong)b * heads_q + h) * seq_q + i) * seq_kv, j0,
                    drop_threshold, drop_scale, drop_seed, drop_offset);
            vstore16(pv, 0, p[r]);
        }
        for (uint r = 0; r < rows; ++r) {
            for (uint c = 0; c < dvc; ++c)
                acc[r][c] *= corr[r];
            if (corr[r] != 1.0f)
                for (uint c = 0; c < dvc; ++c) {
                    outer[r][c] *= corr[r];
                    comp[r][c] *= corr[r];
                }
        }
        const uint n = min(16u, key_end - j0);
        for (uint t = 0; t < n; ++t) {
            __global const V_ELEM *vrow = vh + FD_V_ROW(t);
            for (uint c = 0; c < dvc; ++c) {
                const float16 vc = v_load16(vrow, c, head_dim_v);
                for (uint r = 0; r < rows; ++r)
                    acc[r][c] = fma((float16)p[r][t], vc, acc[r][c]);
            }
        }
        unfolded += 16;
        if (unfolded >= FD_FOLD_KEYS || j0 + 16 >= key_end) {
            for (uint r = 0; r < rows; ++r)
                for (uint c = 0; c < dvc; ++c) {
                    fused_kahan16(&outer[r][c], &comp[r][c], acc[r][c]);
                    acc[r][c] = (float16)0.0f;
                }
            unfolded = 0;
        }
    }

    for (uint r = 0; r < rows; ++r) {
        const uint h = row_h[r], i = row_i[r];
        const ulong bh = (ulong)b * heads_q + h;
        __global float *pr =
            part ? part + ((bh * nsplit + split) * seq_q + i) * (head_dim_v + 2)
                 : 0;
        fused_write_row(o + o_off + h * o_sh + SEQ_ROW(b, i, o_sb, o_ss),
                        lse ? lse + l_off + h * l_sh + SEQ_ROW(b, i, l_sb, l_ss)
                            : 0,
                        pr, outer[r], m[r], l[r], head_dim_v);
    }
}

#define FUSED_INPLACE_KERNEL_ARGS                                              \
    q, q_off, q_sb, q_sh, q_ss, k, k_off, k_sb, k_sh, k_ss, v, v_off, v_sb,    \
        v_sh, v_ss, o, o_off, o_sb, o_sh, o_ss, lse, l_off, l_sb, l_sh, l_ss,  \
        mask_bool, mask_add, m_off, m_sb, m_sh, m_ss, key_len, heads_q, group, \
        seq_q, seq_kv, head_dim, head_dim_v, scale, causal, causal_shift,      \
        drop_threshold, drop_scale, drop_seed, drop_offset, split_keys, part,  \
        bh_begin KV_PAGE_ARGS SEQ_VARLEN_ARGS

/* One (batch, query head) pair per unit (no grouped K/V heads). */
__kernel void fused_cpu_decode(FUSED_INPLACE_KERNEL_PARAMS)
{
    decode_rows(FUSED_INPLACE_KERNEL_ARGS, 0);
}

/* One (batch, K/V head) pair per unit: every query head of its group. */
__kernel void fused_cpu_decode_gqa(FUSED_INPLACE_KERNEL_PARAMS)
{
    decode_rows(FUSED_INPLACE_KERNEL_ARGS, 1);
}
