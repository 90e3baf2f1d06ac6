/* The multi-head attention layer's small kernels: its two masks (torch
   MHA polarity) merged into the one mask SDPA takes, and the head average
   of the attention weights.

   Masks: the output mask is [mb][mh][mi][skv] (SDPA's broadcast form),
   range (skv, mi, mb*mh). kpm, the key padding mask, is [B][skv] with
   nonzero = ignore the key (present only when mb == B). attn is the
   attention mask, [mb][mh][mi][skv] when attn_per_head, else [mi][skv]. */

/* Where a mask work-item's element is: o in the output mask, a in the
   attention mask; and whether the key padding mask drops its key. */
typedef struct mha_mask_at {
    size_t o, a;
    int pad;
} mha_mask_at;

mha_mask_at mha_mask_locate(__global const uchar *kpm, uint mh,
                            uint attn_per_head)
{
    const size_t j = get_global_id(0), i = get_global_id(1),
                 bh = get_global_id(2);
    const size_t skv = get_global_size(0), mi = get_global_size(1);
    mha_mask_at at;
    at.o = (bh * mi + i) * skv + j;
    at.a = attn_per_head ? at.o : i * skv + j;
    at.pad = kpm && kpm[(bh / mh) * skv + j];
    return at;
}

/* SDPA's bool mask: nonzero = attend. The torch bool attn_mask is
   nonzero = not allowed, so both masks flip here. attn may be NULL. */
__kernel void mha_mask_bool(__global uchar *out, __global const uchar *kpm,
                            __global const uchar *attn, uint mh,
                            uint attn_per_head)
{
    const mha_mask_at at = mha_mask_locate(kpm, mh, attn_per_head);
    int ignore = at.pad;
    if (attn)
        ignore |= attn[at.a] != 0;
    out[at.o] = ignore ? 0 : 1;
}

/* An additive attention mask with the key padding mask folded in as
   -inf (what torch does: the bool padding mask becomes a float mask). */
__kernel void mha_mask_additive(__global float *out, __global const uchar *kpm,
                                __global const float *attn, uint mh,
                                uint attn_per_head)
{
    const mha_mask_at at = mha_mask_locate(kpm, mh, attn_per_head);
    out[at.o] = at.pad ? -INFINITY : attn[at.a];
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
