/* Checking a strided device view against its shape and its cl_mem, before
   anything is enqueued. */
#ifndef CLATTN_TENSOR_VIEW_H
#define CLATTN_TENSOR_VIEW_H

#include "clattn/clattn.h"

/* A view as the kernels take it: extent-1 dimensions get stride 0, and the
   element range [first, end) it touches is known. */
typedef struct checked_view {
    cl_mem buffer;
    size_t offset;
    size_t strides[4];
    size_t first, end; /* elements */
    size_t elem_size;  /* bytes per element */
} checked_view;

/* Validates buffer as an argument named name: a valid cl_mem of this
   context whose CL_MEM_FLAGS allow the access (an output not
   CL_MEM_READ_ONLY, an input not CL_MEM_WRITE_ONLY); *size gets its
   CL_MEM_SIZE. */
clattn_status mem_check(clattn_context *ctx, const char *name, cl_mem buffer,
                        int is_output, size_t *size);

/* Validates t as a [dims] view of elem_size-byte elements: a buffer of this
   context (mem_check), feature stride 1 (when dims[3] > 1), an extent that does
   not overflow and fits in the buffer's CL_MEM_SIZE, and for outputs no two
   elements at one address. name goes into the error text. */
clattn_status view_check(clattn_context *ctx, const char *name,
                         const clattn_tensor *t, const size_t dims[4],
                         size_t elem_size, int is_output, checked_view *out);

/* Nonzero when the two views share a buffer and the byte ranges they span
   intersect (conservative for interleaved views). */
int views_intersect(const checked_view *a, const checked_view *b);

#endif
