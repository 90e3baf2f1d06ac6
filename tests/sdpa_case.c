#include "sdpa_case.h"
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sdpa_inputs_make(sdpa_inputs *in, const clattn_sdpa_desc *d,
                      int want_key_lengths, uint64_t seed)
{
    memset(in, 0, sizeof *in);
    in->desc = *d;
    clattn_sdpa_desc *x = &in->desc;
    size_t hkv = x->heads_kv ? x->heads_kv : x->heads_q;
    size_t dv = x->head_dim_v ? x->head_dim_v : x->head_dim;
    in->n_q = x->batch * x->heads_q * x->seq_q * x->head_dim;
    in->n_k = x->batch * hkv * x->seq_kv * x->head_dim;
    in->n_v = x->batch * hkv * x->seq_kv * dv;
    in->n_out = x->batch * x->heads_q * x->seq_q * dv;
    in->n_probs = x->batch * x->heads_q * x->seq_q * x->seq_kv;
    test_rng r = test_rng_make(seed);
    in->q = malloc(in->n_q * sizeof(float));
    in->k = malloc(in->n_k * sizeof(float));
    in->v = malloc(in->n_v * sizeof(float));
    test_fill(&r, in->q, in->n_q, -2, 2);
    test_fill(&r, in->k, in->n_k, -2, 2);
    test_fill(&r, in->v, in->n_v, -2, 2);
    if (x->mask_type != CLATTN_MASK_NONE) {
        in->n_mask = x->mask_dims[0] * x->mask_dims[1] * x->mask_dims[2] *
                     x->mask_dims[3];
        if (x->mask_type == CLATTN_MASK_BOOL) {
            uint8_t *m = malloc(in->n_mask);
            for (size_t i = 0; i < in->n_mask; ++i)
                m[i] = test_rng_uniform(&r, 0, 1) < 0.8 ? 1 + (i % 7) : 0;
            in->mask = m;
        } else {
            float *m = malloc(in->n_mask * sizeof *m);
            for (size_t i = 0; i < in->n_mask; ++i)
                m[i] = test_rng_uniform(&r, 0, 1) < 0.1
                           ? -INFINITY
                           : (float)test_rng_uniform(&r, -2, 2);
            in->mask = m;
        }
    }
    if (want_key_lengths) {
        in->key_lengths = malloc(x->batch * sizeof(int32_t));
        for (size_t b = 0; b < x->batch; ++b)
            in->key_lengths[b] =
                (int32_t)(b == 0
                              ? x->seq_kv
                              : (size_t)test_rng_uniform(&r, 0, x->seq_kv + 1));
        x->key_lengths = in->key_lengths;
    }
}

void sdpa_inputs_plain(sdpa_inputs *in, size_t batch, size_t heads,
                       size_t seq_q, size_t seq_kv, size_t head_dim,
                       uint64_t seed)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = batch, d.heads_q = heads, d.seq_q = seq_q, d.seq_kv = seq_kv;
    d.head_dim = head_dim;
    sdpa_inputs_make(in, &d, 0, seed);
}

void sdpa_tensors_release(const clattn_sdpa_tensors *t)
{
    const cl_mem all[7] = {t->q.buffer,    t->k.buffer,   t->v.buffer,
                           t->mask.buffer, t->out.buffer, t->probs.buffer,
                           t->lse.buffer};
    for (int i = 0; i < 7; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
}

void sdpa_inputs_free(sdpa_inputs *in)
{
    free(in->q), free(in->k), free(in->v), free(in->mask),
        free(in->key_lengths);
    memset(in, 0, sizeof *in);
}

void sdpa_case_check(clattn_context *ctx, const char *name,
                     const sdpa_inputs *in)
{
    double *want_out = malloc(in->n_out * sizeof *want_out);
    double *want_probs = malloc(in->n_probs * sizeof *want_probs);
    ref_sdpa(&in->desc, in->q, in->k, in->v, in->mask, want_out, want_probs,
             NULL);
    for (int with_probs = 0; with_probs <= 1; ++with_probs) {
        float *out = guarded_alloc(in->n_out);
        float *probs = with_probs ? guarded_alloc(in->n_probs) : NULL;
        clattn_status s = clattn_sdpa_host(ctx, &in->desc, in->q, in->k, in->v,
                                           in->mask, out, probs);
        CHECK(s == CLATTN_SUCCESS, "%s: %s: %s", name, clattn_status_string(s),
              clattn_context_last_error(ctx));
        if (s == CLATTN_SUCCESS) {
            CHECK(compare_close(name, out, want_out, in->n_out, TOL_ATOL,
                                TOL_RTOL) == 0,
                  "%s: output (probs %s)", name, with_probs ? "on" : "off");
            if (probs)
                CHECK(compare_close(name, probs, want_probs, in->n_probs,
                                    TOL_ATOL, TOL_RTOL) == 0,
                      "%s: probabilities", name);
        }
        CHECK(guarded_intact(out, in->n_out), "%s: wrote outside out", name);
        if (probs)
            CHECK(guarded_intact(probs, in->n_probs), "%s: wrote outside probs",
                  name);
        guarded_free(out);
        guarded_free(probs);
    }
    free(want_out);
    free(want_probs);
}
