/* Device selection: the ranking rules on made-up device lists (GPU >
   accelerator > CPU, compute units x clock with 0 MHz as unknown, P:D, name
   substrings, fallback order), every selector example of README.md and
   docs/ against a list of real devices' strings, then on the real machine
   (one platform or several): the selector from options and from
   $CLATTN_DEVICE, a selector that matches nothing, a kernel build that
   fails (its log kept), and a machine with no OpenCL platform at all. */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp */
#include "device_select.h"
#include "test_util.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static device_desc fake(int p, int d, cl_device_type type, cl_uint cu,
                        cl_uint mhz, const char *platform,
                        const char *platform_vendor, const char *vendor,
                        const char *name)
{
    device_desc x;
    memset(&x, 0, sizeof x);
    x.platform_index = p, x.device_index = d, x.type = type;
    x.compute_units = cu, x.clock_mhz = mhz;
    snprintf(x.platform_name, sizeof x.platform_name, "%s", platform);
    snprintf(x.platform_vendor, sizeof x.platform_vendor, "%s",
             platform_vendor);
    snprintf(x.vendor, sizeof x.vendor, "%s", vendor);
    snprintf(x.name, sizeof x.name, "%s", name);
    return x;
}

/* The ranked order as "P:D P:D ...". */
static const char *ranked(const device_desc *devs, size_t n, const char *sel,
                          int fallback)
{
    static char text[256];
    size_t order[16];
    size_t m = devices_rank(devs, n, sel, fallback, order);
    text[0] = '\0';
    for (size_t i = 0; i < m; ++i) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "%s%d:%d", i ? " " : "",
                 devs[order[i]].platform_index, devs[order[i]].device_index);
    }
    return text;
}

#define EXPECT_RANK(sel, fallback, want)                                       \
    do {                                                                       \
        const char *got = ranked(devs, n, sel, fallback);                      \
        CHECK(strcmp(got, want) == 0,                                          \
              "selector '%s' fallback %d: got '%s', "                          \
              "want '%s'",                                                     \
              (sel) ? (sel) : "(null)", fallback, got, want);                  \
    } while (0)

static void ranking_rules(void)
{
    const device_desc devs[] = {
        fake(0, 0, CL_DEVICE_TYPE_CPU, 16, 3000, "Portable Computing Language",
             "The pocl project", "GenuineIntel", "pthread-cpu"),
        fake(1, 0, CL_DEVICE_TYPE_GPU, 20, 1000, "Intel(R) OpenCL Graphics",
             "Intel(R) Corporation", "Intel(R) Corporation",
             "Intel(R) UHD Graphics 770"),
        fake(1, 1, CL_DEVICE_TYPE_ACCELERATOR, 8, 500, "Intel(R) FPGA",
             "Intel(R) Corporation", "Intel(R) Corporation", "fpga-emu"),
        fake(2, 0, CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_DEFAULT, 132, 1980,
             "NVIDIA CUDA", "NVIDIA Corporation", "NVIDIA Corporation",
             "NVIDIA H100 80GB HBM3"),
        fake(2, 1, CL_DEVICE_TYPE_GPU, 66, 1980, "NVIDIA CUDA",
             "NVIDIA Corporation", "NVIDIA Corporation", "NVIDIA H100 PCIe"),
        /* A simulator claiming every type, as Oclgrind does: a CPU. */
        fake(3, 0,
             CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_CPU |
                 CL_DEVICE_TYPE_ACCELERATOR | CL_DEVICE_TYPE_DEFAULT,
             1, 1, "Oclgrind", "University of Bristol", "University of Bristol",
             "Oclgrind Simulator"),
    };
    const size_t n = sizeof devs / sizeof *devs;
    /* auto: GPUs by CU x clock, then the accelerator, then the CPU. */
    EXPECT_RANK("auto", 1, "2:0 2:1 1:0 1:1 0:0 3:0");
    EXPECT_RANK("auto", 0, "2:0");
    const char *none = NULL; /* no selector = auto */
    EXPECT_RANK(none, 1, "2:0 2:1 1:0 1:1 0:0 3:0");
    EXPECT_RANK("AUTO", 0, "2:0");
    EXPECT_RANK("gpu", 0, "2:0");
    EXPECT_RANK("gpu", 1, "2:0 2:1 1:0 1:1 0:0 3:0");
    EXPECT_RANK("cpu", 1, "0:0 3:0 2:0 2:1 1:0 1:1");
    EXPECT_RANK("CPU", 0, "0:0");
    EXPECT_RANK("accelerator", 1, "1:1 2:0 2:1 1:0 0:0 3:0");
    EXPECT_RANK("1:0", 0, "1:0");
    EXPECT_RANK("2:1", 1, "2:1 2:0 1:0 1:1 0:0 3:0");
    EXPECT_RANK("4:0", 1, ""); /* no such index */
    EXPECT_RANK("1:", 0, "");  /* not an index pair: a name, matching none */
    EXPECT_RANK("pcie", 0, "2:1"); /* device name, any case */
    EXPECT_RANK("nvidia", 1, "2:0 2:1 1:0 1:1 0:0 3:0");
    EXPECT_RANK("POCL", 0, "0:0");         /* platform vendor */
    EXPECT_RANK("portable", 0, "0:0");     /* platform name */
    EXPECT_RANK("genuineintel", 0, "0:0"); /* vendor */
    EXPECT_RANK("intel", 1, "1:0 1:1 0:0 2:0 2:1 3:0");
    EXPECT_RANK("oclgrind", 0, "3:0");
    EXPECT_RANK("no-such-device", 1, "");

    /* Equal CU x clock: listing order decides. */
    const device_desc twins[] = {
        fake(0, 0, CL_DEVICE_TYPE_GPU, 10, 100, "A", "A", "A", "a"),
        fake(0, 1, CL_DEVICE_TYPE_GPU, 10, 100, "A", "A", "A", "b"),
    };
    size_t order[2];
    CHECK(devices_rank(twins, 2, "auto", 1, order) == 2 && order[0] == 0 &&
              order[1] == 1,
          "equal devices keep listing order");
}

/* 0 MHz is an unknown clock (Intel's CPU runtime), not the slowest: such
   a device counts as clocked like the fastest device of its class that
   reports a clock, else compute units alone decide. */
static void unknown_clock(void)
{
    {
        /* PoCL and Intel's runtime on the same 2 cores: a tie, listing
           order; Intel with more compute units than PoCL wins. */
        const device_desc devs[] = {
            fake(0, 0, CL_DEVICE_TYPE_CPU, 2, 2100,
                 "Portable Computing Language", "The pocl project",
                 "AuthenticAMD", "cpu-znver4-AMD EPYC"),
            fake(1, 0, CL_DEVICE_TYPE_CPU, 2, 0, "Intel(R) OpenCL",
                 "Intel(R) Corporation", "Intel(R) Corporation", "AMD EPYC"),
            fake(2, 0, CL_DEVICE_TYPE_CPU, 4, 0, "Intel(R) OpenCL",
                 "Intel(R) Corporation", "Intel(R) Corporation", "AMD EPYC"),
        };
        const size_t n = 2;
        EXPECT_RANK("auto", 1, "0:0 1:0");
        EXPECT_RANK("intel", 0, "1:0");
        EXPECT_RANK("intel", 1, "1:0 0:0");
        const size_t n3 = 3;
        const char *got = ranked(devs, n3, "auto", 1);
        CHECK(strcmp(got, "2:0 0:0 1:0") == 0,
              "more compute units at unknown clock first: got '%s'", got);
    }
    {
        /* Only unknown clocks: compute units decide, then listing order. */
        const device_desc devs[] = {
            fake(0, 0, CL_DEVICE_TYPE_CPU, 2, 0, "X", "X", "X", "a"),
            fake(0, 1, CL_DEVICE_TYPE_CPU, 8, 0, "X", "X", "X", "b"),
            fake(1, 0, CL_DEVICE_TYPE_CPU, 2, 0, "Y", "Y", "Y", "c"),
        };
        const size_t n = 3;
        EXPECT_RANK("auto", 1, "0:1 0:0 1:0");
    }
    {
        /* The stand-in is per class: a fast GPU's clock does not lift an
           unclocked CPU over a clocked one with more compute units, and
           the stand-in is the class's highest clock, not its first. */
        const device_desc devs[] = {
            fake(0, 0, CL_DEVICE_TYPE_GPU, 4, 2500, "G", "G", "G", "g"),
            fake(1, 0, CL_DEVICE_TYPE_CPU, 2, 0, "I", "I", "I", "unclocked"),
            fake(2, 0, CL_DEVICE_TYPE_CPU, 3, 1000, "P", "P", "P", "slow"),
            fake(2, 1, CL_DEVICE_TYPE_CPU, 1, 3000, "P", "P", "P", "fast"),
        };
        const size_t n = 4;
        /* unclocked: 2 x 3000 = 6000 > 3 x 1000 = 3000 = 1 x 3000. */
        EXPECT_RANK("auto", 1, "0:0 1:0 2:0 2:1");
        EXPECT_RANK("cpu", 0, "1:0");
        EXPECT_RANK("p", 1, "2:0 2:1 0:0 1:0");
    }
}

/* One device_desc as a constant initializer (fake() is a function, and
   the table below is static). */
#define REAL(p, d, t, cu, mhz, plat, plat_vendor, vend, dev_name)              \
    {                                                                          \
        .platform_index = p, .device_index = d, .type = t,                     \
        .compute_units = cu, .clock_mhz = mhz, .platform_name = plat,          \
        .platform_vendor = plat_vendor, .vendor = vend, .name = dev_name       \
    }

/* Devices with the strings real drivers report (clinfo), one per vendor a
   selector example of the docs names. */
static const device_desc real_world[] = {
    REAL(0, 0, CL_DEVICE_TYPE_GPU, 132, 1980, "NVIDIA CUDA",
         "NVIDIA Corporation", "NVIDIA Corporation", "NVIDIA H100 80GB HBM3"),
    REAL(0, 1, CL_DEVICE_TYPE_GPU, 132, 1980, "NVIDIA CUDA",
         "NVIDIA Corporation", "NVIDIA Corporation", "NVIDIA H100 80GB HBM3"),
    REAL(1, 0, CL_DEVICE_TYPE_GPU, 512, 2400, "Intel(R) OpenCL Graphics",
         "Intel(R) Corporation", "Intel(R) Corporation",
         "Intel(R) Arc(TM) A770 Graphics"),
    REAL(2, 0, CL_DEVICE_TYPE_CPU, 2, 2100, "Portable Computing Language",
         "The pocl project", "GenuineIntel",
         "pthread-skylake-avx512-Intel(R) Xeon(R) Processor"),
    REAL(3, 0, CL_DEVICE_TYPE_CPU, 2, 0, "Intel(R) OpenCL",
         "Intel(R) Corporation", "Intel(R) Corporation",
         "Intel(R) Xeon(R) Processor"),
    REAL(4, 0, CL_DEVICE_TYPE_ACCELERATOR, 1, 0,
         "Intel(R) FPGA Emulation Platform for OpenCL(TM)",
         "Intel(R) Corporation", "Intel(R) Corporation",
         "Intel(R) FPGA Emulation Device"),
};
#define REAL_WORLD_COUNT (sizeof real_world / sizeof *real_world)

/* The selector grammar's placeholders in README.md, not selectors. */
static int placeholder(const char *sel)
{
    return strcmp(sel, "P:D") == 0 || strcmp(sel, "name") == 0;
}

/* Each selector of one example: the README lists the grammar with '|',
   clattn-bench takes comma lists. Counts into *count, fails unmatched. */
static void check_example(const char *where, const char *text, int *count)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *sel = strtok_r(buf, "|,", &save); sel;
         sel = strtok_r(NULL, "|,", &save)) {
        if (placeholder(sel))
            continue;
        ++*count;
        size_t order[REAL_WORLD_COUNT];
        size_t m = devices_rank(real_world, REAL_WORLD_COUNT, sel, 0, order);
        CHECK(m == 1, "%s: documented selector '%s' matches no device", where,
              sel);
        if (m == 1)
            printf("%s: selector %s -> %d:%d %s\n", where, sel,
                   real_world[order[0]].platform_index,
                   real_world[order[0]].device_index,
                   real_world[order[0]].name);
    }
}

/* Scans one file for "CLATTN_DEVICE=SEL" and "--device SEL". */
static void scan_examples(const char *path, int *count)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return;
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        ++lineno;
        static const char *const keys[] = {"CLATTN_DEVICE=", "--device "};
        for (size_t k = 0; k < 2; ++k)
            for (const char *p = strstr(line, keys[k]); p;
                 p = strstr(p + 1, keys[k])) {
                const char *t = p + strlen(keys[k]);
                size_t len = 0;
                while (isalnum((unsigned char)t[len]) ||
                       strchr(":|,_.-", t[len]))
                    ++len;
                /* Punctuation after the example, not part of it. */
                while (len > 0 && strchr(".,|", t[len - 1]))
                    --len;
                if (len == 0 || len >= 128)
                    continue;
                char sel[128], where[600];
                memcpy(sel, t, len);
                sel[len] = '\0';
                snprintf(where, sizeof where, "%s:%d", path, lineno);
                check_example(where, sel, count);
            }
    }
    fclose(f);
}

/* Every selector the docs show (README.md and docs/ *.md) matches a device
   of real_world, so no documented example is dead (as "pocl" was while the
   platform vendor was not matched). */
static void documented_selectors(const char *repo)
{
    char path[512];
    int count = 0;
    snprintf(path, sizeof path, "%s/README.md", repo);
    scan_examples(path, &count);
    snprintf(path, sizeof path, "%s/docs", repo);
    DIR *dir = opendir(path);
    CHECK(dir != NULL, "opendir %s", path);
    for (struct dirent *e; dir && (e = readdir(dir));) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 3, ".md") != 0)
            continue;
        snprintf(path, sizeof path, "%s/docs/%s", repo, e->d_name);
        scan_examples(path, &count);
    }
    if (dir)
        closedir(dir);
    /* README alone shows auto, gpu, cpu and accelerator: a scan finding
       fewer is broken, not passing. */
    CHECK(count >= 8, "%d documented selectors found", count);
}

/* A context on the device sel names, with no fallback to another. */
static clattn_status create_exact(const char *sel, clattn_context **ctx)
{
    clattn_context_options o;
    clattn_context_options_init(&o);
    o.device = sel;
    o.no_fallback = 1;
    return clattn_context_create(&o, ctx);
}

static void real_selection(void)
{
    clattn_context *ctx = test_context();
    clattn_info info;
    CHECK(clattn_context_info(ctx, &info) == CLATTN_SUCCESS, "info");
    CHECK(strcmp(info.selector, "auto") == 0 || getenv("CLATTN_DEVICE"),
          "selector recorded: '%s'", info.selector);
    CHECK(strstr(info.selection_log, "chosen") != NULL,
          "selection log names the choice: '%s'", info.selection_log);
    CHECK(info.compute_units > 0 && info.max_work_group_size > 0 &&
              info.max_alloc_bytes > 0 && info.device_name[0],
          "device facts filled in");
    printf("selection log: %s", info.selection_log);
    clattn_context_destroy(ctx);

    /* The same device by index; by a piece of its name and by its class,
       the device the ranking puts first for that selector. With several
       platforms that need not be the auto choice: PoCL's device name
       "pthread-...-Intel(R) Xeon(R) Processor" contains Intel's CPU
       runtime's "Intel(R) Xeon(R) Processor", and both are CPUs. */
    device_desc *devs = NULL;
    size_t n = 0;
    char why[256];
    CHECK(devices_enumerate(&devs, &n, why, sizeof why) == CLATTN_SUCCESS,
          "devices_enumerate: %s", why);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    char index[32];
    snprintf(index, sizeof index, "%d:%d", info.platform_index,
             info.device_index);
    const char *selectors[] = {index, info.device_name + 2, "cpu"};
    for (int i = 0; i < 3 && order; ++i) {
        if (i == 2 && !(info.device_type & CL_DEVICE_TYPE_CPU))
            continue;
        cl_device_id want = i == 0 ? info.device : NULL;
        if (i > 0 && devices_rank(devs, n, selectors[i], 0, order) == 1)
            want = devs[order[0]].device;
        CHECK(want != NULL, "selector '%s' ranks a device", selectors[i]);
        clattn_status s = create_exact(selectors[i], &ctx);
        clattn_info got;
        CHECK(s == CLATTN_SUCCESS &&
                  clattn_context_info(ctx, &got) == CLATTN_SUCCESS &&
                  got.device == want && !got.fell_back,
              "selector '%s': %s", selectors[i], clattn_status_string(s));
        clattn_context_destroy(ctx);
    }

    /* Several devices: each one by its index, and PoCL's by "pocl" (its
       platform vendor, "The pocl project"). */
    for (size_t i = 0; n > 1 && i < n; ++i) {
        char at[32];
        snprintf(at, sizeof at, "%d:%d", devs[i].platform_index,
                 devs[i].device_index);
        clattn_status s = create_exact(at, &ctx);
        clattn_info got;
        CHECK(s == CLATTN_SUCCESS &&
                  clattn_context_info(ctx, &got) == CLATTN_SUCCESS &&
                  got.device == devs[i].device,
              "selector '%s' (%s / %s): %s", at, devs[i].platform_name,
              devs[i].name, clattn_status_string(s));
        clattn_context_destroy(ctx);
    }
    for (size_t i = 0; order && i < n; ++i) {
        if (strcmp(devs[i].platform_name, "Portable Computing Language") != 0)
            continue;
        size_t m = devices_rank(devs, n, "pocl", 0, order);
        CHECK(m == 1 && strcmp(devs[order[0]].platform_name,
                               "Portable Computing Language") == 0,
              "'pocl' selects PoCL (platform vendor '%s')",
              devs[i].platform_vendor);
    }
    free(order);
    free(devs);

    /* Nothing matches: NO_DEVICE, and the failed context lists devices. */
    clattn_context_options o;
    clattn_context_options_init(&o);
    o.device = "no-such-device-anywhere";
    clattn_status s = clattn_context_create(&o, &ctx);
    CHECK(s == CLATTN_ERROR_NO_DEVICE, "unmatched selector: %s",
          clattn_status_string(s));
    CHECK(ctx && strstr(clattn_context_last_error(ctx), info.device_name),
          "error lists the devices: '%s'", clattn_context_last_error(ctx));
    clattn_info unused;
    CHECK(clattn_context_info(ctx, &unused) == CLATTN_ERROR_INVALID_ARGUMENT,
          "a failed context has no info");
    clattn_context_destroy(ctx);

    /* $CLATTN_DEVICE is read when options name no device, and not when
       they do. */
    setenv("CLATTN_DEVICE", "no-such-device-anywhere", 1);
    s = clattn_context_create(NULL, &ctx);
    CHECK(s == CLATTN_ERROR_NO_DEVICE, "$CLATTN_DEVICE honoured: %s",
          clattn_status_string(s));
    clattn_context_destroy(ctx);
    o.device = index;
    s = clattn_context_create(&o, &ctx);
    CHECK(s == CLATTN_SUCCESS, "options override $CLATTN_DEVICE: %s",
          clattn_status_string(s));
    clattn_context_destroy(ctx);
    unsetenv("CLATTN_DEVICE");

    CHECK(clattn_context_create(NULL, NULL) == CLATTN_ERROR_INVALID_ARGUMENT,
          "NULL out");
    clattn_context_destroy(NULL);
}

/* Copies the kernel sources (cl/ with its folders core, sdpa, layers) to
   a temporary directory, breaks one, and builds from there through
   $CLATTN_KERNEL_DIR. */
static void build_failure(const char *cl_dir)
{
    char dir[] = "/tmp/clattn-kernels-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cp -R %s/core %s/sdpa %s/layers %s/ && echo "
             "'this is not OpenCL C;' >> %s/sdpa/sdpa_pv.cl",
             cl_dir, cl_dir, cl_dir, dir, dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    setenv("CLATTN_KERNEL_DIR", dir, 1);
    clattn_context_options o;
    clattn_context_options_init(&o);
    o.no_fallback = 1;
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(&o, &ctx);
    const char *log = clattn_context_last_error(ctx);
    CHECK(s == CLATTN_ERROR_BUILD_FAILED, "broken kernel: %s",
          clattn_status_string(s));
    CHECK(strstr(log, "sdpa_unfused") && strstr(log, "error"),
          "last_error carries the build log: '%.300s'", log);
    clattn_context_destroy(ctx);

    /* A missing source is a build failure too, with the file named. */
    snprintf(cmd, sizeof cmd, "rm %s/sdpa/sdpa_pv.cl", dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    s = clattn_context_create(&o, &ctx);
    CHECK(s == CLATTN_ERROR_BUILD_FAILED &&
              strstr(clattn_context_last_error(ctx), "sdpa_pv.cl"),
          "missing kernel file: %s: %s", clattn_status_string(s),
          clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);
    unsetenv("CLATTN_KERNEL_DIR");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "%s", cmd);

    /* And the embedded kernels still build afterwards. */
    ctx = test_context();
    clattn_context_destroy(ctx);
}

/* Run with OCL_ICD_VENDORS pointing at an empty folder (see CMake). */
static int no_platform(void)
{
    clattn_context *ctx = NULL;
    clattn_status s = clattn_context_create(NULL, &ctx);
    CHECK(s == CLATTN_ERROR_NO_DEVICE, "no platform: %s",
          clattn_status_string(s));
    CHECK(ctx && strstr(clattn_context_last_error(ctx), "platform"),
          "says why: '%s'", clattn_context_last_error(ctx));
    clattn_context_destroy(ctx);
    return test_finish("test_device_select --no-platform");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--no-platform") == 0)
        return no_platform();
    ranking_rules();
    unknown_clock();
    documented_selectors(CLATTN_REPO_DIR);
    real_selection();
    if (argc > 1)
        build_failure(argv[1]);
    return test_finish("test_device_select");
}
