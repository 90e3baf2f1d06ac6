/* nn.Linear on CPU-class devices, y = (accumulate ? y : 0) + x W^T + bias,
   as register-tiled micro-kernels in the style of the fused SDPA kernel:
   the weight is packed once per call into blocks of LIN_BN output
   columns laid out [k][LIN_BN] (zeros past n), so the inner loop makes
   four contiguous float16 loads per input feature and reuses them for
   LIN_RT rows. No barriers, no __local (docs/kernel-notes.md). */
#ifndef CLATTN_EMBEDDED
#include "../core/sdpa_fused_common.clh"
#include "linear_params.clh"
#endif

/* Range (n rounded up to LIN_BN, k): element (j, kk) of the packed
   weight, W[j][kk], at wp[((j / LIN_BN) * k + kk) * LIN_BN + j % LIN_BN];
   columns j >= n are zeros. */
__kernel void linear_pack_w(__global const float *restrict w, ulong w_off,
                            ulong w_ld, __global float *restrict wp, uint n,
                            uint k)
{
    const uint j = (uint)get_global_id(0), kk = (uint)get_global_id(1);
    wp[((ulong)(j / LIN_BN) * k + kk) * LIN_BN + j % LIN_BN] =
        j < n ? w[w_off + (ulong)j * w_ld + kk] : 0.0f;
}

/* Range (ceil(n / LIN_BN), ceil(m / LIN_RW)): LIN_RW rows of y by the
   LIN_BN columns of one packed block, in tiles of LIN_RT rows. Each tile
   sums its k products in order in float16 accumulators, then adds the
   bias and, with accumulate, y's old value. */
__kernel void linear_rows(__global const float *restrict x, ulong x_off,
                          ulong x_ld, __global const float *restrict wp,
                          __global const float *restrict bias, ulong bias_off,
                          __global float *restrict y, ulong y_off, ulong y_ld,
                          uint m, uint n, uint k, int accumulate)
{
    const uint j0 = (uint)get_global_id(0) * LIN_BN;
    const uint i0 = (uint)get_global_id(1) * LIN_RW;
    if (j0 >= n || i0 >= m)
        return;
    const uint rows = min((uint)LIN_RW, m - i0),
               width = min((uint)LIN_BN, n - j0);
    __global const float *wb = wp + (ulong)get_global_id(0) * k * LIN_BN;
    for (uint r0 = 0; r0 < rows; r0 += LIN_RT) {
        const uint last = min(r0 + LIN_RT, rows) - 1;
        __global const float *xr[LIN_RT];
        for (uint t = 0; t < LIN_RT; ++t)
            xr[t] = x + x_off + (ulong)(i0 + min(r0 + t, last)) * x_ld;
        float16 acc[LIN_RT][4];
        for (uint t = 0; t < LIN_RT; ++t)
            for (uint c = 0; c < 4; ++c)
                acc[t][c] = (float16)0.0f;
        for (uint kk = 0; kk < k; ++kk) {
            __global const float *wr = wb + (ulong)kk * LIN_BN;
            const float16 v0 = vload16(0, wr), v1 = vload16(1, wr),
                          v2 = vload16(2, wr), v3 = vload16(3, wr);
#pragma unroll
            for (uint t = 0; t < LIN_RT; ++t) {
                const float16 a = (float16)(xr[t][kk]);
                acc[t][0] = fma(a, v0, acc[t][0]);
                acc[t][1] = fma(a, v1, acc[t][1]);
                acc[t][2] = fma(a, v2, acc[t][2]);
                acc[t][3] = fma(a, v3, acc[t][3]);
            }
        }
        /* Constant trip counts, guarded, so that both loops unroll and
           acc is never indexed at run time (GPU compilers would put it in
           private memory). */
#pragma unroll
        for (uint t = 0; t < LIN_RT; ++t) {
            if (r0 + t > last)
                continue;
            __global float *yr = y + y_off + (ulong)(i0 + r0 + t) * y_ld + j0;
            /* The bias is read per row (from L1): kept in registers for
               the whole work-item it made NVIDIA's build spill. */
#pragma unroll
            for (uint c = 0; c < 4; ++c) {
                float16 v = acc[t][c];
                if (bias)
                    v += fused_load16(bias + bias_off + j0, c, width);
                if (accumulate)
                    v += fused_load16(yr, c, width);
                fused_store16(yr, c, width, v);
            }
        }
    }
}
