/* The struct_size rule of the growable public structs (struct_size.h). */
#include "struct_size.h"
#include "context_internal.h"

#include <stdio.h>
#include <string.h>

clattn_status struct_copy_in(void *dst, size_t full_size, size_t oldest_size,
                             const void *src, const char *name, char *why)
{
    /* struct_size is the first member of every growable struct; memcpy
       reads it without assuming src is aligned or of dst's type. */
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size == 0)
        size = full_size;
    if (size < oldest_size) {
        snprintf(why, STRUCT_WHY_MAX,
                 "%s: struct_size %zu is smaller than its oldest layout "
                 "(%zu bytes): set it with the struct's _init",
                 name, size, oldest_size);
        return CLATTN_ERROR_INVALID_ARGUMENT;
    }
    if (size > full_size) {
        const unsigned char *tail = (const unsigned char *)src + full_size;
        for (size_t i = 0; i < size - full_size; ++i)
            if (tail[i] != 0) {
                snprintf(why, STRUCT_WHY_MAX,
                         "%s: struct_size %zu is larger than this library's "
                         "(%zu bytes) and byte %zu is set: a field this "
                         "version does not know is in use",
                         name, size, full_size, full_size + i);
                return CLATTN_ERROR_INVALID_ARGUMENT;
            }
        size = full_size;
    }
    memcpy(dst, src, size);
    memcpy(dst, &full_size, sizeof full_size);
    return CLATTN_SUCCESS;
}

clattn_status ctx_struct_copy_in(clattn_context *ctx, void *dst,
                                 size_t full_size, size_t oldest_size,
                                 const void *src, const char *name)
{
    char why[STRUCT_WHY_MAX];
    clattn_status s =
        struct_copy_in(dst, full_size, oldest_size, src, name, why);
    if (s != CLATTN_SUCCESS)
        return ctx_error(ctx, s, "%s", why);
    return CLATTN_SUCCESS;
}

void struct_copy_out(void *dst, size_t caller_size, const void *src,
                     size_t full_size)
{
    size_t filled = caller_size < full_size ? caller_size : full_size;
    memcpy(dst, src, filled);
    if (caller_size > filled)
        memset((unsigned char *)dst + filled, 0, caller_size - filled);
    memcpy(dst, &filled, sizeof filled);
}
