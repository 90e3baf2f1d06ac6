/* Device buffers the library allocates for itself, counted per context so
   that clattn_memory_stats_get can report the high-water. Every library
   buffer is made and released through here (and so through the fault
   injection of device_buffer_create). */
#ifndef CLATTN_DEVICE_MEMORY_H
#define CLATTN_DEVICE_MEMORY_H

#include "clattn/clattn.h"

/* clCreateBuffer on the context's OpenCL context, counted. */
cl_mem ctx_buffer_create(clattn_context *ctx, cl_mem_flags flags, size_t bytes,
                         void *host_ptr, cl_int *err);

/* ctx_buffer_create with a failure recorded as ctx_cl_error's, the call
   named "clCreateBuffer (what)"; *out NULL on failure. */
clattn_status ctx_buffer_make(clattn_context *ctx, const char *what,
                              cl_mem_flags flags, size_t bytes, void *host_ptr,
                              cl_mem *out);

/* Releases a buffer made by ctx_buffer_create (NULL is fine). */
void ctx_buffer_release(clattn_context *ctx, cl_mem buffer);

#endif
