/* Builds the context's OpenCL programs from the embedded sources (or from
   $CLATTN_KERNEL_DIR, for kernel work), with options made of the family's
   parameters (kernel_params.h), what the device decides (the softmax
   work-group) and a variant's extra options. Each (program, options) is
   built once per context, on first use, and kept until the context goes;
   kernels come from the calling thread's set (kernel_cache.h). Programs
   of the embedded sources go through the persistent binary cache
   (program_disk_cache.h): a valid entry is loaded instead of compiled,
   anything else is compiled and the entry (re)written. */
#include "program_cache.h"
#include "context_internal.h"
#include "device_select.h"
#include "fault_injection.h"
#include "kernel_params.h"
#include "kernel_sources.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROGRAM_SOURCES 10
#define OPTIONS_MAX 1024

struct program_entry {
    program_id id;
    char *options; /* the whole option string: the key */
    cl_program program;
    program_entry *next;
};

typedef struct program_spec {
    const char *name;
    /* Paths under cl/, concatenated in this order: the names of the
       embedded sources (cmake/embed_kernels.cmake) and, under
       $CLATTN_KERNEL_DIR (a copy of cl/ with its folders), the files read.
       The .cl files include the .clh headers themselves only when read
       standalone (CLATTN_EMBEDDED undefined), by paths relative to
       themselves ("../core/philox.clh"). */
    const char *sources[MAX_PROGRAM_SOURCES];
} program_spec;

static const program_spec program_specs[PROGRAM_COUNT] = {
    [PROGRAM_SDPA_UNFUSED] = {"sdpa_unfused",
                              {"core/philox.clh", "core/kv_dtype.clh",
                               "core/kv_pages.clh",
                               "sdpa/sdpa_unfused_params.clh",
                               "sdpa/sdpa_scores.cl", "sdpa/sdpa_softmax.cl",
                               "sdpa/sdpa_pv.cl", NULL}},
    [PROGRAM_SDPA_FUSED_CPU] =
        {"sdpa_fused_cpu",
         {"core/philox.clh", "core/kv_dtype.clh", "core/seq_varlen.clh",
          "core/kv_pages.clh", "sdpa/sdpa_fused_params.clh",
          "core/sdpa_fused_common.clh", "sdpa/sdpa_fused_cpu.cl",
          "sdpa/sdpa_fused_merge.cl", "sdpa/sdpa_unfused_cpu.cl", NULL}},
    [PROGRAM_SDPA_FUSED_GPU] = {"sdpa_fused_gpu",
                                {"core/philox.clh", "core/kv_dtype.clh",
                                 "core/seq_varlen.clh", "core/kv_pages.clh",
                                 "sdpa/sdpa_fused_params.clh",
                                 "core/sdpa_fused_common.clh",
                                 "sdpa/sdpa_fused_gpu.cl",
                                 "sdpa/sdpa_fused_merge.cl", NULL}},
    [PROGRAM_LAYER_COMMON] = {"layer_common",
                              {"core/philox.clh", "core/sdpa_fused_common.clh",
                               "layers/linear_params.clh",
                               "layers/layer_common.cl", "layers/linear_cpu.cl",
                               NULL}},
    [PROGRAM_MHA] = {"mha", {"layers/layer_norm.cl", "layers/mha.cl", NULL}},
    [PROGRAM_TALKING_HEADS] = {"talking_heads",
                               {"core/philox.clh", "core/sdpa_fused_common.clh",
                                "layers/talking_heads_params.clh",
                                "layers/talking_heads.cl", NULL}},
    [PROGRAM_ADDITIVE] = {"additive",
                          {"layers/additive_params.clh", "layers/additive.cl",
                           NULL}},
    [PROGRAM_KV_APPEND] = {"kv_append",
                           {"core/kv_dtype.clh", "core/kv_pages.clh",
                            "core/rope.clh", "sdpa/kv_append.cl", NULL}},
    [PROGRAM_ROPE] = {"rope",
                      {"core/kv_dtype.clh", "core/rope.clh", "sdpa/rope.cl",
                       NULL}},
};

static const char *embedded_source(const char *name)
{
    for (size_t i = 0; i < clattn_kernel_source_count; ++i)
        if (strcmp(clattn_kernel_sources[i].name, name) == 0)
            return clattn_kernel_sources[i].text;
    return NULL;
}

/* Reads dir/name whole (name a path under cl/, "sdpa/sdpa_pv.cl"); NULL
   if it cannot. The caller frees. */
static char *read_source_file(const char *dir, const char *name)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0)
        text = malloc((size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, f) == (size_t)size) {
        text[size] = '\0';
    } else {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* The largest power of two work-group for the row softmax the device
   allows, capped where wider groups stop paying off. */
static size_t softmax_work_group(size_t device_max)
{
    size_t wg = 1;
    while (wg * 2 <= device_max && wg * 2 <= 256)
        wg *= 2;
    return wg;
}

/* The side of the unfused GEMM steps' square work-group (UT_SIDE,
   cl/sdpa/sdpa_unfused_params.clh): the largest power of two, up to 16,
   whose square fits the softmax's work-group, so that one size check
   covers the three kernels. */
static size_t unfused_tile_side(size_t softmax_wg)
{
    size_t side = 1;
    while (side * 2 <= 16 && (side * 2) * (side * 2) <= softmax_wg)
        side *= 2;
    return side;
}

static void cache_key(const clattn_context *ctx, const char *const *texts,
                      cl_uint count, const char *options, disk_cache_key *key)
{
    const disk_cache_inputs in = {
        .sources = texts,
        .source_count = count,
        .options = options,
        .device_name = ctx->info.device_name,
        .device_version = ctx->info.device_version,
        .driver_version = ctx->info.driver_version,
        .platform_name = ctx->info.platform_name,
        .platform_version = ctx->programs.platform_version,
    };
    disk_cache_key_compute(&in, key);
}

/* The cached binary built for the device, or NULL: a missing entry, one
   that fails its checks, or one the driver refuses (its binary format
   changed without a version bump, say) all end in a source build. */
static cl_program load_cached(clattn_context *ctx, const disk_cache_key *key,
                              const char *options)
{
    clattn_programs *p = &ctx->programs;
    unsigned char *binary = NULL;
    size_t size = 0;
    disk_cache_lookup found =
        disk_cache_load(p->cache_dir, key, &binary, &size);
    if (found == DISK_CACHE_MISS)
        return NULL;
    cl_program program = NULL;
    if (found == DISK_CACHE_HIT) {
        const unsigned char *bins[1] = {binary};
        cl_int binary_status = CL_SUCCESS, err;
        program = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->device, &size,
                                            bins, &binary_status, &err);
        /* a failed create returns NULL; a program with a bad binary status
           or that does not build is released */
        if (program && (err != CL_SUCCESS || binary_status != CL_SUCCESS ||
                        clBuildProgram(program, 1, &ctx->device, options, NULL,
                                       NULL) != CL_SUCCESS)) {
            clReleaseProgram(program);
            program = NULL;
        }
    }
    free(binary);
    if (program)
        p->cache_stats.loads++;
    else
        p->cache_stats.rejects++;
    return program;
}

/* Writes the device's binary of a freshly built program; any failure only
   means the next process compiles again. */
static void store_binary(clattn_context *ctx, cl_program program,
                         const disk_cache_key *key)
{
    cl_uint n = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_NUM_DEVICES, sizeof n, &n, NULL) !=
            CL_SUCCESS ||
        n == 0)
        return;
    cl_device_id *devices = calloc(n, sizeof *devices);
    size_t *sizes = calloc(n, sizeof *sizes);
    unsigned char **bins = calloc(n, sizeof *bins);
    cl_uint mine = n;
    if (devices && sizes && bins &&
        clGetProgramInfo(program, CL_PROGRAM_DEVICES, n * sizeof *devices,
                         devices, NULL) == CL_SUCCESS &&
        clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, n * sizeof *sizes,
                         sizes, NULL) == CL_SUCCESS)
        for (cl_uint i = 0; i < n; ++i)
            if (devices[i] == ctx->device)
                mine = i;
    /* Only this device's binary is asked for: a NULL entry tells the
       driver to skip the others (a caller's context may hold several). */
    if (mine < n && sizes[mine] > 0 &&
        (bins[mine] = malloc(sizes[mine])) != NULL &&
        clGetProgramInfo(program, CL_PROGRAM_BINARIES, n * sizeof *bins, bins,
                         NULL) == CL_SUCCESS &&
        disk_cache_store(ctx->programs.cache_dir, key, bins[mine],
                         sizes[mine]) == 0)
        ctx->programs.cache_stats.stores++;
    if (bins && mine < n)
        free(bins[mine]);
    free(bins);
    free(sizes);
    free(devices);
}

/* What a build's options take from the device. */
typedef struct build_device {
    kernel_target target; /* which of the families' parameter values */
    size_t softmax_wg;    /* the unfused softmax's work-group */
    int intel_subgroups;  /* fused-gpu: FG_SUBGROUPS=1 */
} build_device;

static build_device device_of(const clattn_context *ctx, size_t softmax_wg)
{
    build_device d = {context_kernel_target(ctx), softmax_wg,
                      ctx->intel_subgroups};
    return d;
}

/* The whole option string of a build of id: no warnings, embedded-source
   mode, the family's parameters (the values of the device's
   kernel_target), the device's softmax work-group (unfused only) and
   sub-group support (fused-gpu only), then the variant's extras. -1 when
   it does not fit. -w (OpenCL's "inhibit all warnings"): PoCL's compiler
   prints a count of warnings to the process's stderr ("162 warnings
   generated." for the fused-cpu program on an AVX2 machine, all of them
   clang's note that a float16 argument would change an AVX-512 call ABI),
   and the library never prints. Errors still fail the build and reach
   last_error with the log. */
static int build_options(program_id id, const build_device *dev,
                         const char *extra, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "-w -DCLATTN_EMBEDDED=1");
    if (n < 0 || (size_t)n >= cap ||
        kernel_params_append_options(id, dev->target, buf, cap))
        return -1;
    size_t used = strlen(buf);
    n = 0;
    if (id == PROGRAM_SDPA_UNFUSED)
        n = snprintf(buf + used, cap - used, " -DSOFTMAX_WG=%zu -DUT_SIDE=%zu",
                     dev->softmax_wg, unfused_tile_side(dev->softmax_wg));
    else if (id == PROGRAM_SDPA_FUSED_GPU && dev->intel_subgroups)
        n = snprintf(buf + used, cap - used, " -DFG_SUBGROUPS=1");
    if (n < 0 || (size_t)n >= cap - used)
        return -1;
    used += (size_t)n;
    if (extra && *extra) {
        n = snprintf(buf + used, cap - used, " %s", extra);
        if (n < 0 || (size_t)n >= cap - used)
            return -1;
    }
    return 0;
}

const char *program_name(program_id id)
{
    return program_specs[id].name;
}

int program_offline_inputs(program_id id, const char *extra_options,
                           char **source, char *options, size_t cap)
{
    const program_spec *spec = &program_specs[id];
    *source = NULL;
    const build_device gpu = {KERNEL_TARGET_GPU, softmax_work_group(SIZE_MAX),
                              0};
    if (build_options(id, &gpu, extra_options, options, cap))
        return -1;
    size_t total = 0;
    for (size_t i = 0; spec->sources[i]; ++i) {
        const char *text = embedded_source(spec->sources[i]);
        if (!text)
            return -1;
        total += strlen(text);
    }
    char *joined = malloc(total + 1);
    if (!joined)
        return -1;
    size_t used = 0;
    for (size_t i = 0; spec->sources[i]; ++i) {
        const char *text = embedded_source(spec->sources[i]);
        const size_t n = strlen(text);
        memcpy(joined + used, text, n);
        used += n;
    }
    joined[used] = '\0';
    *source = joined;
    return 0;
}

static clattn_status build_one(clattn_context *ctx, program_id id,
                               const char *options, cl_program *out)
{
    const program_spec *spec = &program_specs[id];
    const char *dir = getenv("CLATTN_KERNEL_DIR");
    const char *texts[MAX_PROGRAM_SOURCES + 1];
    char *owned[MAX_PROGRAM_SOURCES] = {0};
    cl_uint count = 0;
    clattn_status status = CLATTN_SUCCESS;

    for (; spec->sources[count]; ++count) {
        const char *name = spec->sources[count];
        if (dir && *dir) {
            owned[count] = read_source_file(dir, name);
            texts[count] = owned[count];
        } else {
            texts[count] = embedded_source(name);
        }
        if (!texts[count]) {
            status = ctx_error(ctx, CLATTN_ERROR_BUILD_FAILED,
                               "kernel source %s not found%s%s", name,
                               dir && *dir ? " in CLATTN_KERNEL_DIR=" : "",
                               dir && *dir ? dir : "");
            goto done;
        }
    }

    /* An injected fault is a real compile error, so the failure takes the
       path a broken driver would: status, build log, fallback. Its text
       is part of the key, so a cached entry never hides it. */
    if (fault_build_fails(ctx->info.device_name))
        texts[count++] = "#error clattn fault injection: this build fails\n";

    /* Sources being edited under $CLATTN_KERNEL_DIR are never cached:
       each edit would leave another entry behind. */
    int cached = !(dir && *dir) && ctx->programs.cache_state == DISK_CACHE_ON;
    disk_cache_key key;
    if (cached) {
        cache_key(ctx, texts, count, options, &key);
        if ((*out = load_cached(ctx, &key, options)) != NULL)
            goto done;
    }

    cl_int err;
    cl_program program =
        clCreateProgramWithSource(ctx->cl_ctx, count, texts, NULL, &err);
    if (err != CL_SUCCESS) {
        status = ctx_cl_error(ctx, "clCreateProgramWithSource", err);
        goto done;
    }
    err = clBuildProgram(program, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[CLATTN_ERROR_TEXT_MAX - 256];
        size_t log_size = 0;
        log[0] = '\0';
        clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG,
                              sizeof log - 1, log, &log_size);
        log[sizeof log - 1] = '\0';
        clReleaseProgram(program);
        status =
            ctx_error(ctx, CLATTN_ERROR_BUILD_FAILED,
                      "building program %s (%s) failed: %s (%d)\n%s",
                      spec->name, options, cl_error_name(err), (int)err, log);
        goto done;
    }
    ctx->programs.cache_stats.builds++;
    if (cached)
        store_binary(ctx, program, &key);
    *out = program;
done:
    for (cl_uint i = 0; i < MAX_PROGRAM_SOURCES; ++i)
        free(owned[i]);
    return status;
}

/* A kernel may allow fewer work-items than the device does (registers,
   local memory): then the unfused program is rebuilt for the smaller
   size. */
static size_t kernel_work_group_limit(clattn_context *ctx, cl_program program,
                                      const char *name)
{
    cl_kernel kernel = clCreateKernel(program, name, NULL);
    size_t limit = 0;
    if (kernel) {
        clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                 sizeof limit, &limit, NULL);
        clReleaseKernel(kernel);
    }
    return limit;
}

/* Keeps a built program as the entry (id, options); on allocation failure
   the program is released and the status returned. */
static clattn_status add_entry(clattn_context *ctx, program_id id,
                               const char *options, cl_program program,
                               int is_default)
{
    clattn_programs *p = &ctx->programs;
    program_entry *e = malloc(sizeof *e);
    char *copy = malloc(strlen(options) + 1);
    if (!e || !copy) {
        free(e);
        free(copy);
        clReleaseProgram(program);
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "out of host memory keeping a built program");
    }
    strcpy(copy, options);
    *e = (program_entry){id, copy, program, p->entries};
    p->entries = e;
    if (is_default)
        atomic_store_explicit(&p->defaults[id], program, memory_order_release);
    return CLATTN_SUCCESS;
}

static clattn_status options_error(clattn_context *ctx, program_id id)
{
    return ctx_error(ctx, CLATTN_ERROR_INVALID_ARGUMENT,
                     "build options of program %s exceed %d characters",
                     program_specs[id].name, OPTIONS_MAX - 1);
}

int runtime_keeps_kernels(const char *platform_name,
                          const char *pocl_kernel_cache)
{
    return strstr(platform_name, "Portable Computing Language") != NULL &&
           !(pocl_kernel_cache && strcmp(pocl_kernel_cache, "0") == 0);
}

clattn_status programs_build(clattn_context *ctx)
{
    clattn_programs *p = &ctx->programs;
    /* Where the cache lives is settled once per context; a cache that
       cannot be used is no error, the programs are compiled instead. */
    if (runtime_keeps_kernels(ctx->info.platform_name,
                              getenv("POCL_KERNEL_CACHE")) &&
        !fault_disk_cache_everywhere()) {
        p->cache_state = DISK_CACHE_RUNTIME;
        p->cache_dir[0] = '\0';
    } else {
        p->cache_state = disk_cache_open(p->cache_dir, sizeof p->cache_dir);
    }
    platform_string(ctx->platform, CL_PLATFORM_VERSION, p->platform_version,
                    sizeof p->platform_version);
    memset(&p->cache_stats, 0, sizeof p->cache_stats);
    p->entries = NULL;
    for (int id = 0; id < PROGRAM_COUNT; ++id)
        atomic_init(&p->defaults[id], NULL);
    if (kernel_cache_init(&p->kernels) != 0)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "cannot create the kernel cache's lock");
    char options[OPTIONS_MAX];
    size_t wg = softmax_work_group(ctx->info.max_work_group_size);
    clattn_status status = CLATTN_SUCCESS;
    for (;;) {
        cl_program program = NULL;
        const build_device dev = device_of(ctx, wg);
        if (build_options(PROGRAM_SDPA_UNFUSED, &dev, NULL, options,
                          sizeof options)) {
            status = options_error(ctx, PROGRAM_SDPA_UNFUSED);
            break;
        }
        status = build_one(ctx, PROGRAM_SDPA_UNFUSED, options, &program);
        if (status != CLATTN_SUCCESS)
            break;
        /* The softmax runs work-groups of wg, the two GEMM steps squares
           of unfused_tile_side(wg), at most wg: each must allow its own. */
        const size_t side = unfused_tile_side(wg);
        size_t limit = kernel_work_group_limit(ctx, program, "sdpa_softmax");
        const size_t tiles[2] = {
            kernel_work_group_limit(ctx, program, "sdpa_scores"),
            kernel_work_group_limit(ctx, program, "sdpa_pv")};
        for (int t = 0; t < 2; ++t)
            if (tiles[t] < side * side && tiles[t] < limit)
                limit = tiles[t];
        if (limit >= wg || wg == 1) {
            p->softmax_wg = wg;
            p->unfused_side = side;
            status = add_entry(ctx, PROGRAM_SDPA_UNFUSED, options, program, 1);
            break;
        }
        clReleaseProgram(program);
        wg = softmax_work_group(limit);
    }
    for (int id = 0; status == CLATTN_SUCCESS && id < PROGRAM_FIRST_ON_DEMAND;
         ++id) {
        if (id == PROGRAM_SDPA_UNFUSED)
            continue;
        cl_program program = NULL;
        const build_device dev = device_of(ctx, p->softmax_wg);
        if (build_options((program_id)id, &dev, NULL, options, sizeof options))
            status = options_error(ctx, (program_id)id);
        else if ((status = build_one(ctx, (program_id)id, options, &program)) ==
                 CLATTN_SUCCESS)
            status = add_entry(ctx, (program_id)id, options, program, 1);
    }
    if (status != CLATTN_SUCCESS)
        programs_release(p);
    return status;
}

void programs_release(clattn_programs *programs)
{
    /* Kernels first: each holds its program. */
    kernel_cache_release(&programs->kernels);
    for (program_entry *e = programs->entries, *next; e; e = next) {
        next = e->next;
        clReleaseProgram(e->program);
        free(e->options);
        free(e);
    }
    programs->entries = NULL;
    for (int id = 0; id < PROGRAM_COUNT; ++id)
        atomic_store_explicit(&programs->defaults[id], NULL,
                              memory_order_relaxed);
}

/* A build not seen yet is made under the context's build lock, so threads
   asking for it at once build it once: the others wait and take the
   winner's. A failed build is not kept; the next use tries again. */
clattn_status program_get(clattn_context *ctx, program_id id,
                          const char *extra_options, cl_program *out)
{
    clattn_programs *p = &ctx->programs;
    const int is_default = !extra_options || !*extra_options;
    *out = NULL;
    if (is_default) {
        *out = atomic_load_explicit(&p->defaults[id], memory_order_acquire);
        if (*out)
            return CLATTN_SUCCESS;
    }
    char options[OPTIONS_MAX];
    const build_device dev = device_of(ctx, p->softmax_wg);
    if (build_options(id, &dev, extra_options, options, sizeof options))
        return options_error(ctx, id);
    clattn_status status = CLATTN_SUCCESS;
    pthread_mutex_lock(&ctx->build_lock);
    for (const program_entry *e = p->entries; e && !*out; e = e->next)
        if (e->id == id && strcmp(e->options, options) == 0)
            *out = e->program;
    if (!*out) {
        cl_program program = NULL;
        status = build_one(ctx, id, options, &program);
        if (status == CLATTN_SUCCESS)
            status = add_entry(ctx, id, options, program, is_default);
        if (status == CLATTN_SUCCESS)
            *out = program;
    }
    pthread_mutex_unlock(&ctx->build_lock);
    return status;
}

clattn_status program_kernel_variant(clattn_context *ctx, program_id id,
                                     const char *extra_options,
                                     const char *name, cl_kernel *out)
{
    *out = NULL;
    cl_program program;
    clattn_status status = program_get(ctx, id, extra_options, &program);
    if (status != CLATTN_SUCCESS)
        return status;
    cl_int err = kernel_cache_get(&ctx->programs.kernels, program, name, out);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return ctx_cl_error(ctx, "clCreateKernel", err);
    }
    return CLATTN_SUCCESS;
}

clattn_status program_kernel(clattn_context *ctx, program_id id,
                             const char *name, cl_kernel *out)
{
    return program_kernel_variant(ctx, id, NULL, name, out);
}
