/* Eight threads share one context and get the bits a serial run gets:
   through the host entry point (all on the context's queue), through the
   device entry point on the context's queue, and each on its own queue
   (clattn_sdpa_on_queue). The contract (docs/reliability.md): a context
   may be used from any number of threads; clattn creates its kernel
   objects per call, so no argument state is shared. */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include "sdpa_case.h"
#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 8, REPEATS = 3 };

typedef enum mode { HOST, DEVICE_SHARED_QUEUE, DEVICE_OWN_QUEUE } mode;
static const char *mode_names[] = {"host API", "device API, shared queue",
                                   "device API, own queues"};

typedef struct job {
    clattn_context *ctx;
    clattn_info info;
    sdpa_inputs in;
    float *serial; /* the serial run's output */
    mode how;
    int mismatches, failures;
    pthread_barrier_t *start;
} job;

static void make_problem(sdpa_inputs *in, int t)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = 1 + t % 2, d.heads_q = 4, d.heads_kv = t % 3 ? 2 : 4;
    d.seq_q = 17 + 5 * t, d.seq_kv = 29 + 3 * t, d.head_dim = 8 + 4 * (t % 3);
    d.causal = (clattn_causal)(t % 3);
    d.dropout_p = t % 2 ? 0.2f : 0.0f, d.dropout_seed = 100 + (uint64_t)t;
    if (t % 4 == 1) {
        d.mask_type = CLATTN_MASK_ADDITIVE;
        d.mask_dims[0] = 1, d.mask_dims[1] = d.heads_q, d.mask_dims[2] = 1;
        d.mask_dims[3] = d.seq_kv;
    }
    sdpa_inputs_make(in, &d, t % 2, 1000 + (uint64_t)t);
}

static cl_mem upload(cl_context c, const void *x, size_t bytes)
{
    return clCreateBuffer(c, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes,
                          (void *)x, NULL);
}

/* One SDPA through the device entry point, on queue (NULL: the context's). */
static clattn_status run_device(job *j, cl_command_queue queue, float *out)
{
    const sdpa_inputs *in = &j->in;
    const clattn_sdpa_desc *d = &in->desc;
    size_t hkv = d->heads_kv, dv = d->head_dim;
    size_t dq[4] = {d->batch, d->heads_q, d->seq_q, d->head_dim};
    size_t dk[4] = {d->batch, hkv, d->seq_kv, d->head_dim};
    size_t dvv[4] = {d->batch, hkv, d->seq_kv, dv};
    size_t dout[4] = {d->batch, d->heads_q, d->seq_q, dv};
    cl_context c = j->info.cl_ctx;
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, upload(c, in->q, in->n_q * 4), 0, dq);
    clattn_tensor_contiguous(&t.k, upload(c, in->k, in->n_k * 4), 0, dk);
    clattn_tensor_contiguous(&t.v, upload(c, in->v, in->n_v * 4), 0, dvv);
    clattn_tensor_contiguous(
        &t.out, clCreateBuffer(c, CL_MEM_READ_WRITE, in->n_out * 4, NULL, NULL),
        0, dout);
    if (in->mask)
        clattn_tensor_contiguous(&t.mask, upload(c, in->mask, in->n_mask * 4),
                                 0, d->mask_dims);
    cl_event done = NULL;
    clattn_status s = clattn_sdpa_on_queue(
        j->ctx, queue, d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
    if (s == CLATTN_SUCCESS) {
        clEnqueueReadBuffer(queue ? queue : j->info.queue, t.out.buffer,
                            CL_TRUE, 0, in->n_out * 4, out, 1, &done, NULL);
        clReleaseEvent(done);
    }
    sdpa_tensors_release(&t);
    return s;
}

static void *worker(void *arg)
{
    job *j = arg;
    cl_command_queue own = NULL;
    if (j->how == DEVICE_OWN_QUEUE)
        own = clCreateCommandQueue(j->info.cl_ctx, j->info.device, 0, NULL);
    float *out = malloc(j->in.n_out * sizeof *out);
    pthread_barrier_wait(j->start);
    for (int r = 0; r < REPEATS; ++r) {
        clattn_status s =
            j->how == HOST
                ? clattn_sdpa_host(j->ctx, &j->in.desc, j->in.q, j->in.k,
                                   j->in.v, j->in.mask, out, NULL)
                : run_device(j, own, out);
        if (s != CLATTN_SUCCESS)
            ++j->failures;
        else if (memcmp(out, j->serial, j->in.n_out * sizeof *out) != 0)
            ++j->mismatches;
    }
    free(out);
    if (own)
        clReleaseCommandQueue(own);
    return NULL;
}

int main(void)
{
    clattn_context *ctx = test_context();
    static job jobs[THREADS];
    for (int t = 0; t < THREADS; ++t) {
        job *j = &jobs[t];
        j->ctx = ctx;
        clattn_context_info(ctx, &j->info);
        make_problem(&j->in, t);
        j->serial = malloc(j->in.n_out * sizeof(float));
        clattn_status s =
            clattn_sdpa_host(ctx, &j->in.desc, j->in.q, j->in.k, j->in.v,
                             j->in.mask, j->serial, NULL);
        CHECK(s == CLATTN_SUCCESS, "serial run %d: %s", t,
              clattn_status_string(s));
        /* The serial result is itself right (so identical bits mean right
           bits): against the reference. */
        sdpa_case_check(ctx, "serial", &j->in);
    }
    for (int m = HOST; m <= DEVICE_OWN_QUEUE; ++m) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, THREADS);
        for (int t = 0; t < THREADS; ++t) {
            jobs[t].how = (mode)m;
            jobs[t].mismatches = jobs[t].failures = 0;
            jobs[t].start = &start;
        }
        test_threads(THREADS, worker, jobs, sizeof jobs[0]);
        int mismatches = 0, failures = 0;
        for (int t = 0; t < THREADS; ++t) {
            mismatches += jobs[t].mismatches;
            failures += jobs[t].failures;
        }
        pthread_barrier_destroy(&start);
        CHECK(failures == 0, "%s: %d calls failed", mode_names[m], failures);
        CHECK(mismatches == 0, "%s: %d results differ from the serial bits",
              mode_names[m], mismatches);
        printf("%s: %d threads x %d calls, bits identical to serial\n",
               mode_names[m], THREADS, REPEATS);
    }
    for (int t = 0; t < THREADS; ++t) {
        free(jobs[t].serial);
        sdpa_inputs_free(&jobs[t].in);
    }
    clattn_context_destroy(ctx);
    return test_finish("test_concurrency");
}
