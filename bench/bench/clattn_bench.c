/* clattn-bench: measures SDPA on every device (or the selected ones), on
   every path, next to peers measured in the same run: the device's own
   peak, OpenBLAS and a BLAS attention on the host, the double-precision
   reference, and optionally PyTorch. See docs/bench.md.
   Exit status: 0 when everything ran (unsupported paths included), 1 when
   a device or a device path failed (or gave a wrong answer), 2 on bad
   arguments, 3 when an output file could not be written. */
#define _POSIX_C_SOURCE 200809L
#include "bench_cli.h"
#include "bench_output.h"
#include "bench_progress.h"
#include "bench_run.h"
#include "bench_timing.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void stamp(char *dst, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(dst, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(dst, cap, "unknown");
}

/* Steps for the progress line: opening the devices, the host's peers, and
   the peers and paths of every case (the reference's step is skipped on
   cases too large for it, so the count is an upper bound). */
static size_t count_steps(const bench_run *run)
{
    const bench_options *o = run->opt;
    size_t per_case = o->peers ? 2 : 0;
    for (size_t i = 0; i < run->ndevices; ++i)
        if (run->devices[i].status == BENCH_OK)
            per_case += (size_t)o->npaths;
    return 1 + (o->peers ? 1 : 0) + (o->peer_torch ? 1 : 0) +
           run->ncases * per_case;
}

static int write_outputs(const bench_run *run)
{
    const bench_options *o = run->opt;
    char err[512];
    int rc = 0;
    if (o->json && bench_write_json(o->json, run, err, sizeof err))
        rc = fprintf(stderr, "clattn-bench: %s\n", err);
    if (o->csv && bench_write_csv(o->csv, run, err, sizeof err))
        rc = fprintf(stderr, "clattn-bench: %s\n", err);
    if (o->plot && bench_write_plot(o->plot, run, err, sizeof err))
        rc = fprintf(stderr, "clattn-bench: %s\n", err);
    return rc ? 3 : 0;
}

int main(int argc, char **argv)
{
    bench_options opt;
    char err[256];
    int parsed = bench_parse_args(argc, argv, &opt, err, sizeof err);
    if (parsed > 0)
        return 0;
    if (parsed < 0) {
        fprintf(stderr, "clattn-bench: %s\n", err);
        bench_usage(stderr);
        return 2;
    }
    bench_run run;
    memset(&run, 0, sizeof run);
    run.opt = &opt;
    run.cases = opt.suite ? bench_suite(opt.suite, &run.ncases) : &opt.one;
    if (!opt.suite)
        run.ncases = 1;
    if (opt.list) {
        bench_print_cases(stdout, &run);
        return 0;
    }
    stamp(run.started, sizeof run.started);
    double t0 = bench_now_ms();
    bench_progress_start(2);
    bench_progress_step("opening devices, measuring their peaks");
    int rc = bench_run_devices(&run);
    bench_progress_total(count_steps(&run));
    if (rc == 0)
        rc = bench_run_host(&run);
    if (rc == 0)
        rc = bench_run_cases(&run);
    bench_progress_end();
    run.seconds = (bench_now_ms() - t0) * 1e-3;
    if (rc) {
        fprintf(stderr, "clattn-bench: out of host memory\n");
        bench_run_free(&run);
        return 1;
    }
    bench_print_header(stdout, &run);
    bench_print_table(stdout, &run);
    printf("\n%.1f s in all.\n", run.seconds);
    int out = write_outputs(&run);
    int failed = bench_run_failed(&run);
    bench_run_free(&run);
    return out ? out : failed;
}
