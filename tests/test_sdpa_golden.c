/* SDPA against golden files made by PyTorch (tests/gen_golden.py): the
   output, and the probabilities where the file has them, for each case in
   golden/MANIFEST.txt. The C reference is checked against the same files,
   so the oracle of the other suites is pinned to PyTorch too. */
#include "reference.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct golden {
    clattn_sdpa_desc desc;
    int32_t key_lengths[64];
    int has_probs;
    float *q, *k, *v, *out, *probs;
    void *mask;
} golden;

static void *read_array(FILE *f, size_t n, size_t elem)
{
    void *p = malloc(n * elem + 1);
    if (!p || fread(p, elem, n, f) != n) {
        free(p);
        return NULL;
    }
    return p;
}

static int golden_load(const char *path, golden *g)
{
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char magic[8];
    int32_t h[16];
    float scale;
    int ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, "CLATTNG1", 8) == 0 &&
             fread(h, sizeof h[0], 16, f) == 16 &&
             fread(&scale, sizeof scale, 1, f) == 1 && h[0] <= 64;
    if (ok) {
        clattn_sdpa_desc *d = &g->desc;
        clattn_sdpa_desc_init(d);
        d->batch = (size_t)h[0], d->heads_q = (size_t)h[1];
        d->heads_kv = (size_t)h[2], d->seq_q = (size_t)h[3];
        d->seq_kv = (size_t)h[4], d->head_dim = (size_t)h[5];
        d->head_dim_v = (size_t)h[6];
        d->causal = (clattn_causal)h[7];
        d->mask_type = (clattn_mask_type)h[8];
        for (int i = 0; i < 4; ++i)
            d->mask_dims[i] = (size_t)h[9 + i];
        d->scale = scale;
        g->has_probs = h[14];
        size_t B = d->batch, Hq = d->heads_q, Hkv = d->heads_kv;
        size_t nq = B * Hq * d->seq_q * d->head_dim;
        size_t nk = B * Hkv * d->seq_kv * d->head_dim;
        size_t nv = B * Hkv * d->seq_kv * d->head_dim_v;
        size_t nm = d->mask_dims[0] * d->mask_dims[1] * d->mask_dims[2] *
                    d->mask_dims[3];
        ok = (g->q = read_array(f, nq, 4)) && (g->k = read_array(f, nk, 4)) &&
             (g->v = read_array(f, nv, 4));
        if (ok && d->mask_type != CLATTN_MASK_NONE)
            ok = (g->mask = read_array(
                      f, nm, d->mask_type == CLATTN_MASK_BOOL ? 1 : 4)) != NULL;
        if (ok && h[13]) {
            ok = fread(g->key_lengths, 4, B, f) == B;
            d->key_lengths = g->key_lengths;
        }
        ok = ok &&
             (g->out = read_array(f, B * Hq * d->seq_q * d->head_dim_v, 4));
        if (ok && g->has_probs)
            ok = (g->probs = read_array(f, B * Hq * d->seq_q * d->seq_kv, 4)) !=
                 NULL;
        char extra;
        ok = ok && fread(&extra, 1, 1, f) == 0; /* nothing left over */
    }
    fclose(f);
    return ok;
}

static void golden_free(golden *g)
{
    free(g->q), free(g->k), free(g->v), free(g->mask), free(g->out),
        free(g->probs);
}

static double *to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; ++i)
        d[i] = x[i];
    return d;
}

static void run_case(clattn_context *ctx, const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    golden g;
    if (!golden_load(path, &g)) {
        CHECK(0, "%s: cannot read golden file %s", name, path);
        golden_free(&g);
        return;
    }
    const clattn_sdpa_desc *d = &g.desc;
    size_t n_out = d->batch * d->heads_q * d->seq_q * d->head_dim_v;
    size_t n_probs = d->batch * d->heads_q * d->seq_q * d->seq_kv;
    double *want_out = to_double(g.out, n_out);
    double *want_probs = g.has_probs ? to_double(g.probs, n_probs) : NULL;

    /* With and without the probabilities output (the path may differ). */
    for (int with_probs = 0; with_probs <= g.has_probs; ++with_probs) {
        float *out = guarded_alloc(n_out);
        float *probs = with_probs ? guarded_alloc(n_probs) : NULL;
        clattn_status s =
            clattn_sdpa_host(ctx, d, g.q, g.k, g.v, g.mask, out, probs);
        CHECK(s == CLATTN_SUCCESS, "%s: %s: %s", name, clattn_status_string(s),
              clattn_context_last_error(ctx));
        if (s == CLATTN_SUCCESS) {
            CHECK(compare_close(name, out, want_out, n_out, TOL_ATOL,
                                TOL_RTOL) == 0,
                  "%s: output differs from PyTorch (probs %s)", name,
                  with_probs ? "on" : "off");
            if (probs)
                CHECK(compare_close(name, probs, want_probs, n_probs, TOL_ATOL,
                                    TOL_RTOL) == 0,
                      "%s: probabilities differ from PyTorch", name);
        }
        CHECK(guarded_intact(out, n_out), "%s: write outside out", name);
        if (probs)
            CHECK(guarded_intact(probs, n_probs), "%s: write outside probs",
                  name);
        guarded_free(out);
        guarded_free(probs);
    }

    /* The oracle of the other suites agrees with PyTorch. */
    double *ref_out = malloc(n_out * sizeof *ref_out);
    double *ref_probs = malloc(n_probs * sizeof *ref_probs);
    ref_sdpa(d, g.q, g.k, g.v, g.mask, ref_out, ref_probs, NULL);
    float *ref_out_f = malloc(n_out * sizeof *ref_out_f);
    for (size_t i = 0; i < n_out; ++i)
        ref_out_f[i] = (float)ref_out[i];
    CHECK(compare_close("reference", ref_out_f, want_out, n_out, 1e-6, 1e-6) ==
              0,
          "%s: the C reference differs from PyTorch", name);
    free(ref_out_f), free(ref_out), free(ref_probs);
    free(want_out), free(want_probs);
    golden_free(&g);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
        return 2;
    }
    clattn_context *ctx = test_context();
    char path[1024];
    snprintf(path, sizeof path, "%s/MANIFEST.txt", argv[1]);
    FILE *manifest = fopen(path, "r");
    CHECK(manifest != NULL, "cannot open %s", path);
    char line[512];
    int cases = 0;
    while (manifest && fgets(line, sizeof line, manifest)) {
        char name[128];
        if (line[0] == '#' || sscanf(line, "%127s", name) != 1)
            continue;
        run_case(ctx, argv[1], name);
        ++cases;
    }
    if (manifest)
        fclose(manifest);
    CHECK(cases >= 20, "only %d golden cases", cases);
    printf("%d golden cases\n", cases);
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_golden");
}
