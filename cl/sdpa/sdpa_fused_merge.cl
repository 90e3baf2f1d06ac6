/* Fused SDPA, split keys: combines the partial results of the key slices
   of each row by their log-sum-exp. Partial s of row i holds the
   unnormalized accumulator acc_s (head_dim_v floats), its running max m_s
   and sum l_s; then with M = max m_s and w_s = e^(m_s - M):
   out = sum(w_s acc_s) / sum(w_s l_s), lse = M + log(sum(w_s l_s)).
   A row whose slices are all empty (every key masked) gives zeros and
   lse = -inf, as the unsplit kernels do. One work-item per row. */
#ifndef CLATTN_EMBEDDED
#include "../core/sdpa_fused_common.clh"
#include "../core/seq_varlen.clh"
#endif

__kernel void fused_merge(__global const float *part, uint nsplit,
                          __global float *o, ulong o_off, ulong o_sb,
                          ulong o_sh, ulong o_ss, __global float *lse,
                          ulong l_off, ulong l_sb, ulong l_sh, ulong l_ss,
                          uint heads_q, uint seq_q,
                          uint head_dim_v SEQ_VARLEN_PARAMS, uint bh_begin)
{
    const uint i = (uint)get_global_id(0);
    const uint bh = bh_begin + (uint)get_global_id(1);
    const uint b = bh / heads_q, h = bh % heads_q;
    if (i >= SEQ_Q_ROWS(b, seq_q))
        return;
    const ulong stride = head_dim_v + 2;
    /* Slice s of row i: part[((bh * nsplit + s) * seq_q + i) * stride]. */
    __global const float *first = part + ((ulong)bh * nsplit * seq_q + i) * stride;
    const ulong step = (ulong)seq_q * stride;

    float mx = -INFINITY;
    for (uint s = 0; s < nsplit; ++s)
        mx = fmax(mx, first[s * step + head_dim_v]);
    const float base = fused_max_base(mx);
    /* A slice with l_s == 0 saw only masked keys: it is left out, so its
       0 * inf from V cannot reach the row. NaN l_s (NaN scores) stays. */
    float total = 0.0f;
    for (uint s = 0; s < nsplit; ++s) {
        __global const float *ps = first + s * step;
        if (ps[head_dim_v + 1] != 0.0f)
            total += ps[head_dim_v + 1] * fused_weight1(ps[head_dim_v], base);
    }
    const float inv = 1.0f / total;
    __global float *orow = o + o_off + h * o_sh + SEQ_ROW(b, i, o_sb, o_ss);
    for (uint c = 0; c < head_dim_v; ++c) {
        float sum = 0.0f;
        for (uint s = 0; s < nsplit; ++s) {
            __global const float *ps = first + s * step;
            if (ps[head_dim_v + 1] != 0.0f)
                sum += ps[c] * fused_weight1(ps[head_dim_v], base);
        }
        orow[c] = total == 0.0f ? 0.0f : sum * inv;
    }
    if (lse)
        lse[l_off + h * l_sh + SEQ_ROW(b, i, l_sb, l_ss)] =
            total == 0.0f ? -INFINITY : mx + log(total);
}
