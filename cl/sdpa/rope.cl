/* The rotary pre-pass of SDPA (src/sdpa/sdpa_rope.c): rows of Q (or of
   K, in its element type K_ELEM: kv_dtype.clh) rotated at their
   positions into a contiguous fp32 copy [batch][heads][seq][head_dim],
   which the attention path then reads in place of the caller's view.
   One work-item per (pair, rows, batch) of the view, for every head: the
   angle depends on the position and the pair only, so it is formed once
   for all heads (the features past rotary_dim get work-items of their
   own, which copy it). A row's position is starts[b] + its index in its sequence: the view's
   row s of batch b, or in a packed batch (packed nonzero; the view's
   batch is 1) row s - cu[b] of the sequence b that holds packed row s.
   starts NULL = 0. */
#ifndef CLATTN_EMBEDDED
#include "../core/kv_dtype.clh"
#include "../core/rope.clh"
#endif

/* The sequence holding packed row s: the last b with cu[b] <= s. */
static uint packed_sequence(__global const int *cu, uint batch, uint s)
{
    uint lo = 0, hi = batch; /* cu[lo] <= s < cu[hi] */
    while (hi - lo > 1) {
        const uint mid = (lo + hi) / 2;
        if ((uint)cu[mid] <= s)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Row s of the view: its pair i (i < rotary_dim / 2) rotated, or its
   feature rotary_dim + i - pairs copied, for every head. */
static void rope_row(__global const K_ELEM *x, ulong x_off, ulong x_sb,
                     ulong x_sh, ulong x_ss, __global float *y,
                     __global const int *starts, __global const int *cu,
                     uint packed, uint batch, __global const float2 *turns,
                     uint style, uint rotary_dim, uint head_dim, uint heads,
                     uint seq, uint i, uint s, uint vb)
{
    const uint pairs = rotary_dim / 2;
    __global const K_ELEM *row = x + x_off + vb * x_sb + s * x_ss;
    __global float *out = y + ((ulong)vb * heads * seq + s) * head_dim;
    const ulong out_head = (ulong)seq * head_dim;
    if (i >= pairs) { /* a feature past rotary_dim: copied */
        const uint d = rotary_dim + (i - pairs);
        for (uint h = 0; h < heads; ++h)
            out[h * out_head + d] = K_LOAD(row + h * x_sh, d);
        return;
    }
    uint b = vb, index = s;
    if (packed) {
        b = packed_sequence(cu, batch, s);
        index = s - (uint)cu[b];
    }
    const int pos = (starts ? starts[b] : 0) + (int)index;
    /* one angle for the pair at this position, every head */
    const float2 cs = rope_cos_sin(pos, turns[i]);
    const uint2 f = rope_pair(style, rotary_dim, i);
    for (uint h = 0; h < heads; ++h) {
        __global const K_ELEM *r = row + h * x_sh;
        const float2 v = rope_rotate((float2)(K_LOAD(r, f.x), K_LOAD(r, f.y)),
                                     cs);
        out[h * out_head + f.x] = v.x;
        out[h * out_head + f.y] = v.y;
    }
}

/* Work-item (i, t, vb) takes rows [t * rows_per_item, ...) of the seq
   rows: 1 on GPU-class devices; more on CPU-class ones, where a
   work-group of a few dozen rotations costs more to schedule than to
   run. */
__kernel void rope_rows(__global const K_ELEM *x, ulong x_off, ulong x_sb,
                        ulong x_sh, ulong x_ss, __global float *y,
                        __global const int *starts, __global const int *cu,
                        uint packed, uint batch, __global const float2 *turns,
                        uint style, uint rotary_dim, uint head_dim, uint heads,
                        uint seq, uint rows_per_item)
{
    const uint i = get_global_id(0), vb = get_global_id(2);
    const uint first = get_global_id(1) * rows_per_item;
    const uint end = min(seq, first + rows_per_item);
    for (uint s = first; s < end; ++s)
        rope_row(x, x_off, x_sb, x_sh, x_ss, y, starts, cu, packed, batch,
                 turns, style, rotary_dim, head_dim, heads, seq, i, s, vb);
}
