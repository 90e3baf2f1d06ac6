/* The oracle: scaled dot-product attention in double precision, written
   from the semantics in docs/api.md, straight loops, no tiling. */
#ifndef CLATTN_TEST_REFERENCE_H
#define CLATTN_TEST_REFERENCE_H

#include <clattn/clattn.h>

/* Contiguous host arrays as clattn_sdpa_host takes them. out is
   [B][Hq][Sq][Dv]; probs (may be NULL) [B][Hq][Sq][Skv] after dropout;
   lse (may be NULL) [B][Hq][Sq], -inf for fully masked rows. A packed
   batch (cu_seqlens) has the library's packed shapes, batch 1 and the
   packed tokens (q, out [1][Hq][total_q][D], lse [1][Hq][total_q], k, v
   [1][Hkv][total_k][D]); its probs stay in the padded
   [B][Hq][Sq][Skv]. */
/* Rotary embeddings (desc->rope semantics, defaults resolved here) in
   double: the dim features of x at position pos rotated in place ... */
void ref_rope_apply(const clattn_rope *rope, long pos, double *x, size_t dim);

/* ... or row x into out[dim]. */
void ref_rope_row(const clattn_rope *rope, long pos, const float *x, size_t dim,
                  double *out);

/* With desc->rope set, Q is rotated at rope_q_positions (NULL = 0) plus
   the row's index in its sequence, and K (rope_k) at the key's index. */
void ref_sdpa(const clattn_sdpa_desc *desc, const float *q, const float *k,
              const float *v, const void *mask, double *out, double *probs,
              double *lse);

#endif
