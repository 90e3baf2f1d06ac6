/* Environment numbers are parsed strictly: $CLATTN_UNFUSED_SCRATCH_BYTES
   takes effect only as plain decimal digits below the default limit; any
   other value is ignored, never reinterpreted (strtoull read
   "-18446744073709551615" as 1 byte), and the reason is kept in
   clattn_info.selection_log. The effect is observed through the unfused
   path: without probabilities one row of seq_kv scores must fit the
   limit, so a 64-byte limit refuses 17 keys (68 bytes) with UNSUPPORTED.
   Also: $CLATTN_SDPA_PATH pins what AUTO runs only among the paths AUTO
   may take, so head dims over the fused limit still run (unfused); and
   $CLATTN_KERNEL_CLASS forces the kernel class (the fused variant FUSED
   picks, a selection-log line) and, for cpu-wide and cpu-narrow, the CPU
   tiles (the kernel target and the fused-cpu build's rows per tile),
   while a value it does not know fails context creation with
   INVALID_ARGUMENT. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include "context_internal.h"
#include "kernel_params.h"
#include "reference.h"
#include "sdpa_case.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs a 17-key unfused call without probs on a context created with the
   variable set to value; returns its status, and whether the selection
   log mentions the variable. */
static clattn_status scratch_call(const char *value, int *noted)
{
    setenv("CLATTN_UNFUSED_SCRATCH_BYTES", value, 1);
    clattn_context *ctx = test_context();
    unsetenv("CLATTN_UNFUSED_SCRATCH_BYTES");
    clattn_info info;
    CHECK(clattn_context_info(ctx, &info) == CLATTN_SUCCESS, "info");
    *noted = strstr(info.selection_log, "CLATTN_UNFUSED_SCRATCH_BYTES") != 0;

    sdpa_inputs in;
    sdpa_inputs_plain(&in, 1, 1, 2, 17, 4, 90);
    cl_int err;
    size_t bytes[4] = {in.n_q, in.n_k, in.n_v, in.n_out};
    const float *src[3] = {in.q, in.k, in.v};
    cl_mem m[4];
    for (int i = 0; i < 4; ++i)
        m[i] = clCreateBuffer(
            info.cl_ctx,
            i < 3 ? CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR : CL_MEM_READ_WRITE,
            bytes[i] * sizeof(float), i < 3 ? (void *)src[i] : NULL, &err);
    clattn_sdpa_tensors t;
    memset(&t, 0, sizeof t);
    size_t dq[4] = {1, 1, 2, 4}, dk[4] = {1, 1, 17, 4};
    clattn_tensor_contiguous(&t.q, m[0], 0, dq);
    clattn_tensor_contiguous(&t.k, m[1], 0, dk);
    clattn_tensor_contiguous(&t.v, m[2], 0, dk);
    clattn_tensor_contiguous(&t.out, m[3], 0, dq);
    cl_event done = NULL;
    clattn_status s = clattn_sdpa(ctx, &in.desc, &t, CLATTN_SDPA_PATH_UNFUSED,
                                  0, NULL, &done);
    if (done) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    for (int i = 0; i < 4; ++i)
        clReleaseMemObject(m[i]);
    sdpa_inputs_free(&in);
    clattn_context_destroy(ctx);
    return s;
}

static void scratch_bytes_parsing(void)
{
    static const struct {
        const char *value;
        int applied;
    } cases[] = {
        {"64", 1},
        {"-18446744073709551615", 0}, /* strtoull: 1 */
        {"-64", 0},
        {"+64", 0},
        {" 64", 0},
        {"64 ", 0},
        {"64abc", 0},
        {"0x40", 0},
        {"0", 0},
        {"", 0},
        {"18446744073709551616", 0}, /* 2^64: overflows */
        {"99999999999999999999999", 0},
        {"18446744073709551615", 0}, /* not below the default */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        int noted = 0;
        clattn_status s = scratch_call(cases[i].value, &noted);
        clattn_status want =
            cases[i].applied ? CLATTN_ERROR_UNSUPPORTED : CLATTN_SUCCESS;
        CHECK(s == want, "CLATTN_UNFUSED_SCRATCH_BYTES='%s': got %s, want %s",
              cases[i].value, clattn_status_string(s),
              clattn_status_string(want));
        CHECK(noted == !cases[i].applied,
              "CLATTN_UNFUSED_SCRATCH_BYTES='%s': the selection log %s the "
              "value",
              cases[i].value, noted ? "mentions" : "does not mention");
    }
}

/* head_dim 300 (over the fused limit of 256) under every pin of AUTO. */
static void pin_never_refuses(void)
{
    static const char *pins[] = {"fused", "fused-cpu", "fused-gpu", "unfused",
                                 "auto"};
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; ++i) {
        setenv("CLATTN_SDPA_PATH", pins[i], 1);
        clattn_context *ctx = test_context();
        unsetenv("CLATTN_SDPA_PATH");
        sdpa_inputs in;
        sdpa_inputs_plain(&in, 1, 2, 5, 7, 300, 91);
        char name[64];
        snprintf(name, sizeof name, "head_dim 300, CLATTN_SDPA_PATH=%s",
                 pins[i]);
        sdpa_case_check(ctx, name, &in);
        sdpa_inputs_free(&in);
        clattn_context_destroy(ctx);
    }
}

/* The kernel target a CLATTN_KERNEL_CLASS value gives a context, and the
   rows per CPU score tile its fused-cpu program is built with: cpu-wide
   and cpu-narrow pin the tiles, cpu and auto take them from the device's
   native float vector width (narrow below 16), gpu the GPU-class values. */
static void kernel_target_check(clattn_context *ctx, const char *value)
{
    cl_uint width = 0;
    clGetDeviceInfo(ctx->device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT,
                    sizeof width, &width, NULL);
    const int pinned_cpu = strncmp(value, "cpu", 3) == 0;
    kernel_target want =
        width < 16 ? KERNEL_TARGET_CPU_NARROW : KERNEL_TARGET_CPU_WIDE;
    if (strcmp(value, "cpu-wide") == 0)
        want = KERNEL_TARGET_CPU_WIDE;
    else if (strcmp(value, "cpu-narrow") == 0)
        want = KERNEL_TARGET_CPU_NARROW;
    else if (strcmp(value, "gpu") == 0 ||
             (!pinned_cpu && context_gpu_class(ctx)))
        want = KERNEL_TARGET_GPU;
    const kernel_target got = context_kernel_target(ctx);
    CHECK(got == want, "CLATTN_KERNEL_CLASS='%s': kernel target %d, want %d",
          value, (int)got, (int)want);
    char options[512] = "";
    const char *rows = got == KERNEL_TARGET_CPU_NARROW ? " -DFC_RT=1 "
                       : got == KERNEL_TARGET_CPU_WIDE ? " -DFC_RT=4 "
                                                       : NULL;
    CHECK(kernel_params_append_options(PROGRAM_SDPA_FUSED_CPU, got, options,
                                       sizeof options) == 0,
          "fused-cpu options do not fit %zu bytes", sizeof options);
    strcat(options, " ");
    CHECK(!rows || strstr(options, rows),
          "CLATTN_KERNEL_CLASS='%s': fused-cpu options '%s' lack '%s'", value,
          options, rows ? rows : "");
}

/* CLATTN_KERNEL_CLASS: gpu and cpu force the class (and so the fused
   variant), auto and empty leave it to the device, anything else fails
   context creation and names the variable. The forced classes' kernels
   are run by the *@gpu-class and *@fused-gpu suites: a fused-gpu call
   here, its kernel compiled cold under LSan's slow unwinder, took this
   suite to 448 s in .ci/sanitize's first pass. */
static void kernel_class_setting(void)
{
    clattn_context *plain = test_context();
    const clattn_sdpa_path own = clattn_sdpa_fused_variant(plain);
    clattn_context_destroy(plain);
    static const struct {
        const char *value;
        clattn_status status;
        clattn_sdpa_path variant; /* AUTO: the device's own */
        const char *log;          /* in selection_log, or NULL */
    } cases[] = {
        {"gpu", CLATTN_SUCCESS, CLATTN_SDPA_PATH_FUSED_GPU,
         "CLATTN_KERNEL_CLASS=gpu"},
        {"cpu", CLATTN_SUCCESS, CLATTN_SDPA_PATH_FUSED_CPU,
         "CLATTN_KERNEL_CLASS=cpu: "},
        {"cpu-wide", CLATTN_SUCCESS, CLATTN_SDPA_PATH_FUSED_CPU,
         "CLATTN_KERNEL_CLASS=cpu-wide: "},
        {"cpu-narrow", CLATTN_SUCCESS, CLATTN_SDPA_PATH_FUSED_CPU,
         "CLATTN_KERNEL_CLASS=cpu-narrow: "},
        {"cpu-avx2", CLATTN_ERROR_INVALID_ARGUMENT, CLATTN_SDPA_PATH_AUTO,
         NULL},
        {"auto", CLATTN_SUCCESS, CLATTN_SDPA_PATH_AUTO, NULL},
        {"", CLATTN_SUCCESS, CLATTN_SDPA_PATH_AUTO, NULL},
        {"GPU", CLATTN_ERROR_INVALID_ARGUMENT, CLATTN_SDPA_PATH_AUTO, NULL},
        {"gpu ", CLATTN_ERROR_INVALID_ARGUMENT, CLATTN_SDPA_PATH_AUTO, NULL},
        {"fused-gpu", CLATTN_ERROR_INVALID_ARGUMENT, CLATTN_SDPA_PATH_AUTO,
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        setenv("CLATTN_KERNEL_CLASS", cases[i].value, 1);
        clattn_context *ctx = NULL;
        clattn_status s = clattn_context_create(NULL, &ctx);
        unsetenv("CLATTN_KERNEL_CLASS");
        CHECK(s == cases[i].status, "CLATTN_KERNEL_CLASS='%s': got %s, want %s",
              cases[i].value, clattn_status_string(s),
              clattn_status_string(cases[i].status));
        if (s != CLATTN_SUCCESS) {
            CHECK(strstr(clattn_context_last_error(ctx),
                         "CLATTN_KERNEL_CLASS") != NULL,
                  "CLATTN_KERNEL_CLASS='%s': the error names the variable "
                  "(%s)",
                  cases[i].value, clattn_context_last_error(ctx));
            clattn_context_destroy(ctx);
            continue;
        }
        const clattn_sdpa_path want =
            cases[i].variant == CLATTN_SDPA_PATH_AUTO ? own : cases[i].variant;
        CHECK(clattn_sdpa_fused_variant(ctx) == want,
              "CLATTN_KERNEL_CLASS='%s': FUSED runs %s, want %s",
              cases[i].value,
              clattn_sdpa_path_name(clattn_sdpa_fused_variant(ctx)),
              clattn_sdpa_path_name(want));
        clattn_info info;
        clattn_context_info(ctx, &info);
        const int logged =
            strstr(info.selection_log, "CLATTN_KERNEL_CLASS") != NULL;
        CHECK(logged == (cases[i].log != NULL) &&
                  (!cases[i].log || strstr(info.selection_log, cases[i].log)),
              "CLATTN_KERNEL_CLASS='%s': selection log %s the class (%s)",
              cases[i].value, logged ? "mentions" : "does not mention",
              info.selection_log);
        kernel_target_check(ctx, cases[i].value);
        clattn_context_destroy(ctx);
    }
}

/* CLATTN_SDPA_PROBS_PLAN: materialize, recompute, auto and empty create
   a context (which plan each call takes is test_sdpa_fused's, through the
   library's memory), anything else fails creation and names the
   variable. */
static void probs_plan_setting(void)
{
    static const struct {
        const char *value;
        clattn_status status;
    } cases[] = {
        {"materialize", CLATTN_SUCCESS},
        {"recompute", CLATTN_SUCCESS},
        {"auto", CLATTN_SUCCESS},
        {"", CLATTN_SUCCESS},
        {"Materialize", CLATTN_ERROR_INVALID_ARGUMENT},
        {"recompute ", CLATTN_ERROR_INVALID_ARGUMENT},
        {"unfused", CLATTN_ERROR_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        setenv("CLATTN_SDPA_PROBS_PLAN", cases[i].value, 1);
        clattn_context *ctx = NULL;
        clattn_status s = clattn_context_create(NULL, &ctx);
        unsetenv("CLATTN_SDPA_PROBS_PLAN");
        CHECK(s == cases[i].status,
              "CLATTN_SDPA_PROBS_PLAN='%s': got %s, want %s", cases[i].value,
              clattn_status_string(s), clattn_status_string(cases[i].status));
        CHECK(s == CLATTN_SUCCESS || strstr(clattn_context_last_error(ctx),
                                            "CLATTN_SDPA_PROBS_PLAN") != NULL,
              "CLATTN_SDPA_PROBS_PLAN='%s': the error names the variable (%s)",
              cases[i].value, clattn_context_last_error(ctx));
        clattn_context_destroy(ctx);
    }
}

int main(void)
{
    scratch_bytes_parsing();
    pin_never_refuses();
    kernel_class_setting();
    probs_plan_setting();
    return test_finish("test_env_settings");
}
