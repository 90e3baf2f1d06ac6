/* Builds the context's OpenCL programs from the embedded sources (or from
   $CLATTN_KERNEL_DIR, for kernel work), with options chosen from the
   device's capabilities. Built once per context; kernels are created per
   call from the built programs. */
#include "program_cache.h"
#include "context_internal.h"
#include "fault_injection.h"
#include "kernel_sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROGRAM_SOURCES 8

typedef struct program_spec {
    const char *name;
    /* Concatenated in this order; the .cl files include the .clh headers
       themselves only when read standalone (CLATTN_EMBEDDED undefined). */
    const char *sources[MAX_PROGRAM_SOURCES];
} program_spec;

static const program_spec program_specs[PROGRAM_COUNT] = {
    [PROGRAM_SDPA_UNFUSED] = {"sdpa_unfused",
                              {"philox.clh", "sdpa_scores.cl",
                               "sdpa_softmax.cl", "sdpa_pv.cl", NULL}},
    [PROGRAM_SDPA_FUSED_CPU] = {"sdpa_fused_cpu",
                                {"philox.clh", "sdpa_fused_common.clh",
                                 "sdpa_fused_cpu.cl", "sdpa_fused_merge.cl",
                                 NULL}},
    [PROGRAM_SDPA_FUSED_GPU] = {"sdpa_fused_gpu",
                                {"philox.clh", "sdpa_fused_common.clh",
                                 "sdpa_fused_gpu.cl", "sdpa_fused_merge.cl",
                                 NULL}},
    [PROGRAM_LAYER_COMMON] = {"layer_common", {"layer_common.cl", NULL}},
    [PROGRAM_MHA] = {"mha", {"layer_norm.cl", "mha.cl", NULL}},
    [PROGRAM_TALKING_HEADS] = {"talking_heads",
                               {"philox.clh", "sdpa_fused_common.clh",
                                "talking_heads.cl", NULL}},
    [PROGRAM_ADDITIVE] = {"additive", {"additive.cl", NULL}},
};

static const char *embedded_source(const char *name)
{
    for (size_t i = 0; i < clattn_kernel_source_count; ++i)
        if (strcmp(clattn_kernel_sources[i].name, name) == 0)
            return clattn_kernel_sources[i].text;
    return NULL;
}

/* Reads dir/name whole; NULL if it cannot. The caller frees. */
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

static clattn_status build_one(clattn_context *ctx, program_id id,
                               size_t softmax_wg, cl_program *out)
{
    const program_spec *spec = &program_specs[id];
    const char *dir = getenv("CLATTN_KERNEL_DIR");
    const char *texts[MAX_PROGRAM_SOURCES];
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
       path a broken driver would: status, build log, fallback. */
    if (fault_build_fails(ctx->info.device_name))
        texts[count++] = "#error clattn fault injection: this build fails\n";
    cl_int err;
    cl_program program =
        clCreateProgramWithSource(ctx->cl_ctx, count, texts, NULL, &err);
    if (err != CL_SUCCESS) {
        status = ctx_cl_error(ctx, "clCreateProgramWithSource", err);
        goto done;
    }
    char options[256];
    snprintf(options, sizeof options, "-DCLATTN_EMBEDDED=1 -DSOFTMAX_WG=%zu",
             softmax_wg);
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
    *out = program;
done:
    for (cl_uint i = 0; i < MAX_PROGRAM_SOURCES; ++i)
        free(owned[i]);
    return status;
}

/* The row-softmax kernel may allow fewer work-items than the device does
   (registers, local memory): then it is rebuilt for the smaller size. */
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

clattn_status programs_build(clattn_context *ctx)
{
    clattn_programs *p = &ctx->programs;
    size_t wg = softmax_work_group(ctx->info.max_work_group_size);
    for (;;) {
        cl_program program = NULL;
        clattn_status status =
            build_one(ctx, PROGRAM_SDPA_UNFUSED, wg, &program);
        if (status != CLATTN_SUCCESS)
            return status;
        size_t limit = kernel_work_group_limit(ctx, program, "sdpa_softmax");
        if (limit >= wg || wg == 1) {
            p->program[PROGRAM_SDPA_UNFUSED] = program;
            p->softmax_wg = wg;
            break;
        }
        clReleaseProgram(program);
        wg = softmax_work_group(limit);
    }
    for (int id = 0; id < PROGRAM_FIRST_ON_DEMAND; ++id) {
        if (p->program[id])
            continue;
        clattn_status status =
            build_one(ctx, (program_id)id, p->softmax_wg, &p->program[id]);
        if (status != CLATTN_SUCCESS) {
            programs_release(p);
            return status;
        }
    }
    return CLATTN_SUCCESS;
}

void programs_release(clattn_programs *programs)
{
    for (int id = 0; id < PROGRAM_COUNT; ++id) {
        if (programs->program[id])
            clReleaseProgram(programs->program[id]);
        programs->program[id] = NULL;
    }
}

/* The first use of an on-demand program builds it, once, under the
   context's build lock; threads that lose the race use the winner's. */
static clattn_status ensure_built(clattn_context *ctx, program_id id)
{
    clattn_status status = CLATTN_SUCCESS;
    pthread_mutex_lock(&ctx->build_lock);
    if (!ctx->programs.program[id])
        status = build_one(ctx, id, ctx->programs.softmax_wg,
                           &ctx->programs.program[id]);
    pthread_mutex_unlock(&ctx->build_lock);
    return status;
}

clattn_status program_kernel(clattn_context *ctx, program_id id,
                             const char *name, cl_kernel *out)
{
    *out = NULL;
    if (id >= PROGRAM_FIRST_ON_DEMAND) {
        clattn_status status = ensure_built(ctx, id);
        if (status != CLATTN_SUCCESS)
            return status;
    }
    cl_int err;
    *out = clCreateKernel(ctx->programs.program[id], name, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return ctx_cl_error(ctx, "clCreateKernel", err);
    }
    return CLATTN_SUCCESS;
}
