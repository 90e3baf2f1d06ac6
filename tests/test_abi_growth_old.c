/* A binary built against an older clattn.h: its clattn_sdpa_desc ends
   before key_lengths (the layout of the fixed core, the desc's oldest).
   The test defines that layout itself, as the older header did, sets
   struct_size to its sizeof and passes it where a clattn_sdpa_desc is
   expected. The library must read no byte past it, which the test makes
   fatal: the old struct ends exactly at a page followed by an inaccessible
   one, so any read past its end is a SIGSEGV (and valgrind reports it as
   an invalid read). key_lengths is then NULL: the result equals the
   current-layout call with key_lengths NULL, bit for bit, and differs from
   one with key lengths set. The newer-binary side (a larger struct_size)
   is test_abi_growth.c's. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "test_util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* clattn_sdpa_desc as the older header had it. */
typedef struct old_sdpa_desc {
    size_t struct_size;
    size_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v;
    float scale;
    clattn_causal causal;
    clattn_mask_type mask_type;
    size_t mask_dims[4];
    float dropout_p;
    uint64_t dropout_seed, dropout_offset;
} old_sdpa_desc;

_Static_assert(sizeof(old_sdpa_desc) == offsetof(clattn_sdpa_desc, key_lengths),
               "the old layout is today's without key_lengths");
_Static_assert(offsetof(old_sdpa_desc, dropout_offset) ==
                   offsetof(clattn_sdpa_desc, dropout_offset),
               "the old fields sit where today's do");

enum { B = 2, H = 2, SQ = 6, SKV = 9, D = 8 };
enum { NQ = B * H * SQ * D, NK = B * H * SKV * D, NO = B * H * SQ * D };

static clattn_context *g_ctx;
static float g_q[NQ], g_k[NK], g_v[NK];

/* Two pages, the second inaccessible. */
typedef struct guard_pages {
    void *map;
    size_t len;
} guard_pages;

/* Maps g; returns where a struct of size bytes must start to end at the
   boundary, or NULL (a failed check, named what) when mapping fails. */
static void *at_page_end(guard_pages *g, size_t size, const char *what)
{
    long page = sysconf(_SC_PAGESIZE);
    g->map = NULL;
    g->len = 2 * (size_t)page;
    unsigned char *p = mmap(NULL, g->len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *at = NULL;
    if (p != MAP_FAILED && mprotect(p + page, (size_t)page, PROT_NONE) != 0)
        munmap(p, g->len);
    else if (p != MAP_FAILED)
        g->map = p, at = p + page - size;
    CHECK(at != NULL, "%s", what);
    return at;
}

static void fill_current(clattn_sdpa_desc *d)
{
    clattn_sdpa_desc_init(d);
    d->batch = B, d->heads_q = H, d->seq_q = SQ, d->seq_kv = SKV;
    d->head_dim = D, d->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    d->dropout_p = 0.25f, d->dropout_seed = 11, d->dropout_offset = 3;
}

static void fill_old(old_sdpa_desc *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->batch = B, o->heads_q = H, o->seq_q = SQ, o->seq_kv = SKV;
    o->head_dim = D, o->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    o->dropout_p = 0.25f, o->dropout_seed = 11, o->dropout_offset = 3;
}

static void old_layout_host(void)
{
    clattn_sdpa_desc d;
    fill_current(&d);
    float *want = guarded_alloc(NO), *got = guarded_alloc(NO);
    float *with_lengths = guarded_alloc(NO);
    CHECK(clattn_sdpa_host(g_ctx, &d, g_q, g_k, g_v, NULL, want, NULL) == 0,
          "current layout: %s", clattn_context_last_error(g_ctx));
    const int32_t lengths[B] = {4, 7};
    d.key_lengths = lengths;
    CHECK(clattn_sdpa_host(g_ctx, &d, g_q, g_k, g_v, NULL, with_lengths,
                           NULL) == 0,
          "current layout with key_lengths: %s",
          clattn_context_last_error(g_ctx));

    guard_pages pages;
    old_sdpa_desc *old = at_page_end(&pages, sizeof *old,
                                     "mmap and mprotect for the guard page");
    if (!old)
        return;
    fill_old(old);
    clattn_status s = clattn_sdpa_host(g_ctx, (const clattn_sdpa_desc *)old,
                                       g_q, g_k, g_v, NULL, got, NULL);
    CHECK(s == CLATTN_SUCCESS, "old layout (struct_size %zu): %s, '%s'",
          old->struct_size, clattn_status_string(s),
          clattn_context_last_error(g_ctx));
    CHECK(memcmp(got, want, sizeof(float) * NO) == 0,
          "old layout: not bit-identical to the current layout with "
          "key_lengths NULL");
    CHECK(memcmp(got, with_lengths, sizeof(float) * NO) != 0,
          "old layout: equals the call with key lengths (they matter here)");
    CHECK(guarded_intact(got, NO), "old layout: wrote past out");

    /* One byte short of the old layout: refused, nothing written, no byte
       past the struct read either. */
    old->struct_size = sizeof *old - 1;
    float *untouched = guarded_alloc(NO);
    s = clattn_sdpa_host(g_ctx, (const clattn_sdpa_desc *)old, g_q, g_k, g_v,
                         NULL, untouched, NULL);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT &&
              strstr(clattn_context_last_error(g_ctx), "clattn_sdpa_desc") &&
              guarded_untouched(untouched, NO),
          "struct_size below the oldest layout: %s, '%s'",
          clattn_status_string(s), clattn_context_last_error(g_ctx));
    guarded_free(untouched);

    /* The device form reads the desc the same way. */
    float *dev_out = malloc(sizeof(float) * NO);
    cl_int err;
    clattn_info info;
    clattn_context_info(g_ctx, &info);
    cl_mem bq =
        clCreateBuffer(info.cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                       sizeof g_q, g_q, &err);
    cl_mem bk =
        clCreateBuffer(info.cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                       sizeof g_k, g_k, &err);
    cl_mem bv =
        clCreateBuffer(info.cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                       sizeof g_v, g_v, &err);
    cl_mem bo = clCreateBuffer(info.cl_ctx, CL_MEM_READ_WRITE,
                               sizeof(float) * NO, NULL, &err);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    const size_t dq[4] = {B, H, SQ, D}, dk[4] = {B, H, SKV, D};
    clattn_tensor_contiguous(&t.q, bq, 0, dq);
    clattn_tensor_contiguous(&t.k, bk, 0, dk);
    clattn_tensor_contiguous(&t.v, bv, 0, dk);
    clattn_tensor_contiguous(&t.out, bo, 0, dq);
    old->struct_size = sizeof *old;
    s = clattn_sdpa(g_ctx, (const clattn_sdpa_desc *)old, &t,
                    CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    if (s == CLATTN_SUCCESS)
        clEnqueueReadBuffer(info.queue, bo, CL_TRUE, 0, sizeof(float) * NO,
                            dev_out, 0, NULL, NULL);
    CHECK(s == CLATTN_SUCCESS && memcmp(dev_out, want, sizeof(float) * NO) == 0,
          "device form, old layout: %s, same result as the host form",
          clattn_status_string(s));
    clReleaseMemObject(bq), clReleaseMemObject(bk);
    clReleaseMemObject(bv), clReleaseMemObject(bo);
    free(dev_out);

    munmap(pages.map, pages.len);
    guarded_free(want), guarded_free(got), guarded_free(with_lengths);
}

/* Options at the end of a page, as an older binary (this header) passes
   them: read no further. */
static void options_at_page_end(void)
{
    guard_pages pages;
    clattn_context_options *o =
        at_page_end(&pages, sizeof *o, "mmap for the options");
    if (!o)
        return;
    clattn_context_options_init(o);
    o->device = getenv("CLATTN_DEVICE");
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(o, &ctx);
    CHECK(s == CLATTN_SUCCESS, "options at a page end: %s",
          clattn_status_string(s));
    clattn_context_destroy(ctx);
    munmap(pages.map, pages.len);
}

int main(void)
{
    g_ctx = test_context();
    test_rng r = test_rng_make(5);
    test_fill(&r, g_q, NQ, -1, 1);
    test_fill(&r, g_k, NK, -1, 1);
    test_fill(&r, g_v, NK, -1, 1);
    old_layout_host();
    options_at_page_end();
    clattn_context_destroy(g_ctx);
    return test_finish("test_abi_growth_old");
}
