/* The two row kernels of cl/layers/additive.cl that the additive and concat
   attention layers share: a row softmax in place, and the weighted sum of
   value rows (weights . V). Both run under the ATTENTION stage. */
#ifndef CLATTN_ATTENTION_ROWS_H
#define CLATTN_ATTENTION_ROWS_H

#include "layer_common.h"

/* The register tile of add_weighted_sum and additive_scores: ADD_TI query
   rows, ADD_TJ keys or features per work-item
   (cl/layers/additive_params.clh). */
#include "kernel_params.h"

/* n / tile rounded up. */
size_t rows_tiles(size_t n, size_t tile);

/* Row softmax in place over rows x n (add_softmax_rows). */
clattn_status rows_softmax(clattn_context *ctx, cl_mem scores, size_t rows,
                           size_t n, layer_timer *timer);

/* out[b][i][:] = sum_j w[b][i][j] v[b][j][:] (add_weighted_sum); the
   caller checked batch * sq for overflow. */
clattn_status rows_weighted_sum(clattn_context *ctx, cl_mem w, cl_mem v,
                                cl_mem out, size_t batch, size_t sq, size_t skv,
                                size_t dv, layer_timer *timer);

#endif
