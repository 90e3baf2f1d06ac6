/* Layer cases for clattn-bench: see bench_layer.h. */
#include "bench_layer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t bench_layer_embed(const bench_case *c)
{
    return c->heads_q * c->head_dim;
}

/* Uniform in [-scale, scale): weights of nn.Linear's initial range. */
static float *random_floats(size_t n, unsigned seed, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        return NULL;
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(((seed >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0) * scale);
    }
    return x;
}

static int fail(bench_layer *b, const char *what)
{
    snprintf(b->error, sizeof b->error, "%s: %s", what,
             clattn_context_last_error(b->ctx));
    return -1;
}

static int make_mha(bench_layer *b, size_t e)
{
    float s = 1.0f / sqrtf((float)e);
    float *w_in = random_floats(3 * e * e, 11, s),
          *b_in = random_floats(3 * e, 12, s),
          *w_out = random_floats(e * e, 13, s),
          *b_out = random_floats(e, 14, s);
    int rc = -1;
    if (w_in && b_in && w_out && b_out) {
        clattn_mha_desc d;
        clattn_mha_desc_init(&d);
        d.embed_dim = e;
        d.num_heads = b->c->heads_q;
        d.bias = 1;
        d.batch_first = 1;
        clattn_mha_weights w = {0};
        w.in_proj_weight = w_in;
        w.in_proj_bias = b_in;
        w.out_proj_weight = w_out;
        w.out_proj_bias = b_out;
        rc = clattn_mha_create(b->ctx, &d, &w, &b->mha) == CLATTN_SUCCESS
                 ? 0
                 : fail(b, "clattn_mha_create");
    } else {
        snprintf(b->error, sizeof b->error, "out of memory");
    }
    free(w_in), free(b_in), free(w_out), free(b_out);
    return rc;
}

static int make_talking_heads(bench_layer *b, size_t e)
{
    size_t h = b->c->heads_q;
    float s = 1.0f / sqrtf((float)e), sh = 1.0f / sqrtf((float)h);
    float *w_qkv = random_floats(3 * e * e, 21, s),
          *b_qkv = random_floats(3 * e, 22, s),
          *w_l = random_floats(h * h, 23, sh), *b_l = random_floats(h, 24, sh),
          *w_w = random_floats(h * h, 25, sh), *b_w = random_floats(h, 26, sh),
          *w_p = random_floats(e * e, 27, s), *b_p = random_floats(e, 28, s);
    int rc = -1;
    if (w_qkv && b_qkv && w_l && b_l && w_w && b_w && w_p && b_p) {
        clattn_talking_heads_desc d = {0};
        d.dim = e;
        d.num_heads = h;
        d.qkv_bias = 1; /* CaiT's blocks use qkv_bias=True */
        clattn_talking_heads_weights w = {w_qkv, b_qkv, w_l, b_l,
                                          w_w,   b_w,   w_p, b_p};
        rc = clattn_talking_heads_create(b->ctx, &d, &w, &b->th) ==
                     CLATTN_SUCCESS
                 ? 0
                 : fail(b, "clattn_talking_heads_create");
    } else {
        snprintf(b->error, sizeof b->error, "out of memory");
    }
    free(w_qkv), free(b_qkv), free(w_l), free(b_l);
    free(w_w), free(b_w), free(w_p), free(b_p);
    return rc;
}

int bench_layer_setup(bench_layer *b, clattn_context *ctx, const bench_case *c)
{
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
    b->c = c;
    size_t e = bench_layer_embed(c);
    b->out_elems = c->batch * c->seq_q * e;
    b->caller_bytes = 2 * b->out_elems * sizeof(float);
    clattn_info info;
    if (clattn_context_info(ctx, &info) != CLATTN_SUCCESS)
        return fail(b, "clattn_context_info");
    float *x = random_floats(b->out_elems, 31, 2.0f);
    if (!x) {
        snprintf(b->error, sizeof b->error, "out of memory");
        return -1;
    }
    cl_int e1, e2;
    b->x = clCreateBuffer(info.cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          b->out_elems * sizeof(float), x, &e1);
    b->out = clCreateBuffer(info.cl_ctx, CL_MEM_READ_WRITE,
                            b->out_elems * sizeof(float), NULL, &e2);
    free(x);
    if (e1 != CL_SUCCESS || e2 != CL_SUCCESS) {
        snprintf(b->error, sizeof b->error,
                 "clCreateBuffer failed (%d, %d) for 2 x %zu bytes", (int)e1,
                 (int)e2, b->out_elems * sizeof(float));
        bench_layer_teardown(b);
        return -1;
    }
    if (c->probs) {
        const size_t n = c->batch * (c->op == BENCH_OP_MHA ? 1 : c->heads_q) *
                         c->seq_q * c->seq_q;
        b->weights = clCreateBuffer(info.cl_ctx, CL_MEM_READ_WRITE,
                                    n * sizeof(float), NULL, &e1);
        b->caller_bytes += n * sizeof(float);
        if (e1 != CL_SUCCESS) {
            snprintf(b->error, sizeof b->error,
                     "clCreateBuffer failed (%d) for %zu bytes of weights",
                     (int)e1, n * sizeof(float));
            bench_layer_teardown(b);
            return -1;
        }
    }
    int rc = c->op == BENCH_OP_MHA ? make_mha(b, e) : make_talking_heads(b, e);
    if (rc)
        bench_layer_teardown(b);
    return rc;
}

/* Releases a buffer and forgets it, so teardown may run twice. */
static void release_buffer(cl_mem *m)
{
    if (*m)
        clReleaseMemObject(*m);
    *m = NULL;
}

void bench_layer_teardown(bench_layer *b)
{
    clattn_mha_destroy(b->mha);
    clattn_talking_heads_destroy(b->th);
    b->mha = NULL;
    b->th = NULL;
    release_buffer(&b->x);
    release_buffer(&b->out);
    release_buffer(&b->weights);
}

static cl_command_queue queue_of(bench_layer *b)
{
    clattn_info info;
    return clattn_context_info(b->ctx, &info) == CLATTN_SUCCESS ? info.queue
                                                                : NULL;
}

int bench_layer_poison_output(bench_layer *b)
{
    float nan = NAN;
    cl_command_queue q = queue_of(b);
    cl_int err =
        q ? clEnqueueFillBuffer(q, b->out, &nan, sizeof nan, 0,
                                b->out_elems * sizeof(float), 0, NULL, NULL)
          : CL_INVALID_COMMAND_QUEUE;
    if (err == CL_SUCCESS)
        err = clFinish(q);
    if (err != CL_SUCCESS) {
        snprintf(b->error, sizeof b->error, "poisoning the output: %d",
                 (int)err);
        return -1;
    }
    b->best_ms = -1.0;
    return 0;
}

int bench_layer_call(void *arg, double *event_ms)
{
    bench_layer *b = arg;
    const bench_case *c = b->c;
    clattn_layer_timing t = {0};
    if (b->mha) {
        clattn_mha_call call = {0};
        call.batch = c->batch;
        call.seq_q = call.seq_kv = c->seq_q;
        call.path = b->path;
        call.timing = &t;
        call.need_weights =
            c->probs ? CLATTN_NEED_WEIGHTS_AVERAGE : CLATTN_NEED_WEIGHTS_NONE;
        clattn_mha_buffers io = {0};
        io.query = io.key = io.value = b->x;
        io.out = b->out;
        io.attn_weights = b->weights;
        b->status = clattn_mha_forward(b->mha, &call, &io);
    } else {
        clattn_talking_heads_call call = {c->batch, c->seq_q, b->path, &t};
        b->status = clattn_talking_heads_forward(b->th, &call, b->x, b->out,
                                                 b->weights);
    }
    if (b->status != CLATTN_SUCCESS) {
        snprintf(b->error, sizeof b->error, "%s: %s",
                 clattn_status_string(b->status),
                 clattn_context_last_error(b->ctx));
        return 1;
    }
    *event_ms = t.projection_ms + t.attention_ms + t.other_ms;
    if (b->best_ms < 0 || *event_ms < b->best_ms) {
        b->best_ms = *event_ms;
        b->split = t;
    }
    return 0;
}

int bench_layer_output_finite(bench_layer *b, int *finite)
{
    float *out = malloc(b->out_elems * sizeof *out);
    cl_command_queue q = queue_of(b);
    if (!out || !q ||
        clEnqueueReadBuffer(q, b->out, CL_TRUE, 0, b->out_elems * sizeof *out,
                            out, 0, NULL, NULL) != CL_SUCCESS) {
        free(out);
        snprintf(b->error, sizeof b->error, "reading the output back failed");
        return -1;
    }
    *finite = 1;
    for (size_t i = 0; i < b->out_elems && *finite; ++i)
        *finite = isfinite(out[i]);
    free(out);
    return 0;
}

int bench_layer_blas_init(bench_layer_blas *p, const bench_case *c)
{
    memset(p, 0, sizeof *p);
    p->rows = c->batch * c->seq_q;
    p->embed = bench_layer_embed(c);
    size_t e = p->embed;
    p->x = random_floats(p->rows * e, 41, 2.0f);
    p->w_qkv = random_floats(3 * e * e, 42, 0.05f);
    p->qkv = malloc(p->rows * 3 * e * sizeof(float));
    p->w_out = random_floats(e * e, 43, 0.05f);
    p->y = malloc(p->rows * e * sizeof(float));
    if (p->x && p->w_qkv && p->qkv && p->w_out && p->y)
        return 0;
    bench_layer_blas_free(p);
    return -1;
}

void bench_layer_blas_free(bench_layer_blas *p)
{
    free(p->x), free(p->w_qkv), free(p->qkv), free(p->w_out), free(p->y);
    memset(p, 0, sizeof *p);
}
