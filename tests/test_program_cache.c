/* The persistent program-binary cache: SHA-256 against published vectors,
   what the key covers, where the cache lives, the entry format and its
   checks, then on the real device: a cold build writes entries, a second
   context and a second process load them, every kind of corrupt entry is
   rebuilt silently with correct results, opt-out touches nothing, an
   unusable directory still works, sources under CLATTN_KERNEL_DIR bypass
   the cache, and concurrent writers (threads and processes) leave only
   whole entries. Everything happens under a temporary directory, so the
   user's own cache is never read or written.

   On PoCL, whose kernel cache makes clattn's redundant, the library uses
   none by default: that is checked first, then the hook
   clattn_fault_disk_cache_everywhere turns it on for the rest (and in
   the children), so the cache is shown on the CI device too.

   Modes for the child processes it starts (and for timing):
     --child-warm     exit 0 if every program came from the cache
     --child-build    exit 0 if a context and one SDPA call work
     --first-result   one small SDPA call, then exit (time it from outside)
     --first-result-own-cache  the same with clattn's cache on PoCL too */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp, setenv, pthread barriers */
#include "context_internal.h"
#include "fault_injection.h"
#include "hash.h"
#include "program_disk_cache.h"
#include "reference.h"
#include "test_util.h"

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self_path;
static char root[256];

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", root, name);
}

/* ---- SHA-256 ---------------------------------------------------------- */

static void hex_of(const unsigned char *d, char hex[65])
{
    for (int i = 0; i < 32; ++i)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void expect_sha(const char *what, const void *data, size_t n,
                       const char *want)
{
    unsigned char d[32];
    char hex[65];
    sha256(data, n, d);
    hex_of(d, hex);
    CHECK(strcmp(hex, want) == 0, "SHA-256(%s) = %s, want %s", what, hex, want);
}

/* FIPS 180-4 / NIST CAVS examples. */
static void hash_vectors(void)
{
    expect_sha(
        "\"\"", "", 0,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha(
        "abc", "abc", 3,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_sha(
        "448-bit message", m448, strlen(m448),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
        "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    expect_sha(
        "896-bit message", m896, strlen(m896),
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* One million 'a', fed in uneven pieces: the streaming interface
       across block boundaries. */
    sha256_state s;
    sha256_init(&s);
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    size_t left = 1000000;
    for (size_t piece = 1; left > 0;
         piece = (piece * 7 + 61) % sizeof chunk + 1) {
        size_t n = piece < left ? piece : left;
        sha256_update(&s, chunk, n);
        left -= n;
    }
    unsigned char d[32];
    char hex[65];
    sha256_final(&s, d);
    hex_of(d, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67"
                      "f1809a48a497200e046d39ccc7112cd0") == 0,
          "SHA-256(10^6 x 'a') = %s", hex);
    /* 55, 56 and 64 bytes: the padding's edge cases agree with one shot
       fed byte by byte. */
    for (size_t n = 54; n <= 65; ++n) {
        unsigned char one[32], bytes[32];
        sha256(chunk, n, one);
        sha256_init(&s);
        for (size_t i = 0; i < n; ++i)
            sha256_update(&s, chunk + i, 1);
        sha256_final(&s, bytes);
        CHECK(memcmp(one, bytes, 32) == 0, "%zu bytes one shot != bytewise", n);
    }
}

/* ---- the key ---------------------------------------------------------- */

static void key_inputs(void)
{
    const char *src[] = {"ab", "c"};
    disk_cache_inputs base = {src,      2,     "-DX=1", "dev",
                              "devver", "drv", "plat",  "platver"};
    disk_cache_key k0, k;
    disk_cache_key_compute(&base, &k0);
    disk_cache_key_compute(&base, &k);
    CHECK(memcmp(k0.bytes, k.bytes, 32) == 0, "the key is not deterministic");

    const char *moved[] = {"a", "bc"};
    const char *edited[] = {"ab", "d"};
    disk_cache_inputs v[9];
    for (int i = 0; i < 9; ++i)
        v[i] = base;
    v[0].sources = moved;      /* same bytes, other split */
    v[1].sources = edited;     /* one byte of source */
    v[2].source_count = 1;     /* one source fewer */
    v[3].options = "-DX=2";    /* build options */
    v[4].device_name = "dev2"; /* each device and platform string */
    v[5].device_version = "devver2";
    v[6].driver_version = "drv2";
    v[7].platform_name = "plat2";
    v[8].platform_version = "platver2";
    for (int i = 0; i < 9; ++i) {
        disk_cache_key_compute(&v[i], &k);
        CHECK(memcmp(k0.bytes, k.bytes, 32) != 0,
              "changing input %d leaves the key as it was", i);
    }
}

/* ---- the location ----------------------------------------------------- */

static void set_or_unset(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static void expect_location(const char *own, const char *xdg, const char *home,
                            disk_cache_state want_state, const char *want_dir)
{
    set_or_unset("CLATTN_CACHE_DIR", own);
    set_or_unset("XDG_CACHE_HOME", xdg);
    set_or_unset("HOME", home);
    char dir[DISK_CACHE_DIR_MAX];
    disk_cache_state st = disk_cache_resolve(dir, sizeof dir);
    CHECK(st == want_state && strcmp(dir, want_dir) == 0,
          "CLATTN_CACHE_DIR=%s XDG_CACHE_HOME=%s HOME=%s: state %d '%s', "
          "want %d '%s'",
          own ? own : "(unset)", xdg ? xdg : "(unset)", home ? home : "(unset)",
          (int)st, dir, (int)want_state, want_dir);
}

static void location(void)
{
    expect_location("/c/d", "/x", "/h", DISK_CACHE_ON, "/c/d");
    expect_location("off", "/x", "/h", DISK_CACHE_OFF, "");
    expect_location("", "/x", "/h", DISK_CACHE_ON, "/x/clattn");
    expect_location(NULL, "/x", "/h", DISK_CACHE_ON, "/x/clattn");
    expect_location(NULL, "", "/h", DISK_CACHE_ON, "/h/.cache/clattn");
    /* the XDG spec: a relative XDG_CACHE_HOME is ignored */
    expect_location(NULL, "rel", "/h", DISK_CACHE_ON, "/h/.cache/clattn");
    expect_location(NULL, NULL, NULL, DISK_CACHE_UNAVAILABLE, "");
    expect_location(NULL, NULL, "", DISK_CACHE_UNAVAILABLE, "");

    /* Missing parents are created, each with mode 0700. */
    char nested[512], dir[DISK_CACHE_DIR_MAX];
    path_in(nested, sizeof nested, "made/a/b");
    setenv("CLATTN_CACHE_DIR", nested, 1);
    CHECK(disk_cache_open(dir, sizeof dir) == DISK_CACHE_ON, "open %s", nested);
    struct stat st;
    char parent[512];
    path_in(parent, sizeof parent, "made/a");
    /* stat before CHECK: its arguments may be evaluated before its
       condition */
    int made = stat(nested, &st) == 0 && S_ISDIR(st.st_mode);
    CHECK(made && (st.st_mode & 0777) == 0700, "%s: mode %o", nested,
          (unsigned)(st.st_mode & 0777));
    made = stat(parent, &st) == 0;
    CHECK(made && (st.st_mode & 0777) == 0700, "%s: mode %o", parent,
          (unsigned)(st.st_mode & 0777));
    /* Below a regular file there is no directory to make. */
    char file[512], below[600];
    path_in(file, sizeof file, "plain-file");
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    snprintf(below, sizeof below, "%s/sub", file);
    setenv("CLATTN_CACHE_DIR", below, 1);
    CHECK(disk_cache_open(dir, sizeof dir) == DISK_CACHE_UNAVAILABLE &&
              dir[0] == '\0',
          "a cache below a regular file must be unavailable");
}

/* ---- directory listings ----------------------------------------------- */

typedef struct listing {
    int valid;   /* *.clbin whole and named after the key in its header */
    int invalid; /* *.clbin that fail */
    int other;   /* anything else: temporary files left behind */
} listing;

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

static listing list_dir(const char *dir)
{
    listing l = {0, 0, 0};
    DIR *d = opendir(dir);
    if (!d)
        return l;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        disk_cache_key key;
        char want[1024];
        if (!ends_with(e->d_name, ".clbin")) {
            l.other++;
        } else if (disk_cache_check_file(path, &key) == DISK_CACHE_HIT &&
                   disk_cache_entry_path(dir, &key, want, sizeof want) == 0 &&
                   strcmp(want, path) == 0) {
            l.valid++;
        } else {
            l.invalid++;
        }
    }
    closedir(d);
    return l;
}

/* The paths of the entries in dir (at most cap). */
static int entries_of(const char *dir, char paths[][1024], int cap)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap)
        if (ends_with(e->d_name, ".clbin"))
            snprintf(paths[n++], 1024, "%s/%s", dir, e->d_name);
    closedir(d);
    return n;
}

static void make_dir(char *out, size_t cap, const char *name)
{
    path_in(out, cap, name);
    mkdir(out, 0700);
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- the entry format, without OpenCL --------------------------------- */

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    *n = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size)
        *n = (size_t)size;
    fclose(f);
    return buf;
}

static void write_file(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fwrite(buf, 1, n, f);
    fclose(f);
}

/* The damage a file can take; each must read as DISK_CACHE_INVALID. */
typedef enum damage {
    FLIP_PAYLOAD_FIRST,
    FLIP_PAYLOAD_LAST,
    FLIP_CHECKSUM,
    TRUNCATE_ONE,
    TRUNCATE_TO_HEADER,
    TRUNCATE_IN_HEADER,
    EMPTY,
    APPEND_BYTE,
    WRONG_MAGIC,
    WRONG_VERSION,
    WRONG_LENGTH,
    DAMAGE_COUNT
} damage;

static const char *damage_name[DAMAGE_COUNT] = {"payload's first byte flipped",
                                                "payload's last byte flipped",
                                                "checksum byte flipped",
                                                "truncated by one byte",
                                                "truncated to the header",
                                                "truncated inside the header",
                                                "empty file",
                                                "one byte appended",
                                                "wrong magic",
                                                "wrong format version",
                                                "wrong payload length"};

static void apply_damage(const char *path, damage how)
{
    size_t n;
    unsigned char *b = read_file(path, &n);
    if (!b || n <= DISK_CACHE_HEADER_BYTES) {
        free(b);
        return;
    }
    switch (how) {
    case FLIP_PAYLOAD_FIRST: b[DISK_CACHE_HEADER_BYTES] ^= 0x01; break;
    case FLIP_PAYLOAD_LAST: b[n - 1] ^= 0x80; break;
    case FLIP_CHECKSUM: b[60] ^= 0x10; break;
    case TRUNCATE_ONE: n -= 1; break;
    case TRUNCATE_TO_HEADER: n = DISK_CACHE_HEADER_BYTES; break;
    case TRUNCATE_IN_HEADER: n = 40; break;
    case EMPTY: n = 0; break;
    case APPEND_BYTE: b[n++] = 0; break; /* read_file left one spare byte */
    case WRONG_MAGIC: b[0] ^= 0x20; break;
    case WRONG_VERSION: b[8] += 1; break;
    case WRONG_LENGTH: b[48] ^= 0x01; break;
    case DAMAGE_COUNT: break;
    }
    write_file(path, b, n);
    free(b);
}

static void entry_format(void)
{
    char dir[512];
    make_dir(dir, sizeof dir, "format");
    disk_cache_key key, other;
    sha256("one", 3, key.bytes);
    sha256("two", 3, other.bytes);
    unsigned char payload[300];
    for (size_t i = 0; i < sizeof payload; ++i)
        payload[i] = (unsigned char)(i * 7 + 3);

    unsigned char *got = NULL;
    size_t size = 0;
    CHECK(disk_cache_load(dir, &key, &got, &size) == DISK_CACHE_MISS && !got,
          "an absent entry is a miss");
    CHECK(disk_cache_store(dir, &key, payload, sizeof payload) == 0, "store");
    CHECK(disk_cache_load(dir, &key, &got, &size) == DISK_CACHE_HIT &&
              size == sizeof payload && memcmp(got, payload, size) == 0,
          "the stored payload reads back");
    free(got);
    char path[1024];
    disk_cache_entry_path(dir, &key, path, sizeof path);
    struct stat st;
    int written = stat(path, &st) == 0;
    CHECK(written &&
              st.st_size == DISK_CACHE_HEADER_BYTES + (off_t)sizeof payload &&
              (st.st_mode & 0777) == 0600,
          "entry %s: %lld bytes, mode %o", path, (long long)st.st_size,
          (unsigned)(st.st_mode & 0777));
    CHECK(disk_cache_store(dir, &key, payload, 0) != 0,
          "an empty payload is refused");

    for (int how = 0; how < DAMAGE_COUNT; ++how) {
        disk_cache_store(dir, &key, payload, sizeof payload);
        apply_damage(path, (damage)how);
        got = NULL;
        disk_cache_lookup r = disk_cache_load(dir, &key, &got, &size);
        CHECK(r == DISK_CACHE_INVALID && !got, "%s: lookup %d, want invalid",
              damage_name[how], (int)r);
        free(got);
    }
    /* A whole entry under another key's name. */
    char other_path[1024];
    disk_cache_store(dir, &key, payload, sizeof payload);
    disk_cache_entry_path(dir, &other, other_path, sizeof other_path);
    rename(path, other_path);
    got = NULL;
    CHECK(disk_cache_load(dir, &other, &got, &size) == DISK_CACHE_INVALID &&
              !got,
          "an entry of another key is invalid");
    listing l = list_dir(dir);
    CHECK(l.other == 0, "%d temporary files left", l.other);

    /* The final name taken by a non-empty directory: rename fails, and the
       temporary file goes with it. */
    mkdir(path, 0700);
    char inside[1100];
    snprintf(inside, sizeof inside, "%s/x", path);
    write_file(inside, payload, 1);
    CHECK(disk_cache_store(dir, &key, payload, sizeof payload) != 0,
          "a store whose rename fails must fail");
    l = list_dir(dir);
    CHECK(l.other == 0, "%d temporary files left after a failed store",
          l.other);
    remove(inside);
    remove(path);
}

/* Writers race on one key with different payloads while readers read
   until the writers are done: a reader sees no entry or one writer's
   payload whole, never a mix. Payloads of a few hundred KiB keep each
   write long enough for an in-place writer to be caught. */
enum { RACE_WRITERS = 4, RACE_READERS = 4, RACE_ROUNDS = 60 };

typedef struct race {
    const char *dir;
    disk_cache_key key;
    pthread_barrier_t start;
    int torn, hits, reads, writers_done;
    pthread_mutex_t lock;
} race;

typedef struct race_arg {
    race *r;
    int index;
} race_arg;

static size_t race_size(int writer)
{
    return ((size_t)256 << 10) + 50001 * (size_t)writer;
}

static void *race_writer(void *arg)
{
    race *r = ((race_arg *)arg)->r;
    int me = ((race_arg *)arg)->index;
    size_t n = race_size(me);
    unsigned char *buf = malloc(n);
    memset(buf, 'A' + me, n);
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < RACE_ROUNDS; ++i)
        disk_cache_store(r->dir, &r->key, buf, n);
    free(buf);
    pthread_mutex_lock(&r->lock);
    r->writers_done++;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void *race_reader(void *arg)
{
    race *r = ((race_arg *)arg)->r;
    pthread_barrier_wait(&r->start);
    for (int done = 0; !done;) {
        unsigned char *got = NULL;
        size_t n = 0;
        disk_cache_lookup l = disk_cache_load(r->dir, &r->key, &got, &n);
        int whole = l == DISK_CACHE_MISS;
        if (l == DISK_CACHE_HIT) {
            int w = got[0] - 'A';
            whole = w >= 0 && w < RACE_WRITERS && n == race_size(w);
            for (size_t j = 0; whole && j < n; ++j)
                whole = got[j] == got[0];
        }
        free(got);
        pthread_mutex_lock(&r->lock);
        r->torn += !whole;
        r->hits += l == DISK_CACHE_HIT;
        r->reads++;
        done = r->writers_done == RACE_WRITERS;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

static void store_race(void)
{
    char dir[512];
    make_dir(dir, sizeof dir, "race");
    race r = {.dir = dir};
    sha256("race", 4, r.key.bytes);
    pthread_barrier_init(&r.start, NULL, RACE_WRITERS + RACE_READERS);
    pthread_mutex_init(&r.lock, NULL);
    pthread_t t[RACE_WRITERS + RACE_READERS];
    race_arg args[RACE_WRITERS + RACE_READERS];
    for (int i = 0; i < RACE_WRITERS + RACE_READERS; ++i) {
        args[i].r = &r;
        args[i].index = i;
        pthread_create(&t[i], NULL,
                       i < RACE_WRITERS ? race_writer : race_reader, &args[i]);
    }
    for (int i = 0; i < RACE_WRITERS + RACE_READERS; ++i)
        pthread_join(t[i], NULL);
    CHECK(r.torn == 0 && r.hits > 0,
          "%d of %d reads saw a torn or foreign entry (%d whole)", r.torn,
          r.reads, r.hits);
    listing l = list_dir(dir);
    CHECK(l.valid == 1 && l.invalid == 0 && l.other == 0,
          "after the race: %d valid, %d invalid, %d other files", l.valid,
          l.invalid, l.other);
    pthread_barrier_destroy(&r.start);
    pthread_mutex_destroy(&r.lock);
}

/* ---- on the device ---------------------------------------------------- */

/* A context, or NULL with the reason printed (the caller fails). */
static clattn_context *open_context(clattn_status *status)
{
    clattn_context *ctx = NULL;
    *status = clattn_context_create(NULL, &ctx);
    if (*status != CLATTN_SUCCESS) {
        fprintf(stderr, "context: %s: %s\n", clattn_status_string(*status),
                clattn_context_last_error(ctx));
        clattn_context_destroy(ctx);
        return NULL;
    }
    return ctx;
}

/* One small SDPA call without probs (the fused path) and one with (the
   unfused path), each against the double reference. */
static int sdpa_correct(clattn_context *ctx)
{
    enum { B = 1, H = 2, SQ = 5, SKV = 7, D = 8 };
    /* on the stack: threads run this at once */
    float q[B * H * SQ * D], k[B * H * SKV * D], v[B * H * SKV * D];
    float out[B * H * SQ * D], probs[B * H * SQ * SKV];
    double ref[B * H * SQ * D];
    clattn_sdpa_desc d;
    clattn_sdpa_desc_init(&d);
    d.batch = B, d.heads_q = H, d.seq_q = SQ, d.seq_kv = SKV, d.head_dim = D;
    d.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    test_rng rng = test_rng_make(11);
    test_fill(&rng, q, sizeof q / sizeof q[0], -1, 1);
    test_fill(&rng, k, sizeof k / sizeof k[0], -1, 1);
    test_fill(&rng, v, sizeof v / sizeof v[0], -1, 1);
    ref_sdpa(&d, q, k, v, NULL, ref, NULL, NULL);
    int ok = 1;
    for (int with_probs = 0; with_probs < 2; ++with_probs) {
        memset(out, 0, sizeof out);
        clattn_status s = clattn_sdpa_host(ctx, &d, q, k, v, NULL, out,
                                           with_probs ? probs : NULL);
        if (s != CLATTN_SUCCESS) {
            fprintf(stderr, "sdpa: %s: %s\n", clattn_status_string(s),
                    clattn_context_last_error(ctx));
            ok = 0;
        } else if (compare_close(with_probs ? "out (unfused)" : "out (fused)",
                                 out, ref, sizeof out / sizeof out[0], TOL_ATOL,
                                 TOL_RTOL) != 0) {
            ok = 0;
        }
    }
    return ok;
}

static program_cache_stats stats_of(const clattn_context *ctx)
{
    return ctx->programs.cache_stats;
}

/* The programs a context builds at creation (the softmax work-group may
   take a second build of the unfused one): learnt from the cold run. */
static unsigned programs_at_creation;

static int run_child(const char *mode)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(self_path, self_path, mode, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Which runtimes keep compiled kernels themselves (program_cache.h). */
static void runtime_rule(void)
{
    static const struct {
        const char *platform, *pocl_kernel_cache;
        int keeps;
    } cases[] = {
        {"Portable Computing Language", NULL, 1},
        {"Portable Computing Language", "1", 1},
        {"Portable Computing Language", "0", 0},
        {"Intel(R) OpenCL", NULL, 0},
        {"Oclgrind", NULL, 0},
        {"NVIDIA CUDA", "1", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        CHECK(
            runtime_keeps_kernels(cases[i].platform,
                                  cases[i].pocl_kernel_cache) == cases[i].keeps,
            "%s with POCL_KERNEL_CACHE=%s: keeps kernels %d", cases[i].platform,
            cases[i].pocl_kernel_cache ? cases[i].pocl_kernel_cache : "(unset)",
            cases[i].keeps);
}

/* Without the hook: on a runtime that keeps its kernels clattn neither
   creates the directory nor stores or loads anything; elsewhere the
   cache is on. Either way the results are right. */
static clattn_status on_device_default(void)
{
    char dir[512];
    path_in(dir, sizeof dir, "default");
    setenv("CLATTN_CACHE_DIR", dir, 1);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    if (!ctx)
        return s;
    int keeps = runtime_keeps_kernels(ctx->info.platform_name,
                                      getenv("POCL_KERNEL_CACHE"));
    program_cache_stats st = stats_of(ctx);
    CHECK(sdpa_correct(ctx), "results with the default cache setting");
    struct stat made;
    if (keeps)
        CHECK(
            ctx->programs.cache_state == DISK_CACHE_RUNTIME && st.loads == 0 &&
                st.stores == 0 && st.builds > 0 && stat(dir, &made) != 0,
            "%s keeps its kernels: state %d, %u loads, %u stores, "
            "%u builds, the directory %s",
            ctx->info.platform_name, (int)ctx->programs.cache_state, st.loads,
            st.stores, st.builds, stat(dir, &made) == 0 ? "made" : "not made");
    else
        CHECK(ctx->programs.cache_state == DISK_CACHE_ON &&
                  st.stores == st.builds,
              "%s: state %d, %u stores of %u builds", ctx->info.platform_name,
              (int)ctx->programs.cache_state, st.stores, st.builds);
    clattn_context_destroy(ctx);
    return CLATTN_SUCCESS;
}

static int on_device_cold_warm(const char *dir)
{
    setenv("CLATTN_CACHE_DIR", dir, 1);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    if (!ctx)
        return s;
    program_cache_stats st = stats_of(ctx);
    programs_at_creation = st.builds;
    printf("device: %s / %s; %u programs built at creation\n",
           ctx->info.platform_name, ctx->info.device_name, st.builds);
    CHECK(ctx->programs.cache_state == DISK_CACHE_ON, "cache state %d",
          (int)ctx->programs.cache_state);
    CHECK(st.builds >= PROGRAM_FIRST_ON_DEMAND && st.stores == st.builds &&
              st.loads == 0 && st.rejects == 0,
          "cold: %u builds, %u stores, %u loads, %u rejects", st.builds,
          st.stores, st.loads, st.rejects);
    listing l = list_dir(dir);
    CHECK(l.valid == (int)st.stores && l.invalid == 0 && l.other == 0,
          "cold: %d valid entries (want %u), %d invalid, %d other", l.valid,
          st.stores, l.invalid, l.other);
    CHECK(sdpa_correct(ctx), "cold context computes correctly");
    /* An on-demand program goes through the cache too. */
    cl_kernel kernel = NULL;
    CHECK(program_kernel(ctx, PROGRAM_ADDITIVE, "additive_scores", &kernel) ==
                  CLATTN_SUCCESS &&
              stats_of(ctx).stores == st.stores + 1,
          "an on-demand program is stored");
    if (kernel)
        clReleaseKernel(kernel);
    clattn_context_destroy(ctx);

    /* The entries as written, to show the warm run leaves them alone. */
    char paths[16][1024];
    struct stat before[16];
    int n = entries_of(dir, paths, 16);
    for (int i = 0; i < n; ++i)
        stat(paths[i], &before[i]);

    ctx = open_context(&s);
    if (!ctx)
        return s;
    st = stats_of(ctx);
    CHECK(st.loads == programs_at_creation && st.builds == 0 &&
              st.stores == 0 && st.rejects == 0,
          "warm: %u loads (want %u), %u builds, %u stores, %u rejects",
          st.loads, programs_at_creation, st.builds, st.stores, st.rejects);
    CHECK(sdpa_correct(ctx), "warm context computes correctly");
    kernel = NULL;
    CHECK(program_kernel(ctx, PROGRAM_ADDITIVE, "additive_scores", &kernel) ==
                  CLATTN_SUCCESS &&
              stats_of(ctx).loads == st.loads + 1 && stats_of(ctx).builds == 0,
          "an on-demand program is loaded");
    if (kernel)
        clReleaseKernel(kernel);
    clattn_context_destroy(ctx);
    for (int i = 0; i < n; ++i) {
        struct stat now;
        CHECK(stat(paths[i], &now) == 0 && now.st_ino == before[i].st_ino &&
                  now.st_mtime == before[i].st_mtime,
              "%s was rewritten by a warm run", paths[i]);
    }

    /* Another process. */
    CHECK(run_child("--child-warm") == 0,
          "a second process must load every program from the cache");
    return CLATTN_SUCCESS;
}

/* After damage, a context rebuilds every damaged entry without a word in
   last_error, computes correctly, and leaves whole entries behind. */
static void expect_rebuilt(const char *dir, int entries, unsigned damaged,
                           const char *what)
{
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    CHECK(ctx != NULL, "%s: context creation must still succeed", what);
    if (!ctx)
        return;
    program_cache_stats st = stats_of(ctx);
    CHECK(st.rejects == damaged && st.builds == damaged &&
              st.stores == damaged &&
              st.loads == programs_at_creation - damaged,
          "%s: %u rejects, %u builds, %u stores, %u loads (want %u, %u, %u, "
          "%u)",
          what, st.rejects, st.builds, st.stores, st.loads, damaged, damaged,
          damaged, programs_at_creation - damaged);
    CHECK(strcmp(clattn_context_last_error(ctx), "") == 0,
          "%s: last_error '%s'", what, clattn_context_last_error(ctx));
    CHECK(sdpa_correct(ctx), "%s: results after the rebuild", what);
    clattn_context_destroy(ctx);
    listing l = list_dir(dir);
    CHECK(l.valid == entries && l.invalid == 0 && l.other == 0,
          "%s: afterwards %d valid (want %d), %d invalid, %d other", what,
          l.valid, entries, l.invalid, l.other);
}

/* The entries a context creates (not the on-demand one of the cold test):
   only those are damaged, so each damaged entry is rebuilt. */
static int creation_entries(const char *dir, char paths[][1024], int cap)
{
    setenv("CLATTN_CACHE_DIR", dir, 1);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    if (ctx)
        clattn_context_destroy(ctx);
    return entries_of(dir, paths, cap);
}

static void on_device_corruption(void)
{
    char dir[512], paths[16][1024];
    make_dir(dir, sizeof dir, "corrupt");
    int n = creation_entries(dir, paths, 16);
    CHECK(n == (int)programs_at_creation, "%d entries at creation, want %u", n,
          programs_at_creation);
    /* Each entry damaged its own way, so one context checks n kinds (a
       context costs about a minute under ASan without PoCL's cache). */
    for (int first = 0; first < DAMAGE_COUNT; first += n) {
        char what[512] = "";
        unsigned damaged = 0;
        for (int i = 0; i < n && first + i < DAMAGE_COUNT; ++i, ++damaged) {
            apply_damage(paths[i], (damage)(first + i));
            size_t used = strlen(what);
            snprintf(what + used, sizeof what - used, "%s%s", i ? "; " : "",
                     damage_name[first + i]);
        }
        expect_rebuilt(dir, n, damaged, what);
    }
    /* Whole entries under each other's names: the key in the header
       catches them. */
    if (n >= 2) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.swap", paths[0]);
        rename(paths[0], tmp);
        for (int i = 1; i < n; ++i)
            rename(paths[i], paths[i - 1]);
        rename(tmp, paths[n - 1]);
        expect_rebuilt(dir, n, (unsigned)n, "entries under other keys");
    }
    /* Whole, checksummed entries whose bytes the driver refuses. */
    for (int i = 0; i < n; ++i) {
        disk_cache_key key;
        static const char junk[] = "not a program binary";
        if (disk_cache_check_file(paths[i], &key) == DISK_CACHE_HIT)
            disk_cache_store(dir, &key, junk, sizeof junk);
    }
    expect_rebuilt(dir, n, (unsigned)n, "binaries the driver refuses");
}

static void on_device_opt_out(void)
{
    /* A populated default location, to show that off reads nothing. */
    char xdg[512], home[512], populated[600];
    make_dir(xdg, sizeof xdg, "xdg");
    make_dir(home, sizeof home, "home");
    snprintf(populated, sizeof populated, "%s/clattn", xdg);
    char paths[16][1024];
    int n = creation_entries(populated, paths, 16);
    setenv("XDG_CACHE_HOME", xdg, 1);
    setenv("HOME", home, 1);
    setenv("CLATTN_CACHE_DIR", "off", 1);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    CHECK(ctx != NULL, "a context with the cache off");
    if (ctx) {
        program_cache_stats st = stats_of(ctx);
        CHECK(ctx->programs.cache_state == DISK_CACHE_OFF && st.loads == 0 &&
                  st.stores == 0 && st.rejects == 0 &&
                  st.builds == programs_at_creation,
              "off: state %d, %u loads, %u stores, %u rejects, %u builds",
              (int)ctx->programs.cache_state, st.loads, st.stores, st.rejects,
              st.builds);
        CHECK(sdpa_correct(ctx), "results with the cache off");
        clattn_context_destroy(ctx);
    }
    listing l = list_dir(populated);
    CHECK(l.valid == n && l.other == 0, "off changed the XDG location");
    l = list_dir(xdg);
    CHECK(l.valid + l.invalid + l.other == 1, "off wrote into XDG_CACHE_HOME");
    l = list_dir(home);
    CHECK(l.valid + l.invalid + l.other == 0, "off wrote into HOME");

    /* Unset, the XDG location is used (and read). */
    unsetenv("CLATTN_CACHE_DIR");
    ctx = open_context(&s);
    CHECK(ctx && stats_of(ctx).loads == programs_at_creation,
          "CLATTN_CACHE_DIR unset: the programs come from XDG_CACHE_HOME");
    clattn_context_destroy(ctx);
    /* Without XDG_CACHE_HOME, $HOME/.cache/clattn, created 0700. */
    unsetenv("XDG_CACHE_HOME");
    ctx = open_context(&s);
    CHECK(ctx && stats_of(ctx).stores == programs_at_creation,
          "the entries go to HOME/.cache/clattn");
    clattn_context_destroy(ctx);
    char home_cache[600];
    snprintf(home_cache, sizeof home_cache, "%s/.cache/clattn", home);
    l = list_dir(home_cache);
    struct stat st;
    int made = stat(home_cache, &st) == 0;
    CHECK(l.valid == (int)programs_at_creation && made &&
              (st.st_mode & 0777) == 0700,
          "%s: %d entries, mode %o", home_cache, l.valid,
          (unsigned)(st.st_mode & 0777));
}

static void expect_uncached_but_working(const char *dir, const char *what)
{
    setenv("CLATTN_CACHE_DIR", dir, 1);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    CHECK(ctx != NULL, "%s: context creation must succeed", what);
    if (!ctx)
        return;
    program_cache_stats st = stats_of(ctx);
    CHECK(st.stores == 0 && st.loads == 0 && st.builds == programs_at_creation,
          "%s: %u stores, %u loads, %u builds", what, st.stores, st.loads,
          st.builds);
    CHECK(strcmp(clattn_context_last_error(ctx), "") == 0,
          "%s: last_error '%s'", what, clattn_context_last_error(ctx));
    CHECK(sdpa_correct(ctx), "%s: results", what);
    clattn_context_destroy(ctx);
}

static void on_device_unwritable(void)
{
    char below_file[600], file[512];
    path_in(file, sizeof file, "plain-file");
    snprintf(below_file, sizeof below_file, "%s/cache", file);
    expect_uncached_but_working(below_file, "a cache below a regular file");
    /* A directory nobody may create files in, even root. */
    struct stat st;
    if (stat("/proc/self", &st) == 0 && S_ISDIR(st.st_mode))
        expect_uncached_but_working("/proc/self", "a read-only directory");
    if (geteuid() != 0) {
        char ro[512];
        make_dir(ro, sizeof ro, "read-only");
        chmod(ro, 0500);
        expect_uncached_but_working(ro, "a directory of mode 0500");
        listing l = list_dir(ro);
        CHECK(l.valid + l.invalid + l.other == 0, "files in a 0500 directory");
        chmod(ro, 0700);
    }
}

/* Sources under CLATTN_KERNEL_DIR are compiled every time: an edit takes
   effect even when the cache holds the embedded sources' programs. The
   copy keeps cl/'s folders (core, sdpa, layers): CLATTN_KERNEL_DIR names
   the top, as cl/ does. */
static void copy_sources(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char src[1400], dst[1400];
        snprintf(src, sizeof src, "%s/%s", from, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
        struct stat st;
        if (stat(src, &st) == 0 && S_ISDIR(st.st_mode)) {
            mkdir(dst, 0700);
            copy_sources(src, dst);
            continue;
        }
        if (!ends_with(e->d_name, ".cl") && !ends_with(e->d_name, ".clh"))
            continue;
        size_t n;
        unsigned char *b = read_file(src, &n);
        if (b)
            write_file(dst, b, n);
        free(b);
    }
    if (d)
        closedir(d);
}

static void on_device_kernel_dir(void)
{
    char dir[512], kdir[512], cl_dir[1024];
    make_dir(dir, sizeof dir, "kernel-dir-cache");
    char paths[16][1024];
    int n = creation_entries(dir, paths, 16);
    /* cl/ next to this file's tests/ */
    snprintf(cl_dir, sizeof cl_dir, "%s", __FILE__);
    char *slash = strrchr(cl_dir, '/');
    if (!slash) {
        CHECK(0, "no source directory in __FILE__ (%s)", __FILE__);
        return;
    }
    snprintf(slash, sizeof cl_dir - (size_t)(slash - cl_dir), "/../cl");
    make_dir(kdir, sizeof kdir, "kernels");
    copy_sources(cl_dir, kdir);
    setenv("CLATTN_KERNEL_DIR", kdir, 1);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    CHECK(ctx != NULL, "a context from CLATTN_KERNEL_DIR=%s", kdir);
    if (ctx) {
        program_cache_stats st = stats_of(ctx);
        CHECK(st.loads == 0 && st.stores == 0 && st.rejects == 0 &&
                  st.builds == programs_at_creation,
              "kernel dir: %u loads, %u stores, %u builds", st.loads, st.stores,
              st.builds);
        CHECK(sdpa_correct(ctx), "results from CLATTN_KERNEL_DIR");
        clattn_context_destroy(ctx);
    }
    /* An edit that breaks the build must show, not a cached program. */
    char pv[600];
    snprintf(pv, sizeof pv, "%s/sdpa/sdpa_pv.cl", kdir);
    size_t len;
    unsigned char *text = read_file(pv, &len);
    const char broken[] = "#error edited under CLATTN_KERNEL_DIR\n";
    FILE *f = fopen(pv, "wb");
    if (f && text) {
        fwrite(broken, 1, sizeof broken - 1, f);
        fwrite(text, 1, len, f);
    }
    if (f)
        fclose(f);
    free(text);
    clattn_context *bad = NULL;
    s = clattn_context_create(NULL, &bad);
    CHECK(s == CLATTN_ERROR_BUILD_FAILED &&
              strstr(clattn_context_last_error(bad), "edited under") != NULL,
          "an edited source under CLATTN_KERNEL_DIR: %s",
          clattn_status_string(s));
    clattn_context_destroy(bad);
    unsetenv("CLATTN_KERNEL_DIR");
    listing l = list_dir(dir);
    CHECK(l.valid == n && l.other == 0,
          "CLATTN_KERNEL_DIR changed the cache: %d entries, want %d", l.valid,
          n);

    /* An injected build fault is never hidden by a cached program. */
    clattn_fault_fail_builds_on("");
    s = clattn_context_create(NULL, &bad);
    CHECK(s == CLATTN_ERROR_BUILD_FAILED,
          "an injected build fault with a warm cache: %s",
          clattn_status_string(s));
    clattn_context_destroy(bad);
    clattn_fault_fail_builds_on(NULL);
}

/* Several writers into one empty directory at once. */
enum { WRITERS = 4 };

typedef struct builder {
    pthread_barrier_t *start;
    int ok;
} builder;

static void *build_thread(void *arg)
{
    builder *b = arg;
    pthread_barrier_wait(b->start);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    b->ok = ctx && sdpa_correct(ctx);
    clattn_context_destroy(ctx);
    return NULL;
}

static void expect_whole_entries(const char *dir, const char *what)
{
    listing l = list_dir(dir);
    CHECK(l.valid == (int)programs_at_creation && l.invalid == 0 &&
              l.other == 0,
          "%s: %d valid entries (want %u), %d invalid, %d other files", what,
          l.valid, programs_at_creation, l.invalid, l.other);
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    CHECK(ctx && stats_of(ctx).loads == programs_at_creation &&
              stats_of(ctx).builds == 0,
          "%s: a later context loads every program", what);
    clattn_context_destroy(ctx);
}

static void on_device_concurrent(void)
{
    char dir[512];
    make_dir(dir, sizeof dir, "threads");
    setenv("CLATTN_CACHE_DIR", dir, 1);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, WRITERS);
    builder b[WRITERS];
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; ++i) {
        b[i].start = &start;
        b[i].ok = 0;
        pthread_create(&t[i], NULL, build_thread, &b[i]);
    }
    for (int i = 0; i < WRITERS; ++i) {
        pthread_join(t[i], NULL);
        CHECK(b[i].ok, "thread %d: context and results", i);
    }
    pthread_barrier_destroy(&start);
    expect_whole_entries(dir, "4 threads");

    make_dir(dir, sizeof dir, "processes");
    setenv("CLATTN_CACHE_DIR", dir, 1);
    pid_t pids[WRITERS];
    for (int i = 0; i < WRITERS; ++i)
        if ((pids[i] = fork()) == 0) {
            execl(self_path, self_path, "--child-build", (char *)NULL);
            _exit(127);
        }
    for (int i = 0; i < WRITERS; ++i) {
        int status = 0;
        CHECK(pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] &&
                  WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "process %d failed", i);
    }
    expect_whole_entries(dir, "4 processes");
}

static int child(const char *mode)
{
    /* The children show the cache; --first-result times the default. */
    clattn_fault_disk_cache_everywhere(strcmp(mode, "--first-result") != 0);
    if (strcmp(mode, "--first-result-own-cache") == 0)
        mode = "--first-result";
    clattn_status s;
    clattn_context *ctx = open_context(&s);
    if (!ctx)
        return 2;
    int ok = 1;
    if (strcmp(mode, "--child-warm") == 0) {
        program_cache_stats st = stats_of(ctx);
        ok = st.loads > 0 && st.builds == 0 && st.rejects == 0;
        if (!ok)
            fprintf(stderr, "child: %u loads, %u builds, %u rejects\n",
                    st.loads, st.builds, st.rejects);
    }
    if (strcmp(mode, "--first-result") == 0) {
        /* the call being timed: a tiny fused SDPA */
        float x[64] = {0}, out[64];
        clattn_sdpa_desc d;
        clattn_sdpa_desc_init(&d);
        d.batch = d.heads_q = 1, d.seq_q = d.seq_kv = d.head_dim = 8;
        ok = clattn_sdpa_host(ctx, &d, x, x, x, NULL, out, NULL) ==
             CLATTN_SUCCESS;
    } else {
        ok = sdpa_correct(ctx) && ok;
    }
    clattn_context_destroy(ctx);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc > 1)
        return child(argv[1]);

    /* Never the user's cache, whatever the environment says. */
    snprintf(root, sizeof root, "%s/clattn-cache-test-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char first[512];
    path_in(first, sizeof first, "cold-warm");
    setenv("CLATTN_CACHE_DIR", first, 1);
    unsetenv("CLATTN_KERNEL_DIR");
    const char *saved_home = getenv("HOME");
    char home[512];
    snprintf(home, sizeof home, "%s", saved_home ? saved_home : "");

    hash_vectors();
    key_inputs();
    location();
    entry_format();
    store_race();
    setenv("HOME", home, 1);

    runtime_rule();
    clattn_status s = on_device_default();
    clattn_fault_disk_cache_everywhere(1);
    if (s == CLATTN_SUCCESS)
        s = on_device_cold_warm(first);
    if (s == CLATTN_ERROR_NO_DEVICE) {
        printf("no OpenCL device: the device tests are skipped\n");
    } else if (s == CLATTN_SUCCESS) {
        on_device_corruption();
        on_device_unwritable();
        on_device_kernel_dir();
        on_device_concurrent();
        on_device_opt_out();
    } else {
        CHECK(0, "no context: the device tests did not run");
    }
    nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    return test_finish("test_program_cache");
}
