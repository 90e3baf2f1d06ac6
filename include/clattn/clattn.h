/*
 * clattn: portable attention in OpenCL.
 *
 * The one public header. Every call returns a clattn_status (0 = success,
 * negative = error); detail text for the calling thread's last error on a
 * context comes from clattn_context_last_error(). The library never prints
 * and never exits, and on error it writes nothing to the caller's output
 * buffers: every input is validated before any work is enqueued. (Only a
 * failure of the OpenCL runtime itself in mid-call, such as a lost device,
 * can leave outputs partly written; the status then says so.)
 *
 * Semantics follow PyTorch's scaled_dot_product_attention; see docs/api.md.
 */
#ifndef CLATTN_CLATTN_H
#define CLATTN_CLATTN_H

#ifndef CL_TARGET_OPENCL_VERSION
/* 1.2 is the API every vendor ships; nothing newer is needed. */
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(CLATTN_SHARED_BUILD)
#define CLATTN_API __declspec(dllexport)
#elif defined(__GNUC__)
#define CLATTN_API __attribute__((visibility("default")))
#else
#define CLATTN_API
#endif

#define CLATTN_VERSION_MAJOR 0
#define CLATTN_VERSION_MINOR 1
#define CLATTN_VERSION_PATCH 0
#define CLATTN_VERSION_NUMBER                                                  \
    (CLATTN_VERSION_MAJOR * 10000 + CLATTN_VERSION_MINOR * 100 +               \
     CLATTN_VERSION_PATCH)

/* The version of the library actually linked (CLATTN_VERSION_NUMBER form). */
CLATTN_API unsigned clattn_version_number(void);

/* The same version as static text, "MAJOR.MINOR.PATCH" ("0.1.0"), nothing
   else. */
CLATTN_API const char *clattn_version_string(void);

/* ------------------------------------------------------------------------ */
/* Growable structs                                                          */
/* ------------------------------------------------------------------------ */
/* Every struct the caller fills for the library (clattn_context_options and
   the clattn_*_desc structs), and clattn_info, starts with
   `size_t struct_size`, which its _init sets to sizeof, so a later version
   can add fields at the end without breaking binaries built against this
   header (docs/api.md 3.8):
   - struct_size 0 means this header's layout, so a struct zeroed without
     its _init (`= {0}`, memset) keeps working;
   - a smaller struct_size (a binary built against an older header) is read
     no further than its end, the fields it lacks taking their defaults;
     one smaller than the struct's oldest layout is INVALID_ARGUMENT;
   - a larger struct_size (a newer header) is accepted when every byte past
     the fields this library knows is zero, else INVALID_ARGUMENT naming the
     struct: a field this version does not know is in use.
   A field is only ever added after the previous layout's last byte (tail
   padding included). Positional initialisers (`{a, b, c}`) break with
   each new first member: use _init or designated initialisers. */

/* ------------------------------------------------------------------------ */
/* Status                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum clattn_status {
    CLATTN_SUCCESS = 0,
    CLATTN_ERROR_INVALID_ARGUMENT = -1, /* null pointer, bad enum, bad value */
    CLATTN_ERROR_INVALID_SHAPE = -2,    /* zero or inconsistent dimensions */
    CLATTN_ERROR_BUFFER_TOO_SMALL = -3, /* a view reaches past its cl_mem */
    CLATTN_ERROR_UNSUPPORTED = -4,  /* valid, but not on this device/build */
    CLATTN_ERROR_NO_DEVICE = -5,    /* no OpenCL device (matching) */
    CLATTN_ERROR_BUILD_FAILED = -6, /* kernel build failed; log in last_error */
    CLATTN_ERROR_OUT_OF_MEMORY = -7, /* host or device allocation failed */
    CLATTN_ERROR_OPENCL = -8, /* an OpenCL call failed; code in last_error */
    CLATTN_ERROR_BLAS = -9,   /* CLBlast failed; code in last_error */
    CLATTN_ERROR_SIZE_OVERFLOW = -10 /* a size or byte count overflows size_t */
} clattn_status;

/* A static, never-NULL name for any value, "unknown status" for others. */
CLATTN_API const char *clattn_status_string(clattn_status status);

/* ------------------------------------------------------------------------ */
/* Context: one OpenCL device, its queue and its built kernels               */
/* ------------------------------------------------------------------------ */

typedef struct clattn_context clattn_context;

typedef struct clattn_context_options {
    size_t struct_size; /* sizeof, set by _init; 0 = this layout */
    /* Selector: "auto" | "gpu" | "cpu" | "accelerator" | "P:D" (platform and
       device index) | any other text = case-insensitive substring of the
       platform name, vendor or device name. NULL = $CLATTN_DEVICE or "auto". */
    const char *device;
    int no_fallback; /* nonzero: fail instead of falling back */
} clattn_context_options;

/* Zeroes and sets struct_size. */
CLATTN_API void clattn_context_options_init(clattn_context_options *opts);

/* Picks a device, creates a context and queue on it and builds the kernels.
   If the chosen device cannot (context, queue or kernel build fails), the
   next candidate is tried unless no_fallback is set; each candidate's
   outcome is kept in clattn_info.selection_log (and in last_error when
   every candidate failed).
   On success *out is a usable context. On failure *out is either NULL (out
   of memory, or a NULL argument) or a context that only answers
   clattn_context_last_error() and clattn_context_destroy() (as
   sqlite3_open does): destroy it. An opts->struct_size the library refuses
   (see Growable structs) gives INVALID_ARGUMENT and such a failed
   context. */
CLATTN_API clattn_status
clattn_context_create(const clattn_context_options *opts, clattn_context **out);

/* Wraps a caller's queue (its context and device); the queue is retained
   and released on destroy. No fallback: the device is the caller's. Same
   *out rule as clattn_context_create. */
CLATTN_API clattn_status
clattn_context_create_from_queue(cl_command_queue queue, clattn_context **out);

CLATTN_API void clattn_context_destroy(clattn_context *ctx); /* NULL is fine */

/* Detail of the calling thread's last error on this context: each call on
   a usable context clears the calling thread's text first, so it describes
   that thread's latest call on ctx ("" after a success); threads sharing a
   context never see or overwrite each other's text. The pointer stays
   valid until the calling thread's next call on ctx, or destroy. A context
   whose creation failed returns its creation error, on any thread. A static
   message for a NULL context. */
CLATTN_API const char *clattn_context_last_error(const clattn_context *ctx);

/* What a context runs on, and why. */
typedef struct clattn_info {
    size_t struct_size; /* on return: the bytes the library filled */
    cl_platform_id platform;
    cl_device_id device;
    cl_context cl_ctx;
    cl_command_queue queue;
    int platform_index; /* -1 when wrapped from a caller's queue */
    int device_index;
    cl_device_type device_type;
    char platform_name[128];
    char device_name[128];
    char device_vendor[128];
    char device_version[128];
    char driver_version[128];
    cl_uint compute_units;
    cl_uint clock_mhz;
    cl_ulong global_mem_bytes;
    cl_ulong local_mem_bytes;
    cl_ulong max_alloc_bytes;
    size_t max_work_group_size;
    int has_fp16;
    int has_fp64;
    char selector[64];        /* the selector that was applied */
    int fell_back;            /* nonzero: not the first candidate */
    char selection_log[1024]; /* one line per candidate tried, and why */
    /* The char arrays above are part of the first layout and stay. */
} clattn_info;

/* Zeroes and sets struct_size (for clattn_context_info_sized callers). */
CLATTN_API void clattn_info_init(clattn_info *info);

/* Fills info_size bytes of info: the fields this library knows that fit,
   zero for the rest; info->struct_size is set to the bytes filled.
   info->struct_size is never read (callers pass info uninitialised).
   INVALID_ARGUMENT for a NULL argument, a failed context or an info_size
   below the first layout; nothing is written then. */
CLATTN_API clattn_status clattn_context_info_sized(const clattn_context *ctx,
                                                   clattn_info *info,
                                                   size_t info_size);

/* clattn_context_info(ctx, info) passes the caller's sizeof(clattn_info),
   as zlib's inflateInit passes sizeof(z_stream): a binary fills the layout
   of the header it was built with. The function itself (taken by address,
   or called from a binding) fills the first layout. */
CLATTN_API clattn_status(clattn_context_info)(const clattn_context *ctx,
                                              clattn_info *info);
#define clattn_context_info(ctx, info)                                         \
    clattn_context_info_sized((ctx), (info), sizeof(clattn_info))

/* Device memory the library itself allocates on this context (scratch,
   packed copies, partial results, host staging), not the caller's buffers.
   A buffer counts from its creation until the library releases it; OpenCL
   may keep it a little longer, until the kernels using it complete. */
typedef struct clattn_memory_stats {
    size_t current_bytes; /* held now */
    size_t peak_bytes;    /* high-water since creation or the last reset */
} clattn_memory_stats;

CLATTN_API clattn_status clattn_memory_stats_get(clattn_context *ctx,
                                                 clattn_memory_stats *stats);

/* Sets peak_bytes to current_bytes, to measure one call's high-water. */
CLATTN_API clattn_status clattn_memory_stats_reset_peak(clattn_context *ctx);

/* ------------------------------------------------------------------------ */
/* Scaled dot-product attention                                              */
/* ------------------------------------------------------------------------ */

typedef enum clattn_causal {
    CLATTN_CAUSAL_NONE = 0,
    CLATTN_CAUSAL_TOP_LEFT =
        1, /* key j allowed iff j <= i (PyTorch is_causal) */
    CLATTN_CAUSAL_BOTTOM_RIGHT = 2 /* iff j <= i + seq_kv - seq_q (KV cache) */
} clattn_causal;

typedef enum clattn_mask_type {
    CLATTN_MASK_NONE = 0,
    CLATTN_MASK_BOOL = 1,    /* uint8_t, nonzero = attend */
    CLATTN_MASK_ADDITIVE = 2 /* float, added to the scaled scores */
} clattn_mask_type;

/* Element types of a tensor in device memory. Arithmetic is fp32 whatever
   the storage: fp16 (IEEE binary16) and bf16 (the upper half of an fp32)
   are widened exactly when loaded. */
typedef enum clattn_dtype {
    CLATTN_DTYPE_FP32 = 0,
    CLATTN_DTYPE_FP16 = 1,
    CLATTN_DTYPE_BF16 = 2
} clattn_dtype;

/* A static, never-NULL name: "fp32", "fp16", "bf16", or "unknown". */
CLATTN_API const char *clattn_dtype_name(clattn_dtype dtype);

/* A paged K/V cache (the layout of vLLM's and OpenVINO's paged
   attention, docs/inference.md): a pool of num_blocks blocks of block_size
   tokens each, and a block table that maps each sequence's logical blocks
   to physical ones. Key j of batch b lives in physical block
   block_table[b * blocks_per_seq + j / block_size], at slot
   j % block_size of it. The K (V) view is then a view of the pool,
   [num_blocks][heads_kv][block_size][head_dim]: strides[0] steps from
   block to block, strides[2] from slot to slot, so both
   [block][head][slot][dim] (OpenVINO) and [block][slot][head][dim]
   (vLLM's flash layout) are views. The table is a host array, checked on
   every call: the entries of blocks that hold keys below seq_kv (or
   key_lengths[b]) must be in [0, num_blocks); the rest are never read
   (-1 is fine there). Blocks may be shared between sequences (a common
   prefix). block_size 0 = no paging, and the other fields must be 0. */
typedef struct clattn_kv_pages {
    size_t block_size;     /* tokens per block, 1 to 4096 */
    size_t num_blocks;     /* blocks in the pool, at most INT32_MAX */
    size_t blocks_per_seq; /* the table's row length */
    const int32_t *block_table; /* host [batch][blocks_per_seq] */
} clattn_kv_pages;

/* Rotary position embeddings (RoPE, as in GPT-J, GPT-NeoX and Llama):
   pair i of a query's or key's first rotary_dim features, at position
   p, is rotated by the angle p * theta^(-2i / rotary_dim), i in
   [0, rotary_dim / 2); the features past rotary_dim pass unchanged.
   The angles are reduced to a turn in extended precision before the
   cosine and sine, so they stay within about 1e-7 radian at every
   position up to 2^24 (docs/inference.md). style NONE = no rotation,
   and the other fields must be 0. */
typedef enum clattn_rope_style {
    CLATTN_ROPE_NONE = 0,
    /* GPT-J (rotate_every_two): pair i is features (2i, 2i + 1) */
    CLATTN_ROPE_INTERLEAVED = 1,
    /* GPT-NeoX, Llama (Hugging Face's rotate_half): pair i is features
       (i, i + rotary_dim / 2) */
    CLATTN_ROPE_HALF = 2
} clattn_rope_style;

typedef struct clattn_rope {
    clattn_rope_style style;
    size_t rotary_dim; /* even, at most head_dim; 0 = head_dim */
    float theta;       /* the frequency base, finite, >= 1; 0 = 10000 */
} clattn_rope;

typedef struct clattn_sdpa_desc {
    size_t struct_size; /* sizeof, set by _init; 0 = this layout */
    size_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v;
    float scale; /* 0 = 1/sqrt(head_dim) */
    clattn_causal causal;
    clattn_mask_type mask_type;
    size_t mask_dims[4]; /* mask shape: batch|1, heads_q|1, seq_q|1, seq_kv */
    float dropout_p;     /* 0 = no dropout */
    uint64_t dropout_seed, dropout_offset;
    /* Added to the fixed core: key-padding lengths, a host array [batch];
       key j of batch b is masked when j >= key_lengths[b] (0 is allowed and
       masks the whole batch). NULL = all keys valid. Combines with the rest.
       The oldest layout ends before it: a struct_size of
       offsetof(clattn_sdpa_desc, key_lengths) reads it as NULL. */
    const int32_t *key_lengths;
    /* Added: the element types of the K and V views of clattn_sdpa (a KV
       cache kept in half precision: half the bytes a decode step reads).
       0 = fp32, so older layouts read fp32. Q, mask, out, probs and lse
       stay fp32; the host entry point takes fp32 arrays only (another
       type there is CLATTN_ERROR_UNSUPPORTED). Strides and offsets of a
       view count its own elements. */
    clattn_dtype k_dtype, v_dtype;
    /* Added: K and V in a paged cache (kv_pages.block_size nonzero; see
       clattn_kv_pages). Zero = K and V are the views of
       clattn_sdpa_tensors as above, and older layouts read zero. */
    clattn_kv_pages kv_pages;
    /* Added: a variable-length batch, packed without padding
       (FlashAttention's varlen convention): host arrays [batch + 1] of
       cumulative lengths, [0] = 0, never decreasing. Sequence b owns the
       query tokens [cu_seqlens_q[b], cu_seqlens_q[b + 1]) and the keys
       [cu_seqlens_k[b], cu_seqlens_k[b + 1]); seq_q and seq_kv bound its
       lengths (FlashAttention's max_seqlen_q and max_seqlen_k). Every
       view then has batch 1 and runs over the packed tokens: Q and out
       [1][heads_q][total_q][dim], K and V [1][heads_kv][total_k][dim],
       lse [1][heads_q][total_q][1], with total_q = cu_seqlens_q[batch]
       and total_k = cu_seqlens_k[batch]; the host entry point takes
       those shapes too. Causal (either alignment) applies per sequence,
       to its own lengths; dropout keeps the positions of the padded
       batch [batch][heads_q][seq_q][seq_kv]. Packed queries over a
       paged cache (vLLM's chunked prefill): cu_seqlens_k NULL, K and V
       the pool of kv_pages, key_lengths the key counts (NULL: seq_kv
       each). Runs on the fused paths (AUTO without probs, FUSED,
       FUSED_CPU, FUSED_GPU); UNSUPPORTED with probs, a mask or the
       unfused path; key_lengths must be NULL with cu_seqlens_k (the
       lengths are there). Both NULL = not packed, and older layouts read
       NULL. */
    const int32_t *cu_seqlens_q, *cu_seqlens_k;
    /* Added: rotary embeddings of Q (and of K when rope_k is nonzero),
       applied before the scores on every path. Query i of batch b (of
       packed sequence b) sits at position rope_q_positions[b] + i, a host
       array [batch] (NULL = 0 each: a prompt); a decode step passes the
       positions it appended its tokens at (clattn_kv_append). rope_k
       nonzero: K holds unrotated keys, key j (of its sequence) rotated
       at position j, for attention over fresh keys; 0: K is rotated
       already, as a cache that clattn_kv_append filled with the same
       rope. Positions plus lengths stay below 2^24; rope_k needs a
       contiguous or packed K (a paged cache holds rotated keys:
       UNSUPPORTED). style NONE, and older layouts: no rotation. */
    clattn_rope rope;
    const int32_t *rope_q_positions;
    int rope_k;
} clattn_sdpa_desc;

/* Zeroes and sets struct_size; heads_kv 0 = heads_q, head_dim_v 0 =
   head_dim. */
CLATTN_API void clattn_sdpa_desc_init(clattn_sdpa_desc *desc);

/* Host memory, contiguous, [batch][heads][seq][dim]; mask contiguous in
   mask_dims. probs: NULL = not wanted (then the fused path may run), else
   [batch][heads_q][seq_q][seq_kv] softmax probabilities (after dropout).
   Blocks until the result is in out (and probs). */
CLATTN_API clattn_status clattn_sdpa_host(clattn_context *ctx,
                                          const clattn_sdpa_desc *desc,
                                          const float *q, const float *k,
                                          const float *v, const void *mask,
                                          float *out, float *probs);

/* A strided view of a device buffer: element (b, h, s, f) lives at
   buffer[offset + b*strides[0] + h*strides[1] + s*strides[2] + f].
   Offsets and strides count elements. strides[3] (feature) must be 1;
   stride 0 broadcasts an input. BHSD, BSHD and the Q/K/V parts of a packed
   [B, S, 3, H, D] projection are all such views. */
typedef struct clattn_tensor {
    cl_mem buffer;
    size_t offset;
    size_t strides[4];
} clattn_tensor;

typedef struct clattn_sdpa_tensors {
    clattn_tensor q, k, v; /* float: [batch][heads][seq][dim] */
    clattn_tensor mask;    /* uint8 or float per mask_type, dims mask_dims;
                              buffer NULL when mask_type is NONE */
    clattn_tensor out;     /* float [batch][heads_q][seq_q][head_dim_v] */
    clattn_tensor probs;   /* optional float [batch][heads_q][seq_q][seq_kv];
                              buffer NULL = not wanted */
    clattn_tensor lse;     /* optional float [batch][heads_q][seq_q][1]: the
                              row log-sum-exp of the masked scaled scores
                              (before dropout), -inf for a fully masked row;
                              buffer NULL = not wanted */
} clattn_sdpa_tensors;

/* Which implementation runs.
   AUTO: the fused path whenever probs is not requested (the variant that
   suits the device, see clattn_sdpa_fused_variant), else the unfused path.
   UNFUSED: QK^T into a score buffer, masked softmax, P.V; the only path that
   can write probs.
   FUSED: online softmax over key blocks, memory linear in the sequence
   length, the device's variant. FUSED_CPU and FUSED_GPU force a variant
   (both run on any device; they exist for tests and benchmarks, and are
   experimental: see the Experimental section at the end).
   A fused path given a probs view returns CLATTN_ERROR_UNSUPPORTED: there
   is no silent fallback to the unfused path. */
typedef enum clattn_sdpa_path {
    CLATTN_SDPA_PATH_AUTO = 0,
    CLATTN_SDPA_PATH_UNFUSED = 1,
    CLATTN_SDPA_PATH_FUSED = 2,
    /* Experimental (may change between minor versions): */
    CLATTN_SDPA_PATH_FUSED_CPU = 3, /* register-tiled, no barriers or __local */
    CLATTN_SDPA_PATH_FUSED_GPU = 4  /* __local tiles shared by a work-group */
} clattn_sdpa_path;

/* A static, never-NULL name: "auto", "unfused", "fused", "fused-cpu",
   "fused-gpu", or "unknown" for other values. */
CLATTN_API const char *clattn_sdpa_path_name(clattn_sdpa_path path);

/* Device-buffer SDPA on the context's queue. Waits for wait_list, and if
   event is not NULL returns an event that completes with the last write
   (the caller releases it). Inputs must not alias outputs; output views
   must not overlap themselves. Returns before the work is done. */
CLATTN_API clattn_status clattn_sdpa(clattn_context *ctx,
                                     const clattn_sdpa_desc *desc,
                                     const clattn_sdpa_tensors *tensors,
                                     clattn_sdpa_path path,
                                     cl_uint num_events_in_wait_list,
                                     const cl_event *event_wait_list,
                                     cl_event *event);

/* clattn_sdpa on a queue of the caller's, which must be on the context's
   OpenCL context and device (NULL = the context's queue). Threads that
   share one context can each enqueue on their own queue. */
CLATTN_API clattn_status clattn_sdpa_on_queue(
    clattn_context *ctx, cl_command_queue queue, const clattn_sdpa_desc *desc,
    const clattn_sdpa_tensors *tensors, clattn_sdpa_path path,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event *event);

/* Contiguous strides for a [d0][d1][d2][d3] tensor (a helper for callers). */
CLATTN_API void clattn_tensor_contiguous(clattn_tensor *t, cl_mem buffer,
                                         size_t offset, const size_t dims[4]);

/* Appending new tokens' K and V to a cache (a decode step's one token, or
   a prefill chunk): token t of batch b goes to logical position
   positions[b] + t of sequence b, in a paged cache (pages.block_size
   nonzero: the pool views of clattn_kv_pages) or a contiguous one
   (pages zero: views [batch][heads_kv][cache_seq][dim]). The new K and V
   are fp32 views [batch][heads_kv][new_tokens][dim]; the cache's element
   types are k_dtype and v_dtype, written rounded to nearest even (NaN
   stays NaN, overflow becomes infinity). Checked before anything is
   written: every position + new_tokens within the cache (cache_seq, or
   blocks_per_seq * block_size), the table entries of the blocks written
   in [0, num_blocks), and no slot written twice in the call (two
   sequences appending into one shared block). */
typedef struct clattn_kv_append_desc {
    size_t struct_size; /* sizeof, set by _init; 0 = this layout */
    size_t batch, heads_kv, new_tokens, head_dim, head_dim_v;
    clattn_dtype k_dtype, v_dtype; /* the cache's; 0 = fp32 */
    size_t cache_seq;              /* contiguous cache: its positions */
    clattn_kv_pages pages;         /* paged cache: its table */
    const int32_t *positions;      /* host [batch], each >= 0 */
    /* Added: rotary embeddings applied to the new keys at their
       positions (positions[b] + t, below 2^24) before they are stored,
       the way vLLM fills its cache; V is never rotated. style NONE, and
       older layouts: stored as given. */
    clattn_rope rope;
} clattn_kv_append_desc;

/* Zeroes and sets struct_size; head_dim_v 0 = head_dim. */
CLATTN_API void clattn_kv_append_desc_init(clattn_kv_append_desc *desc);

/* Enqueues the append on the context's queue (events as clattn_sdpa). */
CLATTN_API clattn_status clattn_kv_append(
    clattn_context *ctx, const clattn_kv_append_desc *desc,
    const clattn_tensor *k_new, const clattn_tensor *v_new,
    const clattn_tensor *k_cache, const clattn_tensor *v_cache,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event *event);

/* ------------------------------------------------------------------------ */
/* Layers: PyTorch / timm attention modules, with their state_dict weights  */
/* ------------------------------------------------------------------------ */
/* Every layer is made once from host weights laid out exactly as the
   module's state_dict tensors (row-major; a torch.nn.Linear weight is
   [out_features][in_features]); creation validates the description, copies
   the weights to the device and keeps them there. A weight the description
   calls for must be non-NULL, and one it does not call for must be NULL
   (INVALID_ARGUMENT otherwise), so a mismatched state_dict is caught.
   Forward calls take contiguous device buffers and enqueue on the context's
   queue (in order; they return before the work is done unless `timing` is
   given). The _host forms copy in, run and copy out, and block. On any
   error nothing is written to the outputs. Projections (every nn.Linear
   with more than one input feature) run through CLBlast; the rest is
   clattn's own kernels. A layer is used by one thread at a time. */

/* Where a layer's time went, from OpenCL event profiling. Asking for it
   (a non-NULL pointer) makes the forward call block until done. */
typedef struct clattn_layer_timing {
    double projection_ms; /* the CLBlast GEMMs and their bias adds */
    double attention_ms;  /* scores, masks, softmax, head mixing, P.V */
    double other_ms;      /* layer norm, mask and layout preparation, gates */
} clattn_layer_timing;

/* ---- Multi-head attention: torch.nn.MultiheadAttention ----------------- */

typedef struct clattn_mha_desc {
    size_t struct_size;          /* sizeof, set by _init; 0 = this layout */
    size_t embed_dim, num_heads; /* embed_dim % num_heads == 0 */
    size_t kdim, vdim;           /* key / value input features; 0 = embed_dim */
    int bias;                    /* torch bias=True: in_proj_bias, out_proj.bias */
    int batch_first;             /* 1: [batch][seq][feature]; 0: [seq][batch][feature] (torch default) */
    float dropout_p;             /* on the attention weights (torch training mode); 0 = eval */
    uint64_t dropout_seed;       /* Philox seed, as clattn_sdpa_desc */
    float scale;                 /* 0 = 1/sqrt(embed_dim / num_heads), as torch */
    int pre_layernorm;           /* normalize query, key and value with one affine LayerNorm
                                    over embed_dim first (needs kdim == vdim == embed_dim) */
    float layernorm_eps;         /* 0 = 1e-5, torch's default */
    int no_out_proj;             /* 1: no output projection (single-head seed forms) */
    /* Added: rotary embeddings (clattn_rope, section 4.4 of docs/api.md)
       on each head's queries and keys after the input projection, query
       i at position i and key j at j, as the attention blocks of Llama,
       GPT-NeoX and GPT-J apply them (torch's module has none). style
       NONE, and older layouts: none. */
    clattn_rope rope;
} clattn_mha_desc;

/* Zeroes and sets struct_size (torch defaults then follow from the zero
   values). */
CLATTN_API void clattn_mha_desc_init(clattn_mha_desc *desc);

typedef struct clattn_mha_weights {
    /* Packed [3E][E] (q; k; v rows), when kdim == vdim == embed_dim ... */
    const float *in_proj_weight;
    /* ... or the three separate ones (torch's q/k/v_proj_weight when
       kdim or vdim differ): [E][E], [E][kdim], [E][vdim]. */
    const float *q_proj_weight, *k_proj_weight, *v_proj_weight;
    const float *in_proj_bias;    /* [3E] when bias */
    const float *out_proj_weight; /* [E][E] unless no_out_proj */
    const float *out_proj_bias;   /* [E] when bias and out_proj */
    const float *norm_weight, *norm_bias; /* [E] when pre_layernorm */
} clattn_mha_weights;

typedef struct clattn_mha clattn_mha;

CLATTN_API clattn_status clattn_mha_create(clattn_context *ctx,
                                           const clattn_mha_desc *desc,
                                           const clattn_mha_weights *weights,
                                           clattn_mha **out);
CLATTN_API void clattn_mha_destroy(clattn_mha *layer); /* NULL is fine */

typedef enum clattn_need_weights {
    CLATTN_NEED_WEIGHTS_NONE = 0,     /* need_weights=False: the fused path may run */
    CLATTN_NEED_WEIGHTS_AVERAGE = 1,  /* [batch][seq_q][seq_kv], mean over heads (torch default) */
    CLATTN_NEED_WEIGHTS_PER_HEAD = 2  /* [batch][heads][seq_q][seq_kv] (average_attn_weights=False) */
} clattn_need_weights;

/* Shapes and masks of one call, shared by the device and host forms. */
typedef struct clattn_mha_call {
    size_t batch, seq_q, seq_kv;
    /* key_padding_mask: uint8 [batch][seq_kv], NONZERO = IGNORE the key
       (torch MHA polarity; the opposite of clattn_sdpa's bool mask). */
    int has_key_padding_mask;
    /* attn_mask: BOOL = uint8, NONZERO = NOT allowed (torch MHA polarity);
       ADDITIVE = float added to the scaled scores. Shape [seq_q][seq_kv],
       or [batch * num_heads][seq_q][seq_kv] when attn_mask_per_head. */
    clattn_mask_type attn_mask_type;
    int attn_mask_per_head;
    int is_causal; /* top-left causal mask (torch is_causal), combines with the rest */
    clattn_need_weights need_weights;
    clattn_sdpa_path path; /* AUTO, or force UNFUSED / FUSED for the attention core */
    clattn_layer_timing *timing; /* optional, see clattn_layer_timing */
} clattn_mha_call;

/* Device buffers, each contiguous in the layer's layout (batch_first or
   sequence-first). key == query (the same cl_mem) is self-attention:
   one GEMM computes Q, K and V together and attention reads them as
   strided views of its output. Masks and weights buffers are ignored (may
   be NULL) when the call does not use them. */
typedef struct clattn_mha_buffers {
    cl_mem query, key, value;   /* [.. seq_q/seq_kv .. batch ..][E | kdim | vdim] */
    cl_mem key_padding_mask, attn_mask;
    cl_mem out;                 /* [.. seq_q .. batch ..][E] */
    cl_mem attn_weights;        /* per need_weights */
} clattn_mha_buffers;

CLATTN_API clattn_status clattn_mha_forward(clattn_mha *layer,
                                            const clattn_mha_call *call,
                                            const clattn_mha_buffers *buffers);

/* Host form: key == query (same pointer) is self-attention as above. */
CLATTN_API clattn_status clattn_mha_forward_host(
    clattn_mha *layer, const clattn_mha_call *call, const float *query,
    const float *key, const float *value, const uint8_t *key_padding_mask,
    const void *attn_mask, float *out, float *attn_weights);

/* ---- Talking-heads attention: timm TalkingHeadAttn ----------------------- */

typedef struct clattn_talking_heads_desc {
    size_t struct_size;    /* sizeof, set by _init; 0 = this layout */
    size_t dim, num_heads; /* dim % num_heads == 0 */
    int qkv_bias;          /* timm qkv_bias */
    float dropout_p;       /* attn_drop, on the mixed weights; 0 = eval */
    uint64_t dropout_seed;
} clattn_talking_heads_desc;

/* Zeroes and sets struct_size. */
CLATTN_API void
clattn_talking_heads_desc_init(clattn_talking_heads_desc *desc);

typedef struct clattn_talking_heads_weights {
    const float *qkv_weight, *qkv_bias;       /* [3C][C], [3C] when qkv_bias */
    const float *proj_l_weight, *proj_l_bias; /* [H][H], [H] */
    const float *proj_w_weight, *proj_w_bias; /* [H][H], [H] */
    const float *proj_weight, *proj_bias;     /* [C][C], [C] */
} clattn_talking_heads_weights;

typedef struct clattn_talking_heads clattn_talking_heads;

CLATTN_API clattn_status clattn_talking_heads_create(
    clattn_context *ctx, const clattn_talking_heads_desc *desc,
    const clattn_talking_heads_weights *weights, clattn_talking_heads **out);
CLATTN_API void clattn_talking_heads_destroy(clattn_talking_heads *layer);

/* path: UNFUSED materializes [B][H][N][N] logits (in chunks under the
   context's scratch limit) and mixes them with a head-mixing kernel (the
   only path that can return attn); FUSED never stores N x N per head
   (memory O(B.H.N.D)) but computes the logits twice; AUTO = UNFUSED when
   attn is wanted, or while one batch's scores (2.H.N.N floats) fit the
   scratch limit (faster there), except on CPU-class devices below a head
   dim of 32 (where FUSED measured faster); else FUSED (as fast, far less
   memory). FUSED_CPU / FUSED_GPU are treated as FUSED. */
typedef struct clattn_talking_heads_call {
    size_t batch, seq;
    clattn_sdpa_path path;
    clattn_layer_timing *timing;
} clattn_talking_heads_call;

/* x, out: [batch][seq][dim]; attn: optional [batch][H][seq][seq], the
   weights after the second mix and dropout (NULL = not wanted). */
CLATTN_API clattn_status clattn_talking_heads_forward(
    clattn_talking_heads *layer, const clattn_talking_heads_call *call,
    cl_mem x, cl_mem out, cl_mem attn);
CLATTN_API clattn_status clattn_talking_heads_forward_host(
    clattn_talking_heads *layer, const clattn_talking_heads_call *call,
    const float *x, float *out, float *attn);

/* ---- Additive (Bahdanau) attention --------------------------------------- */
/* scores[b][i][j] = v . tanh(W_q q[b][i] + b_q + W_k k[b][j] + b_k) + b_v,
   weights = softmax over j, context = weights . values. The module is the
   PyTorch seq2seq tutorial's BahdanauAttention generalized: Wa (query),
   Ua (keys), Va (to one score). The [B][Sq][Skv][A] tensor is never
   stored. values == NULL in the host form (or the keys buffer passed as
   values) uses the keys as values, as the tutorial does. */
typedef struct clattn_additive_desc {
    size_t struct_size; /* sizeof, set by _init; 0 = this layout */
    size_t query_dim, key_dim, attn_dim, value_dim; /* value_dim 0 = key_dim */
    int bias; /* Wa, Ua, Va biases present (nn.Linear default) */
} clattn_additive_desc;

/* Zeroes and sets struct_size. */
CLATTN_API void clattn_additive_desc_init(clattn_additive_desc *desc);

typedef struct clattn_additive_weights {
    const float *wa_weight, *wa_bias; /* [A][query_dim], [A] */
    const float *ua_weight, *ua_bias; /* [A][key_dim], [A] */
    const float *va_weight, *va_bias; /* [1][A], [1] */
} clattn_additive_weights;

typedef struct clattn_additive clattn_additive;

CLATTN_API clattn_status clattn_additive_create(
    clattn_context *ctx, const clattn_additive_desc *desc,
    const clattn_additive_weights *weights, clattn_additive **out);
CLATTN_API void clattn_additive_destroy(clattn_additive *layer);

typedef struct clattn_additive_call {
    size_t batch, seq_q, seq_kv;
    int has_key_padding_mask; /* uint8 [batch][seq_kv], NONZERO = ignore (MHA polarity) */
    clattn_layer_timing *timing;
} clattn_additive_call;

/* query [B][Sq][query_dim], keys [B][Skv][key_dim], values [B][Skv][value_dim],
   context [B][Sq][value_dim], weights optional [B][Sq][Skv]. */
CLATTN_API clattn_status clattn_additive_forward(
    clattn_additive *layer, const clattn_additive_call *call, cl_mem query,
    cl_mem keys, cl_mem values, cl_mem key_padding_mask, cl_mem context,
    cl_mem weights);
CLATTN_API clattn_status clattn_additive_forward_host(
    clattn_additive *layer, const clattn_additive_call *call,
    const float *query, const float *keys, const float *values,
    const uint8_t *key_padding_mask, float *context, float *weights);

/* ---- Concat-then-combine attention (seq2seq tutorial AttnDecoderRNN) ------ */
/* weights = softmax(attn([q; k])) over max_length, applied = weights . V,
   out = attn_combine([q; applied]). attn: Linear(query_dim + key_dim,
   max_length); attn_combine: Linear(query_dim + value_dim, out_dim). The
   concatenations are never stored: each Linear runs as two GEMMs on the
   column blocks of its weight. */
typedef struct clattn_concat_desc {
    size_t struct_size; /* sizeof, set by _init; 0 = this layout */
    size_t query_dim, key_dim, value_dim, max_length, out_dim;
} clattn_concat_desc;

/* Zeroes and sets struct_size. */
CLATTN_API void clattn_concat_desc_init(clattn_concat_desc *desc);

typedef struct clattn_concat_weights {
    const float *attn_weight, *attn_bias;       /* [L][Dq + Dk], [L] */
    const float *combine_weight, *combine_bias; /* [out][Dq + Dv], [out] */
} clattn_concat_weights;

typedef struct clattn_concat clattn_concat;

CLATTN_API clattn_status clattn_concat_create(
    clattn_context *ctx, const clattn_concat_desc *desc,
    const clattn_concat_weights *weights, clattn_concat **out);
CLATTN_API void clattn_concat_destroy(clattn_concat *layer);

typedef struct clattn_concat_call {
    size_t batch;
    clattn_layer_timing *timing;
} clattn_concat_call;

/* query [B][Dq], key [B][Dk] (the tutorial's embedded and hidden),
   values [B][L][Dv] (encoder outputs), out [B][out_dim], weights optional
   [B][L] (NULL = not wanted). Device form: out and weights may not be an
   input buffer nor each other (inputs may share one buffer). */
CLATTN_API clattn_status clattn_concat_forward(clattn_concat *layer,
                                               const clattn_concat_call *call,
                                               cl_mem query, cl_mem key,
                                               cl_mem values, cl_mem out,
                                               cl_mem weights);
CLATTN_API clattn_status clattn_concat_forward_host(
    clattn_concat *layer, const clattn_concat_call *call, const float *query,
    const float *key, const float *values, float *out, float *weights);

/* ---- Squeeze-excitation token gate ----------------------------------------- */
/* m = mean over features of x[b][n]; h = relu(w1 * m + b1) (Linear(1, E));
   g = sigmoid(W2 h + b2) (Linear(E, E)); out = x * g. */
typedef struct clattn_se_gate clattn_se_gate;

typedef struct clattn_se_gate_desc {
    size_t struct_size; /* sizeof, set by _init; 0 = this layout */
    size_t embed_dim;   /* E */
} clattn_se_gate_desc;

/* Zeroes and sets struct_size (embed_dim must then be set). */
CLATTN_API void clattn_se_gate_desc_init(clattn_se_gate_desc *desc);

typedef struct clattn_se_gate_weights {
    const float *fc1_weight, *fc1_bias; /* [E][1], [E] */
    const float *fc2_weight, *fc2_bias; /* [E][E], [E] */
} clattn_se_gate_weights;

CLATTN_API clattn_status clattn_se_gate_create(
    clattn_context *ctx, const clattn_se_gate_desc *desc,
    const clattn_se_gate_weights *weights, clattn_se_gate **out);
CLATTN_API void clattn_se_gate_destroy(clattn_se_gate *layer);

typedef struct clattn_se_gate_call {
    size_t tokens; /* any batch/sequence layout flattened */
    clattn_layer_timing *timing;
} clattn_se_gate_call;

/* x, out: [tokens][E]; out may not alias x. */
CLATTN_API clattn_status clattn_se_gate_forward(clattn_se_gate *layer,
                                                const clattn_se_gate_call *call,
                                                cl_mem x, cl_mem out);
CLATTN_API clattn_status clattn_se_gate_forward_host(
    clattn_se_gate *layer, const clattn_se_gate_call *call, const float *x,
    float *out);

/* ------------------------------------------------------------------------ */
/* Experimental                                                              */
/* ------------------------------------------------------------------------ */
/* For tests, benchmarks and kernel development. What follows may change or
   go between minor versions (0.1 -> 0.2), unlike the rest of this header;
   code that must keep building should not depend on it.

   - CLATTN_SDPA_PATH_FUSED_CPU, CLATTN_SDPA_PATH_FUSED_GPU (clattn_sdpa_path
     above): force one fused variant on any device. FUSED picks the one
     that suits the device.
   - clattn_sdpa_fused_variant(), CLATTN_SDPA_PATH_EXPERIMENTAL_FIRST and
     clattn_sdpa_path_from_name() below.
   - Environment variables read when a context is created (docs/api.md
     3.6): CLATTN_SDPA_PATH (what AUTO runs for calls without probs: auto,
     unfused, fused, fused-cpu, fused-gpu; the test suites run once per
     value), CLATTN_UNFUSED_SCRATCH_BYTES (lowers the unfused path's score
     scratch limit), CLATTN_KERNEL_DIR (kernel sources read from a
     directory instead of the embedded copies), CLATTN_CACHE_DIR (where
     compiled programs are kept; "off" turns the cache off; on PoCL,
     whose own kernel cache does that job, clattn keeps none) and
     CLATTN_KERNEL_CLASS (auto, gpu, cpu: build every kernel family's
     GPU-class or CPU-class forms whatever the device, and let FUSED pick
     the fused variant of that class).
     CLATTN_DEVICE, the selector when the options give none, is stable. */

/* The variant FUSED (and AUTO) runs on this context's device, chosen from
   its capabilities: CLATTN_SDPA_PATH_FUSED_CPU or CLATTN_SDPA_PATH_FUSED_GPU;
   CLATTN_SDPA_PATH_AUTO for a NULL or unusable context. */
CLATTN_API clattn_sdpa_path
clattn_sdpa_fused_variant(const clattn_context *ctx);

/* SDPA variants for tests and kernel work that have no name in
   clattn_sdpa_path: each registered one has a value from this one up,
   found by its name. Such values may change with any build. */
#define CLATTN_SDPA_PATH_EXPERIMENTAL_FIRST 64

/* The path a name means, as clattn_sdpa_path_name writes it ("auto",
   "unfused", "fused", "fused-cpu", "fused-gpu", or an experimental
   variant's): CLATTN_SUCCESS and *path, else INVALID_ARGUMENT (NULL
   arguments, or a name no path has) with *path untouched. */
CLATTN_API clattn_status clattn_sdpa_path_from_name(const char *name,
                                                    clattn_sdpa_path *path);

#ifdef __cplusplus
}
#endif

#endif /* CLATTN_CLATTN_H */
