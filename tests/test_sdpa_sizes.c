/* The sizes the library computes for its own buffers are checked, never
   wrapped (issue: a heap overflow). With broadcast (stride-0) inputs a
   problem's logical shape may be far larger than any real buffer: the
   fused CPU path's packed K and V for batch 33562625, seq_q 9,
   seq_kv 2146959361, head_dim 64, head_dim_v 1 need
   33562625 * 2146959424 * 256 bytes each, which wrapped to 16 KiB, passed
   the max-alloc check, and let the pack kernel write far past the buffer.

   - plan sizes: the fused plan of such problems (internal:
     sdpa_fused_plan_bytes, which sizes without allocating) is
     UNSUPPORTED; a normal one is sized exactly as docs/api.md section 7a
     says.
   - the reported call itself, through clattn_sdpa with 64-float Q/K/V
     buffers of stride 0 and a real out, where the device can allocate
     that out (1.2 GB in one buffer; PoCL here allows 1 GiB, so it runs on
     devices with a larger max_alloc_bytes): UNSUPPORTED, out unchanged. */
#include "context_internal.h"
#include "sdpa_problem.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clattn_sdpa_desc reported_desc(void)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 33562625, d.heads_q = 1, d.seq_q = 9, d.seq_kv = 2146959361;
    d.head_dim = 64, d.head_dim_v = 1;
    return d;
}

static void plan_sizes(clattn_context *ctx)
{
    clattn_sdpa_desc d = reported_desc();
    sdpa_problem p;
    CHECK(sdpa_problem_init(ctx, &d, &p) == CLATTN_SUCCESS,
          "the reported shape is a valid problem: %s",
          clattn_context_last_error(ctx));
    /* What the unchecked product gave: far below any max_alloc_bytes. */
    const size_t keys = (d.seq_kv + 63) / 64 * 64;
    const size_t wrapped = d.batch * keys * d.head_dim * sizeof(float);
    CHECK(wrapped == 16384, "the unchecked packed-K size wraps to %zu",
          wrapped);
    size_t total = 0;
    clattn_status s =
        sdpa_fused_plan_bytes(ctx, &p, CLATTN_SDPA_PATH_FUSED_CPU, &total);
    CHECK(s == CLATTN_ERROR_UNSUPPORTED, "reported shape: got %s: %s",
          clattn_status_string(s), clattn_context_last_error(ctx));
    CHECK(strstr(clattn_context_last_error(ctx), "packed K") != NULL,
          "the error names the packed K buffer: %s",
          clattn_context_last_error(ctx));

    /* Products that overflow by other factors, and one just over
       max_alloc_bytes: every one refused. */
    static const size_t shapes[][6] = {
        /* batch, heads, seq_q, seq_kv, head_dim, head_dim_v */
        {(size_t)1 << 30, 2, 9, 2147483647, 256, 256},
        {2147483647, 1, 9, 2147483647, 1, 1},
        {65536, 1, 9, 1 << 20, 256, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i) {
        clattn_sdpa_desc_init(&d);
        d.batch = shapes[i][0], d.heads_q = shapes[i][1];
        d.seq_q = shapes[i][2], d.seq_kv = shapes[i][3];
        d.head_dim = shapes[i][4], d.head_dim_v = shapes[i][5];
        s = sdpa_problem_init(ctx, &d, &p);
        if (s == CLATTN_SUCCESS)
            s = sdpa_fused_plan_bytes(ctx, &p, CLATTN_SDPA_PATH_FUSED_CPU,
                                      &total);
        CHECK(s == CLATTN_ERROR_UNSUPPORTED || s == CLATTN_ERROR_SIZE_OVERFLOW,
              "shape %zu: got %s: %s", i, clattn_status_string(s),
              clattn_context_last_error(ctx));
    }

    /* A normal problem: packed K and V exactly as documented. */
    clattn_sdpa_desc_init(&d);
    d.batch = 2, d.heads_q = 4, d.heads_kv = 2, d.seq_q = 100, d.seq_kv = 130;
    d.head_dim = 40, d.head_dim_v = 70;
    s = sdpa_problem_init(ctx, &d, &p);
    if (s == CLATTN_SUCCESS)
        s = sdpa_fused_plan_bytes(ctx, &p, CLATTN_SDPA_PATH_FUSED_CPU, &total);
    const size_t blocks = 3 * 64, want = 2 * 2 * blocks * (40 + 128) * 4;
    CHECK(s == CLATTN_SUCCESS && total == want,
          "normal shape: %s, %zu bytes planned, %zu documented",
          clattn_status_string(s), total, want);
}

static void reported_call(clattn_context *ctx)
{
    clattn_info info;
    clattn_context_info(ctx, &info);
    clattn_sdpa_desc d = reported_desc();
    const size_t out_floats = d.batch * d.seq_q;
    if (info.max_alloc_bytes < out_floats * sizeof(float)) {
        printf("reported call: skipped, its out (%zu bytes) exceeds this "
               "device's max_alloc_bytes (%llu)\n",
               out_floats * sizeof(float),
               (unsigned long long)info.max_alloc_bytes);
        return;
    }
    cl_int err;
    float small[64];
    for (int i = 0; i < 64; ++i)
        small[i] = 0.5f;
    cl_mem in =
        clCreateBuffer(info.cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                       sizeof small, small, &err);
    cl_mem out = clCreateBuffer(info.cl_ctx, CL_MEM_READ_WRITE,
                                out_floats * sizeof(float), NULL, &err);
    CHECK(err == CL_SUCCESS, "out buffer: %d", (int)err);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(in);
        return;
    }
    const float pattern = -7.0f;
    clEnqueueFillBuffer(info.queue, out, &pattern, sizeof pattern, 0,
                        out_floats * sizeof(float), 0, NULL, NULL);
    clFinish(info.queue);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    /* One 64-float row broadcast: every stride 0 but the feature one. */
    t.q.buffer = t.k.buffer = t.v.buffer = in;
    t.q.strides[3] = t.k.strides[3] = 1;
    t.out.buffer = out;
    t.out.strides[0] = d.seq_q, t.out.strides[2] = 1;
    cl_event done = NULL;
    clattn_status s =
        clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_FUSED_CPU, 0, NULL, &done);
    CHECK(s == CLATTN_ERROR_UNSUPPORTED && done == NULL,
          "reported call: got %s: %s", clattn_status_string(s),
          clattn_context_last_error(ctx));
    if (done) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    /* Nothing written: read back in slices. */
    const size_t slice = (size_t)1 << 24;
    float *buf = malloc(slice * sizeof *buf);
    size_t changed = 0;
    for (size_t at = 0; at < out_floats; at += slice) {
        size_t n = out_floats - at < slice ? out_floats - at : slice;
        clEnqueueReadBuffer(info.queue, out, CL_TRUE, at * sizeof(float),
                            n * sizeof(float), buf, 0, NULL, NULL);
        for (size_t i = 0; i < n; ++i)
            changed += buf[i] != pattern;
    }
    CHECK(changed == 0, "reported call: %zu out elements written", changed);
    free(buf);
    clReleaseMemObject(in);
    clReleaseMemObject(out);
}

int main(void)
{
    clattn_context *ctx = test_context();
    plan_sizes(ctx);
    reported_call(ctx);
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_sizes");
}
