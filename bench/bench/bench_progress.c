#define _POSIX_C_SOURCE 200809L
#include "bench_progress.h"

#include "bench_timing.h"

#include <stdio.h>
#include <unistd.h>

static struct {
    int tty;
    size_t total, done;
    double start_ms;
    int shown;
} progress;

enum { QUIET_MS = 2000 };

void bench_progress_start(size_t total_steps)
{
    progress.tty = isatty(fileno(stderr));
    progress.total = total_steps;
    progress.done = 0;
    progress.start_ms = bench_now_ms();
    progress.shown = 0;
}

void bench_progress_total(size_t total_steps)
{
    progress.total = total_steps;
}

void bench_progress_step(const char *what)
{
    ++progress.done;
    double elapsed = bench_now_ms() - progress.start_ms;
    if (!progress.tty || elapsed < QUIET_MS)
        return;
    /* \r and erase-line: one line, rewritten in place. */
    fprintf(stderr, "\r\033[K[%zu/%zu %.0f s] %s", progress.done,
            progress.total, elapsed * 1e-3, what);
    fflush(stderr);
    progress.shown = 1;
}

void bench_progress_end(void)
{
    if (progress.shown)
        fprintf(stderr, "\r\033[K");
    progress.shown = 0;
}
