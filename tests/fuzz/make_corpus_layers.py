#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_layers (tests/fuzz/corpus_layers/): valid
mha and talking-heads problems (masks, need_weights, paths, layouts, dropout,
pre-LayerNorm, separate weights) and invalid ones of each documented status.
The byte layout is documented at the top of fuzz_layers.c.
Usage: python3 tests/fuzz/make_corpus_layers.py [OUTPUT_DIR]"""
import os
import sys

TH, TOGGLES, NULLS, ARRAYS, TWICE, TIMING, HUGE = 1, 2, 4, 8, 16, 32, 64
BIAS, BATCH_FIRST, PRE_LN, NO_OUT, SEPARATE = 1, 2, 4, 8, 16
KPM, PER_HEAD, CAUSAL, SELF, KV_SAME = 1, 2, 4, 8, 16


def head(mode, toggles, nulls, arrays):
    out = bytes([mode])
    if mode & TOGGLES:
        out += bytes([toggles])
    if mode & NULLS:
        out += bytes([nulls])
    if mode & ARRAYS:
        out += bytes([arrays])
    return out


def mha(mode=0, toggles=0xFF, nulls=0, arrays=0, E=8, H=2, kdim=0, vdim=0,
        flags=BIAS, scale=0, dropout=0, eps=0, seed=1, data=3, B=2, Sq=4,
        Skv=4, cflags=SELF, mask=0, need=1, path=0, huge=()):
    # huge: the HUGE indices (batch, seq_q, seq_kv) when mode has HUGE
    return head(mode, toggles, nulls, arrays) + bytes(
        [E, H, kdim, vdim, flags, scale, dropout, eps, seed, data, B, Sq,
         Skv, cflags, mask, need, path]) + bytes(huge)


def th(mode=TH, toggles=0xFF, nulls=0, arrays=0, dim=8, H=2, flags=1,
       dropout=0, seed=1, data=5, B=2, N=5, cflags=1, path=0, huge=()):
    # huge: the HUGE indices (batch, seq) when mode has HUGE
    return head(mode | TH, toggles, nulls, arrays) + bytes(
        [dim, H, flags, dropout, seed, data, B, N, cflags, path]) + bytes(huge)


def seeds():
    s = {}
    # -- mha, valid ------------------------------------------------------
    s['mha_self_avg'] = mha()
    s['mha_cross_kdim_vdim_per_head_bool'] = mha(
        E=12, H=3, kdim=5, vdim=7, flags=BIAS | BATCH_FIRST, Sq=3, Skv=6,
        cflags=KPM | PER_HEAD, mask=1, need=2, path=1)
    s['mha_additive_causal_fused'] = mha(E=6, H=1, flags=0, Sq=5, Skv=7,
                                         cflags=CAUSAL | KV_SAME, mask=2,
                                         need=0, path=2)
    s['mha_pre_ln_separate_scale'] = mha(
        E=16, H=4, flags=BIAS | PRE_LN | SEPARATE, scale=0x30, eps=2,
        B=3, Sq=6, cflags=SELF | KPM, need=0)
    s['mha_no_out_proj_dropout_twice'] = mha(
        mode=TWICE | TIMING, E=4, H=1, flags=NO_OUT, dropout=0x82, B=1,
        Sq=9, Skv=9, cflags=SELF, need=2, path=1)
    s['mha_dropout_fused_kv'] = mha(E=10, H=5, kdim=4, vdim=4, dropout=0x84,
                                    Sq=2, Skv=8, cflags=KV_SAME | KPM,
                                    need=0, path=3)
    # -- mha, invalid ----------------------------------------------------
    s['mha_bad_heads'] = mha(E=10, H=4)
    s['mha_bad_dropout_nan'] = mha(dropout=0xE0)
    s['mha_bad_scale_inf'] = mha(scale=0xE1)
    s['mha_bad_eps_negative'] = mha(flags=PRE_LN, eps=4)
    s['mha_bad_pre_ln_kdim'] = mha(flags=PRE_LN, kdim=3)
    s['mha_bad_missing_out_proj'] = mha(mode=TOGGLES, toggles=0xF5)
    s['mha_bad_extra_in_proj'] = mha(mode=TOGGLES, kdim=3, toggles=0xF0)
    s['mha_bad_weights_fused'] = mha(need=1, path=4)
    s['mha_bad_enum_path'] = mha(path=0xF0)
    s['mha_bad_seq_zero'] = mha(Sq=0, cflags=0)
    s['mha_bad_null_mask'] = mha(mode=ARRAYS, arrays=0x10, mask=1)
    s['mha_bad_null_ctx'] = mha(mode=NULLS, nulls=0x01)
    # huge logical shapes on the small arrays (HUGE_DIMS of fuzz_layers.c):
    # batch 2^61 (bytes wrap to 0), seq_q 2^23 + 1 (a GEMM past CLBlast's
    # int), batch 2^31 with per-head weights (B x H past int32)
    s['mha_huge_batch_wraps'] = mha(mode=HUGE, huge=(9, 0, 0))
    s['mha_huge_gemm_int'] = mha(mode=HUGE, cflags=0, need=0, B=1,
                                 huge=(0, 1, 0))
    s['mha_huge_batch_2_31'] = mha(mode=HUGE, need=2, huge=(3, 0, 0))
    # -- talking heads ---------------------------------------------------
    s['th_unfused_attn'] = th()
    s['th_fused_no_bias'] = th(dim=12, H=3, flags=0, B=3, N=9, cflags=0,
                               path=2)
    s['th_dropout_twice'] = th(mode=TH | TWICE | TIMING, dim=20, H=5,
                               dropout=0x83, N=7, cflags=1, path=1)
    s['th_bad_fused_attn'] = th(path=3)
    s['th_bad_alias_out_x'] = th(cflags=2)
    s['th_bad_extra_qkv_bias'] = th(mode=TH | TOGGLES, flags=0, toggles=0xF1)
    s['th_bad_dim'] = th(dim=7, H=2)
    s['th_bad_null_call'] = th(mode=TH | NULLS, nulls=0x20)
    s['th_huge_batch_2_32'] = th(mode=TH | HUGE, huge=(6, 0))
    s['th_huge_seq_gemm_int'] = th(mode=TH | HUGE, cflags=0, B=1,
                                   huge=(0, 1))
    s['th_huge_tokens_overflow'] = th(mode=TH | HUGE, huge=(12, 15))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus_layers')
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print(f'{len(seeds())} seeds in {out}')


if __name__ == '__main__':
    main()
