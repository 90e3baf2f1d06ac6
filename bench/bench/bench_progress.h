/* A progress line on stderr, only when stderr is a terminal and the run
   has taken more than a couple of seconds: redirected output stays clean
   and short runs stay quiet. */
#ifndef CLATTN_BENCH_PROGRESS_H
#define CLATTN_BENCH_PROGRESS_H

#include <stddef.h>

void bench_progress_start(size_t total_steps);
void bench_progress_total(size_t total_steps); /* once it is known */
void bench_progress_step(const char *what);    /* about to do step n+1 */
void bench_progress_end(void);

#endif
