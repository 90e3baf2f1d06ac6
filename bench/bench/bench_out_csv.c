/* CSV: one row per record, the case and device spelled out in each row so
   a spreadsheet needs no joins. Columns as the JSON records' fields. */
#include "bench_figures.h"
#include "bench_output.h"

#include <math.h>

/* RFC 4180: quote every text field, double the quotes inside. */
static void text(FILE *f, const char *s, const char *sep)
{
    fputc('"', f);
    for (; s && *s; ++s) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
    fputs(sep, f);
}

static void num(FILE *f, double v, const char *sep)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    fputs(sep, f);
}

static const char header[] =
    "device,device_name,device_type,case,op,batch,heads_q,heads_kv,seq_q,"
    "seq_kv,head_dim,causal,path,default_variant,status,reps,timing,min_ms,"
    "median_ms,flops,flops_effective,gflops,gflops_effective,gbs,"
    "mem_peak_bytes,check_against,max_abs_err,of_peak,of_copy,of_sgemm,"
    "vs_openblas_attention,vs_reference,vs_torch,vs_unfused,projection_ms,"
    "attention_ms,other_ms,projection_vs_openblas,error\n";

static void row(FILE *f, const bench_run *run, const bench_record *r)
{
    const bench_case *c = &run->cases[r->case_index];
    bench_figures g;
    bench_figures_compute(run, r, &g);
    int host = r->device == BENCH_HOST_DEVICE, timed = r->t.reps > 0;
    const bench_device *d = host ? NULL : &run->devices[r->device];
    char label[96];
    bench_case_label(c, label, sizeof label);
    text(f, bench_record_device_id(run, r), ",");
    text(f, host ? "host CPU" : d->cl.name, ",");
    text(f, host ? "host" : bench_device_class(d->cl.type), ",");
    text(f, label, ",");
    fprintf(f, "%s,%zu,%zu,%zu,%zu,%zu,%zu,%s,", bench_op_name(c->op), c->batch,
            c->heads_q, c->heads_kv, c->seq_q, c->seq_kv, c->head_dim,
            bench_causal_name(c->causal));
    fprintf(f, "%s,%d,%s,", r->path, r->default_variant,
            bench_status_name(r->status));
    fprintf(f, timed ? "%d," : ",", r->t.reps);
    fprintf(f, "%s,", timed ? bench_timing_name(&r->t, host) : "");
    num(f, timed ? r->t.min_ms : NAN, ",");
    num(f, timed ? r->t.median_ms : NAN, ",");
    fprintf(f, "%.0f,%.0f,", g.flops, g.flops_effective);
    num(f, g.gflops, ",");
    num(f, g.gflops_effective, ",");
    num(f, g.gbs, ",");
    if (r->status == BENCH_OK && r->mem_peak_bytes)
        fprintf(f, "%zu", r->mem_peak_bytes);
    fputc(',', f);
    fprintf(f, "%s,", r->check.against ? r->check.against : "");
    num(f, r->check.against ? r->check.max_abs_err : NAN, ",");
    double ratios[] = {g.of_peak,           g.of_copy,      g.of_sgemm,
                       g.vs_blas_attention, g.vs_reference, g.vs_torch,
                       g.vs_unfused};
    for (size_t i = 0; i < sizeof ratios / sizeof *ratios; ++i)
        num(f, ratios[i], ",");
    int split = r->status == BENCH_OK && r->has_split;
    num(f, split ? r->split.projection_ms : NAN, ",");
    num(f, split ? r->split.attention_ms : NAN, ",");
    num(f, split ? r->split.other_ms : NAN, ",");
    num(f, g.projection_vs_openblas, ",");
    text(f, r->error, "\n");
}

static void write_csv(FILE *f, const bench_run *run)
{
    fputs(header, f);
    for (size_t i = 0; i < run->nrecords; ++i)
        row(f, run, &run->records[i]);
}

int bench_write_csv(const char *path, const bench_run *run, char *err,
                    size_t cap)
{
    return bench_write_file(path, run, write_csv, err, cap);
}
