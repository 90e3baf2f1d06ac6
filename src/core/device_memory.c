/* Counting of the library's own device buffers (see device_memory.h). */
#include "device_memory.h"
#include "context_internal.h"
#include "fault_injection.h"

#include <stdio.h>

static void count_allocation(clattn_context *ctx, size_t bytes)
{
    size_t now = atomic_fetch_add(&ctx->mem_current, bytes) + bytes;
    size_t peak = atomic_load(&ctx->mem_peak);
    while (now > peak &&
           !atomic_compare_exchange_weak(&ctx->mem_peak, &peak, now))
        ;
}

cl_mem ctx_buffer_create(clattn_context *ctx, cl_mem_flags flags, size_t bytes,
                         void *host_ptr, cl_int *err)
{
    cl_mem b = device_buffer_create(ctx->cl_ctx, flags, bytes, host_ptr, err);
    if (*err == CL_SUCCESS)
        count_allocation(ctx, bytes);
    else
        b = NULL;
    return b;
}

clattn_status ctx_buffer_make(clattn_context *ctx, const char *what,
                              cl_mem_flags flags, size_t bytes, void *host_ptr,
                              cl_mem *out)
{
    cl_int err;
    *out = ctx_buffer_create(ctx, flags, bytes, host_ptr, &err);
    if (err == CL_SUCCESS)
        return CLATTN_SUCCESS;
    char call[96];
    snprintf(call, sizeof call, "clCreateBuffer (%s)", what);
    return ctx_cl_error(ctx, call, err);
}

void ctx_buffer_release(clattn_context *ctx, cl_mem buffer)
{
    if (!buffer)
        return;
    size_t bytes = 0;
    if (clGetMemObjectInfo(buffer, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) ==
        CL_SUCCESS)
        atomic_fetch_sub(&ctx->mem_current, bytes);
    clReleaseMemObject(buffer);
}

clattn_status clattn_memory_stats_get(clattn_context *ctx,
                                      clattn_memory_stats *stats)
{
    CTX_CHECK_USABLE(ctx);
    if (!stats)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT, "stats is NULL");
    stats->current_bytes = atomic_load(&ctx->mem_current);
    stats->peak_bytes = atomic_load(&ctx->mem_peak);
    return CLATTN_SUCCESS;
}

clattn_status clattn_memory_stats_reset_peak(clattn_context *ctx)
{
    CTX_CHECK_USABLE(ctx);
    atomic_store(&ctx->mem_peak, atomic_load(&ctx->mem_current));
    return CLATTN_SUCCESS;
}
