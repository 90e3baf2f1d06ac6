#!/usr/bin/env python3
"""Golden bundles for the additive family of layers: clattn_additive
(BahdanauAttention), clattn_concat (AttnDecoderRNN's attention part) and
clattn_se_gate, written to tests/golden/layers/{additive,concat,se}_*.bin
(format: tests/golden_bundle.h). Read by tests/test_layer_additive.c and
tests/test_layer_concat_gate.c; CI never runs this script.

Made with torch 2.15.0 and numpy 2.4.6 (CPU). Regenerate with
    python3 tests/gen_golden_additive.py
from anywhere; the output is deterministic (fixed seeds).

The modules below are written as the PyTorch seq2seq tutorial
("NLP From Scratch: Translation with a Sequence to Sequence Network and
Attention") writes them, with its sizes made separate parameters, and run
in float64. Inputs and parameters are drawn in float32 and stored as such;
the module sees them widened to float64, so the stored float64 outputs are
the exact answer for the float32 data the C side loads. Tensor names of
the parameters are the modules' state_dict keys.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from golden_bundle import write_bundle

torch.set_default_dtype(torch.float64)


class BahdanauAttention(nn.Module):
    """The tutorial's BahdanauAttention(hidden_size) with Wa: Dq -> A,
    Ua: Dk -> A, Va: A -> 1, optional bias, separate values, any number of
    query rows and a key padding mask (nonzero = ignore)."""

    def __init__(self, query_dim, key_dim, attn_dim, bias=True):
        super().__init__()
        self.Wa = nn.Linear(query_dim, attn_dim, bias=bias)
        self.Ua = nn.Linear(key_dim, attn_dim, bias=bias)
        self.Va = nn.Linear(attn_dim, 1, bias=bias)

    def tutorial_forward(self, query, keys):
        """Verbatim from the tutorial (query [B, 1, H], values = keys)."""
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)
        return context, weights

    def forward(self, query, keys, values=None, key_padding_mask=None):
        # [B, Sq, 1, A] + [B, 1, Skv, A]: the tutorial's sum for every row.
        e = torch.tanh(self.Wa(query).unsqueeze(2) + self.Ua(keys).unsqueeze(1))
        scores = self.Va(e).squeeze(-1)  # [B, Sq, Skv]
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, :].bool(),
                                        float("-inf"))
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys if values is None else values)
        return context, weights


class AttnDecoderAttention(nn.Module):
    """AttnDecoderRNN's attention: attn, softmax, bmm, attn_combine (the
    embedding, dropout, F.relu and GRU around it are not part of it)."""

    def __init__(self, query_dim, key_dim, value_dim, max_length, out_dim):
        super().__init__()
        self.attn = nn.Linear(query_dim + key_dim, max_length)
        self.attn_combine = nn.Linear(query_dim + value_dim, out_dim)

    def tutorial_forward(self, embedded, hidden, encoder_outputs):
        """Verbatim from the tutorial: embedded, hidden [1, 1, H],
        encoder_outputs [L, H]."""
        attn_weights = F.softmax(
            self.attn(torch.cat((embedded[0], hidden[0]), 1)), dim=1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(0),
                                 encoder_outputs.unsqueeze(0))
        output = torch.cat((embedded[0], attn_applied[0]), 1)
        output = self.attn_combine(output).unsqueeze(0)
        return output, attn_weights

    def forward(self, query, key, values):
        """Batched: query [B, Dq], key [B, Dk], values [B, L, Dv]."""
        attn_weights = F.softmax(self.attn(torch.cat((query, key), 1)), dim=1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(1), values).squeeze(1)
        output = self.attn_combine(torch.cat((query, attn_applied), 1))
        return output, attn_weights


class SEGate(nn.Module):
    """Squeeze-excitation over the features of each token."""

    def __init__(self, embed_dim):
        super().__init__()
        self.fc1 = nn.Linear(1, embed_dim)
        self.fc2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        m = x.mean(dim=-1, keepdim=True)
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(m))))
        return x * g


def f32(rng, shape, lo, hi):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def randomize(module, rng, gain=2.0):
    """float32 parameters, larger than torch's init so that tanh, softmax
    and sigmoid are far from their linear / uniform regimes."""
    params = {}
    for name, p in module.named_parameters():
        fan_in = p.shape[1] if p.dim() == 2 else 1
        bound = gain / np.sqrt(fan_in) if name.endswith("weight") else 0.5
        value = f32(rng, tuple(p.shape), -bound, bound)
        with torch.no_grad():
            p.copy_(torch.from_numpy(value.astype(np.float64)))
        params[name] = value
    return params


def t64(a):
    return torch.from_numpy(a.astype(np.float64))


def additive_case(name, seed, batch, sq, skv, dq, dk, a, dv, bias, mask):
    rng = np.random.default_rng(seed)
    m = BahdanauAttention(dq, dk, a, bias)
    params = randomize(m, rng)
    query = f32(rng, (batch, sq, dq), -1.5, 1.5)
    keys = f32(rng, (batch, skv, dk), -1.5, 1.5)
    values = f32(rng, (batch, skv, dv), -1, 1) if dv else None
    kpm = None
    if mask:
        kpm = (rng.uniform(size=(batch, skv)) < 0.3).astype(np.uint8)
        kpm[:, 0] = 0  # every row keeps a key: torch would give NaN
    with torch.no_grad():
        context, weights = m(t64(query), t64(keys),
                             None if values is None else t64(values),
                             None if kpm is None else torch.from_numpy(kpm))
        if sq == 1 and values is None and kpm is None:
            c2, w2 = m.tutorial_forward(t64(query), t64(keys))
            assert torch.allclose(context, c2, rtol=0, atol=1e-14)
            assert torch.allclose(weights, w2, rtol=0, atol=1e-14)
    tensors = {"batch": batch, "seq_q": sq, "seq_kv": skv, "query_dim": dq,
               "key_dim": dk, "attn_dim": a, "value_dim": dv, "bias": bias,
               "query": query, "keys": keys}
    if values is not None:
        tensors["values"] = values
    if kpm is not None:
        tensors["key_padding_mask"] = kpm
    tensors.update(params)
    tensors["context"] = context.numpy()
    tensors["weights"] = weights.numpy()
    print(write_bundle(name, tensors))


def concat_case(name, seed, batch, dq, dk, dv, length, out, tutorial=False):
    rng = np.random.default_rng(seed)
    m = AttnDecoderAttention(dq, dk, dv, length, out)
    params = randomize(m, rng)
    query = f32(rng, (batch, dq), -1.5, 1.5)
    key = f32(rng, (batch, dk), -1.5, 1.5)
    values = f32(rng, (batch, length, dv), -1, 1)
    with torch.no_grad():
        output, weights = m(t64(query), t64(key), t64(values))
        if tutorial:
            o2, w2 = m.tutorial_forward(t64(query)[None], t64(key)[None],
                                        t64(values)[0])
            assert torch.allclose(output, o2[0], rtol=0, atol=1e-14)
            assert torch.allclose(weights, w2, rtol=0, atol=1e-14)
    tensors = {"batch": batch, "query_dim": dq, "key_dim": dk,
               "value_dim": dv, "max_length": length, "out_dim": out,
               "query": query, "key": key, "values": values}
    tensors.update(params)
    tensors["out"] = output.numpy()
    tensors["weights"] = weights.numpy()
    print(write_bundle(name, tensors))


def se_case(name, seed, shape):
    rng = np.random.default_rng(seed)
    e = shape[-1]
    m = SEGate(e)
    params = randomize(m, rng)
    x = f32(rng, shape, -2, 2)
    with torch.no_grad():
        out = m(t64(x))
    tensors = {"tokens": int(np.prod(shape[:-1])), "embed_dim": e, "x": x}
    tensors.update(params)
    tensors["out"] = out.numpy()
    print(write_bundle(name, tensors))


def main():
    # name, seed, B, Sq, Skv, Dq, Dk, A, Dv (0 = values are the keys), bias,
    # key padding mask
    additive_case("additive_sq1_skv7.bin", 1, 2, 1, 7, 6, 10, 12, 0, 1, 0)
    additive_case("additive_sq5_skv37_mask.bin", 2, 2, 5, 37, 9, 11, 16, 13,
                  1, 1)
    additive_case("additive_sq5_skv7_nobias.bin", 3, 3, 5, 7, 8, 5, 6, 3, 0,
                  0)
    additive_case("additive_sq1_skv37_keys_mask_nobias.bin", 4, 2, 1, 37, 7,
                  12, 10, 0, 0, 1)
    # name, seed, B, Dq, Dk, Dv, L, out
    concat_case("concat_l10_b3.bin", 5, 3, 7, 9, 5, 10, 11)
    concat_case("concat_l10_tutorial.bin", 6, 1, 16, 16, 16, 10, 16,
                tutorial=True)
    se_case("se_e24_t13.bin", 7, (13, 24))
    se_case("se_e40_b2_n5.bin", 8, (2, 5, 40))


if __name__ == "__main__":
    main()
