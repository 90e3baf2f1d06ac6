/* Numerics: huge logits stay finite and correct, up to scores near
   FLT_MAX and scales near FLT_MAX; a NaN in one query row
   stays in that row; fully masked rows give zeros even where V holds inf
   and NaN; the same call twice gives identical bits. */
#include "reference.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clattn_sdpa_desc small_desc(void)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 2, d.heads_q = 2, d.seq_q = 13, d.seq_kv = 17, d.head_dim = 8;
    return d;
}

/* Scores of about +-1e4: softmax must subtract the row max. */
static void huge_logits(clattn_context *ctx)
{
    clattn_sdpa_desc d = small_desc();
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 0, 71);
    for (size_t i = 0; i < in.n_q; ++i)
        in.q[i] *= 1000.0f; /* |q.k| * 8^-0.5 reaches ~1e4 */
    sdpa_case_check(ctx, "logits 1e4", &in);
    for (size_t i = 0; i < in.n_q; ++i)
        in.q[i] = -in.q[i];
    sdpa_case_check(ctx, "logits -1e4", &in);
    sdpa_inputs_free(&in);
}

/* Scores near +-FLT_MAX, on the decode (seq_q <= 8) and row kernels: with
   head_dim 1 and q = 1 the score of key j is k[j] * scale, so it can be
   set directly. Folding log2(e) into the scale made each of these inf on
   the fused paths (NaN or a fully masked row); the double reference is
   finite. 70 keys cross a 64-key block. */
enum { ONE_HUGE_SCORE, ALL_SCORES_HUGE_NEGATIVE, HUGE_SCALE };
static void extreme_scores(clattn_context *ctx, int kind, size_t seq_q)
{
    static const char *names[] = {"one score 3e38", "every score -3e38",
                                  "scale 3e38, scores 3..12"};
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1, d.heads_q = 2, d.seq_q = seq_q, d.seq_kv = 70;
    d.head_dim = 1;
    d.scale = kind == HUGE_SCALE ? 3e38f : 1.0f;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 0, 75 + (uint64_t)kind);
    test_rng rng = test_rng_make(76);
    for (size_t i = 0; i < in.n_q; ++i)
        in.q[i] = 1.0f;
    for (size_t j = 0; j < in.n_k; ++j) {
        if (kind == ONE_HUGE_SCORE)
            in.k[j] = j % d.seq_kv == 37 ? 3e38f : in.k[j];
        else if (kind == ALL_SCORES_HUGE_NEGATIVE)
            in.k[j] = -3e38f;
        else /* k * 3e38 in [3, 12]: k itself is a normal float */
            in.k[j] = (float)test_rng_uniform(&rng, 1e-38, 4e-38);
    }
    char name[96];
    snprintf(name, sizeof name, "%s, seq_q %zu", names[kind], seq_q);
    sdpa_case_check(ctx, name, &in);
    sdpa_inputs_free(&in);
}

static int row_all_nan(const float *x, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (!isnan(x[i]))
            return 0;
    return 1;
}

/* NaN in query row 5 of (batch 1, head 0): that row is NaN in out and
   probs, every other row matches the reference. */
static void nan_stays_in_its_row(clattn_context *ctx)
{
    clattn_sdpa_desc d = small_desc();
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 0, 72);
    const size_t row = (1 * d.heads_q + 0) * d.seq_q + 5;
    in.q[row * d.head_dim + 3] = NAN;
    double *want = malloc(in.n_out * sizeof *want);
    ref_sdpa(&in.desc, in.q, in.k, in.v, NULL, want, NULL, NULL);
    float *out = malloc(in.n_out * sizeof *out);
    float *probs = malloc(in.n_probs * sizeof *probs);
    clattn_status s =
        clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, NULL, out, probs);
    CHECK(s == CLATTN_SUCCESS, "nan row: %s", clattn_status_string(s));
    CHECK(row_all_nan(out + row * d.head_dim, d.head_dim) &&
              row_all_nan(probs + row * d.seq_kv, d.seq_kv),
          "the NaN row is NaN in out and probs");
    size_t bad = 0, rows = in.n_out / d.head_dim;
    for (size_t r = 0; r < rows; ++r)
        if (r != row)
            bad += compare_close("other rows", out + r * d.head_dim,
                                 want + r * d.head_dim, d.head_dim, TOL_ATOL,
                                 TOL_RTOL);
    CHECK(bad == 0, "NaN leaked out of its row into %zu elements", bad);
    free(want), free(out), free(probs);
    sdpa_inputs_free(&in);
}

/* Key lengths of 0 for batch 1, and inf/NaN in V everywhere: batch 1 is
   fully masked and must be zeros; batch 0 sees the non-finite V. */
static void masked_rows_ignore_nonfinite_v(clattn_context *ctx)
{
    clattn_sdpa_desc d = small_desc();
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 0, 73);
    int32_t lengths[2] = {17, 0};
    in.desc.key_lengths = lengths;
    for (size_t i = 0; i < in.n_v; i += 5)
        in.v[i] = (i / 5) % 2 ? INFINITY : NAN;
    float *out = malloc(in.n_out * sizeof *out);
    clattn_status s =
        clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, NULL, out, NULL);
    CHECK(s == CLATTN_SUCCESS, "masked rows: %s", clattn_status_string(s));
    const size_t half = in.n_out / 2;
    size_t nonzero = 0;
    for (size_t i = half; i < in.n_out; ++i)
        nonzero += out[i] != 0.0f;
    CHECK(nonzero == 0, "%zu elements of fully masked rows are not 0", nonzero);
    free(out);
    sdpa_inputs_free(&in);
}

static void deterministic(clattn_context *ctx)
{
    clattn_sdpa_desc d = small_desc();
    d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    d.seq_kv = 1030;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &d, 1, 74);
    float *a = malloc(in.n_out * sizeof *a), *b = malloc(in.n_out * sizeof *b);
    clattn_status s1 =
        clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, NULL, a, NULL);
    clattn_status s2 =
        clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, NULL, b, NULL);
    CHECK(s1 == CLATTN_SUCCESS && s2 == CLATTN_SUCCESS &&
              memcmp(a, b, in.n_out * sizeof *a) == 0,
          "two identical calls give identical bits");
    free(a), free(b);
    sdpa_inputs_free(&in);
}

int main(void)
{
    clattn_context *ctx = test_context();
    huge_logits(ctx);
    for (int kind = ONE_HUGE_SCORE; kind <= HUGE_SCALE; ++kind) {
        extreme_scores(ctx, kind, 3);
        extreme_scores(ctx, kind, 13);
    }
    nan_stays_in_its_row(ctx);
    masked_rows_ignore_nonfinite_v(ctx);
    deterministic(ctx);
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_numerics");
}
