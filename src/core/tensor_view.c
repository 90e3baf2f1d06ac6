/* View validation: shape, strides, extent and buffer size. */
#include "tensor_view.h"
#include "checked_math.h"
#include "context_internal.h"

#include <stdio.h>

void clattn_tensor_contiguous(clattn_tensor *t, cl_mem buffer, size_t offset,
                              const size_t dims[4])
{
    if (!t || !dims)
        return;
    t->buffer = buffer;
    t->offset = offset;
    t->strides[3] = 1;
    t->strides[2] = dims[3];
    t->strides[1] = dims[2] * dims[3];
    t->strides[0] = dims[1] * dims[2] * dims[3];
}

/* Outputs: with the dimensions of extent > 1 sorted by stride, each stride
   must step past everything the inner ones reach, so no element repeats. */
static int view_overlaps(const size_t dims[4], const size_t strides[4])
{
    int idx[4], n = 0;
    for (int i = 0; i < 4; ++i)
        if (dims[i] > 1)
            idx[n++] = i;
    for (int a = 1; a < n; ++a)
        for (int b = a; b > 0 && strides[idx[b]] < strides[idx[b - 1]]; --b) {
            int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    size_t reach = 0; /* largest offset reached by the inner dims */
    for (int a = 0; a < n; ++a) {
        size_t s = strides[idx[a]];
        if (s <= reach || s == 0)
            return 1;
        reach += (dims[idx[a]] - 1) * s; /* bounded by the checked extent */
    }
    return 0;
}

clattn_status mem_check(clattn_context *ctx, const char *name, cl_mem buffer,
                        int is_output, size_t *size)
{
    cl_context owner = NULL;
    cl_mem_flags flags = 0;
    cl_int err =
        clGetMemObjectInfo(buffer, CL_MEM_CONTEXT, sizeof owner, &owner, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(buffer, CL_MEM_SIZE, sizeof *size, size, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(buffer, CL_MEM_FLAGS, sizeof flags, &flags,
                                 NULL);
    if (err != CL_SUCCESS)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: not a valid cl_mem (%s)", name,
                         cl_error_name(err));
    if (owner != ctx->cl_ctx)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: buffer belongs to another OpenCL context", name);
    /* A kernel writing a CL_MEM_READ_ONLY buffer, or reading a
       CL_MEM_WRITE_ONLY one, is undefined behaviour in OpenCL: refuse it
       here rather than let a driver silently drop or garble the data. */
    if (is_output && (flags & CL_MEM_READ_ONLY))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: an output buffer was created CL_MEM_READ_ONLY",
                         name);
    if (!is_output && (flags & CL_MEM_WRITE_ONLY))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: an input buffer was created CL_MEM_WRITE_ONLY",
                         name);
    return CLATTN_SUCCESS;
}

clattn_status view_check(clattn_context *ctx, const char *name,
                         const clattn_tensor *t, const size_t dims[4],
                         size_t elem_size, int is_output, checked_view *out)
{
    if (!t->buffer)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: buffer is NULL", name);
    if (dims[3] > 1 && t->strides[3] != 1)
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: feature stride must be 1 (got %zu)", name,
                         t->strides[3]);
    out->buffer = t->buffer;
    out->offset = t->offset;
    size_t last = t->offset;
    for (int i = 0; i < 4; ++i) {
        out->strides[i] = dims[i] > 1 ? t->strides[i] : 0;
        size_t step;
        if (checked_mul(dims[i] - 1, out->strides[i], &step) ||
            checked_add(last, step, &last))
            return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                             "%s: the view's extent overflows size_t", name);
    }
    size_t end, bytes;
    if (checked_add(last, 1, &end) || checked_mul(end, elem_size, &bytes))
        return ctx_error(ctx, CLATTN_ERROR_SIZE_OVERFLOW,
                         "%s: the view's byte extent overflows size_t", name);
    out->first = t->offset;
    out->end = end;
    out->elem_size = elem_size;

    size_t have = 0;
    clattn_status s = mem_check(ctx, name, t->buffer, is_output, &have);
    if (s != CLATTN_SUCCESS)
        return s;
    if (bytes > have)
        return ctx_error(ctx, CLATTN_ERROR_BUFFER_TOO_SMALL,
                         "%s: the view reaches byte %zu but the buffer has %zu",
                         name, bytes, have);
    if (is_output && view_overlaps(dims, out->strides))
        return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                         "%s: output strides make elements overlap", name);
    return CLATTN_SUCCESS;
}

int views_intersect(const checked_view *a, const checked_view *b)
{
    /* Byte ranges, each view in its own element size. Both ends
       were checked for overflow in view_check. */
    return a->buffer && a->buffer == b->buffer &&
           a->first * a->elem_size < b->end * b->elem_size &&
           b->first * b->elem_size < a->end * a->elem_size;
}
