/*
 * clattn: portable attention in OpenCL.
 *
 * The one public header. Every call returns a clattn_status (0 = success,
 * negative = error); detail text for the last error of a context comes from
 * clattn_context_last_error(). The library never prints and never exits, and
 * on error it writes nothing to the caller's output buffers: every input is
 * validated before any work is enqueued. (Only a failure of the OpenCL
 * runtime itself in mid-call, such as a lost device, can leave outputs
 * partly written; the status then says so.)
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
    /* Selector: "auto" | "gpu" | "cpu" | "accelerator" | "P:D" (platform and
       device index) | any other text = case-insensitive substring of the
       platform name, vendor or device name. NULL = $CLATTN_DEVICE or "auto". */
    const char *device;
    int no_fallback; /* nonzero: fail instead of falling back */
} clattn_context_options;

CLATTN_API void clattn_context_options_init(clattn_context_options *opts);

/* Picks a device, creates a context and queue on it and builds the kernels.
   If the chosen device cannot (context, queue or kernel build fails), the
   next candidate is tried unless no_fallback is set; each candidate's
   outcome is kept in clattn_info.selection_log (and in last_error when
   every candidate failed).
   On success *out is a usable context. On failure *out is either NULL (out
   of memory, or a NULL argument) or a context that only answers
   clattn_context_last_error() and clattn_context_destroy() (as
   sqlite3_open does): destroy it. */
CLATTN_API clattn_status
clattn_context_create(const clattn_context_options *opts, clattn_context **out);

/* Wraps a caller's queue (its context and device); the queue is retained
   and released on destroy. No fallback: the device is the caller's. Same
   *out rule as clattn_context_create. */
CLATTN_API clattn_status
clattn_context_create_from_queue(cl_command_queue queue, clattn_context **out);

CLATTN_API void clattn_context_destroy(clattn_context *ctx); /* NULL is fine */

/* Detail of the last error on this context: each call on a usable context
   clears it first, so it describes the latest call ("" after a success). A
   static message for a NULL context. The text may change with the next
   call on the context from any thread: copy it before calling again. */
CLATTN_API const char *clattn_context_last_error(const clattn_context *ctx);

/* What a context runs on, and why. */
typedef struct clattn_info {
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
} clattn_info;

CLATTN_API clattn_status clattn_context_info(const clattn_context *ctx,
                                             clattn_info *info);

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

typedef struct clattn_sdpa_desc {
    size_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v;
    float scale; /* 0 = 1/sqrt(head_dim) */
    clattn_causal causal;
    clattn_mask_type mask_type;
    size_t mask_dims[4]; /* mask shape: batch|1, heads_q|1, seq_q|1, seq_kv */
    float dropout_p;     /* 0 = no dropout */
    uint64_t dropout_seed, dropout_offset;
    /* Added to the fixed core: key-padding lengths, a host array [batch];
       key j of batch b is masked when j >= key_lengths[b] (0 is allowed and
       masks the whole batch). NULL = all keys valid. Combines with the rest. */
    const int32_t *key_lengths;
} clattn_sdpa_desc;

/* Zeroes; heads_kv 0 = heads_q, head_dim_v 0 = head_dim. */
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
   (both run on any device; they exist for tests and benchmarks).
   A fused path given a probs view returns CLATTN_ERROR_UNSUPPORTED: there
   is no silent fallback to the unfused path. */
typedef enum clattn_sdpa_path {
    CLATTN_SDPA_PATH_AUTO = 0,
    CLATTN_SDPA_PATH_UNFUSED = 1,
    CLATTN_SDPA_PATH_FUSED = 2,
    CLATTN_SDPA_PATH_FUSED_CPU = 3, /* register-tiled, no barriers or __local */
    CLATTN_SDPA_PATH_FUSED_GPU = 4  /* __local tiles shared by a work-group */
} clattn_sdpa_path;

/* A static, never-NULL name: "auto", "unfused", "fused", "fused-cpu",
   "fused-gpu", or "unknown" for other values. */
CLATTN_API const char *clattn_sdpa_path_name(clattn_sdpa_path path);

/* The variant FUSED (and AUTO) runs on this context's device, chosen from
   its capabilities: CLATTN_SDPA_PATH_FUSED_CPU or CLATTN_SDPA_PATH_FUSED_GPU;
   CLATTN_SDPA_PATH_AUTO for a NULL or unusable context. */
CLATTN_API clattn_sdpa_path
clattn_sdpa_fused_variant(const clattn_context *ctx);

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

#ifdef __cplusplus
}
#endif

#endif /* CLATTN_CLATTN_H */
