#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_sdpa (tests/fuzz/corpus/): valid problems
of each mask and causal kind, layouts and contexts, and invalid ones of each
documented status. The byte layout is documented at the top of fuzz_sdpa.c.
Usage: python3 tests/fuzz/make_corpus.py [OUTPUT_DIR]"""
import os
import sys

HOST, DEVICE, PROBS, KLENS, SCRATCH, SPECIALS, MASK_NULL, NULLS = (
    1, 2, 4, 8, 16, 32, 64, 128)


def dim(v):
    """A DIM byte: 0..8 directly, or a special index / raw value."""
    specials = {'SIZE_MAX': 0xC0, 'SIZE_MAX/3': 0xC1, 'SIZE_MAX/4+1': 0xC2,
                'SIZE_MAX/2+1': 0xC3, '2^32': 0xC4, 'INT32_MAX': 0xC5,
                'INT32_MAX+1': 0xC6, 65535: 0xC7, 65536: 0xC8, 65537: 0xC9,
                '2^20': 0xCA, 46341: 0xCB, 3037000500: 0xCC, '2^62': 0xCD,
                13: 0xCE, 17: 0xCF}
    if isinstance(v, int) and 0 <= v <= 8:
        return bytes([v])
    if isinstance(v, int) and v not in specials:  # 8 raw bytes follow
        return bytes([0xF0]) + v.to_bytes(8, 'little')
    return bytes([specials[v]])


def strides(b, h, s, f):
    """STRIDE bytes of an explicit layout (layout 5): b, h, s, f < 0xE0."""
    return bytes([b, h, s, f])


def tensor(slot, strides=0, offset=0, size=0, stride_bytes=b'',
           offset_byte=None, size_byte=None, foreign=False):
    out = bytes([slot | (8 if foreign else 0),
                 strides | (offset << 3) | (size << 6)])
    out += stride_bytes
    if offset in (6, 7):
        out += bytes([offset_byte])
    if size != 0:
        out += bytes([size_byte])
    return out


def contiguous_tensors(probs=True, lse=True):
    return b''.join(tensor(t) for t in range(7))


def seed(mode=HOST | DEVICE | PROBS, nulls=None, B=1, Hq=2, Hkv=0, Sq=4,
         Skv=4, D=4, Dv=0, scale=0, causal=0, mask=0, maskshape=0,
         dropout=0, dseed=1, doff=0, data=7, specials=b'', klens=b'',
         rope=b'',
         path=0, call=0x18, tensors=None):
    out = bytes([mode])
    if mode & NULLS:
        out += bytes([nulls])
    for v in (B, Hq, Hkv, Sq, Skv, D, Dv):
        out += dim(v)
    out += bytes([scale, causal, mask, maskshape, dropout, dseed, doff, data])
    if mode & SPECIALS:
        out += specials
    if mode & KLENS:
        out += klens
    if maskshape & 0x40:  # ROPE: style, rotary_dim, theta, flags, [POS]
        out += rope
    if mode & DEVICE:
        out += bytes([path, call])
        out += tensors if tensors is not None else contiguous_tensors()
    return out


def seeds():
    s = {}
    # -- valid: every mask and causal kind, on both entry points ----------
    s['valid_plain'] = seed()
    s['valid_causal_topleft_gqa'] = seed(Hq=4, Hkv=2, Sq=5, Skv=7, D=3,
                                         causal=1)
    # fully masked rows (Sq > Skv), with +inf in V (not compared)
    s['valid_causal_bottomright_sq_gt_skv'] = seed(
        mode=HOST | DEVICE | PROBS | SPECIALS, Sq=7, Skv=5, causal=2, Dv=3,
        specials=bytes([1, 2, 5, 1]))
    s['valid_bool_mask_full'] = seed(B=2, Sq=5, Skv=6, mask=1)
    s['valid_bool_mask_broadcast_bh_mqa'] = seed(B=2, Hq=3, Hkv=1, mask=1,
                                                 maskshape=3, causal=1,
                                                 scale=0x30)
    s['valid_additive_mask_broadcast_s'] = seed(B=2, Sq=6, Skv=5, mask=2,
                                                maskshape=4)
    s['valid_additive_mask_causal'] = seed(Sq=8, Skv=8, mask=2, causal=1,
                                           D=8, Dv=2)
    s['valid_key_lengths'] = seed(mode=HOST | DEVICE | PROBS | KLENS, B=3,
                                  Skv=6, klens=bytes([0, 3, 6]))
    s['valid_dropout'] = seed(dropout=0x82, dseed=0x11, doff=5, Sq=6, Skv=8)
    s['valid_scratch_chunked'] = seed(mode=HOST | DEVICE | SCRATCH, B=2,
                                      Hq=2, Sq=8, Skv=8, call=0x10)
    s['valid_special_dims_13_17'] = seed(B=1, Hq=1, Sq=13, Skv=17, D=2)
    s['valid_user_event_gate'] = seed(mode=DEVICE, call=0x1F)
    s['valid_nan_in_q'] = seed(mode=HOST | DEVICE | PROBS | SPECIALS,
                               specials=bytes([1, 0, 3, 0]))
    # -- valid device layouts ---------------------------------------------
    # BSHD everywhere, padded strides, a broadcast K/V and offsets
    s['views_padded_offsets'] = seed(mode=DEVICE, B=2, Sq=3, Skv=5, mask=1,
                                     tensors=b''.join(
        tensor(t, strides=2, offset=1 + t % 3, size=1,
               stride_bytes=bytes([1, 2, 3]), size_byte=4)
        for t in range(7)))
    s['views_kv_batch_broadcast'] = seed(mode=DEVICE, B=3, Sq=4, Skv=4,
                                         tensors=b''.join(
        tensor(t, strides=3 if t in (1, 2) else 0) for t in range(7)))
    # packed QKV [B, S, 3, H, D] in one buffer (slot 0), explicit strides
    H, S, Dd, Bb = 2, 4, 4, 1
    st = bytes([S * 3 * H * Dd, Dd, 3 * H * Dd, 1])
    s['views_packed_qkv'] = seed(
        mode=DEVICE, B=Bb, Hq=H, Sq=S, Skv=S, D=Dd, tensors=
        tensor(0, strides=5, stride_bytes=st) +
        tensor(0, strides=5, offset=6, stride_bytes=st, offset_byte=H * Dd) +
        tensor(0, strides=5, offset=6, stride_bytes=st,
               offset_byte=2 * H * Dd) +
        tensor(3) + tensor(4) + tensor(5) + tensor(6))
    # out and lse in one buffer, lse after out (offset 32 = B*Hq*Sq*Dv)
    s['views_outputs_share_buffer'] = seed(
        mode=DEVICE, tensors=tensor(0) + tensor(1) + tensor(2) + tensor(3) +
        tensor(4, size=1, size_byte=16) + tensor(5) +
        tensor(4, offset=6, offset_byte=32))
    # clattn_sdpa_on_queue on a second queue of the context (call bits 5-6)
    s['valid_on_own_queue'] = seed(mode=DEVICE, B=2, Sq=5, Skv=3, causal=1,
                                   call=0x18 | 2 << 5 | 4)
    # out [1, 3, 2, 1] with head stride 2, seq stride 3: one-to-one
    # ({0, 2, 4} + {0, 3}) but not nested, so the library's sufficient
    # overlap check may reject it (the documented conservative latitude)
    s['views_out_interleaved'] = seed(mode=DEVICE, Hq=3, Sq=2, Skv=3, D=2,
                                      Dv=1, call=0, tensors=b''.join(
        tensor(t, strides=5, stride_bytes=bytes([0, 2, 3, 1]))
        if t == 4 else tensor(t) for t in range(7)))
    # -- invalid descriptors ----------------------------------------------
    s['bad_causal_enum'] = seed(causal=0xF0)
    s['bad_scale_nan'] = seed(scale=0xE0)
    s['bad_mask_dims'] = seed(mask=1, maskshape=7 << 3)
    s['bad_zero_dim'] = seed(Sq=0)
    s['bad_heads_not_multiple'] = seed(Hq=3, Hkv=2)
    s['bad_overflow_size_max_3'] = seed(B='SIZE_MAX/3', Hq=3, Sq=2)
    s['bad_unsupported_dim'] = seed(Hq=1, Sq=1, Skv='INT32_MAX+1', D=1)
    s['bad_unsupported_bh'] = seed(B=46341, Hq=46341, Sq=1, Skv=1, D=1)
    s['bad_key_lengths'] = seed(mode=HOST | DEVICE | KLENS, B=2, Skv=4,
                                klens=bytes([2, 0xF1]))
    s['bad_scratch_unsupported'] = seed(mode=HOST | DEVICE | SCRATCH,
                                        Skv=17, Hq=1, Sq=1, call=0)
    # host: K needs INT32_MAX * 4 bytes, more than max_alloc_bytes (PoCL:
    # 4 GiB): UNSUPPORTED before staging K; device: K's view is too big
    s['bad_host_array_over_max_alloc'] = seed(Hq=1, Sq=1, Skv='INT32_MAX',
                                              D=1)
    # -- invalid arguments ------------------------------------------------
    s['failed_ctx'] = seed(mode=HOST | DEVICE | NULLS, nulls=2)
    s['null_desc_tensors_q'] = seed(mode=HOST | DEVICE | NULLS, nulls=0x1C)
    # a queue of another cl_context, and a too small out buffer: docs/api.md
    # section 6 lists the queue check after the views, src/sdpa/sdpa.c makes it
    # first
    s['bad_foreign_queue'] = seed(mode=DEVICE, call=0x18 | 3 << 5,
                                  tensors=b''.join(
        tensor(t, size=2 if t == 4 else 0, size_byte=3) for t in range(7)))
    s['bad_path_and_wait_list'] = seed(mode=DEVICE, path=0xF0, call=0x01)
    s['bad_offset_overflow'] = seed(mode=DEVICE, tensors=tensor(0) +
                                    tensor(1, offset=7, offset_byte=3) +
                                    b''.join(tensor(t) for t in range(2, 7)))
    s['bad_buffer_too_small'] = seed(mode=DEVICE, tensors=b''.join(
        tensor(t, size=2 if t == 4 else 0, size_byte=3) for t in range(7)))
    s['bad_foreign_buffer'] = seed(mode=DEVICE, tensors=b''.join(
        tensor(t, foreign=(t == 2)) for t in range(7)))
    s['bad_out_overlaps_itself'] = seed(mode=DEVICE, tensors=b''.join(
        tensor(t, strides=4 if t == 4 else 0) for t in range(7)))
    s['bad_out_aliases_q'] = seed(mode=DEVICE, tensors=b''.join(
        tensor(0 if t == 4 else t) for t in range(7)))
    s['huge_explicit_strides'] = seed(mode=DEVICE, tensors=tensor(
        0, strides=5, stride_bytes=bytes([0xE1, 0xE0, 4, 1])) +
        b''.join(tensor(t) for t in range(1, 7)))
    # -- broadcast (stride-0) inputs with huge logical shapes: the fused
    # CPU path's packed K/V sizes must be checked, never wrapped ----------
    bcast = (tensor(0, strides=5, stride_bytes=strides(0, 0, 0, 1)) +
             tensor(1, strides=5, stride_bytes=strides(0, 0, 0, 1)) +
             tensor(2, strides=5, stride_bytes=strides(0, 0, 0, 0)) +
             tensor(7) +
             tensor(3, strides=5, stride_bytes=strides(9, 0, 1, 0)) +
             tensor(7) + tensor(7))
    # The reported heap overflow: packed K and V each wrapped to 16 KiB.
    # Its out needs 1.2 GB; the harness caps buffers at BUF_CAP, so here
    # the out view is refused (BUFFER_TOO_SMALL); tests/test_sdpa_sizes.c
    # makes the call itself with a real out.
    s['huge_broadcast_reported_overflow'] = seed(
        mode=DEVICE, B=33562625, Hq=1, Sq=9, Skv=2146959361, D=64, Dv=1,
        path=3, call=0x04, tensors=bcast)
    # Reachable with a small out: packed K of 2^31 keys x 256 features
    # (2 TiB) and of 4096 x 2^20 keys x 64 (1 TiB): UNSUPPORTED.
    for path, name in ((3, 'fused_cpu'), (0, 'auto')):
        s[f'huge_broadcast_packed_k_{name}'] = seed(
            mode=DEVICE, B=1, Hq=1, Sq=9, Skv='INT32_MAX', D=256, Dv=1,
            path=path, call=0x04, tensors=bcast)
    # Small tensors, huge packs: 46341 x 5 heads of one key with D = 1
    # pack to 64 keys x 64 features each (a 3.8 GB packed V for a 0.9 MB
    # V): valid, but the harness does not run it (PACK_MAX); fuzzing found
    # it as a 4 GB out-of-memory under ASan.
    s['huge_packs_tiny_head'] = seed(B=46341, Hq=5, Sq=1, Skv=1, D=1)
    s['huge_broadcast_batch'] = seed(
        mode=DEVICE, B=4096, Hq=1, Sq=9, Skv='2^20', D=64, Dv=1, path=3,
        call=0x04, tensors=bcast)
    # -- rotary embeddings (maskshape bit 6): [rope] after [klens] --------
    s['valid_rope_neox_rope_k'] = seed(Sq=5, Skv=7, D=8, causal=1,
                                       maskshape=0x40,
                                       rope=bytes([2, 0, 0, 1]))
    # GPT-J form on 4 of 6 features, theta 2 (SCALE byte 32), positions
    # 97 and the last that fits (2^24 - seq_q), GQA, key lengths
    s['valid_rope_gptj_partial_positions'] = seed(
        mode=HOST | DEVICE | PROBS | KLENS, B=2, Hq=4, Hkv=2, Sq=3, Skv=6,
        D=6, klens=bytes([6, 2]), maskshape=0x40,
        rope=bytes([1, 4, 32, 3, 1, 0xF1]))
    s['valid_rope_queries_only'] = seed(Sq=1, Skv=8, D=4, causal=2,
                                        maskshape=0x40,
                                        rope=bytes([2, 2, 0, 2, 0x20]))
    s['bad_rope_odd_rotary_dim'] = seed(D=4, maskshape=0x40,
                                        rope=bytes([2, 3, 0, 0]))
    s['bad_rope_position_past_limit'] = seed(
        B=1, Sq=4, D=4, maskshape=0x40, rope=bytes([1, 0, 0, 2, 0xF2]))
    s['bad_rope_none_with_rope_k'] = seed(maskshape=0x40,
                                          rope=bytes([0, 0, 0, 1]))
    s['bad_rope_theta_nan'] = seed(maskshape=0x40,
                                   rope=bytes([2, 0, 0xE0, 0]))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print(f'{len(seeds())} seeds written to {out}')


if __name__ == '__main__':
    main()
