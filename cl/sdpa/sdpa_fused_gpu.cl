/* Fused SDPA, GPU-class variant, in the FlashAttention-2 shape: online
   softmax over key tiles, no score matrix, every array in registers.

   A work-group owns FG_BM consecutive query rows of one (batch, head) and
   has FG_BM / FG_TM row groups of FG_LANES work-items each. Its Q rows are
   staged once in __local memory; each tile of FG_BN keys of K and V is
   staged there too (coalesced: consecutive work-items load consecutive
   elements), zero-padded to FG_D features, so head_dim and head_dim_v may
   be anything up to FG_D. Per tile, work-item (row group r, lane c):

   - scores: a register micro-tile of FG_TM rows x FG_TN keys (keys c,
     c + FG_LANES, ...: lanes read different K rows, conflict-free with the
     padded row stride);
   - the row max over the tile, through __local across the row group's
     lanes; the rescale of its running sums when the max moved;
   - its weights to __local (the P tile), then P.V for its FG_TM rows and
     its FG_TD features (float4 chunks c, c + FG_LANES, ...), summed per
     tile and added to the accumulator with Kahan compensation.

   The row sum l stays a per-lane partial (every lane rescales it by the
   same row-wide factor) and is reduced once, at the end. head_dim and
   head_dim_v are run-time values below FG_D; FG_D and the tile shape are
   build options the host picks per head dim and device (sdpa_fused.c),
   so the loops over features and keys have constant trip counts and the
   compiler keeps every array in registers. The defaults are the head-dim
   64 configuration.

   Masks, causal limits, key lengths, dropout (the same Philox positions
   as every path: element (row, key) of the (batch, head) score matrix)
   and the LSE are those of the other fused kernels. Causal: the group
   stops at the last key its last row may see. Split keys (decode): the
   group covers one slice of the keys and writes unnormalized partials for
   fused_merge.

   Two kernels share the body (fg_attend), differing in which query rows
   a work-group owns:
   - fused_gpu_flash: FG_BM consecutive rows of one (batch, query head);
   - fused_gpu_decode: FG_BM rows of the group * seq_q rows of one
     (batch, K/V head), head-major (row R is query head hk * group +
     R / seq_q, row R % seq_q). Every query head of a grouped-query
     (GQA) group shares the work-group's K/V tiles, so K and V are read
     once per K/V head, not once per query head, and a decode step
     (seq_q of 1 to a few) still fills the group's rows. The host takes it
     when group > 1 and seq_q is below the configuration's FG_BM. */
#ifndef CLATTN_EMBEDDED
#include "../core/kv_dtype.clh"
#include "../core/seq_varlen.clh"
#include "../core/kv_pages.clh"
#include "../core/sdpa_fused_common.clh"
#include "sdpa_fused_params.clh" /* FG_* */
#endif

/* FG_SUBGROUPS 1 (the host sets it where the device has
   cl_intel_subgroups): a row group's lanes reduce the row max and sum by
   shuffles within their sub-group instead of through __local memory and a
   barrier. Intel's extension works in OpenCL C 1.2, the language the
   library builds; cl_khr_subgroup_shuffle's functions need OpenCL C 2.0 or
   3.0's sub-group feature, so devices with only that take the __local
   form. */
#if FG_SUBGROUPS
#if FG_LANES & (FG_LANES - 1)
#error "FG_SUBGROUPS: the butterfly needs FG_LANES a power of two"
#endif
#pragma OPENCL EXTENSION cl_intel_subgroups : enable
#define fg_shuffle_xor intel_sub_group_shuffle_xor
#endif

#define FG_ROW_GROUPS (FG_BM / FG_TM)
#define FG_WG (FG_ROW_GROUPS * FG_LANES)
#define FG_TN (FG_BN / FG_LANES) /* keys per work-item in a tile */
#define FG_TD (FG_D / FG_LANES)  /* features per work-item */
#define FG_TD4 (FG_TD / 4)       /* ... as float4 chunks */
#define FG_DS (FG_D + 4)         /* row stride of the Q, K, V tiles */

#if FG_BM % FG_TM || FG_BN % FG_LANES || FG_D % (4 * FG_LANES)
#error "fused_gpu_flash: FG_TM must divide FG_BM, FG_LANES FG_BN and FG_D / 4"
#endif

/* The running max of the row, without fmax's NaN handling: a NaN score
   makes its weight, and so the row, NaN through the subtraction. */
float fg_max(float a, float b)
{
    return a > b ? a : b;
}

#if FG_SUBGROUPS
/* 1 when this launch's sub-groups hold whole row groups: FG_LANES divides
   the sub-group size and the sub-group size the work-group, so every
   sub-group is full (a work-group's sub-groups all have the maximum size
   but maybe the last, OpenCL C 6.15.1) and FG_LANES consecutive
   sub-group lanes can be one row group. The same for every work-item of
   the group (a uniform branch around the barriers); 0 on an
   implementation whose sub-groups are too small, which then takes the
   __local reductions of the same build. */
int fg_by_subgroup(void)
{
    const uint sg = get_max_sub_group_size();
    return sg % FG_LANES == 0 && FG_WG % sg == 0;
}

/* The work-item's role (row group * FG_LANES + lane) in sub-group order,
   so that a row group's lanes are FG_LANES consecutive lanes of one
   sub-group, whatever the implementation's mapping of local ids. */
uint fg_subgroup_role(void)
{
    return get_sub_group_id() * get_max_sub_group_size() +
           get_sub_group_local_id();
}

/* The max and the sum over the FG_LANES lanes of a row group by a
   butterfly of shuffles (lane ^ 1, ^ 2, ...): every lane gets the same
   value, bit for bit, since each step adds or compares the same two
   operands on both lanes. */
float fg_lanes_max(float x)
{
    for (uint o = 1; o < FG_LANES; o <<= 1)
        x = fg_max(x, fg_shuffle_xor(x, o));
    return x;
}

float fg_lanes_sum(float x)
{
    for (uint o = 1; o < FG_LANES; o <<= 1)
        x += fg_shuffle_xor(x, o);
    return x;
}
#endif

/* Rows [row0, row0 + rows) of a [rows][FG_DS] tile from a strided
   tensor: element (t, d) from src[t * stride + d] for d < width, else 0
   (rows past count are zero too). Every work-item of the group calls it.
   fg_stage reads floats (Q), fg_stage_k and fg_stage_v K and V in their
   element types (kv_dtype.clh). */
#define FG_STAGE_FN(NAME, ELEM, LOAD)                                          \
    void NAME(__local float *tile, __global const ELEM *src, ulong stride,     \
              uint rows, uint count, uint width, uint lid)                     \
    {                                                                          \
        for (uint e = lid; e < rows * FG_D; e += FG_WG) {                      \
            const uint t = e / FG_D, d = e % FG_D;                             \
            tile[t * FG_DS + d] =                                              \
                t < count && d < width ? LOAD(src, t * stride + d) : 0.0f;     \
        }                                                                      \
    }
#define FG_LOAD_FLOAT(p, i) ((p)[i])
FG_STAGE_FN(fg_stage, float, FG_LOAD_FLOAT)

/* K (V) tiles: rows j0 .. j0 + count of a K/V head. The default build
   stages them as any strided tile; a paged build (kv_pages.clh) finds each
   key's row through the block table, so a tile may span blocks. kh and vh
   are the rows' head: the batch's key 0 in the default build, the pool's
   head (no batch) in a paged one. */
#if KV_PAGED
#define FG_PAGED_STAGE_FN(NAME, ELEM, LOAD)                                    \
    void NAME(__local float *tile, __global const ELEM *head, ulong sb,        \
              ulong ss, uint b, uint j0, uint count, uint width,               \
              uint lid KV_PAGE_PARAMS)                                         \
    {                                                                          \
        for (uint e = lid; e < FG_BN * FG_D; e += FG_WG) {                     \
            const uint t = e / FG_D, d = e % FG_D;                             \
            tile[t * FG_DS + d] =                                              \
                t < count && d < width                                         \
                    ? LOAD(head, KV_ROW(b, j0 + t, sb, ss) + d)                \
                    : 0.0f;                                                    \
        }                                                                      \
    }
FG_PAGED_STAGE_FN(fg_stage_k, K_ELEM, K_LOAD)
FG_PAGED_STAGE_FN(fg_stage_v, V_ELEM, V_LOAD)
#define FG_STAGE_KV(fn, tile, head, sb, ss, j0, count, width)                  \
    fn(tile, head, sb, ss, b, j0, count, width, lid KV_PAGE_ARGS)
#else
FG_STAGE_FN(fg_stage_k, K_ELEM, K_LOAD)
FG_STAGE_FN(fg_stage_v, V_ELEM, V_LOAD)
#define FG_STAGE_KV(fn, tile, head, sb, ss, j0, count, width)                  \
    fn(tile, (head) + KV_ROW(b, j0, sb, ss), ss, FG_BN, count, width, lid)
#endif

/* Features d0 .. d0 + 3 of a row of width features (those below it). */
void fg_store4(__global float *row, uint d0, uint width, float4 x)
{
    if (d0 + 4 <= width) {
        vstore4(x, 0, row + d0);
        return;
    }
    /* The tail, component by component: a private array indexed at run
       time would put it on the stack. */
    if (d0 < width)
        row[d0] = x.s0;
    if (d0 + 1 < width)
        row[d0 + 1] = x.s1;
    if (d0 + 2 < width)
        row[d0 + 2] = x.s2;
}

/* Query row r of a work-group whose first row is i0 (fused_gpu_decode:
   of its K/V head's group * seq_q rows; fused_gpu_flash: of head h0's
   rows): its query head and row, clamped to the last row that exists,
   and whether it exists. */
typedef struct fg_row {
    uint h, i;
    int valid;
} fg_row;

fg_row fg_row_of(int gqa, uint h0, uint i0, uint r, uint group, uint seq_q,
                 uint last_row)
{
    fg_row x;
    const uint at = i0 + r;
    if (!gqa) {
        x.h = h0;
        x.i = min(at, last_row);
        x.valid = at < seq_q;
        return x;
    }
    /* (seq_q 0: a packed batch's sequence without queries, no row valid) */
    const uint rows = group * seq_q, rc = min(at, SEQ_NONZERO(rows) - 1);
    const uint div = SEQ_NONZERO(seq_q);
    x.valid = at < rows;
    x.h = h0 + rc / div;
    x.i = rc % div;
    return x;
}

/* fused_gpu_decode's Q tile: row t from row t of the work-group (zeros
   past the rows that exist and past head_dim). */
void fg_stage_q(__local float *tile, __global const float *qb, ulong q_sh,
                ulong q_ss, uint h0, uint i0, uint group, uint seq_q,
                uint head_dim, uint lid)
{
    for (uint e = lid; e < FG_BM * FG_D; e += FG_WG) {
        const uint t = e / FG_D, d = e % FG_D;
        const fg_row row = fg_row_of(1, h0, i0, t, group, seq_q, 0);
        tile[t * FG_DS + d] = row.valid && d < head_dim
                                  ? qb[row.h * q_sh + row.i * q_ss + d]
                                  : 0.0f;
    }
}

/* The body of both kernels, GQA 0 (fused_gpu_flash) or 1
   (fused_gpu_decode). A macro, not a function, so that each kernel is
   optimized with GQA known: an always-inline function is simplified once
   for both calls before it is inlined, and AMD's compiler then spilled a
   scalar register in fused_gpu_flash. */
/* Past 16 steps a whole unroll of the scores' loop over features lets
   AMD's compiler hoist every load of the loop: 491 VGPRs at D=128 on
   gfx90a, spills on RDNA; 4 steps at a time keep it at 168, and NVIDIA's
   count does not move. At D=64 the whole unroll is NVIDIA's best (4 steps
   spill there). */
#if FG_D > 64
#define FG_SCORES_UNROLL _Pragma("unroll 4")
#else
#define FG_SCORES_UNROLL
#endif
#if FG_SUBGROUPS
#define FG_BY_SUBGROUP fg_by_subgroup()
#define FG_SUBGROUP_ROLE fg_subgroup_role()
#define FG_LANES_MAX(x) fg_lanes_max(x)
#define FG_LANES_SUM(x) fg_lanes_sum(x)
#else
#define FG_BY_SUBGROUP 0
#define FG_SUBGROUP_ROLE lid
#define FG_LANES_MAX(x) (x)
#define FG_LANES_SUM(x) (x)
#endif

/* X[t] (t < FG_TM, this lane's max for row rg * FG_TM + t) becomes the
   max over the row group's FG_LANES lanes: by sub-group shuffles when
   by_sg, else through red[] and a barrier. Every work-item of the group
   runs it. red[] is written again (the next tile's max, the row sums)
   only after the P tile's barrier, so no barrier is needed after the
   reads. */
#define FG_ROWS_MAX(X)                                                         \
    if (by_sg) {                                                               \
        _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t) X[t] =              \
            FG_LANES_MAX(X[t]);                                                \
    } else {                                                                   \
        _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                     \
            red[(rg * FG_TM + t) * FG_LANES + c] = X[t];                       \
        barrier(CLK_LOCAL_MEM_FENCE);                                          \
        _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                     \
        {                                                                      \
            const uint r_ = (rg * FG_TM + t) * FG_LANES;                       \
            float x_ = red[r_];                                                \
            for (uint o = 1; o < FG_LANES; ++o)                                \
                x_ = fg_max(x_, red[r_ + o]);                                  \
            X[t] = x_;                                                         \
        }                                                                      \
    }

#define FG_ATTEND_KERNEL(NAME, GQA)                                            \
    __attribute__((reqd_work_group_size(FG_WG, 1, 1))) __kernel void NAME(     \
        FUSED_INPLACE_KERNEL_PARAMS)                                           \
    {                                                                          \
        __local float qt[FG_BM * FG_DS], kt[FG_BN * FG_DS], vt[FG_BN * FG_DS]; \
        __local float pt[FG_BM * FG_BN], red[FG_BM * FG_LANES];                \
                                                                               \
        const uint lid = (uint)get_local_id(0);                                \
        /* by_sg: reduce across lanes by sub-group shuffles (FG_SUBGROUPS);    \
           role: the work-item's row group and lane, in sub-group order then.  \
           Staging uses lid. */                                                \
        const int by_sg = FG_BY_SUBGROUP;                                      \
        const uint role = by_sg ? FG_SUBGROUP_ROLE : lid;                      \
        const uint c = role % FG_LANES, rg = role / FG_LANES;                  \
        const uint i0 = (uint)get_group_id(0) * FG_BM;                         \
        const uint unit = bh_begin + (uint)get_global_id(1);                   \
        const uint split = (uint)get_global_id(2);                             \
        const uint nsplit = (uint)get_global_size(2);                          \
        /* unit: (batch, K/V head) for decode, (batch, query head) for flash;  \
           h0 the first query head of the group's rows. */                     \
        const uint heads_kv = heads_q / group;                                 \
        const uint b = (GQA) ? unit / heads_kv : unit / heads_q;               \
        const uint hk = (GQA) ? unit % heads_kv : unit % heads_q / group;      \
        const uint h0 = (GQA) ? hk * group : unit % heads_q;                   \
        /* Every work-item runs the same loop (barriers), so the key range is  \
           the group's: up to the causal limit of its rows' last query row. */ \
        /* idle: a group past a shorter packed sequence's rows stages no Q,    \
           runs no keys and writes nothing (it does not return: PoCL's CPU     \
           device wrote past the output when groups returned before the        \
           barriers); never in the default build. */                           \
        const uint q_rows = SEQ_Q_ROWS(b, seq_q);                              \
        const uint rows_all = (GQA) ? group * q_rows : q_rows;                 \
        const int idle = SEQ_PAST_ROWS(i0, rows_all);                          \
        const uint q_div = SEQ_NONZERO(q_rows);                                \
        const uint last_at = idle ? i0 : min(i0 + FG_BM, rows_all) - 1;        \
        const uint last_row = !(GQA) ? last_at                                 \
                              : last_at / q_div != i0 / q_div                  \
                                  ? q_div - 1                                  \
                                  : last_at % q_div;                           \
        const uint kv_valid = fused_kv_valid(key_len, b, seq_kv);              \
        causal_shift =                                                         \
            SEQ_CAUSAL_SHIFT(causal, causal_shift, kv_valid, q_rows);          \
        const uint key_begin = split * split_keys;                             \
        const uint key_end =                                                   \
            idle ? key_begin                                                   \
                 : min(key_begin + split_keys,                                 \
                       fused_key_end(kv_valid, causal,                         \
                                     fused_causal_last(last_row,               \
                                                       causal_shift)));        \
        __global const K_ELEM *kh = KV_HEAD(k, k_off, b, hk, k_sb, k_sh);      \
        __global const V_ELEM *vh = KV_HEAD(v, v_off, b, hk, v_sb, v_sh);      \
                                                                               \
        if ((GQA))                                                             \
            fg_stage_q(qt, q + q_off + SEQ_ROW(b, 0, q_sb, q_ss), q_sh, q_ss,  \
                       h0, i0, group, q_rows, head_dim, lid);                  \
        else                                                                   \
            fg_stage(qt, q + q_off + h0 * q_sh + SEQ_ROW(b, i0, q_sb, q_ss),   \
                     q_ss, FG_BM, idle ? 0 : last_row + 1 - i0, head_dim,      \
                     lid);                                                     \
                                                                               \
        /* This work-item's rows (rows that do not exist compute on zeros,     \
           clamped to the last row for their mask reads, and write nothing).   \
         */                                                                    \
        fused_masks mk[FG_TM];                                                 \
        ulong drop_first[FG_TM];                                               \
        float m[FG_TM], l[FG_TM], lc[FG_TM];                                   \
        float4 acc[FG_TM][FG_TD4], comp[FG_TM][FG_TD4];                        \
        _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                     \
        {                                                                      \
            const fg_row row = fg_row_of((GQA), h0, i0, rg * FG_TM + t, group, \
                                         q_rows, last_row);                    \
            mk[t] = fused_masks_make(mask_bool, mask_add, seq_kv, kv_valid,    \
                                     causal);                                  \
            mk[t].m_row = m_off + b * m_sb + row.h * m_sh + row.i * m_ss;      \
            mk[t].causal_last = fused_causal_last(row.i, causal_shift);        \
            drop_first[t] =                                                    \
                (((ulong)b * heads_q + row.h) * seq_q + row.i) * seq_kv;       \
            m[t] = -INFINITY;                                                  \
            l[t] = lc[t] = 0.0f;                                               \
            _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f) acc[t][f] =    \
                comp[t][f] = (float4)0.0f;                                     \
        }                                                                      \
                                                                               \
        for (uint j0 = key_begin; j0 < key_end; j0 += FG_BN) {                 \
            const uint n = min((uint)FG_BN, key_end - j0);                     \
            barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is consumed */  \
            FG_STAGE_KV(fg_stage_k, kt, kh, k_sb, k_ss, j0, n, head_dim);      \
            FG_STAGE_KV(fg_stage_v, vt, vh, v_sb, v_ss, j0, n, head_dim_v);    \
            barrier(CLK_LOCAL_MEM_FENCE);                                      \
                                                                               \
            float s[FG_TM][FG_TN];                                             \
            _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                 \
                _Pragma("unroll") for (uint u = 0; u < FG_TN; ++u) s[t][u] =   \
                    0.0f;                                                      \
            /* FG_SCORES_UNROLL: see its definition */                         \
            FG_SCORES_UNROLL                                                   \
            for (uint d = 0; d < FG_D; d += 4) {                               \
                float4 qv[FG_TM];                                              \
                _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t) qv[t] =     \
                    vload4(0, qt + (rg * FG_TM + t) * FG_DS + d);              \
                _Pragma("unroll") for (uint u = 0; u < FG_TN; ++u)             \
                {                                                              \
                    const float4 kv =                                          \
                        vload4(0, kt + (c + u * FG_LANES) * FG_DS + d);        \
                    _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)         \
                        s[t][u] += dot(qv[t], kv);                             \
                }                                                              \
            }                                                                  \
                                                                               \
            /* Masked, scaled scores and each row's max over this lane's keys, \
               then over the row group's lanes. */                             \
            float tmx[FG_TM];                                                  \
            _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                 \
            {                                                                  \
                tmx[t] = -INFINITY;                                            \
                _Pragma("unroll") for (uint u = 0; u < FG_TN; ++u)             \
                {                                                              \
                    const uint jj = c + u * FG_LANES;                          \
                    s[t][u] =                                                  \
                        jj < n ? fused_mask1(s[t][u] * scale, j0 + jj, &mk[t]) \
                               : -INFINITY;                                    \
                    tmx[t] = fg_max(tmx[t], s[t][u]);                          \
                }                                                              \
            }                                                                  \
            FG_ROWS_MAX(tmx)                                                   \
            _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                 \
            {                                                                  \
                const uint r = rg * FG_TM + t;                                 \
                const float mx = fg_max(m[t], tmx[t]);                         \
                if (mx > m[t]) {                                               \
                    const float corr =                                         \
                        fused_weight1(m[t], mx); /* m = -inf: 0 */             \
                    l[t] *= corr;                                              \
                    lc[t] *= corr;                                             \
                    _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f)        \
                    {                                                          \
                        acc[t][f] *= corr;                                     \
                        comp[t][f] *= corr;                                    \
                    }                                                          \
                    m[t] = mx;                                                 \
                }                                                              \
                /* A masked key weighs 0 even while the max is still -inf; a   \
                   NaN score gives a NaN weight, and a NaN row. */             \
                float tl = 0.0f;                                               \
                _Pragma("unroll") for (uint u = 0; u < FG_TN; ++u)             \
                {                                                              \
                    const uint jj = c + u * FG_LANES;                          \
                    float p = s[t][u] == -INFINITY                             \
                                  ? 0.0f                                       \
                                  : fused_weight1(s[t][u], m[t]);              \
                    tl += p;                                                   \
                    if (drop_threshold)                                        \
                        p = dropout_keep(drop_seed, drop_offset,               \
                                         drop_first[t] + j0 + jj,              \
                                         drop_threshold)                       \
                                ? p * drop_scale                               \
                                : 0.0f;                                        \
                    pt[r * FG_BN + jj] = p;                                    \
                }                                                              \
                fused_kahan1(&l[t], &lc[t], tl);                               \
            }                                                                  \
            barrier(CLK_LOCAL_MEM_FENCE);                                      \
                                                                               \
            /* P.V of this tile for this work-item's rows and features; keys   \
               past n have weight 0 and zero V rows. */                        \
            float4 tacc[FG_TM][FG_TD4];                                        \
            _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                 \
                _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f)            \
                    tacc[t][f] = (float4)0.0f;                                 \
            for (uint jj = 0; jj < FG_BN; ++jj) {                              \
                float4 vv[FG_TD4];                                             \
                _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f) vv[f] =    \
                    vload4(0, vt + jj * FG_DS + (c + f * FG_LANES) * 4);       \
                _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)             \
                {                                                              \
                    const float p = pt[(rg * FG_TM + t) * FG_BN + jj];         \
                    _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f)        \
                        tacc[t][f] = fma((float4)p, vv[f], tacc[t][f]);        \
                }                                                              \
            }                                                                  \
            _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                 \
                _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f)            \
            {                                                                  \
                const float4 y = tacc[t][f] - comp[t][f];                      \
                const float4 sum = acc[t][f] + y;                              \
                comp[t][f] = (sum - acc[t][f]) - y;                            \
                acc[t][f] = sum;                                               \
            }                                                                  \
        }                                                                      \
                                                                               \
        /* The row sums: this lane's partial, then the row group's total. */   \
        if (!by_sg) {                                                          \
            barrier(CLK_LOCAL_MEM_FENCE);                                      \
            _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                 \
                red[(rg * FG_TM + t) * FG_LANES + c] = l[t];                   \
            barrier(CLK_LOCAL_MEM_FENCE);                                      \
        }                                                                      \
        _Pragma("unroll") for (uint t = 0; t < FG_TM; ++t)                     \
        {                                                                      \
            const uint r = rg * FG_TM + t;                                     \
            const fg_row row =                                                 \
                fg_row_of((GQA), h0, i0, r, group, q_rows, last_row);          \
            /* before the branch: every lane of a sub-group shuffles */        \
            float lsum = by_sg ? FG_LANES_SUM(l[t]) : 0.0f;                    \
            if (!row.valid)                                                    \
                continue;                                                      \
            if (!by_sg)                                                        \
                for (uint o = 0; o < FG_LANES; ++o)                            \
                    lsum += red[r * FG_LANES + o];                             \
            /* flash: i0 + r and the group's unit, as the row has them */      \
            const uint h = row.h, i = (GQA) ? row.i : i0 + r;                  \
            const uint bh = (GQA) ? b * heads_q + h : unit;                    \
            if (part) {                                                        \
                __global float *pr =                                           \
                    part + (((ulong)bh * nsplit + split) * seq_q + i) *        \
                               (head_dim_v + 2);                               \
                _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f) fg_store4( \
                    pr, (c + f * FG_LANES) * 4, head_dim_v, acc[t][f]);        \
                if (c == 0) {                                                  \
                    pr[head_dim_v] = m[t];                                     \
                    pr[head_dim_v + 1] = lsum;                                 \
                }                                                              \
                continue;                                                      \
            }                                                                  \
            /* lsum == 0: every key masked; the row is zeros. */               \
            __global float *orow =                                             \
                o + o_off + h * o_sh + SEQ_ROW(b, i, o_sb, o_ss);              \
            const float inv = 1.0f / lsum;                                     \
            _Pragma("unroll") for (uint f = 0; f < FG_TD4; ++f)                \
                fg_store4(orow, (c + f * FG_LANES) * 4, head_dim_v,            \
                          lsum == 0.0f ? (float4)0.0f : acc[t][f] * inv);      \
            if (lse && c == 0)                                                 \
                lse[l_off + h * l_sh + SEQ_ROW(b, i, l_sb, l_ss)] =            \
                    lsum == 0.0f ? -INFINITY : m[t] + log(lsum);               \
        }                                                                      \
    }

/* One of the two per build (FG_DECODE, sdpa_fused_params.clh). */
#if FG_DECODE
FG_ATTEND_KERNEL(fused_gpu_decode, 1)
#else
FG_ATTEND_KERNEL(fused_gpu_flash, 0)
#endif
