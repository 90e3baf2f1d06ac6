/* K and V in fp16 and bf16 (clattn_sdpa_desc's k_dtype, v_dtype). Both
   widen to fp32 exactly, so a call on 16-bit K/V must give the same bits
   as the fp32 call on the widened values: on every path (AUTO, unfused,
   fused-cpu, fused-gpu; the GPU-class unfused kernels where the CTest sets
   CLATTN_KERNEL_CLASS=gpu), with probs and lse, masks, causal, key
   lengths, dropout, GQA decode with split keys and strided views. The
   fp32 call itself is checked against the double reference. Then the
   validation: a dtype out of range, views measured in their own element
   size, and the host entry point refusing 16-bit K/V, nothing written. */
#include "kv_convert.h"
#include "reference.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float SENTINEL = -12345.0f;

static cl_mem upload(cl_context cl, const void *host, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              bytes, (void *)host, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer: %d", err);
    return m;
}

static float *download(cl_command_queue q, cl_mem m, size_t n)
{
    float *x = malloc(n * sizeof *x);
    cl_int err =
        clEnqueueReadBuffer(q, m, CL_TRUE, 0, n * sizeof *x, x, 0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", err);
    return x;
}

static clattn_tensor contiguous(cl_mem m, const size_t dims[4], size_t offset)
{
    clattn_tensor t = {
        m,
        offset,
        {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1}};
    return t;
}

/* A strided K or V view: [B][S][H][D] rows with a gap of 3 elements, at
   offset 5, as a fused projection's output would be laid out; host is
   the contiguous [B][H][S][D] data in elem-byte elements. */
static cl_mem upload_bshd(cl_context cl, const void *host, size_t elem,
                          const size_t dims[4], clattn_tensor *t)
{
    const size_t B = dims[0], H = dims[1], S = dims[2], D = dims[3];
    const size_t row = H * D + 3, n = 5 + B * S * row;
    unsigned char *buf = calloc(n, elem);
    const unsigned char *src = host;
    for (size_t b = 0; b < B; ++b)
        for (size_t h = 0; h < H; ++h)
            for (size_t s = 0; s < S; ++s)
                memcpy(buf + (5 + b * S * row + s * row + h * D) * elem,
                       src + (((b * H + h) * S + s) * D) * elem, D * elem);
    cl_mem m = upload(cl, buf, n * elem);
    free(buf);
    const clattn_tensor view = {m, 5, {S * row, D, row, 1}};
    *t = view;
    return m;
}

typedef struct outputs {
    float *out, *probs, *lse;
} outputs;

static void outputs_free(outputs *o)
{
    free(o->out);
    free(o->probs);
    free(o->lse);
}

/* One call on K/V given as words (16-bit, or NULL: the fp32 values kf,
   vf) with the desc's dtypes; out, probs (when want_probs) and lse read
   back. Returns the status; *o is filled only on success. */
static clattn_status run(clattn_context *ctx, const clattn_sdpa_desc *desc,
                         const sdpa_inputs *in, const float *kf,
                         const float *vf, const uint16_t *kw,
                         const uint16_t *vw, int strided, clattn_sdpa_path path,
                         int want_probs, outputs *o)
{
    clattn_info info;
    clattn_context_info(ctx, &info);
    const size_t B = desc->batch, Hq = desc->heads_q, Hkv = desc->heads_kv,
                 Sq = desc->seq_q, Skv = desc->seq_kv, D = desc->head_dim,
                 Dv = desc->head_dim_v;
    const size_t qd[4] = {B, Hq, Sq, D}, kd[4] = {B, Hkv, Skv, D},
                 vd[4] = {B, Hkv, Skv, Dv}, od[4] = {B, Hq, Sq, Dv},
                 pd[4] = {B, Hq, Sq, Skv}, ld[4] = {B, Hq, Sq, 1};
    const size_t ke = kw ? 2 : 4, ve = vw ? 2 : 4;
    const void *kh = kw ? (const void *)kw : (const void *)kf;
    const void *vh = vw ? (const void *)vw : (const void *)vf;
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q = contiguous(upload(info.cl_ctx, in->q, in->n_q * 4), qd, 0);
    if (strided) {
        upload_bshd(info.cl_ctx, kh, ke, kd, &t.k);
        upload_bshd(info.cl_ctx, vh, ve, vd, &t.v);
    } else {
        t.k = contiguous(upload(info.cl_ctx, kh, in->n_k * ke), kd, 0);
        t.v = contiguous(upload(info.cl_ctx, vh, in->n_v * ve), vd, 0);
    }
    if (desc->mask_type != CLATTN_MASK_NONE) {
        const size_t me = desc->mask_type == CLATTN_MASK_BOOL ? 1 : 4;
        t.mask = contiguous(upload(info.cl_ctx, in->mask, in->n_mask * me),
                            desc->mask_dims, 0);
    }
    cl_mem filled[3];
    const size_t counts[3] = {in->n_out, in->n_probs, B * Hq * Sq};
    for (int i = 0; i < 3; ++i)
        filled[i] = test_buffer_filled(info.cl_ctx, counts[i], SENTINEL);
    t.out = contiguous(filled[0], od, 0);
    if (want_probs)
        t.probs = contiguous(filled[1], pd, 0);
    t.lse = contiguous(filled[2], ld, 0);
    cl_event done = NULL;
    clattn_status s = clattn_sdpa(ctx, desc, &t, path, 0, NULL, &done);
    if (done) {
        CHECK(clWaitForEvents(1, &done) == CL_SUCCESS, "wait");
        clReleaseEvent(done);
    }
    if (s == CLATTN_SUCCESS) {
        o->out = download(info.queue, filled[0], in->n_out);
        o->probs =
            want_probs ? download(info.queue, filled[1], in->n_probs) : NULL;
        o->lse = download(info.queue, filled[2], counts[2]);
    } else {
        /* Nothing written on error. */
        CHECK(test_buffer_holds(info.queue, filled[0], in->n_out, SENTINEL),
              "out written by a failed call");
    }
    if (!want_probs)
        clReleaseMemObject(filled[1]);
    sdpa_tensors_release(&t);
    return s;
}

static int same_bits(const float *a, const float *b, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; ++i)
        if (memcmp(&a[i], &b[i], sizeof *a) != 0) {
            *at = i;
            return 0;
        }
    return 1;
}

static const char *path_label(clattn_sdpa_path p)
{
    return clattn_sdpa_path_name(p);
}

/* Writes the dtype's special values into the first words of x (and
   their widened values into xf): subnormals, signed zeros, the largest
   finite value, and with infinities the infinities too. */
static void put_specials(clattn_dtype dtype, uint16_t *w, float *xf, size_t n,
                         int infinities)
{
    static const uint16_t fp16[] = {0x0001, 0x83ff, 0x0000, 0x8000,
                                    0x7bff, 0x03ff, 0x7c00, 0xfc00};
    static const uint16_t bf16[] = {0x0001, 0x807f, 0x0000, 0x8000,
                                    0x7f7f, 0x0080, 0x7f80, 0xff80};
    if (!w)
        return;
    const size_t count = infinities ? 8 : 6;
    for (size_t i = 0; i < count && i < n; ++i) {
        /* Spread over the rows: every 7th element. */
        const size_t at = (i * 7 * 131) % n;
        w[at] = dtype == CLATTN_DTYPE_FP16 ? fp16[i] : bf16[i];
        xf[at] = dtype == CLATTN_DTYPE_FP16 ? test_from_fp16(w[at])
                                            : test_from_bf16(w[at]);
    }
}

/* The case at every dtype pair and path: 16-bit K/V against fp32 K/V of
   the same values, bit for bit. specials: K and V also hold the types'
   subnormals, zeros and largest values, V its infinities (the outputs
   are then inf or NaN in places: compared bit for bit, not against the
   reference). */
static void check_case(clattn_context *ctx, const char *name,
                       const clattn_sdpa_desc *base, int want_key_lengths,
                       int strided, int specials, uint64_t seed)
{
    static const clattn_dtype pairs[][2] = {
        {CLATTN_DTYPE_FP16, CLATTN_DTYPE_FP16},
        {CLATTN_DTYPE_BF16, CLATTN_DTYPE_BF16},
        {CLATTN_DTYPE_FP16, CLATTN_DTYPE_BF16},
        {CLATTN_DTYPE_FP32, CLATTN_DTYPE_FP16},
    };
    static const clattn_sdpa_path paths[] = {
        CLATTN_SDPA_PATH_AUTO, CLATTN_SDPA_PATH_UNFUSED,
        CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU};
    /* Each pair builds its own programs (a cold build is seconds each on
       PoCL): the mixed pairs run AUTO only; under CLATTN_TEST_SMALL
       (Oclgrind) only the first two pairs run. */
    const size_t npairs = test_small() ? 2 : sizeof pairs / sizeof pairs[0];
    for (size_t pi = 0; pi < npairs; ++pi) {
        sdpa_inputs in;
        sdpa_inputs_make(&in, base, want_key_lengths, seed + pi);
        clattn_sdpa_desc desc = in.desc;
        uint16_t *kw = test_round_to(pairs[pi][0], in.k, in.n_k);
        uint16_t *vw = test_round_to(pairs[pi][1], in.v, in.n_v);
        if (specials) {
            put_specials(pairs[pi][0], kw, in.k, in.n_k, 0);
            put_specials(pairs[pi][1], vw, in.v, in.n_v, 1);
        }

        /* The fp32 call on the rounded values, against the reference. */
        double *want = malloc(in.n_out * sizeof *want);
        ref_sdpa(&desc, in.q, in.k, in.v, in.mask, want, NULL, NULL);
        const size_t npaths = pi < 2 ? sizeof paths / sizeof paths[0] : 1;
        for (size_t ai = 0; ai < npaths; ++ai)
            for (int probs = 0; probs < 2; ++probs) {
                const clattn_sdpa_path path = paths[ai];
                if (probs && path == CLATTN_SDPA_PATH_FUSED_GPU)
                    continue; /* refuses probs, as for fp32 */
                char label[160];
                snprintf(label, sizeof label, "%s k %s v %s %s%s", name,
                         clattn_dtype_name(pairs[pi][0]),
                         clattn_dtype_name(pairs[pi][1]), path_label(path),
                         probs ? " probs" : "");
                outputs a = {0}, b = {0};
                clattn_sdpa_desc d32 = desc;
                d32.k_dtype = d32.v_dtype = CLATTN_DTYPE_FP32;
                clattn_status s = run(ctx, &d32, &in, in.k, in.v, NULL, NULL, 0,
                                      path, probs, &a);
                CHECK_SUCCESS(ctx, s, "%s (fp32 K/V)", label);
                desc.k_dtype = pairs[pi][0];
                desc.v_dtype = pairs[pi][1];
                clattn_status s16 = run(ctx, &desc, &in, in.k, in.v, kw, vw,
                                        strided, path, probs, &b);
                CHECK(s16 == CLATTN_SUCCESS, "%s: %s: %s", label,
                      clattn_status_string(s16),
                      clattn_context_last_error(ctx));
                if (s != CLATTN_SUCCESS || s16 != CLATTN_SUCCESS) {
                    outputs_free(&a);
                    outputs_free(&b);
                    continue;
                }
                if (path == CLATTN_SDPA_PATH_AUTO && !probs && !specials &&
                    desc.dropout_p == 0.0f)
                    CHECK(compare_close(label, a.out, want, in.n_out, TOL_ATOL,
                                        TOL_RTOL) == 0,
                          "%s: fp32 call against the reference", label);
                size_t at = 0;
                CHECK(same_bits(a.out, b.out, in.n_out, &at),
                      "%s: out[%zu] %.9g, fp32 K/V gave %.9g", label, at,
                      (double)b.out[at], (double)a.out[at]);
                CHECK(same_bits(a.lse, b.lse,
                                desc.batch * desc.heads_q * desc.seq_q, &at),
                      "%s: lse[%zu] differs", label, at);
                if (probs)
                    CHECK(same_bits(a.probs, b.probs, in.n_probs, &at),
                          "%s: probs[%zu] differs", label, at);
                outputs_free(&a);
                outputs_free(&b);
            }
        free(want);
        free(kw);
        free(vw);
        sdpa_inputs_free(&in);
    }
}

static clattn_sdpa_desc shape(size_t B, size_t Hq, size_t Hkv, size_t Sq,
                              size_t Skv, size_t D, size_t Dv)
{
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = B, d.heads_q = Hq, d.heads_kv = Hkv, d.seq_q = Sq;
    d.seq_kv = Skv, d.head_dim = D, d.head_dim_v = Dv;
    return d;
}

static void equality_cases(clattn_context *ctx)
{
    const int small = test_small();
    /* GQA decode: rows of 4 query heads per K/V head, keys split. */
    clattn_sdpa_desc d = shape(small ? 1 : 2, 8, 2, 1, small ? 520 : 600,
                               small ? 16 : 64, small ? 16 : 64);
    check_case(ctx, "gqa decode", &d, 1, 0, 0, 11);
    /* Decode rows of one head, bool mask per head, bottom-right causal. */
    d = shape(1, 3, 3, 5, 70, 16, 16);
    d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    d.mask_type = CLATTN_MASK_BOOL;
    d.mask_dims[0] = 1, d.mask_dims[1] = 3, d.mask_dims[2] = 5,
    d.mask_dims[3] = 70;
    check_case(ctx, "decode mask causal", &d, 0, 0, 0, 21);
    /* Prompt rows (packed K/V on CPU-class paths), GQA, Dv != D, odd
       sizes, top-left causal, additive mask, strided BSHD views. */
    const size_t sq = small ? 11 : 37, skv = small ? 13 : 45;
    d = shape(2, 4, 2, sq, skv, 24, 12);
    d.causal = CLATTN_CAUSAL_TOP_LEFT;
    d.mask_type = CLATTN_MASK_ADDITIVE;
    d.mask_dims[0] = 2, d.mask_dims[1] = 1, d.mask_dims[2] = sq,
    d.mask_dims[3] = skv;
    check_case(ctx, "rows additive causal bshd", &d, 1, 1, 0, 31);
    /* Subnormals, zeros, extremes and infinities, decode and rows. */
    d = shape(1, 4, 2, 3, 40, 16, 16);
    check_case(ctx, "decode specials", &d, 0, 0, 1, 51);
    d = shape(1, 2, 2, 12, 40, 16, 16);
    check_case(ctx, "rows specials", &d, 0, 0, 1, 61);
    if (small)
        return;
    /* Dropout at the same positions, a head dim past one 64-block. */
    d = shape(1, 2, 2, 20, 130, 80, 80);
    d.dropout_p = 0.3f, d.dropout_seed = 99, d.dropout_offset = 7;
    check_case(ctx, "dropout d80", &d, 0, 0, 0, 41);
}

/* Validation: a dtype out of range, the views' element sizes, the host
   entry point; nothing written on error. */
static void validation(clattn_context *ctx)
{
    clattn_info info;
    clattn_context_info(ctx, &info);
    sdpa_inputs in;
    sdpa_inputs_plain(&in, 1, 2, 3, 10, 8, 5);
    uint16_t *kw = test_round_to(CLATTN_DTYPE_FP16, in.k, in.n_k);
    uint16_t *vw = test_round_to(CLATTN_DTYPE_FP16, in.v, in.n_v);
    outputs o = {0};

    clattn_sdpa_desc d = in.desc;
    d.k_dtype = (clattn_dtype)3;
    clattn_status s = run(ctx, &d, &in, in.k, in.v, NULL, NULL, 0,
                          CLATTN_SDPA_PATH_AUTO, 0, &o);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT &&
              strstr(clattn_context_last_error(ctx), "k_dtype"),
          "k_dtype 3: %s (%s)", clattn_status_string(s),
          clattn_context_last_error(ctx));
    d = in.desc;
    d.v_dtype = (clattn_dtype)-1;
    s = run(ctx, &d, &in, in.k, in.v, NULL, NULL, 0, CLATTN_SDPA_PATH_AUTO, 0,
            &o);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT &&
              strstr(clattn_context_last_error(ctx), "v_dtype"),
          "v_dtype -1: %s", clattn_status_string(s));

    /* A K buffer that holds the fp16 view exactly is too small for fp32,
       and one element short of it is too small for fp16. */
    const size_t kd[4] = {1, 2, 10, 8};
    cl_mem kh = upload(info.cl_ctx, kw, in.n_k * 2);
    cl_mem kshort = upload(info.cl_ctx, kw, in.n_k * 2 - 2);
    cl_mem vh = upload(info.cl_ctx, vw, in.n_v * 2);
    cl_mem q = upload(info.cl_ctx, in.q, in.n_q * 4);
    cl_mem out = test_buffer_filled(info.cl_ctx, in.n_out, SENTINEL);
    const size_t qd[4] = {1, 2, 3, 8};
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    t.q = contiguous(q, qd, 0);
    t.k = contiguous(kh, kd, 0);
    t.v = contiguous(vh, kd, 0);
    t.out = contiguous(out, qd, 0);
    d = in.desc;
    d.k_dtype = d.v_dtype = CLATTN_DTYPE_FP16;
    s = clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    CHECK_SUCCESS(ctx, s, "%s", "fp16 K/V in buffers of their size");
    clFinish(info.queue);
    d.k_dtype = CLATTN_DTYPE_FP32;
    cl_mem fresh = test_buffer_filled(info.cl_ctx, in.n_out, SENTINEL);
    t.out = contiguous(fresh, qd, 0);
    s = clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    CHECK(s == CLATTN_ERROR_BUFFER_TOO_SMALL &&
              strstr(clattn_context_last_error(ctx), "k"),
          "fp16-sized K as fp32: %s (%s)", clattn_status_string(s),
          clattn_context_last_error(ctx));
    d.k_dtype = CLATTN_DTYPE_FP16;
    t.k = contiguous(kshort, kd, 0);
    s = clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    CHECK(s == CLATTN_ERROR_BUFFER_TOO_SMALL, "K one fp16 element short: %s",
          clattn_status_string(s));
    clFinish(info.queue);
    CHECK(test_buffer_holds(info.queue, fresh, in.n_out, SENTINEL),
          "out written by a refused call");
    /* out overlapping a 16-bit K in the same buffer is refused too: out's
       48 floats over the first 96 of K's 160 halves. */
    t.k = contiguous(kh, kd, 0);
    t.out = contiguous(kh, qd, 0);
    s = clattn_sdpa(ctx, &d, &t, CLATTN_SDPA_PATH_AUTO, 0, NULL, NULL);
    CHECK(s == CLATTN_ERROR_INVALID_ARGUMENT &&
              strstr(clattn_context_last_error(ctx), "overlaps"),
          "out over K: %s", clattn_status_string(s));
    cl_mem all[6] = {kh, kshort, vh, q, out, fresh};
    for (int i = 0; i < 6; ++i)
        clReleaseMemObject(all[i]);

    /* The host entry point takes fp32 arrays only. */
    float *host_out = guarded_alloc(in.n_out);
    for (size_t i = 0; i < in.n_out; ++i)
        host_out[i] = SENTINEL;
    d = in.desc;
    d.v_dtype = CLATTN_DTYPE_BF16;
    s = clattn_sdpa_host(ctx, &d, in.q, in.k, in.v, NULL, host_out, NULL);
    CHECK(s == CLATTN_ERROR_UNSUPPORTED &&
              strstr(clattn_context_last_error(ctx), "bf16"),
          "host call with bf16 V: %s (%s)", clattn_status_string(s),
          clattn_context_last_error(ctx));
    size_t written = 0;
    for (size_t i = 0; i < in.n_out; ++i)
        written += host_out[i] != SENTINEL;
    CHECK(written == 0 && guarded_intact(host_out, in.n_out),
          "host out written by a refused call");
    guarded_free(host_out);

    /* A caller built against the layout before k_dtype and v_dtype: the
       bytes past its struct_size are not read (they hold garbage here),
       so K and V are fp32. */
    {
        clattn_sdpa_desc old = in.desc;
        old.struct_size = offsetof(clattn_sdpa_desc, k_dtype);
        old.k_dtype = old.v_dtype = (clattn_dtype)77;
        float *o32 = guarded_alloc(in.n_out);
        s = clattn_sdpa_host(ctx, &old, in.q, in.k, in.v, NULL, o32, NULL);
        CHECK_SUCCESS(ctx, s, "%s", "the layout before the dtype fields");
        double *want = malloc(in.n_out * sizeof *want);
        ref_sdpa(&in.desc, in.q, in.k, in.v, NULL, want, NULL, NULL);
        CHECK(s != CLATTN_SUCCESS ||
                  compare_close("old layout", o32, want, in.n_out, TOL_ATOL,
                                TOL_RTOL) == 0,
              "the layout before the dtype fields computes in fp32");
        free(want);
        guarded_free(o32);
    }

    CHECK(strcmp(clattn_dtype_name(CLATTN_DTYPE_FP16), "fp16") == 0 &&
              strcmp(clattn_dtype_name(CLATTN_DTYPE_BF16), "bf16") == 0 &&
              strcmp(clattn_dtype_name(CLATTN_DTYPE_FP32), "fp32") == 0 &&
              strcmp(clattn_dtype_name((clattn_dtype)9), "unknown") == 0,
          "clattn_dtype_name");
    free(kw);
    free(vw);
    sdpa_inputs_free(&in);
}

/* The host conversions the suite relies on, on known values. */
static void conversions(void)
{
    CHECK(
        test_to_fp16(1.0f) == 0x3c00 && test_to_fp16(-2.0f) == 0xc000 &&
            test_to_fp16(65504.0f) == 0x7bff && test_to_fp16(1e6f) == 0x7c00 &&
            test_to_fp16(ldexpf(1.0f, -24)) == 0x0001 &&
            test_to_fp16(1.0f + ldexpf(1.0f, -11)) == 0x3c00 && /* tie: even */
            test_to_fp16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02,
        "to_fp16");
    CHECK(test_from_fp16(0x3c01) == 1.0f + ldexpf(1.0f, -10) &&
              test_from_fp16(0x8001) == -ldexpf(1.0f, -24),
          "from_fp16");
    CHECK(test_to_bf16(1.0f) == 0x3f80 && test_from_bf16(0xbf80) == -1.0f &&
              test_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80 && /* tie: even */
              test_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82,
          "bf16");
}

int main(void)
{
    conversions();
    clattn_context *ctx = test_context();
    equality_cases(ctx);
    validation(ctx);
    clattn_context_destroy(ctx);
    return test_finish("test_sdpa_dtypes");
}
