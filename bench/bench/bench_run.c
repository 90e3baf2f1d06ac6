/* The host's peers and the per-case loop. */
#include "bench_run.h"

#include "bench_blas.h"
#include "bench_layer.h"
#include "bench_progress.h"
#include "bench_sdpa.h"
#include "bench_torch.h"
#include "reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The answers are compared with an oracle as a sanity check: a wrong
   result must not be reported as fast. The conformance tolerances are
   the test suites' business (tests/); this bound is looser so that fp32
   sums over long sequences pass whatever order they are added in. */
#define CHECK_ATOL 1e-4
#define CHECK_RTOL 1e-3

int bench_run_host(bench_run *run)
{
    bench_host *h = &run->host;
    int available = bench_blas_available(h->blas_note, sizeof h->blas_note,
                                         &h->blas_threads);
    h->blas_status = BENCH_UNSUPPORTED;
    if (!run->opt->peers) {
        snprintf(h->blas_note, sizeof h->blas_note, "not run (--no-peers)");
    } else if (available) {
        const char *suite = run->opt->suite ? run->opt->suite : "";
        /* Square and large enough to reach the BLAS's plateau: 2048^3,
           the figure the fused kernels' targets are stated against. */
        h->sgemm_n = strcmp(suite, "smoke") == 0 ? 256 : 2048;
        bench_progress_step("OpenBLAS sgemm");
        if (bench_blas_sgemm(h->sgemm_n, &run->opt->method, &h->sgemm) == 0) {
            double n = h->sgemm_n;
            h->sgemm_gflops = 2.0 * n * n * n / (h->sgemm.min_ms * 1e6);
            h->blas_status = BENCH_OK;
        } else {
            h->blas_status = BENCH_FAILED;
        }
    }
    if (run->opt->peer_torch) {
        bench_progress_step("PyTorch (one Python process for every case)");
        return bench_torch_run(run);
    }
    return 0;
}

/* What the device paths are checked against, for one case. */
typedef struct oracle {
    const char *name;
    const float *f;  /* the BLAS attention's output */
    const double *d; /* the double-precision reference's */
} oracle;

/* The record of a host BLAS peer, to be run; NULL when it is not: out of
   memory (*rc is -1), or no BLAS (recorded as unsupported, *rc is 0). */
static bench_record *blas_peer_record(bench_run *run, size_t ci,
                                      const char *name, int *rc)
{
    bench_record *r = bench_run_add(run, BENCH_HOST_DEVICE, ci, name);
    *rc = r ? 0 : -1;
    if (r && run->host.blas_status != BENCH_OK) {
        r->status = BENCH_UNSUPPORTED;
        snprintf(r->error, sizeof r->error, "%s", run->host.blas_note);
        return NULL;
    }
    return r;
}

static int run_blas_peer(bench_run *run, size_t ci, const bench_inputs *in,
                         bench_blas_attention *a, oracle *o)
{
    int rc;
    bench_record *r = blas_peer_record(run, ci, "openblas-attention", &rc);
    if (!r)
        return rc;
    bench_progress_step("OpenBLAS attention");
    if (bench_blas_attention_init(a, &run->cases[ci], in) ||
        bench_measure(&run->opt->method, bench_blas_attention_call, a, &r->t)) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return 0;
    }
    r->status = BENCH_OK;
    o->name = "openblas-attention";
    o->f = a->out;
    return 0;
}

/* The reference is slow (double precision, no tiling): one timed call,
   on small cases only. Its answer is the better oracle. */
static int run_reference_peer(bench_run *run, size_t ci, const bench_inputs *in,
                              double **out, oracle *o)
{
    const bench_case *c = &run->cases[ci];
    bench_record *r = bench_run_add(run, BENCH_HOST_DEVICE, ci, "reference");
    if (!r)
        return -1;
    double gflop = bench_case_flops(c) * 1e-9;
    if (gflop > run->opt->ref_max_gflop) {
        r->status = BENCH_UNSUPPORTED;
        snprintf(r->error, sizeof r->error,
                 "not run: %.2f GFLOP is above --ref-max-gflop %.2f", gflop,
                 run->opt->ref_max_gflop);
        return 0;
    }
    *out = malloc(bench_case_o_elems(c) * sizeof **out);
    if (!*out) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return 0;
    }
    bench_progress_step("double-precision reference");
    clattn_sdpa_desc desc;
    bench_case_desc(c, &desc);
    double t0 = bench_now_ms();
    ref_sdpa(&desc, in->q, in->k, in->v, NULL, *out, NULL, NULL);
    r->t.min_ms = r->t.median_ms = bench_now_ms() - t0;
    r->t.reps = 1;
    r->status = BENCH_OK;
    o->name = "reference";
    o->d = *out;
    o->f = NULL;
    return 0;
}

/* After a successful measurement: memory high-water and the check. */
static void finish_path(bench_sdpa *b, bench_record *r, const oracle *o,
                        float *got)
{
    clattn_memory_stats st;
    if (clattn_memory_stats_get(b->ctx, &st) == CLATTN_SUCCESS) {
        r->library_peak_bytes = st.peak_bytes;
        r->mem_peak_bytes = b->caller_bytes + st.peak_bytes;
    }
    r->status = BENCH_OK;
    if (!o->name)
        return;
    if (bench_sdpa_read_output(b, got)) {
        r->status = BENCH_FAILED;
        snprintf(r->error, sizeof r->error, "%s", b->error);
        return;
    }
    bench_compare cmp;
    if (o->d)
        bench_compare_double(got, o->d, b->out_elems, CHECK_ATOL, CHECK_RTOL,
                             &cmp);
    else
        bench_compare_float(got, o->f, b->out_elems, CHECK_ATOL, CHECK_RTOL,
                            &cmp);
    r->check.against = o->name;
    r->check.max_abs_err = cmp.max_abs_err;
    r->check.bad = cmp.bad;
    if (cmp.bad) {
        r->status = BENCH_FAILED;
        snprintf(r->error, sizeof r->error,
                 "wrong answer: %zu of %zu outputs differ from the %s (max "
                 "|diff| %.3g)",
                 cmp.bad, b->out_elems, o->name, cmp.max_abs_err);
    }
}

/* A measurement that did not finish (bench_measure's rc): the call's own
   status and reason, or out of memory when the call itself succeeded. */
static void measure_failed(bench_record *r, int rc, clattn_status status,
                           const char *error)
{
    r->status =
        status == CLATTN_ERROR_UNSUPPORTED ? BENCH_UNSUPPORTED : BENCH_FAILED;
    snprintf(r->error, sizeof r->error, "%s",
             rc == -1 && status == CLATTN_SUCCESS ? "out of memory" : error);
}

/* The record of one path on one device, announced; NULL: out of memory. */
static bench_record *device_path_record(bench_run *run, int di, size_t ci,
                                        clattn_sdpa_path path)
{
    const bench_device *d = &run->devices[di];
    bench_record *r = bench_run_add(run, di, ci, clattn_sdpa_path_name(path));
    if (!r)
        return NULL;
    r->default_variant = path == d->fused;
    char what[160];
    snprintf(what, sizeof what, "%s on %s", r->path, d->cl.id);
    bench_progress_step(what);
    return r;
}

static void run_path(bench_run *run, bench_sdpa *b, bench_record *r,
                     const oracle *o, float *got)
{
    clattn_memory_stats_reset_peak(b->ctx);
    if (bench_sdpa_poison_output(b)) {
        snprintf(r->error, sizeof r->error, "%s", b->error);
        return;
    }
    int rc = bench_measure(&run->opt->method, bench_sdpa_call, b, &r->t);
    if (rc == 0)
        finish_path(b, r, o, got);
    else
        measure_failed(r, rc, b->status, b->error);
}

/* Every path of one case on one device. A device whose buffers cannot
   be made records each path as failed, with the reason. */
static int run_device(bench_run *run, int di, size_t ci, const bench_inputs *in,
                      const oracle *o, float *got)
{
    bench_device *d = &run->devices[di];
    bench_sdpa b;
    int ready = bench_sdpa_setup(&b, d->ctx, &run->cases[ci], in) == 0;
    for (int p = 0; p < run->opt->npaths; ++p) {
        clattn_sdpa_path path = run->opt->paths[p];
        bench_record *r = device_path_record(run, di, ci, path);
        if (!r) {
            if (ready)
                bench_sdpa_teardown(&b);
            return -1;
        }
        if (!ready) {
            snprintf(r->error, sizeof r->error, "%s", b.error);
            continue;
        }
        b.path = path;
        run_path(run, &b, r, o, got);
    }
    if (ready)
        bench_sdpa_teardown(&b);
    return 0;
}

/* A layer case's peer: its projection GEMMs on the host's BLAS, the
   figure the layer's projection time is compared with. */
static int run_projections_peer(bench_run *run, size_t ci)
{
    int rc;
    bench_record *r = blas_peer_record(run, ci, "openblas-projections", &rc);
    if (!r)
        return rc;
    bench_progress_step("OpenBLAS projections");
    bench_layer_blas p;
    if (bench_layer_blas_init(&p, &run->cases[ci])) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return 0;
    }
    if (bench_measure(&run->opt->method, bench_blas_projections_call, &p,
                      &r->t) == 0)
        r->status = BENCH_OK;
    else
        snprintf(r->error, sizeof r->error, "out of memory");
    bench_layer_blas_free(&p);
    return 0;
}

/* Talking-heads has one fused form: it is measured under the device's
   variant, and the other variant's name is not run again. */
static int layer_path_repeats(const bench_case *c, clattn_sdpa_path path,
                              const bench_device *d)
{
    return c->op == BENCH_OP_TALKING_HEADS &&
           (path == CLATTN_SDPA_PATH_FUSED_CPU ||
            path == CLATTN_SDPA_PATH_FUSED_GPU) &&
           path != d->fused;
}

static void run_layer_path(bench_run *run, bench_layer *b, bench_record *r)
{
    clattn_memory_stats_reset_peak(b->ctx);
    if (bench_layer_poison_output(b)) {
        snprintf(r->error, sizeof r->error, "%s", b->error);
        return;
    }
    int rc = bench_measure(&run->opt->method, bench_layer_call, b, &r->t);
    if (rc != 0) {
        measure_failed(r, rc, b->status, b->error);
        return;
    }
    clattn_memory_stats st;
    if (clattn_memory_stats_get(b->ctx, &st) == CLATTN_SUCCESS) {
        r->library_peak_bytes = st.peak_bytes;
        r->mem_peak_bytes = b->caller_bytes + st.peak_bytes;
    }
    r->has_split = 1;
    r->split = b->split;
    int finite = 0;
    if (bench_layer_output_finite(b, &finite)) {
        r->status = BENCH_FAILED;
        snprintf(r->error, sizeof r->error, "%s", b->error);
    } else if (!finite) {
        r->status = BENCH_FAILED;
        snprintf(r->error, sizeof r->error,
                 "wrong answer: a non-finite output");
    } else {
        r->status = BENCH_OK;
    }
}

static int run_layer_device(bench_run *run, int di, size_t ci)
{
    bench_device *d = &run->devices[di];
    const bench_case *c = &run->cases[ci];
    bench_layer b;
    int ready = bench_layer_setup(&b, d->ctx, c) == 0;
    for (int p = 0; p < run->opt->npaths; ++p) {
        clattn_sdpa_path path = run->opt->paths[p];
        bench_record *r = device_path_record(run, di, ci, path);
        if (!r) {
            bench_layer_teardown(&b);
            return -1;
        }
        if (!ready) {
            snprintf(r->error, sizeof r->error, "%s", b.error);
            continue;
        }
        if (layer_path_repeats(c, path, d)) {
            r->status = BENCH_UNSUPPORTED;
            snprintf(r->error, sizeof r->error,
                     "talking-heads has one fused form, measured as %s",
                     clattn_sdpa_path_name(d->fused));
            continue;
        }
        b.path = path;
        run_layer_path(run, &b, r);
    }
    bench_layer_teardown(&b);
    return 0;
}

/* Layer cases: the projections peer, then every device and path. The
   answer is checked for being finite only; its correctness against
   PyTorch and timm is the test suites' (tests/test_layer_*). */
static int run_layer_case(bench_run *run, size_t ci)
{
    int rc = run->opt->peers ? run_projections_peer(run, ci) : 0;
    for (size_t di = 0; rc == 0 && di < run->ndevices; ++di)
        if (run->devices[di].status == BENCH_OK)
            rc = run_layer_device(run, (int)di, ci);
    return rc;
}

static int run_case(bench_run *run, size_t ci)
{
    if (bench_op_is_layer(run->cases[ci].op))
        return run_layer_case(run, ci);
    const bench_case *c = &run->cases[ci];
    bench_inputs in;
    bench_blas_attention blas = {0};
    double *ref = NULL;
    oracle o = {0};
    float *got = malloc(bench_case_o_elems(c) * sizeof *got);
    int rc = 0;
    if (!got || bench_inputs_make(c, &in)) {
        free(got);
        return -1;
    }
    if (run->opt->peers)
        rc = run_blas_peer(run, ci, &in, &blas, &o) ||
             run_reference_peer(run, ci, &in, &ref, &o);
    for (size_t di = 0; rc == 0 && di < run->ndevices; ++di)
        if (run->devices[di].status == BENCH_OK)
            rc = run_device(run, (int)di, ci, &in, &o, got);
    bench_blas_attention_free(&blas);
    free(ref);
    free(got);
    bench_inputs_free(&in);
    return rc;
}

int bench_run_cases(bench_run *run)
{
    for (size_t ci = 0; ci < run->ncases; ++ci)
        if (run_case(run, ci))
            return -1;
    return 0;
}

void bench_run_free(bench_run *run)
{
    for (size_t i = 0; i < run->ndevices; ++i)
        clattn_context_destroy(run->devices[i].ctx);
    free(run->devices);
    free(run->records);
    run->devices = NULL;
    run->records = NULL;
    run->ndevices = run->nrecords = 0;
}

int bench_run_failed(const bench_run *run)
{
    for (size_t i = 0; i < run->ndevices; ++i)
        if (run->devices[i].status == BENCH_FAILED)
            return 1;
    for (size_t i = 0; i < run->nrecords; ++i)
        if (run->records[i].device != BENCH_HOST_DEVICE &&
            run->records[i].status == BENCH_FAILED)
            return 1;
    return 0;
}
