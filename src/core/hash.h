/* SHA-256 (FIPS 180-4): the program cache's key and its entries' payload
   checksum. A published hash, so its test vectors pin it. */
#ifndef CLATTN_HASH_H
#define CLATTN_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32

typedef struct sha256_state {
    uint32_t h[8];
    uint64_t total_bytes;
    unsigned char block[64];
    size_t used; /* bytes of block filled */
} sha256_state;

void sha256_init(sha256_state *s);
void sha256_update(sha256_state *s, const void *data, size_t n);
/* Writes the digest; s must be initialised again before reuse. */
void sha256_final(sha256_state *s, unsigned char digest[SHA256_DIGEST_BYTES]);

/* The digest of one buffer. */
void sha256(const void *data, size_t n,
            unsigned char digest[SHA256_DIGEST_BYTES]);

#endif
