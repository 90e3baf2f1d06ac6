/* The oracle of the multi-head attention layer: torch.nn.MultiheadAttention
   (with the optional pre-LayerNorm) in double precision, written from the
   module's math (docs/layers/mha.md), straight loops, sharing nothing
   with the library but the public header. */
#ifndef CLATTN_TEST_REFERENCE_MHA_H
#define CLATTN_TEST_REFERENCE_MHA_H

#include <clattn/clattn.h>

/* Host arrays exactly as clattn_mha_forward_host takes them (the layer's
   layout, masks in torch MHA polarity). out: [rows_q][E] in the layer's
   layout. weights (may be NULL): per call->need_weights, [B][Sq][Skv]
   (head mean) or [B][H][Sq][Skv], after dropout. Dropout draws with
   Philox offset dropout_offset (reference/philox_ref.c). Fully masked rows
   give zero weights and a zero attention output (the layer's contract). */
void ref_mha(const clattn_mha_desc *desc, const clattn_mha_weights *w,
             const clattn_mha_call *call, const float *query, const float *key,
             const float *value, const uint8_t *key_padding_mask,
             const void *attn_mask, uint64_t dropout_offset, double *out,
             double *weights);

#endif
