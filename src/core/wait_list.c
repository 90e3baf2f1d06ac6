/* Wait-list validation shared by every device entry point. */
#include "wait_list.h"
#include "context_internal.h"

clattn_status wait_list_check(clattn_context *ctx, cl_uint count,
                              const cl_event *list)
{
    if ((count > 0) != (list != NULL))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "event wait list: count %u with a %s list",
                         (unsigned)count, list ? "non-NULL" : "NULL");
    for (cl_uint i = 0; i < count; ++i) {
        if (!list[i])
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "event wait list: event %u is NULL", (unsigned)i);
        cl_context owner = NULL;
        cl_int err = clGetEventInfo(list[i], CL_EVENT_CONTEXT, sizeof owner,
                                    &owner, NULL);
        if (err != CL_SUCCESS)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "event wait list: event %u is not a valid event "
                             "(%s)",
                             (unsigned)i, cl_error_name(err));
        if (owner != ctx->cl_ctx)
            return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                             "event wait list: event %u belongs to another "
                             "OpenCL context",
                             (unsigned)i);
    }
    return CLATTN_SUCCESS;
}
