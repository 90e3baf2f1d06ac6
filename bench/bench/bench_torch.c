#define _POSIX_C_SOURCE 200809L
#include "bench_torch.h"

#include "bench_spawn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a PyTorch user runs: SDPA on float32 CPU tensors, no grad; GQA with
   enable_gqa where this PyTorch has it (2.5+), else K/V repeated per
   head once, outside the timed call. A bottom-right causal mask is an
   explicit boolean mask (is_causal is top-left), and none for one query. */
static const char script[] =
    "import sys, time\n"
    "try:\n"
    "    import torch\n"
    "    import torch.nn.functional as F\n"
    "except Exception as e:\n"
    "    print('unavailable', (type(e).__name__ + ': ' + str(e)).replace("
    "'\\n', ' '))\n"
    "    sys.exit(0)\n"
    "print('torch', torch.__version__, torch.get_num_threads(), flush=True)\n"
    "target, min_reps, warmup = float(sys.argv[1]) / 1e3, int(sys.argv[2]), "
    "int(sys.argv[3])\n"
    "torch.manual_seed(0)\n"
    "for spec in sys.argv[4:]:\n"
    "    idx, b, hq, hkv, sq, skv, d, causal = (int(x) for x in "
    "spec.split(','))\n"
    "    try:\n"
    "        q = torch.rand(b, hq, sq, d) * 4 - 2\n"
    "        k = torch.rand(b, hkv, skv, d) * 4 - 2\n"
    "        v = torch.rand(b, hkv, skv, d) * 4 - 2\n"
    "        kw = {'is_causal': causal == 1}\n"
    "        if causal == 2 and sq > 1:\n"
    "            kw['attn_mask'] = torch.ones(sq, skv, dtype=torch.bool)"
    ".tril(skv - sq)\n"
    "        note = ''\n"
    "        if hkv != hq:\n"
    "            try:\n"
    "                with torch.no_grad():\n"
    "                    F.scaled_dot_product_attention(q, k, v, "
    "enable_gqa=True, **kw)\n"
    "                kw['enable_gqa'] = True\n"
    "            except TypeError:\n"
    "                k = k.repeat_interleave(hq // hkv, dim=1)\n"
    "                v = v.repeat_interleave(hq // hkv, dim=1)\n"
    "        times = []\n"
    "        with torch.no_grad():\n"
    "            for _ in range(warmup):\n"
    "                F.scaled_dot_product_attention(q, k, v, **kw)\n"
    "            while len(times) < min_reps or sum(times) < target:\n"
    "                t0 = time.perf_counter()\n"
    "                F.scaled_dot_product_attention(q, k, v, **kw)\n"
    "                times.append(time.perf_counter() - t0)\n"
    "                if len(times) >= 1000: break\n"
    "        times.sort()\n"
    "        n = len(times)\n"
    "        med = times[n // 2] if n % 2 else (times[n // 2 - 1] + "
    "times[n // 2]) / 2\n"
    "        print('case', idx, 'ok', times[0] * 1e3, med * 1e3, n, "
    "flush=True)\n"
    "    except Exception as e:\n"
    "        print('case', idx, 'failed', (type(e).__name__ + ': ' + str(e))"
    ".replace('\\n', ' '), flush=True)\n";

static char **make_argv(const bench_run *run, char *numbers)
{
    size_t n = run->ncases;
    char **argv = calloc(n + 8, sizeof *argv);
    if (!argv)
        return NULL;
    const bench_method *m = &run->opt->method;
    char *p = numbers;
    argv[0] = (char *)run->opt->python;
    argv[1] = "-c";
    argv[2] = (char *)script;
    argv[3] = p, p += sprintf(p, "%g", m->target_ms) + 1;
    argv[4] = p, p += sprintf(p, "%d", m->min_reps) + 1;
    argv[5] = p, p += sprintf(p, "%d", m->warmup) + 1;
    size_t arg = 6;
    for (size_t i = 0; i < n; ++i) {
        const bench_case *c = &run->cases[i];
        /* The peer is torch's SDPA: it has nothing to say about a whole
           layer's projections, so layer cases are not sent. */
        if (bench_op_is_layer(c->op))
            continue;
        argv[arg++] = p;
        p += sprintf(p, "%zu,%zu,%zu,%zu,%zu,%zu,%zu,%d", i, c->batch,
                     c->heads_q, c->heads_kv, c->seq_q, c->seq_kv, c->head_dim,
                     (int)c->causal) +
             1;
    }
    return argv;
}

/* One line of the script's output. */
static int parse_line(bench_run *run, char *line)
{
    bench_host *h = &run->host;
    line[strcspn(line, "\n")] = '\0';
    size_t idx;
    int used = 0;
    if (strncmp(line, "unavailable ", 12) == 0) {
        snprintf(h->torch_note, sizeof h->torch_note,
                 "no PyTorch in %.40s: %.180s", run->opt->python, line + 12);
    } else if (sscanf(line, "torch %63s %d", h->torch_version,
                      &h->torch_threads) == 2) {
        h->torch_status = BENCH_OK;
        h->torch_note[0] = '\0';
    } else if (sscanf(line, "case %zu %n", &idx, &used) == 1 && used &&
               idx < run->ncases) {
        bench_record *r = bench_run_add(run, BENCH_HOST_DEVICE, idx, "torch");
        if (!r)
            return -1;
        const char *rest = line + used;
        if (sscanf(rest, "ok %lf %lf %d", &r->t.min_ms, &r->t.median_ms,
                   &r->t.reps) == 3) {
            r->status = BENCH_OK;
        } else {
            r->status = BENCH_FAILED;
            snprintf(r->error, sizeof r->error, "%s",
                     strncmp(rest, "failed ", 7) ? rest : rest + 7);
        }
    }
    return 0;
}

/* Every case gets a torch record: unsupported when there is no PyTorch,
   failed when Python stopped before reaching it. */
static int fill_missing(bench_run *run)
{
    for (size_t i = 0; i < run->ncases; ++i) {
        int seen = 0;
        for (size_t r = 0; r < run->nrecords && !seen; ++r)
            seen = run->records[r].device == BENCH_HOST_DEVICE &&
                   run->records[r].case_index == i &&
                   strcmp(run->records[r].path, "torch") == 0;
        if (seen)
            continue;
        bench_record *r = bench_run_add(run, BENCH_HOST_DEVICE, i, "torch");
        if (!r)
            return -1;
        int ran = run->host.torch_status == BENCH_OK;
        r->status = ran ? BENCH_FAILED : BENCH_UNSUPPORTED;
        snprintf(r->error, sizeof r->error, "%s",
                 ran ? "Python stopped before this case"
                     : run->host.torch_note);
    }
    return 0;
}

int bench_torch_run(bench_run *run)
{
    bench_host *h = &run->host;
    h->torch_requested = 1;
    h->torch_status = BENCH_UNSUPPORTED;
    snprintf(h->torch_note, sizeof h->torch_note, "%s gave no answer",
             run->opt->python);
    char *numbers = malloc(64 + run->ncases * 160);
    char **argv = numbers ? make_argv(run, numbers) : NULL;
    if (!argv) {
        free(numbers);
        return -1;
    }
    /* PyTorch's warnings on stderr are not ours to print. */
    pid_t pid;
    FILE *out = bench_spawn(argv, 0, 1, &pid);
    int rc = 0;
    const char *why = "cannot run '%s' (not installed? --python EXE)";
    if (!out) {
        snprintf(h->torch_note, sizeof h->torch_note, why, run->opt->python);
    } else {
        char line[1024];
        while (rc == 0 && fgets(line, sizeof line, out))
            rc = parse_line(run, line);
        /* The exec itself may fail after the spawn: exit status 127. */
        if (bench_spawn_wait(out, pid) == 127 && h->torch_status != BENCH_OK)
            snprintf(h->torch_note, sizeof h->torch_note, why,
                     run->opt->python);
    }
    free(argv);
    free(numbers);
    return rc ? rc : fill_missing(run);
}
