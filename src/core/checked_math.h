/* Size arithmetic that reports overflow instead of wrapping: every size,
   byte count and extent in the library goes through these. */
#ifndef CLATTN_CHECKED_MATH_H
#define CLATTN_CHECKED_MATH_H

#include <stddef.h>

/* Each returns 0 and stores the result, or returns 1 on overflow. */
static inline int checked_mul(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

static inline int checked_add(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* Product of n sizes. */
static inline int checked_product(const size_t *dims, size_t n, size_t *out)
{
    size_t p = 1;
    for (size_t i = 0; i < n; ++i)
        if (checked_mul(p, dims[i], &p))
            return 1;
    *out = p;
    return 0;
}

#endif
