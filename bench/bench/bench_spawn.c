#define _POSIX_C_SOURCE 200809L
#include "bench_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

FILE *bench_spawn(char *const argv[], int to_child, int quiet, pid_t *pid)
{
    /* A helper that exits early must not kill us with SIGPIPE while we
       write the rest of its input: the write fails instead. */
    if (to_child)
        signal(SIGPIPE, SIG_IGN);
    int fds[2]; /* [0] read end, [1] write end */
    if (pipe(fds))
        return NULL;
    int theirs = to_child ? fds[0] : fds[1], ours = to_child ? fds[1] : fds[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, theirs, to_child ? 0 : 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    if (quiet)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(theirs);
    FILE *end = rc ? NULL : fdopen(ours, to_child ? "w" : "r");
    if (!end) {
        close(ours);
        if (!rc)
            waitpid(*pid, NULL, 0);
    }
    return end;
}

int bench_spawn_wait(FILE *end, pid_t pid)
{
    fclose(end);
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}
