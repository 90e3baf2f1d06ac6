#!/usr/bin/env python3
"""Golden files for the multi-head attention layer (tests/test_layer_mha.c).

Each case builds a torch.nn.MultiheadAttention (or, for the pre-LayerNorm
and single-head seed cases, the same computation composed from torch ops),
runs it in eval mode in float64 on float32-representable inputs and
weights, and writes one bundle tests/golden/layers/mha_<case>.bin with the
inputs, the state_dict weights, the masks and the expected output and
attention weights (float32).

Made with torch 2.15.0+cu132 and numpy 2.4.6 (CPU). CI never runs this;
to regenerate:  python3 tests/gen_golden_mha.py   (writes every mha_*.bin)

Bundle scalars (int32): E, H, kdim, vdim, bias, batch_first, B, Sq, Skv,
pre_ln, no_out_proj, packed (in_proj_weight stored, else q/k/v_proj_weight),
inputs (1 = query is key is value, 2 = key is value, 3 = all distinct),
kpm, attn_mask_type (0 none, 1 bool, 2 additive), per_head, is_causal,
has_per_head (weights_per_head stored). Tensors: query [, key, value]
in the case's layout, the weights by their state_dict names, masks in
torch MHA polarity (bool: nonzero = not allowed; kpm: nonzero = ignore),
out, weights_avg [B][Sq][Skv] and optionally weights_per_head.
"""
import numpy as np
import torch

from golden_bundle import write_bundle

torch.manual_seed(0)
RNG = np.random.default_rng(20240611)


def f32(x):
    """Rounded to float32 and back, so the stored float32 is exact."""
    return torch.as_tensor(np.asarray(x, dtype=np.float32), dtype=torch.float64)


def uniform(shape, lo=-1.0, hi=1.0):
    return f32(RNG.uniform(lo, hi, size=shape))


def np32(t):
    return t.detach().numpy().astype(np.float32)


def layout(x_bse, batch_first):
    """[B][S][F] -> the case's layout."""
    return x_bse if batch_first else x_bse.transpose(0, 1).contiguous()


def some_rows_masked(shape, p, keep_axis=-1):
    """Random bool (True = masked) where no row along keep_axis is all
    masked (fully masked rows are NaN in torch; the C reference covers
    them)."""
    m = RNG.uniform(size=shape) < p
    idx = RNG.integers(0, shape[keep_axis], size=m.shape[:-1])
    np.put_along_axis(m, idx[..., None], False, axis=-1)
    return m


def make_mha(E, H, kdim, vdim, bias, batch_first):
    m = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim,
                                    batch_first=batch_first,
                                    dtype=torch.float64)
    with torch.no_grad():
        for name, p in m.named_parameters():
            scale = 0.5 if "bias" in name else 1.0 / np.sqrt(p.shape[-1])
            p.copy_(uniform(tuple(p.shape), -scale, scale))
    return m.eval()


def case(name, E=16, H=4, kdim=None, vdim=None, bias=True, batch_first=True,
         B=2, Sq=13, Skv=None, inputs=1, kpm=False, attn=0, per_head=False,
         causal=False, pre_ln=False, per_head_weights=False):
    Skv = Sq if Skv is None else Skv
    kd, vd = kdim or E, vdim or E
    m = make_mha(E, H, kdim, vdim, bias, batch_first)
    q = uniform((B, Sq, E))
    k = q if inputs == 1 else uniform((B, Skv, kd))
    v = k if inputs in (1, 2) else uniform((B, Skv, vd))

    kpm_np = some_rows_masked((B, Skv), 0.3) if kpm else None
    mask_shape = (B * H, Sq, Skv) if per_head else (Sq, Skv)
    attn_np = None
    if attn == 1:
        attn_np = some_rows_masked(mask_shape, 0.35)
    elif attn == 2:
        attn_np = RNG.uniform(-2.0, 2.0, size=mask_shape).astype(np.float32)
        attn_np[some_rows_masked(mask_shape, 0.15)] = -np.inf
    if causal:
        tri = np.triu(np.ones((Sq, Skv), dtype=bool), 1)
        attn_np = tri if attn_np is None else attn_np
    torch_kpm = None if kpm_np is None else torch.from_numpy(kpm_np)
    torch_attn = None
    if attn_np is not None:
        torch_attn = torch.from_numpy(attn_np)
        if attn_np.dtype != bool:
            torch_attn = torch_attn.double()

    norm = None
    qi, ki, vi = q, k, v
    if pre_ln:
        norm = torch.nn.LayerNorm(E, dtype=torch.float64)
        with torch.no_grad():
            norm.weight.copy_(uniform((E,), 0.5, 1.5))
            norm.bias.copy_(uniform((E,), -0.5, 0.5))
        qi = norm(q)
        ki = qi if inputs == 1 else norm(k)
        vi = ki if inputs in (1, 2) else norm(v)

    def run(average):
        return m(layout(qi, batch_first), layout(ki, batch_first),
                 layout(vi, batch_first), key_padding_mask=torch_kpm,
                 need_weights=True, attn_mask=torch_attn,
                 average_attn_weights=average, is_causal=causal)

    out, w_avg = run(True)
    _, w_heads = run(False)
    assert torch.isfinite(out).all() and torch.isfinite(w_avg).all()

    sd = m.state_dict()
    packed = "in_proj_weight" in sd
    t = {"E": E, "H": H, "kdim": kd, "vdim": vd, "bias": int(bias),
         "batch_first": int(batch_first), "B": B, "Sq": Sq, "Skv": Skv,
         "pre_ln": int(pre_ln), "no_out_proj": 0, "packed": int(packed),
         "inputs": inputs, "kpm": int(kpm),
         "attn_mask_type": attn, "per_head": int(per_head),
         "is_causal": int(causal), "has_per_head": int(per_head_weights)}
    # is_causal stands for torch's explicit causal mask: no attn_mask here.
    assert not (causal and attn)
    t["query"] = np32(layout(q, batch_first))
    if inputs != 1:
        t["key"] = np32(layout(k, batch_first))
    if inputs == 3:
        t["value"] = np32(layout(v, batch_first))
    for key, value in sd.items():
        t[key.replace("out_proj.", "out_proj_")] = np32(value)
    if norm is not None:
        t["norm_weight"] = np32(norm.weight)
        t["norm_bias"] = np32(norm.bias)
    if kpm_np is not None:
        t["key_padding_mask"] = kpm_np.astype(np.uint8)
    if attn:
        t["attn_mask"] = (attn_np.astype(np.uint8) if attn == 1 else
                          attn_np.astype(np.float32))
    t["out"] = np32(out)
    t["weights_avg"] = np32(w_avg)
    if per_head_weights:
        t["weights_per_head"] = np32(w_heads)
    path = write_bundle("mha_%s.bin" % name, t)
    print(path)


def seed_single_head(name, E=12, B=2, S=13):
    """The seed SelfAttention: softmax(Q K^T / sqrt(E)) V with three bias-free
    Linear layers, one head, no output projection, batch_first."""
    x = uniform((B, S, E))
    wq, wk, wv = (uniform((E, E), -0.3, 0.3) for _ in range(3))
    Q, K, V = x @ wq.T, x @ wk.T, x @ wv.T
    P = torch.softmax(Q @ K.transpose(1, 2) / np.sqrt(E), dim=-1)
    out = P @ V
    t = {"E": E, "H": 1, "kdim": E, "vdim": E, "bias": 0, "batch_first": 1,
         "B": B, "Sq": S, "Skv": S, "pre_ln": 0, "no_out_proj": 1,
         "packed": 0, "inputs": 1, "kpm": 0, "attn_mask_type": 0,
         "per_head": 0, "is_causal": 0, "has_per_head": 1,
         "query": np32(x), "q_proj_weight": np32(wq),
         "k_proj_weight": np32(wk), "v_proj_weight": np32(wv),
         "out": np32(out), "weights_avg": np32(P),
         "weights_per_head": np32(P[:, None])}
    print(write_bundle("mha_%s.bin" % name, t))


def main():
    torch.set_grad_enabled(True)  # keeps torch off its fused fast path
    case("self_bf", E=16, H=4, B=2, Sq=13, per_head_weights=True)
    case("self_sf", E=24, H=3, B=3, Sq=13, batch_first=False,
         per_head_weights=True)
    case("self_nobias", E=16, H=2, B=2, Sq=11, bias=False)
    case("cross_kvdims_kpm", E=16, H=4, kdim=10, vdim=7, B=2, Sq=5, Skv=37,
         inputs=3, batch_first=False, kpm=True)
    case("cross_same_kv", E=16, H=2, B=2, Sq=7, Skv=19, inputs=2)
    case("cross_distinct", E=16, H=4, B=2, Sq=9, Skv=13, inputs=3,
         per_head_weights=True)
    case("kpm", E=16, H=4, B=3, Sq=13, kpm=True)
    case("bool2d", E=16, H=2, B=2, Sq=13, attn=1)
    case("bool3d", E=16, H=2, B=2, Sq=13, attn=1, per_head=True,
         per_head_weights=True)
    case("add2d", E=16, H=4, B=2, Sq=13, attn=2, batch_first=False)
    case("add3d_kpm", E=16, H=2, B=2, Sq=13, attn=2, per_head=True, kpm=True)
    case("bool2d_kpm_cross", E=16, H=4, B=2, Sq=6, Skv=13, inputs=3, attn=1,
         kpm=True, batch_first=False)
    case("causal", E=16, H=4, B=2, Sq=13, causal=True)
    case("causal_kpm", E=16, H=2, B=2, Sq=11, causal=True, kpm=True,
         batch_first=False)
    case("pre_ln_self", E=16, H=4, B=2, Sq=13, pre_ln=True)
    case("pre_ln_cross", E=16, H=2, B=2, Sq=6, Skv=13, inputs=3, pre_ln=True,
         batch_first=False)
    case("long_seq", E=32, H=4, B=1, Sq=37, kpm=True, batch_first=False)
    seed_single_head("seed_single_head")


if __name__ == "__main__":
    main()
