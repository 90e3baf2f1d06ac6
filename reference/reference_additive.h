/* The oracle of the additive family of layers (clattn_additive,
   clattn_concat, clattn_se_gate) in double precision, written from the
   formulas in clattn.h and docs/layers/additive.md: straight loops, no
   folding of biases, no transposed projections. Inputs and weights are the
   float arrays the library gets; outputs are double. */
#ifndef CLATTN_TEST_REFERENCE_ADDITIVE_H
#define CLATTN_TEST_REFERENCE_ADDITIVE_H

#include <clattn/clattn.h>

/* query [B][Sq][Dq], keys [B][Skv][Dk], values [B][Skv][Dv] (NULL = the
   keys), mask uint8 [B][Skv] nonzero = ignore (NULL = none); context
   [B][Sq][Dv], weights (NULL = not wanted) [B][Sq][Skv]. A row whose keys
   are all masked gives zero weights and a zero context. */
void ref_additive(const clattn_additive_desc *desc,
                  const clattn_additive_weights *w, size_t batch, size_t sq,
                  size_t skv, const float *query, const float *keys,
                  const float *values, const uint8_t *mask, double *context,
                  double *weights);

/* query [B][Dq], key [B][Dk], values [B][L][Dv]; out [B][out_dim],
   weights (NULL = not wanted) [B][L]. */
void ref_concat(const clattn_concat_desc *desc, const clattn_concat_weights *w,
                size_t batch, const float *query, const float *key,
                const float *values, double *out, double *weights);

/* x, out: [tokens][E]. */
void ref_se_gate(size_t embed_dim, const clattn_se_gate_weights *w,
                 size_t tokens, const float *x, double *out);

#endif
