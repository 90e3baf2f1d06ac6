/* The error detail of a context, per thread: each thread that records an
   error on a usable context gets a slot of its own there, so threads that
   share a context never overwrite each other's text, and the pointer
   clattn_context_last_error() returns stays valid until that thread's next
   call on the context (or destroy).

   Slots are keyed by pthread_t and only ever added (freed on destroy): a
   thread's slot is written and read by that thread alone, so only the
   list's insertion needs the lock, and a lookup walks a list whose nodes
   never change once published. A thread that exits leaves its slot; the
   next thread given the same pthread_t takes it over (a serial number
   tells a new owner, which starts from ""), so the list is bounded by the
   threads alive at once, not by all that ever called. */
#include "context_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct error_slot {
    struct error_slot *next; /* immutable once published */
    pthread_t thread;
    uint64_t thread_serial; /* the owner (pthread_t values are reused) */
    char text[CLATTN_ERROR_TEXT_MAX];
} error_slot;

static atomic_uint_least64_t next_context_id = 1;
static atomic_uint_least64_t next_thread_serial = 1;

/* This thread's serial (never reused), and the context whose detail it
   could not keep for want of memory (0 = none). */
static _Thread_local uint64_t thread_serial;
static _Thread_local uint64_t lost_detail_of;

static const char LOST_DETAIL[] =
    "out of host memory: the detail of this error could not be kept";

static uint64_t my_serial(void)
{
    if (thread_serial == 0)
        thread_serial = atomic_fetch_add(&next_thread_serial, 1);
    return thread_serial;
}

void ctx_errors_init(clattn_context *ctx)
{
    ctx->error_id = atomic_fetch_add(&next_context_id, 1);
    atomic_init(&ctx->error_slots, NULL);
    ctx->last_error[0] = '\0';
}

void ctx_errors_release(clattn_context *ctx)
{
    error_slot *s = atomic_load(&ctx->error_slots);
    while (s) {
        error_slot *next = s->next;
        free(s);
        s = next;
    }
    atomic_store(&ctx->error_slots, NULL);
}

/* The calling thread's slot on ctx, or NULL when it has none. A slot left
   by an exited thread whose pthread_t this thread now has becomes this
   thread's, emptied. */
static error_slot *find_slot(const clattn_context *ctx)
{
    pthread_t self = pthread_self();
    error_slot *s = atomic_load_explicit(&((clattn_context *)ctx)->error_slots,
                                         memory_order_acquire);
    for (; s; s = s->next)
        if (pthread_equal(s->thread, self)) {
            if (s->thread_serial != my_serial()) {
                s->thread_serial = my_serial();
                s->text[0] = '\0';
            }
            return s;
        }
    return NULL;
}

static error_slot *find_or_add_slot(clattn_context *ctx)
{
    error_slot *s = find_slot(ctx);
    if (s)
        return s;
    s = malloc(sizeof *s);
    if (!s)
        return NULL;
    s->thread = pthread_self();
    s->thread_serial = my_serial();
    s->text[0] = '\0';
    pthread_mutex_lock(&ctx->error_lock);
    s->next = atomic_load_explicit(&ctx->error_slots, memory_order_relaxed);
    atomic_store_explicit(&ctx->error_slots, s, memory_order_release);
    pthread_mutex_unlock(&ctx->error_lock);
    return s;
}

clattn_status ctx_error(clattn_context *ctx, clattn_status status,
                        const char *fmt, ...)
{
    if (!ctx)
        return status;
    char *text = ctx->last_error;
    if (ctx->usable) {
        error_slot *s = find_or_add_slot(ctx);
        if (!s) {
            lost_detail_of = ctx->error_id;
            return status;
        }
        text = s->text;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, CLATTN_ERROR_TEXT_MAX, fmt, ap);
    va_end(ap);
    return status;
}

clattn_status ctx_cl_error(clattn_context *ctx, const char *call, cl_int code)
{
    clattn_status status = CLATTN_ERROR_OPENCL;
    if (code == CL_OUT_OF_HOST_MEMORY || code == CL_OUT_OF_RESOURCES ||
        code == CL_MEM_OBJECT_ALLOCATION_FAILURE)
        status = CLATTN_ERROR_OUT_OF_MEMORY;
    return ctx_error(ctx, status, "%s failed: %s (%d)", call,
                     cl_error_name(code), (int)code);
}

void ctx_clear_error(clattn_context *ctx)
{
    if (!ctx->usable) {
        ctx->last_error[0] = '\0';
        return;
    }
    if (lost_detail_of == ctx->error_id)
        lost_detail_of = 0;
    /* A thread without a slot has "" already: nothing is allocated until
       it has an error to keep. */
    error_slot *s = find_slot(ctx);
    if (s)
        s->text[0] = '\0';
}

const char *clattn_context_last_error(const clattn_context *ctx)
{
    if (!ctx)
        return "no context (NULL)";
    if (!ctx->usable)
        return ctx->last_error;
    const error_slot *s = find_slot(ctx);
    if (s)
        return s->text;
    return lost_detail_of == ctx->error_id ? LOST_DETAIL : "";
}
