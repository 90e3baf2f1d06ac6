/* Unfused SDPA, step 2: in-place softmax of each score row over the keys,
   with dropout. One work-group of SOFTMAX_WG work-items per row.
   A row whose every score is -inf (all keys masked) becomes zeros, never
   NaN (FlashAttention's and PyTorch >= 2.5's convention). A NaN score
   makes its row NaN, as in PyTorch. Optionally writes the row log-sum-exp. */
#ifndef CLATTN_EMBEDDED
#include "../core/philox.clh"
#include "sdpa_unfused_params.clh" /* SOFTMAX_WG, SOFTMAX_CACHE */
#endif

/* max() that keeps NaN (fmax would drop it and hide a NaN row). */
float max_keep_nan(float a, float b)
{
    return (a > b || isnan(a)) ? a : b;
}

/* Tree reduction over the work-group; op is max (1) or sum (0). */
float group_reduce(__local float *scratch, float x, int take_max)
{
    const uint lid = (uint)get_local_id(0);
    scratch[lid] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint width = SOFTMAX_WG / 2; width > 0; width /= 2) {
        if (lid < width) {
            float other = scratch[lid + width];
            scratch[lid] = take_max ? max_keep_nan(scratch[lid], other)
                                    : scratch[lid] + other;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float result = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* scratch is reused by the next call */
    return result;
}

/* Rows of up to SOFTMAX_CACHE * SOFTMAX_WG keys: each work-item holds
   its SOFTMAX_CACHE scores in registers (the loops unroll whole, reads
   past the row give -inf), so the row is read once and written once. The
   operations and their order are those of softmax_row_streamed. Both
   return the row's log-sum-exp. */
static float softmax_row_cached(__global float *row, uint seq_kv,
                                __local float *scratch, ulong first,
                                uint drop_threshold, float drop_scale,
                                ulong drop_seed, ulong drop_offset)
{
    const uint lid = (uint)get_local_id(0);
    float x[SOFTMAX_CACHE];
    float m = -INFINITY;
#pragma unroll
    for (int t = 0; t < SOFTMAX_CACHE; ++t) {
        const uint j = lid + t * SOFTMAX_WG;
        x[t] = j < seq_kv ? row[j] : -INFINITY;
        m = max_keep_nan(m, x[t]);
    }
    m = group_reduce(scratch, m, 1);
    if (m == -INFINITY) {
#pragma unroll
        for (int t = 0; t < SOFTMAX_CACHE; ++t)
            if (lid + t * SOFTMAX_WG < seq_kv)
                row[lid + t * SOFTMAX_WG] = 0.0f;
        return -INFINITY;
    }
    float sum = 0.0f, comp = 0.0f;
#pragma unroll
    for (int t = 0; t < SOFTMAX_CACHE; ++t) {
        if (lid + t * SOFTMAX_WG >= seq_kv)
            continue;
        x[t] = exp(x[t] - m);
        const float y = x[t] - comp;
        const float s = sum + y;
        comp = (s - sum) - y;
        sum = s;
    }
    sum = group_reduce(scratch, sum, 0);
    const float row_lse = m + log(sum);
#pragma unroll
    for (int t = 0; t < SOFTMAX_CACHE; ++t) {
        const uint j = lid + t * SOFTMAX_WG;
        if (j >= seq_kv)
            continue;
        float p = x[t] / sum;
        if (drop_threshold)
            p = dropout_keep(drop_seed, drop_offset, first + j, drop_threshold)
                    ? p * drop_scale
                    : 0.0f;
        row[j] = p;
    }
    return row_lse;
}

/* Longer rows: three passes over the row in global memory (max, sum,
   write). */
static float softmax_row_streamed(__global float *row, uint seq_kv,
                                  __local float *scratch, ulong first,
                                  uint drop_threshold, float drop_scale,
                                  ulong drop_seed, ulong drop_offset)
{
    const uint lid = (uint)get_local_id(0);
    float m = -INFINITY;
    for (uint j = lid; j < seq_kv; j += SOFTMAX_WG)
        m = max_keep_nan(m, row[j]);
    m = group_reduce(scratch, m, 1);

    if (m == -INFINITY) {
        for (uint j = lid; j < seq_kv; j += SOFTMAX_WG)
            row[j] = 0.0f;
        return -INFINITY;
    }

    /* Kahan: each work-item sums seq_kv / SOFTMAX_WG weights, and a plain
       running sum of that many near-equal terms drifts by about n * eps. */
    float sum = 0.0f, comp = 0.0f;
    for (uint j = lid; j < seq_kv; j += SOFTMAX_WG) {
        const float y = exp(row[j] - m) - comp;
        const float t = sum + y;
        comp = (t - sum) - y;
        sum = t;
    }
    sum = group_reduce(scratch, sum, 0);
    const float row_lse = m + log(sum);

    for (uint j = lid; j < seq_kv; j += SOFTMAX_WG) {
        float p = exp(row[j] - m) / sum;
        if (drop_threshold)
            p = dropout_keep(drop_seed, drop_offset, first + j, drop_threshold)
                    ? p * drop_scale
                    : 0.0f;
        row[j] = p;
    }
    return row_lse;
}

__kernel __attribute__((reqd_work_group_size(SOFTMAX_WG, 1, 1))) void
sdpa_softmax(__global float *s, long s_off, ulong s_sb, ulong s_sh, ulong s_ss,
             __global float *lse, ulong l_off, ulong l_sb, ulong l_sh,
             ulong l_ss, uint heads_q, uint seq_q, uint seq_kv, uint q_begin,
             uint bh_begin, uint drop_threshold, float drop_scale,
             ulong drop_seed, ulong drop_offset)
{
    __local float scratch[SOFTMAX_WG];
    const uint i = q_begin + (uint)get_global_id(1);
    const uint bh = bh_begin + (uint)get_global_id(2);
    const uint b = bh / heads_q, h = bh % heads_q;
    __global float *row = s + (s_off + (long)(b * s_sb + h * s_sh + i * s_ss));
    const ulong first = (((ulong)b * heads_q + h) * seq_q + i) * seq_kv;
    /* The same branch for the whole work-group: its barriers match. */
    const float row_lse =
        seq_kv <= SOFTMAX_CACHE * SOFTMAX_WG
            ? softmax_row_cached(row, seq_kv, scratch, first, drop_threshold,
                                 drop_scale, drop_seed, drop_offset)
            : softmax_row_streamed(row, seq_kv, scratch, first, drop_threshold,
                                   drop_scale, drop_seed, drop_offset);
    if (lse && get_local_id(0) == 0)
        lse[l_off + b * l_sb + h * l_sh + i * l_ss] = row_lse;
}
