#include "bench_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void bench_usage(FILE *f)
{
    fprintf(
        f,
        "usage: clattn-bench [quick|full|layers|gpu|smoke] [options]\n"
        "       clattn-bench --op sdpa|gqa|decode [case options] [options]\n"
        "\n"
        "Suites: quick (default; under a minute on PoCL), full (minutes),\n"
        "layers (the MHA and talking-heads layers), gpu (S=4096 forward\n"
        "and long decode: what tools/gpu-check measures), smoke (tiny\n"
        "shapes, seconds; what CTest runs).\n"
        "\n"
        "One case instead of a suite:\n"
        "  --op OP        sdpa, gqa (grouped K/V heads) or decode (KV cache)\n"
        "  --b N --h N --hkv N --d N   batch, query heads, K/V heads, "
        "head dim\n"
        "  --s N          sequence length (queries and keys); or --sq N "
        "--skv N\n"
        "  --causal       top-left causal mask (decode is always "
        "bottom-right)\n"
        "  --kv-dtype T   K and V on the device as fp32 (default), fp16 or\n"
        "                 bf16 (the inputs are rounded to T for the peers "
        "too)\n"
        "  --kv-block N   K and V in a paged cache of N-token blocks "
        "(clattn only;\n"
        "                 the peers read them contiguous)\n"
        "  --probs        the call also returns the attention weights "
        "(layers: MHA's\n"
        "                 head average, talking-heads' attn)\n"
        "\n"
        "Options:\n"
        "  --device SEL   'all' (default) or selectors as CLATTN_DEVICE,\n"
        "                 comma separated: auto, gpu, cpu, accelerator, P:D, "
        "name\n"
        "                 (default: $CLATTN_DEVICE if set, else all)\n"
        "  --path LIST    SDPA paths, comma separated: unfused, fused,\n"
        "                 fused-cpu, fused-gpu, auto (default: unfused,"
        "fused-cpu,fused-gpu)\n"
        "  --target-ms T  repeat each measurement until T ms are measured\n"
        "                 (default 200 quick, 1000 full or one case, 20 "
        "smoke)\n"
        "  --min-reps N   at least N timed repetitions (default 3)\n"
        "  --warmup N     untimed calls first (default 1)\n"
        "  --no-peers     skip the CPU peers (OpenBLAS, the reference)\n"
        "  --peer torch   add PyTorch's attention (CPU) on the same shapes\n"
        "  --python EXE   the Python for --peer torch (default python3)\n"
        "  --ref-max-gflop G  run the double-precision reference only up to "
        "G GFLOP\n"
        "                 per case (default 0.6; it is slow)\n"
        "  --json FILE    write the results as JSON (docs/bench.schema.json)\n"
        "  --csv FILE     write the results as CSV\n"
        "  --plot FILE    GFLOP/s against sequence length as PNG (gnuplot)\n"
        "  --list         print the cases and exit\n"
        "  -h, --help     this text\n");
}

static int fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* A positive decimal integer up to max, nothing else. */
static int parse_count(const char *text, size_t max, size_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v == 0 || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_number(const char *text, double max, double *out)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || !(v > 0.0) || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_paths(const char *list, bench_options *o)
{
    o->npaths = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int path = CLATTN_SDPA_PATH_AUTO;
             path <= CLATTN_SDPA_PATH_FUSED_GPU; ++path) {
            const char *name = clattn_sdpa_path_name((clattn_sdpa_path)path);
            if (strlen(name) == len && strncmp(p, name, len) == 0) {
                for (int i = 0; i < o->npaths; ++i)
                    if (o->paths[i] == (clattn_sdpa_path)path)
                        return -1; /* listed twice */
                o->paths[o->npaths++] = (clattn_sdpa_path)path;
                found = 1;
            }
        }
        if (!found)
            return -1;
        p += len + (p[len] == ',');
    }
    return o->npaths ? 0 : -1;
}

/* Case flags given on the command line; zero = not given. */
typedef struct case_flags {
    int op_given, causal, probs;
    clattn_dtype kv_dtype;
    bench_op op;
    size_t b, h, hkv, s, sq, skv, d, kv_block;
} case_flags;

static size_t pick(size_t given, size_t fallback)
{
    return given ? given : fallback;
}

/* Defaults per op follow the suites: BERT/GPT-2 heads for prefill, a
   Llama-like KV cache for decode. */
static int build_case(const case_flags *f, bench_case *c, char *err, size_t cap)
{
    int decode = f->op == BENCH_OP_DECODE;
    c->op = f->op;
    c->batch = pick(f->b, 1);
    c->heads_q = pick(f->h, decode ? 32 : 8);
    size_t hkv_default = f->op == BENCH_OP_SDPA || bench_op_is_layer(f->op)
                             ? c->heads_q
                         : c->heads_q % 4 == 0 ? c->heads_q / 4
                                               : 1;
    c->heads_kv = pick(f->hkv, hkv_default);
    c->seq_q = pick(f->sq, pick(f->s, decode ? 1 : 1024));
    c->seq_kv = pick(f->skv, pick(f->s, decode ? 4096 : 1024));
    c->head_dim = pick(f->d, decode ? 128 : 64);
    c->causal = decode      ? CLATTN_CAUSAL_BOTTOM_RIGHT
                : f->causal ? CLATTN_CAUSAL_TOP_LEFT
                            : CLATTN_CAUSAL_NONE;
    c->probs = f->probs;
    c->kv_dtype = f->kv_dtype;
    c->kv_block = f->kv_block;
    if (bench_op_is_layer(f->op) && f->kv_block)
        return fail(err, cap, "--kv-block is for the SDPA ops, not --op %s",
                    bench_op_name(f->op));
    if (bench_op_is_layer(f->op) && f->kv_dtype != CLATTN_DTYPE_FP32)
        return fail(err, cap, "--kv-dtype is for the SDPA ops, not --op %s",
                    bench_op_name(f->op));
    if (c->heads_q % c->heads_kv)
        return fail(err, cap, "--hkv %zu does not divide --h %zu", c->heads_kv,
                    c->heads_q);
    if (f->op == BENCH_OP_SDPA && c->heads_kv != c->heads_q)
        return fail(err, cap,
                    "--op sdpa has as many K/V heads as query "
                    "heads; use --op gqa for fewer");
    if (f->op == BENCH_OP_GQA && c->heads_kv == c->heads_q)
        return fail(err, cap, "--op gqa needs --hkv below --h");
    if (bench_op_is_layer(f->op) &&
        (c->heads_kv != c->heads_q || c->seq_q != c->seq_kv || f->causal))
        return fail(err, cap,
                    "--op %s is self-attention: --s only (no --sq/--skv), "
                    "--hkv equal to --h, no --causal",
                    bench_op_name(f->op));
    return 0;
}

static void set_defaults(bench_options *o)
{
    memset(o, 0, sizeof *o);
    const char *env = getenv("CLATTN_DEVICE");
    o->device = env && *env ? env : "all";
    o->paths[0] = CLATTN_SDPA_PATH_UNFUSED;
    o->paths[1] = CLATTN_SDPA_PATH_FUSED_CPU;
    o->paths[2] = CLATTN_SDPA_PATH_FUSED_GPU;
    o->npaths = 3;
    o->method.warmup = 1;
    o->method.min_reps = 3;
    o->method.max_reps = 1000;
    o->peers = 1;
    o->python = "python3";
    o->ref_max_gflop = 0.6;
}

/* Flags that take a size_t value, and where it goes. */
static size_t *size_flag(const char *name, case_flags *f)
{
    static const char *names[] = {"--b",  "--h",   "--hkv", "--s",
                                  "--sq", "--skv", "--d",   "--kv-block"};
    size_t *slots[] = {&f->b,  &f->h,   &f->hkv, &f->s,
                       &f->sq, &f->skv, &f->d,   &f->kv_block};
    for (size_t i = 0; i < sizeof names / sizeof *names; ++i)
        if (strcmp(name, names[i]) == 0)
            return slots[i];
    return NULL;
}

static int parse_option(const char *a, const char *val, bench_options *o,
                        case_flags *f, double *target, char *err, size_t cap)
{
    size_t n;
    size_t *slot = size_flag(a, f);
    if (slot) {
        /* Shapes beyond 2^24 are no benchmark for any device today. */
        if (parse_count(val, (size_t)1 << 24, slot))
            return fail(err, cap, "%s needs a positive integer, got '%s'", a,
                        val ? val : "nothing");
        return 1;
    }
    if (!val)
        return fail(err, cap, "%s needs a value", a);
    if (strcmp(a, "--op") == 0) {
        if (bench_op_parse(val, &f->op))
            return fail(err, cap, "--op: '%s' is not sdpa, gqa or decode", val);
        f->op_given = 1;
    } else if (strcmp(a, "--kv-dtype") == 0) {
        if (strcmp(val, "fp32") == 0)
            f->kv_dtype = CLATTN_DTYPE_FP32;
        else if (strcmp(val, "fp16") == 0)
            f->kv_dtype = CLATTN_DTYPE_FP16;
        else if (strcmp(val, "bf16") == 0)
            f->kv_dtype = CLATTN_DTYPE_BF16;
        else
            return fail(err, cap, "--kv-dtype: '%s' is not fp32, fp16 or bf16",
                        val);
    } else if (strcmp(a, "--device") == 0) {
        if (!*val)
            return fail(err, cap, "--device needs a selector");
        o->device = val;
    } else if (strcmp(a, "--path") == 0) {
        if (parse_paths(val, o))
            return fail(err, cap, "--path: bad list '%s'", val);
    } else if (strcmp(a, "--target-ms") == 0) {
        if (parse_number(val, 1e7, target))
            return fail(err, cap, "--target-ms needs a positive number");
    } else if (strcmp(a, "--ref-max-gflop") == 0) {
        if (parse_number(val, 1e9, &o->ref_max_gflop))
            return fail(err, cap, "--ref-max-gflop needs a positive number");
    } else if (strcmp(a, "--min-reps") == 0 || strcmp(a, "--warmup") == 0) {
        int warm = a[2] == 'w';
        if (warm && strcmp(val, "0") == 0)
            n = 0;
        else if (parse_count(val, 100000, &n))
            return fail(err, cap, "%s needs a positive integer", a);
        *(warm ? &o->method.warmup : &o->method.min_reps) = (int)n;
    } else if (strcmp(a, "--peer") == 0) {
        if (strcmp(val, "torch"))
            return fail(err, cap, "--peer: only 'torch' can be added");
        o->peer_torch = 1;
    } else if (strcmp(a, "--python") == 0) {
        o->python = val;
    } else if (strcmp(a, "--json") == 0) {
        o->json = val;
    } else if (strcmp(a, "--csv") == 0) {
        o->csv = val;
    } else if (strcmp(a, "--plot") == 0) {
        o->plot = val;
    } else {
        return fail(err, cap, "unknown option '%s'", a);
    }
    return 1;
}

static int finish(bench_options *o, const case_flags *f, int shape_given,
                  double target, char *err, size_t cap)
{
    if (o->suite && (f->op_given || shape_given))
        return fail(err, cap,
                    "give a suite or a single case (--op), not "
                    "both");
    if (!o->suite && !f->op_given && !shape_given)
        o->suite = "quick";
    if (!o->suite && build_case(f, &o->one, err, cap))
        return -1;
    double fallback = !o->suite                        ? 1000.0
                      : strcmp(o->suite, "smoke") == 0 ? 20.0
                      : strcmp(o->suite, "full") == 0  ? 1000.0
                                                       : 200.0;
    o->method.target_ms = target > 0.0 ? target : fallback;
    if (o->method.min_reps > o->method.max_reps)
        return fail(err, cap, "--min-reps above %d", o->method.max_reps);
    return 0;
}

int bench_parse_args(int argc, char **argv, bench_options *o, char *err,
                     size_t cap)
{
    set_defaults(o);
    case_flags f = {0};
    f.op = BENCH_OP_SDPA; /* shape flags without --op mean plain SDPA */
    int shape_given = 0;
    double target = 0.0;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            bench_usage(stdout);
            return 1;
        } else if (strcmp(a, "--causal") == 0) {
            f.causal = shape_given = 1;
        } else if (strcmp(a, "--probs") == 0) {
            f.probs = shape_given = 1;
        } else if (strcmp(a, "--no-peers") == 0) {
            o->peers = 0;
        } else if (strcmp(a, "--list") == 0) {
            o->list = 1;
        } else if (a[0] == '-') {
            const char *val = i + 1 < argc ? argv[i + 1] : NULL;
            shape_given |=
                size_flag(a, &f) != NULL || strcmp(a, "--kv-dtype") == 0;
            if (parse_option(a, val, o, &f, &target, err, cap) < 0)
                return -1;
            ++i;
        } else {
            size_t n;
            if (o->suite)
                return fail(err, cap, "unexpected argument '%s'", a);
            if (!bench_suite(a, &n))
                return fail(err, cap, "unknown suite '%s' (quick, full, smoke)",
                            a);
            o->suite = a;
        }
    }
    return finish(o, &f, shape_given, target, err, cap);
}
