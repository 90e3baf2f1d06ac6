/* The aligned text table on stdout. */
#include "bench_figures.h"
#include "bench_output.h"

#include <math.h>
#include <string.h>

const char *bench_timing_name(const bench_timing *t, int host)
{
    if (host)
        return "wall";
    return t->event_timed ? "event" : "wall";
}

static void print_paths(FILE *f, const bench_options *o)
{
    for (int i = 0; i < o->npaths; ++i)
        fprintf(f, "%s%s", i ? ", " : "", clattn_sdpa_path_name(o->paths[i]));
}

/* The library's detail text may span lines (a build log, a device list):
   kept on one line here, in full in the JSON. */
static void print_one_line(FILE *f, const char *text)
{
    for (const char *p = text; *p; ++p)
        if (*p == '\n')
            fputs(p[1] ? " | " : "", f);
        else
            fputc(*p, f);
    fputc('\n', f);
}

static void print_devices(FILE *f, const bench_run *run)
{
    fprintf(f, "devices:\n");
    for (size_t i = 0; i < run->ndevices; ++i) {
        const bench_device *d = &run->devices[i];
        fprintf(f, "  %-5s %s", d->cl.id, d->cl.name);
        if (d->status != BENCH_OK) {
            fprintf(f, ": FAILED, skipped: ");
            print_one_line(f, d->error);
            continue;
        }
        fprintf(f, " (%s; %s)%s\n", bench_device_class(d->cl.type),
                d->cl.platform_name,
                d->auto_choice ? "  <- auto's choice" : "");
        if (d->peak_status == BENCH_OK)
            fprintf(f,
                    "        peak %.1f GFLOP/s fp32 (multiply-add kernel), "
                    "copy %.1f GB/s;",
                    d->peak_gflops, d->copy_gbs);
        else
            fprintf(f, "        peak not measured: %s;", d->peak_error);
        fprintf(f, " 'fused' runs %s here\n", clattn_sdpa_path_name(d->fused));
    }
}

static void print_host(FILE *f, const bench_run *run)
{
    const bench_host *h = &run->host;
    fprintf(f, "host peers (compared with CPU devices only):\n");
    if (h->blas_status == BENCH_OK)
        fprintf(f, "  %s, %d threads: sgemm %d^3 %.1f GFLOP/s\n", h->blas_note,
                h->blas_threads, h->sgemm_n, h->sgemm_gflops);
    else
        fprintf(f, "  OpenBLAS: %s\n", h->blas_note);
    if (!run->opt->peers)
        fprintf(f, "  reference: not run (--no-peers)\n");
    if (!h->torch_requested)
        fprintf(f, "  PyTorch: not requested (--peer torch)\n");
    else if (h->torch_status == BENCH_OK)
        fprintf(f, "  PyTorch %s, %d threads, CPU\n", h->torch_version,
                h->torch_threads);
    else
        fprintf(f, "  PyTorch: %s\n", h->torch_note);
}

void bench_print_header(FILE *f, const bench_run *run)
{
    const bench_options *o = run->opt;
    unsigned v = clattn_version_number();
    fprintf(f, "clattn-bench %u.%u.%u: ", v / 10000, v / 100 % 100, v % 100);
    if (o->suite)
        fprintf(f, "suite %s, %zu cases; paths ", o->suite, run->ncases);
    else
        fprintf(f, "one case; paths ");
    print_paths(f, o);
    fprintf(f, "; started %s\n", run->started);
    fprintf(f,
            "timing: %d warm-up call%s, then repeated until %d runs and "
            "%.0f ms; min and median.\n"
            "  Device paths: OpenCL profiling events, from a marker before "
            "the call to the end\n  of its last kernel. Host peers: wall "
            "clock.\n",
            o->method.warmup, o->method.warmup == 1 ? "" : "s",
            o->method.min_reps, o->method.target_ms);
    print_devices(f, run);
    print_host(f, run);
}

/* A number in a fixed width, or "-" where it does not apply. */
static void cell(FILE *f, int width, const char *fmt, double v)
{
    if (isnan(v)) {
        fprintf(f, " %*s", width, "-");
        return;
    }
    char buf[32];
    snprintf(buf, sizeof buf, fmt, v);
    fprintf(f, " %*s", width, buf);
}

typedef struct widths {
    int label, dev;
    int torch;
} widths;

static void print_row(FILE *f, const bench_run *run, const bench_record *r,
                      const char *label, const widths *w)
{
    bench_figures g;
    bench_figures_compute(run, r, &g);
    char path[32];
    snprintf(path, sizeof path, "%s%s", r->path, r->default_variant ? "*" : "");
    int ok = r->status == BENCH_OK;
    fprintf(f, "%-*s  %-*s  %-19s %-11s", w->label, label, w->dev,
            bench_record_device_id(run, r), path, bench_status_name(r->status));
    cell(f, 9, "%.3f", ok ? r->t.min_ms : NAN);
    cell(f, 9, "%.3f", ok ? r->t.median_ms : NAN);
    cell(f, 8, "%.1f", g.gflops);
    cell(f, 7, "%.1f", g.gbs);
    cell(f, 7, "%.1f",
         ok && r->mem_peak_bytes ? (double)r->mem_peak_bytes / 1048576.0 : NAN);
    cell(f, 5, "%.0f%%", g.of_peak * 100.0);
    cell(f, 6, "%.0f%%", g.of_sgemm * 100.0);
    cell(f, 7, "%.2fx", g.vs_blas_attention);
    cell(f, 8, "%.2fx", g.vs_reference);
    if (w->torch)
        cell(f, 8, "%.2fx", g.vs_torch);
    cell(f, 7, "%.2fx", g.vs_unfused);
    if (r->error[0]) {
        char note[96];
        snprintf(note, sizeof note, "%.90s%s", r->error,
                 strlen(r->error) > 90 ? "..." : "");
        note[strcspn(note, "\n")] = '\0';
        fprintf(f, "  %s", note);
    }
    fputc('\n', f);
}

static void print_case(FILE *f, const bench_run *run, size_t ci,
                       const widths *w)
{
    char label[96];
    bench_case_label(&run->cases[ci], label, sizeof label);
    int first = 1;
    /* Devices in their order, then the host's peers. */
    for (int pass = 0; pass < 2; ++pass)
        for (size_t i = 0; i < run->nrecords; ++i) {
            const bench_record *r = &run->records[i];
            int host = r->device == BENCH_HOST_DEVICE;
            if (r->case_index != ci || host != pass)
                continue;
            print_row(f, run, r, first ? label : "", w);
            first = 0;
        }
}

/* Layer cases: the fastest call's time by stage, and the projections
   against the same GEMMs on OpenBLAS. */
static void print_splits(FILE *f, const bench_run *run)
{
    int header = 0;
    for (size_t i = 0; i < run->nrecords; ++i) {
        const bench_record *r = &run->records[i];
        if (r->status != BENCH_OK || !r->has_split)
            continue;
        if (!header) {
            fprintf(f,
                    "\nLayers, where the time went (fastest call, OpenCL "
                    "events):\n%-34s %-10s %-10s %10s %10s %10s %12s\n",
                    "case", "dev", "path", "proj ms", "attn ms", "other ms",
                    "proj vs BLAS");
            header = 1;
        }
        char label[96];
        bench_case_label(&run->cases[r->case_index], label, sizeof label);
        bench_figures g;
        bench_figures_compute(run, r, &g);
        fprintf(f, "%-34s %-10s %-10s %10.2f %10.2f %10.2f", label,
                bench_record_device_id(run, r), r->path, r->split.projection_ms,
                r->split.attention_ms, r->split.other_ms);
        cell(f, 12, "%.2fx", g.projection_vs_openblas);
        fputc('\n', f);
    }
    if (header)
        fprintf(f, "proj vs BLAS: OpenBLAS's time for the same projection "
                   "GEMMs / the layer's projection time\n  (1 = as fast as "
                   "OpenBLAS; the openblas-projections row is that time).\n");
}

void bench_print_table(FILE *f, const bench_run *run)
{
    widths w = {4, 4, run->host.torch_requested};
    for (size_t ci = 0; ci < run->ncases; ++ci) {
        char label[96];
        bench_case_label(&run->cases[ci], label, sizeof label);
        if ((int)strlen(label) > w.label)
            w.label = (int)strlen(label);
    }
    for (size_t i = 0; i < run->ndevices; ++i)
        if ((int)strlen(run->devices[i].cl.id) > w.dev)
            w.dev = (int)strlen(run->devices[i].cl.id);
    fprintf(f, "\n%-*s  %-*s  %-19s %-11s %9s %9s %8s %7s %7s %5s %6s %7s %8s",
            w.label, "case", w.dev, "dev", "path", "status", "min ms",
            "median ms", "GFLOP/s", "GB/s", "mem MiB", "%peak", "%sgemm",
            "vs BLAS", "vs ref");
    if (w.torch)
        fprintf(f, " %8s", "vs torch");
    fprintf(f, " %7s\n", "vs unf");
    for (size_t ci = 0; ci < run->ncases; ++ci)
        print_case(f, run, ci, &w);
    fprintf(f, "\n* the variant 'fused' (and 'auto', but for probabilities "
               "on a GPU-class device)\n  runs on that device.\n"
               "GFLOP/s counts 4*B*H*Sq*Skv*D, the whole score matrix, for "
               "causal cases too (the\n  rate over unmasked pairs only, about "
               "half of it there, is in the JSON). GB/s: Q, K,\n  V read and O "
               "written once (for decode, the KV cache read). mem: the "
               "caller's buffers\n  plus the library's device-memory "
               "high-water. %%peak: "
               "of the device's measured\n  fp32 peak; %%sgemm: of OpenBLAS "
               "sgemm; vs X: X's min time / this min time.\n");
    print_splits(f, run);
}

void bench_print_cases(FILE *f, const bench_run *run)
{
    for (size_t ci = 0; ci < run->ncases; ++ci) {
        char label[96];
        bench_case_label(&run->cases[ci], label, sizeof label);
        fprintf(f, "%-40s %8.3f GFLOP %9.1f MiB\n", label,
                bench_case_flops(&run->cases[ci]) * 1e-9,
                bench_case_bytes(&run->cases[ci]) / 1048576.0);
    }
}
