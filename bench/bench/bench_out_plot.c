/* GFLOP/s against sequence length, drawn by gnuplot (Debian's
   gnuplot-nox): one panel per family of cases that differ only in length,
   one line per device and path, the host's peers included. */
#include "bench_figures.h"
#include "bench_output.h"
#include "bench_spawn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The case's label without its length: the panel it belongs to. */
static void family(const bench_case *c, char *dst, size_t cap)
{
    char heads[48], q[32] = "";
    if (c->heads_kv == c->heads_q)
        snprintf(heads, sizeof heads, "h%zu", c->heads_q);
    else
        snprintf(heads, sizeof heads, "h%zu/%zu", c->heads_q, c->heads_kv);
    if (c->seq_q != c->seq_kv)
        snprintf(q, sizeof q, " q%zu", c->seq_q);
    const char *mask = c->op != BENCH_OP_DECODE && c->causal ? "-causal" : "";
    snprintf(dst, cap, "%s%s b%zu %s%s d%zu", bench_op_name(c->op), mask,
             c->batch, heads, q, c->head_dim);
}

static int plotted(const bench_record *r)
{
    return r->status == BENCH_OK && strcmp(r->path, "reference") != 0;
}

static int same_series(const bench_record *a, const bench_record *b)
{
    return a->device == b->device && strcmp(a->path, b->path) == 0;
}

typedef struct series {
    size_t panel;
    const bench_record *first; /* its device and path */
} series;

typedef struct point {
    double x, y;
} point;

static int cmp_point(const void *a, const void *b)
{
    double x = ((const point *)a)->x, y = ((const point *)b)->x;
    return (x > y) - (x < y);
}

/* The panels (distinct families, in case order) and their series. */
typedef struct layout {
    char (*panels)[96];
    size_t npanels;
    series *series;
    size_t nseries;
    size_t *case_panel; /* per case */
} layout;

static int make_layout(const bench_run *run, layout *l)
{
    l->panels = calloc(run->ncases + 1, sizeof *l->panels);
    l->case_panel = calloc(run->ncases + 1, sizeof *l->case_panel);
    l->series = calloc(run->nrecords + 1, sizeof *l->series);
    if (!l->panels || !l->case_panel || !l->series)
        return -1;
    for (size_t ci = 0; ci < run->ncases; ++ci) {
        char name[96];
        family(&run->cases[ci], name, sizeof name);
        size_t p = 0;
        while (p < l->npanels && strcmp(l->panels[p], name))
            ++p;
        if (p == l->npanels)
            snprintf(l->panels[l->npanels++], sizeof *l->panels, "%s", name);
        l->case_panel[ci] = p;
    }
    /* Devices first, then the host's peers, in every legend. */
    for (size_t k = 0; k < 2 * run->nrecords; ++k) {
        const bench_record *r = &run->records[k % run->nrecords];
        size_t p = l->case_panel[r->case_index], s = 0;
        if (!plotted(r) ||
            (r->device == BENCH_HOST_DEVICE) != (k >= run->nrecords))
            continue;
        while (s < l->nseries &&
               !(l->series[s].panel == p && same_series(l->series[s].first, r)))
            ++s;
        if (s == l->nseries)
            l->series[l->nseries++] = (series){p, r};
    }
    return 0;
}

static void free_layout(layout *l)
{
    free(l->panels);
    free(l->case_panel);
    free(l->series);
}

/* One datablock per series: its points sorted by length. */
static void write_data(FILE *g, const bench_run *run, const layout *l,
                       point *pts)
{
    for (size_t s = 0; s < l->nseries; ++s) {
        size_t n = 0;
        for (size_t i = 0; i < run->nrecords; ++i) {
            const bench_record *r = &run->records[i];
            if (!plotted(r) || !same_series(r, l->series[s].first) ||
                l->case_panel[r->case_index] != l->series[s].panel)
                continue;
            bench_figures f;
            bench_figures_compute(run, r, &f);
            pts[n++] =
                (point){(double)run->cases[r->case_index].seq_kv, f.gflops};
        }
        qsort(pts, n, sizeof *pts, cmp_point);
        fprintf(g, "$s%zu << EOD\n", s);
        for (size_t i = 0; i < n; ++i)
            fprintf(g, "%.0f %.6g\n", pts[i].x, pts[i].y);
        fprintf(g, "EOD\n");
    }
}

/* gnuplot cannot autoscale a range of one length: widen it by hand. */
static void set_xrange(FILE *g, const bench_run *run, const layout *l, size_t p)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t ci = 0; ci < run->ncases; ++ci)
        if (l->case_panel[ci] == p) {
            double x = (double)run->cases[ci].seq_kv;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
    if (lo < hi)
        fputs("set autoscale x\n", g);
    else
        fprintf(g, "set xrange [%g:%g]\n", lo / 2.0, lo * 2.0);
}

static void write_panels(FILE *g, const bench_run *run, const layout *l)
{
    for (size_t p = 0; p < l->npanels; ++p) {
        set_xrange(g, run, l, p);
        fprintf(g, "set title '%s'\nplot ", l->panels[p]);
        int any = 0;
        for (size_t s = 0; s < l->nseries; ++s) {
            if (l->series[s].panel != p)
                continue;
            const bench_record *r = l->series[s].first;
            fprintf(g, "%s$s%zu using 1:2 with linespoints title '%s %s'",
                    any ? ", " : "", s, bench_record_device_id(run, r),
                    r->path);
            any = 1;
        }
        /* A panel with nothing measured still takes its place. */
        fprintf(g, "%s\n", any ? "" : "NaN notitle");
    }
}

static void write_script(FILE *g, const char *path, const bench_run *run,
                         const layout *l, point *pts)
{
    size_t cols = (size_t)ceil(sqrt((double)l->npanels));
    size_t rows = (l->npanels + cols - 1) / cols;
    write_data(g, run, l, pts);
    fprintf(g, "set terminal pngcairo size %zu,%zu noenhanced font ',9'\n",
            720 * cols, 420 * rows + 40);
    fputs("set output '", g);
    for (const char *c = path; *c; ++c) /* '' is a quote inside '...' */
        if (*c == '\'')
            fputs("''", g);
        else
            fputc(*c, g);
    fputs("'\n", g);
    fprintf(g,
            "set multiplot layout %zu,%zu title 'clattn-bench: GFLOP/s "
            "against sequence length (keys)'\n",
            rows, cols);
    fputs("set logscale x 2\nset grid\nset key outside right top font ',8'\n"
          "set xlabel 'sequence length (keys)'\nset ylabel 'GFLOP/s'\n"
          "set yrange [0:*]\n",
          g);
    write_panels(g, run, l);
    fputs("unset multiplot\nset output\n", g);
}

int bench_write_plot(const char *path, const bench_run *run, char *err,
                     size_t cap)
{
    layout l = {0};
    point *pts = calloc(run->nrecords + 1, sizeof *pts);
    if (!pts || make_layout(run, &l)) {
        free(pts);
        free_layout(&l);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    char *argv[] = {"gnuplot", NULL};
    pid_t pid;
    FILE *g = bench_spawn(argv, 1, 0, &pid);
    int rc = -1;
    if (!g) {
        snprintf(err, cap,
                 "--plot needs gnuplot (Debian: apt-get install "
                 "gnuplot-nox)");
    } else {
        write_script(g, path, run, &l, pts);
        int status = bench_spawn_wait(g, pid);
        if (status == 0)
            rc = 0;
        else
            snprintf(err, cap, "gnuplot failed (status %d) writing %s", status,
                     path);
    }
    free(pts);
    free_layout(&l);
    return rc;
}
