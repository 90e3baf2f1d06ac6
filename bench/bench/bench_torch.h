/* The optional PyTorch peer (--peer torch): one Python process times
   torch.nn.functional.scaled_dot_product_attention on the CPU for every
   case. No Python, or no PyTorch in it, is reported, never an error. */
#ifndef CLATTN_BENCH_TORCH_H
#define CLATTN_BENCH_TORCH_H

#include "bench_results.h"

/* Fills run->host.torch_* and adds one "torch" host record per case.
   Returns -1 only when out of memory. */
int bench_torch_run(bench_run *run);

#endif
