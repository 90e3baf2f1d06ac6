/* Fused SDPA, GPU-class variant: online softmax with no score matrix.

   A work-group of FG_WG work-items owns FG_WG consecutive query rows of
   one (batch, head), one row per work-item. Tiles of tile_keys keys of K
   and V are loaded cooperatively into __local memory (coalesced: work-item
   t loads elements t, t + FG_WG, ...), and every work-item then streams
   its row past the tile from local memory, where all lanes read the same
   address (a broadcast). tile_keys is chosen on the host from the device's
   local memory size, FG_WG from the kernel's work-group limit.
   Causal: the group stops at the last key its last row may see.
   Split keys (decode): the group covers one slice of the keys and writes
   unnormalized partials for fused_merge, as the CPU-class kernels do. */
#ifndef CLATTN_EMBEDDED
#include "sdpa_fused_params.clh" /* FUSED_HEAD_DIM_MAX */
#include "../core/sdpa_fused_common.clh"
#endif

__kernel void fused_gpu_tiles(FUSED_INPLACE_KERNEL_PARAMS,
    __local float *ktile, __local float *vtile, uint tile_keys)
{
    const uint lid = (uint)get_local_id(0), wg = (uint)get_local_size(0);
    const uint i0 = (uint)get_group_id(0) * wg, i = i0 + lid;
    const uint bh = bh_begin + (uint)get_global_id(1);
    const uint split = (uint)get_global_id(2);
    const uint nsplit = (uint)get_global_size(2);
    const uint b = bh / heads_q, h = bh % heads_q, hk = h / group;
    const int active = i < seq_q;
    /* Every work-item of the group runs the same loop (barriers), so the
       key range is the group's: up to its last row's causal limit. */
    const uint last_row = min(i0 + wg, seq_q) - 1;
    const uint kv_valid = fused_kv_valid(key_len, b, seq_kv);
    const uint key_begin = split * split_keys;
    const uint key_end =
        min(key_begin + split_keys,
            fused_key_end(kv_valid, causal,
                          fused_causal_last(last_row, causal_shift)));
    __global const float *kh = k + k_off + b * k_sb + hk * k_sh;
    __global const float *vh = v + v_off + b * v_sb + hk * v_sh;
    const uint row = active ? i : last_row;

    /* acc holds the finished tiles' P V with Kahan compensation comp;
       tacc the current tile's. */
    float qv[FUSED_HEAD_DIM_MAX], acc[FUSED_HEAD_DIM_MAX];
    float comp[FUSED_HEAD_DIM_MAX], tacc[FUSED_HEAD_DIM_MAX];
    __global const float *qrow = q + q_off + b * q_sb + h * q_sh + row * q_ss;
    for (uint d = 0; d < head_dim; ++d)
        qv[d] = qrow[d];
    for (uint c = 0; c < head_dim_v; ++c)
        acc[c] = comp[c] = 0.0f;
    float m = -INFINITY, l = 0.0f, lc = 0.0f;

    fused_masks mk =
        fused_masks_make(mask_bool, mask_add, seq_kv, kv_valid, causal);
    mk.m_row = m_off + b * m_sb + h * m_sh + row * m_ss;
    mk.causal_last = fused_causal_last(row, causal_shift);
    const ulong drop_first = (((ulong)b * heads_q + h) * seq_q + row) * seq_kv;

    for (uint j0 = key_begin; j0 < key_end; j0 += tile_keys) {
        const uint n = min(tile_keys, key_end - j0);
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is consumed */
        for (uint e = lid; e < n * head_dim; e += wg)
            ktile[e] = kh[(j0 + e / head_dim) * k_ss + e % head_dim];
        for (uint e = lid; e < n * head_dim_v; e += wg)
            vtile[e] = vh[(j0 + e / head_dim_v) * v_ss + e % head_dim_v];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!active)
            continue;
        float tl = 0.0f;
        for (uint c = 0; c < head_dim_v; ++c)
            tacc[c] = 0.0f;
        for (uint jj = 0; jj < n; ++jj) {
            __local const float *kr = ktile + jj * head_dim;
            float s = 0.0f;
            for (uint d = 0; d < head_dim; ++d)
                s = fma(qv[d], kr[d], s);
            s = fused_mask1(s * scale, j0 + jj, &mk);
            if (s == -INFINITY)
                continue; /* p = 0: nothing to add, max unchanged */
            if (s > m) {
                const float corr = fused_weight1(m, s);
                l *= corr;
                lc *= corr;
                tl *= corr;
                for (uint c = 0; c < head_dim_v; ++c) {
                    acc[c] *= corr;
                    comp[c] *= corr;
                    tacc[c] *= corr;
                }
                m = s;
            }
            float p = fused_weight1(s, m);
            tl += p;
            if (drop_threshold)
                p = dropout_keep(drop_seed, drop_offset, drop_first + j0 + jj,
                                 drop_threshold)
                        ? p * drop_scale
                        : 0.0f;
            __local const float *vr = vtile + jj * head_dim_v;
            for (uint c = 0; c < head_dim_v; ++c)
                tacc[c] = fma(p, vr[c], tacc[c]);
        }
        fused_kahan1(&l, &lc, tl);
        for (uint c = 0; c < head_dim_v; ++c)
            fused_kahan1(&acc[c], &comp[c], tacc[c]);
    }
    if (!active)
        return;

    if (part) {
        __global float *pr =
            part + (((ulong)bh * nsplit + split) * seq_q + i) * (head_dim_v + 2);
        for (uint c = 0; c < head_dim_v; ++c)
            pr[c] = acc[c];
        pr[head_dim_v] = m;
        pr[head_dim_v + 1] = l;
        return;
    }
    __global float *orow = o + o_off + b * o_sb + h * o_sh + i * o_ss;
    const float inv = 1.0f / l;
    for (uint c = 0; c < head_dim_v; ++c)
        orow[c] = l == 0.0f ? 0.0f : acc[c] * inv;
    if (lse)
        lse[l_off + b * l_sb + h * l_sh + i * l_ss] =
            l == 0.0f ? -INFINITY : m + log(l);
}
