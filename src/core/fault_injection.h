/* Test hooks that make a kernel build or a device allocation fail on
   purpose, so the tests can show the error paths (status, build log,
   fallback, nothing leaked). Not part of the public API: the symbols are
   hidden in libclattn.so and reached by the tests through libclattn.a.
   The only process-wide state in the library; off unless a test sets it. */
#ifndef CLATTN_FAULT_INJECTION_H
#define CLATTN_FAULT_INJECTION_H

#include "clattn/clattn.h"

/* Builds on devices whose name contains the text fail (NULL = none). */
void clattn_fault_fail_builds_on(const char *device_name_part);

/* The device allocation after the next n ones fails (n < 0 = none). */
void clattn_fault_fail_allocation_after(long n);

/* Nonzero: clattn's program-binary cache is used on every runtime, PoCL
   included (program_cache.h, runtime_keeps_kernels), so that
   test_program_cache can show it on the CI device. */
void clattn_fault_disk_cache_everywhere(int on);

/* For the library: whether to fail this build, this allocation, whether
   the hook above is set. */
int fault_build_fails(const char *device_name);
int fault_allocation_fails(void);
int fault_disk_cache_everywhere(void);

/* Every device buffer the library makes goes through here:
   clCreateBuffer, or the injected failure. */
cl_mem device_buffer_create(cl_context ctx, cl_mem_flags flags, size_t size,
                            void *host_ptr, cl_int *err);

#endif
