/* Device listing and the selector grammar: auto | gpu | cpu | accelerator |
   P:D | substring of platform name, platform vendor, device vendor or
   device name. */
#include "device_select.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Copies a queried string into dst, truncating: the query itself wants a
   buffer as large as the whole string. */
static void fit_string(char *dst, size_t cap, const char *src, size_t size)
{
    snprintf(dst, cap, "%.*s", (int)size, src);
}

void device_string(cl_device_id device, cl_device_info param, char *dst,
                   size_t cap)
{
    size_t size = 0;
    char *tmp = NULL;
    dst[0] = '\0';
    if (clGetDeviceInfo(device, param, 0, NULL, &size) == CL_SUCCESS && size &&
        (tmp = malloc(size)) &&
        clGetDeviceInfo(device, param, size, tmp, NULL) == CL_SUCCESS)
        fit_string(dst, cap, tmp, size);
    free(tmp);
}

void platform_string(cl_platform_id platform, cl_platform_info param, char *dst,
                     size_t cap)
{
    size_t size = 0;
    char *tmp = NULL;
    dst[0] = '\0';
    if (clGetPlatformInfo(platform, param, 0, NULL, &size) == CL_SUCCESS &&
        size && (tmp = malloc(size)) &&
        clGetPlatformInfo(platform, param, size, tmp, NULL) == CL_SUCCESS)
        fit_string(dst, cap, tmp, size);
    free(tmp);
}

static void describe(device_desc *d)
{
    platform_string(d->platform, CL_PLATFORM_NAME, d->platform_name,
                    sizeof d->platform_name);
    platform_string(d->platform, CL_PLATFORM_VENDOR, d->platform_vendor,
                    sizeof d->platform_vendor);
    device_string(d->device, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    device_string(d->device, CL_DEVICE_NAME, d->name, sizeof d->name);
    clGetDeviceInfo(d->device, CL_DEVICE_TYPE, sizeof d->type, &d->type, NULL);
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_COMPUTE_UNITS,
                    sizeof d->compute_units, &d->compute_units, NULL);
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_CLOCK_FREQUENCY,
                    sizeof d->clock_mhz, &d->clock_mhz, NULL);
}

cl_uint platforms_list(cl_platform_id ids[DEVICE_MAX_PLATFORMS], char *err,
                       size_t err_len)
{
    cl_uint n = 0;
    cl_int rc = clGetPlatformIDs(DEVICE_MAX_PLATFORMS, ids, &n);
    /* The ICD loader says CL_PLATFORM_NOT_FOUND_KHR (-1001) for none. */
    if (rc != CL_SUCCESS || n == 0) {
        snprintf(err, err_len,
                 "no OpenCL platform found (clGetPlatformIDs returned %d); "
                 "is an ICD such as pocl-opencl-icd installed?",
                 (int)rc);
        return 0;
    }
    return n > DEVICE_MAX_PLATFORMS ? DEVICE_MAX_PLATFORMS : n;
}

clattn_status devices_enumerate(device_desc **out, size_t *count, char *err,
                                size_t err_len)
{
    *out = NULL;
    *count = 0;
    cl_platform_id platforms[DEVICE_MAX_PLATFORMS];
    cl_uint num_platforms = platforms_list(platforms, err, err_len);
    if (num_platforms == 0)
        return CLATTN_ERROR_NO_DEVICE;
    device_desc *devs =
        calloc((size_t)num_platforms * DEVICE_MAX_PER_PLATFORM, sizeof *devs);
    if (!devs) {
        snprintf(err, err_len, "out of host memory listing devices");
        return CLATTN_ERROR_OUT_OF_MEMORY;
    }
    size_t n = 0;
    for (cl_uint p = 0; p < num_platforms; ++p) {
        cl_device_id ids[DEVICE_MAX_PER_PLATFORM];
        cl_uint num_ids = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL,
                           DEVICE_MAX_PER_PLATFORM, ids,
                           &num_ids) != CL_SUCCESS)
            continue; /* a platform without devices is not an error */
        if (num_ids > DEVICE_MAX_PER_PLATFORM)
            num_ids = DEVICE_MAX_PER_PLATFORM;
        for (cl_uint i = 0; i < num_ids; ++i) {
            device_desc *d = &devs[n++];
            d->platform = platforms[p];
            d->device = ids[i];
            d->platform_index = (int)p;
            d->device_index = (int)i;
            describe(d);
        }
    }
    if (n == 0) {
        free(devs);
        snprintf(err, err_len, "%u OpenCL platform(s) but no device",
                 (unsigned)num_platforms);
        return CLATTN_ERROR_NO_DEVICE;
    }
    *out = devs;
    *count = n;
    return CLATTN_SUCCESS;
}

cl_device_type device_class(cl_device_type type)
{
    /* The CPU bit wins: a device that says it runs on the host is at best
       a CPU, whatever else it claims (Oclgrind's simulator reports GPU,
       CPU and accelerator at once, and must not pass for a GPU). */
    if (type & CL_DEVICE_TYPE_CPU)
        return CL_DEVICE_TYPE_CPU;
    if (type & CL_DEVICE_TYPE_GPU)
        return CL_DEVICE_TYPE_GPU;
    if (type & CL_DEVICE_TYPE_ACCELERATOR)
        return CL_DEVICE_TYPE_ACCELERATOR;
    return 0;
}

/* The classes in auto's order, each with its name in messages and its
   selector word (also the bench's and clattn-info's lower-case name). */
static const struct {
    cl_device_type type;
    const char *name, *word;
} classes[] = {
    {CL_DEVICE_TYPE_GPU, "GPU", "gpu"},
    {CL_DEVICE_TYPE_ACCELERATOR, "accelerator", "accelerator"},
    {CL_DEVICE_TYPE_CPU, "CPU", "cpu"},
};
#define CLASS_COUNT (sizeof classes / sizeof classes[0])

/* auto's order: GPU, accelerator, CPU, other (CLASS_COUNT). */
static size_t type_rank(cl_device_type type)
{
    size_t i = 0;
    while (i < CLASS_COUNT && classes[i].type != device_class(type))
        ++i;
    return i;
}

const char *device_type_name(cl_device_type type)
{
    size_t i = type_rank(type);
    return i < CLASS_COUNT ? classes[i].name : "other";
}

const char *device_class_word(cl_device_type type)
{
    size_t i = type_rank(type);
    return i < CLASS_COUNT ? classes[i].word : "other";
}

/* The clock auto's order uses for each class (indexed by type_rank): the
   highest clock reported by a device of that class, standing in for the
   devices that report 0 MHz (unknown: Intel's CPU runtime reports 0).
   Substituting one value per class keeps the order a total order; comparing
   by compute units only when either clock is unknown would not be
   transitive. Without any reported clock in the class the stand-in is 1, so
   compute units alone decide. */
typedef struct clock_fill {
    cl_uint class_clock[CLASS_COUNT + 1]; /* the last: other */
} clock_fill;

static clock_fill clock_fill_make(const device_desc *devs, size_t n)
{
    clock_fill f = {{1, 1, 1, 1}};
    for (size_t i = 0; i < n; ++i) {
        const device_desc *d = &devs[i];
        size_t r = type_rank(d->type);
        if (d->clock_mhz > f.class_clock[r])
            f.class_clock[r] = d->clock_mhz;
    }
    return f;
}

static unsigned long long throughput(const clock_fill *f, const device_desc *d)
{
    cl_uint clock =
        d->clock_mhz ? d->clock_mhz : f->class_clock[type_rank(d->type)];
    return (unsigned long long)d->compute_units * clock;
}

/* Negative when a should come before b in auto's order. */
static int auto_compare(const clock_fill *f, const device_desc *a,
                        const device_desc *b)
{
    int ra = (int)type_rank(a->type), rb = (int)type_rank(b->type);
    if (ra != rb)
        return ra - rb;
    unsigned long long pa = throughput(f, a), pb = throughput(f, b);
    if (pa != pb)
        return pa > pb ? -1 : 1;
    if (a->platform_index != b->platform_index)
        return a->platform_index - b->platform_index;
    return a->device_index - b->device_index;
}

int text_contains_nocase(const char *haystack, const char *needle)
{
    size_t nl = strlen(needle);
    for (const char *h = haystack; *h; ++h) {
        size_t i = 0;
        while (i < nl && h[i] &&
               tolower((unsigned char)h[i]) ==
                   tolower((unsigned char)needle[i]))
            ++i;
        if (i == nl)
            return 1;
    }
    return nl == 0;
}

/* "P:D" with both parts decimal; returns 1 and the indices if so. */
static int parse_index_pair(const char *s, int *p, int *d)
{
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return 0;
    long pl = strtol(s, &end, 10);
    if (*end != ':' || !isdigit((unsigned char)end[1]))
        return 0;
    long dl = strtol(end + 1, &end, 10);
    if (*end != '\0' || pl > 1000000 || dl > 1000000)
        return 0;
    *p = (int)pl;
    *d = (int)dl;
    return 1;
}

typedef enum { SEL_AUTO, SEL_TYPE, SEL_INDEX, SEL_NAME } selector_kind;

typedef struct selector {
    selector_kind kind;
    cl_device_type type;
    int platform_index, device_index;
    const char *text;
} selector;

static selector parse_selector(const char *text)
{
    selector s = {SEL_NAME, 0, 0, 0, text};
    if (!text || !*text || strcasecmp(text, "auto") == 0)
        s.kind = SEL_AUTO;
    else if (parse_index_pair(text, &s.platform_index, &s.device_index))
        s.kind = SEL_INDEX;
    for (size_t i = 0; s.kind == SEL_NAME && i < CLASS_COUNT; ++i)
        if (strcasecmp(text, classes[i].word) == 0)
            s.kind = SEL_TYPE, s.type = classes[i].type;
    return s;
}

static int selector_matches(const selector *s, const device_desc *d)
{
    switch (s->kind) {
    case SEL_AUTO: return 1;
    case SEL_TYPE: return device_class(d->type) == s->type;
    case SEL_INDEX:
        return d->platform_index == s->platform_index &&
               d->device_index == s->device_index;
    case SEL_NAME:
        /* The platform vendor too: PoCL's platform name ("Portable
           Computing Language") does not contain "pocl", its vendor ("The
           pocl project") does. */
        return text_contains_nocase(d->platform_name, s->text) ||
               text_contains_nocase(d->platform_vendor, s->text) ||
               text_contains_nocase(d->vendor, s->text) ||
               text_contains_nocase(d->name, s->text);
    }
    return 0;
}

/* Insertion sort of order[begin, end) by auto's order: device lists are
   short, and stability keeps equal devices in listing order. */
static void sort_auto(const device_desc *devs, const clock_fill *f,
                      size_t *order, size_t begin, size_t end)
{
    for (size_t i = begin + 1; i < end; ++i) {
        size_t v = order[i], j = i;
        while (j > begin &&
               auto_compare(f, &devs[v], &devs[order[j - 1]]) < 0) {
            order[j] = order[j - 1];
            --j;
        }
        order[j] = v;
    }
}

size_t devices_rank(const device_desc *devs, size_t n,
                    const char *selector_text, int allow_fallback,
                    size_t *order)
{
    selector s = parse_selector(selector_text);
    size_t m = 0;
    for (size_t i = 0; i < n; ++i)
        if (selector_matches(&s, &devs[i]))
            order[m++] = i;
    if (m == 0)
        return 0;
    /* The stand-in clocks come from the whole list, matched or not. */
    clock_fill f = clock_fill_make(devs, n);
    sort_auto(devs, &f, order, 0, m);
    if (!allow_fallback)
        return 1;
    size_t total = m;
    for (size_t i = 0; i < n; ++i)
        if (!selector_matches(&s, &devs[i]))
            order[total++] = i;
    sort_auto(devs, &f, order, m, total);
    return total;
}
