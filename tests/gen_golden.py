#!/usr/bin/env python3
# Golden-file generator for clattn's scaled-dot-product attention (SDPA).
#
# Outputs were generated with torch 2.15.0+cu132 (CPU, float64, math backend)
# and numpy 2.4.6. CI never runs this script; it only reads the committed
# files under tests/golden/. To regenerate:  python3 tests/gen_golden.py
#
# Semantics (the contract pinned by these files):
#   O = softmax(Q K^T * scale + bias) V   per batch b and query head h,
#   K/V head = h // (Hq / Hkv)             (GQA, torch enable_gqa / repeat_interleave)
#   bool mask  (uint8, nonzero = attend)  shape [B|1, Hq|1, Sq|1, Skv], broadcast
#   additive mask (float32, may be -inf)  same shape rules, added to scaled scores
#   key lengths (int32 [B])               key j masked when j >= len[b] (len may be 0)
#   causal 1 (top-left)                   key j allowed iff j <= i
#   causal 2 (bottom-right)               key j allowed iff j <= i + (Skv - Sq)
#   All masks combine. A row whose keys are all masked yields zeros in both the
#   output and the probabilities (never NaN). torch >= 2.5 math SDPA does this
#   natively via _safe_softmax; the script checks it, and if a torch version
#   does not, it writes zeros (the contract) and prints a WARNING.
#
# File format (little-endian), tests/golden/<case>.bin:
#   8 bytes  "CLATTNG1"
#   16 x int32: batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v,
#               causal, mask_type, mask_dims[4], has_key_lengths, has_probs, reserved
#   float32 scale (the value actually used)
#   q f32 [B,Hq,Sq,D]; k f32 [B,Hkv,Skv,D]; v f32 [B,Hkv,Skv,Dv];
#   mask (u8 if mask_type==1, f32 if mask_type==2) [prod(mask_dims)];
#   key_lengths i32 [B] if has_key_lengths; out f32 [B,Hq,Sq,Dv];
#   probs f32 [B,Hq,Sq,Skv] if has_probs.
#
# Every case is computed by torch.nn.functional.scaled_dot_product_attention
# (float64, math backend), by an explicit torch softmax (probabilities), and by
# an independent float64 numpy reference; all must agree before a file is written.

import math
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.bias import causal_lower_right

MAGIC = b"CLATTNG1"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "golden")

CAUSAL_NONE, CAUSAL_TOP_LEFT, CAUSAL_BOTTOM_RIGHT = 0, 1, 2
MASK_NONE, MASK_BOOL, MASK_ADDITIVE = 0, 1, 2


# --------------------------------------------------------------------------
# Case definitions
# --------------------------------------------------------------------------

def case(name, desc, B=2, Hq=3, Hkv=None, Sq=13, Skv=13, D=16, Dv=None,
         causal=CAUSAL_NONE, scale=None, mask=None, key_lengths=None,
         has_probs=True):
    """mask: None, or (kind, dims, builder) where kind in {'bool','add'} and
    builder(rng, dims) returns a numpy array of shape dims (uint8 / float32)."""
    return dict(name=name, desc=desc, B=B, Hq=Hq, Hkv=Hq if Hkv is None else Hkv,
                Sq=Sq, Skv=Skv, D=D, Dv=D if Dv is None else Dv, causal=causal,
                scale=scale, mask=mask, key_lengths=key_lengths,
                has_probs=has_probs)


def rand_bool(p_masked):
    def build(rng, dims):
        return (rng.random(dims) >= p_masked).astype(np.uint8)
    return build


def bool_full_with_dead_rows(rng, dims):
    # dims = [B, 1, Sq, Skv]; some query rows fully masked, others random.
    m = (rng.random(dims) >= 0.3).astype(np.uint8)
    m[0, 0, 0, :] = 0      # first row of batch 0
    m[0, 0, 4, :] = 0      # a middle row of batch 0
    m[1, 0, dims[2] - 1, :] = 0  # last row of batch 1
    # a row whose only allowed key is the last one
    m[1, 0, 2, :] = 0
    m[1, 0, 2, dims[3] - 1] = 1
    return m


def additive_with_inf(rng, dims):
    # dims = [1, H, Sq, Skv]; N(0,1)*2 with ~20% -inf, plus one fully -inf row.
    a = (rng.standard_normal(dims) * 2.0).astype(np.float32)
    a[rng.random(dims) < 0.2] = -np.inf
    a[0, 1, 3, :] = -np.inf
    return a


def additive_plain(rng, dims):
    return (rng.standard_normal(dims) * 1.5).astype(np.float32)


def additive_some_inf(rng, dims):
    a = (rng.standard_normal(dims) * 1.5).astype(np.float32)
    a[rng.random(dims) < 0.15] = -np.inf
    return a


CASES = [
    case("plain", "B=2 Hq=Hkv=3 Sq=Skv=13 D=16, no mask, default scale"),
    case("plain_sq_ne_skv", "Sq=7 Skv=19, no mask, no probs stored",
         Sq=7, Skv=19, has_probs=False),
    case("dv_ne_d", "D=12 Dv=20 Sq=9 Skv=11, default scale 1/sqrt(12)",
         Sq=9, Skv=11, D=12, Dv=20),
    case("custom_scale", "explicit scale=0.05, Sq=11 Skv=13",
         Sq=11, Skv=13, scale=0.05),
    case("bool_mask_batch_key", "bool mask [B,1,1,Skv] (key padding style), Sq=9 Skv=15",
         Sq=9, Skv=15, mask=("bool", "B11K", rand_bool(0.35))),
    case("bool_mask_query_key", "bool mask [1,1,Sq,Skv], Sq=9 Skv=15",
         Sq=9, Skv=15, mask=("bool", "11QK", rand_bool(0.35))),
    case("bool_mask_full", "bool mask [B,Hq,Sq,Skv], Sq=9 Skv=15",
         Sq=9, Skv=15, mask=("bool", "BHQK", rand_bool(0.35))),
    case("additive_mask", "additive mask [1,Hq,Sq,Skv] with -inf entries and one all -inf row (h=1,i=3)",
         Sq=9, Skv=15, mask=("add", "1HQK", additive_with_inf)),
    case("additive_mask_broadcast", "additive mask [B,1,1,Skv], finite values",
         Sq=9, Skv=15, mask=("add", "B11K", additive_plain)),
    case("causal_top_left_square", "causal top-left, Sq=Skv=13",
         causal=CAUSAL_TOP_LEFT),
    case("causal_top_left_sq_lt_skv", "causal top-left, Sq=5 Skv=11",
         Sq=5, Skv=11, causal=CAUSAL_TOP_LEFT),
    case("causal_top_left_sq_gt_skv", "causal top-left, Sq=11 Skv=5",
         Sq=11, Skv=5, causal=CAUSAL_TOP_LEFT),
    case("causal_bottom_right_sq_lt_skv", "causal bottom-right, Sq=5 Skv=11",
         Sq=5, Skv=11, causal=CAUSAL_BOTTOM_RIGHT),
    case("causal_bottom_right_sq_gt_skv", "causal bottom-right, Sq=11 Skv=5 (rows 0..5 fully masked -> zeros)",
         Sq=11, Skv=5, causal=CAUSAL_BOTTOM_RIGHT),
    case("gqa", "GQA Hq=6 Hkv=2, Sq=7 Skv=13", Hq=6, Hkv=2, Sq=7, Skv=13),
    case("mqa", "MQA Hq=4 Hkv=1, Sq=7 Skv=13", Hq=4, Hkv=1, Sq=7, Skv=13),
    case("fully_masked_rows", "bool mask [B,1,Sq,Skv] with some all-zero query rows -> zeros",
         Sq=9, Skv=15, mask=("bool", "B1QK", bool_full_with_dead_rows)),
    case("key_padding", "key lengths [13,6,1], B=3 Sq=Skv=13",
         B=3, key_lengths=[13, 6, 1]),
    case("key_padding_zero", "key lengths [7,0,13] (batch 1 fully masked -> zeros), B=3",
         B=3, key_lengths=[7, 0, 13]),
    case("combined", "causal bottom-right + bool mask [B,1,Sq,Skv] + key lengths [13,9] + GQA Hq=4 Hkv=2, Sq=7 Skv=13",
         Hq=4, Hkv=2, Sq=7, Skv=13, causal=CAUSAL_BOTTOM_RIGHT,
         mask=("bool", "B1QK", rand_bool(0.25)), key_lengths=[13, 9]),
    case("combined_additive", "causal top-left + additive mask [B,Hq,1,Skv] with -inf + key lengths [11,4], Sq=9 Skv=11",
         Sq=9, Skv=11, causal=CAUSAL_TOP_LEFT,
         mask=("add", "BH1K", additive_some_inf), key_lengths=[11, 4]),
    case("d1", "D=Dv=1 (scale 1), Sq=7 Skv=9", Sq=7, Skv=9, D=1),
    case("d_odd", "D=3 Dv=5, Sq=7 Skv=9", Sq=7, Skv=9, D=3, Dv=5),
    case("single", "B=Hq=Hkv=Sq=Skv=1, D=5", B=1, Hq=1, Sq=1, Skv=1, D=5),
    # A decode step of a grouped-query model: a work-item's rows span the
    # group's query heads (4 x 3 rows), the keys are split in slices and
    # merged, the mask differs per head and the key lengths per batch.
    case("gqa_decode", "GQA decode Hq=8 Hkv=2, Sq=3 Skv=520, D=8, causal bottom-right + bool mask [B,Hq,Sq,Skv] + key lengths [520,301], no probs stored",
         Hq=8, Hkv=2, Sq=3, Skv=520, D=8, causal=CAUSAL_BOTTOM_RIGHT,
         mask=("bool", "BHQK", rand_bool(0.3)), key_lengths=[520, 301],
         has_probs=False),
]


def mask_dims_for(spec, c):
    m = {"B": c["B"], "H": c["Hq"], "Q": c["Sq"], "K": c["Skv"], "1": 1}
    return [m[ch] for ch in spec]


# --------------------------------------------------------------------------
# Torch computation
# --------------------------------------------------------------------------

def allowed_mask_torch(c, bool_mask, key_lengths):
    """Combined boolean 'allowed' mask from bool mask, key lengths and causal,
    broadcastable to [B,Hq,Sq,Skv]; None if none of those is present."""
    B, Sq, Skv = c["B"], c["Sq"], c["Skv"]
    allowed = None

    def comb(a, b):
        return b if a is None else (a & b)

    if bool_mask is not None:
        allowed = comb(allowed, bool_mask != 0)
    if key_lengths is not None:
        j = torch.arange(Skv)
        kl = (j.view(1, Skv) < key_lengths.view(B, 1)).view(B, 1, 1, Skv)
        allowed = comb(allowed, kl)
    if c["causal"] != CAUSAL_NONE:
        i = torch.arange(Sq).view(Sq, 1)
        j = torch.arange(Skv).view(1, Skv)
        off = 0 if c["causal"] == CAUSAL_TOP_LEFT else (Skv - Sq)
        allowed = comb(allowed, (j <= i + off).view(1, 1, Sq, Skv))
    return allowed


def torch_compute(c, q, k, v, scale, bool_mask, add_mask, key_lengths):
    """Returns (out, probs, native_zero_ok) as float64 tensors."""
    B, Hq, Hkv, Sq, Skv = c["B"], c["Hq"], c["Hkv"], c["Sq"], c["Skv"]
    gqa = Hq != Hkv
    allowed = allowed_mask_torch(c, bool_mask, key_lengths)

    # Float bias with -inf for masked positions (used for probabilities and,
    # when an additive mask is present, as the single SDPA mask).
    bias = torch.zeros(1, 1, 1, 1, dtype=torch.float64)
    if add_mask is not None:
        bias = bias + add_mask
    if allowed is not None:
        bias = bias + torch.where(allowed, 0.0, -math.inf).to(torch.float64)

    only_causal = (bool_mask is None and add_mask is None and key_lengths is None)
    with sdpa_kernel(SDPBackend.MATH):
        if only_causal and c["causal"] == CAUSAL_TOP_LEFT:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                 scale=scale, enable_gqa=gqa)
        elif only_causal and c["causal"] == CAUSAL_BOTTOM_RIGHT and not gqa:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=causal_lower_right(Sq, Skv), scale=scale)
        elif add_mask is not None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                                 scale=scale, enable_gqa=gqa)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                                 scale=scale, enable_gqa=gqa)

        # Cross-check: a single explicit float mask with repeat_interleave'd K/V
        # must give the same result as the path above.
        rep = Hq // Hkv
        kr = k.repeat_interleave(rep, dim=1)
        vr = v.repeat_interleave(rep, dim=1)
        out2 = F.scaled_dot_product_attention(
            q, kr, vr, attn_mask=bias.expand(B, Hq, Sq, Skv).contiguous(),
            scale=scale)
    assert torch.allclose(out, out2, rtol=0, atol=1e-12), \
        f"{c['name']}: SDPA path mismatch {(out - out2).abs().max()}"

    # Explicit probabilities.
    scores = torch.matmul(q, kr.transpose(-1, -2)) * scale + bias
    dead = torch.isneginf(scores).all(dim=-1, keepdim=True)  # fully masked rows
    probs = torch.softmax(scores, dim=-1)
    probs = torch.where(dead, torch.zeros_like(probs), probs)
    assert not torch.isnan(probs).any()

    native_zero_ok = True
    if dead.any():
        dead_out = out.masked_select(dead.expand_as(out))
        native_zero_ok = bool((dead_out == 0).all()) and not torch.isnan(out).any()
        if not native_zero_ok:
            # Contract says zeros; override (and report loudly).
            print(f"WARNING: {c['name']}: torch did not give zeros for fully "
                  f"masked rows; writing zeros", file=sys.stderr)
            out = torch.where(dead, torch.zeros_like(out), out)
    assert not torch.isnan(out).any(), f"{c['name']}: NaN in output"

    pv = torch.matmul(probs, vr)
    err = (pv - out).abs().max().item()
    assert err <= 1e-12, f"{c['name']}: probs@V vs SDPA max err {err}"
    return out, probs, native_zero_ok, int(dead.sum().item())


# --------------------------------------------------------------------------
# Independent numpy reference (float64, explicit loops over b, h, i)
# --------------------------------------------------------------------------

def numpy_reference(c, q, k, v, scale, bool_mask, add_mask, key_lengths):
    B, Hq, Hkv, Sq, Skv, Dv = c["B"], c["Hq"], c["Hkv"], c["Sq"], c["Skv"], c["Dv"]
    group = Hq // Hkv
    out = np.zeros((B, Hq, Sq, Dv), np.float64)
    probs = np.zeros((B, Hq, Sq, Skv), np.float64)

    def bidx(arr, b, h, i):
        # index a [B|1, H|1, Sq|1, Skv] array with broadcasting
        return arr[b if arr.shape[0] > 1 else 0,
                   h if arr.shape[1] > 1 else 0,
                   i if arr.shape[2] > 1 else 0]

    for b in range(B):
        for h in range(Hq):
            hk = h // group
            for i in range(Sq):
                s = np.array([float(np.dot(q[b, h, i], k[b, hk, j])) for j in range(Skv)]) * scale
                ok = np.ones(Skv, bool)
                if bool_mask is not None:
                    ok &= bidx(bool_mask, b, h, i) != 0
                if add_mask is not None:
                    s = s + bidx(add_mask, b, h, i)
                if key_lengths is not None:
                    ok &= np.arange(Skv) < key_lengths[b]
                if c["causal"] == CAUSAL_TOP_LEFT:
                    ok &= np.arange(Skv) <= i
                elif c["causal"] == CAUSAL_BOTTOM_RIGHT:
                    ok &= np.arange(Skv) <= i + (Skv - Sq)
                ok &= np.isfinite(s)  # additive -inf
                if not ok.any():
                    continue  # zeros
                m = s[ok].max()
                e = np.where(ok, np.exp(np.where(ok, s - m, 0.0)), 0.0)
                p = e / e.sum()
                probs[b, h, i] = p
                out[b, h, i] = p @ v[b, hk]
    return out, probs


# --------------------------------------------------------------------------
# Writing / reading back
# --------------------------------------------------------------------------

def write_case(path, c, scale32, q, k, v, mask_type, mask_dims, mask_arr,
               key_lengths, out, probs):
    hdr = [c["B"], c["Hq"], c["Hkv"], c["Sq"], c["Skv"], c["D"], c["Dv"],
           c["causal"], mask_type, *mask_dims,
           1 if key_lengths is not None else 0,
           1 if c["has_probs"] else 0, 0]
    assert len(hdr) == 16
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<16i", *hdr))
        f.write(struct.pack("<f", scale32))
        f.write(q.astype("<f4").tobytes())
        f.write(k.astype("<f4").tobytes())
        f.write(v.astype("<f4").tobytes())
        if mask_type == MASK_BOOL:
            f.write(mask_arr.astype(np.uint8).tobytes())
        elif mask_type == MASK_ADDITIVE:
            f.write(mask_arr.astype("<f4").tobytes())
        if key_lengths is not None:
            f.write(np.asarray(key_lengths, "<i4").tobytes())
        f.write(out.astype("<f4").tobytes())
        if c["has_probs"]:
            f.write(probs.astype("<f4").tobytes())


def read_case(path):
    data = open(path, "rb").read()
    assert data[:8] == MAGIC
    hdr = struct.unpack_from("<16i", data, 8)
    (B, Hq, Hkv, Sq, Skv, D, Dv, causal, mtype, m0, m1, m2, m3,
     has_kl, has_p, reserved) = hdr
    (scale,) = struct.unpack_from("<f", data, 8 + 64)
    off = 8 + 64 + 4
    r = dict(hdr=hdr, scale=scale)

    def take(name, dtype, shape):
        nonlocal off
        n = int(np.prod(shape))
        a = np.frombuffer(data, dtype, n, off).reshape(shape)
        off += n * np.dtype(dtype).itemsize
        r[name] = a

    take("q", "<f4", (B, Hq, Sq, D))
    take("k", "<f4", (B, Hkv, Skv, D))
    take("v", "<f4", (B, Hkv, Skv, Dv))
    if mtype == MASK_BOOL:
        take("mask", "u1", (m0, m1, m2, m3))
    elif mtype == MASK_ADDITIVE:
        take("mask", "<f4", (m0, m1, m2, m3))
    if has_kl:
        take("key_lengths", "<i4", (B,))
    take("out", "<f4", (B, Hq, Sq, Dv))
    if has_p:
        take("probs", "<f4", (B, Hq, Sq, Skv))
    assert off == len(data), f"{path}: trailing bytes {len(data) - off}"
    return r


# --------------------------------------------------------------------------

def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT_DIR, exist_ok=True)
    tver = torch.__version__
    all_native = True
    manifest = [f"# generated by tests/gen_golden.py with torch {tver}"]
    names = set()

    for c in CASES:
        name = c["name"]
        assert name not in names
        names.add(name)
        assert c["Hq"] % c["Hkv"] == 0
        rng = np.random.default_rng(zlib.crc32(name.encode()))

        B, Hq, Hkv, Sq, Skv, D, Dv = (c[x] for x in ("B", "Hq", "Hkv", "Sq", "Skv", "D", "Dv"))
        q32 = rng.standard_normal((B, Hq, Sq, D), dtype=np.float32)
        k32 = rng.standard_normal((B, Hkv, Skv, D), dtype=np.float32)
        v32 = rng.standard_normal((B, Hkv, Skv, Dv), dtype=np.float32)

        scale_req = c["scale"] if c["scale"] is not None else 1.0 / math.sqrt(D)
        scale32 = float(np.float32(scale_req))  # stored value == value used
        scale = scale32

        mask_type, mask_dims, mask_arr = MASK_NONE, [0, 0, 0, 0], None
        bool_np = add_np = None
        if c["mask"] is not None:
            kind, spec, builder = c["mask"]
            mask_dims = mask_dims_for(spec, c)
            mask_arr = builder(rng, tuple(mask_dims))
            if kind == "bool":
                mask_type, bool_np = MASK_BOOL, mask_arr.astype(np.uint8)
            else:
                mask_type, add_np = MASK_ADDITIVE, mask_arr.astype(np.float32)
        kl_np = None
        if c["key_lengths"] is not None:
            kl_np = np.asarray(c["key_lengths"], np.int32)
            assert kl_np.shape == (B,) and (kl_np >= 0).all() and (kl_np <= Skv).all()

        q = torch.from_numpy(q32).to(torch.float64)
        k = torch.from_numpy(k32).to(torch.float64)
        v = torch.from_numpy(v32).to(torch.float64)
        bool_t = torch.from_numpy(bool_np) if bool_np is not None else None
        add_t = torch.from_numpy(add_np).to(torch.float64) if add_np is not None else None
        kl_t = torch.from_numpy(kl_np).long() if kl_np is not None else None

        out, probs, native_ok, n_dead = torch_compute(c, q, k, v, scale, bool_t, add_t, kl_t)
        all_native &= native_ok

        # Default-scale cases: torch's own default (scale=None) must agree with
        # the float32-rounded scale up to rounding of the scale itself.
        if c["scale"] is None and c["mask"] is None and c["key_lengths"] is None \
                and c["causal"] == CAUSAL_NONE:
            with sdpa_kernel(SDPBackend.MATH):
                od = F.scaled_dot_product_attention(q, k, v, enable_gqa=Hq != Hkv)
            assert (od - out).abs().max().item() < 1e-6

        ref_out, ref_probs = numpy_reference(
            c, q.numpy(), k.numpy(), v.numpy(), scale, bool_np,
            add_np.astype(np.float64) if add_np is not None else None, kl_np)
        e1 = np.abs(ref_out - out.numpy()).max()
        e2 = np.abs(ref_probs - probs.numpy()).max()
        assert e1 <= 1e-10 and e2 <= 1e-10, f"{name}: numpy vs torch {e1} {e2}"

        out_np, probs_np = out.numpy(), probs.numpy()
        path = os.path.join(OUT_DIR, name + ".bin")
        write_case(path, c, scale32, q32, k32, v32, mask_type, mask_dims,
                   mask_arr, kl_np, out_np, probs_np)

        # Read back and verify.
        r = read_case(path)
        assert r["scale"] == scale32
        assert np.array_equal(r["q"], q32) and np.array_equal(r["v"], v32)
        assert np.array_equal(r["out"], out_np.astype(np.float32))
        if c["has_probs"]:
            assert np.array_equal(r["probs"], probs_np.astype(np.float32))
        assert np.isfinite(r["out"]).all()

        manifest.append(f"{name} {c['desc']}")
        print(f"{name:32s} {os.path.getsize(path):7d} B  dead_rows={n_dead:3d} "
              f"np_err(out)={e1:.1e} np_err(p)={e2:.1e} native_zero={native_ok}")

    with open(os.path.join(OUT_DIR, "MANIFEST.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    print(f"torch {tver}; fully-masked rows zero natively: {all_native}")


if __name__ == "__main__":
    main()
