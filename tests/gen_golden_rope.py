#!/usr/bin/env python3
# Golden files for rotary position embeddings (clattn_sdpa_desc.rope),
# from PyTorch with Hugging Face's formulas in float64: the half-split
# form of GPT-NeoX and Llama (modeling_llama.rotate_half, with
# GPT-NeoX's partial rotary dims) and the interleaved form of GPT-J
# (modeling_gptj.rotate_every_two with repeat_interleave'd sin/cos).
# Queries sit at q_positions[b] + i, keys at j (unrotated in the file:
# the library rotates them, rope_k); then torch SDPA (math backend,
# float64). tests/test_sdpa_rope.c runs each on every path and compares
# out and lse (fp32 tolerance). CI never runs this script; it reads the
# committed bundles tests/golden/layers/rope_*.bin (format:
# tests/golden_bundle.h). To regenerate: python3 tests/gen_golden_rope.py
#
# Written with torch 2.15 (CPU) and numpy 2.4.

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from golden_bundle import write_bundle

CAUSAL = {"none": 0, "top-left": 1, "bottom-right": 2}
STYLE = {"gptj": 1, "neox": 2}


def rotate_half(x):  # Hugging Face, modeling_llama
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x):  # Hugging Face, modeling_gptj
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def apply_rope(x, positions, style, rotary_dim, theta):
    """x [B][H][S][D] float64, positions [B][S]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, rotary_dim, 2,
                                             dtype=torch.float64)
                                / rotary_dim))
    freqs = positions[..., None].double() * inv_freq  # [B][S][rd/2]
    if style == "neox":
        emb = torch.cat((freqs, freqs), dim=-1)
        rotate = rotate_half
    else:
        emb = freqs.repeat_interleave(2, dim=-1)
        rotate = rotate_every_two
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B][1][S][rd]
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    return torch.cat((x_rot * cos + rotate(x_rot) * sin, x_pass), dim=-1)


def make_case(name, *, B, Hq, Hkv, Sq, Skv, D, style, rotary_dim, theta,
              q_positions, causal, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.rand(B, Hq, Sq, D, generator=g, dtype=torch.float32) * 4 - 2
    k = torch.rand(B, Hkv, Skv, D, generator=g, dtype=torch.float32) * 4 - 2
    v = torch.rand(B, Hkv, Skv, D, generator=g, dtype=torch.float32) * 4 - 2
    q_pos = torch.tensor(q_positions).view(B, 1) + torch.arange(Sq).view(1, Sq)
    k_pos = torch.arange(Skv).view(1, Skv).expand(B, Skv)
    qr = apply_rope(q.double(), q_pos, style, rotary_dim, theta)
    kr = apply_rope(k.double(), k_pos, style, rotary_dim, theta)
    kr = kr.repeat_interleave(Hq // Hkv, dim=1)
    vr = v.double().repeat_interleave(Hq // Hkv, dim=1)
    i = torch.arange(Sq).view(Sq, 1)
    j = torch.arange(Skv).view(1, Skv)
    if causal == "top-left":
        allowed = j <= i
    elif causal == "bottom-right":
        allowed = j <= i + (Skv - Sq)
    else:
        allowed = torch.ones(Sq, Skv, dtype=torch.bool)
    scale = float(np.float32(1.0 / np.sqrt(D)))  # clattn resolves it in fp32
    with sdpa_kernel(SDPBackend.MATH):
        out = F.scaled_dot_product_attention(qr, kr, vr, attn_mask=allowed,
                                             scale=scale)
    s = (qr @ kr.transpose(-1, -2)) * scale
    lse = torch.logsumexp(s.masked_fill(~allowed, float("-inf")), dim=-1)
    write_bundle(name, {
        "batch": B, "heads_q": Hq, "heads_kv": Hkv, "seq_q": Sq,
        "seq_kv": Skv, "head_dim": D, "causal": CAUSAL[causal],
        "rope_style": STYLE[style], "rotary_dim": rotary_dim,
        "theta": float(theta),
        "q_positions": np.array(q_positions, dtype=np.int32),
        "q": q.numpy(), "k": k.numpy(), "v": v.numpy(),
        "out": out.numpy(), "lse": lse.numpy(),
    })


def main():
    # A prefill chunk over its sequence's keys, bottom-right causal, GQA
    # 4/2, the NeoX form on a quarter of the features (GPT-NeoX's
    # rotary_pct 0.25), Llama 3's theta; the queries of each sequence
    # from their own positions.
    make_case("rope_neox_chunk.bin", B=2, Hq=4, Hkv=2, Sq=5, Skv=19, D=64,
              style="neox", rotary_dim=16, theta=500000.0,
              q_positions=[14, 3], causal="bottom-right", seed=1)
    # A prompt, top-left causal, the GPT-J form on half of the features
    # (GPT-J 6B rotates 64 of 256).
    make_case("rope_gptj_prompt.bin", B=1, Hq=3, Hkv=3, Sq=24, Skv=24, D=64,
              style="gptj", rotary_dim=32, theta=10000.0, q_positions=[0],
              causal="top-left", seed=2)


if __name__ == "__main__":
    main()
