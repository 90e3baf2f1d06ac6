/* Reader of the layer golden bundles (format in golden_bundle.h). */
#include "golden_bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CLATTN_GOLDEN_DIR
#define CLATTN_GOLDEN_DIR "tests/golden"
#endif

static size_t dtype_size(uint32_t dtype)
{
    switch (dtype) {
    case BUNDLE_F32: return 4;
    case BUNDLE_U8: return 1;
    case BUNDLE_I32: return 4;
    case BUNDLE_F64: return 8;
    default: return 0;
    }
}

static int read_exact(FILE *f, void *dst, size_t n)
{
    return fread(dst, 1, n, f) == n ? 0 : -1;
}

int bundle_load(const char *path, golden_bundle *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "golden bundle %s: cannot open\n", path);
        return -1;
    }
    char magic[8];
    uint32_t count = 0;
    if (read_exact(f, magic, 8) || memcmp(magic, "CLATTNB1", 8) ||
        read_exact(f, &count, 4) || count > 4096)
        goto bad;
    out->tensors = calloc(count ? count : 1, sizeof *out->tensors);
    if (!out->tensors)
        goto bad;
    for (uint32_t i = 0; i < count; ++i) {
        bundle_tensor *t = &out->tensors[i];
        out->count = i + 1;
        uint32_t len = 0;
        if (read_exact(f, &len, 4) || len >= sizeof t->name ||
            read_exact(f, t->name, len))
            goto bad;
        t->name[len] = '\0';
        if (read_exact(f, &t->dtype, 4) || read_exact(f, &t->ndims, 4) ||
            t->ndims > 8 || !dtype_size(t->dtype) ||
            read_exact(f, t->dims, 8 * (size_t)t->ndims))
            goto bad;
        t->count = 1;
        for (uint32_t d = 0; d < t->ndims; ++d)
            t->count *= (size_t)t->dims[d];
        size_t bytes = t->count * dtype_size(t->dtype);
        t->data = malloc(bytes ? bytes : 1);
        if (!t->data || read_exact(f, t->data, bytes))
            goto bad;
    }
    fclose(f);
    return 0;
bad:
    fprintf(stderr, "golden bundle %s: malformed or truncated\n", path);
    fclose(f);
    bundle_free(out);
    return -1;
}

void bundle_free(golden_bundle *b)
{
    for (size_t i = 0; i < b->count; ++i)
        free(b->tensors[i].data);
    free(b->tensors);
    memset(b, 0, sizeof *b);
}

const bundle_tensor *bundle_get(const golden_bundle *b, const char *name)
{
    for (size_t i = 0; i < b->count; ++i)
        if (strcmp(b->tensors[i].name, name) == 0)
            return &b->tensors[i];
    return NULL;
}

const float *bundle_f32(const golden_bundle *b, const char *name)
{
    const bundle_tensor *t = bundle_get(b, name);
    return t && t->dtype == BUNDLE_F32 ? t->data : NULL;
}

const uint8_t *bundle_u8(const golden_bundle *b, const char *name)
{
    const bundle_tensor *t = bundle_get(b, name);
    return t && t->dtype == BUNDLE_U8 ? t->data : NULL;
}

const int32_t *bundle_i32(const golden_bundle *b, const char *name)
{
    const bundle_tensor *t = bundle_get(b, name);
    return t && t->dtype == BUNDLE_I32 ? t->data : NULL;
}

static int scalar_of(const bundle_tensor *t, double *v)
{
    if (!t || t->count != 1)
        return 0;
    switch (t->dtype) {
    case BUNDLE_F32: *v = *(const float *)t->data; return 1;
    case BUNDLE_F64: *v = *(const double *)t->data; return 1;
    case BUNDLE_I32: *v = *(const int32_t *)t->data; return 1;
    case BUNDLE_U8: *v = *(const uint8_t *)t->data; return 1;
    default: return 0;
    }
}

long bundle_int(const golden_bundle *b, const char *name, long fallback)
{
    double v;
    return scalar_of(bundle_get(b, name), &v) ? (long)v : fallback;
}

double bundle_real(const golden_bundle *b, const char *name, double fallback)
{
    double v;
    return scalar_of(bundle_get(b, name), &v) ? v : fallback;
}

void bundle_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/layers/%s", CLATTN_GOLDEN_DIR, name);
}
