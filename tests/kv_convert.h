/* Host conversions between float and the 16-bit K/V types, rounding to
   nearest even as the library's kernels do (cl/core/kv_dtype.clh): the
   suites build 16-bit inputs with them and predict what the library
   stores. */
#ifndef CLATTN_TEST_KV_CONVERT_H
#define CLATTN_TEST_KV_CONVERT_H

#include <clattn/clattn.h>

#include <stddef.h>
#include <stdint.h>

/* fp32 to IEEE binary16: ties to even, overflow to infinity, NaN to a
   quiet NaN keeping the payload's top 10 bits. */
uint16_t test_to_fp16(float x);
float test_from_fp16(uint16_t h);
/* fp32 to bf16: ties to even, NaN to a quiet NaN. */
uint16_t test_to_bf16(float x);
float test_from_bf16(uint16_t b);

/* x (n values) rounded to dtype in place; returns the 16-bit words (NULL
   for fp32; the caller frees them). */
uint16_t *test_round_to(clattn_dtype dtype, float *x, size_t n);

#endif
