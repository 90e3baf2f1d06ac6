/* SDPA against the double-precision reference over the shapes of the
   foundation issue (S = 1, 7, 61, 267, 1030; D = 1 ... 256; B, H > 1), and
   over every mask, causal alignment and head grouping, alone and combined,
   with sequence lengths that are not multiples of any tile. */
#include "sdpa_case.h"
#include "test_util.h"

#include <stdio.h>

typedef struct shape {
    size_t b, hq, hkv, sq, skv, d, dv;
} shape;

static clattn_sdpa_desc make_desc(shape s)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = s.b, d.heads_q = s.hq, d.heads_kv = s.hkv;
    d.seq_q = s.sq, d.seq_kv = s.skv, d.head_dim = s.d, d.head_dim_v = s.dv;
    return d;
}

static unsigned cases;

static void run(clattn_context *ctx, const clattn_sdpa_desc *d, int key_lengths,
                const char *what)
{
    char name[256];
    snprintf(name, sizeof name,
             "%s B=%zu Hq=%zu Hkv=%zu Sq=%zu Skv=%zu D=%zu Dv=%zu causal=%d "
             "mask=%d[%zu,%zu,%zu,%zu] keylen=%d",
             what, d->batch, d->heads_q, d->heads_kv, d->seq_q, d->seq_kv,
             d->head_dim, d->head_dim_v, (int)d->causal, (int)d->mask_type,
             d->mask_dims[0], d->mask_dims[1], d->mask_dims[2], d->mask_dims[3],
             key_lengths);
    sdpa_inputs in;
    sdpa_inputs_make(&in, d, key_lengths, ++cases);
    sdpa_case_check(ctx, name, &in);
    sdpa_inputs_free(&in);
}

/* Every head dim at every small sequence length. */
static void sweep_shapes(clattn_context *ctx)
{
    static const size_t seqs[] = {1, 7, 61, 267};
    static const size_t dims[] = {1, 3, 16, 64, 80, 128, 256};
    for (size_t i = 0; i < sizeof seqs / sizeof *seqs; ++i)
        for (size_t j = 0; j < sizeof dims / sizeof *dims; ++j) {
            shape s = {2, 3, 3, seqs[i], seqs[i], dims[j], dims[j]};
            clattn_sdpa_desc d = make_desc(s);
            run(ctx, &d, 0, "shape");
        }
    /* The long sequence, at a few head dims. */
    static const size_t long_dims[] = {1, 64, 256};
    for (size_t j = 0; j < 3; ++j) {
        shape s = {2, 2, 2, 1030, 1030, long_dims[j], long_dims[j]};
        clattn_sdpa_desc d = make_desc(s);
        run(ctx, &d, 0, "long");
    }
    shape s = {1, 4, 2, 1030, 1030, 80, 80};
    clattn_sdpa_desc d = make_desc(s);
    d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    run(ctx, &d, 1, "long causal gqa keylen");
}

static void sweep_options(clattn_context *ctx)
{
    /* (65, 65) and (20, 65): a 64-key block that begins exactly at the
       causal limit of its row block's last row (top-left and
       bottom-right), the edge of every path's causal block skipping. */
    static const size_t pairs[][2] = {{7, 61},  {61, 7},  {1, 267}, {267, 61},
                                      {61, 61}, {65, 65}, {20, 65}};
    for (size_t p = 0; p < sizeof pairs / sizeof *pairs; ++p) {
        shape s = {2, 4, 2, pairs[p][0], pairs[p][1], 16, 24};
        for (int causal = 0; causal <= 2; ++causal) {
            clattn_sdpa_desc d = make_desc(s);
            d.causal = (clattn_causal)causal;
            run(ctx, &d, 0, "causal");
            run(ctx, &d, 1, "causal+keylen");

            /* Every broadcast shape of both mask kinds. */
            for (int mt = 1; mt <= 2; ++mt)
                for (int bits = 0; bits < 8; ++bits) {
                    d.mask_type = (clattn_mask_type)mt;
                    d.mask_dims[0] = bits & 1 ? s.b : 1;
                    d.mask_dims[1] = bits & 2 ? s.hq : 1;
                    d.mask_dims[2] = bits & 4 ? s.sq : 1;
                    d.mask_dims[3] = s.skv;
                    run(ctx, &d, bits == 5, "mask");
                }
        }
    }
    /* Head grouping: MHA, GQA, MQA; and an explicit scale. */
    static const size_t hkv[] = {8, 4, 2, 1};
    for (size_t i = 0; i < 4; ++i) {
        shape s = {3, 8, hkv[i], 13, 29, 32, 8};
        clattn_sdpa_desc d = make_desc(s);
        run(ctx, &d, 0, "heads");
        d.scale = 0.37f;
        d.causal = CLATTN_CAUSAL_TOP_LEFT;
        run(ctx, &d, 1, "heads+scale");
    }
    /* Implicit defaults: heads_kv = 0 and head_dim_v = 0. */
    shape s = {2, 2, 0, 9, 11, 5, 0};
    clattn_sdpa_desc d = make_desc(s);
    run(ctx, &d, 0, "defaults");
}

int main(void)
{
    clattn_context *ctx = test_context();
    sweep_shapes(ctx);
    sweep_options(ctx);
    printf("%u cases, each with and without probabilities\n", cases);
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_reference");
}
