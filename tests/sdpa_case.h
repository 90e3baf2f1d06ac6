/* One SDPA test case: generate inputs for a desc, run clattn_sdpa_host
   with and without probabilities, compare with the double reference, and
   check the canaries. Shared by the suites that sweep shapes and options. */
#ifndef CLATTN_TEST_SDPA_CASE_H
#define CLATTN_TEST_SDPA_CASE_H

#include <clattn/clattn.h>

#include <stddef.h>
#include <stdint.h>

typedef struct sdpa_inputs {
    clattn_sdpa_desc desc; /* key_lengths points into key_lengths below */
    float *q, *k, *v;
    void *mask;
    int32_t *key_lengths;
    size_t n_q, n_k, n_v, n_out, n_probs, n_mask;
} sdpa_inputs;

/* Fills q/k/v uniformly in [-2, 2); a bool mask with ~20% masked, or an
   additive one in [-2, 2) with ~10% -inf; key lengths in [0, seq_kv] when
   want_key_lengths. desc's mask_type and mask_dims decide the mask. */
void sdpa_inputs_make(sdpa_inputs *in, const clattn_sdpa_desc *desc,
                      int want_key_lengths, uint64_t seed);
void sdpa_inputs_free(sdpa_inputs *in);

/* sdpa_inputs_make for the plain problem many checks start from: the
   defaults of clattn_sdpa_desc_init (heads_kv = heads_q, head_dim_v =
   head_dim, no mask, not causal, no dropout), no key lengths. */
void sdpa_inputs_plain(sdpa_inputs *in, size_t batch, size_t heads,
                       size_t seq_q, size_t seq_kv, size_t head_dim,
                       uint64_t seed);

/* Releases every buffer the tensors name (NULL ones skipped); a buffer
   two tensors share would be released twice. */
void sdpa_tensors_release(const clattn_sdpa_tensors *t);

/* Runs the case (probs on and off) and checks it; name labels failures. */
void sdpa_case_check(clattn_context *ctx, const char *name,
                     const sdpa_inputs *in);

#endif
