/* The SDPA variant registry seen from the API: every path's name maps back
   to its value (clattn_sdpa_path_from_name), unknown names and values are
   refused with nothing written, AUTO's fall-back to the unfused path for
   head dims the fused variants do not take leaves no error behind, and an
   explicit fused path refuses the same request with the reason. */
#include "test_util.h"

#include <string.h>

static void names_round_trip(void)
{
    const clattn_sdpa_path paths[] = {
        CLATTN_SDPA_PATH_AUTO, CLATTN_SDPA_PATH_UNFUSED, CLATTN_SDPA_PATH_FUSED,
        CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU};
    const char *names[] = {"auto", "unfused", "fused", "fused-cpu",
                           "fused-gpu"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; ++i) {
        CHECK(strcmp(clattn_sdpa_path_name(paths[i]), names[i]) == 0,
              "name of %d: '%s'", (int)paths[i],
              clattn_sdpa_path_name(paths[i]));
        clattn_sdpa_path got = (clattn_sdpa_path)-1;
        CHECK(clattn_sdpa_path_from_name(names[i], &got) == CLATTN_SUCCESS &&
                  got == paths[i],
              "'%s' -> %d", names[i], (int)got);
    }
    const char *unknown[] = {"", "Fused", "fused_cpu", "unfused ", "gpu"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; ++i) {
        clattn_sdpa_path got = CLATTN_SDPA_PATH_UNFUSED;
        CHECK(clattn_sdpa_path_from_name(unknown[i], &got) ==
                      CLATTN_ERROR_INVALID_ARGUMENT &&
                  got == CLATTN_SDPA_PATH_UNFUSED,
              "'%s' refused, path untouched", unknown[i]);
    }
    clattn_sdpa_path got;
    CHECK(clattn_sdpa_path_from_name(NULL, &got) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "NULL name");
    CHECK(clattn_sdpa_path_from_name("auto", NULL) ==
              CLATTN_ERROR_INVALID_ARGUMENT,
          "NULL path");
    CHECK(strcmp(clattn_sdpa_path_name((clattn_sdpa_path)5), "unknown") == 0,
          "name of 5");
}

typedef struct call_buffers {
    cl_mem q, k, v, out;
    clattn_sdpa_tensors t;
} call_buffers;

/* One batch, one head, 2 queries, 5 keys of head_dim d. */
static void make_buffers(const clattn_info *info, size_t d, call_buffers *b)
{
    size_t dq[4] = {1, 1, 2, d}, dk[4] = {1, 1, 5, d};
    cl_int err;
    float data[5 * 300];
    for (size_t i = 0; i < 5 * d; ++i)
        data[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    b->q = clCreateBuffer(info->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          2 * d * sizeof(float), data, &err);
    b->k = clCreateBuffer(info->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          5 * d * sizeof(float), data, &err);
    b->v = clCreateBuffer(info->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          5 * d * sizeof(float), data, &err);
    b->out = clCreateBuffer(info->cl_ctx, CL_MEM_READ_WRITE,
                            2 * d * sizeof(float), NULL, &err);
    memset(&b->t, 0, sizeof b->t);
    clattn_tensor_contiguous(&b->t.q, b->q, 0, dq);
    clattn_tensor_contiguous(&b->t.k, b->k, 0, dk);
    clattn_tensor_contiguous(&b->t.v, b->v, 0, dk);
    clattn_tensor_contiguous(&b->t.out, b->out, 0, dq);
}

static void release_buffers(call_buffers *b)
{
    cl_mem all[4] = {b->q, b->k, b->v, b->out};
    for (int i = 0; i < 4; ++i)
        clReleaseMemObject(all[i]);
}

/* Fills out with a pattern, runs the call, and says whether out still
   holds the pattern. */
static int run_untouched(clattn_context *ctx, const clattn_info *info,
                         const clattn_sdpa_desc *d, call_buffers *b,
                         clattn_sdpa_path path, clattn_status *status)
{
    float fill[2 * 300], got[2 * 300];
    size_t n = 2 * d->head_dim;
    for (size_t i = 0; i < n; ++i)
        fill[i] = 1234.5f;
    clEnqueueWriteBuffer(info->queue, b->out, CL_TRUE, 0, n * sizeof(float),
                         fill, 0, NULL, NULL);
    cl_event done = NULL;
    *status = clattn_sdpa(ctx, d, &b->t, path, 0, NULL, &done);
    if (done) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    clEnqueueReadBuffer(info->queue, b->out, CL_TRUE, 0, n * sizeof(float), got,
                        0, NULL, NULL);
    return memcmp(fill, got, n * sizeof(float)) == 0;
}

static void calls(void)
{
    clattn_context *ctx = test_context();
    clattn_info info;
    CHECK(clattn_context_info(ctx, &info) == CLATTN_SUCCESS, "info");
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1, d.heads_q = 1, d.seq_q = 2, d.seq_kv = 5, d.head_dim = 300;
    call_buffers b;
    make_buffers(&info, 300, &b);
    clattn_status s;

    /* Values outside the registry: refused, nothing written. */
    const int bad[] = {5, 63, CLATTN_SDPA_PATH_EXPERIMENTAL_FIRST + 1000, -1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        int untouched =
            run_untouched(ctx, &info, &d, &b, (clattn_sdpa_path)bad[i], &s);
        CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT && untouched,
              "path %d: %s, %s", bad[i], clattn_status_string(s),
              untouched ? "untouched" : "written");
        CHECK(strstr(clattn_context_last_error(ctx), "path") != NULL,
              "path %d: the detail names the path: '%s'", bad[i],
              clattn_context_last_error(ctx));
    }

    /* head_dim 300 is over the fused variants' limit: AUTO runs it
       unfused and leaves no error; FUSED (and each fused variant) refuses
       it with the reason and writes nothing. */
    int untouched =
        run_untouched(ctx, &info, &d, &b, CLATTN_SDPA_PATH_AUTO, &s);
    CHECK(s == CLATTN_SUCCESS && !untouched, "AUTO, head_dim 300: %s",
          clattn_status_string(s));
    CHECK(clattn_context_last_error(ctx)[0] == '\0',
          "AUTO's fall-back left an error: '%s'",
          clattn_context_last_error(ctx));
    const clattn_sdpa_path fused[] = {CLATTN_SDPA_PATH_FUSED,
                                      CLATTN_SDPA_PATH_FUSED_CPU,
                                      CLATTN_SDPA_PATH_FUSED_GPU};
    for (int i = 0; i < 3; ++i) {
        untouched = run_untouched(ctx, &info, &d, &b, fused[i], &s);
        CHECK(s == CLATTN_ERROR_UNSUPPORTED && untouched,
              "%s, head_dim 300: %s", clattn_sdpa_path_name(fused[i]),
              clattn_status_string(s));
        CHECK(strstr(clattn_context_last_error(ctx), "head_dim") != NULL,
              "%s: the reason: '%s'", clattn_sdpa_path_name(fused[i]),
              clattn_context_last_error(ctx));
    }

    /* The device's fused variant is one of the two, and by name too. */
    clattn_sdpa_path v = clattn_sdpa_fused_variant(ctx), named;
    CHECK(
        (v == CLATTN_SDPA_PATH_FUSED_CPU || v == CLATTN_SDPA_PATH_FUSED_GPU) &&
            clattn_sdpa_path_from_name(clattn_sdpa_path_name(v), &named) ==
                CLATTN_SUCCESS &&
            named == v,
        "fused variant %d", (int)v);
    release_buffers(&b);
    clattn_context_destroy(ctx);
}

int main(void)
{
    names_round_trip();
    calls();
    return test_finish("test_sdpa_variants");
}
