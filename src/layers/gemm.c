/* CLBlast GEMMs for the projection layers. CLBlast keeps its own
   per-device kernel cache; the tuned parameters of the device class are
   handed to it once per device in the process, before the first GEMM
   there compiles. */
#include "gemm.h"
#include "context_internal.h"
#include "gemm_tuning.h"

#include <clblast_c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* CLBlastOverrideParameters is process-wide: CLBlast keeps one parameter
   database and keys it on the device, not on a context. So the tuning is
   applied once per device in the process, and every context on that device
   shares the outcome; a failure is reported on every GEMM there (the
   parameters would otherwise silently be CLBlast's defaults). The list only
   grows (a handful of devices at most) and an entry is immutable once
   published, so lookups take no lock; it lives as long as the process, as
   CLBlast's database does. */
typedef struct tuned_device {
    cl_device_id device;
    int code;           /* CLBlast status of the apply: 0 = applied */
    const char *failed; /* the kernel it failed on (a static string) */
    struct tuned_device *next;
} tuned_device;

static pthread_mutex_t tuned_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(tuned_device *) tuned_devices;

static const tuned_device *find_tuned(cl_device_id device)
{
    for (const tuned_device *t = atomic_load(&tuned_devices); t; t = t->next)
        if (t->device == device)
            return t;
    return NULL;
}

/* The device's entry, applying the tuning first if no thread has; NULL
   only when the host is out of memory. */
static const tuned_device *tune_device(cl_device_id device)
{
    const tuned_device *found = find_tuned(device);
    if (found)
        return found;
    pthread_mutex_lock(&tuned_lock);
    found = find_tuned(device);
    if (!found) {
        tuned_device *t = calloc(1, sizeof *t);
        if (t) {
            t->device = device;
            t->code = gemm_tuning_apply(device, &t->failed);
            t->next = atomic_load(&tuned_devices);
            atomic_store(&tuned_devices, t); /* publishes t's fields */
        }
        found = t;
    }
    pthread_mutex_unlock(&tuned_lock);
    return found;
}

static clattn_status ensure_tuned(clattn_context *ctx)
{
    const tuned_device *t = tune_device(ctx->device);
    if (!t)
        return ctx_error(ctx, CLATTN_ERROR_OUT_OF_MEMORY,
                         "gemm: out of host memory");
    if (t->code == 0)
        return CLATTN_SUCCESS;
    return ctx_error(ctx, CLATTN_ERROR_BLAS,
                     "CLBlastOverrideParameters(%s) failed: CLBlast status %d",
                     t->failed ? t->failed : "?", t->code);
}

static size_t extent(gemm_matrix x, size_t rows)
{
    return layer_extent(x.offset, rows, x.ld);
}

clattn_status gemm_run(clattn_context *ctx, cl_command_queue queue, int trans_a,
                       int trans_b, size_t m, size_t n, size_t k, float alpha,
                       gemm_matrix a, gemm_matrix b, float beta, gemm_matrix c,
                       layer_timer *timer)
{
    /* The layers check their GEMMs during validation; this is the last
       guard, since CLBlast narrows every size and offset to int. */
    size_t ea = extent(a, trans_a ? k : m), eb = extent(b, trans_b ? n : k),
           ec = extent(c, m);
    size_t most = ea > eb ? ea : eb;
    clattn_status status = layer_check_gemm(ctx, "gemm", "projection", m, n, k,
                                            most > ec ? most : ec);
    if (status != CLATTN_SUCCESS)
        return status;
    status = ensure_tuned(ctx);
    if (status != CLATTN_SUCCESS)
        return status;
    cl_event scratch;
    cl_event *event = layer_timer_slot(timer, &scratch);
    CLBlastStatusCode code =
        CLBlastSgemm(CLBlastLayoutRowMajor,
                     trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                     trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n,
                     k, alpha, a.buffer, a.offset, a.ld, b.buffer, b.offset,
                     b.ld, beta, c.buffer, c.offset, c.ld, &queue, event);
    if (code != CLBlastSuccess)
        return ctx_error(ctx, CLATTN_ERROR_BLAS,
                         "CLBlastSgemm(m=%zu n=%zu k=%zu) failed: CLBlast "
                         "status %d",
                         m, n, k, (int)code);
    if (event)
        layer_timer_record(timer, LAYER_STAGE_PROJECTION, *event);
    return CLATTN_SUCCESS;
}

clattn_status gemm_linear(clattn_context *ctx, cl_command_queue queue, size_t m,
                          size_t n, size_t k, gemm_matrix x, gemm_matrix weight,
                          cl_mem bias, size_t bias_offset, int accumulate,
                          gemm_matrix y, layer_timer *timer)
{
    return (context_gpu_class(ctx) ? gemm_linear_blas : gemm_linear_cpu)(
        ctx, queue, m, n, k, x, weight, bias, bias_offset, accumulate, y,
        timer);
}

clattn_status gemm_linear_blas(clattn_context *ctx, cl_command_queue queue,
                               size_t m, size_t n, size_t k, gemm_matrix x,
                               gemm_matrix weight, cl_mem bias,
                               size_t bias_offset, int accumulate,
                               gemm_matrix y, layer_timer *timer)
{
    clattn_status status = gemm_run(ctx, queue, 0, 1, m, n, k, 1.0f, x, weight,
                                    accumulate ? 1.0f : 0.0f, y, timer);
    if (status != CLATTN_SUCCESS || !bias)
        return status;
    cl_event scratch;
    cl_event *event = layer_timer_slot(timer, &scratch);
    status = layer_bias_add(ctx, queue, y.buffer, y.offset, y.ld, m, n, bias,
                            bias_offset, event);
    if (status == CLATTN_SUCCESS && event)
        layer_timer_record(timer, LAYER_STAGE_PROJECTION, *event);
    return status;
}
