/* What both libFuzzer harnesses share: the byte reader their inputs are
   decoded with, and the oracle's failure report. Header-only (static
   inline), so each harness stays one translation unit. */
#ifndef CLATTN_FUZZ_COMMON_H
#define CLATTN_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const uint8_t *p;
    size_t n, i;
} reader;

/* The next byte; reading past the end gives 0. */
static inline uint8_t rd8(reader *r)
{
    return r->i < r->n ? r->p[r->i++] : 0;
}

/* An enum value: < 0xF0 a valid one (x % n); then n (one past the last),
   0xFFFFFFFF, 0x80000000, 0x7FFFFFFF; else x itself. */
static inline uint32_t dec_enum(reader *r, uint32_t n)
{
    uint8_t x = rd8(r);
    if (x < 0xF0)
        return x % n;
    switch (x) {
    case 0xF0: return n;
    case 0xF1: return 0xFFFFFFFFu;
    case 0xF2: return 0x80000000u;
    case 0xF3: return 0x7FFFFFFFu;
    default: return x;
    }
}

/* A scale byte below 0xE0: 0 for 0, else a multiple of 1/8 in [-2, 2]
   (the bytes from 0xE0 up are special values, each harness's own). */
static inline float dec_scale_plain(uint8_t x)
{
    return x == 0 ? 0.0f : (float)((int)(x % 33) - 16) / 8.0f;
}

static inline float f32_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* An oracle violation: prints the message and the decoded input, then
   aborts (libFuzzer: a crash, with the input saved). Each harness wraps it
   as fail(fmt, ...) with its name and input text. */
static inline void fuzz_fail(const char *harness, const char *input_text,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static inline void fuzz_fail(const char *harness, const char *input_text,
                             const char *fmt, ...)
{
    fprintf(stderr, "\n%s: ORACLE VIOLATION: ", harness);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s\n", input_text);
    fflush(stderr);
    abort();
}

#endif
