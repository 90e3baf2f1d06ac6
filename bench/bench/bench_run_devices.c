/* Opening the devices to measure, and their own peak figures. */
#include "bench_peak.h"
#include "bench_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bench_device *add_device(bench_run *run)
{
    bench_device *more =
        realloc(run->devices, (run->ndevices + 1) * sizeof *more);
    if (!more)
        return NULL;
    run->devices = more;
    bench_device *d = &run->devices[run->ndevices++];
    memset(d, 0, sizeof *d);
    d->peak_gflops = d->copy_gbs = -1.0;
    return d;
}

static int same_device(const clattn_info *info, const bench_cl_device *d)
{
    return info->platform_index == d->platform_index &&
           info->device_index == d->device_index;
}

/* The listing entry of the device a context landed on, or NULL. */
static const bench_cl_device *listed(const bench_devices *all,
                                     const clattn_info *info)
{
    for (size_t i = 0; i < all->ndevices; ++i)
        if (same_device(info, &all->devices[i]))
            return &all->devices[i];
    return NULL;
}

static clattn_context *create(const char *selector, int no_fallback, char *err,
                              size_t cap)
{
    clattn_context_options opts;
    clattn_context_options_init(&opts);
    opts.device = selector;
    opts.no_fallback = no_fallback;
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(&opts, &ctx);
    if (s == CLATTN_SUCCESS)
        return ctx;
    snprintf(err, cap, "%s: %s", clattn_status_string(s),
             clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);
    return NULL;
}

/* "all": every listed device, each on its own with no fallback. The
   context "auto" made is reused for its device (one build fewer). */
static int open_all(bench_run *run, const bench_devices *all,
                    clattn_context **auto_ctx, const clattn_info *auto_info)
{
    for (size_t i = 0; i < all->ndevices; ++i) {
        bench_device *d = add_device(run);
        if (!d)
            return -1;
        d->cl = all->devices[i];
        if (*auto_ctx && same_device(auto_info, &d->cl)) {
            d->ctx = *auto_ctx;
            *auto_ctx = NULL;
        } else if (bench_device_open(&d->cl, &d->ctx, d->error,
                                     sizeof d->error) != CLATTN_SUCCESS) {
            d->status = BENCH_FAILED;
        }
    }
    return 0;
}

/* Selectors, comma separated: each opens the one device the library
   picks for it, without fallback, so "gpu" on a broken GPU is reported
   as failed rather than measured on the CPU. */
static int open_selected(bench_run *run, const bench_devices *all)
{
    const char *p = run->opt->device;
    while (*p) {
        char sel[128];
        size_t len = strcspn(p, ",");
        snprintf(sel, sizeof sel, "%.*s", (int)(len < 127 ? len : 127), p);
        p += len + (p[len] == ',');
        char err[512];
        clattn_context *ctx = create(sel, 1, err, sizeof err);
        clattn_info info;
        const bench_cl_device *cl = NULL;
        if (ctx && clattn_context_info(ctx, &info) == CLATTN_SUCCESS)
            cl = listed(all, &info);
        int dup = 0;
        for (size_t i = 0; cl && i < run->ndevices; ++i)
            dup |= strcmp(run->devices[i].cl.id, cl->id) == 0;
        if (dup) {
            clattn_context_destroy(ctx);
            continue;
        }
        bench_device *d = add_device(run);
        if (!d) {
            clattn_context_destroy(ctx);
            return -1;
        }
        d->ctx = ctx;
        if (cl) {
            d->cl = *cl;
        } else {
            /* Not opened (or not in the listing): keep the selector as
               its name so the report says what was asked for. */
            snprintf(d->cl.id, sizeof d->cl.id, "%.23s", sel);
            snprintf(d->cl.name, sizeof d->cl.name, "selector '%.100s'", sel);
            d->status = BENCH_FAILED;
            snprintf(d->error, sizeof d->error, "%s",
                     ctx ? "device not in the OpenCL listing" : err);
            clattn_context_destroy(ctx);
            d->ctx = NULL;
        }
    }
    return 0;
}

static void measure_peak(bench_run *run, bench_device *d)
{
    bench_peak p;
    /* Peaks are the ceiling: take the min of a short, fixed budget. */
    bench_method m = run->opt->method;
    if (m.target_ms > 200.0)
        m.target_ms = 200.0;
    d->peak_status =
        bench_peak_measure(d->ctx, &m, &p) ? BENCH_FAILED : BENCH_OK;
    d->peak_gflops = p.gflops;
    d->copy_gbs = p.copy_gbs;
    snprintf(d->peak_error, sizeof d->peak_error, "%s", p.error);
}

int bench_run_devices(bench_run *run)
{
    bench_devices all;
    char err[256];
    if (bench_devices_enumerate(&all, err, sizeof err)) {
        bench_device *d = add_device(run);
        if (!d)
            return -1;
        snprintf(d->cl.id, sizeof d->cl.id, "none");
        snprintf(d->cl.name, sizeof d->cl.name, "no OpenCL device");
        d->status = BENCH_FAILED;
        snprintf(d->error, sizeof d->error, "%s", err);
        return 0;
    }
    /* Which device "auto" picks, to mark it; fallback allowed, as a
       user's context would have it. */
    clattn_info auto_info;
    memset(&auto_info, 0, sizeof auto_info);
    clattn_context *auto_ctx = create("auto", 0, err, sizeof err);
    int have_auto =
        auto_ctx && clattn_context_info(auto_ctx, &auto_info) == CLATTN_SUCCESS;
    if (!have_auto) {
        clattn_context_destroy(auto_ctx);
        auto_ctx = NULL;
    }
    int rc = strcmp(run->opt->device, "all") == 0
                 ? open_all(run, &all, &auto_ctx, &auto_info)
                 : open_selected(run, &all);
    for (size_t i = 0; rc == 0 && i < run->ndevices; ++i) {
        bench_device *d = &run->devices[i];
        if (!d->ctx)
            continue;
        d->status = BENCH_OK;
        d->fused = clattn_sdpa_fused_variant(d->ctx);
        d->auto_choice = have_auto && same_device(&auto_info, &d->cl);
        measure_peak(run, d);
    }
    clattn_context_destroy(auto_ctx);
    bench_devices_free(&all);
    return rc;
}
