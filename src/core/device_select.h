/* Listing OpenCL devices and ordering them for a selector
   (docs/contract.md section 2). */
#ifndef CLATTN_DEVICE_SELECT_H
#define CLATTN_DEVICE_SELECT_H

#include "clattn/clattn.h"

typedef struct device_desc {
    cl_platform_id platform;
    cl_device_id device;
    int platform_index;
    int device_index;
    cl_device_type type;
    cl_uint compute_units;
    cl_uint clock_mhz;
    char platform_name[128];
    char platform_vendor[128]; /* CL_PLATFORM_VENDOR ("The pocl project") */
    char vendor[128];          /* CL_DEVICE_VENDOR */
    char name[128];
} device_desc;

/* The most platforms listed, and devices per platform (any beyond are not
   seen). */
#define DEVICE_MAX_PLATFORMS 32
#define DEVICE_MAX_PER_PLATFORM 64

/* The platforms in ids, their count; 0 when there is none, with the
   reason in err (an ICD loader finding no platform reports an error). */
cl_uint platforms_list(cl_platform_id ids[DEVICE_MAX_PLATFORMS], char *err,
                       size_t err_len);

/* All devices of all platforms. *out is malloc'd (free it); zero devices is
   CLATTN_ERROR_NO_DEVICE with the reason in err. */
clattn_status devices_enumerate(device_desc **out, size_t *count, char *err,
                                size_t err_len);

/* Orders the devices for a selector: order[] receives indices into devs,
   first the devices the selector matches (best first), then, when
   allow_fallback, every other device in "auto" order. Returns how many were
   written (0: nothing matched). order must hold n entries. A pure function
   of its inputs, so it is tested with made-up device lists.
   auto order: class (GPU, accelerator, CPU, other), then compute units x
   clock, larger first, then listing order. A clock of 0 MHz is unknown
   (Intel's CPU runtime reports 0), not slow: such a device is ranked as if
   clocked like the fastest device of its class in the list that reports a
   clock, so with no such peer its compute units alone decide. */
size_t devices_rank(const device_desc *devs, size_t n, const char *selector,
                    int allow_fallback, size_t *order);

/* A string property, truncated to fit dst (a property longer than dst
   would make the plain query fail); "" when the query fails. */
void device_string(cl_device_id device, cl_device_info param, char *dst,
                   size_t cap);
void platform_string(cl_platform_id platform, cl_platform_info param, char *dst,
                     size_t cap);

/* The one class a device counts as, for auto's order and the type
   selectors: CL_DEVICE_TYPE_GPU, _ACCELERATOR or _CPU, or 0 for others. */
cl_device_type device_class(cl_device_type type);

/* "GPU", "CPU", "accelerator" or "other", by class. */
const char *device_type_name(cl_device_type type);

/* The class's selector word: "gpu", "cpu", "accelerator", or "other". */
const char *device_class_word(cl_device_type type);

/* Nonzero when needle occurs in haystack, ignoring ASCII case (an empty
   needle occurs everywhere): the selector's name match, and the CLBlast
   tuning sections' identity keys. */
int text_contains_nocase(const char *haystack, const char *needle);

#endif
