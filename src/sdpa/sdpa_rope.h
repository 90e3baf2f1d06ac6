/* Rotary position embeddings (clattn_rope): the checks of the fields of
   clattn_sdpa_desc and clattn_kv_append_desc, the frequency table the
   kernels read (cl/core/rope.clh), and SDPA's pre-pass, which rotates Q
   (and K, with rope_k) into contiguous fp32 copies that the chosen path
   then reads in place of the caller's views (cl/sdpa/rope.cl). */
#ifndef CLATTN_SDPA_ROPE_H
#define CLATTN_SDPA_ROPE_H

#include "clattn/clattn.h"
#include "sdpa_problem.h"

/* Positions plus lengths stay below this: exact in a float. */
#define ROPE_POSITION_LIMIT ((size_t)1 << 24)

/* Checks r (named field in the errors) for rows of head_dim features
   and writes it with its defaults resolved (rotary_dim, theta) into
   *resolved. style NONE: every other field 0. */
clattn_status rope_check(clattn_context *ctx, const clattn_rope *r,
                         size_t head_dim, const char *field,
                         clattn_rope *resolved);

/* The kernels' table, [rotary_dim / 2] float2: inv_freq_i / (2 pi) as
   hi + lo, computed in double (r resolved, style not NONE). */
clattn_status rope_turns_upload(clattn_context *ctx, const clattn_rope *r,
                                cl_mem *out);

/* The SDPA desc's rope fields (the rest of d checked into p before):
   into p->rope, p->rope_q_positions, p->rope_k. */
clattn_status sdpa_rope_check(clattn_context *ctx, const clattn_sdpa_desc *d,
                              sdpa_problem *p);

/* The pre-pass of one SDPA plan: the rotated copies replace views->q
   (and views->k, whose element type becomes fp32) once prepared. */
typedef struct sdpa_rope_plan {
    checked_view q_src, k_src; /* the caller's views (k_src unused
                                  without rope_k) */
    cl_kernel q_kernel, k_kernel;
    cl_mem q_rot, k_rot, turns, starts;
} sdpa_rope_plan;

/* After every check: makes the copies and kernels, points p and views
   at the copies. Nothing held on failure. */
clattn_status sdpa_rope_prepare(clattn_context *ctx, sdpa_problem *p,
                                sdpa_views *views, sdpa_rope_plan *plan);

/* Enqueues the rotations after the wait list on queue; *done gets the
   event of the last. */
clattn_status sdpa_rope_enqueue(clattn_context *ctx, cl_command_queue queue,
                                const sdpa_problem *p, const sdpa_views *views,
                                const sdpa_rope_plan *plan, cl_uint num_wait,
                                const cl_event *wait, cl_event *done);

/* Releases what prepare made (a zeroed plan is fine). */
void sdpa_rope_release(clattn_context *ctx, sdpa_rope_plan *plan);

#endif
