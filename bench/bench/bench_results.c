#include "bench_results.h"

#include <stdlib.h>
#include <string.h>

const char *bench_status_name(bench_status s)
{
    switch (s) {
    case BENCH_OK: return "ok";
    case BENCH_UNSUPPORTED: return "unsupported";
    case BENCH_FAILED: return "failed";
    }
    return "failed";
}

bench_record *bench_run_add(bench_run *run, int device, size_t case_index,
                            const char *path)
{
    if (run->nrecords == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 64;
        bench_record *more = realloc(run->records, cap * sizeof *more);
        if (!more)
            return NULL;
        run->records = more;
        run->cap = cap;
    }
    bench_record *r = &run->records[run->nrecords++];
    memset(r, 0, sizeof *r);
    r->device = device;
    r->case_index = case_index;
    strncpy(r->path, path, sizeof r->path - 1);
    r->status = BENCH_FAILED; /* until measured */
    return r;
}

const bench_record *bench_run_find(const bench_run *run, int device,
                                   size_t case_index, const char *path)
{
    for (size_t i = 0; i < run->nrecords; ++i) {
        const bench_record *r = &run->records[i];
        if (r->device == device && r->case_index == case_index &&
            r->status == BENCH_OK && strcmp(r->path, path) == 0)
            return r;
    }
    return NULL;
}
