/* The device-buffer entry point: strided views read in place (BHSD, BSHD,
   the packed output of a fused QKV projection, stride-0 broadcast), output
   views inside larger buffers (nothing written outside them), the row
   log-sum-exp, the chunked scratch path, wait lists and events, and a
   context wrapped around the caller's own queue. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "reference.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float SENTINEL = -12345.0f;

typedef struct dev {
    clattn_context *ctx;
    cl_context cl;
    cl_command_queue queue;
} dev;

static cl_mem upload(dev *d, const float *x, size_t n)
{
    cl_int err;
    cl_mem m = clCreateBuffer(d->cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              n * sizeof(float), (void *)x, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer: %d", err);
    return m;
}

static cl_mem sentinel_buffer(dev *d, size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; ++i)
        x[i] = SENTINEL;
    cl_mem m = upload(d, x, n);
    free(x);
    return m;
}

static float *download(dev *d, cl_mem m, size_t n)
{
    float *x = malloc(n * sizeof *x);
    cl_int err = clEnqueueReadBuffer(d->queue, m, CL_TRUE, 0, n * sizeof *x, x,
                                     0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", err);
    return x;
}

/* Element (b, h, s, f) of a view. */
static size_t at(const clattn_tensor *t, size_t b, size_t h, size_t s, size_t f)
{
    return t->offset + b * t->strides[0] + h * t->strides[1] +
           s * t->strides[2] + f;
}

/* Copies contiguous [B][H][S][D] host data into a host array laid out as
   view t describes. */
static void scatter(float *dst, const clattn_tensor *t, const float *src,
                    const size_t dims[4])
{
    size_t i = 0;
    for (size_t b = 0; b < dims[0]; ++b)
        for (size_t h = 0; h < dims[1]; ++h)
            for (size_t s = 0; s < dims[2]; ++s)
                for (size_t f = 0; f < dims[3]; ++f)
                    dst[at(t, b, h, s, f)] = src[i++];
}

/* Checks an output view of a downloaded buffer of n elements against the
   reference, and that every element outside the view is the sentinel. */
static void check_output(const char *name, const float *buf, size_t n,
                         const clattn_tensor *t, const size_t dims[4],
                         const double *want)
{
    char *inside = calloc(n, 1);
    float *got = malloc(dims[0] * dims[1] * dims[2] * dims[3] * sizeof *got);
    size_t i = 0;
    for (size_t b = 0; b < dims[0]; ++b)
        for (size_t h = 0; h < dims[1]; ++h)
            for (size_t s = 0; s < dims[2]; ++s)
                for (size_t f = 0; f < dims[3]; ++f) {
                    size_t e = at(t, b, h, s, f);
                    inside[e] = 1;
                    got[i++] = buf[e];
                }
    CHECK(compare_close(name, got, want, i, TOL_ATOL, TOL_RTOL) == 0,
          "%s: values", name);
    size_t outside_written = 0;
    for (size_t e = 0; e < n; ++e)
        outside_written += !inside[e] && buf[e] != SENTINEL;
    CHECK(outside_written == 0, "%s: %zu elements written outside the view",
          name, outside_written);
    free(inside);
    free(got);
}

static clattn_status run_sync(dev *d, const clattn_sdpa_desc *desc,
                              const clattn_sdpa_tensors *t)
{
    cl_event done = NULL;
    clattn_status s =
        clattn_sdpa(d->ctx, desc, t, CLATTN_SDPA_PATH_AUTO, 0, NULL, &done);
    CHECK(s == CLATTN_SUCCESS, "clattn_sdpa: %s: %s", clattn_status_string(s),
          clattn_context_last_error(d->ctx));
    if (done) {
        CHECK(clWaitForEvents(1, &done) == CL_SUCCESS, "wait");
        clReleaseEvent(done);
    }
    return s;
}

/* BSHD inputs and output, output and probs inside larger buffers at an
   offset, and the log-sum-exp, against the reference. */
static void bshd_layout(dev *d, int causal)
{
    clattn_sdpa_desc desc;
    clattn_sdpa_desc_init(&desc);
    desc.batch = 2, desc.heads_q = 4, desc.heads_kv = 2, desc.seq_q = 37;
    desc.seq_kv = 45, desc.head_dim = 24, desc.head_dim_v = 12;
    desc.causal = (clattn_causal)causal;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &desc, 1, 17 + causal);
    const size_t B = 2, Hq = 4, Hkv = 2, Sq = 37, Skv = 45, D = 24, Dv = 12;

    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    /* [B][S][H][D] with padding between rows, and a leading offset. */
    size_t qd[4] = {B, Hq, Sq, D}, kd[4] = {B, Hkv, Skv, D},
           vd[4] = {B, Hkv, Skv, Dv}, od[4] = {B, Hq, Sq, Dv},
           pd[4] = {B, Hq, Sq, Skv}, ld[4] = {B, Hq, Sq, 1};
    size_t q_row = Hq * D + 3, k_row = Hkv * D + 1, v_row = Hkv * Dv,
           o_row = Hq * Dv + 5;
    clattn_tensor q = {0, 11, {Sq * q_row, D, q_row, 1}};
    clattn_tensor k = {0, 0, {Skv * k_row, D, k_row, 1}};
    clattn_tensor v = {0, 2, {Skv * v_row, Dv, v_row, 1}};
    clattn_tensor o = {0, 7, {Sq * o_row, Dv, o_row, 1}};
    size_t nq = 11 + B * Sq * q_row, nk = B * Skv * k_row,
           nv = 2 + B * Skv * v_row, no = 7 + B * Sq * o_row + 9;
    float *hq = calloc(nq, 4), *hk = calloc(nk, 4), *hv = calloc(nv, 4);
    scatter(hq, &q, in.q, qd);
    scatter(hk, &k, in.k, kd);
    scatter(hv, &v, in.v, vd);
    t.q = q, t.k = k, t.v = v, t.out = o;
    t.q.buffer = upload(d, hq, nq);
    t.k.buffer = upload(d, hk, nk);
    t.v.buffer = upload(d, hv, nv);
    t.out.buffer = sentinel_buffer(d, no);
    /* probs contiguous after 5 elements; lse with a row stride of 2. */
    size_t np = 5 + in.n_probs + 3, nl = 1 + B * Hq * Sq * 2;
    clattn_tensor_contiguous(&t.probs, sentinel_buffer(d, np), 5, pd);
    clattn_tensor lse = {
        sentinel_buffer(d, nl), 1, {Hq * Sq * 2, Sq * 2, 2, 1}};
    t.lse = lse;

    if (run_sync(d, &in.desc, &t) == CLATTN_SUCCESS) {
        double *wo = malloc(in.n_out * sizeof *wo);
        double *wp = malloc(in.n_probs * sizeof *wp);
        double *wl = malloc(B * Hq * Sq * sizeof *wl);
        ref_sdpa(&in.desc, in.q, in.k, in.v, NULL, wo, wp, wl);
        float *go = download(d, t.out.buffer, no);
        float *gp = download(d, t.probs.buffer, np);
        float *gl = download(d, t.lse.buffer, nl);
        check_output("bshd out", go, no, &t.out, od, wo);
        check_output("bshd probs", gp, np, &t.probs, pd, wp);
        check_output("bshd lse", gl, nl, &t.lse, ld, wl);
        free(wo), free(wp), free(wl), free(go), free(gp), free(gl);
    }
    sdpa_tensors_release(&t);
    free(hq), free(hk), free(hv);
    sdpa_inputs_free(&in);
}

/* t's out (of dims) against the reference of in, without mask. */
static void check_out(dev *d, const char *what, const sdpa_inputs *in,
                      const clattn_sdpa_tensors *t, const size_t dims[4])
{
    double *wo = malloc(in->n_out * sizeof *wo);
    ref_sdpa(&in->desc, in->q, in->k, in->v, NULL, wo, NULL, NULL);
    float *go = download(d, t->out.buffer, in->n_out);
    check_output(what, go, in->n_out, &t->out, dims, wo);
    free(wo), free(go);
}

/* Self-attention read in place from a fused QKV projection's output
   [B, S, 3, H, D]; K and V shared by both batches through stride 0. */
static void packed_qkv_and_broadcast(dev *d)
{
    const size_t B = 2, S = 29, H = 3, D = 16;
    sdpa_inputs in;
    sdpa_inputs_plain(&in, B, H, S, S, D, 23);
    /* Make batch 1's K and V equal to batch 0's, so that stride 0 over the
       batch is the same problem. */
    memcpy(in.k + H * S * D, in.k, H * S * D * sizeof(float));
    memcpy(in.v + H * S * D, in.v, H * S * D * sizeof(float));

    size_t n = B * S * 3 * H * D;
    float *packed = calloc(n, sizeof *packed);
    size_t dims[4] = {B, H, S, D}, kv_dims[4] = {1, H, S, D};
    clattn_tensor q = {0, 0, {S * 3 * H * D, D, 3 * H * D, 1}};
    clattn_tensor k = {0, H * D, {S * 3 * H * D, D, 3 * H * D, 1}};
    clattn_tensor v = {0, 2 * H * D, {S * 3 * H * D, D, 3 * H * D, 1}};
    scatter(packed, &q, in.q, dims);
    scatter(packed, &k, in.k, kv_dims);
    scatter(packed, &v, in.v, kv_dims);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    cl_mem buf = upload(d, packed, n);
    t.q = q, t.k = k, t.v = v;
    t.q.buffer = t.k.buffer = t.v.buffer = buf;
    t.k.strides[0] = t.v.strides[0] = 0; /* broadcast over the batch */
    clattn_tensor_contiguous(&t.out, sentinel_buffer(d, in.n_out), 0, dims);
    if (run_sync(d, &in.desc, &t) == CLATTN_SUCCESS) {
        check_out(d, "packed qkv", &in, &t, dims);
    }
    clReleaseMemObject(buf);
    clReleaseMemObject(t.out.buffer);
    free(packed);
    sdpa_inputs_free(&in);
}

/* q, k, v uploaded from in and a sentinel out, all contiguous with the
   same dims (a problem with seq_q = seq_kv and head_dim_v = head_dim). */
static clattn_sdpa_tensors contiguous_tensors(dev *d, const sdpa_inputs *in,
                                              const size_t dims[4])
{
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    clattn_tensor_contiguous(&t.q, upload(d, in->q, in->n_q), 0, dims);
    clattn_tensor_contiguous(&t.k, upload(d, in->k, in->n_k), 0, dims);
    clattn_tensor_contiguous(&t.v, upload(d, in->v, in->n_v), 0, dims);
    clattn_tensor_contiguous(&t.out, sentinel_buffer(d, in->n_out), 0, dims);
    return t;
}

/* The call waits for its wait list: gated by a user event, nothing runs
   until the event is set. */
static void wait_list(dev *d)
{
    clattn_info info;
    clattn_context_info(d->ctx, &info);
    if (strcmp(info.platform_name, "Oclgrind") == 0) {
        /* Oclgrind 21.10 blocks inside the enqueue until the user event
           completes, which this single thread would never do. */
        printf("wait list: not run on Oclgrind (it blocks on user events)\n");
        return;
    }
    sdpa_inputs in;
    sdpa_inputs_plain(&in, 1, 2, 8, 8, 4, 31);
    size_t dq[4] = {1, 2, 8, 4};
    clattn_sdpa_tensors t = contiguous_tensors(d, &in, dq);
    cl_int err;
    cl_event gate = clCreateUserEvent(d->cl, &err), done = NULL;
    clattn_status s = clattn_sdpa(d->ctx, &in.desc, &t,
                                  CLATTN_SDPA_PATH_UNFUSED, 1, &gate, &done);
    CHECK(s == CLATTN_SUCCESS, "gated call: %s", clattn_status_string(s));
    cl_int state = CL_COMPLETE;
    if (done) {
        clFlush(d->queue);
        clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state,
                       &state, NULL);
    }
    CHECK(state != CL_COMPLETE, "work ran before its wait list completed");
    clSetUserEventStatus(gate, CL_COMPLETE);
    if (done) {
        CHECK(clWaitForEvents(1, &done) == CL_SUCCESS, "wait for done");
        clReleaseEvent(done);
        check_out(d, "gated", &in, &t, dq);
    }
    clReleaseEvent(gate);
    sdpa_tensors_release(&t);
    sdpa_inputs_free(&in);
}

/* A queue of another OpenCL context is refused, and nothing is written;
   a queue of the context's own is accepted. */
static void foreign_queue(dev *d)
{
    sdpa_inputs in;
    sdpa_inputs_plain(&in, 1, 1, 4, 4, 4, 37);
    size_t dims[4] = {1, 1, 4, 4};
    clattn_sdpa_tensors t = contiguous_tensors(d, &in, dims);
    clattn_info info;
    clattn_context_info(d->ctx, &info);
    cl_int err;
    cl_context other = clCreateContext(NULL, 1, &info.device, NULL, NULL, &err);
    cl_command_queue foreign =
        clCreateCommandQueue(other, info.device, 0, &err);
    clattn_status s = clattn_sdpa_on_queue(
        d->ctx, foreign, &in.desc, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT, "foreign queue: %s",
          clattn_status_string(s));
    float *got = download(d, t.out.buffer, in.n_out);
    size_t written = 0;
    for (size_t i = 0; i < in.n_out; ++i)
        written += got[i] != SENTINEL;
    CHECK(written == 0, "foreign queue: %zu elements written", written);
    free(got);
    cl_command_queue own =
        clCreateCommandQueue(info.cl_ctx, info.device, 0, &err);
    s = clattn_sdpa_on_queue(d->ctx, own, &in.desc, &t, CLATTN_SDPA_PATH_AUTO,
                             0, NULL, NULL);
    CHECK(s == CLATTN_SUCCESS && clFinish(own) == CL_SUCCESS,
          "a queue of the context's own: %s", clattn_status_string(s));
    clReleaseCommandQueue(own);
    clReleaseCommandQueue(foreign);
    clReleaseContext(other);
    sdpa_tensors_release(&t);
    sdpa_inputs_free(&in);
}

/* With a tiny scratch cap the unfused path runs in chunks: of several
   (batch, head) pairs with whole rows, and of query rows within one pair. */
static void chunked(const char *cap, size_t sq, size_t skv)
{
    setenv("CLATTN_UNFUSED_SCRATCH_BYTES", cap, 1);
    clattn_context *ctx = test_context();
    unsetenv("CLATTN_UNFUSED_SCRATCH_BYTES");
    clattn_sdpa_desc desc;
    clattn_sdpa_desc_init(&desc);
    desc.batch = 3, desc.heads_q = 4, desc.heads_kv = 2, desc.seq_q = sq;
    desc.seq_kv = skv, desc.head_dim = 8;
    if (test_small()) /* fewer chunks, each still a partial one */
        desc.batch = 1, desc.heads_q = 2, desc.heads_kv = 1;
    desc.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    desc.dropout_p = 0.25f, desc.dropout_seed = 5;
    desc.mask_type = CLATTN_MASK_BOOL;
    desc.mask_dims[0] = desc.batch, desc.mask_dims[1] = 1,
    desc.mask_dims[2] = sq;
    desc.mask_dims[3] = skv;
    sdpa_inputs in;
    sdpa_inputs_make(&in, &desc, 1, 41);
    char name[64];
    snprintf(name, sizeof name, "chunked cap=%s", cap);
    sdpa_case_check(ctx, name, &in);
    sdpa_inputs_free(&in);
    clattn_context_destroy(ctx);
}

/* A context around the caller's own OpenCL objects. */
static void from_queue(void)
{
    cl_platform_id platform;
    cl_device_id device;
    cl_int err = clGetPlatformIDs(1, &platform, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL);
    CHECK(err == CL_SUCCESS, "no device for from_queue");
    if (err != CL_SUCCESS)
        return;
    cl_context cl = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    cl_command_queue queue = clCreateCommandQueue(cl, device, 0, &err);
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create_from_queue(queue, &ctx);
    CHECK(s == CLATTN_SUCCESS, "from_queue: %s: %s", clattn_status_string(s),
          clattn_context_last_error(ctx));
    clattn_info info;
    if (s == CLATTN_SUCCESS &&
        clattn_context_info(ctx, &info) == CLATTN_SUCCESS) {
        CHECK(info.queue == queue && info.cl_ctx == cl && info.device == device,
              "info names the caller's objects");
        CHECK(info.platform_index == -1, "wrapped queue has no index");
        dev d = {ctx, cl, queue};
        packed_qkv_and_broadcast(&d);
    }
    clattn_context_destroy(ctx);
    /* The queue is the caller's: still usable after destroy. */
    CHECK(clFinish(queue) == CL_SUCCESS, "caller's queue survives destroy");
    clReleaseCommandQueue(queue);
    clReleaseContext(cl);
    clattn_context *none = (clattn_context *)1;
    CHECK(clattn_context_create_from_queue(NULL, &none) ==
                  CLATTN_ERROR_INVALID_ARGUMENT &&
              none == NULL,
          "NULL queue");
}

int main(void)
{
    clattn_context *ctx = test_context();
    clattn_info info;
    clattn_context_info(ctx, &info);
    dev d = {ctx, info.cl_ctx, info.queue};
    bshd_layout(&d, CLATTN_CAUSAL_NONE);
    bshd_layout(&d, CLATTN_CAUSAL_TOP_LEFT);
    packed_qkv_and_broadcast(&d);
    wait_list(&d);
    foreign_queue(&d);
    clattn_context_destroy(ctx);
    /* 70 keys x 4 bytes = 280 bytes a row: 3 rows per chunk, then 150. */
    chunked("840", 33, 70);
    chunked("42000", 33, 70);
    from_queue();
    return test_finish("test_sdpa_views");
}
