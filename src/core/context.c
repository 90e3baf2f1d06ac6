/* Context life cycle: device choice with fallback, wrapping a caller's
   queue, and the info query. */
#include "context_internal.h"
#include "device_select.h"
#include "kernel_params.h"
#include "struct_size.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void clattn_context_options_init(clattn_context_options *opts)
{
    if (opts) {
        memset(opts, 0, sizeof *opts);
        opts->struct_size = sizeof *opts;
    }
}

static clattn_context *context_alloc(void)
{
    clattn_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    if (pthread_mutex_init(&ctx->error_lock, NULL) != 0) {
        free(ctx);
        return NULL;
    }
    if (pthread_mutex_init(&ctx->build_lock, NULL) != 0) {
        pthread_mutex_destroy(&ctx->error_lock);
        free(ctx);
        return NULL;
    }
    ctx_errors_init(ctx);
    ctx->info.platform_index = -1;
    ctx->class_pin = ctx->width_pin = -1;
    ctx->info.device_index = -1;
    return ctx;
}

/* Releases the OpenCL objects, keeping the context struct (and its error
   text) for the caller. */
static void context_release_cl(clattn_context *ctx)
{
    /* Work still in flight (a forward call returns before it is done)
       finishes first: releasing the queue only flushes it, and a driver
       left compiling or running it while the process exits can crash in
       its own teardown (PoCL did, in LLVM's static destructors). */
    if (ctx->queue)
        clFinish(ctx->queue);
    programs_release(&ctx->programs);
    if (ctx->queue)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->cl_ctx)
        clReleaseContext(ctx->cl_ctx);
    ctx->queue = NULL;
    ctx->cl_ctx = NULL;
    ctx->info.queue = NULL;
    ctx->info.cl_ctx = NULL;
}

static void copy_string(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

static int has_extension(cl_device_id device, const char *name)
{
    size_t size = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, 0, NULL, &size) !=
            CL_SUCCESS ||
        size == 0)
        return 0;
    char *ext = malloc(size + 1);
    if (!ext)
        return 0;
    int found = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, size, ext, NULL) ==
        CL_SUCCESS) {
        ext[size] = '\0';
        size_t n = strlen(name);
        for (char *p = strstr(ext, name); p && !found; p = strstr(p + 1, name))
            found = (p == ext || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0');
    }
    free(ext);
    return found;
}

/* A byte count from the environment: decimal digits only, no sign, no
   overflow, at least 1. strtoull alone would read "-18446744073709551615"
   as 1 and "12abc" as 12. Returns 1 and *out on success, else 0 with the
   reason in why. */
static int parse_env_bytes(const char *text, unsigned long long *out,
                           const char **why)
{
    unsigned long long v = 0;
    if (!*text) {
        *why = "empty";
        return 0;
    }
    for (const char *c = text; *c; ++c) {
        if (*c < '0' || *c > '9') {
            *why = "not a decimal byte count (digits only)";
            return 0;
        }
        if (__builtin_mul_overflow(v, 10ull, &v) ||
            __builtin_add_overflow(v, (unsigned long long)(*c - '0'), &v)) {
            *why = "too large";
            return 0;
        }
    }
    if (v == 0) {
        *why = "0 bytes";
        return 0;
    }
    *out = v;
    return 1;
}

/* Score scratch of the unfused path: at most 256 MiB, a quarter of the
   device memory, or one allocation; $CLATTN_UNFUSED_SCRATCH_BYTES lowers
   it (a memory cap for callers, and how the tests reach the chunked path
   with small shapes). A value that is malformed, or not below the default,
   is ignored, and the reason is kept in ctx->env_note (appended to the
   selection log). */
static size_t scratch_limit(clattn_context *ctx, const clattn_info *in)
{
    size_t limit = (size_t)256 << 20;
    if (in->max_alloc_bytes < limit)
        limit = (size_t)in->max_alloc_bytes;
    if (in->global_mem_bytes / 4 < limit)
        limit = (size_t)(in->global_mem_bytes / 4);
    const char *env = getenv("CLATTN_UNFUSED_SCRATCH_BYTES");
    ctx->env_note[0] = '\0';
    if (env) {
        unsigned long long v = 0;
        const char *why = NULL;
        if (!parse_env_bytes(env, &v, &why) || v >= limit)
            snprintf(ctx->env_note, sizeof ctx->env_note,
                     "CLATTN_UNFUSED_SCRATCH_BYTES=%.40s%s ignored: %s (the "
                     "limit stays %zu)\n",
                     env, strlen(env) > 40 ? "..." : "",
                     why ? why : "not below the default limit", limit);
        else
            limit = (size_t)v;
    }
    return limit;
}

/* Fills ctx->info from ctx->platform and ctx->device. */
static void fill_device_info(clattn_context *ctx)
{
    clattn_info *in = &ctx->info;
    cl_device_id dev = ctx->device;
    in->platform = ctx->platform;
    in->device = dev;
    in->cl_ctx = ctx->cl_ctx;
    in->queue = ctx->queue;
    platform_string(ctx->platform, CL_PLATFORM_NAME, in->platform_name,
                    sizeof in->platform_name);
    device_string(dev, CL_DEVICE_NAME, in->device_name, sizeof in->device_name);
    device_string(dev, CL_DEVICE_VENDOR, in->device_vendor,
                  sizeof in->device_vendor);
    device_string(dev, CL_DEVICE_VERSION, in->device_version,
                  sizeof in->device_version);
    device_string(dev, CL_DRIVER_VERSION, in->driver_version,
                  sizeof in->driver_version);
    /* Numbers a device fails to report read as 0, never as the previous
       candidate's. */
    in->device_type = 0;
    in->compute_units = in->clock_mhz = 0;
    in->global_mem_bytes = in->local_mem_bytes = in->max_alloc_bytes = 0;
    in->max_work_group_size = 0;
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof in->device_type,
                    &in->device_type, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof in->compute_units,
                    &in->compute_units, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof in->clock_mhz,
                    &in->clock_mhz, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof in->global_mem_bytes,
                    &in->global_mem_bytes, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof in->local_mem_bytes,
                    &in->local_mem_bytes, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE,
                    sizeof in->max_alloc_bytes, &in->max_alloc_bytes, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                    sizeof in->max_work_group_size, &in->max_work_group_size,
                    NULL);
    in->has_fp16 = has_extension(dev, "cl_khr_fp16");
    in->has_fp64 = has_extension(dev, "cl_khr_fp64");
    ctx->intel_subgroups = has_extension(dev, "cl_intel_subgroups");
    ctx->scratch_limit = scratch_limit(ctx, in);
    cl_device_local_mem_type local = CL_GLOBAL;
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_TYPE, sizeof local, &local, NULL);
    ctx->local_mem_dedicated = local == CL_LOCAL;
    ctx->gpu_class = ctx->class_pin >= 0 ? ctx->class_pin
                                         : device_class(in->device_type) !=
                                                   CL_DEVICE_TYPE_CPU &&
                                               ctx->local_mem_dedicated;
    cl_uint width = 0;
    clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof width,
                    &width, NULL);
    ctx->narrow_vectors = ctx->width_pin >= 0 ? ctx->width_pin : width < 16;
}

/* $CLATTN_KERNEL_CLASS: "gpu" builds and picks the GPU-class forms of
   every kernel family on any device, "cpu" the others (their tiles by
   the device's vector width), "cpu-wide" and "cpu-narrow" the CPU-class
   forms with the tiles of wide-vector (AVX-512) or narrow-vector (AVX2,
   NEON) CPUs, "auto" (or unset) decides both by the device. It is how
   each form is tested on any machine. Read once per context, before a
   device is opened; an unknown value fails creation, as a bad
   $CLATTN_DEVICE does. */
static clattn_status kernel_class_read(clattn_context *ctx)
{
    static const struct {
        const char *value;
        int class_pin, width_pin;
    } pins[] = {{"auto", -1, -1},
                {"gpu", 1, -1},
                {"cpu", 0, -1},
                {"cpu-wide", 0, 0},
                {"cpu-narrow", 0, 1}};
    const char *v = getenv("CLATTN_KERNEL_CLASS");
    ctx->class_pin = ctx->width_pin = -1;
    if (!v || !*v)
        return CLATTN_SUCCESS;
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; ++i)
        if (strcmp(v, pins[i].value) == 0) {
            ctx->class_pin = pins[i].class_pin;
            ctx->width_pin = pins[i].width_pin;
            return CLATTN_SUCCESS;
        }
    return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                     "CLATTN_KERNEL_CLASS=%.40s: expected auto, gpu, cpu, "
                     "cpu-wide or cpu-narrow",
                     v);
}

int context_gpu_class(const clattn_context *ctx)
{
    return ctx->gpu_class;
}

size_t context_cpu_cache_bytes(const clattn_context *ctx)
{
    cl_ulong cache = 0;
    if (ctx->gpu_class ||
        clGetDeviceInfo(ctx->device, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE,
                        sizeof cache, &cache, NULL) != CL_SUCCESS)
        return 0;
    return cache > SIZE_MAX ? SIZE_MAX : (size_t)cache;
}

kernel_target context_kernel_target(const clattn_context *ctx)
{
    if (ctx->gpu_class)
        return KERNEL_TARGET_GPU;
    return ctx->narrow_vectors ? KERNEL_TARGET_CPU_NARROW
                               : KERNEL_TARGET_CPU_WIDE;
}

/* Context, queue and kernels on one device; on failure the reason is in
   ctx->last_error and nothing is held. */
static clattn_status try_device(clattn_context *ctx, const device_desc *d)
{
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                     (cl_context_properties)d->platform, 0};
    ctx->platform = d->platform;
    ctx->device = d->device;
    ctx->cl_ctx = clCreateContext(props, 1, &d->device, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return ctx_cl_error(ctx, "clCreateContext", err);
    /* Profiling lets clattn-bench time with events; it costs nothing
       measurable on the devices we run. */
    ctx->queue = clCreateCommandQueue(ctx->cl_ctx, d->device,
                                      CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        clattn_status s = ctx_cl_error(ctx, "clCreateCommandQueue", err);
        context_release_cl(ctx);
        return s;
    }
    fill_device_info(ctx);
    ctx->info.platform_index = d->platform_index;
    ctx->info.device_index = d->device_index;
    clattn_status s = programs_build(ctx);
    if (s != CLATTN_SUCCESS)
        context_release_cl(ctx);
    return s;
}

/* One line of the selection log: the device, and what happened. Only the
   first line of a reason is kept (a build log stays in last_error). */
static void log_append(clattn_info *info, const device_desc *d,
                       const char *what, const char *why)
{
    size_t used = strlen(info->selection_log);
    size_t why_len = strcspn(why, "\n");
    if (why_len > 200)
        why_len = 200;
    snprintf(info->selection_log + used, sizeof info->selection_log - used,
             "%d:%d %s (%s): %s%.*s\n", d->platform_index, d->device_index,
             d->name, device_type_name(d->type), what, (int)why_len, why);
}

/* Appends a line that is not about a candidate (an ignored setting). */
static void log_note(clattn_info *info, const char *note)
{
    size_t used = strlen(info->selection_log);
    snprintf(info->selection_log + used, sizeof info->selection_log - used,
             "%s", note);
}

/* The selection log's line for a pinned kernel class. */
static void kernel_class_note(clattn_context *ctx)
{
    if (ctx->class_pin < 0)
        return;
    log_note(
        &ctx->info,
        ctx->class_pin       ? "CLATTN_KERNEL_CLASS=gpu: GPU-class kernels\n"
        : ctx->width_pin < 0 ? "CLATTN_KERNEL_CLASS=cpu: CPU-class kernels\n"
        : ctx->width_pin ? "CLATTN_KERNEL_CLASS=cpu-narrow: CPU-class kernels, "
                           "narrow-vector tiles\n"
                         : "CLATTN_KERNEL_CLASS=cpu-wide: CPU-class kernels, "
                           "wide-vector tiles\n");
}

/* Lists the devices in the error text when a selector matched none. */
static clattn_status no_match(clattn_context *ctx, const char *selector,
                              const device_desc *devs, size_t n)
{
    char list[2048] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof list; ++i)
        used += (size_t)snprintf(
            list + used, sizeof list - used, "\n  %d:%d %s / %s (%s)",
            devs[i].platform_index, devs[i].device_index, devs[i].platform_name,
            devs[i].name, device_type_name(devs[i].type));
    return ctx_error(ctx, CLATTN_ERROR_NO_DEVICE,
                     "no OpenCL device matches selector '%s'; devices:%s",
                     selector, list);
}

static clattn_status select_and_open(clattn_context *ctx, const char *selector,
                                     int allow_fallback)
{
    device_desc *devs = NULL;
    size_t n = 0;
    char why[512];
    clattn_status status = devices_enumerate(&devs, &n, why, sizeof why);
    if (status != CLATTN_SUCCESS)
        return ctx_error(ctx, status, "%s", why);
    size_t *order = malloc(n * sizeof *order);
    if (!order) {
        free(devs);
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    size_t count = devices_rank(devs, n, selector, allow_fallback, order);
    if (count == 0)
        status = no_match(ctx, selector, devs, n);
    clattn_status first_failure = CLATTN_SUCCESS;
    char first_error[CLATTN_ERROR_TEXT_MAX];
    for (size_t i = 0; i < count; ++i) {
        const device_desc *d = &devs[order[i]];
        status = try_device(ctx, d);
        if (status == CLATTN_SUCCESS) {
            ctx->info.fell_back = i > 0;
            log_append(&ctx->info, d,
                       i == 0 ? "chosen" : "chosen after fallback", "");
            break;
        }
        log_append(&ctx->info, d, "failed: ", ctx->last_error);
        if (first_failure == CLATTN_SUCCESS) {
            first_failure = status;
            copy_string(first_error, sizeof first_error, ctx->last_error);
        }
    }
    /* When every candidate failed, report the chosen device's failure (the
       one the caller asked for) and every candidate's line: a failed
       context has no info to ask. */
    if (status != CLATTN_SUCCESS && first_failure != CLATTN_SUCCESS)
        status = ctx_error(ctx, first_failure,
                           "no candidate device worked:\n%s"
                           "the first one's error in full:\n%s",
                           ctx->info.selection_log, first_error);
    free(order);
    free(devs);
    return status;
}

clattn_status clattn_context_create(const clattn_context_options *opts,
                                    clattn_context **out)
{
    if (!out)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    /* The caller's options, read no further than their struct_size; a
       refusal is reported on the failed context made below. */
    clattn_context_options given;
    clattn_context_options_init(&given);
    char refused[STRUCT_WHY_MAX];
    clattn_status copied =
        opts ? struct_copy_in(&given, sizeof given, CONTEXT_OPTIONS_OLDEST_SIZE,
                              opts, "clattn_context_options", refused)
             : CLATTN_SUCCESS;
    opts = &given;
    const char *selector = opts->device;
    if (!selector)
        selector = getenv("CLATTN_DEVICE");
    if (!selector || !*selector)
        selector = "auto";

    clattn_context *ctx = context_alloc();
    if (!ctx)
        return CLATTN_ERROR_OUT_OF_MEMORY;
    *out = ctx;
    if (copied != CLATTN_SUCCESS)
        return ctx_error(ctx, copied, "%s", refused);
    copy_string(ctx->info.selector, sizeof ctx->info.selector, selector);
    clattn_status status = op_settings_read(ctx, &ctx->op_settings);
    if (status == CLATTN_SUCCESS)
        status = kernel_class_read(ctx);
    if (status == CLATTN_SUCCESS)
        status = select_and_open(ctx, selector, !opts->no_fallback);
    if (status == CLATTN_SUCCESS) {
        log_note(&ctx->info, ctx->env_note);
        kernel_class_note(ctx);
        ctx->usable = 1;
        ctx_clear_error(ctx);
    }
    return status;
}

clattn_status clattn_context_create_from_queue(cl_command_queue queue,
                                               clattn_context **out)
{
    if (!out)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    if (!queue)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    clattn_context *ctx = context_alloc();
    if (!ctx)
        return CLATTN_ERROR_OUT_OF_MEMORY;
    *out = ctx;
    copy_string(ctx->info.selector, sizeof ctx->info.selector,
                "caller's queue");
    const char *call = "clGetCommandQueueInfo";
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT,
                                       sizeof ctx->cl_ctx, &ctx->cl_ctx, NULL);
    if (err == CL_SUCCESS)
        err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof ctx->device,
                                    &ctx->device, NULL);
    if (err == CL_SUCCESS) {
        call = "clGetDeviceInfo(CL_DEVICE_PLATFORM)";
        err = clGetDeviceInfo(ctx->device, CL_DEVICE_PLATFORM,
                              sizeof ctx->platform, &ctx->platform, NULL);
    }
    if (err != CL_SUCCESS) {
        ctx->cl_ctx = NULL;
        return ctx_cl_error(ctx, call, err);
    }
    clRetainContext(ctx->cl_ctx);
    clRetainCommandQueue(queue);
    ctx->queue = queue;
    clattn_status status = kernel_class_read(ctx);
    fill_device_info(ctx);
    if (status == CLATTN_SUCCESS)
        status = op_settings_read(ctx, &ctx->op_settings);
    if (status == CLATTN_SUCCESS)
        status = programs_build(ctx);
    if (status != CLATTN_SUCCESS) {
        context_release_cl(ctx);
        return status;
    }
    snprintf(ctx->info.selection_log, sizeof ctx->info.selection_log,
             "%s: given by the caller's queue\n", ctx->info.device_name);
    log_note(&ctx->info, ctx->env_note);
    kernel_class_note(ctx);
    ctx->usable = 1;
    return CLATTN_SUCCESS;
}

void clattn_context_destroy(clattn_context *ctx)
{
    if (!ctx)
        return;
    context_release_cl(ctx);
    ctx_errors_release(ctx);
    pthread_mutex_destroy(&ctx->error_lock);
    pthread_mutex_destroy(&ctx->build_lock);
    free(ctx);
}

void clattn_info_init(clattn_info *info)
{
    if (info) {
        memset(info, 0, sizeof *info);
        info->struct_size = sizeof *info;
    }
}

/* The caller's size comes with the call, never from info->struct_size:
   callers pass info uninitialised (it is an output), and the
   clattn_context_info macro passes the sizeof of the caller's header. */
clattn_status clattn_context_info_sized(const clattn_context *ctx,
                                        clattn_info *info, size_t info_size)
{
    if (!ctx || !info)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    if (!ctx->usable)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    if (info_size < CLATTN_INFO_FIRST_LAYOUT_SIZE)
        return CLATTN_ERROR_INVALID_ARGUMENT;
    struct_copy_out(info, info_size, &ctx->info, sizeof ctx->info);
    return CLATTN_SUCCESS;
}

/* The exported symbol behind the macro, for function pointers and
   bindings: the first layout. */
clattn_status(clattn_context_info)(const clattn_context *ctx, clattn_info *info)
{
    return clattn_context_info_sized(ctx, info, CLATTN_INFO_FIRST_LAYOUT_SIZE);
}
