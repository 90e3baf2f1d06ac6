/* The struct_size rule of the growable structs (clattn.h, api.md 3.8) on
   every struct, and the version string:
   - struct_size 0 (a zeroed struct without _init) and sizeof are the
     current layout;
   - larger with a zero tail (a newer header's fields left unset) is
     accepted; a set byte in the tail is INVALID_ARGUMENT naming the
     struct, with nothing created or written;
   - below the oldest layout is INVALID_ARGUMENT;
   - clattn_info is filled no further than the caller's size.
   The older-binary side (a struct that ends before a field, read no
   further) is test_abi_growth_old.c's. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clattn_context *g_ctx;

/* A struct followed by FUTURE bytes a newer header would add. */
enum { FUTURE = 8 };

static void *with_tail(const void *s, size_t size, int tail_set)
{
    unsigned char *b = calloc(1, size + FUTURE);
    memcpy(b, s, size);
    size_t grown = size + FUTURE;
    memcpy(b, &grown, sizeof grown);
    if (tail_set)
        b[size + FUTURE - 1] = 1;
    return b;
}

static int text_has(const char *what)
{
    return strstr(clattn_context_last_error(g_ctx), what) != NULL;
}

static void version(void)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", CLATTN_VERSION_MAJOR,
             CLATTN_VERSION_MINOR, CLATTN_VERSION_PATCH);
    const char *got = clattn_version_string();
    CHECK(got && strcmp(got, want) == 0, "version string '%s', macros '%s'",
          got ? got : "(null)", want);
    CHECK(strcmp(got, CLATTN_PROJECT_VERSION) == 0,
          "version string '%s', CMake project version '%s'", got,
          CLATTN_PROJECT_VERSION);
    CHECK(clattn_version_number() == CLATTN_VERSION_NUMBER,
          "version number %u, macro %d", clattn_version_number(),
          CLATTN_VERSION_NUMBER);
}

static void inits_set_size(void)
{
    clattn_context_options o;
    clattn_sdpa_desc s;
    clattn_mha_desc m;
    clattn_talking_heads_desc t;
    clattn_additive_desc a;
    clattn_concat_desc c;
    clattn_info i;
    memset(&i, 0xA5, sizeof i);
    clattn_context_options_init(&o);
    clattn_sdpa_desc_init(&s);
    clattn_mha_desc_init(&m);
    clattn_talking_heads_desc_init(&t);
    clattn_additive_desc_init(&a);
    clattn_concat_desc_init(&c);
    clattn_info_init(&i);
    CHECK(o.struct_size == sizeof o && s.struct_size == sizeof s &&
              m.struct_size == sizeof m && t.struct_size == sizeof t &&
              a.struct_size == sizeof a && c.struct_size == sizeof c &&
              i.struct_size == sizeof i && i.device_name[0] == '\0',
          "every _init sets struct_size to sizeof (and zeroes)");
}

/* A small valid SDPA call through the host entry point; returns its
   status, out filled. desc is passed as given (any layout). */
enum { B = 1, H = 2, S = 5, D = 4 };
static float g_q[B * H * S * D], g_k[B * H * S * D], g_v[B * H * S * D];

static void sdpa_desc_fill(clattn_sdpa_desc *d)
{
    clattn_sdpa_desc_init(d);
    d->batch = B, d->heads_q = H, d->seq_q = d->seq_kv = S, d->head_dim = D;
    d->causal = CLATTN_CAUSAL_TOP_LEFT;
}

static void sdpa_desc_rule(void)
{
    clattn_sdpa_desc d;
    sdpa_desc_fill(&d);
    float *want = guarded_alloc(B * H * S * D);
    CHECK(clattn_sdpa_host(g_ctx, &d, g_q, g_k, g_v, NULL, want, NULL) == 0,
          "sdpa, struct_size = sizeof: %s", clattn_context_last_error(g_ctx));

    float *out = guarded_alloc(B * H * S * D);
    d.struct_size = 0;
    CHECK(clattn_sdpa_host(g_ctx, &d, g_q, g_k, g_v, NULL, out, NULL) == 0 &&
              memcmp(out, want, sizeof(float) * B * H * S * D) == 0,
          "sdpa, struct_size 0: the same result");
    guarded_free(out);

    d.struct_size = sizeof d;
    void *zero_tail = with_tail(&d, sizeof d, 0);
    out = guarded_alloc(B * H * S * D);
    CHECK(clattn_sdpa_host(g_ctx, zero_tail, g_q, g_k, g_v, NULL, out, NULL) ==
                  0 &&
              memcmp(out, want, sizeof(float) * B * H * S * D) == 0,
          "sdpa, struct_size + %d with a zero tail: accepted, same result (%s)",
          FUTURE, clattn_context_last_error(g_ctx));
    guarded_free(out);
    free(zero_tail);

    void *set_tail = with_tail(&d, sizeof d, 1);
    out = guarded_alloc(B * H * S * D);
    clattn_status s =
        clattn_sdpa_host(g_ctx, set_tail, g_q, g_k, g_v, NULL, out, NULL);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && text_has("clattn_sdpa_desc") &&
              guarded_untouched(out, B * H * S * D),
          "sdpa, a set byte past this library's fields: %s, '%s', outputs "
          "untouched %d",
          clattn_status_string(s), clattn_context_last_error(g_ctx),
          guarded_untouched(out, B * H * S * D));
    guarded_free(out);
    free(set_tail);

    out = guarded_alloc(B * H * S * D);
    d.struct_size = sizeof(size_t) + 1; /* below the oldest layout */
    s = clattn_sdpa_host(g_ctx, &d, g_q, g_k, g_v, NULL, out, NULL);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && text_has("clattn_sdpa_desc") &&
              text_has("oldest") && guarded_untouched(out, B * H * S * D),
          "sdpa, struct_size below the oldest layout: %s, '%s'",
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    guarded_free(out);
    guarded_free(want);
}

/* Options: a refused struct_size gives a failed context (*out set) whose
   text names the struct. */
static void options_rule(void)
{
    clattn_context_options o;
    clattn_context_options_init(&o);
    o.device = getenv("CLATTN_DEVICE");
    void *zero_tail = with_tail(&o, sizeof o, 0);
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(zero_tail, &ctx);
    CHECK(s == CLATTN_SUCCESS, "options + %d zero bytes: %s (%s)", FUTURE,
          clattn_status_string(s), clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);
    free(zero_tail);

    void *set_tail = with_tail(&o, sizeof o, 1);
    ctx = NULL;
    s = clattn_context_create(set_tail, &ctx);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && ctx != NULL &&
              strstr(clattn_context_last_error(ctx),
                     "clattn_context_options") != NULL,
          "options with a set tail byte: %s, '%s'", clattn_status_string(s),
          clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);
    free(set_tail);

    o.struct_size = 4;
    ctx = NULL;
    s = clattn_context_create(&o, &ctx);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && ctx != NULL &&
              strstr(clattn_context_last_error(ctx),
                     "clattn_context_options") != NULL,
          "options, struct_size 4: %s, '%s'", clattn_status_string(s),
          clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);

    clattn_context_options zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    zeroed.device = getenv("CLATTN_DEVICE");
    ctx = NULL;
    s = clattn_context_create(&zeroed, &ctx);
    CHECK(s == CLATTN_SUCCESS, "memset options (struct_size 0): %s",
          clattn_status_string(s));
    clattn_context_destroy(ctx);
}

/* A layer create with a desc grown past this library's: accepted with a
   zero tail, refused (no layer, the struct named) with a set one. The
   weights are all NULL, so the accepted desc fails later, on its weights:
   that tells the two apart without uploading anything. */
#define LAYER_RULE(T, W, L, init, create, fill)                                \
    do {                                                                       \
        T d;                                                                   \
        init(&d);                                                              \
        fill;                                                                  \
        W w;                                                                   \
        memset(&w, 0, sizeof w);                                               \
        T *zt = with_tail(&d, sizeof d, 0), *st = with_tail(&d, sizeof d, 1);  \
        L *layer = NULL;                                                       \
        clattn_status s = create(g_ctx, zt, &w, &layer);                       \
        CHECK(s != CLATTN_SUCCESS && layer == NULL && !text_has(#T),           \
              #T " + %d zero bytes: refused for the struct (%s, '%s')",        \
              FUTURE, clattn_status_string(s),                                 \
              clattn_context_last_error(g_ctx));                               \
        s = create(g_ctx, st, &w, &layer);                                     \
        CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && layer == NULL &&           \
                  text_has(#T),                                                \
              #T " with a set tail byte: %s, '%s'", clattn_status_string(s),   \
              clattn_context_last_error(g_ctx));                               \
        d.struct_size = 3;                                                     \
        s = create(g_ctx, &d, &w, &layer);                                     \
        CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && layer == NULL &&           \
                  text_has(#T),                                                \
              #T ", struct_size 3: %s, '%s'", clattn_status_string(s),         \
              clattn_context_last_error(g_ctx));                               \
        free(zt);                                                              \
        free(st);                                                              \
    } while (0)

static void layer_descs_rule(void)
{
    LAYER_RULE(clattn_mha_desc, clattn_mha_weights, clattn_mha,
               clattn_mha_desc_init, clattn_mha_create,
               (d.embed_dim = 8, d.num_heads = 2));
    LAYER_RULE(clattn_talking_heads_desc, clattn_talking_heads_weights,
               clattn_talking_heads, clattn_talking_heads_desc_init,
               clattn_talking_heads_create, (d.dim = 8, d.num_heads = 2));
    LAYER_RULE(clattn_additive_desc, clattn_additive_weights, clattn_additive,
               clattn_additive_desc_init, clattn_additive_create,
               (d.query_dim = d.key_dim = d.attn_dim = 4));
    LAYER_RULE(
        clattn_concat_desc, clattn_concat_weights, clattn_concat,
        clattn_concat_desc_init, clattn_concat_create,
        (d.query_dim = d.key_dim = d.value_dim = d.max_length = d.out_dim = 4));
}

/* clattn_info: filled no further than the caller's size, the bytes past
   this library's fields zeroed; a size below the first layout writes
   nothing. */
static void info_rule(void)
{
    size_t full = sizeof(clattn_info);
    unsigned char *b = malloc(full + FUTURE);
    memset(b, 0xA5, full + FUTURE);
    clattn_status s =
        clattn_context_info_sized(g_ctx, (clattn_info *)b, full + FUTURE);
    clattn_info got;
    memcpy(&got, b, sizeof got);
    int tail_zero = 1;
    for (size_t i = full; i < full + FUTURE; ++i)
        tail_zero &= b[i] == 0;
    CHECK(s == CLATTN_SUCCESS && got.struct_size == full && tail_zero &&
              got.device_name[0] != '\0',
          "info, a caller's size + %d: %s, struct_size %zu (want %zu), tail "
          "zeroed %d",
          FUTURE, clattn_status_string(s), got.struct_size, full, tail_zero);

    memset(b, 0xA5, full + FUTURE);
    s = clattn_context_info_sized(g_ctx, (clattn_info *)b, full - 1);
    int untouched = 1;
    for (size_t i = 0; i < full + FUTURE; ++i)
        untouched &= b[i] == 0xA5;
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && untouched,
          "info below the first layout: %s, untouched %d",
          clattn_status_string(s), untouched);
    free(b);

    /* The macro and the exported function (first layout) agree. */
    clattn_status (*fn)(const clattn_context *, clattn_info *) =
        clattn_context_info;
    clattn_info by_macro, by_symbol;
    memset(&by_symbol, 0, sizeof by_symbol);
    CHECK(clattn_context_info(g_ctx, &by_macro) == CLATTN_SUCCESS &&
              fn(g_ctx, &by_symbol) == CLATTN_SUCCESS &&
              by_macro.struct_size == full && by_symbol.struct_size == full &&
              strcmp(by_macro.device_name, by_symbol.device_name) == 0,
          "clattn_context_info: macro and symbol fill the same layout");
}

int main(void)
{
    g_ctx = test_context();
    test_rng r = test_rng_make(7);
    test_fill(&r, g_q, sizeof g_q / sizeof g_q[0], -1, 1);
    test_fill(&r, g_k, sizeof g_k / sizeof g_k[0], -1, 1);
    test_fill(&r, g_v, sizeof g_v / sizeof g_v[0], -1, 1);
    version();
    inits_set_size();
    sdpa_desc_rule();
    options_rule();
    layer_descs_rule();
    info_rule();
    clattn_context_destroy(g_ctx);
    return test_finish("test_abi_growth");
}
