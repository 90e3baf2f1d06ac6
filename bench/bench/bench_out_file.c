/* Opening, writing and closing an output file, the same for every format:
   see bench_output.h. */
#include "bench_output.h"

#include <errno.h>
#include <string.h>

int bench_write_file(const char *path, const bench_run *run,
                     void (*write)(FILE *f, const bench_run *run), char *err,
                     size_t cap)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, cap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    write(f, run);
    /* A full disk shows in ferror or in fclose's flush, not in fputs. */
    int bad = ferror(f);
    if (fclose(f) || bad) {
        snprintf(err, cap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
