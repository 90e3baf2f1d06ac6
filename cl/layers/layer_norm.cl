/* torch.nn.LayerNorm over the last dimension, affine:
   y = (x - mean) / sqrt(var + eps) * weight + bias, var biased (divided by
   n), as torch. One work-item per row: on a CPU device a row is a short
   contiguous loop, vectorized by hand with float4 (PoCL does not vectorize
   across work-items once a kernel has a reduction loop). Two passes over
   the row (mean, then centred squares) keep the variance accurate when
   the mean is large. Range: (rows). */
__kernel void layer_norm_rows(__global const float *x, __global float *y,
                              __global const float *weight,
                              __global const float *bias, uint n, float eps)
{
    const size_t r = get_global_id(0);
    __global const float *xr = x + r * n;
    __global float *yr = y + r * n;
    const uint n4 = n & ~3u;

    float4 acc = (float4)(0.0f);
    for (uint c = 0; c < n4; c += 4)
        acc += vload4(0, xr + c);
    float sum = (acc.x + acc.y) + (acc.z + acc.w);
    for (uint c = n4; c < n; ++c)
        sum += xr[c];
    const float mean = sum / (float)n;

    const float4 mean4 = (float4)(mean);
    acc = (float4)(0.0f);
    for (uint c = 0; c < n4; c += 4) {
        float4 d = vload4(0, xr + c) - mean4;
        acc = fma(d, d, acc);
    }
    float squares = (acc.x + acc.y) + (acc.z + acc.w);
    for (uint c = n4; c < n; ++c) {
        float d = xr[c] - mean;
        squares = fma(d, d, squares);
    }
    const float inv = rsqrt(squares / (float)n + eps);

    const float4 inv4 = (float4)(inv);
    for (uint c = 0; c < n4; c += 4) {
        float4 v = (vload4(0, xr + c) - mean4) * inv4;
        vstore4(fma(v, vload4(0, weight + c), vload4(0, bias + c)), 0, yr + c);
    }
    for (uint c = n4; c < n; ++c)
        yr[c] = fma((xr[c] - mean) * inv, weight[c], bias[c]);
}
