/* timm TalkingHeadAttn.forward in double:
     qkv = x Wqkv^T + bqkv -> [B][N][3][H][D]; q *= D^-0.5
     L[h]  = q[h] k[h]^T
     L'[g] = sum_h Wl[g][h] L[h] + bl[g]          (proj_l over the head axis)
     P     = softmax(L', over keys)
     P'[g] = sum_h Ww[g][h] P[h] + bw[g]           (proj_w)
     P'    = dropout(P')
     out   = (P' V) in [B][N][C], then x Wproj^T + bproj. */
#include "reference_talking_heads.h"
#include "philox_ref.h"

#include <math.h>
#include <stdlib.h>

static double *zalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p)
        abort(); /* a test helper: out of memory ends the test */
    return p;
}

/* y[r][o] = sum_i x[r][i] W[o][i] + bias[o] (nn.Linear). */
static void linear(size_t rows, size_t in, size_t outf, const double *x,
                   const float *W, const float *bias, double *y)
{
    for (size_t r = 0; r < rows; ++r)
        for (size_t o = 0; o < outf; ++o) {
            double s = bias ? (double)bias[o] : 0.0;
            for (size_t i = 0; i < in; ++i)
                s += x[r * in + i] * (double)W[o * in + i];
            y[r * outf + o] = s;
        }
}

/* dst[g][p] = sum_h W[g][h] src[h][p] + bias[g], p < plane. */
static void mix_heads(size_t H, size_t plane, const float *W, const float *bias,
                      const double *src, double *dst)
{
    for (size_t g = 0; g < H; ++g)
        for (size_t p = 0; p < plane; ++p) {
            double s = (double)bias[g];
            for (size_t h = 0; h < H; ++h)
                s += (double)W[g * H + h] * src[h * plane + p];
            dst[g * plane + p] = s;
        }
}

void ref_talking_heads(const clattn_talking_heads_desc *desc,
                       const clattn_talking_heads_weights *w, size_t batch,
                       size_t seq, const float *x, uint64_t dropout_offset,
                       double *out, double *attn)
{
    const size_t C = desc->dim, H = desc->num_heads, D = C / H, N = seq;
    const double scale = 1.0 / sqrt((double)D), p = desc->dropout_p;
    const int dropout = lrint(p * 16777216.0) != 0;
    double *xd = zalloc(N * C), *qkv = zalloc(N * 3 * C);
    double *l = zalloc(H * N * N), *lm = zalloc(H * N * N);
    double *pm = zalloc(H * N * N), *ctx = zalloc(N * C);
    for (size_t b = 0; b < batch; ++b) {
        for (size_t e = 0; e < N * C; ++e)
            xd[e] = x[b * N * C + e];
        linear(N, C, 3 * C, xd, w->qkv_weight, w->qkv_bias, qkv);
        /* q at qkv[i][0][h][d], k at [1], v at [2] */
        for (size_t h = 0; h < H; ++h)
            for (size_t i = 0; i < N; ++i)
                for (size_t j = 0; j < N; ++j) {
                    double s = 0.0;
                    for (size_t d = 0; d < D; ++d)
                        s += qkv[i * 3 * C + h * D + d] * scale *
                             qkv[j * 3 * C + C + h * D + d];
                    l[(h * N + i) * N + j] = s;
                }
        mix_heads(H, N * N, w->proj_l_weight, w->proj_l_bias, l, lm);
        for (size_t r = 0; r < H * N; ++r) {
            double *row = lm + r * N, m = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < N; ++j)
                m = fmax(m, row[j]);
            for (size_t j = 0; j < N; ++j)
                sum += (row[j] = exp(row[j] - m));
            for (size_t j = 0; j < N; ++j)
                row[j] /= sum;
        }
        mix_heads(H, N * N, w->proj_w_weight, w->proj_w_bias, lm, pm);
        if (dropout)
            for (size_t e = 0; e < H * N * N; ++e) {
                uint64_t idx = (uint64_t)b * H * N * N + e;
                pm[e] =
                    dropout_keep_ref(desc->dropout_seed, dropout_offset, idx, p)
                        ? pm[e] / (1.0 - p)
                        : 0.0;
            }
        if (attn)
            for (size_t e = 0; e < H * N * N; ++e)
                attn[b * H * N * N + e] = pm[e];
        for (size_t i = 0; i < N; ++i)
            for (size_t g = 0; g < H; ++g)
                for (size_t d = 0; d < D; ++d) {
                    double s = 0.0;
                    for (size_t j = 0; j < N; ++j)
                        s += pm[(g * N + i) * N + j] *
                             qkv[j * 3 * C + 2 * C + g * D + d];
                    ctx[i * C + g * D + d] = s;
                }
        linear(N, C, C, ctx, w->proj_weight, w->proj_bias, out + b * N * C);
    }
    free(xd);
    free(qkv);
    free(l);
    free(lm);
    free(pm);
    free(ctx);
}
