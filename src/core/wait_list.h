/* Checking a caller's event wait list before anything is enqueued. */
#ifndef CLATTN_WAIT_LIST_H
#define CLATTN_WAIT_LIST_H

#include "clattn/clattn.h"

/* A count and a list that agree (both zero or both given), every event
   non-NULL, valid, and of the context's OpenCL context: an event of another
   context would make the enqueue fail after earlier commands of the call
   were queued, or (with user events on some drivers) hang. */
clattn_status wait_list_check(clattn_context *ctx, cl_uint count,
                              const cl_event *list);

#endif
