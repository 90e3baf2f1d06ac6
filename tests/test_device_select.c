/* Device selection: the ranking rules on made-up device lists (GPU >
   accelerator > CPU, compute units x clock, P:D, name substrings, fallback
   order), then on the real machine: the selector from options and from
   $CLATTN_DEVICE, a selector that matches nothing, a kernel build that
   fails (its log kept), and a machine with no OpenCL platform at all. */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp */
#include "device_select.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static device_desc fake(int p, int d, cl_device_type type, cl_uint cu,
                        cl_uint mhz, const char *platform, const char *vendor,
                        const char *name)
{
    device_desc x;
    memset(&x, 0, sizeof x);
    x.platform_index = p, x.device_index = d, x.type = type;
    x.compute_units = cu, x.clock_mhz = mhz;
    snprintf(x.platform_name, sizeof x.platform_name, "%s", platform);
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
             "GenuineIntel", "pthread-cpu"),
        fake(1, 0, CL_DEVICE_TYPE_GPU, 20, 1000, "Intel(R) OpenCL Graphics",
             "Intel(R) Corporation", "Intel(R) UHD Graphics 770"),
        fake(1, 1, CL_DEVICE_TYPE_ACCELERATOR, 8, 500, "Intel(R) FPGA",
             "Intel(R) Corporation", "fpga-emu"),
        fake(2, 0, CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_DEFAULT, 132, 1980,
             "NVIDIA CUDA", "NVIDIA Corporation", "NVIDIA H100 80GB HBM3"),
        fake(2, 1, CL_DEVICE_TYPE_GPU, 66, 1980, "NVIDIA CUDA",
             "NVIDIA Corporation", "NVIDIA H100 PCIe"),
        /* A simulator claiming every type, as Oclgrind does: a CPU. */
        fake(3, 0,
             CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_CPU |
                 CL_DEVICE_TYPE_ACCELERATOR | CL_DEVICE_TYPE_DEFAULT,
             1, 1, "Oclgrind", "University of Bristol", "Oclgrind Simulator"),
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
    EXPECT_RANK("POCL", 0, "");            /* "Portable Computing Language" */
    EXPECT_RANK("portable", 0, "0:0");     /* platform name */
    EXPECT_RANK("genuineintel", 0, "0:0"); /* vendor */
    EXPECT_RANK("intel", 1, "1:0 1:1 0:0 2:0 2:1 3:0");
    EXPECT_RANK("oclgrind", 0, "3:0");
    EXPECT_RANK("no-such-device", 1, "");

    /* Equal CU x clock: listing order decides. */
    const device_desc twins[] = {
        fake(0, 0, CL_DEVICE_TYPE_GPU, 10, 100, "A", "A", "a"),
        fake(0, 1, CL_DEVICE_TYPE_GPU, 10, 100, "A", "A", "b"),
    };
    size_t order[2];
    CHECK(devices_rank(twins, 2, "auto", 1, order) == 2 && order[0] == 0 &&
              order[1] == 1,
          "equal devices keep listing order");
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

    /* The same device by index and by a piece of its name. */
    char index[32];
    snprintf(index, sizeof index, "%d:%d", info.platform_index,
             info.device_index);
    const char *selectors[] = {index, info.device_name + 2, "cpu"};
    for (int i = 0; i < 3; ++i) {
        if (i == 2 && !(info.device_type & CL_DEVICE_TYPE_CPU))
            continue;
        clattn_context_options o;
        clattn_context_options_init(&o);
        o.device = selectors[i];
        o.no_fallback = 1;
        clattn_status s = clattn_context_create(&o, &ctx);
        clattn_info got;
        CHECK(s == CLATTN_SUCCESS &&
                  clattn_context_info(ctx, &got) == CLATTN_SUCCESS &&
                  got.device == info.device && !got.fell_back,
              "selector '%s': %s", selectors[i], clattn_status_string(s));
        clattn_context_destroy(ctx);
    }

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

/* Copies the kernel sources to a temporary directory, breaks one, and
   builds from there through $CLATTN_KERNEL_DIR. */
static void build_failure(const char *cl_dir)
{
    char dir[] = "/tmp/clattn-kernels-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cp %s/*.cl %s/*.clh %s/ && echo "
             "'this is not OpenCL C;' >> %s/sdpa_pv.cl",
             cl_dir, cl_dir, dir, dir);
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
    snprintf(cmd, sizeof cmd, "rm %s/sdpa_pv.cl", dir);
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
    real_selection();
    if (argc > 1)
        build_failure(argv[1]);
    return test_finish("test_device_select");
}
