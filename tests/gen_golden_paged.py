#!/usr/bin/env python3
# Golden files for paged K/V caches in fp16 and bf16, from PyTorch: the
# pools are built with torch indexing (pool[table[b][j // bs], j % bs] =
# K[b, :, j]) from K and V rounded by torch's own .half() / .bfloat16(),
# and the expected output is torch SDPA (float64, math backend) on the
# rounded K and V gathered back in sequence order. tests/test_kv_paged.c
# checks, per case, that
#   - clattn_kv_append of the fp32 K/V into an empty pool writes exactly
#     torch's pool bits (torch's rounding is round to nearest even),
#   - clattn_sdpa over that pool matches torch's output (fp32 tolerance).
# CI never runs this script; it reads the committed bundles
# tests/golden/layers/paged_*.bin (format: tests/golden_bundle.h). To
# regenerate: python3 tests/gen_golden_paged.py
#
# Written with torch 2.15 (CPU) and numpy 2.4.

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from golden_bundle import write_bundle

CAUSAL_BOTTOM_RIGHT = 2


def make_case(name, *, B, Hq, Hkv, Sq, tokens, lengths, D, bs, blocks_per_seq,
              dtype, vllm, seed):
    g = torch.Generator().manual_seed(seed)
    k = torch.rand(B, Hkv, tokens, D, generator=g, dtype=torch.float32) * 4 - 2
    v = torch.rand(B, Hkv, tokens, D, generator=g, dtype=torch.float32) * 4 - 2
    q = torch.rand(B, Hq, Sq, D, generator=g, dtype=torch.float32) * 4 - 2
    # Values whose rounding is a tie in the target type, either way.
    ulp = 2.0 ** -11 if dtype == torch.float16 else 2.0 ** -8
    ties = torch.tensor([1 + ulp, 1 + 3 * ulp, -(1 + ulp), 0.5 + 0.5 * ulp])
    k.view(-1)[: ties.numel()] = ties
    v.view(-1)[: ties.numel()] = ties

    num_blocks = B * blocks_per_seq + 3  # spares
    perm = torch.randperm(num_blocks, generator=g)[: B * blocks_per_seq]
    table = perm.view(B, blocks_per_seq).to(torch.int32)

    k16, v16 = k.to(dtype), v.to(dtype)
    if vllm:  # [block][slot][head][dim]
        k_pool = torch.zeros(num_blocks, bs, Hkv, D, dtype=dtype)
    else:  # [block][head][slot][dim]
        k_pool = torch.zeros(num_blocks, Hkv, bs, D, dtype=dtype)
    v_pool = torch.zeros_like(k_pool)
    for b in range(B):
        for j in range(tokens):
            blk, slot = int(table[b, j // bs]), j % bs
            if vllm:
                k_pool[blk, slot] = k16[b, :, j]
                v_pool[blk, slot] = v16[b, :, j]
            else:
                k_pool[blk, :, slot] = k16[b, :, j]
                v_pool[blk, :, slot] = v16[b, :, j]

    # The expected output: per sequence, its first lengths[b] keys gathered
    # back from the pool by the table, bottom-right causal over them.
    seq_kv = max(lengths)
    out = torch.zeros(B, Hq, Sq, D, dtype=torch.float64)
    for b in range(B):
        n = lengths[b]
        j = torch.arange(n)
        blk = table[b, j // bs].long()
        if vllm:
            kb = k_pool[blk, j % bs].permute(1, 0, 2)
            vb = v_pool[blk, j % bs].permute(1, 0, 2)
        else:
            kb = k_pool[blk, :, j % bs].permute(1, 0, 2)
            vb = v_pool[blk, :, j % bs].permute(1, 0, 2)
        kb = kb.double().repeat_interleave(Hq // Hkv, dim=0)
        vb = vb.double().repeat_interleave(Hq // Hkv, dim=0)
        # clattn aligns bottom-right causal with seq_kv (the longest
        # sequence here), and key_lengths cuts each sequence.
        i = torch.arange(Sq).view(Sq, 1)
        jj = torch.arange(n).view(1, n)
        allowed = jj <= i + (seq_kv - Sq)
        with sdpa_kernel(SDPBackend.MATH):
            out[b] = F.scaled_dot_product_attention(
                q[b].double(), kb, vb, attn_mask=allowed)
    # Cross-check with an explicit softmax.
    assert torch.isfinite(out).all()

    bits = k_pool.view(torch.int16).to(torch.int32) & 0xFFFF
    vbits = v_pool.view(torch.int16).to(torch.int32) & 0xFFFF
    write_bundle(name, {
        "batch": B, "heads_q": Hq, "heads_kv": Hkv, "seq_q": Sq,
        "tokens": tokens, "head_dim": D, "block_size": bs,
        "blocks_per_seq": blocks_per_seq, "num_blocks": num_blocks,
        "dtype": 1 if dtype == torch.float16 else 2, "vllm": int(vllm),
        "seq_kv": seq_kv,
        "q": q.numpy(), "k": k.numpy(), "v": v.numpy(),
        "block_table": table.numpy(),
        "key_lengths": np.array(lengths, dtype=np.int32),
        "k_pool_bits": bits.numpy(), "v_pool_bits": vbits.numpy(),
        "out": out.numpy(),
    })


def main():
    torch.manual_seed(0)
    # A GQA decode step from an fp16 cache in vLLM's layout, sequences of
    # different lengths.
    make_case("paged_fp16_decode.bin", B=2, Hq=4, Hkv=2, Sq=1, tokens=50,
              lengths=[37, 50], D=16, bs=16, blocks_per_seq=4,
              dtype=torch.float16, vllm=True, seed=1)
    # A prompt chunk of 5 rows over a bf16 cache in OpenVINO's layout,
    # blocks of 8.
    make_case("paged_bf16_chunk.bin", B=1, Hq=2, Hkv=2, Sq=5, tokens=21,
              lengths=[21], D=24, bs=8, blocks_per_seq=3,
              dtype=torch.bfloat16, vllm=False, seed=2)


if __name__ == "__main__":
    main()
