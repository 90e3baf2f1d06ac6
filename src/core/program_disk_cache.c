/* The on-disk half of the program cache (program_disk_cache.h): entry
   files of a fixed header and a driver's program binary, written through
   a temporary file and rename(), checked in full before use. */
#define _POSIX_C_SOURCE 200809L /* open flags, mkdir, fstat */
#include "program_disk_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char entry_magic[8] = {'C', 'L', 'A', 'T', 'T', 'N', 'P', 'B'};
static const char entry_suffix[] = ".clbin";

/* Lengths go into the key before each field, so ("ab", "c") and
   ("a", "bc") never hash alike. */
static void key_u64(sha256_state *s, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; ++i)
        b[i] = (unsigned char)(v >> (8 * i));
    sha256_update(s, b, sizeof b);
}

static void key_text(sha256_state *s, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    key_u64(s, n);
    sha256_update(s, text ? text : "", n);
}

void disk_cache_key_compute(const disk_cache_inputs *in, disk_cache_key *out)
{
    sha256_state s;
    sha256_init(&s);
    key_text(&s, "clattn program cache");
    key_u64(&s, DISK_CACHE_FORMAT_VERSION);
    key_text(&s, in->platform_name);
    key_text(&s, in->platform_version);
    key_text(&s, in->device_name);
    key_text(&s, in->device_version);
    key_text(&s, in->driver_version);
    key_text(&s, in->options);
    key_u64(&s, in->source_count);
    for (size_t i = 0; i < in->source_count; ++i)
        key_text(&s, in->sources[i]);
    sha256_final(&s, out->bytes);
}

static int nonempty(const char *s)
{
    return s && *s;
}

disk_cache_state disk_cache_resolve(char *dir, size_t cap)
{
    const char *own = getenv("CLATTN_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    dir[0] = '\0';
    if (nonempty(own)) {
        if (strcmp(own, "off") == 0)
            return DISK_CACHE_OFF;
        n = snprintf(dir, cap, "%s", own);
    } else if (nonempty(xdg) && xdg[0] == '/') {
        n = snprintf(dir, cap, "%s/clattn", xdg);
    } else if (nonempty(home)) {
        n = snprintf(dir, cap, "%s/.cache/clattn", home);
    } else {
        return DISK_CACHE_UNAVAILABLE;
    }
    if (n < 0 || (size_t)n >= cap) {
        dir[0] = '\0';
        return DISK_CACHE_UNAVAILABLE;
    }
    return DISK_CACHE_ON;
}

/* mkdir -p with mode 0700 for the parts that are missing (existing ones
   keep their modes); 0 when path ends up a directory. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        int e = errno;
        *p = '/';
        if (r != 0 && e != EEXIST)
            return -1;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

disk_cache_state disk_cache_open(char *dir, size_t cap)
{
    disk_cache_state state = disk_cache_resolve(dir, cap);
    if (state == DISK_CACHE_ON && make_dirs(dir) != 0) {
        dir[0] = '\0';
        state = DISK_CACHE_UNAVAILABLE;
    }
    return state;
}

static void key_hex(const disk_cache_key *key, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; ++i) {
        hex[2 * i] = digits[key->bytes[i] >> 4];
        hex[2 * i + 1] = digits[key->bytes[i] & 15];
    }
    hex[64] = '\0';
}

int disk_cache_entry_path(const char *dir, const disk_cache_key *key,
                          char *path, size_t cap)
{
    char hex[65];
    key_hex(key, hex);
    int n = snprintf(path, cap, "%s/%s%s", dir, hex, entry_suffix);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i)
        v = v << 8 | p[i];
    return v;
}

/* Reads exactly n bytes; a short file is an error, as is any failure. */
static int read_all(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

/* Every check before a byte reaches the caller: the file's size against
   the header's length, magic, format version, header size, the key when
   one is wanted, and the payload's checksum. */
static disk_cache_lookup read_entry(int fd, const disk_cache_key *want,
                                    disk_cache_key *got,
                                    unsigned char **payload, size_t *size)
{
    struct stat st;
    unsigned char h[DISK_CACHE_HEADER_BYTES];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size < (off_t)DISK_CACHE_HEADER_BYTES ||
        st.st_size > (off_t)(DISK_CACHE_HEADER_BYTES + DISK_CACHE_MAX_PAYLOAD))
        return DISK_CACHE_INVALID;
    if (read_all(fd, h, sizeof h) != 0)
        return DISK_CACHE_INVALID;
    uint64_t length = get_le(h + 48, 8);
    if (memcmp(h, entry_magic, sizeof entry_magic) != 0 ||
        get_le(h + 8, 4) != DISK_CACHE_FORMAT_VERSION ||
        get_le(h + 12, 4) != DISK_CACHE_HEADER_BYTES || length == 0 ||
        length != (uint64_t)st.st_size - DISK_CACHE_HEADER_BYTES)
        return DISK_CACHE_INVALID;
    if (want && memcmp(h + 16, want->bytes, sizeof want->bytes) != 0)
        return DISK_CACHE_INVALID;
    unsigned char *bytes = malloc((size_t)length);
    if (!bytes)
        return DISK_CACHE_INVALID;
    unsigned char digest[SHA256_DIGEST_BYTES];
    if (read_all(fd, bytes, (size_t)length) != 0) {
        free(bytes);
        return DISK_CACHE_INVALID;
    }
    sha256(bytes, (size_t)length, digest);
    if (memcmp(digest, h + 56, sizeof digest) != 0) {
        free(bytes);
        return DISK_CACHE_INVALID;
    }
    if (got)
        memcpy(got->bytes, h + 16, sizeof got->bytes);
    if (payload) {
        *payload = bytes;
        *size = (size_t)length;
    } else {
        free(bytes);
    }
    return DISK_CACHE_HIT;
}

static disk_cache_lookup load_path(const char *path, const disk_cache_key *want,
                                   disk_cache_key *got, unsigned char **payload,
                                   size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? DISK_CACHE_MISS : DISK_CACHE_INVALID;
    disk_cache_lookup r = read_entry(fd, want, got, payload, size);
    close(fd);
    return r;
}

disk_cache_lookup disk_cache_load(const char *dir, const disk_cache_key *key,
                                  unsigned char **payload, size_t *size)
{
    char path[DISK_CACHE_DIR_MAX + 80];
    *payload = NULL;
    *size = 0;
    if (disk_cache_entry_path(dir, key, path, sizeof path) != 0)
        return DISK_CACHE_MISS;
    return load_path(path, key, NULL, payload, size);
}

disk_cache_lookup disk_cache_check_file(const char *path, disk_cache_key *key)
{
    return load_path(path, NULL, key, NULL, NULL);
}

/* The temporary name must be unique among every thread of every process
   writing the directory: pid, a per-thread address (C11 has no thread id;
   a _Thread_local object's address differs between live threads) and a
   process-wide counter. O_EXCL catches what is left (a pid reused on
   another host sharing the directory). */
static int open_temp(const char *dir, const disk_cache_key *key, char *tmp,
                     size_t cap)
{
    static atomic_ulong counter;
    static _Thread_local char thread_anchor;
    char hex[65];
    key_hex(key, hex);
    for (int attempt = 0; attempt < 16; ++attempt) {
        int n =
            snprintf(tmp, cap, "%s/.%.16s.tmp.%ld.%lx.%lu", dir, hex,
                     (long)getpid(), (unsigned long)(uintptr_t)&thread_anchor,
                     (unsigned long)atomic_fetch_add(&counter, 1));
        if (n < 0 || (size_t)n >= cap)
            return -1;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

int disk_cache_store(const char *dir, const disk_cache_key *key,
                     const void *payload, size_t size)
{
    char final_path[DISK_CACHE_DIR_MAX + 80];
    char tmp[DISK_CACHE_DIR_MAX + 80];
    if (size == 0 || size > DISK_CACHE_MAX_PAYLOAD ||
        disk_cache_entry_path(dir, key, final_path, sizeof final_path) != 0)
        return -1;
    unsigned char h[DISK_CACHE_HEADER_BYTES];
    memcpy(h, entry_magic, sizeof entry_magic);
    put_le(h + 8, DISK_CACHE_FORMAT_VERSION, 4);
    put_le(h + 12, DISK_CACHE_HEADER_BYTES, 4);
    memcpy(h + 16, key->bytes, sizeof key->bytes);
    put_le(h + 48, size, 8);
    sha256(payload, size, h + 56);

    int fd = open_temp(dir, key, tmp, sizeof tmp);
    if (fd < 0)
        return -1;
    /* No fsync: rename() alone keeps concurrent readers and writers from
       ever seeing a torn file, and what a power cut may leave (an empty
       or short entry) fails the size and checksum checks. */
    int ok =
        write_all(fd, h, sizeof h) == 0 && write_all(fd, payload, size) == 0;
    if (close(fd) != 0)
        ok = 0;
    if (ok && rename(tmp, final_path) == 0)
        return 0;
    unlink(tmp);
    return -1;
}
