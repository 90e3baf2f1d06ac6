#!/usr/bin/env python3
# Golden files for packed variable-length batches (cu_seqlens), from
# PyTorch: sequences of different lengths, each attended on its own by
# torch SDPA (float64, math backend) and the results concatenated, as
# FlashAttention's varlen functions define them. The tensors are stored
# token-major, [tokens][heads][dim] (FlashAttention's packed layout);
# the LSE [heads][tokens] is torch.logsumexp of the masked scaled scores.
# tests/test_sdpa_varlen.c runs each on the fused paths and compares out
# and lse (fp32 tolerance). CI never runs this script; it reads the
# committed bundles tests/golden/layers/varlen_*.bin (format:
# tests/golden_bundle.h). To regenerate: python3 tests/gen_golden_varlen.py
#
# Written with torch 2.15 (CPU) and numpy 2.4.

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from golden_bundle import write_bundle

CAUSAL = {"none": 0, "top-left": 1, "bottom-right": 2}


def make_case(name, *, Hq, Hkv, D, len_q, len_k, causal, seed):
    g = torch.Generator().manual_seed(seed)
    tq, tk = sum(len_q), sum(len_k)
    q = torch.rand(tq, Hq, D, generator=g, dtype=torch.float32) * 4 - 2
    k = torch.rand(tk, Hkv, D, generator=g, dtype=torch.float32) * 4 - 2
    v = torch.rand(tk, Hkv, D, generator=g, dtype=torch.float32) * 4 - 2
    out = torch.zeros(tq, Hq, D, dtype=torch.float64)
    lse = torch.full((Hq, tq), float("-inf"), dtype=torch.float64)
    scale = float(np.float32(1.0 / np.sqrt(D)))  # clattn resolves it in fp32
    q0 = k0 = 0
    for nq, nk in zip(len_q, len_k):
        if nq:
            qs = q[q0:q0 + nq].double().transpose(0, 1)  # [H][nq][D]
            ks = k[k0:k0 + nk].double().transpose(0, 1)
            vs = v[k0:k0 + nk].double().transpose(0, 1)
            ks = ks.repeat_interleave(Hq // Hkv, dim=0)
            vs = vs.repeat_interleave(Hq // Hkv, dim=0)
            i = torch.arange(nq).view(nq, 1)
            j = torch.arange(nk).view(1, nk)
            if causal == "top-left":
                allowed = j <= i
            elif causal == "bottom-right":
                allowed = j <= i + (nk - nq)
            else:
                allowed = torch.ones(nq, nk, dtype=torch.bool)
            if nk:
                with sdpa_kernel(SDPBackend.MATH):
                    o = F.scaled_dot_product_attention(
                        qs, ks, vs, attn_mask=allowed, scale=scale)
                s = (qs @ ks.transpose(1, 2)) * scale
                s = s.masked_fill(~allowed, float("-inf"))
                lse[:, q0:q0 + nq] = torch.logsumexp(s, dim=-1)
                # a fully masked row: zeros (torch gives NaN there)
                o = torch.nan_to_num(o, nan=0.0)
                out[q0:q0 + nq] = o.transpose(0, 1)
        q0 += nq
        k0 += nk
    cu_q = np.concatenate([[0], np.cumsum(len_q)]).astype(np.int32)
    cu_k = np.concatenate([[0], np.cumsum(len_k)]).astype(np.int32)
    write_bundle(name, {
        "batch": len(len_q), "heads_q": Hq, "heads_kv": Hkv, "head_dim": D,
        "seq_q": max(len_q), "seq_kv": max(len_k), "causal": CAUSAL[causal],
        "cu_seqlens_q": cu_q, "cu_seqlens_k": cu_k,
        "q": q.numpy(), "k": k.numpy(), "v": v.numpy(),
        "out": out.numpy(), "lse": lse.numpy(),
    })


def main():
    # Chunked prefill: each sequence's new tokens over its cached and new
    # keys, bottom-right causal per sequence, GQA 4/2; one sequence
    # without new tokens.
    make_case("varlen_chunks.bin", Hq=4, Hkv=2, D=32, len_q=[7, 0, 16, 3],
              len_k=[20, 9, 16, 41], causal="bottom-right", seed=1)
    # Prompts of different lengths, top-left causal (PyTorch is_causal),
    # D = 48.
    make_case("varlen_prompts.bin", Hq=2, Hkv=2, D=48, len_q=[33, 5, 40],
              len_k=[33, 5, 40], causal="top-left", seed=2)


if __name__ == "__main__":
    main()
