/* kv_convert.h: bit-level conversions, no FPU rounding modes involved. */
#include "kv_convert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint16_t test_to_fp16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const int exp = (int)((u >> 23) & 0xff) - 127 + 15;
    uint32_t mant = u & 0x7fffffu;
    if (exp == 255 - 127 + 15 && mant) /* NaN */
        return (uint16_t)(sign | 0x7e00u | (mant >> 13));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) { /* subnormal or zero */
        if (exp < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        const int shift = 14 - exp;
        uint32_t half = mant >> shift;
        const uint32_t rest = mant & ((1u << shift) - 1),
                       mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1)))
            ++half;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)exp << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1)))
        ++half; /* may carry into the exponent: still correct */
    return (uint16_t)(sign | half);
}

float test_from_fp16(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    float f;
    if (exp == 0)
        f = ldexpf((float)mant, -24);
    else if (exp == 31)
        f = mant ? NAN : INFINITY;
    else
        f = ldexpf((float)(mant | 0x400u), (int)exp - 25);
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u |= sign;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t test_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN */
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float test_from_bf16(uint16_t b)
{
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Rounds x (n values) to dtype in place, and returns the 16-bit words
   (NULL for fp32). */
uint16_t *test_round_to(clattn_dtype dtype, float *x, size_t n)
{
    if (dtype == CLATTN_DTYPE_FP32)
        return NULL;
    uint16_t *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; ++i) {
        w[i] = dtype == CLATTN_DTYPE_FP16 ? test_to_fp16(x[i])
                                          : test_to_bf16(x[i]);
        x[i] = dtype == CLATTN_DTYPE_FP16 ? test_from_fp16(w[i])
                                          : test_from_bf16(w[i]);
    }
    return w;
}
