/* One table per kernel family: the names of the parameters it is built
   with, whose values come from the family's header in cl/. Adding a
   parameter: a line in the header, a line here. */
#include "kernel_params.h"

#include <stdio.h>
#include <string.h>

typedef struct kernel_param {
    const char *name;
    long value[3]; /* by kernel_target */
} kernel_param;

/* A parameter with one value for every device. */
#define PARAM(name)                                                            \
    {                                                                          \
#name,                                                                 \
        {                                                                      \
            (long)(name), (long)(name), (long)(name)                           \
        }                                                                      \
    }

/* A parameter with a value per target: NAME (wide-vector CPUs),
   NAME_NARROW and NAME_GPU, next to NAME in the family's header. */
#define PARAM_BY_TARGET(name)                                                  \
    {                                                                          \
#name,                                                                 \
        {                                                                      \
            (long)(name), (long)(name##_NARROW), (long)(name##_GPU)            \
        }                                                                      \
    }

/* A CPU-class kernel's parameter: NAME_NARROW for narrow-vector CPUs, NAME
   elsewhere (a GPU-class device runs the kernel only when a path is
   pinned, and keeps the value it was checked with). */
#define PARAM_BY_WIDTH(name)                                                   \
    {                                                                          \
#name,                                                                 \
        {                                                                      \
            (long)(name), (long)(name##_NARROW), (long)(name)                  \
        }                                                                      \
    }

static const kernel_param sdpa_fused[] = {
    PARAM(FC_BK),
    PARAM_BY_WIDTH(FC_RT),
    PARAM(FC_RW),
    PARAM(FC_PLAIN_KEYS),
    PARAM(FD_ROWS),
    PARAM(FD_FOLD_KEYS),
    PARAM(FUSED_HEAD_DIM_MAX),
};

/* SOFTMAX_WG and UT_SIDE are the device's: program_cache.c adds them. */
static const kernel_param sdpa_unfused[] = {
    PARAM(UT_MICRO),    PARAM(UT_DEPTH), PARAM(DIRECT_ROWS),
    PARAM(DIRECT_KEYS), PARAM(PV_BLOCK), PARAM(SOFTMAX_CACHE),
};

static const kernel_param talking_heads[] = {
    PARAM(TH_KEY_BLOCK),
    PARAM(TH_KEY_PAD),
    PARAM(TH_FEATURE_PAD),
    PARAM_BY_TARGET(TH_FUSED_ROWS),
    PARAM_BY_TARGET(TH_UNFUSED_ROWS),
    PARAM(TH_MIX_ROWS),
    PARAM_BY_TARGET(TH_DROPOUT_PER_ELEMENT),
};

static const kernel_param additive[] = {PARAM(ADD_TI), PARAM(ADD_TJ)};

static const kernel_param layer_common[] = {
    PARAM(LIN_BN),
    PARAM_BY_TARGET(LIN_RT),
    PARAM(LIN_RW),
};

#define FAMILY(table)                                                          \
    {                                                                          \
        table, sizeof table / sizeof table[0]                                  \
    }

static const struct {
    const kernel_param *params;
    size_t count;
} families[PROGRAM_COUNT] = {
    [PROGRAM_SDPA_UNFUSED] = FAMILY(sdpa_unfused),
    [PROGRAM_SDPA_FUSED_CPU] = FAMILY(sdpa_fused),
    [PROGRAM_SDPA_FUSED_GPU] = FAMILY(sdpa_fused),
    [PROGRAM_TALKING_HEADS] = FAMILY(talking_heads),
    [PROGRAM_ADDITIVE] = FAMILY(additive),
    [PROGRAM_LAYER_COMMON] = FAMILY(layer_common),
};

int kernel_params_append_options(program_id id, kernel_target target, char *buf,
                                 size_t cap)
{
    const size_t start = strlen(buf);
    size_t used = start;
    for (size_t i = 0; i < families[id].count; ++i) {
        const kernel_param *p = &families[id].params[i];
        int n = snprintf(buf + used, cap - used, " -D%s=%ld", p->name,
                         p->value[target]);
        if (n < 0 || (size_t)n >= cap - used) {
            buf[start] = '\0';
            return -1;
        }
        used += (size_t)n;
    }
    return 0;
}
