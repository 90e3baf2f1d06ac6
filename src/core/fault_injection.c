/* Fault injection for the tests (see fault_injection.h). */
#include "fault_injection.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static char build_fault[128];
static atomic_int build_fault_on;
static atomic_long allocations_left = -1;
static atomic_int disk_cache_everywhere;

void clattn_fault_fail_builds_on(const char *device_name_part)
{
    atomic_store(&build_fault_on, 0);
    if (device_name_part) {
        snprintf(build_fault, sizeof build_fault, "%s", device_name_part);
        atomic_store(&build_fault_on, 1);
    }
}

void clattn_fault_fail_allocation_after(long n)
{
    atomic_store(&allocations_left, n < 0 ? -1 : n);
}

void clattn_fault_disk_cache_everywhere(int on)
{
    atomic_store(&disk_cache_everywhere, on != 0);
}

int fault_disk_cache_everywhere(void)
{
    return atomic_load(&disk_cache_everywhere);
}

int fault_build_fails(const char *device_name)
{
    return atomic_load(&build_fault_on) && strstr(device_name, build_fault);
}

int fault_allocation_fails(void)
{
    long left = atomic_load(&allocations_left);
    while (left >= 0) {
        if (atomic_compare_exchange_weak(&allocations_left, &left, left - 1))
            return left == 0;
    }
    return 0;
}

cl_mem device_buffer_create(cl_context ctx, cl_mem_flags flags, size_t size,
                            void *host_ptr, cl_int *err)
{
    if (fault_allocation_fails()) {
        *err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
        return NULL;
    }
    return clCreateBuffer(ctx, flags, size, host_ptr, err);
}
