/* The multi-head attention layer's small kernels: its two masks (torch
   MHA polarity) merged into the one mask SDPA takes, and the head average
   of the attention weights.

   Masks: the output mask is [mb][mh][mi][skv] (SDPA's broadcast form),
   range (skv, mi, mb*mh). kpm, the key padding mask, is [B][skv] with
   nonzero = ignore the key (present only when mb == B). attn is the
   attention mask, [mb][mh][mi][skv] when attn_per_head, else [mi][skv]. */

/* SDPA's bool mask: nonzero = attend. The torch bool attn_mask is
   nonzero = not allowed, so both masks flip here. attn may be NULL. */
__kernel void mha_mask_bool(__global uchar *out, __global const uchar *kpm,
                            __global const uchar *attn, uint mh,
                            uint attn_per_head)
{
    const size_t j = get_global_id(0), i = get_global_id(1),
                 bh = get_global_id(2);
    const size_t skv = get_global_size(0), mi = get_global_size(1);
    const size_t o = (bh * mi + i) * skv + j;
    int ignore = kpm && kpm[(bh / mh) * skv + j];
    if (attn)
        ignore |= attn[attn_per_head ? o : i * skv + j] != 0;
    out[o] = ignore ? 0 : 1;
}

/* An additive attention mask with the key padding mask folded in as
   -inf (what torch does: the bool padding mask becomes a float mask). */
__kernel void mha_mask_additive(__global float *out, __global const uchar *kpm,
                                __global const float *attn, uint mh,
                                uint attn_per_head)
{
    const size_t j = get_global_id(0), i = get_global_id(1),
                 bh = get_global_id(2);
    const size_t skv = get_global_size(0), mi = get_global_size(1);
    const size_t o = (bh * mi + i) * skv + j;
    int ignore = kpm && kpm[(bh / mh) * skv + j];
    out[o] = ignore ? -INFINITY : attn[attn_per_head ? o : i * skv + j];
}

/* out[b][p] = mean over h of probs[b][h][p], p over the seq_q x seq_kv
   plane; a sum divided by the head count, as torch's mean. Range
   (plane, batch). */
__kernel void mha_head_mean(__global const float *probs, __global float *out,
                            uint heads, ulong plane)
{
    const size_t p = get_global_id(0), b = get_global_id(1);
    __global const float *src = probs + b * heads * plane + p;
    float sum = 0.0f;
    for (uint h = 0; h < heads; ++h)
        sum += src[h * plane];
    out[b * plane + p] = sum / (float)heads;
}
