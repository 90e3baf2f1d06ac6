/* CLBlast GEMMs for the projection layers. CLBlast keeps its own
   per-device kernel cache; the tuned parameters of the device class are
   handed to it once per context, before the first GEMM compiles. */
#include "gemm.h"
#include "context_internal.h"
#include "gemm_tuning.h"

#include <clblast_c.h>

/* Once per context: a failure is reported on every GEMM of the context
   (the parameters would otherwise silently be CLBlast's defaults). */
static clattn_status ensure_tuned(clattn_context *ctx)
{
    int state = atomic_load(&ctx->gemm_tuning_state);
    if (state == 0) {
        pthread_mutex_lock(&ctx->build_lock);
        state = atomic_load(&ctx->gemm_tuning_state);
        if (state == 0) {
            const char *failed = NULL;
            ctx->gemm_tuning_code = gemm_tuning_apply(ctx->device, &failed);
            ctx->gemm_tuning_failed = failed;
            state = ctx->gemm_tuning_code == 0 ? 1 : 2;
            atomic_store(&ctx->gemm_tuning_state, state);
        }
        pthread_mutex_unlock(&ctx->build_lock);
    }
    if (state == 1)
        return CLATTN_SUCCESS;
    return ctx_error(ctx, CLATTN_ERROR_BLAS,
                     "CLBlastOverrideParameters(%s) failed: CLBlast status %d",
                     ctx->gemm_tuning_failed ? ctx->gemm_tuning_failed : "?",
                     ctx->gemm_tuning_code);
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
