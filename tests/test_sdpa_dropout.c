/* Dropout on the probabilities: Philox4x32-10 known answers, bit-exact
   reproducibility for (seed, offset), a different stream for a new offset
   or seed, the exact dropped positions against the host Philox reference,
   the kept fraction within statistical bounds of 1 - p, and kept values
   scaled by 1/(1 - p). */
#include "philox_ref.h"
#include "reference.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Known-answer vectors of Random123's kat_vectors for philox4x32_10. */
static void philox_known_answers(void)
{
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; ++t) {
        uint32_t out[4];
        philox_ref(kat[t], kat[t] + 4, out);
        CHECK(memcmp(out, kat[t] + 6, sizeof out) == 0,
              "philox known answer %d: got %08x %08x %08x %08x", t, out[0],
              out[1], out[2], out[3]);
    }
}

typedef struct run_result {
    float *out, *probs;
} run_result;

static run_result run(clattn_context *ctx, const sdpa_inputs *in,
                      const clattn_sdpa_desc *d)
{
    run_result r = {malloc(in->n_out * sizeof(float)),
                    malloc(in->n_probs * sizeof(float))};
    clattn_status s =
        clattn_sdpa_host(ctx, d, in->q, in->k, in->v, in->mask, r.out, r.probs);
    CHECK(s == CLATTN_SUCCESS, "dropout run: %s: %s", clattn_status_string(s),
          clattn_context_last_error(ctx));
    return r;
}

static void run_free(run_result *r)
{
    free(r->out), free(r->probs);
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void reproducibility(clattn_context *ctx)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 2, d.heads_q = 3, d.seq_q = 61, d.seq_kv = 67, d.head_dim = 16;
    if (test_small())
        d.heads_q = 1, d.seq_q = 19, d.seq_kv = 23;
    d.dropout_p = 0.3f, d.dropout_seed = 0x1234abcd5678ull,
    d.dropout_offset = 7;
    d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 1, 99);

    run_result a = run(ctx, &in, &in.desc), b = run(ctx, &in, &in.desc);
    CHECK(same_bits(a.out, b.out, in.n_out) &&
              same_bits(a.probs, b.probs, in.n_probs),
          "same (seed, offset) must give identical bits");

    clattn_sdpa_desc other = in.desc;
    other.dropout_offset = 8;
    run_result c = run(ctx, &in, &other);
    CHECK(!same_bits(a.probs, c.probs, in.n_probs),
          "a new offset must give a different stream");
    other = in.desc;
    other.dropout_seed ^= 1;
    run_result e = run(ctx, &in, &other);
    CHECK(!same_bits(a.probs, e.probs, in.n_probs),
          "a new seed must give a different stream");

    /* Output and probabilities against the reference, which drops with the
       host Philox: any dropped position that differs is a large error. */
    sdpa_case_check(ctx, "dropout vs host philox", &in);
    run_free(&a), run_free(&b), run_free(&c), run_free(&e);
    sdpa_inputs_free(&in);
}

/* Kept fraction and scaling on an unmasked matrix, where every
   probability is positive before dropout. */
static void statistics(clattn_context *ctx, float p)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 2, d.heads_q = 2, d.seq_q = 256, d.seq_kv = 250, d.head_dim = 8;
    if (test_small())
        d.batch = 1, d.seq_q = 64, d.seq_kv = 60;
    d.dropout_seed = 2024, d.dropout_offset = 1;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 0, 5);
    run_result plain = run(ctx, &in, &in.desc);
    clattn_sdpa_desc dd = in.desc;
    dd.dropout_p = p;
    run_result dropped = run(ctx, &in, &dd);

    size_t kept = 0, scaled_ok = 0, position_ok = 0;
    const double scale = 1.0 / (1.0 - (double)p);
    for (size_t i = 0; i < in.n_probs; ++i) {
        float x = dropped.probs[i];
        int keep_ref =
            dropout_keep_ref(dd.dropout_seed, dd.dropout_offset, i, p);
        position_ok += (x != 0.0f) == keep_ref;
        if (x != 0.0f) {
            ++kept;
            double want = plain.probs[i] * scale;
            scaled_ok += fabs(x - want) <= 1e-6 * fabs(want) + 1e-12;
        }
    }
    double n = (double)in.n_probs, frac = kept / n;
    double sigma = sqrt(p * (1.0 - p) / n);
    CHECK(fabs(frac - (1.0 - p)) <= 5 * sigma,
          "p=%g: kept fraction %.5f, expected %.5f +- %.5f (5 sigma)", p, frac,
          1.0 - p, 5 * sigma);
    CHECK(scaled_ok == kept,
          "p=%g: %zu of %zu kept values not scaled by 1/(1-p)", p,
          kept - scaled_ok, kept);
    CHECK(position_ok == in.n_probs,
          "p=%g: %zu positions differ from the host Philox reference", p,
          in.n_probs - position_ok);
    printf("p=%.2f: kept %.5f of %zu (expected %.5f, sigma %.5f)\n", p, frac,
           in.n_probs, 1.0 - p, sigma);
    run_free(&plain), run_free(&dropped);
    sdpa_inputs_free(&in);
}

/* p so small that its threshold rounds to 0: identical to no dropout. */
static void negligible_p(clattn_context *ctx)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1, d.heads_q = 2, d.seq_q = 9, d.seq_kv = 9, d.head_dim = 4;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 0, 3);
    run_result a = run(ctx, &in, &in.desc);
    clattn_sdpa_desc tiny = in.desc;
    tiny.dropout_p = 1e-9f;
    run_result b = run(ctx, &in, &tiny);
    CHECK(same_bits(a.probs, b.probs, in.n_probs),
          "p below 2^-25 must equal no dropout");
    run_free(&a), run_free(&b);
    sdpa_inputs_free(&in);
}

int main(void)
{
    philox_known_answers();
    clattn_context *ctx = test_context();
    reproducibility(ctx);
    statistics(ctx, 0.1f);
    statistics(ctx, 0.5f);
    statistics(ctx, 0.9f);
    negligible_p(ctx);
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_dropout");
}
