/* Error detail is per thread per context (clattn.h, api.md 3.7): two
   threads share one context, one failing in a loop with a message that
   names its iteration, the other succeeding or failing differently; after
   every call each thread reads its own call's text, and a text it holds
   does not change while the other thread calls. A new thread starts from
   "" (even one given the pthread_t of a thread that erred and exited), and
   a context whose creation failed shows its creation error on every
   thread. With one buffer per context (the old design) the loop fails
   within a few iterations. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ITERATIONS = 20000 };

static clattn_context *g_ctx;
static float g_data[64];
static atomic_long g_b_calls; /* thread B's calls so far */
static atomic_int g_a_done;

typedef struct tally {
    long mismatches;
    char first[512]; /* the first mismatch, described */
} tally;

static void mismatch(tally *t, const char *fmt, const char *want,
                     const char *got, long i)
{
    if (t->mismatches++ == 0)
        snprintf(t->first, sizeof t->first, fmt, i, want, got);
}

/* A minimal valid-looking desc whose causal value names the iteration:
   sdpa_problem_init rejects it with "causal has unknown value <n>". */
static void failing_desc(clattn_sdpa_desc *d, int causal)
{
    clattn_sdpa_desc_init(d);
    d->batch = d->heads_q = d->seq_q = d->seq_kv = d->head_dim = 2;
    d->causal = (clattn_causal)causal;
}

/* Thread A: every call fails with its own text; every 16th iteration it
   holds the pointer while thread B makes calls, and checks it kept its
   text. */
static void *thread_a(void *arg)
{
    tally *t = arg;
    for (long i = 0; i < ITERATIONS; ++i) {
        clattn_sdpa_desc d;
        int causal = 100 + (int)i;
        failing_desc(&d, causal);
        clattn_status s = clattn_sdpa_host(g_ctx, &d, g_data, g_data, g_data,
                                           NULL, g_data, NULL);
        char want[96];
        snprintf(want, sizeof want, "causal has unknown value %d", causal);
        const char *got = clattn_context_last_error(g_ctx);
        if (s != CLATTN_ERROR_INVALID_ARGUMENT || strstr(got, want) == NULL) {
            mismatch(t, "A, iteration %ld: wanted '%s', read '%s'", want, got,
                     i);
            continue;
        }
        if (i % 16 == 0) {
            char copy[256];
            snprintf(copy, sizeof copy, "%s", got);
            long start = atomic_load(&g_b_calls);
            /* B is running: wait for a few of its calls (bounded, in case
               it finished). */
            for (int spin = 0;
                 spin < 100000 && atomic_load(&g_b_calls) < start + 4; ++spin)
                sched_yield();
            if (strcmp(got, copy) != 0)
                mismatch(t, "A, iteration %ld: held '%s', now '%s'", copy, got,
                         i);
        }
    }
    atomic_store(&g_a_done, 1);
    return NULL;
}

/* Thread B: a success (""), a NULL-argument failure, and an SDPA failure
   of another kind, in turn, until A is done (at least ITERATIONS). */
static void *thread_b(void *arg)
{
    tally *t = arg;
    for (long i = 0; i < ITERATIONS || !atomic_load(&g_a_done); ++i) {
        clattn_status s;
        const char *want;
        char mask_text[96];
        clattn_memory_stats stats;
        switch (i % 3) {
        case 0:
            s = clattn_memory_stats_get(g_ctx, &stats);
            want = "";
            break;
        case 1:
            s = clattn_memory_stats_get(g_ctx, NULL);
            want = "stats is NULL";
            break;
        default: {
            clattn_sdpa_desc d;
            failing_desc(&d, 0);
            d.mask_type = (clattn_mask_type)(50 + i % 1000);
            s = clattn_sdpa_host(g_ctx, &d, g_data, g_data, g_data, NULL,
                                 g_data, NULL);
            snprintf(mask_text, sizeof mask_text,
                     "mask_type has unknown value %d", (int)d.mask_type);
            want = mask_text;
        }
        }
        const char *got = clattn_context_last_error(g_ctx);
        int ok = want[0] == '\0' ? got[0] == '\0' : strstr(got, want) != NULL;
        if (!ok || (want[0] != '\0') != (s != CLATTN_SUCCESS))
            mismatch(t, "B, call %ld: wanted '%s', read '%s'", want, got, i);
        atomic_fetch_add(&g_b_calls, 1);
    }
    return NULL;
}

static void shared_context(void)
{
    tally ta = {0}, tb = {0};
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, thread_a, &ta) == 0 &&
              pthread_create(&b, NULL, thread_b, &tb) == 0,
          "threads start");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK(ta.mismatches == 0, "thread A read another call's text %ld times: %s",
          ta.mismatches, ta.first);
    CHECK(tb.mismatches == 0, "thread B read another call's text %ld times: %s",
          tb.mismatches, tb.first);
    /* The main thread made no call on the context: its text is "". */
    CHECK(strcmp(clattn_context_last_error(g_ctx), "") == 0,
          "the main thread sees '%s' without a call of its own",
          clattn_context_last_error(g_ctx));
}

static void *fail_once(void *arg)
{
    (void)arg;
    clattn_memory_stats_get(g_ctx, NULL);
    return NULL;
}

static void *read_text(void *arg)
{
    snprintf(arg, 512, "%s", clattn_context_last_error(g_ctx));
    return NULL;
}

/* A thread that erred and exited leaves its slot; the next thread (glibc
   usually hands it the same pthread_t) must not inherit the text. */
static void new_thread_starts_empty(void)
{
    for (int round = 0; round < 8; ++round) {
        pthread_t t;
        char text[512] = "unread";
        pthread_create(&t, NULL, fail_once, NULL);
        pthread_join(t, NULL);
        pthread_create(&t, NULL, read_text, text);
        pthread_join(t, NULL);
        CHECK(strcmp(text, "") == 0,
              "round %d: a new thread read '%s' before any call", round, text);
    }
}

typedef struct creation_read {
    clattn_context *ctx;
    char text[4096];
} creation_read;

static void *read_creation_error(void *arg)
{
    creation_read *r = arg;
    snprintf(r->text, sizeof r->text, "%s", clattn_context_last_error(r->ctx));
    return NULL;
}

/* The creation error of a failed context is the context's, not the
   creating thread's. */
static void creation_error_on_any_thread(void)
{
    clattn_context_options opts;
    clattn_context_options_init(&opts);
    opts.device = "no-such-device-xyz";
    creation_read r = {0};
    clattn_status s = clattn_context_create(&opts, &r.ctx);
    CHECK(s == CLATTN_ERROR_NO_DEVICE && r.ctx != NULL,
          "create 'no-such-device-xyz': got %s", clattn_status_string(s));
    if (!r.ctx)
        return;
    const char *here = clattn_context_last_error(r.ctx);
    pthread_t t;
    pthread_create(&t, NULL, read_creation_error, &r);
    pthread_join(t, NULL);
    CHECK(strstr(here, "no-such-device-xyz") != NULL,
          "creation error on the creating thread: '%s'", here);
    CHECK(strcmp(r.text, here) == 0,
          "another thread reads '%s', the creating thread '%s'", r.text, here);
    clattn_context_destroy(r.ctx);
}

int main(void)
{
    g_ctx = test_context();
    shared_context();
    new_thread_starts_empty();
    creation_error_on_any_thread();
    clattn_context_destroy(g_ctx);
    return test_finish("test_error_threads");
}
