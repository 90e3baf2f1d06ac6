#!/usr/bin/env python3
"""Golden files for the talking-heads layer (tests/test_layer_talking_heads.c).

Each case builds timm's TalkingHeadAttn (timm.models.cait), gives it random
float32-representable weights (proj_l and proj_w biases included, which
timm's init leaves random too), runs module.double().eval() on a
float32-representable x, and writes one bundle
tests/golden/layers/th_<case>.bin with x, the state_dict tensors by their
names, the expected out [B][N][C] and attn [B][H][N][N] (the weights after
proj_w, captured at attn_drop, which is the identity in eval mode), all
float32.

Made with timm 1.0.31, torch 2.15.0+cu132 and numpy 2.4.6 (CPU). CI never runs
this; to regenerate:  python3 tests/gen_golden_talking_heads.py

Bundle scalars (int32): C, H, B, N, qkv_bias.
"""
import numpy as np
import torch
from timm.models.cait import TalkingHeadAttn

from golden_bundle import write_bundle

RNG = np.random.default_rng(20240612)

# name: (B, N, C, H, qkv_bias). N not multiples of any tile size.
CASES = {
    "th_n1_h1_b2_bias": (2, 1, 8, 1, True),
    "th_n7_h2_b3": (3, 7, 16, 2, False),
    "th_n13_h3_b2_bias": (2, 13, 24, 3, True),
    "th_n13_h8_b2_bias": (2, 13, 48, 8, True),
    "th_n37_h4_b1": (1, 37, 48, 4, False),
    "th_n37_h3_b2_bias": (2, 37, 36, 3, True),
    "th_n7_h8_b3": (3, 7, 40, 8, False),
}


def f32(shape, lo=-1.0, hi=1.0):
    """Uniform values rounded to float32 (so the stored float32 is exact)."""
    return np.asarray(RNG.uniform(lo, hi, size=shape), dtype=np.float32)


def make_case(name, B, N, C, H, qkv_bias):
    m = TalkingHeadAttn(C, num_heads=H, qkv_bias=qkv_bias)
    state = {}
    with torch.no_grad():
        for key, p in m.state_dict().items():
            # nn.Linear's init range, from the layer's in_features
            fan_in = {"qkv": C, "proj": C, "proj_l": H, "proj_w": H}[
                key.split(".")[0]]
            bound = 1.0 / np.sqrt(fan_in)
            state[key] = f32(tuple(p.shape), -bound, bound)
            p.copy_(torch.from_numpy(state[key]))
    m = m.double().eval()
    x = f32((B, N, C))
    captured = {}
    m.attn_drop.register_forward_hook(
        lambda mod, inp, out: captured.__setitem__("attn", out.detach()))
    with torch.no_grad():
        out = m(torch.from_numpy(x).double())
    tensors = {"C": C, "H": H, "B": B, "N": N, "qkv_bias": int(qkv_bias),
               "x": x}
    for key, value in state.items():
        tensors[key] = value
    tensors["out"] = out.numpy().astype(np.float32)
    tensors["attn"] = captured["attn"].numpy().astype(np.float32)
    path = write_bundle(name + ".bin", tensors)
    print(path, sorted(state))


def main():
    torch.manual_seed(0)
    for name, args in CASES.items():
        make_case(name, *args)


if __name__ == "__main__":
    main()
