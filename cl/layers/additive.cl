/* Kernels of the additive family of layers (PROGRAM_ADDITIVE):
   - additive_scores: Bahdanau scores va . tanh(qp[i] + kp[j]) + bv for a
     register tile of ADD_TI query rows x ADD_TJ keys per work-item, from
     the projected rows, never storing the [B][Sq][Skv][A] sum;
   - add_softmax_rows: the row softmax with masked (-inf) entries and the
     all-masked row giving zeros (used by the additive and concat layers);
   - add_weighted_sum: weights . values per batch, ADD_TI rows x 16
     features per work-item (the additive context, concat's attn_applied);
   - se_squeeze / se_excite: the SE token gate around its one GEMM.
   Work-items are CPU micro-kernels (docs/kernel-notes.md): float16 tiles, no
   barriers, no __local; on a GPU they are plain independent work-items.
   Every index is 64-bit: the host checked the products, not 32-bit ones. */

/* ADD_TI, ADD_TJ: the tile (host and kernels share them). */
#ifndef CLATTN_EMBEDDED
#include "additive_params.clh"
#endif

/* 16 consecutive floats of which the first n (>= 1) are valid: lanes past
   n repeat element n - 1, so nothing is read past the row's end. The
   branch is uniform per work-item (only the last tile of a row is short). */
float16 add_load16(__global const float *p, ulong n)
{
    if (n >= 16)
        return vload16(0, p);
    float t[16];
#pragma unroll
    for (ulong l = 0; l < 16; ++l)
        t[l] = p[min(l, n - 1)];
    return vload16(0, t);
}

/* The first n lanes of v to dst. */
void add_store16(__global float *dst, float16 v, ulong n)
{
    if (n >= 16) {
        vstore16(v, 0, dst);
        return;
    }
    /* All 16 lanes, each guarded: with a constant trip count the loop
       unrolls and t stays in registers (a loop to n kept it, and the
       callers' tiles, in private memory on GPU compilers). */
    float t[16];
    vstore16(v, 0, t);
#pragma unroll
    for (ulong l = 0; l < 16; ++l)
        if (l < n)
            dst[l] = t[l];
}

/* Range (ceil(Skv / 16), B * i_tiles). qp: [B*Sq][A], the query
   projection with both projection biases folded in; kpt: [A][ldk], the
   key projection transposed (column b*Skv + j), so the 16 keys of a tile
   are one contiguous vector load per a. Masked keys (mask nonzero) score
   -inf. scores: [B][Sq][Skv]. */
__kernel void additive_scores(__global const float *qp,
                              __global const float *kpt, ulong ldk,
                              __global const float *va, float bv,
                              __global const uchar *mask, int has_mask,
                              __global float *scores, ulong sq, ulong skv,
                              ulong a_dim, ulong i_tiles)
{
    ulong j0 = get_global_id(0) * ADD_TJ, g1 = get_global_id(1);
    ulong b = g1 / i_tiles, i0 = (g1 % i_tiles) * ADD_TI;
    ulong nj = min((ulong)ADD_TJ, skv - j0), ni = min((ulong)ADD_TI, sq - i0);
    /* Rows past the end of a short tile recompute the last valid row (the
       result is dropped), so the loop has no row condition. */
    __global const float *q0 = qp + (b * sq + i0) * a_dim;
    __global const float *q1 = q0 + min(1ul, ni - 1) * a_dim;
    __global const float *q2 = q0 + min(2ul, ni - 1) * a_dim;
    __global const float *q3 = q0 + min(3ul, ni - 1) * a_dim;
    __global const float *k = kpt + b * skv + j0;
    float16 s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (ulong a = 0; a < a_dim; ++a) {
        float16 kv = add_load16(k + a * ldk, nj);
        float w = va[a];
        s0 += w * tanh(q0[a] + kv);
        s1 += w * tanh(q1[a] + kv);
        s2 += w * tanh(q2[a] + kv);
        s3 += w * tanh(q3[a] + kv);
    }
    float16 s[ADD_TI] = {s0 + bv, s1 + bv, s2 + bv, s3 + bv};
    /* -inf where masked (the store below writes only nj lanes). */
    float16 add = 0.0f;
    if (has_mask) {
        __global const uchar *m = mask + b * skv + j0;
        float t[16] = {0.0f};
#pragma unroll
        for (ulong l = 0; l < 16; ++l)
            if (l < nj)
                t[l] = m[l] ? -INFINITY : 0.0f;
        add = vload16(0, t);
    }
#pragma unroll
    for (ulong r = 0; r < ADD_TI; ++r)
        if (r < ni)
            add_store16(scores + (b * sq + i0 + r) * skv + j0, s[r] + add, nj);
}

/* Range (rows): each work-item normalizes one row of n scores in place.
   A row with every entry -inf (all keys masked) becomes zeros, not NaN. */
__kernel void add_softmax_rows(__global float *s, ulong n)
{
    __global float *row = s + get_global_id(0) * n;
    float m = -INFINITY;
    for (ulong j = 0; j < n; ++j)
        m = fmax(m, row[j]);
    if (m == -INFINITY) {
        for (ulong j = 0; j < n; ++j)
            row[j] = 0.0f;
        return;
    }
    float sum = 0.0f;
    for (ulong j = 0; j < n; ++j) {
        float e = exp(row[j] - m);
        row[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (ulong j = 0; j < n; ++j)
        row[j] *= inv;
}

/* Range (ceil(Dv / 16), B * i_tiles): out[b][i][d] = sum_j w[b][i][j]
   v[b][j][d] for ADD_TI rows i x 16 features d. w: [B][Sq][Skv], v:
   [B][Skv][Dv], out: [B][Sq][Dv]. Each 16-feature value vector is read
   once for the ADD_TI rows. */
__kernel void add_weighted_sum(__global const float *w, __global const float *v,
                               __global float *out, ulong sq, ulong skv,
                               ulong dv, ulong i_tiles)
{
    ulong d0 = get_global_id(0) * ADD_TJ, g1 = get_global_id(1);
    ulong b = g1 / i_tiles, i0 = (g1 % i_tiles) * ADD_TI;
    ulong nd = min((ulong)ADD_TJ, dv - d0), ni = min((ulong)ADD_TI, sq - i0);
    __global const float *w0 = w + (b * sq + i0) * skv;
    __global const float *w1 = w0 + min(1ul, ni - 1) * skv;
    __global const float *w2 = w0 + min(2ul, ni - 1) * skv;
    __global const float *w3 = w0 + min(3ul, ni - 1) * skv;
    __global const float *vb = v + b * skv * dv + d0;
    float16 o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f;
    for (ulong j = 0; j < skv; ++j) {
        float16 x = add_load16(vb + j * dv, nd);
        o0 += w0[j] * x;
        o1 += w1[j] * x;
        o2 += w2[j] * x;
        o3 += w3[j] * x;
    }
    float16 o[ADD_TI] = {o0, o1, o2, o3};
#pragma unroll
    for (ulong r = 0; r < ADD_TI; ++r)
        if (r < ni)
            add_store16(out + (b * sq + i0 + r) * dv + d0, o[r], nd);
}

/* Range (tokens): m = mean of the token's E features, then
   h[t][e] = relu(w1[e] * m + b1[e]) (the Linear(1, E) is an outer
   product, no GEMM). */
__kernel void se_squeeze(__global const float *x, __global const float *w1,
                         __global const float *b1, __global float *h, ulong e)
{
    ulong t = get_global_id(0);
    __global const float *row = x + t * e;
    float sum = 0.0f;
    for (ulong f = 0; f < e; ++f)
        sum += row[f];
    float m = sum / (float)e;
    __global float *hr = h + t * e;
    for (ulong f = 0; f < e; ++f)
        hr[f] = fmax(fma(w1[f], m, b1[f]), 0.0f);
}

/* Range (E, tokens): out holds h W2^T (the GEMM wrote it there); adds the
   fc2 bias and gates: out = x * sigmoid(out + b2). */
__kernel void se_excite(__global const float *x, __global const float *b2,
                        __global float *out, ulong e)
{
    ulong f = get_global_id(0), i = get_global_id(1) * e + f;
    float z = out[i] + b2[f];
    out[i] = x[i] / (1.0f + exp(-z));
}
