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
#include "../../cl/layers/talking_heads_params.clh"
#include "../../cl/sdpa/sdpa_fused_params.clh"
#include "../../cl/sdpa/sdpa_unfused_params.clh"

/* The program's family parameters as " -DNAME=value" options, appended to
   buf at its terminating NUL, with their GPU-class values (NAME_GPU in
   the header) when gpu_class is nonzero; 0, or -1 when they do not fit
   in cap (buf is then unchanged). Programs of no family append nothing. */
int kernel_params_append_options(program_id id, int gpu_class, char *buf,
                                 size_t cap);

/* The value of a by-class parameter for a context's device: the one its
   programs were built with. */
#define KERNEL_PARAM_FOR(ctx, name)                                            \
    (context_gpu_class(ctx) ? (name##_GPU) : (name))

#endif
