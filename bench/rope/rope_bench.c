/* clattn-rope-bench: what rotary embeddings cost (desc.rope), on the
   auto device ($CLATTN_DEVICE). Each shape runs twice, without and with
   rotation, timed as the minimum over rounds that interleave the two
   (the machines are noisy, so the ratio comes from one run):
   - prefill, B=1 H=8 D=64, S = 512 and 2048, top-left causal, fp32:
     Q and K rotated (rope_k), the NeoX form on every feature; and Q
     alone at S = 2048 (keys rotated already, as in a cache);
   - decode, B=1, GQA 32/8, D=128, 8192 keys of an fp16 cache: the one
     query rotated at position 8191 (the cache holds rotated keys).
   Prints one line per shape: both times and time with / time without.
   Usage: clattn-rope-bench [ROUNDS] (default 5). Exit status 0, or 1
   when a call fails. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "clattn/clattn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* A buffer of n elements of elem_size bytes, each the pattern. */
static cl_mem filled(cl_context cl, cl_command_queue q, size_t n,
                     size_t elem_size, const void *pattern)
{
    cl_int err;
    cl_mem m = clCreateBuffer(cl, CL_MEM_READ_WRITE, n * elem_size, NULL, &err);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(q, m, pattern, elem_size, 0, n * elem_size, 0,
                                  NULL, NULL);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clattn-rope-bench: buffer of %zu elements: %d\n", n,
                (int)err);
        exit(1);
    }
    return m;
}

typedef struct shape {
    const char *name;
    size_t heads_q, heads_kv, seq_q, seq_kv, head_dim;
    clattn_causal causal;
    clattn_dtype kv_dtype;
    int rope_k;
} shape;

static double run(clattn_context *ctx, const clattn_sdpa_desc *d,
                  const clattn_sdpa_tensors *t, cl_command_queue q)
{
    const double t0 = now_ms();
    clattn_status s =
        clattn_sdpa(ctx, d, t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    if (s == CLATTN_SUCCESS && clFinish(q) != CL_SUCCESS)
        s = CLATTN_ERROR_OPENCL;
    if (s != CLATTN_SUCCESS) {
        fprintf(stderr, "clattn-rope-bench: %s: %s\n", clattn_status_string(s),
                clattn_context_last_error(ctx));
        exit(1);
    }
    return now_ms() - t0;
}

static void measure(clattn_context *ctx, const clattn_info *info,
                    const shape *sh, int rounds)
{
    const size_t dq[4] = {1, sh->heads_q, sh->seq_q, sh->head_dim};
    const size_t dk[4] = {1, sh->heads_kv, sh->seq_kv, sh->head_dim};
    const size_t nq = sh->heads_q * sh->seq_q * sh->head_dim;
    const size_t nk = sh->heads_kv * sh->seq_kv * sh->head_dim;
    const float q_value = 0.01f, v_value = 0.5f, zero = 0.0f;
    const cl_ushort half_value = 0x2000; /* fp16 0.0078 */
    const int half = sh->kv_dtype != CLATTN_DTYPE_FP32;
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    cl_context cl = info->cl_ctx;
    cl_command_queue q = info->queue;
    clattn_tensor_contiguous(&t.q, filled(cl, q, nq, 4, &q_value), 0, dq);
    clattn_tensor_contiguous(
        &t.k,
        filled(cl, q, nk, half ? 2 : 4,
               half ? (void *)&half_value : (void *)&q_value),
        0, dk);
    clattn_tensor_contiguous(
        &t.v,
        filled(cl, q, nk, half ? 2 : 4,
               half ? (void *)&half_value : (void *)&v_value),
        0, dk);
    clattn_tensor_contiguous(&t.out, filled(cl, q, nq, 4, &zero), 0, dq);
    clattn_sdpa_desc plain;
    clattn_sdpa_desc_init(&plain);
    plain.batch = 1;
    plain.heads_q = sh->heads_q;
    plain.heads_kv = sh->heads_kv;
    plain.seq_q = sh->seq_q;
    plain.seq_kv = sh->seq_kv;
    plain.head_dim = sh->head_dim;
    plain.causal = sh->causal;
    plain.k_dtype = plain.v_dtype = sh->kv_dtype;
    clattn_sdpa_desc rotated = plain;
    const int32_t position = (int32_t)(sh->seq_kv - sh->seq_q);
    rotated.rope.style = CLATTN_ROPE_HALF;
    rotated.rope_q_positions = &position;
    rotated.rope_k = sh->rope_k;
    double best[2] = {0.0, 0.0};
    run(ctx, &plain, &t, q); /* builds, warms */
    run(ctx, &rotated, &t, q);
    for (int r = 0; r < rounds; ++r)
        for (int i = 0; i < 2; ++i) {
            const double ms = run(ctx, i ? &rotated : &plain, &t, q);
            if (best[i] == 0.0 || ms < best[i])
                best[i] = ms;
        }
    printf("%-34s %9.3f ms %9.3f ms %6.3f\n", sh->name, best[0], best[1],
           best[1] / best[0]);
    clReleaseMemObject(t.q.buffer);
    clReleaseMemObject(t.k.buffer);
    clReleaseMemObject(t.v.buffer);
    clReleaseMemObject(t.out.buffer);
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 5;
    clattn_context *ctx = NULL;
    if (clattn_context_create(NULL, &ctx) != CLATTN_SUCCESS) {
        fprintf(stderr, "clattn-rope-bench: %s\n",
                clattn_context_last_error(ctx));
        return 1;
    }
    clattn_info info;
    clattn_context_info(ctx, &info);
    printf("device: %s / %s\n", info.platform_name, info.device_name);
    /* clang-format off */
    const shape shapes[] = {
        {"prefill S=512 H=8 D=64 causal", 8, 8, 512, 512, 64,
         CLATTN_CAUSAL_TOP_LEFT, CLATTN_DTYPE_FP32, 1},
        {"prefill S=2048 H=8 D=64 causal", 8, 8, 2048, 2048, 64,
         CLATTN_CAUSAL_TOP_LEFT, CLATTN_DTYPE_FP32, 1},
        {"prefill S=2048, Q only", 8, 8, 2048, 2048, 64,
         CLATTN_CAUSAL_TOP_LEFT, CLATTN_DTYPE_FP32, 0},
        {"decode 32/8 D=128 Skv=8192 fp16", 32, 8, 1, 8192, 128,
         CLATTN_CAUSAL_BOTTOM_RIGHT, CLATTN_DTYPE_FP16, 0},
    };
    /* clang-format on */
    printf("%-34s %12s %12s %6s\n", "shape", "no rope", "rope", "ratio");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i)
        measure(ctx, &info, &shapes[i], rounds);
    clattn_context_destroy(ctx);
    return 0;
}
