/* Setting kernel arguments in order, keeping the first error, so an op
   sets a long list without a check after each. */
#ifndef CLATTN_KERNEL_ARGS_H
#define CLATTN_KERNEL_ARGS_H

#include "clattn/clattn.h"
#include "tensor_view.h"

typedef struct kernel_args {
    cl_kernel kernel;
    cl_uint index;
    cl_int err;
} kernel_args;

static inline kernel_args args_begin(cl_kernel kernel)
{
    kernel_args a = {kernel, 0, CL_SUCCESS};
    return a;
}

static inline void arg_raw(kernel_args *a, size_t size, const void *value)
{
    if (a->err == CL_SUCCESS)
        a->err = clSetKernelArg(a->kernel, a->index, size, value);
    a->index++;
}

/* NULL buffer = a NULL __global pointer (allowed by the spec). */
static inline void arg_mem(kernel_args *a, cl_mem m)
{
    arg_raw(a, sizeof(cl_mem), m ? &m : NULL);
}
static inline void arg_uint(kernel_args *a, cl_uint v)
{
    arg_raw(a, sizeof v, &v);
}
static inline void arg_int(kernel_args *a, cl_int v)
{
    arg_raw(a, sizeof v, &v);
}
static inline void arg_ulong(kernel_args *a, cl_ulong v)
{
    arg_raw(a, sizeof v, &v);
}
static inline void arg_long(kernel_args *a, cl_long v)
{
    arg_raw(a, sizeof v, &v);
}
static inline void arg_float(kernel_args *a, cl_float v)
{
    arg_raw(a, sizeof v, &v);
}

/* A view as (buffer, offset, batch/head/seq strides). */
static inline void arg_view(kernel_args *a, const checked_view *v)
{
    arg_mem(a, v->buffer);
    arg_ulong(a, v->offset);
    for (int i = 0; i < 3; ++i)
        arg_ulong(a, v->strides[i]);
}

#endif
