/* $CLATTN_SDPA_PATH: pins what AUTO runs for requests without probs (the
   tests run whole suites on each path this way). Read at context creation
   (op_settings.h); the names are the registry's (sdpa_variant.c). */
#include "context_internal.h"
#include "op_settings.h"
#include "sdpa_variant.h"

#include <stdlib.h>

clattn_status op_settings_read(clattn_context *ctx, op_settings *out)
{
    const char *value = getenv("CLATTN_SDPA_PATH");
    out->sdpa_pin = CLATTN_SDPA_PATH_AUTO;
    if (!value || !*value)
        return CLATTN_SUCCESS;
    if (sdpa_path_parse(value, &out->sdpa_pin))
        return CLATTN_SUCCESS;
    out->sdpa_pin = CLATTN_SDPA_PATH_AUTO;
    return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                     "CLATTN_SDPA_PATH=%s: expected auto, unfused, fused, "
                     "fused-cpu or fused-gpu",
                     value);
}
