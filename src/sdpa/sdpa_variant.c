/* The SDPA variant table and what reads it: names, bounds, the device's
   fused variant, AUTO's choice and $CLATTN_SDPA_PATH (sdpa_variant.h). */
#include "sdpa_variant.h"
#include "context_internal.h"
#include "op_settings.h"
#include "sdpa_fused.h"
#include "sdpa_unfused.h"

#include <string.h>

/* The fused rows in order of preference for FUSED: the first that suits
   the device is the one FUSED and AUTO run. */
static const sdpa_variant variants[] = {
    {CLATTN_SDPA_PATH_UNFUSED, "unfused", PROGRAM_SDPA_UNFUSED, 0, NULL,
     sdpa_unfused_supports, sdpa_unfused_prepare, sdpa_unfused_launch,
     sdpa_unfused_release},
    {CLATTN_SDPA_PATH_FUSED_GPU, "fused-gpu", PROGRAM_SDPA_FUSED_GPU, 1,
     sdpa_fused_gpu_suits, sdpa_fused_gpu_supports, sdpa_fused_prepare,
     sdpa_fused_launch, sdpa_fused_release},
    {CLATTN_SDPA_PATH_FUSED_CPU, "fused-cpu", PROGRAM_SDPA_FUSED_CPU, 1,
     sdpa_fused_cpu_suits, sdpa_fused_cpu_supports, sdpa_fused_prepare,
     sdpa_fused_launch, sdpa_fused_release},
};
#define VARIANT_COUNT (sizeof variants / sizeof variants[0])

/* The paths that are policies, not variants. */
static const struct {
    clattn_sdpa_path path;
    const char *name;
} aliases[] = {
    {CLATTN_SDPA_PATH_AUTO, "auto"},
    {CLATTN_SDPA_PATH_FUSED, "fused"},
};
#define ALIAS_COUNT (sizeof aliases / sizeof aliases[0])

const sdpa_variant *sdpa_variant_of(clattn_sdpa_path path)
{
    for (size_t i = 0; i < VARIANT_COUNT; ++i)
        if (variants[i].path == path)
            return &variants[i];
    return NULL;
}

const sdpa_variant *sdpa_variant_fused_for(const clattn_context *ctx)
{
    const sdpa_variant *last = NULL;
    for (size_t i = 0; i < VARIANT_COUNT; ++i) {
        /* Test-only rows have no suits_device: FUSED never means them. */
        if (!variants[i].fused || !variants[i].suits_device)
            continue;
        if (variants[i].suits_device(ctx))
            return &variants[i];
        last = &variants[i];
    }
    return last; /* unreachable while the CPU row suits every other device */
}

const char *clattn_sdpa_path_name(clattn_sdpa_path path)
{
    for (size_t i = 0; i < ALIAS_COUNT; ++i)
        if (aliases[i].path == path)
            return aliases[i].name;
    const sdpa_variant *v = sdpa_variant_of(path);
    return v ? v->name : "unknown";
}

int sdpa_path_parse(const char *name, clattn_sdpa_path *path)
{
    for (size_t i = 0; i < ALIAS_COUNT; ++i)
        if (strcmp(name, aliases[i].name) == 0) {
            *path = aliases[i].path;
            return 1;
        }
    for (size_t i = 0; i < VARIANT_COUNT; ++i)
        if (strcmp(name, variants[i].name) == 0) {
            *path = variants[i].path;
            return 1;
        }
    return 0;
}

clattn_status clattn_sdpa_path_from_name(const char *name,
                                         clattn_sdpa_path *path)
{
    clattn_sdpa_path found;
    if (!name || !path || !sdpa_path_parse(name, &found))
        return CLATTN_ERROR_INVALID_ARGUMENT;
    *path = found;
    return CLATTN_SUCCESS;
}

static int path_known(clattn_sdpa_path path)
{
    return path == CLATTN_SDPA_PATH_AUTO || path == CLATTN_SDPA_PATH_FUSED ||
           sdpa_variant_of(path) != NULL;
}

clattn_status sdpa_path_check(clattn_context *ctx, const char *who,
                              clattn_sdpa_path path)
{
    if (path_known(path))
        return CLATTN_SUCCESS;
    return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                     "%s%sunknown %spath %d", who ? who : "", who ? ": " : "",
                     who ? "" : "SDPA ", (int)path);
}

int sdpa_path_can_write_probs(clattn_sdpa_path path)
{
    if (path == CLATTN_SDPA_PATH_AUTO)
        return 1;
    const sdpa_variant *v = sdpa_variant_of(path);
    return v && !v->fused;
}

clattn_sdpa_path clattn_sdpa_fused_variant(const clattn_context *ctx)
{
    if (!ctx || !ctx->usable)
        return CLATTN_SDPA_PATH_AUTO;
    return sdpa_variant_fused_for(ctx)->path;
}

static int supported_quietly(const clattn_context *ctx, const sdpa_variant *v,
                             const sdpa_problem *p, const sdpa_views *views)
{
    return v->supports(ctx, p, views, NULL, 0) == CLATTN_SUCCESS;
}

clattn_status sdpa_variant_check(clattn_context *ctx, const sdpa_variant *v,
                                 const sdpa_problem *p, const sdpa_views *views)
{
    char why[512];
    why[0] = '\0';
    clattn_status s = v->supports(ctx, p, views, why, sizeof why);
    if (s != CLATTN_SUCCESS)
        return ctx_error(ctx, s, "%s", why);
    return CLATTN_SUCCESS;
}

const sdpa_variant *sdpa_variant_choose(clattn_context *ctx,
                                        const sdpa_problem *p,
                                        const sdpa_views *views,
                                        clattn_sdpa_path path)
{
    const sdpa_variant *unfused = sdpa_variant_of(CLATTN_SDPA_PATH_UNFUSED);
    if (path == CLATTN_SDPA_PATH_AUTO) {
        /* The device's fused variant when it takes the call (the CPU-class
           one also with probs), else unfused; a pin replaces that choice
           only with a path that takes the call. Asked without recording:
           a variant's reason for refusing is not this call's error. */
        const sdpa_variant *fused = sdpa_variant_fused_for(ctx);
        const sdpa_variant *choice =
            supported_quietly(ctx, fused, p, views) ? fused : unfused;
        clattn_sdpa_path pin = ctx->op_settings.sdpa_pin;
        const sdpa_variant *pinned =
            pin == CLATTN_SDPA_PATH_AUTO || pin == CLATTN_SDPA_PATH_FUSED
                ? NULL
                : sdpa_variant_of(pin);
        if (pinned && supported_quietly(ctx, pinned, p, views))
            choice = pinned;
        return choice;
    }
    if (path == CLATTN_SDPA_PATH_FUSED)
        return sdpa_variant_fused_for(ctx);
    return sdpa_variant_of(path);
}
