/* The OpenCL sources of cl/ (its folders core, sdpa, layers), embedded
   at build time (see cmake/embed_kernels.cmake), and their lookup. */
#ifndef CLATTN_KERNEL_SOURCES_H
#define CLATTN_KERNEL_SOURCES_H

#include <stddef.h>

typedef struct kernel_source {
    const char *name; /* path under cl/, e.g. "sdpa/sdpa_scores.cl" */
    const char *text; /* NUL-terminated source */
} kernel_source;

extern const kernel_source clattn_kernel_sources[];
extern const size_t clattn_kernel_source_count;

#endif
