/* Hands CLBlast the tuned kernel parameters of src/tuning/clblast_cpu.txt.

   The data stays a text file (one line per CLBlast kernel, grouped in
   [device_type=...] sections) so that retuning means rerunning the tuners
   and editing data, not code. The build embeds it with the OpenCL sources
   (cmake/embed_kernels.cmake), so nothing is read from disk at run time.

   Line grammar (blank lines and '#' comments are skipped):
     [device_type=CPU]                      section: CPU | GPU | ACCELERATOR
     Xgemm 32 GEMMK=0 MWG=32 ... VWN=8      kernel, precision, NAME=value...
   A kernel line must list every parameter CLBlast knows for that kernel:
   CLBlastOverrideParameters rejects partial sets. */
#include "gemm_tuning.h"
#include "kernel_sources.h"

#include <clblast_c.h>

#include <stdlib.h>
#include <string.h>

#define TUNING_DATA_NAME "clblast_cpu.txt"
#define MAX_PARAMS 32   /* Xgemm has 16, XgemmDirect 10 */
#define MAX_TOKEN 64

/* The kernel names CLBlast 1.5 accepts for overrides. The name handed back
   in *failed_kernel must outlive the call, so it comes from this table
   rather than from a copy of the data text. */
static const char *const known_kernels[] = {
    "Xgemm",   "XgemmDirect", "GemmRoutine",  "Copy",   "Pad",
    "Transpose", "Padtranspose", "Xaxpy",     "Xdot",   "Xgemv",
    "Xger",    "Xconvgemm",   "Invert",       "TrsvRoutine",
};

/* Same lookup as program_cache.c's: the table is small and searched once
   per context. */
static const char *embedded_source(const char *name)
{
    for (size_t i = 0; i < clattn_kernel_source_count; ++i)
        if (strcmp(clattn_kernel_sources[i].name, name) == 0)
            return clattn_kernel_sources[i].text;
    return NULL;
}

/* The section name of the device's class. A device may report several type
   bits; CPU is checked first because PoCL's CPU device is the one tuned. */
static const char *device_class(cl_device_id device)
{
    cl_device_type type = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof type, &type, NULL) !=
        CL_SUCCESS)
        return NULL;
    if (type & CL_DEVICE_TYPE_CPU)
        return "CPU";
    if (type & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (type & CL_DEVICE_TYPE_ACCELERATOR)
        return "ACCELERATOR";
    return NULL;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

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

/* Applies one kernel line [s, end). A line the parser cannot read is a
   data error, reported as CLBlast's own code for a bad override so that
   the caller's message names the kernel. */
static int apply_line(cl_device_id device, const char *s, const char *end,
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
    CLBlastStatusCode code = CLBlastOverrideParameters(
        device, name, (CLBlastPrecision)precision, count, name_ptrs, values);
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
    const char *text = embedded_source(TUNING_DATA_NAME);
    if (!text) {
        *failed_kernel = TUNING_DATA_NAME " (not embedded)";
        return CLBlastUnexpectedError;
    }
    const char *cls = device_class(device);
    if (!cls)
        return 0;

    int in_section = 0;
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
            /* "[device_type=CPU]": compare the class between '=' and ']'. */
            static const char key[] = "[device_type=";
            size_t klen = sizeof key - 1, clen = strlen(cls);
            in_section = (size_t)(end - s) > klen + clen &&
                         strncmp(s, key, klen) == 0 &&
                         strncmp(s + klen, cls, clen) == 0 &&
                         s[klen + clen] == ']';
            continue;
        }
        if (!in_section)
            continue;
        int code = apply_line(device, s, end, failed_kernel);
        if (code != 0)
            return code;
    }
    *failed_kernel = NULL;
    return 0;
}
