/* The GPU-class fused kernel's tile configurations: the table, the rule,
   the tuning table and the tile-list parser (sdpa_fused_tiles.h). */
#include "sdpa_fused_tiles.h"
#include "sdpa_fused.h"

#include <stdio.h>
#include <string.h>

/* FG_*: the kernel file's defaults (its head-dim 64 configuration). */
#include "kernel_params.h"

/* The GPU-class kernel's configurations (cl/sdpa/sdpa_fused_gpu.cl): per
   padded head dim, largest first. The rule: the smallest padded head dim
   that holds head_dim and head_dim_v, then the first configuration whose
   work-group the device allows and whose __local tiles fit its local
   memory (the first of each head dim fits NVIDIA's and AMD's 48-64 KiB,
   the second 32 KiB, as Intel's CPU runtime and Oclgrind have; the third,
   of 16 work-items, is for small devices and simulators, and keeps wide
   rows in fewer lanes at the cost of registers; the last, of 4 rows, is
   for decode). Head dims 80 and 96 have their own builds, so that they
   do not pad to 128 (60% and 33% more work), with 8-key tiles: their
   16-key ones spilled scalar registers on AMD; the first of 80 already
   fits 32 KiB, so its second is a narrower one, and the 4-row one
   serves small devices too. The first two of head dims 64 and 128
   compile with no stack and no spill for NVIDIA sm_90, all three of 80
   and 96 for sm_90 and AMD gfx90a (docs/gpu.md). Few query
   rows (decode) take the fitting configuration with the fewest rows that
   still holds them all, since a group's rows past seq_q compute on zeros
   (gpu_tiles_pick). Few builds on purpose: each configuration is a
   program compiled on first use (seconds on PoCL, a minute or more under
   the sanitizers). */
static const gpu_tiles gpu_configs[] = {
    {64, 64, 4, 8, 32}, {64, 32, 2, 8, 32},   {64, 16, 4, 4, 16},
    {64, 4, 1, 4, 16},  {80, 32, 2, 4, 8},    {80, 16, 1, 4, 8},
    {80, 4, 1, 4, 8},   {96, 32, 2, 8, 8},    {96, 16, 1, 8, 8},
    {96, 4, 1, 4, 8},   {128, 32, 2, 16, 16}, {128, 16, 1, 16, 16},
    {128, 8, 2, 4, 8},  {128, 4, 1, 4, 8},    {256, 16, 1, 8, 8},
    {256, 8, 1, 8, 8},  {256, 4, 1, 4, 4},
};

size_t gpu_tiles_wg(const gpu_tiles *t)
{
    return (size_t)t->bm / t->tm * t->lanes;
}

/* The kernel's static __local arrays: the Q, K and V tiles (rows padded
   to d + 4 floats), the weights and the row-max exchange. */
size_t gpu_tiles_local_bytes(const gpu_tiles *t)
{
    const size_t ds = t->d + 4;
    return sizeof(float) * ((size_t)t->bm * ds + 2 * (size_t)t->bn * ds +
                            (size_t)t->bm * t->bn + (size_t)t->bm * t->lanes);
}

/* The rule, as a pure function of the device's limits: the index of the
   first configuration from `from` on whose head dim is the smallest that
   holds `width` and that the device's work-group and local memory
   allow; the table's count when none is left. */
size_t gpu_tiles_next(size_t width, size_t max_work_group, cl_ulong local_mem,
                      size_t from)
{
    const size_t count = sizeof gpu_configs / sizeof gpu_configs[0];
    const unsigned pad = gpu_tiles_pad(width);
    for (size_t i = from; i < count; ++i) {
        const gpu_tiles *t = &gpu_configs[i];
        if (t->d == pad && gpu_tiles_wg(t) <= max_work_group &&
            gpu_tiles_local_bytes(t) <= local_mem)
            return i;
    }
    return count;
}

/* The configuration's build options (the program variant's extras). The
   one the kernel file's defaults describe (cl/sdpa/sdpa_fused_params.clh)
   has none: it is the program's default build, made at context creation,
   so a device it fits never compiles during a call. */
void gpu_tiles_options(const gpu_tiles *t, int decode, char *buf, size_t cap)
{
    const char *kernel = decode ? "-DFG_DECODE=1" : "";
    if (t->d == FG_D && t->bm == FG_BM && t->tm == FG_TM &&
        t->lanes == FG_LANES && t->bn == FG_BN) {
        snprintf(buf, cap, "%s", kernel);
        return;
    }
    snprintf(buf, cap,
             "-DFG_D=%u -DFG_BM=%u -DFG_TM=%u -DFG_LANES=%u -DFG_BN=%u%s%s",
             t->d, t->bm, t->tm, t->lanes, t->bn, decode ? " " : "", kernel);
}

int sdpa_fused_gpu_options(size_t width, size_t max_work_group,
                           cl_ulong local_mem, int decode, char *buf,
                           size_t cap)
{
    const size_t count = sizeof gpu_configs / sizeof gpu_configs[0];
    const size_t i = gpu_tiles_next(width, max_work_group, local_mem, 0);
    if (cap)
        buf[0] = '\0';
    if (i == count)
        return -1;
    gpu_tiles_options(&gpu_configs[i], decode, buf, cap);
    return 0;
}

/* The configuration plan_gpu tries first: the first that fits, or, when
   rows is below its BM, the fitting one with the fewest rows that still
   holds them all (the table lists each head dim's largest first); the
   table's count when none fits. */
size_t gpu_tiles_pick(size_t width, size_t max_work_group, cl_ulong local_mem,
                      size_t rows)
{
    const size_t count = sizeof gpu_configs / sizeof gpu_configs[0];
    size_t pick = gpu_tiles_next(width, max_work_group, local_mem, 0);
    for (size_t i = pick; i < count;
         i = gpu_tiles_next(width, max_work_group, local_mem, i + 1))
        if (gpu_configs[i].bm >= rows &&
            gpu_configs[i].bm < gpu_configs[pick].bm)
            pick = i;
    return pick;
}

size_t gpu_tiles_count(void)
{
    return sizeof gpu_configs / sizeof gpu_configs[0];
}

const gpu_tiles *gpu_tiles_at(size_t i)
{
    return &gpu_configs[i];
}

unsigned gpu_tiles_pad(size_t width)
{
    for (size_t i = 0; i < gpu_tiles_count(); ++i)
        if (gpu_configs[i].d >= width)
            return gpu_configs[i].d; /* the table is in head-dim order */
    return 0;
}

/* The tuning table: tiles measured best on a device, by its identity,
   over the rule's choice. A row is added from tools/gpu-check's tile
   sweep on that device (docs/gpu.md); none is measured yet, as no GPU has
   been at hand. */
const gpu_tuning_entry gpu_tuning_table[] = {
    {NULL, NULL, NULL},
};

int gpu_tuning_lookup(const gpu_tuning_entry *table, const char *vendor,
                      const char *device, unsigned d, gpu_tiles *out)
{
    for (const gpu_tuning_entry *e = table; e->vendor; ++e) {
        if (!strstr(vendor, e->vendor) || !strstr(device, e->device))
            continue;
        gpu_tiles list[8];
        size_t n = 0;
        char why[8];
        if (gpu_tiles_parse(e->tiles, list, 8, &n, why, sizeof why))
            continue; /* test_fused_tiles keeps every row valid */
        for (size_t i = 0; i < n; ++i)
            if (list[i].d == d) {
                *out = list[i];
                return 1;
            }
    }
    return 0;
}

/* An unsigned decimal of 1 to 4 digits at *p, advancing it; -1 when
   there is none. */
static long read_count(const char **p)
{
    long v = 0;
    int digits = 0;
    while (**p >= '0' && **p <= '9' && digits < 5) {
        v = v * 10 + (**p - '0');
        ++*p, ++digits;
    }
    return digits == 0 || digits > 4 || v == 0 ? -1 : v;
}

/* The kernel's constraints on one entry (the #error and the butterfly of
   sdpa_fused_gpu.cl, and work-groups of at most 1024); NULL when t obeys
   them, else what it breaks. */
static const char *tiles_fault(const gpu_tiles *t)
{
    if (t->d != gpu_tiles_pad(t->d))
        return "D is not a head dim the kernel is built for (64, 80, 96, "
               "128, 256)";
    if (t->bm % t->tm)
        return "TM does not divide BM";
    if (t->lanes & (t->lanes - 1))
        return "LANES is not a power of two";
    if (t->bn % t->lanes)
        return "LANES does not divide BN";
    if (t->d % (4 * t->lanes))
        return "4 * LANES does not divide D";
    if (gpu_tiles_wg(t) > 1024)
        return "BM / TM * LANES is over 1024 work-items";
    return NULL;
}

int gpu_tiles_parse(const char *text, gpu_tiles *out, size_t cap, size_t *count,
                    char *why, size_t why_size)
{
    const char *p = text;
    *count = 0;
    for (;;) {
        long v[5];
        for (int k = 0; k < 5; ++k) {
            if (k && *p++ != (k == 1 ? ':' : ',')) {
                snprintf(why, why_size, "entry %zu: expected D:BM,TM,LANES,BN",
                         *count + 1);
                return -1;
            }
            if ((v[k] = read_count(&p)) < 0) {
                snprintf(why, why_size,
                         "entry %zu: expected a count from 1 to 9999",
                         *count + 1);
                return -1;
            }
        }
        const gpu_tiles t = {(unsigned)v[0], (unsigned)v[1], (unsigned)v[2],
                             (unsigned)v[3], (unsigned)v[4]};
        const char *fault = tiles_fault(&t);
        if (fault) {
            snprintf(why, why_size, "entry %zu: %s", *count + 1, fault);
            return -1;
        }
        for (size_t i = 0; i < *count; ++i)
            if (out[i].d == t.d) {
                snprintf(why, why_size, "entry %zu: a second entry for D=%u",
                         *count + 1, t.d);
                return -1;
            }
        if (*count == cap) {
            snprintf(why, why_size, "more than %zu entries", cap);
            return -1;
        }
        out[(*count)++] = t;
        if (*p == '\0')
            return 0;
        if (*p++ != ';') {
            snprintf(why, why_size, "entry %zu: expected ';' or the end",
                     *count);
            return -1;
        }
    }
}
