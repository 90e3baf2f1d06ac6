/* The suites and the arithmetic of each case. Shapes follow common models:
   head_dim 64 (BERT, GPT-2) and 128 (Llama), 8 query heads sharing 2 K/V
   heads for GQA, and a 32/8-head decode step against a KV cache. */
#include "bench_cases.h"

#include <stdio.h>
#include <string.h>

#define SDPA(s, causal)                                                        \
    {                                                                          \
        BENCH_OP_SDPA, 1, 8, 8, s, s, 64, causal, 0, CLATTN_DTYPE_FP32, 0      \
    }
#define GQA(s, causal)                                                         \
    {                                                                          \
        BENCH_OP_GQA, 1, 8, 2, s, s, 64, causal, 0, CLATTN_DTYPE_FP32, 0       \
    }
#define DECODE(q, kv)                                                          \
    {                                                                          \
        BENCH_OP_DECODE, 1, 32, 8, q, kv, 128, CLATTN_CAUSAL_BOTTOM_RIGHT, 0,  \
            CLATTN_DTYPE_FP32, 0                                               \
    }
/* SDPA returning its probabilities (the weights): docs/performance.md */
/* A decode step over a KV cache held in fp16: half the bytes read. */
#define DECODE_FP16(q, kv)                                                     \
    {                                                                          \
        BENCH_OP_DECODE, 1, 32, 8, q, kv, 128, CLATTN_CAUSAL_BOTTOM_RIGHT, 0,  \
            CLATTN_DTYPE_FP16, 0                                               \
    }
/* The same step reading a paged cache of blocks of bs tokens. */
#define DECODE_PAGED(kv, bs)                                                   \
    {                                                                          \
        BENCH_OP_DECODE, 1, 32, 8, 1, kv, 128, CLATTN_CAUSAL_BOTTOM_RIGHT, 0,  \
            CLATTN_DTYPE_FP32, bs                                              \
    }
#define SDPA_PROBS(s)                                                          \
    {                                                                          \
        BENCH_OP_SDPA, 1, 8, 8, s, s, 64, CLATTN_CAUSAL_NONE, 1,               \
            CLATTN_DTYPE_FP32, 0                                               \
    }
#define NONE CLATTN_CAUSAL_NONE
#define CAUSAL CLATTN_CAUSAL_TOP_LEFT
#define MHA(b, h, s, d)                                                        \
    {                                                                          \
        BENCH_OP_MHA, b, h, h, s, s, d, NONE, 0, CLATTN_DTYPE_FP32, 0          \
    }
#define TALKING(b, h, s, d)                                                    \
    {                                                                          \
        BENCH_OP_TALKING_HEADS, b, h, h, s, s, d, NONE, 0, CLATTN_DTYPE_FP32,  \
            0                                                                  \
    }

/* Sized so that the whole suite, peers and the slow paths included, stays
   well under a minute on two PoCL cores (sequences of 2048 and more are
   the full suite's: the unfused path alone takes seconds per call). */
static const bench_case quick[] = {
    SDPA(256, NONE),        SDPA(512, NONE),    SDPA(1024, NONE),
    SDPA(512, CAUSAL),      SDPA(1024, CAUSAL), GQA(1024, NONE),
    DECODE(1, 2048),        DECODE(1, 8192),    MHA(1, 12, 256, 64),
    TALKING(1, 8, 196, 48), SDPA_PROBS(1024),   DECODE_FP16(1, 8192),
    DECODE_PAGED(8192, 16),
};

static const bench_case full[] = {
    SDPA(256, NONE),
    SDPA(512, NONE),
    SDPA(1024, NONE),
    SDPA(2048, NONE),
    SDPA(4096, NONE),
    SDPA(512, CAUSAL),
    SDPA(1024, CAUSAL),
    SDPA(2048, CAUSAL),
    SDPA(4096, CAUSAL),
    {BENCH_OP_SDPA, 1, 8, 8, 1024, 1024, 128, NONE, 0, CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_SDPA, 1, 8, 8, 2048, 2048, 128, NONE, 0, CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_SDPA, 4, 8, 8, 512, 512, 64, NONE, 0, CLATTN_DTYPE_FP32, 0},
    GQA(1024, NONE),
    GQA(2048, NONE),
    GQA(4096, NONE),
    GQA(2048, CAUSAL),
    DECODE(1, 1024),
    DECODE(1, 4096),
    DECODE(1, 16384),
    DECODE(8, 4096),
    DECODE(8, 16384),
    DECODE_FP16(1, 16384),
    DECODE_PAGED(16384, 16),
    DECODE_PAGED(16384, 64),
    SDPA_PROBS(1024),
    SDPA_PROBS(2048),
};

/* The layers of docs/performance.md: a BERT-base layer (E=768, H=12) at
   S=512, a CaiT-S layer (C=384, H=8) at N=784 (224/8 patches), and
   talking-heads at H=16 for the fused/unfused comparison. */
static const bench_case layers[] = {
    MHA(8, 12, 512, 64),
    {BENCH_OP_MHA, 8, 12, 12, 512, 512, 64, CLATTN_CAUSAL_NONE, 1,
     CLATTN_DTYPE_FP32, 0},
    TALKING(8, 8, 784, 48),
    TALKING(1, 16, 784, 24),
};

/* What a GPU measures first (tools/gpu-check): the fused forward at
   S=4096 for head dims 64 and 128, against the bench's peak kernel, and
   decode against long KV caches, against its copy kernel. */
static const bench_case gpu[] = {
    {BENCH_OP_SDPA, 1, 16, 16, 4096, 4096, 64, NONE, 0, CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_SDPA, 1, 16, 16, 4096, 4096, 128, NONE, 0, CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_SDPA, 1, 16, 16, 4096, 4096, 64, CAUSAL, 0, CLATTN_DTYPE_FP32, 0},
    DECODE(1, 32768),
    DECODE(8, 16384),
    DECODE_FP16(1, 32768),
};

/* Tiny shapes, odd sizes included, one of each op: seconds in CTest. */
static const bench_case smoke[] = {
    MHA(2, 2, 37, 8),
    TALKING(2, 3, 29, 8),
    {BENCH_OP_SDPA, 1, 2, 2, 64, 64, 16, NONE, 0, CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_SDPA, 2, 2, 2, 33, 47, 16, CAUSAL, 0, CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_GQA, 1, 4, 2, 64, 64, 16, NONE, 0, CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_DECODE, 2, 4, 2, 1, 256, 16, CLATTN_CAUSAL_BOTTOM_RIGHT, 0,
     CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_DECODE, 2, 4, 2, 1, 256, 16, CLATTN_CAUSAL_BOTTOM_RIGHT, 0,
     CLATTN_DTYPE_FP16, 0},
    {BENCH_OP_SDPA, 1, 2, 2, 40, 52, 16, CLATTN_CAUSAL_NONE, 1,
     CLATTN_DTYPE_FP32, 0},
    {BENCH_OP_MHA, 2, 2, 2, 37, 37, 8, CLATTN_CAUSAL_NONE, 1, CLATTN_DTYPE_FP32,
     0},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const bench_case *bench_suite(const char *name, size_t *count)
{
    static const struct {
        const char *name;
        const bench_case *cases;
        size_t n;
    } suites[] = {{"quick", quick, COUNT(quick)},
                  {"full", full, COUNT(full)},
                  {"layers", layers, COUNT(layers)},
                  {"gpu", gpu, COUNT(gpu)},
                  {"smoke", smoke, COUNT(smoke)}};
    for (size_t i = 0; i < COUNT(suites); ++i)
        if (strcmp(name, suites[i].name) == 0) {
            *count = suites[i].n;
            return suites[i].cases;
        }
    return NULL;
}

const char *bench_op_name(bench_op op)
{
    switch (op) {
    case BENCH_OP_SDPA: return "sdpa";
    case BENCH_OP_GQA: return "gqa";
    case BENCH_OP_DECODE: return "decode";
    case BENCH_OP_MHA: return "mha";
    case BENCH_OP_TALKING_HEADS: return "talking-heads";
    }
    return "unknown";
}

int bench_op_is_layer(bench_op op)
{
    return op == BENCH_OP_MHA || op == BENCH_OP_TALKING_HEADS;
}

int bench_op_parse(const char *text, bench_op *op)
{
    for (int i = BENCH_OP_SDPA; i <= BENCH_OP_TALKING_HEADS; ++i)
        if (strcmp(text, bench_op_name((bench_op)i)) == 0) {
            *op = (bench_op)i;
            return 0;
        }
    return -1;
}

const char *bench_causal_name(clattn_causal causal)
{
    switch (causal) {
    case CLATTN_CAUSAL_NONE: return "none";
    case CLATTN_CAUSAL_TOP_LEFT: return "top-left";
    case CLATTN_CAUSAL_BOTTOM_RIGHT: return "bottom-right";
    }
    return "unknown";
}

void bench_case_label(const bench_case *c, char *dst, size_t cap)
{
    char heads[48], seq[48];
    if (c->heads_kv == c->heads_q)
        snprintf(heads, sizeof heads, "h%zu", c->heads_q);
    else
        snprintf(heads, sizeof heads, "h%zu/%zu", c->heads_q, c->heads_kv);
    if (c->seq_q == c->seq_kv)
        snprintf(seq, sizeof seq, "s%zu", c->seq_q);
    else
        snprintf(seq, sizeof seq, "q%zu kv%zu", c->seq_q, c->seq_kv);
    /* Decode is always bottom-right causal; only the prefill ops say it. */
    const char *mask = c->op != BENCH_OP_DECODE && c->causal ? "-causal" : "";
    if (bench_op_is_layer(c->op))
        snprintf(dst, cap, "%s%s b%zu %s %s e%zu", bench_op_name(c->op),
                 c->probs ? "-weights" : "", c->batch, heads, seq,
                 c->heads_q * c->head_dim);
    else {
        char paged[32] = "";
        if (c->kv_block)
            snprintf(paged, sizeof paged, " paged-%zu", c->kv_block);
        snprintf(dst, cap, "%s%s%s b%zu %s %s d%zu%s%s%s", bench_op_name(c->op),
                 mask, c->probs ? "-probs" : "", c->batch, heads, seq,
                 c->head_dim, c->kv_dtype ? " kv-" : "",
                 c->kv_dtype ? clattn_dtype_name(c->kv_dtype) : "", paged);
    }
}

void bench_case_desc(const bench_case *c, clattn_sdpa_desc *desc)
{
    clattn_sdpa_desc_init(desc);
    desc->batch = c->batch;
    desc->heads_q = c->heads_q;
    desc->heads_kv = c->heads_kv;
    desc->seq_q = c->seq_q;
    desc->seq_kv = c->seq_kv;
    desc->head_dim = c->head_dim;
    desc->causal = c->causal;
    desc->k_dtype = desc->v_dtype = c->kv_dtype;
}

/* The projections and head mixings of a layer case (0 for SDPA ops). */
static double layer_flops(const bench_case *c)
{
    if (!bench_op_is_layer(c->op))
        return 0.0;
    double e = (double)c->heads_q * (double)c->head_dim,
           rows = (double)c->batch * (double)c->seq_q;
    double flops = 2.0 * rows * 4.0 * e * e;
    if (c->op == BENCH_OP_TALKING_HEADS)
        flops += 4.0 * (double)c->batch * (double)c->heads_q *
                 (double)c->heads_q * (double)c->seq_q * (double)c->seq_kv;
    return flops;
}

double bench_case_flops(const bench_case *c)
{
    return 4.0 * (double)c->batch * (double)c->heads_q * (double)c->seq_q *
               (double)c->seq_kv * (double)c->head_dim +
           layer_flops(c);
}

/* Keys query row i may attend: all, or up to the diagonal (shifted by
   seq_kv - seq_q when aligned bottom-right), clamped to [0, seq_kv]. */
static double allowed_pairs(const bench_case *c)
{
    if (c->causal == CLATTN_CAUSAL_NONE)
        return (double)c->seq_q * (double)c->seq_kv;
    double shift = c->causal == CLATTN_CAUSAL_BOTTOM_RIGHT
                       ? (double)c->seq_kv - (double)c->seq_q
                       : 0.0;
    double pairs = 0.0;
    for (size_t i = 0; i < c->seq_q; ++i) {
        double keys = (double)i + 1.0 + shift;
        pairs += keys < 0.0                 ? 0.0
                 : keys > (double)c->seq_kv ? (double)c->seq_kv
                                            : keys;
    }
    return pairs;
}

double bench_case_flops_effective(const bench_case *c)
{
    return 4.0 * (double)c->batch * (double)c->heads_q * allowed_pairs(c) *
               (double)c->head_dim +
           layer_flops(c);
}

size_t bench_case_q_elems(const bench_case *c)
{
    return c->batch * c->heads_q * c->seq_q * c->head_dim;
}

size_t bench_case_kv_elems(const bench_case *c)
{
    return c->batch * c->heads_kv * c->seq_kv * c->head_dim;
}

size_t bench_case_o_elems(const bench_case *c)
{
    return bench_case_q_elems(c);
}

double bench_case_bytes(const bench_case *c)
{
    if (bench_op_is_layer(c->op)) {
        double e = (double)c->heads_q * (double)c->head_dim;
        return 4.0 *
               (2.0 * (double)c->batch * (double)c->seq_q * e + 4.0 * e * e);
    }
    const double kv_elem = c->kv_dtype == CLATTN_DTYPE_FP32 ? 4.0 : 2.0;
    return 4.0 * (double)bench_case_q_elems(c) * 2.0 +
           kv_elem * (double)bench_case_kv_elems(c) * 2.0;
}
