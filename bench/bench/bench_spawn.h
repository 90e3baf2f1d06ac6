/* Running a helper program (python3 for the PyTorch peer, gnuplot) with a
   pipe to it or from it, without a shell between. */
#ifndef CLATTN_BENCH_SPAWN_H
#define CLATTN_BENCH_SPAWN_H

#include <stdio.h>
#include <sys/types.h>

/* Starts argv[0], searched in PATH. to_child: our end writes its stdin;
   else our end reads its stdout. quiet: its stderr goes to /dev/null.
   Returns our end, or NULL when it cannot be started. */
FILE *bench_spawn(char *const argv[], int to_child, int quiet, pid_t *pid);

/* Closes our end and waits. Returns the exit status, 127 when the
   program could not be executed, -1 when it died of a signal. */
int bench_spawn_wait(FILE *end, pid_t pid);

#endif
