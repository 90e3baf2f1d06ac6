/* The GPU-class fused kernel's tiles (src/sdpa/sdpa_fused_tiles.h):
   - the tile-list parser takes "D:BM,TM,LANES,BN[;...]" and refuses
     every entry the kernel cannot be built with, naming the fault;
   - every built-in configuration and every row of the tuning table
     passes that parser (so each obeys the kernel's #error rules);
   - the tuning-table lookup matches vendor and device name by substring,
     picks the head dim's entry, and skips rows without one;
   - $CLATTN_FUSED_GPU_TILES: a bad value fails context creation with
     INVALID_ARGUMENT; tiles the device cannot run make a fused-gpu call
     fail with UNSUPPORTED, no other tiles tried; valid tiles run and match
     the reference. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include "sdpa_case.h"
#include "sdpa_fused_tiles.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void parser_accepts(void)
{
    gpu_tiles t[8];
    size_t n = 0;
    char why[96] = "";
    CHECK(gpu_tiles_parse("64:16,4,4,16", t, 8, &n, why, sizeof why) == 0 &&
              n == 1 && t[0].d == 64 && t[0].bm == 16 && t[0].tm == 4 &&
              t[0].lanes == 4 && t[0].bn == 16,
          "one entry: %s", why);
    CHECK(gpu_tiles_parse("128:32,2,16,16;80:32,2,4,8", t, 8, &n, why,
                          sizeof why) == 0 &&
              n == 2 && t[0].d == 128 && t[1].d == 80 && t[1].lanes == 4,
          "two entries: %s", why);
}

static void parser_refuses(void)
{
    static const struct {
        const char *text, *reason; /* a word of the reason given */
    } cases[] = {
        {"", "expected a count"},
        {"64", "expected D:BM"},
        {"64:16,4,4", "expected D:BM"},
        {"64:16,4,4,16,", "expected ';'"},
        {"64:16,4,4,16;", "expected a count"},
        {"64 :16,4,4,16", "expected D:BM"},
        {"64:16,4,4,016x", "expected ';'"},
        {"64:0,4,4,16", "expected a count"},
        {"64:-16,4,4,16", "expected a count"},
        {"64:99999,4,4,16", "expected a count"},
        {"72:16,4,4,16", "not a head dim"},
        {"512:16,4,4,16", "not a head dim"},
        {"64:16,3,4,16", "TM does not divide BM"},
        {"64:16,4,6,12", "power of two"},
        {"64:16,4,8,12", "LANES does not divide BN"},
        {"80:16,4,8,16", "4 * LANES does not divide D"},
        {"64:4096,1,4,16", "over 1024"},
        {"64:16,4,4,16;64:32,2,8,32", "a second entry for D=64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        gpu_tiles t[8];
        size_t n = 0;
        char why[96] = "";
        const int rc =
            gpu_tiles_parse(cases[i].text, t, 8, &n, why, sizeof why);
        CHECK(rc == -1 && strstr(why, cases[i].reason),
              "'%s': rc %d, reason '%s' (want '%s')", cases[i].text, rc, why,
              cases[i].reason);
    }
    gpu_tiles one[1];
    size_t n = 0;
    char why[96] = "";
    CHECK(gpu_tiles_parse("64:16,4,4,16;128:32,2,16,16", one, 1, &n, why,
                          sizeof why) == -1 &&
              strstr(why, "more than 1"),
          "over the caller's capacity: '%s'", why);
}

static void tables_are_valid(void)
{
    for (size_t i = 0; i < gpu_tiles_count(); ++i) {
        const gpu_tiles *c = gpu_tiles_at(i);
        char text[64], why[96] = "";
        snprintf(text, sizeof text, "%u:%u,%u,%u,%u", c->d, c->bm, c->tm,
                 c->lanes, c->bn);
        gpu_tiles t[1];
        size_t n = 0;
        CHECK(gpu_tiles_parse(text, t, 1, &n, why, sizeof why) == 0,
              "built-in configuration %zu (%s): %s", i, text, why);
        CHECK(i == 0 || c->d >= gpu_tiles_at(i - 1)->d,
              "built-in configuration %zu: out of head-dim order", i);
    }
    for (const gpu_tuning_entry *e = gpu_tuning_table; e->vendor; ++e) {
        gpu_tiles t[8];
        size_t n = 0;
        char why[96] = "";
        CHECK(e->device &&
                  gpu_tiles_parse(e->tiles, t, 8, &n, why, sizeof why) == 0,
              "tuning row %s / %s: %s", e->vendor, e->device ? e->device : "?",
              why);
    }
}

static void tuning_lookup(void)
{
    static const gpu_tuning_entry table[] = {
        {"NVIDIA", "H100", "128:16,1,16,16"},
        {"NVIDIA", "H", "64:32,2,8,32;128:32,2,16,16"},
        {"Advanced Micro Devices", "", "64:16,4,4,16"},
        {NULL, NULL, NULL},
    };
    gpu_tiles t;
    CHECK(gpu_tuning_lookup(table, "NVIDIA Corporation", "NVIDIA H100 PCIe",
                            128, &t) &&
              t.bm == 16 && t.lanes == 16,
          "first matching row with the head dim");
    CHECK(gpu_tuning_lookup(table, "NVIDIA Corporation", "NVIDIA H100 PCIe", 64,
                            &t) &&
              t.bm == 32 && t.tm == 2,
          "a row without the head dim is skipped for the next");
    CHECK(gpu_tuning_lookup(table, "NVIDIA Corporation", "NVIDIA H200", 128,
                            &t) &&
              t.bm == 32,
          "device matched by substring");
    CHECK(
        !gpu_tuning_lookup(table, "NVIDIA Corporation", "NVIDIA A100", 64, &t),
        "no row for this device");
    CHECK(gpu_tuning_lookup(table, "Advanced Micro Devices, Inc.", "gfx90a", 64,
                            &t) &&
              t.bm == 16,
          "an empty device string matches every device of the vendor");
    CHECK(!gpu_tuning_lookup(table, "Advanced Micro Devices, Inc.", "gfx90a",
                             96, &t),
          "no entry for the head dim");
}

/* A context made with the variable set, the fused-gpu path pinned for
   calls without probs; NULL with *status when creation failed. */
static clattn_context *context_with(const char *tiles, clattn_status *status)
{
    setenv("CLATTN_FUSED_GPU_TILES", tiles, 1);
    setenv("CLATTN_SDPA_PATH", "fused-gpu", 1);
    clattn_context *ctx = NULL;
    *status = clattn_context_create(NULL, &ctx);
    unsetenv("CLATTN_FUSED_GPU_TILES");
    unsetenv("CLATTN_SDPA_PATH");
    if (*status == CLATTN_ERROR_NO_DEVICE) {
        printf("skipped: %s\n", clattn_context_last_error(ctx));
        clattn_context_destroy(ctx);
        exit(TEST_SKIP);
    }
    if (*status != CLATTN_SUCCESS) {
        clattn_context_destroy(ctx);
        return NULL;
    }
    return ctx;
}

static void env_setting(void)
{
    clattn_status s;
    static const char *bad[] = {"64:16,3,4,16", "72:16,4,4,16", "64:16,4,4",
                                " 64:16,4,4,16"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        clattn_context *ctx = context_with(bad[i], &s);
        CHECK(!ctx && s == CLATTN_ERROR_INVALID_ARGUMENT,
              "CLATTN_FUSED_GPU_TILES='%s': creation gave %s, want "
              "INVALID_ARGUMENT",
              bad[i], clattn_status_string(s));
    }

    /* 8192 rows of 260 floats in __local: no device has 8 MiB of it, so
       the setting is refused at the call (the rule would have run it). */
    clattn_context *ctx = context_with("256:8192,8,1,16", &s);
    CHECK(ctx != NULL, "valid tiles: creation gave %s",
          clattn_status_string(s));
    if (ctx) {
        sdpa_inputs in;
        sdpa_inputs_plain(&in, 1, 2, 5, 9, 256, 41);
        float *out = calloc(in.n_out, sizeof(float));
        s = clattn_sdpa_host(ctx, &in.desc, in.q, in.k, in.v, NULL, out, NULL);
        CHECK(s == CLATTN_ERROR_UNSUPPORTED &&
                  strstr(clattn_context_last_error(ctx),
                         "CLATTN_FUSED_GPU_TILES"),
              "tiles the device cannot hold: %s (%s)", clattn_status_string(s),
              clattn_context_last_error(ctx));
        /* head dim 64 has no entry: the rule's tiles run */
        sdpa_inputs small;
        sdpa_inputs_plain(&small, 1, 2, 5, 9, 64, 42);
        sdpa_case_check(ctx, "head dim 64 beside a 256 entry", &small);
        sdpa_inputs_free(&small);
        free(out);
        sdpa_inputs_free(&in);
        clattn_context_destroy(ctx);
    }

    /* The kernel file's default tiles, named: the program built at context
       creation runs them (no build here), through the override. */
    ctx = context_with("64:64,4,8,32", &s);
    CHECK(ctx != NULL, "default tiles: creation gave %s",
          clattn_status_string(s));
    if (ctx) {
        clattn_info info;
        clattn_context_info(ctx, &info);
        sdpa_inputs in;
        sdpa_inputs_plain(&in, 1, 2, 70, 90, 64, 43);
        if (info.local_mem_bytes >= 45056)
            sdpa_case_check(ctx, "forced 64:64,4,8,32", &in);
        else
            printf("note: %llu bytes of local memory; the forced tiles need "
                   "45056\n",
                   (unsigned long long)info.local_mem_bytes);
        sdpa_inputs_free(&in);
        clattn_context_destroy(ctx);
    }
}

int main(void)
{
    parser_accepts();
    parser_refuses();
    tables_are_valid();
    tuning_lookup();
    env_setting();
    return test_finish("test_fused_tiles");
}
