/* The settings of the ops above the core that come from the environment
   ($CLATTN_SDPA_PATH and the others of src/sdpa/sdpa_settings.c), read once
   when a context is made so that a bad value fails creation, as a bad
   $CLATTN_DEVICE does. The core stores them; the ops parse them:
   op_settings_read is defined by the SDPA op (src/sdpa/sdpa_settings.c), so no
   core file depends on an op's internals. */
#ifndef CLATTN_OP_SETTINGS_H
#define CLATTN_OP_SETTINGS_H

#include "clattn/clattn.h"

typedef struct op_settings {
    /* What AUTO runs for requests without probs, among the paths AUTO may
       take (AUTO = its own choice). */
    clattn_sdpa_path sdpa_pin;
    /* $CLATTN_FUSED_GPU_TILES as given ("" when unset), validated by the
       SDPA op's parser; the fused-gpu plan reads its tiles from it. */
    char fused_gpu_tiles[128];
    /* $CLATTN_SDPA_PROBS_PLAN: how the fused-cpu path writes probs
       (the SDPA op's probs_plan values; 0 = its own rule). */
    int probs_plan;
} op_settings;

/* Fills *out from the environment; INVALID_ARGUMENT with the reason on
   ctx for a value the op does not know. */
clattn_status op_settings_read(clattn_context *ctx, op_settings *out);

#endif
