/* The JSON document, described field by field in docs/bench.md and
   checked against docs/bench.schema.json by a test. */
#include "bench_figures.h"
#include "bench_output.h"

#include <math.h>

static void jstr(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* Error text: null when empty. */
static void jerr(FILE *f, const char *s)
{
    jstr(f, s && *s ? s : NULL);
}

/* JSON has no NaN or infinity: not measured is null. */
static void jnum(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

/* Counts (bytes, FLOPs, repetitions) in full, not rounded to 6 digits. */
static void jcount(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.0f", v);
    else
        fputs("null", f);
}

static void jkey(FILE *f, const char *key)
{
    fprintf(f, "\"%s\": ", key);
}

/* ", "key": "text" after a previous field. */
static void str_field(FILE *f, const char *key, const char *s)
{
    fprintf(f, ", \"%s\": ", key);
    jstr(f, s);
}

static void write_method(FILE *f, const bench_run *run)
{
    const bench_method *m = &run->opt->method;
    fprintf(f,
            "  \"method\": {\"warmup\": %d, \"min_reps\": %d, "
            "\"max_reps\": %d, ",
            m->warmup, m->min_reps, m->max_reps);
    jkey(f, "target_ms");
    jnum(f, m->target_ms);
    fprintf(f, ", \"check_atol\": 1e-4, \"check_rtol\": 1e-3,\n"
               "    \"device_timing\": \"OpenCL profiling events from a "
               "marker before the call to the end of its last kernel; wall "
               "clock where the queue gives no times\",\n"
               "    \"host_timing\": \"wall clock\",\n"
               "    \"flops\": \"4*batch*heads_q*seq_q*seq_kv*head_dim\",\n"
               "    \"bytes\": \"Q, K, V read once and O written once, "
               "fp32\"},\n");
}

static void write_host(FILE *f, const bench_run *run)
{
    const bench_host *h = &run->host;
    fprintf(f, "  \"host\": {\"openblas\": {\"status\": \"%s\", ",
            bench_status_name(h->blas_status));
    jkey(f, "note");
    jerr(f, h->blas_note);
    fprintf(f, ", \"threads\": %d, \"sgemm_n\": %d, ", h->blas_threads,
            h->sgemm_n);
    int ok = h->blas_status == BENCH_OK;
    jkey(f, "sgemm_min_ms");
    jnum(f, ok ? h->sgemm.min_ms : NAN);
    fputs(", ", f);
    jkey(f, "sgemm_gflops");
    jnum(f, ok ? h->sgemm_gflops : NAN);
    fprintf(f, "},\n    \"torch\": {\"requested\": %s, \"status\": \"%s\", ",
            h->torch_requested ? "true" : "false",
            bench_status_name(h->torch_requested ? h->torch_status
                                                 : BENCH_UNSUPPORTED));
    jkey(f, "note");
    jerr(f, h->torch_requested ? h->torch_note : "not requested");
    fputs(", ", f);
    jkey(f, "version");
    jerr(f, h->torch_status == BENCH_OK ? h->torch_version : NULL);
    fprintf(f, ", \"threads\": %d}},\n",
            h->torch_status == BENCH_OK ? h->torch_threads : 0);
}

static void write_device(FILE *f, const bench_device *d)
{
    const bench_cl_device *c = &d->cl;
    fputs("    {\"id\": ", f);
    jstr(f, c->id);
    str_field(f, "name", c->name);
    str_field(f, "platform", c->platform_name);
    str_field(f, "vendor", c->vendor);
    fputs(",\n     \"version\": ", f);
    jstr(f, c->version);
    str_field(f, "driver", c->driver);
    fprintf(f,
            ", \"type\": \"%s\", \"compute_units\": %u, \"clock_mhz\": %u,\n"
            "     \"global_mem_bytes\": %llu, \"local_mem_bytes\": %llu, "
            "\"max_alloc_bytes\": %llu, \"fp16\": %s, \"fp64\": %s,\n",
            bench_device_class(c->type), (unsigned)c->compute_units,
            (unsigned)c->clock_mhz, (unsigned long long)c->global_mem,
            (unsigned long long)c->local_mem, (unsigned long long)c->max_alloc,
            c->fp16 ? "true" : "false", c->fp64 ? "true" : "false");
    int ok = d->status == BENCH_OK;
    fprintf(f, "     \"status\": \"%s\", \"error\": ",
            bench_status_name(d->status));
    jerr(f, d->error);
    fprintf(f, ", \"auto_choice\": %s, \"fused_variant\": ",
            d->auto_choice ? "true" : "false");
    jstr(f, ok ? clattn_sdpa_path_name(d->fused) : NULL);
    fputs(",\n     \"peak_gflops\": ", f);
    jnum(f, ok ? d->peak_gflops : NAN);
    fputs(", \"copy_gbs\": ", f);
    jnum(f, ok ? d->copy_gbs : NAN);
    fputs(", \"peak_error\": ", f);
    jerr(f, ok ? d->peak_error : NULL);
    fputc('}', f);
}

static void write_case(FILE *f, const bench_case *c, size_t i)
{
    char label[96];
    bench_case_label(c, label, sizeof label);
    fprintf(f, "    {\"index\": %zu, \"name\": ", i);
    jstr(f, label);
    fprintf(f,
            ", \"op\": \"%s\", \"batch\": %zu, \"heads_q\": %zu, "
            "\"heads_kv\": %zu, \"seq_q\": %zu, \"seq_kv\": %zu, "
            "\"head_dim\": %zu, \"causal\": \"%s\", \"probs\": %s,\n"
            "     \"flops\": ",
            bench_op_name(c->op), c->batch, c->heads_q, c->heads_kv, c->seq_q,
            c->seq_kv, c->head_dim, bench_causal_name(c->causal),
            c->probs ? "true" : "false");
    jcount(f, bench_case_flops(c));
    fputs(", \"flops_effective\": ", f);
    jcount(f, bench_case_flops_effective(c));
    fputs(", \"bytes\": ", f);
    jcount(f, bench_case_bytes(c));
    fputc('}', f);
}

static void num_field(FILE *f, const char *key, double v)
{
    fprintf(f, ", \"%s\": ", key);
    jnum(f, v);
}

static void write_record(FILE *f, const bench_run *run, const bench_record *r)
{
    bench_figures g;
    bench_figures_compute(run, r, &g);
    char label[96];
    bench_case_label(&run->cases[r->case_index], label, sizeof label);
    int ok = r->status == BENCH_OK, timed = r->t.reps > 0;
    fputs("    {\"device\": ", f);
    jstr(f, bench_record_device_id(run, r));
    fprintf(f, ", \"case\": %zu, \"case_name\": ", r->case_index);
    jstr(f, label);
    fprintf(f, ", \"path\": \"%s\", \"default_variant\": %s,\n", r->path,
            r->default_variant ? "true" : "false");
    fprintf(f, "     \"status\": \"%s\", \"error\": ",
            bench_status_name(r->status));
    jerr(f, r->error);
    fputs(",\n     \"reps\": ", f);
    jcount(f, timed ? r->t.reps : NAN);
    str_field(f, "timing",
              timed ? bench_timing_name(&r->t, r->device == BENCH_HOST_DEVICE)
                    : NULL);
    num_field(f, "min_ms", timed ? r->t.min_ms : NAN);
    num_field(f, "median_ms", timed ? r->t.median_ms : NAN);
    num_field(f, "gflops", g.gflops);
    num_field(f, "gflops_effective", g.gflops_effective);
    num_field(f, "gbs", g.gbs);
    fputs(",\n     \"mem_peak_bytes\": ", f);
    jcount(f, ok && r->mem_peak_bytes ? (double)r->mem_peak_bytes : NAN);
    fputs(", \"library_peak_bytes\": ", f);
    jcount(f, ok && r->mem_peak_bytes ? (double)r->library_peak_bytes : NAN);
    fputs(", \"check\": ", f);
    if (r->check.against) {
        fputs("{\"against\": ", f);
        jstr(f, r->check.against);
        num_field(f, "max_abs_err", r->check.max_abs_err);
        fprintf(f, ", \"mismatches\": %zu}", r->check.bad);
    } else {
        fputs("null", f);
    }
    fputs(",\n     \"of_peak\": ", f);
    jnum(f, g.of_peak);
    num_field(f, "of_copy", g.of_copy);
    num_field(f, "of_sgemm", g.of_sgemm);
    num_field(f, "vs_openblas_attention", g.vs_blas_attention);
    num_field(f, "vs_reference", g.vs_reference);
    num_field(f, "vs_torch", g.vs_torch);
    num_field(f, "vs_unfused", g.vs_unfused);
    fputs(",\n     \"split\": ", f);
    if (ok && r->has_split) {
        fputs("{\"projection_ms\": ", f);
        jnum(f, r->split.projection_ms);
        num_field(f, "attention_ms", r->split.attention_ms);
        num_field(f, "other_ms", r->split.other_ms);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    num_field(f, "projection_vs_openblas", g.projection_vs_openblas);
    fputc('}', f);
}

static void write_json(FILE *f, const bench_run *run)
{
    unsigned v = clattn_version_number();
    fprintf(f, "{\n  \"schema\": \"%s\",\n  \"schema_version\": %d,\n",
            BENCH_SCHEMA_NAME, BENCH_SCHEMA_VERSION);
    fprintf(f,
            "  \"clattn_version\": \"%u.%u.%u\",\n  \"started\": ", v / 10000,
            v / 100 % 100, v % 100);
    jstr(f, run->started);
    fputs(",\n  \"seconds\": ", f);
    jnum(f, run->seconds);
    fputs(",\n  \"suite\": ", f);
    jstr(f, run->opt->suite);
    fputs(",\n", f);
    write_method(f, run);
    write_host(f, run);
    fputs("  \"devices\": [\n", f);
    for (size_t i = 0; i < run->ndevices; ++i) {
        write_device(f, &run->devices[i]);
        fputs(i + 1 < run->ndevices ? ",\n" : "\n", f);
    }
    fputs("  ],\n  \"cases\": [\n", f);
    for (size_t i = 0; i < run->ncases; ++i) {
        write_case(f, &run->cases[i], i);
        fputs(i + 1 < run->ncases ? ",\n" : "\n", f);
    }
    fputs("  ],\n  \"records\": [\n", f);
    for (size_t i = 0; i < run->nrecords; ++i) {
        write_record(f, run, &run->records[i]);
        fputs(i + 1 < run->nrecords ? ",\n" : "\n", f);
    }
    fputs("  ]\n}\n", f);
}

int bench_write_json(const char *path, const bench_run *run, char *err,
                     size_t cap)
{
    return bench_write_file(path, run, write_json, err, cap);
}
