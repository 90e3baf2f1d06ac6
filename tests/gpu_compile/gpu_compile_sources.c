/* Writes what the library would compile for a GPU-class device, without
   a device, into the folder given as argv[1]: per (program, head dim) one
   NAME.cl (the sources as the library joins them) and one NAME.opts (its
   whole option string). The fused-gpu program is built once per padded
   head dim with the configuration a device with 1024-item work-groups
   and 48 KiB of local memory gets (NVIDIA, AMD), and once with no extras,
   as context creation builds it. run_gpu_compile.sh compiles them. */
#include "program_cache.h"
#include "sdpa_fused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The device the check stands for: NVIDIA's and AMD's limits. */
#define GPU_MAX_WORK_GROUP 1024
#define GPU_LOCAL_MEM ((cl_ulong)48 * 1024)

static int write_file(const char *dir, const char *name, const char *ext,
                      const char *text)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext) >=
        (int)sizeof path)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "gpu_compile_sources: cannot write %s\n", path);
        return -1;
    }
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

/* NAME is program[_decode][+kv-TYPE][@dDIM]: run_gpu_compile.sh reads the
   head dim from it; _decode marks the fused_gpu_decode build, +kv-TYPE a
   build for K and V in fp16 or bf16 (tag, "" for fp32). */
static int emit(const char *dir, program_id id, unsigned head_dim, int decode,
                const char *tag, const char *extra)
{
    char name[128], options[1024];
    char *source = NULL;
    const char *suffix = decode ? "_decode" : "";
    if (head_dim)
        snprintf(name, sizeof name, "%s%s%s@d%u", program_name(id), suffix, tag,
                 head_dim);
    else
        snprintf(name, sizeof name, "%s%s%s", program_name(id), suffix, tag);
    if (program_offline_inputs(id, extra, &source, options, sizeof options)) {
        fprintf(stderr, "gpu_compile_sources: no sources or options for %s\n",
                name);
        return -1;
    }
    int rc = write_file(dir, name, "cl", source);
    if (rc == 0)
        rc = write_file(dir, name, "opts", options);
    free(source);
    if (rc == 0)
        printf("%s: %s\n", name, options);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int rc = 0;
    for (int id = 0; id < PROGRAM_COUNT; ++id)
        rc |= emit(dir, (program_id)id, 0, 0, "", NULL);
    static const unsigned head_dims[] = {64, 80, 96, 128, 256};
    for (int decode = 0; decode <= 1; ++decode)
        for (size_t i = 0; i < sizeof head_dims / sizeof head_dims[0]; ++i) {
            char extra[128];
            if (sdpa_fused_gpu_options(head_dims[i], GPU_MAX_WORK_GROUP,
                                       GPU_LOCAL_MEM, decode, extra,
                                       sizeof extra)) {
                fprintf(stderr,
                        "gpu_compile_sources: no fused-gpu configuration for "
                        "head dim %u\n",
                        head_dims[i]);
                rc = -1;
                continue;
            }
            rc |= emit(dir, PROGRAM_SDPA_FUSED_GPU, head_dims[i], decode, "",
                       extra);
        }
    /* K and V in fp16 and bf16 (cl/core/kv_dtype.clh), fp16 through a
       block table (cl/core/kv_pages.clh), and a packed variable-length
       batch (cl/core/seq_varlen.clh, fused paths only): the programs that
       read them in place on a GPU, the fused ones at head dim 128. */
    static const struct {
        const char *tag, *options;
        int unfused;
    } kv[] = {{"+kv-fp16", "-DK_DTYPE=1 -DV_DTYPE=1", 1},
              {"+kv-bf16", "-DK_DTYPE=2 -DV_DTYPE=2", 1},
              {"+kv-fp16-paged", "-DK_DTYPE=1 -DV_DTYPE=1 -DKV_PAGED=1", 1},
              {"+varlen", "-DSEQ_VARLEN=1", 0}};
    for (size_t t = 0; t < sizeof kv / sizeof kv[0]; ++t) {
        if (kv[t].unfused)
            rc |=
                emit(dir, PROGRAM_SDPA_UNFUSED, 0, 0, kv[t].tag, kv[t].options);
        for (int decode = 0; decode <= 1; ++decode) {
            char extra[192];
            if (sdpa_fused_gpu_options(128, GPU_MAX_WORK_GROUP, GPU_LOCAL_MEM,
                                       decode, extra, sizeof extra)) {
                rc = -1;
                continue;
            }
            const size_t used = strlen(extra);
            snprintf(extra + used, sizeof extra - used, " %s", kv[t].options);
            rc |= emit(dir, PROGRAM_SDPA_FUSED_GPU, 128, decode, kv[t].tag,
                       extra);
        }
    }
    return rc ? 1 : 0;
}
