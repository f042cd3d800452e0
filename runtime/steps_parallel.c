/* The steps that split their work across the environment's thread pool: matmul, linear,
 * conv2d, attention and the 2-D pools. Each runs the single-threaded kernel of runtime/kernels/
 * on views (stack kl_tensor headers whose data points into the operands' buffers; never
 * retained or released), so one kernel stays the single source of truth. The splits are
 * chosen so that every output element is computed by the same code in the same order as in a
 * single call, making the results bit-identical whatever the pool's size:
 *   matmul  rows of each output matrix (the GEMM sums each element in ascending k whatever its
 *           M; the f64 and widened loops handle each row on its own);
 *   linear  with >= 16 rows, chunks of >= 16 rows (the kernel's GEMM path); with fewer, single
 *           rows times blocks of output features (the kernel's dot-product path);
 *   conv2d  (image, group, block of output channels): each is a groups = 1 convolution whose
 *           GEMM rows are a subset of the full call's; a conv the direct kernel takes
 *           (depthwise, narrow groups: conv_depthwise.c) by (image, output channel), since that
 *           kernel computes each output plane on its own;
 *   attention  batch matrices (the kernel handles one query row at a time, so a batch matrix
 *           on its own is computed exactly as within the whole);
 *   pools   blocks of (image, channel) planes, each pooled on its own by every path.
 * Operands that do not fit these shapes go to the kernel whole, which reports the error. */
#include <string.h>

#include "steps.h"
#include "kernels/kernels_internal.h"

#define STEP(kernel)                                                                        \
  kl_status kl_step_##kernel(const kl_step_env *env, const void *params,                    \
                             kl_tensor *const *in, int n_in, kl_tensor *const *out, int n_out)

/* Below this many multiply-adds a split costs more than it saves. */
enum { MIN_PARALLEL_WORK = 1 << 14, CHUNK_WORK = 1 << 13 };

static kl_status check_counts(const char *kernel, kl_tensor *const *in, int n_in, int min_in,
                              int max_in, kl_tensor *const *out, int n_out) {
  if (n_in < min_in || n_in > max_in || !in || n_out != 1 || !out || !out[0])
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s step: %d inputs and %d outputs, expected %d to %d and 1", kernel,
                            n_in, n_out, min_in, max_in);
  for (int i = 0; i < min_in; i++)
    if (!in[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: input %d is missing", kernel, i);
  return NULL;
}

static int pool_threads(const kl_step_env *env) {
  return kl_threadpool_size(env ? env->pool : NULL);
}

/* A dense view of rank dims of shape over parent's buffer, starting elem elements in. */
static void view_of(kl_tensor *v, const kl_tensor *parent, int rank, const int64_t *shape,
                    int64_t elem) {
  memset(v, 0, sizeof *v);
  v->dtype = parent->dtype;
  v->rank = rank;
  v->numel = 1;
  for (int d = 0; d < rank; d++) {
    v->shape[d] = shape[d];
    v->numel *= shape[d];
  }
  size_t es = kl_dtype_size(parent->dtype);
  v->nbytes = (size_t)v->numel * es;
  v->data = (char *)parent->data + (size_t)elem * es;
  v->refcount = 1;
  v->owns_data = false;
}

/* The first error of any chunk (the others are dropped). */
static void keep_first(kl_status *slot, kl_status s) {
  if (!s)
    return;
  kl_status expected = NULL;
  if (!__atomic_compare_exchange_n(slot, &expected, s, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    kl_status_destroy(s);
}

static int64_t clamp_chunk(int64_t per_task_work) {
  if (per_task_work < 1)
    per_task_work = 1;
  int64_t c = CHUNK_WORK / per_task_work;
  return c < 1 ? 1 : c;
}

/* ---- matmul ----------------------------------------------------------------------------- */

typedef struct matmul_job {
  const kl_tensor *a, *b;
  kl_tensor *y;
  int64_t M, K, N;
  int batch_rank;
  int64_t batch_shape[KL_MAX_RANK], sa[KL_MAX_RANK], sb[KL_MAX_RANK];
  kl_status err;
} matmul_job;

/* Rows [begin, end) of the stacked output matrices (n_batch * M rows). */
static void matmul_rows(void *ctx, int64_t begin, int64_t end) {
  matmul_job *j = ctx;
  for (int64_t r = begin; r < end;) {
    int64_t bi = r / j->M, m0 = r % j->M;
    int64_t m1 = j->M < m0 + (end - r) ? j->M : m0 + (end - r);
    int64_t oa = 0, ob = 0, rest = bi;
    for (int d = j->batch_rank - 1; d >= 0; d--) {
      int64_t i = rest % j->batch_shape[d];
      rest /= j->batch_shape[d];
      oa += i * j->sa[d];
      ob += i * j->sb[d];
    }
    kl_tensor av, bv, yv;
    int64_t ash[2] = {m1 - m0, j->K};
    view_of(&av, j->a, 2, ash, (oa * j->M + m0) * j->K);
    if (j->b->rank == 1) { /* y (..., M) */
      view_of(&bv, j->b, 1, &j->K, 0);
      int64_t ysh[1] = {m1 - m0};
      view_of(&yv, j->y, 1, ysh, bi * j->M + m0);
    } else {
      int64_t bsh[2] = {j->K, j->N}, ysh[2] = {m1 - m0, j->N};
      view_of(&bv, j->b, 2, bsh, ob * j->K * j->N);
      view_of(&yv, j->y, 2, ysh, (bi * j->M + m0) * j->N);
    }
    keep_first(&j->err, kl_rt_matmul(&av, &bv, &yv));
    r += m1 - m0;
  }
}

/* Fills j from a (..., M, K) @ b (..., K, N) or b (K,) -> y; false when the shapes do not
 * fit (the kernel then reports why). */
static bool matmul_plan(const kl_tensor *a, const kl_tensor *b, const kl_tensor *y,
                        matmul_job *j) {
  if (a->rank < 2 || b->rank < 1 || a->dtype != b->dtype || a->dtype != y->dtype)
    return false;
  j->M = a->shape[a->rank - 2];
  j->K = a->shape[a->rank - 1];
  j->N = b->rank == 1 ? 1 : b->shape[b->rank - 1];
  if ((b->rank == 1 ? b->shape[0] : b->shape[b->rank - 2]) != j->K)
    return false;
  int a_batch = a->rank - 2, b_batch = b->rank > 2 ? b->rank - 2 : 0;
  j->batch_rank = a_batch > b_batch ? a_batch : b_batch;
  int64_t want[KL_MAX_RANK];
  int want_rank = 0;
  for (int d = 0; d < j->batch_rank; d++) {
    int da = d - (j->batch_rank - a_batch), db = d - (j->batch_rank - b_batch);
    int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
    if (na != nb && na != 1 && nb != 1)
      return false;
    j->batch_shape[d] = na == 1 ? nb : na;
    want[want_rank++] = j->batch_shape[d];
  }
  want[want_rank++] = j->M;
  if (b->rank > 1)
    want[want_rank++] = j->N;
  if (want_rank != y->rank)
    return false;
  for (int d = 0; d < want_rank; d++)
    if (want[d] != y->shape[d])
      return false;
  int64_t ia = 1, ib = 1;
  for (int d = j->batch_rank - 1; d >= 0; d--) {
    int da = d - (j->batch_rank - a_batch), db = d - (j->batch_rank - b_batch);
    int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
    j->sa[d] = na == 1 ? 0 : ia;
    j->sb[d] = nb == 1 ? 0 : ib;
    ia *= na;
    ib *= nb;
  }
  return true;
}

STEP(matmul) {
  (void)params;
  KL_RETURN_IF_ERROR(check_counts("matmul", in, n_in, 2, 2, out, n_out));
  const kl_tensor *a = in[0], *b = in[1];
  kl_tensor *y = out[0];
  matmul_job j;
  memset(&j, 0, sizeof j);
  if (pool_threads(env) <= 1 || y->numel == 0 || !matmul_plan(a, b, y, &j))
    return kl_rt_matmul(a, b, y);
  int64_t rows = y->numel / j.N, row_work = j.K * j.N;
  if (rows < 2 || rows * row_work < MIN_PARALLEL_WORK)
    return kl_rt_matmul(a, b, y);
  j.a = a, j.b = b, j.y = y;
  kl_parallel_for(env->pool, rows, clamp_chunk(row_work), matmul_rows, &j);
  return j.err;
}

/* ---- linear ----------------------------------------------------------------------------- */

/* The kernel's switch from dot products to its GEMM path (runtime/kernels/matmul.c): chunks of
 * rows stay on one side of it. */
enum { LINEAR_GEMM_ROWS = 16 };

typedef struct linear_job {
  const kl_tensor *x, *w, *bias;
  kl_tensor *y;
  int64_t M, in, out;
  int64_t block, n_blocks; /* output features per task when splitting them */
  kl_status err;
} linear_job;

/* Rows [begin, end), each chunk of at least LINEAR_GEMM_ROWS rows. */
static void linear_rows(void *ctx, int64_t begin, int64_t end) {
  linear_job *j = ctx;
  kl_tensor xv, yv;
  int64_t xsh[2] = {end - begin, j->in}, ysh[2] = {end - begin, j->out};
  view_of(&xv, j->x, 2, xsh, begin * j->in);
  view_of(&yv, j->y, 2, ysh, begin * j->out);
  keep_first(&j->err, kl_rt_linear(&xv, j->w, j->bias, &yv));
}

/* Tasks (row, block of output features) for fewer than LINEAR_GEMM_ROWS rows. */
static void linear_blocks(void *ctx, int64_t begin, int64_t end) {
  linear_job *j = ctx;
  for (int64_t t = begin; t < end; t++) {
    int64_t m = t / j->n_blocks, o0 = (t % j->n_blocks) * j->block;
    int64_t n = j->out - o0 < j->block ? j->out - o0 : j->block;
    kl_tensor xv, wv, bv, yv;
    int64_t xsh[2] = {1, j->in}, wsh[2] = {n, j->in}, ysh[2] = {1, n};
    view_of(&xv, j->x, 2, xsh, m * j->in);
    view_of(&wv, j->w, 2, wsh, o0 * j->in);
    if (j->bias)
      view_of(&bv, j->bias, 1, &n, o0);
    view_of(&yv, j->y, 2, ysh, m * j->out + o0);
    keep_first(&j->err, kl_rt_linear(&xv, &wv, j->bias ? &bv : NULL, &yv));
  }
}

STEP(linear) {
  (void)params;
  KL_RETURN_IF_ERROR(check_counts("linear", in, n_in, 2, 3, out, n_out));
  const kl_tensor *x = in[0], *w = in[1], *bias = n_in > 2 ? in[2] : NULL;
  kl_tensor *y = out[0];
  int threads = pool_threads(env);
  if (threads <= 1 || x->rank < 1 || w->rank != 2 || x->numel == 0 || y->numel == 0 ||
      x->dtype != w->dtype || x->dtype != y->dtype || (bias && bias->dtype != x->dtype))
    return kl_rt_linear(x, w, bias, y);
  linear_job j = {.x = x, .w = w, .bias = bias, .y = y};
  j.in = x->shape[x->rank - 1];
  j.out = w->shape[0];
  bool fits = w->shape[1] == j.in && y->rank == x->rank && y->shape[y->rank - 1] == j.out &&
              (!bias || (bias->rank == 1 && bias->shape[0] == j.out));
  for (int d = 0; fits && d < x->rank - 1; d++)
    fits = y->shape[d] == x->shape[d];
  if (!fits || j.in == 0)
    return kl_rt_linear(x, w, bias, y);
  j.M = x->numel / j.in;
  int64_t row_work = j.in * j.out;
  if (j.M * row_work < MIN_PARALLEL_WORK)
    return kl_rt_linear(x, w, bias, y);
  if (j.M >= LINEAR_GEMM_ROWS) {
    if (j.M < 2 * LINEAR_GEMM_ROWS)
      return kl_rt_linear(x, w, bias, y);
    int64_t chunk = clamp_chunk(row_work);
    kl_parallel_for(env->pool, j.M, chunk > LINEAR_GEMM_ROWS ? chunk : LINEAR_GEMM_ROWS,
                    linear_rows, &j);
  } else {
    /* enough blocks for every thread twice over, each of at least 16 features */
    int64_t want = (2 * (int64_t)threads + j.M - 1) / j.M;
    j.block = (j.out + want - 1) / want;
    if (j.block < 16)
      j.block = 16;
    j.n_blocks = (j.out + j.block - 1) / j.block;
    kl_parallel_for(env->pool, j.M * j.n_blocks, 1, linear_blocks, &j);
  }
  return j.err;
}

/* ---- conv2d ----------------------------------------------------------------------------- */

typedef struct conv_job {
  const kl_tensor *x, *w, *bias;
  kl_tensor *y;
  kl_rt_conv2d_params p; /* groups = 1: each task is one group */
  int64_t Cin, H, W, Cout, Kh, Kw, Ho, Wo, groups, Cg, Cog;
  int64_t block, n_blocks; /* output channels of a group per task */
  kl_status err;
} conv_job;

static void conv_tasks(void *ctx, int64_t begin, int64_t end) {
  conv_job *j = ctx;
  for (int64_t t = begin; t < end; t++) {
    int64_t blk = t % j->n_blocks, g = (t / j->n_blocks) % j->groups,
            n = t / (j->n_blocks * j->groups);
    int64_t c0 = blk * j->block;
    int64_t nc = j->Cog - c0 < j->block ? j->Cog - c0 : j->block;
    int64_t co = g * j->Cog + c0; /* first output channel */
    kl_tensor xv, wv, bv, yv;
    int64_t xsh[4] = {1, j->Cg, j->H, j->W}, wsh[4] = {nc, j->Cg, j->Kh, j->Kw},
            ysh[4] = {1, nc, j->Ho, j->Wo};
    view_of(&xv, j->x, 4, xsh, (n * j->Cin + g * j->Cg) * j->H * j->W);
    view_of(&wv, j->w, 4, wsh, co * j->Cg * j->Kh * j->Kw);
    if (j->bias)
      view_of(&bv, j->bias, 1, &nc, co);
    view_of(&yv, j->y, 4, ysh, (n * j->Cout + co) * j->Ho * j->Wo);
    keep_first(&j->err, kl_rt_conv2d(&xv, &wv, j->bias ? &bv : NULL, &j->p, &yv));
  }
}

/* The direct convolution (depthwise, narrow groups) computes each output plane on its own, so
 * any split of the planes gives the same bits: tasks are (image, output channel), and a chunk's
 * run of channels goes to the kernel as whole groups at once plus the partial groups at its
 * ends. */
typedef struct conv_direct_job {
  const kl_tensor *x, *w, *bias;
  kl_tensor *y;
  kl_rt_conv2d_params p;
  int64_t Cin, H, W, Cout, Kh, Kw, Ho, Wo, Cg, Cog;
  kl_status err;
} conv_direct_job;

/* Output channels [c0, c1) of image n, within whole groups or within one group. */
static void conv_direct_run(conv_direct_job *j, int64_t n, int64_t c0, int64_t c1) {
  int64_t g0 = c0 / j->Cog, ng = (c1 - c0) / j->Cog, nc = c1 - c0;
  bool whole = c0 % j->Cog == 0 && c1 % j->Cog == 0;
  kl_rt_conv2d_params q = j->p;
  q.groups = whole ? ng : 1;
  int64_t cin = whole ? ng * j->Cg : j->Cg;
  kl_tensor xv, wv, bv, yv;
  int64_t xsh[4] = {1, cin, j->H, j->W}, wsh[4] = {nc, j->Cg, j->Kh, j->Kw},
          ysh[4] = {1, nc, j->Ho, j->Wo};
  view_of(&xv, j->x, 4, xsh, (n * j->Cin + g0 * j->Cg) * j->H * j->W);
  view_of(&wv, j->w, 4, wsh, c0 * j->Cg * j->Kh * j->Kw);
  if (j->bias)
    view_of(&bv, j->bias, 1, &nc, c0);
  view_of(&yv, j->y, 4, ysh, (n * j->Cout + c0) * j->Ho * j->Wo);
  keep_first(&j->err, kl_rt_conv2d_direct_f32(&xv, &wv, j->bias ? &bv : NULL, &q, &yv));
}

static void conv_direct_tasks(void *ctx, int64_t begin, int64_t end) {
  conv_direct_job *j = ctx;
  for (int64_t t = begin; t < end;) {
    int64_t n = t / j->Cout, c0 = t % j->Cout;
    int64_t c1 = j->Cout < c0 + (end - t) ? j->Cout : c0 + (end - t);
    for (int64_t c = c0, e; c < c1; c = e) {
      if (c % j->Cog == 0 && c1 - c >= j->Cog)
        e = c + (c1 - c) / j->Cog * j->Cog; /* whole groups */
      else
        e = (c / j->Cog + 1) * j->Cog < c1 ? (c / j->Cog + 1) * j->Cog : c1; /* part of one */
      conv_direct_run(j, n, c, e);
    }
    t += c1 - c0;
  }
}

static kl_status conv_direct(const kl_step_env *env, const kl_tensor *x, const kl_tensor *w,
                             const kl_tensor *bias, const kl_rt_conv2d_params *p, kl_tensor *y) {
  conv_direct_job j = {.x = x, .w = w, .bias = bias, .y = y, .p = *p};
  j.Cin = x->shape[1], j.H = x->shape[2], j.W = x->shape[3];
  j.Cout = w->shape[0], j.Kh = w->shape[2], j.Kw = w->shape[3];
  j.Ho = y->shape[2], j.Wo = y->shape[3];
  j.Cg = w->shape[1], j.Cog = j.Cout / p->groups;
  int64_t planes = x->shape[0] * j.Cout, plane_work = j.Ho * j.Wo * j.Cg * j.Kh * j.Kw;
  if (planes < 2 || planes * plane_work < MIN_PARALLEL_WORK)
    return kl_rt_conv2d(x, w, bias, p, y);
  kl_parallel_for(env->pool, planes, clamp_chunk(plane_work), conv_direct_tasks, &j);
  return j.err;
}

STEP(conv2d) {
  kl_step_conv2d_params p;
  if (!params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "conv2d step: no parameter block");
  memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("conv2d", in, n_in, 2, 3, out, n_out));
  const kl_tensor *x = in[0], *w = in[1], *bias = n_in > 2 ? in[2] : NULL;
  kl_tensor *y = out[0];
  int threads = pool_threads(env);
  if (threads <= 1 || x->rank != 4 || y->rank != 4 || w->rank != 4 || y->numel == 0 ||
      x->shape[0] != y->shape[0])
    return kl_rt_conv2d(x, w, bias, &p.conv, y);
  /* The kernel checks everything else on a batch of zero images, at no cost. */
  kl_tensor x0, y0;
  int64_t x0sh[4] = {0, x->shape[1], x->shape[2], x->shape[3]},
          y0sh[4] = {0, y->shape[1], y->shape[2], y->shape[3]};
  view_of(&x0, x, 4, x0sh, 0);
  view_of(&y0, y, 4, y0sh, 0);
  KL_RETURN_IF_ERROR(kl_rt_conv2d(&x0, w, bias, &p.conv, &y0));

  if (kl_rt_conv2d_direct_fits(x, w, p.conv.groups))
    return conv_direct(env, x, w, bias, &p.conv, y);

  conv_job j = {.x = x, .w = w, .bias = bias, .y = y, .p = p.conv};
  j.p.groups = 1;
  j.Cin = x->shape[1], j.H = x->shape[2], j.W = x->shape[3];
  j.Cout = w->shape[0], j.Kh = w->shape[2], j.Kw = w->shape[3];
  j.Ho = y->shape[2], j.Wo = y->shape[3];
  j.groups = p.conv.groups;
  j.Cg = j.Cin / j.groups, j.Cog = j.Cout / j.groups;
  int64_t N = x->shape[0];
  int64_t chan_work = j.Ho * j.Wo * j.Cg * j.Kh * j.Kw; /* multiply-adds per output channel */
  if (N * j.Cout * chan_work < MIN_PARALLEL_WORK)
    return kl_rt_conv2d(x, w, bias, &p.conv, y);
  /* blocks of output channels only when images x groups cannot occupy every thread: each block
   * unrolls its image again */
  int64_t units = N * j.groups, want = threads;
  j.n_blocks = units >= want ? 1 : (want + units - 1) / units;
  if (j.n_blocks > j.Cog)
    j.n_blocks = j.Cog;
  j.block = (j.Cog + j.n_blocks - 1) / j.n_blocks;
  j.n_blocks = (j.Cog + j.block - 1) / j.block;
  kl_parallel_for(env->pool, units * j.n_blocks, 1, conv_tasks, &j);
  return j.err;
}

/* ---- attention -------------------------------------------------------------------------- */

typedef struct attention_job {
  const kl_tensor *q, *k, *v, *mask;
  kl_tensor *y;
  double scale;
  bool is_causal;
  int nb; /* batch dims of y */
  int64_t L, Ev;
  int64_t st[4][KL_MAX_RANK]; /* batch strides (elements) of q, k, v, mask; 0 where broadcast */
  kl_status err;
} attention_job;

/* Strides of x's dims before its last two against batch (nb dims, right-aligned), 0 on
 * broadcast dims; false if x does not broadcast. */
static bool batch_strides(const kl_tensor *x, const int64_t *batch, int nb, int64_t *out) {
  int xb = x->rank - 2;
  int64_t stride = x->rank >= 2 ? x->shape[x->rank - 1] * x->shape[x->rank - 2] : 1;
  if (xb > nb)
    return false;
  for (int d = nb - 1; d >= 0; d--) {
    int xd = d - (nb - xb);
    if (xd < 0) {
      out[d] = 0;
      continue;
    }
    int64_t n = x->shape[xd];
    if (n != batch[d] && n != 1)
      return false;
    out[d] = n == 1 ? 0 : stride;
    stride *= n;
  }
  return true;
}

/* A view of the last min(rank, 2) dims of x at element offset off. */
static void matrix_view(kl_tensor *view, const kl_tensor *x, int64_t off) {
  int r = x->rank < 2 ? x->rank : 2;
  view_of(view, x, r, x->shape + x->rank - r, off);
}

static void attention_batches(void *ctx, int64_t begin, int64_t end) {
  attention_job *j = ctx;
  const kl_tensor *ops[4] = {j->q, j->k, j->v, j->mask};
  for (int64_t b = begin; b < end; b++) {
    int64_t off[4] = {0, 0, 0, 0}, rest = b;
    for (int d = j->nb - 1; d >= 0; d--) {
      int64_t i = rest % j->y->shape[d];
      rest /= j->y->shape[d];
      for (int t = 0; t < 4; t++)
        off[t] += i * j->st[t][d];
    }
    kl_tensor views[4], yv;
    for (int t = 0; t < 4; t++)
      if (ops[t])
        matrix_view(&views[t], ops[t], off[t]);
    int64_t ysh[2] = {j->L, j->Ev};
    view_of(&yv, j->y, 2, ysh, b * j->L * j->Ev);
    keep_first(&j->err, kl_rt_attention(&views[0], &views[1], &views[2],
                                        j->mask ? &views[3] : NULL, j->scale, j->is_causal,
                                        &yv));
  }
}

STEP(attention) {
  kl_step_attention_params p;
  if (!params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "attention step: no parameter block");
  memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("attention", in, n_in, 3, 4, out, n_out));
  const kl_tensor *q = in[0], *k = in[1], *v = in[2], *mask = n_in > 3 ? in[3] : NULL;
  kl_tensor *y = out[0];
  attention_job j = {.q = q, .k = k, .v = v, .mask = mask, .y = y, .scale = p.scale,
                     .is_causal = p.is_causal};
  if (pool_threads(env) <= 1 || y->rank <= 2 || y->numel == 0 || q->rank < 2 || k->rank < 2 ||
      v->rank < 2)
    return kl_rt_attention(q, k, v, mask, p.scale, p.is_causal, y);
  j.nb = y->rank - 2;
  j.L = y->shape[j.nb];
  j.Ev = y->shape[j.nb + 1];
  bool fits = batch_strides(q, y->shape, j.nb, j.st[0]) &&
              batch_strides(k, y->shape, j.nb, j.st[1]) &&
              batch_strides(v, y->shape, j.nb, j.st[2]);
  if (mask) {
    /* the mask's leading dims broadcast against the batch dims; its last two (or fewer)
     * broadcast to (L, S) inside each batch matrix, which the kernel checks */
    int mr = mask->rank, mb = mr > 2 ? mr - 2 : 0;
    int64_t stride = 1;
    for (int d = mr - 1; d >= mb; d--)
      stride *= mask->shape[d];
    for (int d = j.nb - 1; fits && d >= 0; d--) {
      int md = d - (j.nb - mb);
      if (md < 0) {
        j.st[3][d] = 0;
        continue;
      }
      int64_t n = mask->shape[md];
      fits = n == y->shape[d] || n == 1;
      j.st[3][d] = n == 1 ? 0 : stride;
      stride *= n;
    }
    fits = fits && mb <= j.nb;
  }
  int64_t n_batch = y->numel / (j.L * j.Ev);
  int64_t S = k->shape[k->rank - 2], E = q->shape[q->rank - 1];
  int64_t batch_work = j.L * S * (E + j.Ev);
  if (!fits || n_batch < 2 || n_batch * batch_work < MIN_PARALLEL_WORK)
    return kl_rt_attention(q, k, v, mask, p.scale, p.is_causal, y);
  kl_parallel_for(env->pool, n_batch, clamp_chunk(batch_work), attention_batches, &j);
  return j.err;
}

/* ---- max_pool2d, avg_pool2d, adaptive_avg_pool2d ----------------------------------------- */

typedef enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE } pool_kind;

typedef struct pool_job {
  pool_kind kind;
  kl_rt_pool2d_params p; /* max and avg */
  const kl_tensor *x;
  kl_tensor *y;
  int64_t H, W, Ho, Wo;
  kl_status err;
} pool_job;

static kl_status pool_run(const pool_job *j, const kl_tensor *x, kl_tensor *y) {
  switch (j->kind) {
  case POOL_MAX: return kl_rt_max_pool2d(x, &j->p, y);
  case POOL_AVG: return kl_rt_avg_pool2d(x, &j->p, y);
  default: return kl_rt_adaptive_avg_pool2d(x, y);
  }
}

/* Planes [begin, end) of (N * C, H, W) as one (1, end - begin, H, W) pooling. */
static void pool_planes(void *ctx, int64_t begin, int64_t end) {
  pool_job *j = ctx;
  kl_tensor xv, yv;
  int64_t xsh[4] = {1, end - begin, j->H, j->W}, ysh[4] = {1, end - begin, j->Ho, j->Wo};
  view_of(&xv, j->x, 4, xsh, begin * j->H * j->W);
  view_of(&yv, j->y, 4, ysh, begin * j->Ho * j->Wo);
  keep_first(&j->err, pool_run(j, &xv, &yv));
}

static kl_status pool_step(const kl_step_env *env, pool_job *j) {
  const kl_tensor *x = j->x;
  kl_tensor *y = j->y;
  if (pool_threads(env) <= 1 || x->rank != 4 || y->rank != 4 || x->shape[0] != y->shape[0] ||
      x->shape[1] != y->shape[1] || y->numel == 0)
    return pool_run(j, x, y);
  /* the kernel checks everything else on zero planes, at no cost */
  kl_tensor x0, y0;
  int64_t x0sh[4] = {1, 0, x->shape[2], x->shape[3]}, y0sh[4] = {1, 0, y->shape[2], y->shape[3]};
  view_of(&x0, x, 4, x0sh, 0);
  view_of(&y0, y, 4, y0sh, 0);
  KL_RETURN_IF_ERROR(pool_run(j, &x0, &y0));
  j->H = x->shape[2], j->W = x->shape[3], j->Ho = y->shape[2], j->Wo = y->shape[3];
  int64_t planes = x->shape[0] * x->shape[1];
  /* work per plane: every input once, or every window's elements */
  int64_t plane_work = j->kind == POOL_ADAPTIVE ? j->H * j->W
                                                : j->Ho * j->Wo * j->p.kernel[0] * j->p.kernel[1];
  if (planes < 2 || planes * plane_work < MIN_PARALLEL_WORK)
    return pool_run(j, x, y);
  kl_parallel_for(env->pool, planes, clamp_chunk(plane_work), pool_planes, j);
  return j->err;
}

STEP(max_pool2d) {
  kl_step_pool2d_params p;
  if (!params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "max_pool2d step: no parameter block");
  memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("max_pool2d", in, n_in, 1, 1, out, n_out));
  pool_job j = {.kind = POOL_MAX, .p = p.pool, .x = in[0], .y = out[0]};
  return pool_step(env, &j);
}

STEP(avg_pool2d) {
  kl_step_pool2d_params p;
  if (!params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "avg_pool2d step: no parameter block");
  memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("avg_pool2d", in, n_in, 1, 1, out, n_out));
  pool_job j = {.kind = POOL_AVG, .p = p.pool, .x = in[0], .y = out[0]};
  return pool_step(env, &j);
}

STEP(adaptive_avg_pool2d) {
  (void)params;
  KL_RETURN_IF_ERROR(check_counts("adaptive_avg_pool2d", in, n_in, 1, 1, out, n_out));
  pool_job j = {.kind = POOL_ADAPTIVE, .x = in[0], .y = out[0]};
  return pool_step(env, &j);
}
