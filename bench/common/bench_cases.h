/* The benchmark cases: one attention problem each, the suites that group
   them, and the work each one does (FLOPs, compulsory bytes). */
#ifndef CLATTN_BENCH_CASES_H
#define CLATTN_BENCH_CASES_H

#include <clattn/clattn.h>

#include <stddef.h>

typedef enum bench_op {
    BENCH_OP_SDPA,   /* heads_kv == heads_q */
    BENCH_OP_GQA,    /* heads_kv divides heads_q, K/V shared by a group */
    BENCH_OP_DECODE, /* a few new queries against a long KV cache */
    /* Whole layers, self-attention on x [batch][seq_q][heads_q*head_dim]
       (seq_kv = seq_q, heads_kv = heads_q): projections included. */
    BENCH_OP_MHA,          /* torch.nn.MultiheadAttention, with biases */
    BENCH_OP_TALKING_HEADS /* timm TalkingHeadAttn, qkv_bias=True */
} bench_op;

/* Nonzero for the layer ops. */
int bench_op_is_layer(bench_op op);

typedef struct bench_case {
    bench_op op;
    size_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim;
    clattn_causal causal;
    /* The call also returns the attention weights: SDPA's probs, MHA's
       head-averaged weights, talking-heads' attn. */
    int probs;
    /* The element type of K and V on the device (fp32 unless
       --kv-dtype; the inputs are rounded to it for every peer too). */
    clattn_dtype kv_dtype;
    /* K and V in a paged cache of blocks of this many tokens (--kv-block;
       0 = contiguous): the blocks scattered over the pool in a fixed
       shuffled order, as a serving engine's pool ends up. */
    size_t kv_block;
} bench_case;

/* "sdpa", "gqa", "decode", "mha", "talking-heads"; bench_op_parse returns
   -1 for other text. */
const char *bench_op_name(bench_op op);
int bench_op_parse(const char *text, bench_op *op);

/* "none", "top-left", "bottom-right". */
const char *bench_causal_name(clattn_causal causal);

/* The suites: "quick" (the README's main job, under a minute on PoCL),
   "full" (longer sequences, larger heads), "layers" (the BERT-like and
   CaiT-like layers of docs/performance.md), "smoke" (tiny, for CTest).
   Returns a static array and its length, or NULL for an unknown name. */
const bench_case *bench_suite(const char *name, size_t *count);

/* A short unique label, e.g. "sdpa-causal b1 h8 s1024 d64" ("-probs"
   after the op when the weights are returned). */
void bench_case_label(const bench_case *c, char *dst, size_t cap);

/* The library's descriptor for the case (no mask, no dropout). */
void bench_case_desc(const bench_case *c, clattn_sdpa_desc *desc);

/* 4*B*Hq*Sq*Skv*D: QK^T and P.V over the whole score matrix, the count
   GFLOP/s is quoted in (as FlashAttention's and PyTorch's benchmarks).
   Layers add their projections, 2*B*S*(3E*E + E*E), and talking-heads its
   two head mixings, 4*B*H*H*S*S. */
double bench_case_flops(const bench_case *c);

/* The same for the (query, key) pairs the causal mask leaves: about half
   for a square causal case; equal to bench_case_flops without a mask. */
double bench_case_flops_effective(const bench_case *c);

/* Compulsory traffic: Q, K, V read once and O written once. For decode
   this is almost all the K/V read, the figure that bounds it. Layers: x
   read, out written and the weights read once. */
double bench_case_bytes(const bench_case *c);

/* Elements of Q, K, V and O. */
size_t bench_case_q_elems(const bench_case *c);
size_t bench_case_kv_elems(const bench_case *c);
size_t bench_case_o_elems(const bench_case *c);

#endif
