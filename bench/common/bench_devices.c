#include "bench_devices.h"

/* The library's own platform listing, string queries and device classes
   (src/core), so indices, names and classes read as the library reads
   them. */
#include "device_select.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CL_DEVICE_MAX_NUM_SUB_GROUPS
#define CL_DEVICE_MAX_NUM_SUB_GROUPS 0x105C /* OpenCL 2.1 */
#endif

/* Whole words only: "cl_khr_fp16" must not match "cl_khr_fp16_foo". */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* OpenCL 2.1+ devices report sub-groups as core; older ones through an
   extension (Intel's predates the Khronos one). */
static void describe_subgroups(bench_cl_device *d, const char *ext)
{
    const char *names[] = {"cl_khr_subgroups", "cl_intel_subgroups"};
    char found[96] = "";
    for (size_t i = 0; i < 2; ++i)
        if (has_word(ext, names[i]))
            snprintf(found + strlen(found), sizeof found - strlen(found),
                     "%s%s", found[0] ? ", " : "", names[i]);
    cl_uint max_sg = 0;
    int major = 0, minor = 0;
    if (sscanf(d->version, "OpenCL %d.%d", &major, &minor) == 2 &&
        (major > 2 || (major == 2 && minor >= 1)))
        if (clGetDeviceInfo(d->device, CL_DEVICE_MAX_NUM_SUB_GROUPS,
                            sizeof max_sg, &max_sg, NULL) != CL_SUCCESS)
            max_sg = 0;
    if (max_sg)
        snprintf(d->subgroups, sizeof d->subgroups,
                 "yes, up to %u per work-group%s%s", (unsigned)max_sg,
                 found[0] ? "; " : "", found);
    else if (found[0])
        snprintf(d->subgroups, sizeof d->subgroups, "yes (%s)", found);
    else
        snprintf(d->subgroups, sizeof d->subgroups, "no");
}

/* The numeric properties, each into its field; a query that fails leaves
   the field's 0. */
#define DEVICE_NUMBER(param, field)                                            \
    {                                                                          \
        param, offsetof(bench_cl_device, field),                               \
            sizeof(((bench_cl_device *)0)->field)                              \
    }

static const struct {
    cl_device_info param;
    size_t offset, size;
} device_numbers[] = {
    DEVICE_NUMBER(CL_DEVICE_TYPE, type),
    DEVICE_NUMBER(CL_DEVICE_MAX_COMPUTE_UNITS, compute_units),
    DEVICE_NUMBER(CL_DEVICE_MAX_CLOCK_FREQUENCY, clock_mhz),
    DEVICE_NUMBER(CL_DEVICE_GLOBAL_MEM_SIZE, global_mem),
    DEVICE_NUMBER(CL_DEVICE_LOCAL_MEM_SIZE, local_mem),
    DEVICE_NUMBER(CL_DEVICE_MAX_MEM_ALLOC_SIZE, max_alloc),
    DEVICE_NUMBER(CL_DEVICE_MAX_WORK_GROUP_SIZE, max_work_group),
};

static void describe_device(bench_cl_device *d)
{
    cl_device_id id = d->device;
    device_string(id, CL_DEVICE_NAME, d->name, sizeof d->name);
    device_string(id, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    device_string(id, CL_DEVICE_VERSION, d->version, sizeof d->version);
    device_string(id, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    device_string(id, CL_DEVICE_OPENCL_C_VERSION, d->c_version,
                  sizeof d->c_version);
    for (size_t i = 0; i < sizeof device_numbers / sizeof *device_numbers; ++i)
        clGetDeviceInfo(id, device_numbers[i].param, device_numbers[i].size,
                        (char *)d + device_numbers[i].offset, NULL);
    size_t n = 0;
    char *ext = NULL;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &n) == CL_SUCCESS &&
        (ext = calloc(n + 1, 1)) != NULL &&
        clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, n, ext, NULL) == CL_SUCCESS) {
        d->fp16 = has_word(ext, "cl_khr_fp16");
        d->fp64 = has_word(ext, "cl_khr_fp64");
    }
    describe_subgroups(d, ext ? ext : "");
    free(ext);
}

/* Appends one platform's devices; a platform that lists none keeps its
   reason and the listing goes on. */
static int add_platform(bench_devices *out, cl_platform_id pid, int index,
                        size_t *cap)
{
    bench_platform *p = &out->platforms[out->nplatforms++];
    memset(p, 0, sizeof *p);
    p->id = pid;
    p->index = index;
    p->first_device = out->ndevices;
    platform_string(pid, CL_PLATFORM_NAME, p->name, sizeof p->name);
    platform_string(pid, CL_PLATFORM_VENDOR, p->vendor, sizeof p->vendor);
    platform_string(pid, CL_PLATFORM_VERSION, p->version, sizeof p->version);
    cl_device_id ids[DEVICE_MAX_PER_PLATFORM];
    cl_uint n = 0;
    cl_int err = clGetDeviceIDs(pid, CL_DEVICE_TYPE_ALL,
                                DEVICE_MAX_PER_PLATFORM, ids, &n);
    if (err != CL_SUCCESS) {
        snprintf(p->error, sizeof p->error, "clGetDeviceIDs failed (%d)",
                 (int)err);
        return 0;
    }
    if (n > DEVICE_MAX_PER_PLATFORM)
        n = DEVICE_MAX_PER_PLATFORM;
    if (out->ndevices + n > *cap) {
        size_t grown = (out->ndevices + n) * 2;
        bench_cl_device *more =
            realloc(out->devices, grown * sizeof *out->devices);
        if (!more)
            return -1;
        out->devices = more;
        *cap = grown;
    }
    for (cl_uint i = 0; i < n; ++i) {
        bench_cl_device *d = &out->devices[out->ndevices++];
        memset(d, 0, sizeof *d);
        d->platform = pid;
        d->device = ids[i];
        d->platform_index = index;
        d->device_index = (int)i;
        snprintf(d->id, sizeof d->id, "%d:%u", index, (unsigned)i);
        snprintf(d->platform_name, sizeof d->platform_name, "%s", p->name);
        describe_device(d);
    }
    p->device_count = n;
    return 0;
}

int bench_devices_enumerate(bench_devices *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    cl_platform_id ids[DEVICE_MAX_PLATFORMS];
    cl_uint n = platforms_list(ids, err, cap);
    if (n == 0)
        return -1;
    out->platforms = calloc(n, sizeof *out->platforms);
    size_t dev_cap = 0;
    for (cl_uint i = 0; out->platforms && i < n; ++i)
        if (add_platform(out, ids[i], (int)i, &dev_cap)) {
            bench_devices_free(out);
            break;
        }
    if (!out->platforms) {
        snprintf(err, cap, "out of memory listing devices");
        return -1;
    }
    return 0;
}

void bench_devices_free(bench_devices *d)
{
    free(d->platforms);
    free(d->devices);
    memset(d, 0, sizeof *d);
}

const char *bench_device_class(cl_device_type type)
{
    return device_class_word(type);
}

clattn_status bench_device_open(const bench_cl_device *d, clattn_context **ctx,
                                char *err, size_t cap)
{
    clattn_context_options opts;
    clattn_context_options_init(&opts);
    opts.device = d->id;
    opts.no_fallback = 1;
    *ctx = NULL;
    clattn_context *c = NULL;
    clattn_status s = clattn_context_create(&opts, &c);
    if (s != CLATTN_SUCCESS) {
        snprintf(err, cap, "%s: %s", clattn_status_string(s),
                 clattn_context_last_error(c));
        clattn_context_destroy(c);
        return s;
    }
    *ctx = c;
    return s;
}
