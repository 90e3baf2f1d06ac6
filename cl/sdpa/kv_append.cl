/* Appending new tokens' K and V (fp32) to a cache in its element types
   (K_DTYPE, V_DTYPE: kv_dtype.clh, rounded to nearest even), contiguous
   or paged (KV_PAGED: kv_pages.clh). One work-item per (batch, K/V head,
   new token) copies that token's K row and V row; the host has checked
   every position, table entry and slot (src/sdpa/kv_append.c), and no two
   work-items write one slot. With rope_style nonzero the K row is
   rotated at its position first (cl/core/rope.clh), and turns is the
   frequency table; else turns is NULL. */
#ifndef CLATTN_EMBEDDED
#include "../core/kv_dtype.clh"
#include "../core/kv_pages.clh"
#include "../core/rope.clh"
#endif

__kernel void kv_append(__global const float *kn, ulong kn_off, ulong kn_sb,
                        ulong kn_sh, ulong kn_ss, __global const float *vn,
                        ulong vn_off, ulong vn_sb, ulong vn_sh, ulong vn_ss,
                        __global K_ELEM *k, ulong k_off, ulong k_sb, ulong k_sh,
                        ulong k_ss, __global V_ELEM *v, ulong v_off, ulong v_sb,
                        ulong v_sh, ulong v_ss KV_PAGE_PARAMS,
                        __global const int *positions, uint heads_kv,
                        uint new_tokens, uint head_dim, uint head_dim_v,
                        __global const float2 *turns, uint rope_style,
                        uint rotary_dim)
{
    const ulong id = get_global_id(0);
    const uint t = (uint)(id % new_tokens);
    const uint bh = (uint)(id / new_tokens);
    const uint b = bh / heads_kv, hk = bh % heads_kv;
    const uint j = (uint)positions[b] + t;
    __global const float *ksrc =
        kn + kn_off + b * kn_sb + hk * kn_sh + t * kn_ss;
    __global const float *vsrc =
        vn + vn_off + b * vn_sb + hk * vn_sh + t * vn_ss;
    __global K_ELEM *kdst =
        KV_HEAD(k, k_off, b, hk, k_sb, k_sh) + KV_ROW(b, j, k_sb, k_ss);
    __global V_ELEM *vdst =
        KV_HEAD(v, v_off, b, hk, v_sb, v_sh) + KV_ROW(b, j, v_sb, v_ss);
    uint d = 0;
    if (rope_style != ROPE_NONE) {
        for (uint i = 0; i < rotary_dim / 2; ++i) {
            const uint2 f = rope_pair(rope_style, rotary_dim, i);
            const float2 r = rope_rotate((float2)(ksrc[f.x], ksrc[f.y]),
                                         rope_cos_sin((int)j, turns[i]));
            kdst[f.x] = K_STORE(r.x);
            kdst[f.y] = K_STORE(r.y);
        }
        d = rotary_dim;
    }
    for (; d < head_dim; ++d)
        kdst[d] = K_STORE(ksrc[d]);
    for (uint d = 0; d < head_dim_v; ++d)
        vdst[d] = V_STORE(vsrc[d]);
}
