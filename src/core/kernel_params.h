/* The kernel families' parameters as data: tile sizes, rows per
   work-item, vector-bound paddings and head-dim limits live once, in the
   per-family headers of cl/sdpa and cl/layers (which the kernels include
   when compiled on their own), and reach a program as -D build options
   from the table in kernel_params.c. The host code of a family includes
   this header and plans with the same macros, so no value is written
   twice. */
#ifndef CLATTN_KERNEL_PARAMS_H
#define CLATTN_KERNEL_PARAMS_H

#include "program_cache.h"

#include <stddef.h>

/* cl/ is not on the include path: the relative path is kept here only. */
#include "../../cl/layers/additive_params.clh"
#include "../../cl/layers/linear_params.clh"
#include "../../cl/layers/talking_heads_params.clh"
#include "../../cl/sdpa/sdpa_fused_params.clh"
#include "../../cl/sdpa/sdpa_unfused_params.clh"

/* Which of a family's parameter values a program is built with. CPU-class
   kernels hold register tiles of float16 vectors: with 32 vector
   registers of 16 floats (AVX-512) a tile of 4 rows by 64 keys stays in
   registers, with 16 registers of 8 floats (AVX2) or of 4 (NEON) it
   spills, so such devices take smaller tiles (docs/internals.md, "Tiles
   by vector width"). GPU-class devices take the NAME_GPU values. */
typedef enum kernel_target {
    KERNEL_TARGET_CPU_WIDE,   /* native float vectors of 16 or more */
    KERNEL_TARGET_CPU_NARROW, /* fewer: the NAME_NARROW values */
    KERNEL_TARGET_GPU,        /* a GPU-class device: NAME_GPU */
} kernel_target;

/* The target of a context's device, fixed before its programs are built
   (context.c: the class, then the device's native float vector width,
   either pinned by $CLATTN_KERNEL_CLASS). */
kernel_target context_kernel_target(const clattn_context *ctx);

/* The program's family parameters as " -DNAME=value" options, appended to
   buf at its terminating NUL, with the values of the target; 0, or -1
   when they do not fit in cap (buf is then unchanged). Programs of no
   family append nothing. */
int kernel_params_append_options(program_id id, kernel_target target, char *buf,
                                 size_t cap);

/* The value of a by-target parameter (NAME, NAME_NARROW and NAME_GPU in
   the family's header) for a context's device: the one its programs were
   built with. */
#define KERNEL_PARAM_FOR(ctx, name)                                            \
    (context_kernel_target(ctx) == KERNEL_TARGET_GPU ? (long)(name##_GPU)      \
     : context_kernel_target(ctx) == KERNEL_TARGET_CPU_NARROW                  \
         ? (long)(name##_NARROW)                                               \
         : (long)(name))

#endif
