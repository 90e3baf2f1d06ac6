/* The GPU-class fused kernel's tile configurations (cl/sdpa/
   sdpa_fused_gpu.cl): the built-in table and the rule that picks from it
   by device limits, the tuning table keyed by device identity that
   overrides the rule, and $CLATTN_FUSED_GPU_TILES, which overrides both. */
#ifndef CLATTN_SDPA_FUSED_TILES_H
#define CLATTN_SDPA_FUSED_TILES_H

#include <CL/cl.h>
#include <stddef.h>

/* One build of the kernel: head dims padded to d, bm query rows per
   work-group in row groups of tm rows, lanes work-items per row group,
   bn keys per tile (FG_D, FG_BM, FG_TM, FG_LANES, FG_BN). */
typedef struct gpu_tiles {
    unsigned d, bm, tm, lanes, bn;
} gpu_tiles;

size_t gpu_tiles_wg(const gpu_tiles *t);
/* The kernel's static __local arrays for t, in bytes. */
size_t gpu_tiles_local_bytes(const gpu_tiles *t);

/* The built-in table: count and entry i. */
size_t gpu_tiles_count(void);
const gpu_tiles *gpu_tiles_at(size_t i);

/* The smallest padded head dim built that holds width (the max of
   head_dim and head_dim_v); 0 when none does. */
unsigned gpu_tiles_pad(size_t width);

/* The rule: the index of the first configuration from `from` on, at the
   padded head dim of width, that the device's work-group and local memory
   allow; gpu_tiles_count() when none is left. */
size_t gpu_tiles_next(size_t width, size_t max_work_group, cl_ulong local_mem,
                      size_t from);

/* The configuration the rule tries first for `rows` query rows per unit:
   the first that fits, or, when rows is below its bm, the fitting one with
   the fewest rows that still holds them all. */
size_t gpu_tiles_pick(size_t width, size_t max_work_group, cl_ulong local_mem,
                      size_t rows);

/* t's build options ("-DFG_D=.. ..."; none for the kernel file's
   defaults), with -DFG_DECODE=1 when decode. */
void gpu_tiles_options(const gpu_tiles *t, int decode, char *buf, size_t cap);

/* Parses a tile list, "D:BM,TM,LANES,BN" entries separated by ';', each
   D a head dim the table builds (at most one entry per D), with the
   kernel's constraints: TM divides BM, LANES (a power of two) divides BN,
   4 * LANES divides D, BM / TM * LANES at most 1024. 0 and the entries in
   out (up to cap; *count of them), or -1 with the reason in why. */
int gpu_tiles_parse(const char *text, gpu_tiles *out, size_t cap, size_t *count,
                    char *why, size_t why_size);

/* A tuning-table row: tiles (gpu_tiles_parse's form) for the devices whose
   CL_DEVICE_VENDOR contains vendor and CL_DEVICE_NAME contains device. */
typedef struct gpu_tuning_entry {
    const char *vendor, *device, *tiles;
} gpu_tuning_entry;

/* The built-in tuning table, ended by a row of NULLs. */
extern const gpu_tuning_entry gpu_tuning_table[];

/* The tiles at padded head dim d that table (ended by a NULL vendor)
   names for a device: the first row matching vendor and device that has
   an entry for d. 1 and *out when found, else 0. */
int gpu_tuning_lookup(const gpu_tuning_entry *table, const char *vendor,
                      const char *device, unsigned d, gpu_tiles *out);

#endif
