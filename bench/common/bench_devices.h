/* Every OpenCL platform and device, listed with OpenCL directly in the
   order the library's "P:D" selector counts them (clGetPlatformIDs, then
   clGetDeviceIDs(CL_DEVICE_TYPE_ALL) per platform), with the properties
   that matter to clattn. Shared by clattn-info and clattn-bench. */
#ifndef CLATTN_BENCH_DEVICES_H
#define CLATTN_BENCH_DEVICES_H

#include <clattn/clattn.h>

#include <stddef.h>

typedef struct bench_platform {
    cl_platform_id id;
    int index;
    char name[128], vendor[128], version[128];
    size_t first_device, device_count; /* into bench_devices.devices */
    char error[128]; /* why its devices could not be listed, or "" */
} bench_platform;

typedef struct bench_cl_device {
    cl_platform_id platform;
    cl_device_id device;
    int platform_index, device_index;
    char id[24]; /* "P:D", the selector that opens exactly this device */
    char platform_name[128];
    char name[128], vendor[128], version[128], driver[128], c_version[128];
    cl_device_type type;
    cl_uint compute_units, clock_mhz;
    cl_ulong global_mem, local_mem, max_alloc;
    size_t max_work_group;
    int fp16, fp64;
    char subgroups[96]; /* "no", or what provides them */
} bench_cl_device;

typedef struct bench_devices {
    bench_platform *platforms;
    size_t nplatforms;
    bench_cl_device *devices;
    size_t ndevices;
} bench_devices;

/* Lists everything. Returns 0 (possibly with zero devices), or -1 with
   the reason in err when there is no platform or memory runs out. */
int bench_devices_enumerate(bench_devices *out, char *err, size_t cap);
void bench_devices_free(bench_devices *d);

/* The device's class as the library ranks it (a device with the CPU bit
   is a CPU, whatever else it claims): "cpu", "gpu", "accelerator",
   "other". */
const char *bench_device_class(cl_device_type type);

/* A clattn context on exactly this device: selector "P:D", no fallback,
   so a device that cannot build the kernels fails instead of being
   silently replaced. On failure *ctx is NULL and err says why. */
clattn_status bench_device_open(const bench_cl_device *d, clattn_context **ctx,
                                char *err, size_t cap);

#endif
