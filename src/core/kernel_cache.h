/* Kernel objects reused across calls, one set per thread.

   clCreateKernel on every call cost a few microseconds of the host time of
   a small call, so each (program, kernel name) is created once per
   thread and handed out again. Per thread, because argument setting is
   not thread safe: clSetKernelArg on an object another thread is about to
   enqueue would change that thread's launch. A thread finds its set
   through a _Thread_local pointer tagged with the cache's unique id (a
   destroyed context's id never matches again), else under the cache's
   lock in a per-context list keyed by pthread_self(); a thread that has
   exited leaves its set to the next thread given the same id.

   What this asks of callers: set a kernel's arguments right before
   enqueueing it, and never hold two kernels of the same program and name
   at once, with different arguments, before enqueueing both (they are one
   object on a thread). OpenCL captures the arguments at enqueue, so
   setting, enqueueing and setting again (chunked launches) is fine. */
#ifndef CLATTN_KERNEL_CACHE_H
#define CLATTN_KERNEL_CACHE_H

#include "clattn/clattn.h"

#include <pthread.h>

typedef struct kernel_set kernel_set;

typedef struct kernel_cache {
    int ready; /* lock initialised, id assigned */
    unsigned long id;
    pthread_mutex_t lock; /* guards sets (the list, not a set's slots) */
    kernel_set *sets;
} kernel_cache;

/* 0, or -1 when the lock cannot be made. */
int kernel_cache_init(kernel_cache *cache);

/* Releases every thread's kernels; a zeroed or released cache is fine.
   No call may be using the cache. */
void kernel_cache_release(kernel_cache *cache);

/* The calling thread's kernel `name` of program, created on its first use
   and retained for the caller (who releases it as a fresh one); CL_SUCCESS
   or the error of clCreateKernel (CL_OUT_OF_HOST_MEMORY for the cache's
   own allocations). */
cl_int kernel_cache_get(kernel_cache *cache, cl_program program,
                        const char *name, cl_kernel *out);

#endif
