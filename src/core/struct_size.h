/* Growable public structs: how the library reads a caller's struct whose
   first member is `size_t struct_size` (docs/api.md 3.8). A binary built
   against an older header passes a smaller struct, one built against a
   newer header a larger one; the library never reads past the caller's
   struct_size and never ignores a field it does not know but the caller
   set. */
#ifndef CLATTN_STRUCT_SIZE_H
#define CLATTN_STRUCT_SIZE_H

#include "clattn/clattn.h"

#include <stddef.h>

/* The oldest layout of each growable struct: the smallest nonzero
   struct_size accepted. When a struct grows, its entry here stays. Today
   every struct's oldest layout is its only one, but for clattn_sdpa_desc,
   whose key_lengths came after the fixed core, and clattn_kv_append_desc
   and clattn_mha_desc, whose rope came after their first release. */
#define SDPA_DESC_OLDEST_SIZE offsetof(clattn_sdpa_desc, key_lengths)
#define CONTEXT_OPTIONS_OLDEST_SIZE sizeof(clattn_context_options)
#define MHA_DESC_OLDEST_SIZE offsetof(clattn_mha_desc, rope)
#define TALKING_HEADS_DESC_OLDEST_SIZE sizeof(clattn_talking_heads_desc)
#define ADDITIVE_DESC_OLDEST_SIZE sizeof(clattn_additive_desc)
#define CONCAT_DESC_OLDEST_SIZE sizeof(clattn_concat_desc)
#define KV_APPEND_DESC_OLDEST_SIZE offsetof(clattn_kv_append_desc, rope)
/* clattn_info, which the library writes: the first layout, what
   clattn_context_info's exported symbol fills. */
#define CLATTN_INFO_FIRST_LAYOUT_SIZE sizeof(clattn_info)

/* Longest reason struct_copy_in writes. */
#define STRUCT_WHY_MAX 200

/* Copies the caller's struct src into dst, which has the library's full
   layout (full_size bytes) and already holds the defaults (its _init):
   - struct_size 0: the current layout (callers that zero the struct
     without _init: `= {0}` or memset);
   - oldest_size <= struct_size <= full_size: that many bytes are read and
     the fields past them keep their defaults;
   - struct_size > full_size: accepted when every byte past full_size is
     zero (fields of a newer header left unset, the rule of Linux's
     copy_struct_from_user), else refused: the caller asked for something
     this library cannot do;
   - 0 < struct_size < oldest_size: refused.
   On success dst->struct_size is full_size. On refusal dst is unchanged
   and the reason, naming the struct, is in why (STRUCT_WHY_MAX bytes). */
clattn_status struct_copy_in(void *dst, size_t full_size, size_t oldest_size,
                             const void *src, const char *name, char *why);

/* struct_copy_in, the reason recorded on ctx (NULL: status only). */
clattn_status ctx_struct_copy_in(clattn_context *ctx, void *dst,
                                 size_t full_size, size_t oldest_size,
                                 const void *src, const char *name);

/* Writes a struct the library fills (full_size bytes at src) into the
   caller's dst of caller_size bytes: min(caller_size, full_size) bytes
   copied, the rest of the caller's bytes zeroed (fields this library does
   not know read 0), and dst->struct_size set to the bytes filled. The
   caller checked caller_size >= the oldest layout. */
void struct_copy_out(void *dst, size_t caller_size, const void *src,
                     size_t full_size);

#endif
