/* The oracle of the talking-heads layer: timm's TalkingHeadAttn forward in
   double precision, written from the module's math
   (docs/layers/talking_heads.md), straight loops, sharing nothing with the
   library but the public header. */
#ifndef CLATTN_TEST_REFERENCE_TALKING_HEADS_H
#define CLATTN_TEST_REFERENCE_TALKING_HEADS_H

#include <clattn/clattn.h>

/* x: [batch][seq][dim] as clattn_talking_heads_forward_host takes it;
   out: [batch][seq][dim]; attn (may be NULL): [batch][H][seq][seq], the
   weights after the second head mix and dropout. Dropout (desc->dropout_p,
   desc->dropout_seed) draws element ((b*H + g)*seq + i)*seq + j with Philox
   offset dropout_offset (reference/philox_ref.c). */
void ref_talking_heads(const clattn_talking_heads_desc *desc,
                       const clattn_talking_heads_weights *w, size_t batch,
                       size_t seq, const float *x, uint64_t dropout_offset,
                       double *out, double *attn);

#endif
