#include "bench_figures.h"

#include <math.h>
#include <string.h>

static double ratio(double num, double den)
{
    return num > 0.0 && den > 0.0 ? num / den : NAN;
}

static double peer_speedup(const bench_run *run, const bench_record *r,
                           int device, const char *path)
{
    const bench_record *p = bench_run_find(run, device, r->case_index, path);
    return p && p != r ? ratio(p->t.min_ms, r->t.min_ms) : NAN;
}

const char *bench_record_device_id(const bench_run *run, const bench_record *r)
{
    return r->device == BENCH_HOST_DEVICE ? "host"
                                          : run->devices[r->device].cl.id;
}

void bench_figures_compute(const bench_run *run, const bench_record *r,
                           bench_figures *f)
{
    const bench_case *c = &run->cases[r->case_index];
    f->flops = bench_case_flops(c);
    f->flops_effective = bench_case_flops_effective(c);
    f->bytes = bench_case_bytes(c);
    f->gflops = f->gflops_effective = f->gbs = NAN;
    f->of_peak = f->of_copy = f->of_sgemm = NAN;
    f->vs_blas_attention = f->vs_reference = f->vs_torch = f->vs_unfused = NAN;
    f->projection_vs_openblas = NAN;
    if (r->status != BENCH_OK || !(r->t.min_ms > 0.0))
        return;
    double s = r->t.min_ms * 1e-3;
    f->gflops = f->flops / s * 1e-9;
    f->gflops_effective = f->flops_effective / s * 1e-9;
    f->gbs = f->bytes / s * 1e-9;
    /* The host's peers compare with CPU devices only: a GPU against the
       host's BLAS says nothing about either. */
    int cpu = 1;
    if (r->device != BENCH_HOST_DEVICE) {
        const bench_device *d = &run->devices[r->device];
        f->of_peak = ratio(f->gflops, d->peak_gflops);
        f->of_copy = ratio(f->gbs, d->copy_gbs);
        cpu = strcmp(bench_device_class(d->cl.type), "cpu") == 0;
        if (strcmp(r->path, "unfused") != 0)
            f->vs_unfused = peer_speedup(run, r, r->device, "unfused");
    }
    if (!cpu)
        return;
    if (run->host.blas_status == BENCH_OK)
        f->of_sgemm = ratio(f->gflops, run->host.sgemm_gflops);
    f->vs_blas_attention =
        peer_speedup(run, r, BENCH_HOST_DEVICE, "openblas-attention");
    f->vs_reference = peer_speedup(run, r, BENCH_HOST_DEVICE, "reference");
    f->vs_torch = peer_speedup(run, r, BENCH_HOST_DEVICE, "torch");
    const bench_record *p = bench_run_find(
        run, BENCH_HOST_DEVICE, r->case_index, "openblas-projections");
    if (p && r->has_split)
        f->projection_vs_openblas = ratio(p->t.min_ms, r->split.projection_ms);
}
