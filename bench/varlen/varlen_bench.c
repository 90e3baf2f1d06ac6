/* clattn-varlen-bench: a prefill of 8 sequences of mixed lengths (64 to
   2048 tokens; H=8, D=64, fp32) on the auto device ($CLATTN_DEVICE), in
   three forms, each timed as the minimum over rounds that interleave
   them (the machines are noisy, so ratios come from one run):
   - packed: one call with cu_seqlens, no padding;
   - padded: the batch [8][H][2048][D] with key lengths, the way to run
     mixed lengths without packing;
   - uniform: a batch of 8 sequences of equal length with the same total
     tokens (6336), the dense kernel at the same amount of input.
   GFLOP/s count 4*H*D per (query, key) pair the masks leave: real tokens
   only for packed and padded (their work is the same), every pair for
   uniform. Prints one line per form and causal mode, then the ratios.
   Usage: clattn-varlen-bench [ROUNDS] (default 5). Exit status 0, or 1
   when a call fails. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "clattn/clattn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 8
#define HEADS 8
#define DIM 64
#define MAX_LEN 2048

static const int32_t lengths[BATCH] = {64,  2048, 256, 1536,
                                       128, 1024, 512, 768};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

typedef struct form {
    const char *name;
    clattn_sdpa_desc desc;
    clattn_sdpa_tensors t;
    double pairs; /* (query, key) pairs counted */
    double best_ms;
} form;

static cl_mem filled(cl_context cl, cl_command_queue q, size_t n, float x)
{
    cl_int err;
    cl_mem m = clCreateBuffer(cl, CL_MEM_READ_WRITE, n * sizeof x, NULL, &err);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(q, m, &x, sizeof x, 0, n * sizeof x, 0, NULL,
                                  NULL);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clattn-varlen-bench: buffer of %zu floats: %d\n", n,
                (int)err);
        exit(1);
    }
    return m;
}

/* q, k, v, out of [batch][HEADS][seq][DIM] (packed: batch 1, seq the
   total tokens). */
static void tensors(form *f, cl_context cl, cl_command_queue q, size_t batch,
                    size_t seq)
{
    const size_t dims[4] = {batch, HEADS, seq, DIM};
    const size_t n = batch * HEADS * seq * DIM;
    memset(&f->t, 0, sizeof f->t);
    clattn_tensor_contiguous(&f->t.q, filled(cl, q, n, 0.01f), 0, dims);
    clattn_tensor_contiguous(&f->t.k, filled(cl, q, n, 0.02f), 0, dims);
    clattn_tensor_contiguous(&f->t.v, filled(cl, q, n, 0.5f), 0, dims);
    clattn_tensor_contiguous(&f->t.out, filled(cl, q, n, 0.0f), 0, dims);
}

static void release(form *f)
{
    clReleaseMemObject(f->t.q.buffer);
    clReleaseMemObject(f->t.k.buffer);
    clReleaseMemObject(f->t.v.buffer);
    clReleaseMemObject(f->t.out.buffer);
}

static double pairs_of(size_t len_q, size_t len_k, clattn_causal causal)
{
    if (causal == CLATTN_CAUSAL_NONE)
        return (double)len_q * len_k;
    return (double)len_q * (len_q + 1) / 2; /* square: top-left */
}

static void run(clattn_context *ctx, form *f, cl_command_queue q)
{
    double t0 = now_ms();
    clattn_status s =
        clattn_sdpa(ctx, &f->desc, &f->t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    if (s == CLATTN_SUCCESS && clFinish(q) != CL_SUCCESS)
        s = CLATTN_ERROR_OPENCL;
    if (s != CLATTN_SUCCESS) {
        fprintf(stderr, "clattn-varlen-bench: %s: %s: %s\n", f->name,
                clattn_status_string(s), clattn_context_last_error(ctx));
        exit(1);
    }
    const double ms = now_ms() - t0;
    if (f->best_ms == 0.0 || ms < f->best_ms)
        f->best_ms = ms;
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 5;
    clattn_context *ctx = NULL;
    if (clattn_context_create(NULL, &ctx) != CLATTN_SUCCESS) {
        fprintf(stderr, "clattn-varlen-bench: %s\n",
                clattn_context_last_error(ctx));
        return 1;
    }
    clattn_info info;
    clattn_context_info(ctx, &info);
    printf("device: %s / %s\n", info.platform_name, info.device_name);
    int32_t cu[BATCH + 1] = {0};
    size_t total = 0;
    for (int b = 0; b < BATCH; ++b) {
        total += (size_t)lengths[b];
        cu[b + 1] = (int32_t)total;
    }
    const size_t uniform_len = total / BATCH;
    const clattn_causal modes[2] = {CLATTN_CAUSAL_NONE, CLATTN_CAUSAL_TOP_LEFT};
    for (int m = 0; m < 2; ++m) {
        form f[3];
        memset(f, 0, sizeof f);
        const char *names[3] = {"packed", "padded", "uniform"};
        for (int i = 0; i < 3; ++i) {
            f[i].name = names[i];
            clattn_sdpa_desc_init(&f[i].desc);
            f[i].desc.heads_q = HEADS;
            f[i].desc.head_dim = DIM;
            f[i].desc.causal = modes[m];
        }
        f[0].desc.batch = f[1].desc.batch = f[2].desc.batch = BATCH;
        f[0].desc.seq_q = f[0].desc.seq_kv = MAX_LEN;
        f[0].desc.cu_seqlens_q = f[0].desc.cu_seqlens_k = cu;
        tensors(&f[0], info.cl_ctx, info.queue, 1, total);
        f[1].desc.seq_q = f[1].desc.seq_kv = MAX_LEN;
        f[1].desc.key_lengths = lengths;
        tensors(&f[1], info.cl_ctx, info.queue, BATCH, MAX_LEN);
        f[2].desc.seq_q = f[2].desc.seq_kv = uniform_len;
        tensors(&f[2], info.cl_ctx, info.queue, BATCH, uniform_len);
        for (int b = 0; b < BATCH; ++b) {
            f[0].pairs += pairs_of(lengths[b], lengths[b], modes[m]);
            f[2].pairs += pairs_of(uniform_len, uniform_len, modes[m]);
        }
        f[1].pairs = f[0].pairs;
        for (int i = 0; i < 3; ++i)
            run(ctx, &f[i], info.queue); /* builds, warms */
        for (int r = 0; r < rounds; ++r)
            for (int i = 0; i < 3; ++i)
                run(ctx, &f[i], info.queue);
        double gflops[3];
        for (int i = 0; i < 3; ++i) {
            gflops[i] = 4.0 * HEADS * DIM * f[i].pairs / f[i].best_ms * 1e-6;
            printf("%-8s %-9s %9.2f ms %8.2f GFLOP/s\n", m ? "causal" : "full",
                   f[i].name, f[i].best_ms, gflops[i]);
            release(&f[i]);
        }
        printf("%-8s packed/padded %.2fx faster; packed GFLOP/s = %.2f of "
               "uniform\n",
               m ? "causal" : "full", f[1].best_ms / f[0].best_ms,
               gflops[0] / gflops[2]);
    }
    clattn_context_destroy(ctx);
    return 0;
}
