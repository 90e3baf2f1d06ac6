/* The persistent program-binary cache: where it lives, the key of an
   entry, and reading and writing entries so that a torn, truncated or
   foreign file is never handed to a driver. Knows files, not OpenCL;
   program_cache.c decides what to cache. */
#ifndef CLATTN_PROGRAM_DISK_CACHE_H
#define CLATTN_PROGRAM_DISK_CACHE_H

#include "hash.h"

#include <stddef.h>

/* Bumped whenever the file layout or what the key covers changes, so old
   entries read as mismatches and are rebuilt. */
#define DISK_CACHE_FORMAT_VERSION 1u

/* magic, version, header size, key, payload length, payload SHA-256 */
#define DISK_CACHE_HEADER_BYTES (8 + 4 + 4 + 32 + 8 + 32)

/* Larger payloads are refused on read, so a corrupt length never turns
   into a huge allocation. */
#define DISK_CACHE_MAX_PAYLOAD ((size_t)256 << 20)

#define DISK_CACHE_DIR_MAX 4096

typedef struct disk_cache_key {
    unsigned char bytes[SHA256_DIGEST_BYTES];
} disk_cache_key;

/* What an entry's key covers: anything that changes the binary a driver
   would produce. */
typedef struct disk_cache_inputs {
    const char *const *sources; /* the program's texts, in build order */
    size_t source_count;
    const char *options; /* clBuildProgram options */
    const char *device_name, *device_version, *driver_version;
    const char *platform_name, *platform_version;
} disk_cache_inputs;

void disk_cache_key_compute(const disk_cache_inputs *in, disk_cache_key *out);

typedef enum disk_cache_state {
    DISK_CACHE_ON = 0,
    DISK_CACHE_OFF,         /* CLATTN_CACHE_DIR=off */
    DISK_CACHE_UNAVAILABLE, /* no location, or it cannot be created */
    DISK_CACHE_RUNTIME,     /* the runtime keeps compiled kernels itself */
} disk_cache_state;

/* The directory from the environment, without touching the file system:
   $CLATTN_CACHE_DIR, else $XDG_CACHE_HOME/clattn (absolute only, as the
   XDG spec says), else $HOME/.cache/clattn. Empty variables count as
   unset. Returns DISK_CACHE_ON with the path in dir, or why not. */
disk_cache_state disk_cache_resolve(char *dir, size_t cap);

/* disk_cache_resolve, then creates the directory and its missing parents
   (mode 0700). DISK_CACHE_UNAVAILABLE if that fails. */
disk_cache_state disk_cache_open(char *dir, size_t cap);

/* dir/<64 hex digits of key>.clbin; 0 on success, -1 if it does not fit. */
int disk_cache_entry_path(const char *dir, const disk_cache_key *key,
                          char *path, size_t cap);

typedef enum disk_cache_lookup {
    DISK_CACHE_MISS = 0, /* no entry */
    DISK_CACHE_INVALID,  /* an entry that fails a check: rebuild it */
    DISK_CACHE_HIT,
} disk_cache_lookup;

/* The entry for key: on a hit *payload (malloc'd, the caller frees) and
   *size hold the bytes whose checksum, length and key the header vouches
   for. */
disk_cache_lookup disk_cache_load(const char *dir, const disk_cache_key *key,
                                  unsigned char **payload, size_t *size);

/* Checks any entry file on its own (the key from its header, not from a
   caller): DISK_CACHE_HIT if it is whole, with its key in *key. */
disk_cache_lookup disk_cache_check_file(const char *path, disk_cache_key *key);

/* Writes the entry through a uniquely named temporary file in dir and an
   atomic rename over the final name, so readers and concurrent writers
   see the old entry or the new one, never a mix; the temporary file is
   removed on any failure. 0 on success, -1 otherwise. */
int disk_cache_store(const char *dir, const disk_cache_key *key,
                     const void *payload, size_t size);

#endif
