/* The layer golden files: a bundle of named tensors written by
   tests/golden_bundle.py (the generators gen_golden_*.py use it).

   Format (little-endian): 8 bytes "CLATTNB1", uint32 count, then per
   tensor: uint32 name length, the name bytes (no NUL), uint32 dtype
   (0 = float32, 1 = uint8, 2 = int32, 3 = float64), uint32 ndims,
   ndims x uint64 dims, then the data. Scalars are 0-d tensors. */
#ifndef CLATTN_TESTS_GOLDEN_BUNDLE_H
#define CLATTN_TESTS_GOLDEN_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

enum { BUNDLE_F32 = 0, BUNDLE_U8 = 1, BUNDLE_I32 = 2, BUNDLE_F64 = 3 };

typedef struct bundle_tensor {
    char name[64];
    uint32_t dtype, ndims;
    uint64_t dims[8];
    size_t count; /* elements */
    void *data;
} bundle_tensor;

typedef struct golden_bundle {
    size_t count;
    bundle_tensor *tensors;
} golden_bundle;

/* Reads path; 0 on success, -1 (with a message on stderr) otherwise. */
int bundle_load(const char *path, golden_bundle *out);
void bundle_free(golden_bundle *b);

/* The tensor of that name, or NULL. */
const bundle_tensor *bundle_get(const golden_bundle *b, const char *name);

/* Typed access: NULL when absent or of another dtype. */
const float *bundle_f32(const golden_bundle *b, const char *name);
const uint8_t *bundle_u8(const golden_bundle *b, const char *name);
const int32_t *bundle_i32(const golden_bundle *b, const char *name);
/* A scalar (0-d or 1-element) int32 / float32 / float64, or fallback. */
long bundle_int(const golden_bundle *b, const char *name, long fallback);
double bundle_real(const golden_bundle *b, const char *name, double fallback);

/* $path of a layer golden: CLATTN_GOLDEN_DIR "/layers/" name. */
void bundle_path(char *buf, size_t cap, const char *name);

#endif
