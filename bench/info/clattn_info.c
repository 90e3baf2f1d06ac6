/* clattn-info: every OpenCL platform and device with what matters to
   clattn, which device "auto" picks and why, and for each device whether
   clattn's kernels build there and give the reference's answer on every
   SDPA path. A device that fails is reported and the listing goes on.
   Exit status: 0 when every device passes, 1 when one fails or there is
   no device, 2 on bad arguments. */
#include "bench_devices.h"
#include "bench_sdpa.h"
#include "bench_timing.h"
#include "reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: clattn-info [--no-check]\n"
               "  Lists OpenCL platforms and devices, the device clattn's "
               "'auto' selector\n"
               "  picks and why, and whether clattn's kernels build and pass "
               "a self-check\n"
               "  on each device.\n"
               "  --no-check  list only: do not build kernels or run the "
               "self-check\n");
}

static double gib(cl_ulong bytes)
{
    return (double)bytes / (1024.0 * 1024.0 * 1024.0);
}

static void print_device(const bench_cl_device *d)
{
    printf("  device %s  %s\n", d->id, d->name);
    printf("    type            %s (vendor %s)\n", bench_device_class(d->type),
           d->vendor);
    printf("    compute units   %u at %u MHz\n", (unsigned)d->compute_units,
           (unsigned)d->clock_mhz);
    printf("    global memory   %.2f GiB, largest allocation %.2f GiB\n",
           gib(d->global_mem), gib(d->max_alloc));
    printf("    local memory    %.0f KiB, work-group up to %zu\n",
           (double)d->local_mem / 1024.0, d->max_work_group);
    printf("    fp16 / fp64     %s / %s\n", d->fp16 ? "yes" : "no",
           d->fp64 ? "yes" : "no");
    printf("    sub-groups      %s\n", d->subgroups);
    printf("    version         %s; %s; driver %s\n", d->version, d->c_version,
           d->driver);
}

/* A small problem that still crosses tile edges: odd lengths, GQA, and a
   bottom-right causal mask with fewer queries than keys. */
static const bench_case check_case = {
    BENCH_OP_GQA,      1, 4, 2, 33, 47, 16, CLATTN_CAUSAL_BOTTOM_RIGHT, 0,
    CLATTN_DTYPE_FP32, 0};

/* Runs one path; prints its line. Returns 1 when it failed (unsupported
   is not a failure: the path is not on this device or not built yet). */
static int check_path(bench_sdpa *b, clattn_sdpa_path path, const double *ref,
                      float *got)
{
    b->path = path;
    double ev;
    printf("    %-15s ", clattn_sdpa_path_name(path));
    if (bench_sdpa_poison_output(b) || bench_sdpa_call(b, &ev)) {
        int unsupported = b->status == CLATTN_ERROR_UNSUPPORTED;
        printf("%s: %s\n", unsupported ? "unsupported" : "FAILED", b->error);
        return !unsupported;
    }
    if (bench_sdpa_read_output(b, got)) {
        printf("FAILED: %s\n", b->error);
        return 1;
    }
    bench_compare cmp;
    bench_compare_double(got, ref, b->out_elems, 1e-5, 1e-4, &cmp);
    printf("%s (max |out - reference| %.2g, %zu of %zu outside 1e-5 + "
           "1e-4*|ref|)\n",
           cmp.bad ? "FAILED" : "ok", cmp.max_abs_err, cmp.bad, b->out_elems);
    return cmp.bad != 0;
}

static int self_check(clattn_context *ctx)
{
    bench_inputs in;
    bench_sdpa b;
    size_t n = bench_case_o_elems(&check_case);
    double *ref = malloc(n * sizeof *ref);
    float *got = malloc(n * sizeof *got);
    if (!ref || !got || bench_inputs_make(&check_case, &in)) {
        printf("    self-check      FAILED: out of memory\n");
        free(ref);
        free(got);
        return 1;
    }
    int failed = 0;
    if (bench_sdpa_setup(&b, ctx, &check_case, &in)) {
        printf("    self-check      FAILED: %s\n", b.error);
        failed = 1;
    } else {
        ref_sdpa(&b.desc, in.q, in.k, in.v, NULL, ref, NULL, NULL);
        printf("    self-check      SDPA b1 h4/2 q33 kv47 d16, bottom-right "
               "causal, against the double-precision reference:\n");
        const clattn_sdpa_path paths[] = {CLATTN_SDPA_PATH_UNFUSED,
                                          CLATTN_SDPA_PATH_FUSED_CPU,
                                          CLATTN_SDPA_PATH_FUSED_GPU};
        for (size_t i = 0; i < 3; ++i)
            failed |= check_path(&b, paths[i], ref, got);
        bench_sdpa_teardown(&b);
    }
    bench_inputs_free(&in);
    free(ref);
    free(got);
    return failed;
}

/* Builds the kernels on exactly this device, then checks every path. */
static int check_device(const bench_cl_device *d)
{
    clattn_context *ctx = NULL;
    char err[2048];
    double t0 = bench_now_ms();
    if (bench_device_open(d, &ctx, err, sizeof err) != CLATTN_SUCCESS) {
        /* Keep the first lines: a full build log would swamp the list. */
        char *cut = strchr(err, '\n');
        if (cut && (cut = strchr(cut + 1, '\n')) != NULL)
            *cut = '\0';
        printf("    clattn          FAILED: kernels do not build or the "
               "context fails:\n      %s\n",
               err);
        return 1;
    }
    printf("    clattn          kernels built in %.2f s; the fused path's "
           "variant here: %s\n",
           (bench_now_ms() - t0) * 1e-3,
           clattn_sdpa_path_name(clattn_sdpa_fused_variant(ctx)));
    int failed = self_check(ctx);
    clattn_context_destroy(ctx);
    return failed;
}

/* What "auto" (and $CLATTN_DEVICE, when set) would choose, with the
   library's own log of the candidates it tried. */
static int print_choice(const char *selector, const char *label)
{
    clattn_context_options opts;
    clattn_context_options_init(&opts);
    opts.device = selector;
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(&opts, &ctx);
    if (s != CLATTN_SUCCESS) {
        printf("%s: no usable device: %s\n%s\n", label, clattn_status_string(s),
               clattn_context_last_error(ctx));
        clattn_context_destroy(ctx);
        return 1;
    }
    clattn_info info;
    clattn_context_info(ctx, &info);
    printf("%s picks %d:%d %s (%s)%s\n", label, info.platform_index,
           info.device_index, info.device_name,
           bench_device_class(info.device_type),
           info.fell_back ? ", after falling back" : "");
    printf("  candidates tried:\n");
    for (const char *line = info.selection_log; *line;) {
        const char *end = strchr(line, '\n');
        int len = end ? (int)(end - line) : (int)strlen(line);
        printf("    %.*s\n", len, line);
        line += len + (end != NULL);
    }
    clattn_context_destroy(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    int check = 1;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--no-check") == 0) {
            check = 0;
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "clattn-info: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    unsigned v = clattn_version_number();
    printf("clattn %u.%u.%u\n", v / 10000, v / 100 % 100, v % 100);
    bench_devices all;
    char err[256];
    if (bench_devices_enumerate(&all, err, sizeof err)) {
        printf("%s\n", err);
        return 1;
    }
    int failed = all.ndevices == 0;
    for (size_t p = 0; p < all.nplatforms; ++p) {
        const bench_platform *pl = &all.platforms[p];
        printf("\nplatform %d  %s (%s; %s)\n", pl->index, pl->name, pl->vendor,
               pl->version);
        if (pl->error[0])
            printf("  no devices listed: %s\n", pl->error);
        for (size_t i = 0; i < pl->device_count; ++i) {
            const bench_cl_device *d = &all.devices[pl->first_device + i];
            print_device(d);
            if (check)
                failed |= check_device(d);
        }
    }
    printf("\n'auto' ranks GPUs first, then accelerators, then CPUs; among "
           "equals, more\ncompute units x clock (a clock of 0 MHz is unknown: "
           "the class's highest\nreported clock stands in for it); a device "
           "that cannot build the kernels is skipped.\n");
    failed |= print_choice("auto", "auto");
    const char *env = getenv("CLATTN_DEVICE");
    if (env && *env)
        failed |= print_choice(env, "CLATTN_DEVICE");
    bench_devices_free(&all);
    return failed;
}
