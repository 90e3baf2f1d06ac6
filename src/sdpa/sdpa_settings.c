/* $CLATTN_SDPA_PATH: pins what AUTO runs for requests without probs (the
   tests run whole suites on each path this way); $CLATTN_FUSED_GPU_TILES:
   the GPU-class fused kernel's tiles; $CLATTN_SDPA_PROBS_PLAN: the
   fused-cpu path's plan for probs. Read at context creation
   (op_settings.h); the names are the registry's (sdpa_variant.c). */
#include "context_internal.h"
#include "op_settings.h"
#include "sdpa_fused.h"
#include "sdpa_fused_tiles.h"
#include "sdpa_variant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $CLATTN_FUSED_GPU_TILES: the GPU-class fused kernel's tiles per head dim,
   over the tuning table and the rule (sdpa_fused_tiles.h). */
static clattn_status fused_gpu_tiles_read(clattn_context *ctx, op_settings *out)
{
    const char *value = getenv("CLATTN_FUSED_GPU_TILES");
    out->fused_gpu_tiles[0] = '\0';
    if (!value || !*value)
        return CLATTN_SUCCESS;
    gpu_tiles list[8];
    size_t n = 0;
    char why[96];
    if (strlen(value) >= sizeof out->fused_gpu_tiles)
        snprintf(why, sizeof why, "longer than %zu characters",
                 sizeof out->fused_gpu_tiles - 1);
    else if (gpu_tiles_parse(value, list, 8, &n, why, sizeof why) == 0) {
        memcpy(out->fused_gpu_tiles, value, strlen(value) + 1);
        return CLATTN_SUCCESS;
    }
    return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                     "CLATTN_FUSED_GPU_TILES=%.60s: %s", value, why);
}

/* $CLATTN_SDPA_PROBS_PLAN: materialize or recompute pins the fused-cpu
   path's plan for probs (the tests run both on every shape), auto or
   unset leaves it to the rule (sdpa_fused.c). */
static clattn_status probs_plan_read(clattn_context *ctx, op_settings *out)
{
    const char *value = getenv("CLATTN_SDPA_PROBS_PLAN");
    out->probs_plan = FUSED_PROBS_AUTO;
    if (!value || !*value || !strcmp(value, "auto"))
        return CLATTN_SUCCESS;
    if (!strcmp(value, "materialize"))
        out->probs_plan = FUSED_PROBS_MATERIALIZE;
    else if (!strcmp(value, "recompute"))
        out->probs_plan = FUSED_PROBS_RECOMPUTE;
    else
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "CLATTN_SDPA_PROBS_PLAN=%.60s: expected auto, "
                         "materialize or recompute",
                         value);
    return CLATTN_SUCCESS;
}

clattn_status op_settings_read(clattn_context *ctx, op_settings *out)
{
    clattn_status s = probs_plan_read(ctx, out);
    if (s)
        return s;
    const char *value = getenv("CLATTN_SDPA_PATH");
    out->sdpa_pin = CLATTN_SDPA_PATH_AUTO;
    if (value && *value && !sdpa_path_parse(value, &out->sdpa_pin)) {
        out->sdpa_pin = CLATTN_SDPA_PATH_AUTO;
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "CLATTN_SDPA_PATH=%s: expected auto, unfused, fused, "
                         "fused-cpu or fused-gpu",
                         value);
    }
    return fused_gpu_tiles_read(ctx, out);
}
