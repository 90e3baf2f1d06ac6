/* The program cache and the per-thread kernel cache (src/core/
   program_cache.h, kernel_cache.h):
   - a (program, options) pair is built once, even when eight threads ask
     for it at the same moment, and every thread gets the same program;
   - two option strings give two programs, and asking again builds none;
   - program_kernel hands one thread the same kernel object call after
     call, and each live thread its own;
   - eight threads sharing one context, each on its own queue and with its
     own inputs (so a kernel whose arguments another thread set would give
     a wrong answer), get the bits a single thread gets, on the fused and
     the unfused path;
   - destroying the context releases every thread's kernels. */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include "context_internal.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 8 };

/* The smallest program, so the variant builds are quick. */
#define VARIANT_PROGRAM PROGRAM_LAYER_COMMON
#define VARIANT_KERNEL "layer_bias_add"

static unsigned programs_made(const clattn_context *ctx)
{
    return ctx->programs.cache_stats.builds + ctx->programs.cache_stats.loads;
}

static cl_uint kernel_refs(cl_kernel k)
{
    cl_uint n = 0;
    clGetKernelInfo(k, CL_KERNEL_REFERENCE_COUNT, sizeof n, &n, NULL);
    return n;
}

typedef struct first_use {
    clattn_context *ctx;
    pthread_barrier_t *start, *hold;
    clattn_status status;
    cl_program program;
    cl_kernel kernel; /* kept past the context's destroy */
} first_use;

static void *first_use_worker(void *arg)
{
    first_use *f = arg;
    pthread_barrier_wait(f->start);
    f->status = program_get(f->ctx, VARIANT_PROGRAM, "-DCLATTN_TEST_VARIANT=1",
                            &f->program);
    if (f->status == CLATTN_SUCCESS)
        f->status = program_kernel_variant(f->ctx, VARIANT_PROGRAM,
                                           "-DCLATTN_TEST_VARIANT=1",
                                           VARIANT_KERNEL, &f->kernel);
    /* Every thread alive at once: a thread that exited could hand its
       kernel set to the next one. */
    pthread_barrier_wait(f->hold);
    return NULL;
}

/* Eight threads' first use of one variant: one build, one program, eight
   kernels. The kernels are returned to check the destroy. */
static void test_concurrent_first_use(clattn_context *ctx,
                                      cl_kernel kernels[THREADS])
{
    pthread_barrier_t start, hold;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_barrier_init(&hold, NULL, THREADS);
    first_use f[THREADS];
    const unsigned before = programs_made(ctx);
    for (int t = 0; t < THREADS; ++t)
        f[t] = (first_use){ctx, &start, &hold, CLATTN_ERROR_OPENCL, NULL, NULL};
    test_threads(THREADS, first_use_worker, f, sizeof f[0]);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&hold);

    CHECK(programs_made(ctx) == before + 1,
          "8 concurrent first uses made %u programs, not 1",
          programs_made(ctx) - before);
    int same_program = 1, distinct_kernels = 1, ok = 1;
    for (int t = 0; t < THREADS; ++t) {
        ok &= f[t].status == CLATTN_SUCCESS && f[t].kernel != NULL;
        same_program &= f[t].program == f[0].program;
        for (int u = 0; u < t; ++u)
            distinct_kernels &= f[t].kernel != f[u].kernel;
        kernels[t] = f[t].kernel;
    }
    CHECK(ok, "every thread got its program and kernel (%s)",
          clattn_context_last_error(ctx));
    CHECK(same_program, "all threads got the one program");
    CHECK(distinct_kernels, "each live thread got its own kernel object");
}

static void test_variants(clattn_context *ctx)
{
    cl_program def = NULL, def2 = NULL, one = NULL, two = NULL, again = NULL;
    CHECK(program_get(ctx, VARIANT_PROGRAM, NULL, &def) == CLATTN_SUCCESS &&
              program_get(ctx, VARIANT_PROGRAM, "", &def2) == CLATTN_SUCCESS &&
              def && def == def2,
          "NULL and \"\" both name the default build");
    /* Variant 1 exists (test_concurrent_first_use). */
    const unsigned before = programs_made(ctx);
    CHECK(program_get(ctx, VARIANT_PROGRAM, "-DCLATTN_TEST_VARIANT=1", &one) ==
                  CLATTN_SUCCESS &&
              program_get(ctx, VARIANT_PROGRAM, "-DCLATTN_TEST_VARIANT=2",
                          &two) == CLATTN_SUCCESS,
          "two variants build (%s)", clattn_context_last_error(ctx));
    CHECK(one && two && one != two && one != def && two != def,
          "two option strings give two programs, neither the default");
    const unsigned made = programs_made(ctx);
    CHECK(made == before + 1, "only variant 2 was new: %u programs made",
          made - before);
    CHECK(program_get(ctx, VARIANT_PROGRAM, "-DCLATTN_TEST_VARIANT=2",
                      &again) == CLATTN_SUCCESS &&
              again == two && programs_made(ctx) == made,
          "asking again returns the same program and builds nothing");
}

static void test_reuse_on_one_thread(clattn_context *ctx)
{
    cl_kernel a = NULL, b = NULL, c = NULL;
    CHECK(program_kernel(ctx, PROGRAM_SDPA_UNFUSED, "sdpa_scores", &a) ==
                  CLATTN_SUCCESS &&
              program_kernel(ctx, PROGRAM_SDPA_UNFUSED, "sdpa_scores", &b) ==
                  CLATTN_SUCCESS &&
              program_kernel(ctx, PROGRAM_SDPA_UNFUSED, "sdpa_pv", &c) ==
                  CLATTN_SUCCESS,
          "kernels made (%s)", clattn_context_last_error(ctx));
    CHECK(a && a == b, "the same kernel object on the second call");
    CHECK(c && c != a, "another name is another object");
    /* The cache's reference and the two callers'. */
    CHECK(a && kernel_refs(a) == 3, "reference count %u, want 3",
          a ? kernel_refs(a) : 0);
    cl_kernel none = (cl_kernel)1;
    CHECK(program_kernel(ctx, PROGRAM_SDPA_UNFUSED, "no_such_kernel", &none) ==
                  CLATTN_ERROR_OPENCL &&
              none == NULL,
          "an unknown kernel fails with *out NULL");
    if (a)
        clReleaseKernel(a);
    if (b)
        clReleaseKernel(b);
    if (c)
        clReleaseKernel(c);
    CHECK(a && kernel_refs(a) == 1, "callers' references returned");
}

/* One small SDPA problem per thread: its own inputs, its own buffers. */
typedef struct sdpa_job {
    clattn_context *ctx;
    clattn_info info;
    clattn_sdpa_desc desc;
    float *q, *k, *v;
    size_t nq, nkv;
    float *serial[2]; /* single-thread results: AUTO (fused), UNFUSED */
    int repeats, first_path;
    pthread_barrier_t *start;
    int failures, mismatches;
} sdpa_job;

static const clattn_sdpa_path paths[2] = {CLATTN_SDPA_PATH_AUTO,
                                          CLATTN_SDPA_PATH_UNFUSED};

static cl_mem upload(cl_context c, const float *x, size_t n)
{
    return clCreateBuffer(c, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          n * sizeof(float), (void *)x, NULL);
}

static clattn_status run_sdpa(sdpa_job *j, cl_command_queue queue,
                              clattn_sdpa_path path, float *out)
{
    const clattn_sdpa_desc *d = &j->desc;
    const size_t dq[4] = {d->batch, d->heads_q, d->seq_q, d->head_dim};
    const size_t dk[4] = {d->batch, d->heads_q, d->seq_kv, d->head_dim};
    cl_context c = j->info.cl_ctx;
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, upload(c, j->q, j->nq), 0, dq);
    clattn_tensor_contiguous(&t.k, upload(c, j->k, j->nkv), 0, dk);
    clattn_tensor_contiguous(&t.v, upload(c, j->v, j->nkv), 0, dk);
    clattn_tensor_contiguous(
        &t.out,
        clCreateBuffer(c, CL_MEM_READ_WRITE, j->nq * sizeof(float), NULL, NULL),
        0, dq);
    clattn_status s = CLATTN_ERROR_OUT_OF_MEMORY;
    if (t.q.buffer && t.k.buffer && t.v.buffer && t.out.buffer) {
        cl_event done = NULL;
        s = clattn_sdpa_on_queue(j->ctx, queue, d, &t, path, 0, NULL, &done);
        if (s == CLATTN_SUCCESS) {
            if (clEnqueueReadBuffer(queue, t.out.buffer, CL_TRUE, 0,
                                    j->nq * sizeof(float), out, 1, &done,
                                    NULL) != CL_SUCCESS)
                s = CLATTN_ERROR_OPENCL;
            clReleaseEvent(done);
        }
    }
    sdpa_tensors_release(&t);
    return s;
}

static void *sdpa_worker(void *arg)
{
    sdpa_job *j = arg;
    cl_command_queue own =
        clCreateCommandQueue(j->info.cl_ctx, j->info.device, 0, NULL);
    float *out = malloc(j->nq * sizeof *out);
    pthread_barrier_wait(j->start);
    for (int r = 0; own && out && r < j->repeats; ++r) {
        /* Alternating paths: each call sets the arguments of this
           thread's kernel objects anew. */
        const int p = (r + j->first_path) % 2;
        if (run_sdpa(j, own, paths[p], out) != CLATTN_SUCCESS)
            ++j->failures;
        else if (memcmp(out, j->serial[p], j->nq * sizeof *out) != 0)
            ++j->mismatches;
    }
    if (!own || !out)
        ++j->failures;
    free(out);
    if (own)
        clReleaseCommandQueue(own);
    return NULL;
}

static void test_threads_own_queues(clattn_context *ctx)
{
    sdpa_job jobs[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    clattn_info info;
    clattn_context_info(ctx, &info);
    int setup_ok = 1;
    for (int t = 0; t < THREADS; ++t) {
        sdpa_job *j = &jobs[t];
        memset(j, 0, sizeof *j);
        j->ctx = ctx;
        j->info = info;
        j->start = &start;
        j->repeats = test_small() ? 4 : 12;
        clattn_sdpa_desc_init(&j->desc);
        /* Shapes differ by thread too: a kernel launched with another
           thread's arguments would read or write the wrong extent. */
        j->desc.batch = 1;
        j->desc.heads_q = 2;
        j->desc.seq_q = t % 2 ? 1 : 5 + (size_t)t;
        j->desc.seq_kv = 40 + 9 * (size_t)t;
        j->desc.head_dim = 32;
        j->first_path = t % 2;
        j->nq = 2 * j->desc.seq_q * 32;
        j->nkv = 2 * j->desc.seq_kv * 32;
        j->q = malloc(j->nq * sizeof(float));
        j->k = malloc(j->nkv * sizeof(float));
        j->v = malloc(j->nkv * sizeof(float));
        for (int p = 0; p < 2; ++p)
            j->serial[p] = malloc(j->nq * sizeof(float));
        if (!j->q || !j->k || !j->v || !j->serial[0] || !j->serial[1]) {
            setup_ok = 0;
            continue;
        }
        test_rng rng = test_rng_make(100 + (uint64_t)t);
        test_fill(&rng, j->q, j->nq, -1, 1);
        test_fill(&rng, j->k, j->nkv, -1, 1);
        test_fill(&rng, j->v, j->nkv, -1, 1);
        for (int p = 0; p < 2; ++p)
            setup_ok &= run_sdpa(j, info.queue, paths[p], j->serial[p]) ==
                        CLATTN_SUCCESS;
    }
    CHECK(setup_ok, "single-thread results (%s)",
          clattn_context_last_error(ctx));
    if (setup_ok) {
        test_threads(THREADS, sdpa_worker, jobs, sizeof jobs[0]);
        int failures = 0, mismatches = 0;
        for (int t = 0; t < THREADS; ++t) {
            failures += jobs[t].failures;
            mismatches += jobs[t].mismatches;
        }
        CHECK(failures == 0, "%d calls failed (%s)", failures,
              clattn_context_last_error(ctx));
        CHECK(mismatches == 0, "%d results differ from the single-thread ones",
              mismatches);
    }
    pthread_barrier_destroy(&start);
    for (int t = 0; t < THREADS; ++t) {
        free(jobs[t].q);
        free(jobs[t].k);
        free(jobs[t].v);
        free(jobs[t].serial[0]);
        free(jobs[t].serial[1]);
    }
}

int main(void)
{
    clattn_context *ctx = test_context();
    cl_kernel kernels[THREADS] = {0};
    cl_kernel mine = NULL;
    test_concurrent_first_use(ctx, kernels);
    test_variants(ctx);
    test_reuse_on_one_thread(ctx);
    test_threads_own_queues(ctx);

    /* The destroy: each kept kernel loses the cache's reference and keeps
       only ours. */
    CHECK(program_kernel(ctx, PROGRAM_SDPA_FUSED_CPU, "fused_merge", &mine) ==
                  CLATTN_SUCCESS &&
              kernel_refs(mine) == 2,
          "a kernel held by the cache and by us");
    clattn_context_destroy(ctx);
    int released = mine && kernel_refs(mine) == 1;
    for (int t = 0; t < THREADS; ++t)
        released &= kernels[t] && kernel_refs(kernels[t]) == 1;
    CHECK(released, "destroy released every thread's kernels");
    for (int t = 0; t < THREADS; ++t)
        if (kernels[t])
            clReleaseKernel(kernels[t]);
    if (mine)
        clReleaseKernel(mine);
    return test_finish("kernel_cache");
}
