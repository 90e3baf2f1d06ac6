/* Host Philox4x32-10 and the dropout decision, written independently of
   cl/philox.clh from the contract stated there. */
#ifndef CLATTN_TEST_PHILOX_REF_H
#define CLATTN_TEST_PHILOX_REF_H

#include <stdint.h>

void philox_ref(const uint32_t ctr_in[4], const uint32_t key_in[2],
                uint32_t out[4]);

/* 1 when attention-matrix element idx is kept for dropout probability p. */
int dropout_keep_ref(uint64_t seed, uint64_t offset, uint64_t idx, double p);

#endif
