/* The per-thread kernel sets of kernel_cache.h. A set is only ever used by
   the thread that owns it, so its slots need no lock; the lock guards the
   list of sets, which a thread walks once per context (its first call, or
   when its _Thread_local entries were taken by other contexts). */
#include "kernel_cache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct kernel_slot {
    cl_program program;
    char *name;
    cl_kernel kernel;
} kernel_slot;

struct kernel_set {
    pthread_t owner;
    kernel_slot *slots;
    size_t count, cap;
    kernel_set *next;
};

/* Ids are never reused, so a thread's entry for a destroyed context can
   only miss, even when a new context lands at the same address. 0 is no
   cache. */
static atomic_ulong next_id = 1;

/* A few entries, so a thread that alternates between contexts does not
   walk a list on every call. */
#define THREAD_ENTRIES 4
static _Thread_local struct {
    unsigned long id;
    kernel_set *set;
} thread_entries[THREAD_ENTRIES];
static _Thread_local unsigned thread_next;

int kernel_cache_init(kernel_cache *cache)
{
    memset(cache, 0, sizeof *cache);
    if (pthread_mutex_init(&cache->lock, NULL) != 0)
        return -1;
    cache->id = atomic_fetch_add(&next_id, 1);
    cache->ready = 1;
    return 0;
}

void kernel_cache_release(kernel_cache *cache)
{
    if (!cache->ready)
        return;
    for (kernel_set *set = cache->sets, *next; set; set = next) {
        next = set->next;
        for (size_t i = 0; i < set->count; ++i) {
            clReleaseKernel(set->slots[i].kernel);
            free(set->slots[i].name);
        }
        free(set->slots);
        free(set);
    }
    pthread_mutex_destroy(&cache->lock);
    memset(cache, 0, sizeof *cache);
}

static kernel_set *thread_set(kernel_cache *cache)
{
    for (unsigned i = 0; i < THREAD_ENTRIES; ++i)
        if (thread_entries[i].id == cache->id)
            return thread_entries[i].set;
    const pthread_t self = pthread_self();
    kernel_set *set;
    pthread_mutex_lock(&cache->lock);
    for (set = cache->sets; set; set = set->next)
        if (pthread_equal(set->owner, self))
            break;
    if (!set && (set = calloc(1, sizeof *set)) != NULL) {
        set->owner = self;
        set->next = cache->sets;
        cache->sets = set;
    }
    pthread_mutex_unlock(&cache->lock);
    if (set) {
        unsigned slot = thread_next++ % THREAD_ENTRIES;
        thread_entries[slot].id = cache->id;
        thread_entries[slot].set = set;
    }
    return set;
}

static cl_int add_slot(kernel_set *set, cl_program program, const char *name,
                       cl_kernel *out)
{
    if (set->count == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 8;
        kernel_slot *slots = realloc(set->slots, cap * sizeof *slots);
        if (!slots)
            return CL_OUT_OF_HOST_MEMORY;
        set->slots = slots;
        set->cap = cap;
    }
    char *copy = malloc(strlen(name) + 1);
    if (!copy)
        return CL_OUT_OF_HOST_MEMORY;
    strcpy(copy, name);
    cl_int err;
    cl_kernel kernel = clCreateKernel(program, name, &err);
    if (err != CL_SUCCESS) {
        free(copy);
        return err;
    }
    set->slots[set->count++] = (kernel_slot){program, copy, kernel};
    *out = kernel;
    return CL_SUCCESS;
}

cl_int kernel_cache_get(kernel_cache *cache, cl_program program,
                        const char *name, cl_kernel *out)
{
    *out = NULL;
    if (!cache->ready)
        return CL_INVALID_OPERATION;
    kernel_set *set = thread_set(cache);
    if (!set)
        return CL_OUT_OF_HOST_MEMORY;
    cl_kernel kernel = NULL;
    for (size_t i = 0; i < set->count && !kernel; ++i)
        if (set->slots[i].program == program &&
            strcmp(set->slots[i].name, name) == 0)
            kernel = set->slots[i].kernel;
    if (!kernel) {
        cl_int err = add_slot(set, program, name, &kernel);
        if (err != CL_SUCCESS)
            return err;
    }
    /* The caller's reference: it releases the kernel as it did a fresh
       one, and the set keeps its own until the context goes. */
    clRetainKernel(kernel);
    *out = kernel;
    return CL_SUCCESS;
}
