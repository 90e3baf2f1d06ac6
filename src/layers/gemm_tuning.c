/* Hands CLBlast the tuned kernel parameters of src/layers/tuning/clblast_cpu.txt,
   for the devices they were measured on.

   The data stays a text file (one line per CLBlast kernel, grouped in
   sections keyed on the device's identity) so that retuning means rerunning
   the tuners and editing data, not code. The build embeds it with the
   OpenCL sources (cmake/embed_kernels.cmake), so nothing is read from disk
   at run time.

   Line grammar (blank lines and '#' comments are skipped):
     [type=CPU; platform=pocl; device=...; driver=...]
         section header: conditions separated by ';', all of which must
         hold; each an ASCII case-insensitive substring of the device's
           platform  CL_PLATFORM_NAME or CL_PLATFORM_VENDOR
           device    CL_DEVICE_NAME
           driver    CL_DRIVER_VERSION
         and type one of CPU | GPU | ACCELERATOR (the device's class, CPU
         first). platform or device is required: a tuning is only right for
         the runtime it was measured on.
     Xgemm 32 GEMMK=0 MWG=32 ... VWN=8      kernel, precision, NAME=value...
   A kernel line must list every parameter CLBlast knows for that kernel:
   CLBlastOverrideParameters rejects partial sets. Every line is checked
   whether or not its section matches the device. */
#include "gemm_tuning.h"
#include "device_select.h"
#include "kernel_sources.h"

#include <clblast_c.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUNING_DATA_NAME "clblast_cpu.txt"
#define MAX_PARAMS 32 /* Xgemm has 16, XgemmDirect 10 */
#define MAX_TOKEN 64
#define MAX_VALUE 128

static const char section_error[] =
    "section header in " TUNING_DATA_NAME
    " (want [type=..; platform=..; device=..; driver=..])";

/* The kernel names CLBlast 1.5 accepts for overrides. The name handed back
   in *failed_kernel must outlive the call, so it comes from this table
   rather than from a copy of the data text. */
static const char *const known_kernels[] = {
    "Xgemm",     "XgemmDirect",  "GemmRoutine", "Copy",        "Pad",
    "Transpose", "Padtranspose", "Xaxpy",       "Xdot",        "Xgemv",
    "Xger",      "Xconvgemm",    "Invert",      "TrsvRoutine",
};

/* Same lookup as program_cache.c's: the table is small and searched once
   per context. */
const char *gemm_tuning_data(void)
{
    for (size_t i = 0; i < clattn_kernel_source_count; ++i)
        if (strcmp(clattn_kernel_sources[i].name, TUNING_DATA_NAME) == 0)
            return clattn_kernel_sources[i].text;
    return NULL;
}

/* The class name of a device. A device may report several type bits; CPU
   is checked first, as device_select.c's class does (Oclgrind claims every
   type). */
static const char *class_name(cl_device_type type)
{
    if (type & CL_DEVICE_TYPE_CPU)
        return "CPU";
    if (type & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (type & CL_DEVICE_TYPE_ACCELERATOR)
        return "ACCELERATOR";
    return "";
}

static void query_platform(cl_platform_id p, cl_platform_info what, char *dst)
{
    dst[0] = '\0';
    if (p && clGetPlatformInfo(p, what, 256, dst, NULL) != CL_SUCCESS)
        dst[0] = '\0';
    dst[255] = '\0';
}

static void query_device(cl_device_id d, cl_device_info what, char *dst)
{
    dst[0] = '\0';
    if (clGetDeviceInfo(d, what, 256, dst, NULL) != CL_SUCCESS)
        dst[0] = '\0'; /* longer than 256 bytes fails: no match, no tuning */
    dst[255] = '\0';
}

void gemm_tuning_identity_of(cl_device_id device, gemm_tuning_identity *id,
                             char storage[4][256])
{
    cl_device_type type = 0;
    cl_platform_id platform = NULL;
    if (clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof type, &type, NULL) !=
        CL_SUCCESS)
        type = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform,
                        NULL) != CL_SUCCESS)
        platform = NULL;
    query_platform(platform, CL_PLATFORM_NAME, storage[0]);
    query_platform(platform, CL_PLATFORM_VENDOR, storage[1]);
    query_device(device, CL_DEVICE_NAME, storage[2]);
    query_device(device, CL_DRIVER_VERSION, storage[3]);
    id->type = class_name(type);
    id->platform_name = storage[0];
    id->platform_vendor = storage[1];
    id->device_name = storage[2];
    id->driver_version = storage[3];
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Copies the next whitespace-separated token of [*p, end) into out.
   Returns its length, 0 at the end of the line, -1 if it does not fit. */
static int next_token(const char **p, const char *end, char *out)
{
    const char *s = *p;
    while (s < end && is_space(*s))
        ++s;
    const char *t = s;
    while (t < end && !is_space(*t))
        ++t;
    size_t len = (size_t)(t - s);
    *p = t;
    if (len >= MAX_TOKEN)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return (int)len;
}

static const char *known_kernel(const char *name)
{
    for (size_t i = 0; i < sizeof known_kernels / sizeof *known_kernels; ++i)
        if (strcmp(known_kernels[i], name) == 0)
            return known_kernels[i];
    return NULL;
}

/* Parses a decimal size_t; 0 if the text is not one. */
static int parse_size(const char *text, size_t *value)
{
    if (*text < '0' || *text > '9')
        return 0;
    char *rest = NULL;
    unsigned long long v = strtoull(text, &rest, 10);
    if (*rest != '\0')
        return 0;
    *value = (size_t)v;
    return 1;
}

/* An identity key's value matches as a case-insensitive substring; an
   empty value matches nothing. */
static int identity_matches(const char *text, const char *value)
{
    return value[0] && text_contains_nocase(text, value);
}

/* Reads the header [s, end) (s at '['). Returns 1 if well formed, with
 *match set to whether id satisfies every condition; 0 if malformed. */
static int parse_section(const char *s, const char *end,
                         const gemm_tuning_identity *id, int *match)
{
    while (end > s && is_space(end[-1]))
        --end;
    if (end - s < 2 || end[-1] != ']')
        return 0;
    ++s, --end; /* inside the brackets */
    int ok = 1, seen[4] = {0, 0, 0, 0}, identity = 0;
    for (;;) { /* an empty condition ("[]", "[a=b;]") has no '=' */
        const char *stop = memchr(s, ';', (size_t)(end - s));
        if (!stop)
            stop = end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        if (!eq)
            return 0;
        const char *k0 = s, *k1 = eq, *v0 = eq + 1, *v1 = stop;
        while (k0 < k1 && is_space(*k0))
            ++k0;
        while (k1 > k0 && is_space(k1[-1]))
            --k1;
        while (v0 < v1 && is_space(*v0))
            ++v0;
        while (v1 > v0 && is_space(v1[-1]))
            --v1;
        char key[16], value[MAX_VALUE];
        if (k1 == k0 || (size_t)(k1 - k0) >= sizeof key || v1 == v0 ||
            (size_t)(v1 - v0) >= sizeof value)
            return 0;
        memcpy(key, k0, (size_t)(k1 - k0));
        key[k1 - k0] = '\0';
        memcpy(value, v0, (size_t)(v1 - v0));
        value[v1 - v0] = '\0';
        static const char *const keys[] = {"type", "platform", "device",
                                           "driver"};
        int k = 0;
        while (k < 4 && strcmp(key, keys[k]) != 0)
            ++k;
        if (k == 4 || seen[k]++)
            return 0; /* unknown or repeated key */
        switch (k) {
        case 0:
            if (strcmp(value, "CPU") != 0 && strcmp(value, "GPU") != 0 &&
                strcmp(value, "ACCELERATOR") != 0)
                return 0;
            ok = ok && strcmp(id->type, value) == 0;
            break;
        case 1:
            identity = 1;
            ok = ok && (identity_matches(id->platform_name, value) ||
                        identity_matches(id->platform_vendor, value));
            break;
        case 2:
            identity = 1;
            ok = ok && identity_matches(id->device_name, value);
            break;
        case 3: ok = ok && identity_matches(id->driver_version, value); break;
        }
        if (stop == end)
            break;
        s = stop + 1;
    }
    if (!identity)
        return 0;
    *match = ok;
    return 1;
}

/* Reads one kernel line [s, end) and, when apply, hands it to sink. A line
   the parser cannot read is a data error, reported as CLBlast's own code
   for a bad override so that the caller's message names the kernel. */
static int kernel_line(const char *s, const char *end, int apply,
                       gemm_tuning_sink sink, void *user,
                       const char **failed_kernel)
{
    char kernel[MAX_TOKEN], token[MAX_TOKEN];
    char names[MAX_PARAMS][MAX_TOKEN];
    const char *name_ptrs[MAX_PARAMS];
    size_t values[MAX_PARAMS];
    size_t precision = 0, count = 0;
    int len;

    *failed_kernel = "(unknown kernel in " TUNING_DATA_NAME ")";
    if (next_token(&s, end, kernel) <= 0)
        return CLBlastInvalidOverrideKernel;
    const char *name = known_kernel(kernel);
    if (!name)
        return CLBlastInvalidOverrideKernel;
    *failed_kernel = name;
    if (next_token(&s, end, token) <= 0 || !parse_size(token, &precision))
        return CLBlastMissingOverrideParameter;
    while ((len = next_token(&s, end, token)) > 0) {
        char *eq = strchr(token, '=');
        if (!eq || eq == token || count == MAX_PARAMS)
            return CLBlastMissingOverrideParameter;
        *eq = '\0';
        if (!parse_size(eq + 1, &values[count]))
            return CLBlastMissingOverrideParameter;
        strcpy(names[count], token);
        name_ptrs[count] = names[count];
        ++count;
    }
    if (len < 0 || count == 0)
        return CLBlastMissingOverrideParameter;
    return apply ? sink(user, name, precision, count, name_ptrs, values) : 0;
}

int gemm_tuning_parse(const char *text, const gemm_tuning_identity *id,
                      gemm_tuning_sink sink, void *user, const char **failed,
                      size_t *matched)
{
    const char *unused;
    size_t count = 0;
    if (!failed)
        failed = &unused;
    *failed = NULL;
    if (matched)
        *matched = 0;
    int in_section = 0, in_match = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        const char *s = line;
        line = *end ? end + 1 : end;
        while (s < end && is_space(*s))
            ++s;
        if (s == end || *s == '#')
            continue;
        if (*s == '[') {
            if (!parse_section(s, end, id, &in_match)) {
                *failed = section_error;
                return CLBlastInvalidOverrideKernel;
            }
            in_section = 1;
            count += (size_t)in_match;
            continue;
        }
        if (!in_section) {
            /* A kernel line before any header belongs to no device. */
            *failed = section_error;
            return CLBlastInvalidOverrideKernel;
        }
        int code = kernel_line(s, end, in_match, sink, user, failed);
        if (code != 0)
            return code;
    }
    *failed = NULL;
    if (matched)
        *matched = count;
    return 0;
}

static int override_sink(void *user, const char *kernel, size_t precision,
                         size_t count, const char *const *names,
                         const size_t *values)
{
    cl_device_id device = user;
    CLBlastStatusCode code =
        CLBlastOverrideParameters(device, kernel, (CLBlastPrecision)precision,
                                  count, (const char **)names, values);
    return code == CLBlastSuccess ? 0 : (int)code;
}

int gemm_tuning_apply(cl_device_id device, const char **failed_kernel)
{
    const char *unused;
    if (!failed_kernel)
        failed_kernel = &unused;
    *failed_kernel = NULL;

    /* A library built without the data would silently run CLBlast's
       untuned defaults (~10x slower on PoCL): report it instead. */
    const char *text = gemm_tuning_data();
    if (!text) {
        *failed_kernel = TUNING_DATA_NAME " (not embedded)";
        return CLBlastUnexpectedError;
    }
    gemm_tuning_identity id;
    char storage[4][256];
    gemm_tuning_identity_of(device, &id, storage);
    return gemm_tuning_parse(text, &id, override_sink, device, failed_kernel,
                             NULL);
}
