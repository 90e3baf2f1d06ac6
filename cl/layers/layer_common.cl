/* Small kernels every layer uses. */

/* y[r][c] += bias[c]: the bias of an nn.Linear after its GEMM. Range
   (cols, rows). */
__kernel void layer_bias_add(__global float *y, ulong y_offset, ulong ld,
                             __global const float *bias, ulong bias_offset)
{
    size_t c = get_global_id(0), r = get_global_id(1);
    y[y_offset + r * ld + c] += bias[bias_offset + c];
}
