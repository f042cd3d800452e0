/* The steps that split their work across the environment's thread pool: matmul, linear,
 * conv2d, attention and the 2-D pools. Each runs the single-threaded kernel of runtime/kernels/
 * on views (stack kl_tensor headers whose data points into the operands' buffers; never
 * retained or released), so one kernel stays the single source of truth. The splits are
 * chosen so that every output element is computed by the same code in the same order as in a
 * single call, making the results bit-identical whatever the pool's size:
 *   matmul  rows of each output matrix (the GEMM sums each element in ascending k whatever its
 *           M; the f64 and widened loops handle each row on its own);
 *   linear  f32 with >= 16 rows: tiles of (rows, output features) of the GEMM; otherwise
 *           single rows times blocks of output features (the kernel's dot-product path);
 *   conv2d  f32 GEMM convolutions: tiles of (image, group, output channels, output pixels),
 *           each a part of the implicit GEMM (kernels.h, kl_rt_conv2d_f32_part), and when
 *           one image has too few pixels for every thread, its patch matrix packed first by
 *           all threads (kl_rt_conv2d_pack_col), then tiles of output channels only; Winograd
 *           ones: (image, tiles, output channels); the ones the direct kernel takes
 *           (depthwise, narrow groups: conv_depthwise.c): (image, output channel), since that
 *           kernel computes each output plane on its own; others: (image, group, block of
 *           output channels), each a groups = 1 convolution;
 *   attention  the stacked query rows of all batch matrices, in chunks of >= 16 rows
 *           (kl_rt_attention_rows computes each row by the same code whatever the chunk), so a
 *           model with one or two heads still uses every thread;
 *   pools   blocks of (image, channel) planes, each pooled on its own by every path.
 * Operands that do not fit these shapes go to the kernel whole, which reports the error. */
#include <string.h>

#include "gemm.h"
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

static void tile_split(int64_t M, int64_t N, int threads, int64_t *m_block, int64_t *n_m,
                       int64_t *n_block, int64_t *n_n);

/* matmul with b packed ahead of time: tiles of y seen as (rows, N). */
typedef struct matmul_packed_job {
  const float *a, *b;
  float *y;
  int64_t rows, K, N, m_block, n_m, n_block, n_n;
  bool oom;
} matmul_packed_job;

static void matmul_packed_tasks(void *ctx, int64_t begin, int64_t end) {
  matmul_packed_job *j = ctx;
  for (int64_t t = begin; t < end; t++) {
    int64_t mb = t / j->n_n, nb = t % j->n_n;
    if (!kl_rt_matmul_f32_part(j->a, j->b, j->y, j->rows, j->K, j->N, mb * j->m_block,
                               (mb + 1) * j->m_block, nb * j->n_block, (nb + 1) * j->n_block))
      __atomic_store_n(&j->oom, true, __ATOMIC_RELAXED);
  }
}

static kl_status matmul_packed(const kl_step_env *env, const kl_step_matmul_params *p,
                               const kl_tensor *a, const kl_tensor *b, kl_tensor *y) {
  int64_t K = p->b_shape[0], N = p->b_shape[1];
  bool ok = b->dtype == KL_F32 && b->rank == 1 && K >= 1 && N >= 1 &&
            (size_t)b->numel == kl_rt_matmul_packed_b_floats(K, N) && a->dtype == KL_F32 &&
            y->dtype == KL_F32 && a->rank >= 1 && a->shape[a->rank - 1] == K &&
            y->rank == (a->rank == 1 ? 1 : a->rank) && y->shape[y->rank - 1] == N;
  for (int d = 0; ok && d < a->rank - 1; d++)
    ok = y->shape[d] == a->shape[d];
  if (!ok)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "matmul step: a (%s, rank %d) and output (%s, rank %d) do not fit b "
                            "[%lld, %lld] packed (%s, %lld floats)",
                            kl_dtype_ir_name(a->dtype), a->rank, kl_dtype_ir_name(y->dtype),
                            y->rank, (long long)K, (long long)N, kl_dtype_ir_name(b->dtype),
                            (long long)b->numel);
  matmul_packed_job j = {.a = a->data, .b = b->data, .y = y->data, .rows = a->numel / K,
                         .K = K, .N = N};
  if (j.rows == 0)
    return NULL;
  int threads = pool_threads(env);
  tile_split(j.rows, N, j.rows * K * N < MIN_PARALLEL_WORK ? 1 : threads, &j.m_block, &j.n_m,
             &j.n_block, &j.n_n);
  int64_t tasks = j.n_m * j.n_n;
  if (threads <= 1 || tasks < 2)
    matmul_packed_tasks(&j, 0, tasks);
  else
    kl_parallel_for(env->pool, tasks, 1, matmul_packed_tasks, &j);
  return j.oom ? kl_status_create(KL_ERR_OUT_OF_MEMORY, "matmul: out of memory") : NULL;
}

STEP(matmul) {
  kl_step_matmul_params p = {0}; /* no block: b as it is */
  if (params)
    memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("matmul", in, n_in, 2, 2, out, n_out));
  const kl_tensor *a = in[0], *b = in[1];
  kl_tensor *y = out[0];
  if (p.b_packed)
    return matmul_packed(env, &p, a, b, y);
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

enum { LINEAR_GEMM_ROWS = KL_RT_LINEAR_GEMM_ROWS };

typedef struct linear_job {
  const kl_tensor *x, *w, *bias;
  kl_tensor *y;
  int64_t M, in, out;
  int64_t block, n_blocks; /* output features per task when splitting them */
  kl_status err;
} linear_job;

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

/* f32 linear with at least KL_RT_LINEAR_GEMM_ROWS rows: tiles of (rows, output features) of
 * the GEMM (kl_rt_linear_f32_part), the same bits as one call. */
typedef struct linear_gemm_job {
  const float *x, *w, *w_packed, *bias;
  float *y;
  int64_t M, in, out, m_block, n_m, n_block, n_n;
  bool oom;
} linear_gemm_job;

static void linear_gemm_tasks(void *ctx, int64_t begin, int64_t end) {
  linear_gemm_job *j = ctx;
  for (int64_t t = begin; t < end; t++) {
    int64_t mb = t / j->n_n, nb = t % j->n_n;
    if (!kl_rt_linear_f32_part(j->x, j->w, j->w_packed, j->bias, j->y, j->M, j->in, j->out,
                               mb * j->m_block, (mb + 1) * j->m_block, nb * j->n_block,
                               (nb + 1) * j->n_block))
      __atomic_store_n(&j->oom, true, __ATOMIC_RELAXED);
  }
}

/* Blocks for about four tasks per thread: column panels first (each packs its part of w once
 * when it is not packed), then row blocks. */
static void tile_split(int64_t M, int64_t N, int threads, int64_t *m_block, int64_t *n_m,
                       int64_t *n_block, int64_t *n_n) {
  int64_t panels = (N + KL_SGEMM_NR - 1) / KL_SGEMM_NR;
  int64_t tiles_m = (M + KL_SGEMM_MR - 1) / KL_SGEMM_MR;
  int64_t want = threads <= 1 ? 1 : 4 * (int64_t)threads;
  int64_t nn = want < panels ? want : panels;
  int64_t nm = nn >= want ? 1 : (want + nn - 1) / nn;
  if (nm > tiles_m)
    nm = tiles_m;
  *n_block = (panels + nn - 1) / nn * KL_SGEMM_NR;
  *n_n = (N + *n_block - 1) / *n_block;
  *m_block = (tiles_m + nm - 1) / nm * KL_SGEMM_MR;
  *n_m = (M + *m_block - 1) / *m_block;
}

STEP(linear) {
  kl_step_linear_params p = {0}; /* no block: plain weights */
  if (params)
    memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("linear", in, n_in, 2, 3, out, n_out));
  const kl_tensor *x = in[0], *w = in[1], *bias = n_in > 2 ? in[2] : NULL;
  kl_tensor *y = out[0];
  int threads = pool_threads(env);
  kl_tensor w_shape_only;
  const float *w_packed = NULL;
  if (p.w_packed) { /* a shape-only view of the weights stands in for the checks */
    if (w->dtype != KL_F32 || w->rank != 1 || p.w_shape[0] < 1 || p.w_shape[1] < 1 ||
        (size_t)w->numel != kl_rt_linear_packed_floats(p.w_shape[1], p.w_shape[0]))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "linear step: packed weights %s do not hold weights [%lld, %lld]",
                              kl_dtype_ir_name(w->dtype), (long long)p.w_shape[0],
                              (long long)p.w_shape[1]);
    memset(&w_shape_only, 0, sizeof w_shape_only);
    w_shape_only.dtype = KL_F32;
    w_shape_only.rank = 2;
    w_shape_only.shape[0] = p.w_shape[0];
    w_shape_only.shape[1] = p.w_shape[1];
    w_shape_only.numel = p.w_shape[0] * p.w_shape[1];
    w_packed = w->data;
    w = &w_shape_only;
  }
  if (x->rank < 1 || w->rank != 2 || x->numel == 0 || y->numel == 0 ||
      x->dtype != w->dtype || x->dtype != y->dtype || (bias && bias->dtype != x->dtype)) {
    if (w_packed)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "linear step: packed weights for x %s",
                              kl_dtype_ir_name(x->dtype));
    return kl_rt_linear(x, w, bias, y);
  }
  linear_job j = {.x = x, .w = w, .bias = bias, .y = y};
  j.in = x->shape[x->rank - 1];
  j.out = w->shape[0];
  bool fits = w->shape[1] == j.in && y->rank == x->rank && y->shape[y->rank - 1] == j.out &&
              (!bias || (bias->rank == 1 && bias->shape[0] == j.out));
  for (int d = 0; fits && d < x->rank - 1; d++)
    fits = y->shape[d] == x->shape[d];
  if (!fits || j.in == 0) {
    if (w_packed)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "linear step: x (rank %d) and output (rank %d) do not fit packed "
                              "weights [%lld, %lld]",
                              x->rank, y->rank, (long long)p.w_shape[0], (long long)p.w_shape[1]);
    return kl_rt_linear(x, w, bias, y);
  }
  j.M = x->numel / j.in;
  if (x->dtype == KL_F32 && (w_packed || j.M >= KL_RT_LINEAR_GEMM_ROWS)) {
    linear_gemm_job g = {.x = x->data, .w = w_packed ? NULL : w->data, .w_packed = w_packed,
                         .bias = bias ? bias->data : NULL, .y = y->data, .M = j.M, .in = j.in,
                         .out = j.out};
    int64_t work = j.M * j.in * j.out;
    tile_split(j.M, j.out, work < MIN_PARALLEL_WORK ? 1 : threads, &g.m_block, &g.n_m,
               &g.n_block, &g.n_n);
    int64_t tasks = g.n_m * g.n_n;
    if (threads <= 1 || tasks < 2)
      linear_gemm_tasks(&g, 0, tasks);
    else
      kl_parallel_for(env->pool, tasks, 1, linear_gemm_tasks, &g);
    return g.oom ? kl_status_create(KL_ERR_OUT_OF_MEMORY, "linear: out of memory") : NULL;
  }
  int64_t row_work = j.in * j.out;
  if (threads <= 1 || j.M * row_work < MIN_PARALLEL_WORK || j.M >= LINEAR_GEMM_ROWS)
    return kl_rt_linear(x, w, bias, y);
  /* enough blocks for every thread twice over, each of at least 16 features */
  int64_t want = (2 * (int64_t)threads + j.M - 1) / j.M;
  j.block = (j.out + want - 1) / want;
  if (j.block < 16)
    j.block = 16;
  j.n_blocks = (j.out + j.block - 1) / j.block;
  kl_parallel_for(env->pool, j.M * j.n_blocks, 1, linear_blocks, &j);
  return j.err;
}

/* ---- conv2d ----------------------------------------------------------------------------- */

/* The f32 GEMM convolutions (kl_rt_conv2d_uses_gemm): tasks are tiles of (image, group, block
 * of output channels, block of output pixels), each computed by kl_rt_conv2d_f32_part with
 * the same bits as a whole call. */
typedef struct conv_gemm_job {
  kl_rt_conv2d_dims d;
  kl_rt_conv2d_params p;
  const float *x, *w, *w_packed, *bias;
  float *col; /* NULL, or the patch matrix its tasks share (conv_gemm_pack_tasks) */
  float *y;
  const kl_sgemm_epilogue *epi;
  int64_t m_block, n_m; /* output channels per task, and blocks of them */
  int64_t panels, n_p;  /* panels of KL_SGEMM_NR output pixels, and ranges of them */
  bool oom;
} conv_gemm_job;

static void conv_gemm_pack_tasks(void *ctx, int64_t begin, int64_t end) {
  conv_gemm_job *j = ctx;
  kl_rt_conv2d_pack_col(&j->d, &j->p, j->x, 0, 0, begin, end, j->col);
}

static void conv_gemm_tasks(void *ctx, int64_t begin, int64_t end) {
  conv_gemm_job *j = ctx;
  for (int64_t t = begin; t < end; t++) {
    int64_t pb = t % j->n_p, mb = (t / j->n_p) % j->n_m, ng = t / (j->n_p * j->n_m);
    int64_t g = ng % j->d.groups, n = ng / j->d.groups;
    int64_t p0 = pb * j->panels / j->n_p, p1 = (pb + 1) * j->panels / j->n_p;
    if (!kl_rt_conv2d_f32_part(&j->d, &j->p, j->x, j->w, j->w_packed, j->col, j->bias, j->y,
                               n, g, mb * j->m_block, (mb + 1) * j->m_block, p0 * KL_SGEMM_NR,
                               p1 * KL_SGEMM_NR, j->epi))
      __atomic_store_n(&j->oom, true, __ATOMIC_RELAXED);
  }
}

/* The largest patch matrix conv2d packs once for all its tasks (floats; 16 MiB). */
enum { MAX_SHARED_COL_FLOATS = 4 << 20 };

/* Blocks for about four tasks per thread: pixels first, in ranges of panels as equal as can
 * be (each range packs its own patches once, and the static split gives each thread the same
 * number of panels), then channels when an image has too few pixel panels. */
/* Output channels in (at most) n_m blocks of whole micro-tile rows. */
static void conv_gemm_channel_blocks(conv_gemm_job *j, int64_t n_m) {
  int64_t tiles_m = (j->d.Cog + KL_SGEMM_MR - 1) / KL_SGEMM_MR;
  if (n_m > tiles_m)
    n_m = tiles_m;
  j->m_block = (tiles_m + n_m - 1) / n_m * KL_SGEMM_MR;
  j->n_m = (j->d.Cog + j->m_block - 1) / j->m_block;
}

static void conv_gemm_split(conv_gemm_job *j, int threads) { /* per (image, group) */
  int64_t P = j->d.Ho * j->d.Wo, units = j->d.N * j->d.groups;
  int64_t panels = (P + KL_SGEMM_NR - 1) / KL_SGEMM_NR;
  int64_t want = threads <= 1 ? 1 : (4 * (int64_t)threads + units - 1) / units;
  int64_t n_p = want < panels ? want : panels;
  j->panels = panels;
  j->n_p = n_p;
  /* Each block of channels reads all the patches, each range of pixels all the weights: with
   * fewer weights than patches (fewer output channels than pixels) the channels are split only
   * when the pixels leave threads idle. */
  bool few_weights = j->d.Cog <= P;
  int64_t enough = few_weights ? (threads + units - 1) / units : want;
  conv_gemm_channel_blocks(j, n_p >= enough ? 1 : (want + n_p - 1) / n_p);
}

/* Winograd convolutions (weights transformed ahead of time): tasks of (image, block of tiles,
 * block of output channels), kl_rt_conv2d_winograd_part. */
typedef struct conv_winograd_job {
  kl_rt_conv2d_dims d;
  kl_rt_conv2d_params p;
  kl_rt_winograd_split split;
  const float *x, *u, *bias;
  float *y;
  const kl_sgemm_epilogue *epi;
  bool oom;
} conv_winograd_job;

static void conv_winograd_tasks(void *ctx, int64_t begin, int64_t end) {
  conv_winograd_job *j = ctx;
  for (int64_t t = begin; t < end; t++) {
    int64_t cb = t % j->split.n_co_blocks, rest = t / j->split.n_co_blocks;
    int64_t block = rest % j->split.n_tile_blocks, n = rest / j->split.n_tile_blocks;
    if (!kl_rt_conv2d_winograd_part(&j->d, &j->p, &j->split, j->x, j->u, j->bias, j->y, n,
                                    block, cb, j->epi))
      __atomic_store_n(&j->oom, true, __ATOMIC_RELAXED);
  }
}

/* Other convolutions: tasks of (image, group, block of output channels), each a groups = 1
 * convolution of views, run by kl_rt_conv2d. */
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
  const kl_sgemm_epilogue *epi; /* its residual indexed like y */
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
  int64_t y_off = (n * j->Cout + c0) * j->Ho * j->Wo;
  view_of(&yv, j->y, 4, ysh, y_off);
  kl_sgemm_epilogue e; /* indexed like the view */
  if (j->epi) {
    e = *j->epi;
    if (e.residual)
      e.residual += y_off;
  }
  keep_first(&j->err,
             kl_rt_conv2d_direct_f32(&xv, &wv, j->bias ? &bv : NULL, &q, &yv, j->epi ? &e : NULL));
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

/* Operands checked by the caller. */
static kl_status conv_direct(const kl_step_env *env, const kl_tensor *x, const kl_tensor *w,
                             const kl_tensor *bias, const kl_rt_conv2d_params *p, kl_tensor *y,
                             const kl_sgemm_epilogue *epi) {
  conv_direct_job j = {.x = x, .w = w, .bias = bias, .y = y, .p = *p, .epi = epi};
  j.Cin = x->shape[1], j.H = x->shape[2], j.W = x->shape[3];
  j.Cout = w->shape[0], j.Kh = w->shape[2], j.Kw = w->shape[3];
  j.Ho = y->shape[2], j.Wo = y->shape[3];
  j.Cg = w->shape[1], j.Cog = j.Cout / p->groups;
  int64_t planes = x->shape[0] * j.Cout, plane_work = j.Ho * j.Wo * j.Cg * j.Kh * j.Kw;
  if (planes < 2 || planes * plane_work < MIN_PARALLEL_WORK || pool_threads(env) <= 1)
    return y->numel ? kl_rt_conv2d_direct_f32(x, w, bias, p, y, epi) : NULL;
  kl_parallel_for(env->pool, planes, clamp_chunk(plane_work), conv_direct_tasks, &j);
  return j.err;
}

/* The fused epilogue of p for output y: *out NULL when there is none. */
static kl_status conv_epilogue(const kl_step_conv2d_params *p, kl_tensor *const *in, int n_in,
                               const kl_tensor *y, kl_sgemm_epilogue *e,
                               const kl_sgemm_epilogue **out) {
  *out = NULL;
  if (p->act == KL_SGEMM_ACT_NONE && !p->residual)
    return NULL;
  if (p->act < KL_SGEMM_ACT_NONE || p->act > KL_SGEMM_ACT_SILU || y->dtype != KL_F32)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "conv2d step: fused activation %d on a %s output is not one it has",
                            (int)p->act, kl_dtype_ir_name(y->dtype));
  const kl_tensor *r = NULL;
  if (p->residual) {
    r = n_in > 3 ? in[3] : NULL;
    bool ok = r && r->dtype == KL_F32 && r->rank == y->rank && r->numel == y->numel;
    for (int d = 0; ok && d < y->rank; d++)
      ok = r->shape[d] == y->shape[d];
    const float *rd = ok ? r->data : NULL, *yd = y->data;
    if (ok && y->numel && rd < yd + y->numel && yd < rd + y->numel)
      ok = false; /* the output would overwrite the residual before it is read */
    if (!ok)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "conv2d step: the fused residual (input 3) is missing, not f32, "
                              "not of the output's shape, or overlaps the output");
  }
  *e = (kl_sgemm_epilogue){r ? r->data : NULL, (kl_sgemm_act)p->act, p->lo, p->hi};
  *out = e;
  return NULL;
}

/* s, with epi applied to all of y when s is OK (paths without a fused store). */
static kl_status whole_epilogue(kl_status s, const kl_sgemm_epilogue *epi, kl_tensor *y) {
  if (!s && epi)
    kl_sgemm_epilogue_apply(epi, y->data, 0, 1, y->numel, y->numel);
  return s;
}

STEP(conv2d) {
  kl_step_conv2d_params p;
  if (!params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "conv2d step: no parameter block");
  memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("conv2d", in, n_in, 2, p.residual ? 4 : 3, out, n_out));
  const kl_tensor *x = in[0], *w = in[1], *bias = n_in > 2 ? in[2] : NULL;
  kl_tensor *y = out[0];
  kl_sgemm_epilogue epi_store;
  const kl_sgemm_epilogue *epi;
  KL_RETURN_IF_ERROR(conv_epilogue(&p, in, n_in, y, &epi_store, &epi));
  int threads = pool_threads(env);
  kl_tensor w_shape_only;
  const float *w_packed = NULL;
  if (p.w_packed != KL_STEP_CONV_PLAIN) { /* a shape-only view of the weights for the checks */
    memset(&w_shape_only, 0, sizeof w_shape_only);
    w_shape_only.dtype = KL_F32;
    w_shape_only.rank = 4;
    bool ok = w->dtype == KL_F32 && w->rank == 1 && p.conv.groups >= 1 && x->rank == 4;
    for (int d = 0; d < 4; d++) {
      w_shape_only.shape[d] = p.w_shape[d];
      ok = ok && p.w_shape[d] >= 1;
    }
    ok = ok && p.w_shape[0] % p.conv.groups == 0;
    if (ok && p.w_packed == KL_STEP_CONV_GEMM)
      ok = kl_rt_conv2d_uses_gemm(p.w_shape, p.conv.groups) &&
           (size_t)w->numel == kl_rt_conv2d_packed_floats(p.w_shape, p.conv.groups);
    else if (ok && p.w_packed == KL_STEP_CONV_WINOGRAD)
      ok = kl_rt_conv2d_winograd_fits(x->shape, p.w_shape, &p.conv) &&
           (size_t)w->numel == kl_rt_conv2d_winograd_floats(p.w_shape[0], p.w_shape[1]);
    else
      ok = false;
    if (!ok)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "conv2d step: packed weights (layout %d, %s, %lld floats) do not "
                              "hold weights [%lld, %lld, %lld, %lld] in %lld groups for this x",
                              (int)p.w_packed, kl_dtype_ir_name(w->dtype), (long long)w->numel,
                              (long long)p.w_shape[0], (long long)p.w_shape[1],
                              (long long)p.w_shape[2], (long long)p.w_shape[3],
                              (long long)p.conv.groups);
    w_packed = w->data;
    w = &w_shape_only;
  }
  kl_rt_conv2d_dims d;
  if (p.w_packed == KL_STEP_CONV_WINOGRAD) {
    KL_RETURN_IF_ERROR(kl_rt_conv2d_check(x, w, bias, &p.conv, y, &d));
    if (y->numel == 0)
      return NULL;
    conv_winograd_job j = {.d = d, .p = p.conv, .x = x->data, .u = w_packed,
                           .bias = bias ? bias->data : NULL, .y = y->data, .epi = epi};
    kl_rt_conv2d_winograd_split(&d, threads, &j.split);
    int64_t tasks = d.N * j.split.n_tile_blocks * j.split.n_co_blocks;
    if (threads <= 1 || tasks < 2)
      conv_winograd_tasks(&j, 0, tasks);
    else
      kl_parallel_for(env->pool, tasks, 1, conv_winograd_tasks, &j);
    return j.oom ? kl_status_create(KL_ERR_OUT_OF_MEMORY, "conv2d: out of memory") : NULL;
  }
  bool gemm = x->dtype == KL_F32 && x->rank == 4 && w->rank == 4 &&
              kl_rt_conv2d_uses_gemm(w->shape, p.conv.groups);
  if (gemm || w_packed) {
    KL_RETURN_IF_ERROR(kl_rt_conv2d_check(x, w, bias, &p.conv, y, &d));
    if (y->numel == 0)
      return NULL;
    conv_gemm_job j = {.d = d, .p = p.conv, .x = x->data, .w = w_packed ? NULL : w->data,
                       .w_packed = w_packed, .bias = bias ? bias->data : NULL, .y = y->data,
                       .epi = epi};
    int64_t work = d.N * d.Cout * d.Ho * d.Wo * d.Cg * d.Kh * d.Kw;
    conv_gemm_split(&j, work < MIN_PARALLEL_WORK ? 1 : threads);
    if (j.n_m > 1 && d.N == 1 && d.groups == 1) {
      /* Blocks of channels would each pack the same patches: the threads pack them once
       * together first, then the tasks split the channels only (each reads its weights once),
       * one block per thread, as every block reads all the packed patches again (from L2 or
       * beyond: more blocks cost more than their balance gains) */
      size_t floats = kl_rt_conv2d_col_floats(&d);
      if (floats <= MAX_SHARED_COL_FLOATS && (j.col = kl_rt_conv2d_col_scratch(floats))) {
        kl_parallel_for(env->pool, j.panels, 1, conv_gemm_pack_tasks, &j);
        j.n_p = 1;
        conv_gemm_channel_blocks(&j, threads);
      }
    }
    int64_t tasks = d.N * d.groups * j.n_m * j.n_p;
    if (threads <= 1 || tasks < 2)
      conv_gemm_tasks(&j, 0, tasks);
    else
      kl_parallel_for(env->pool, tasks, 1, conv_gemm_tasks, &j);
    return j.oom ? kl_status_create(KL_ERR_OUT_OF_MEMORY, "conv2d: out of memory") : NULL;
  }
  if (x->rank == 4 && w->rank == 4 && kl_rt_conv2d_direct_fits(x, w, p.conv.groups)) {
    KL_RETURN_IF_ERROR(kl_rt_conv2d_check(x, w, bias, &p.conv, y, &d));
    return conv_direct(env, x, w, bias, &p.conv, y, epi);
  }
  if (threads <= 1 || x->rank != 4 || y->rank != 4 || w->rank != 4 || y->numel == 0 ||
      x->shape[0] != y->shape[0])
    return whole_epilogue(kl_rt_conv2d(x, w, bias, &p.conv, y), epi, y);
  /* The kernel checks everything else on a batch of zero images, at no cost. */
  kl_tensor x0, y0;
  int64_t x0sh[4] = {0, x->shape[1], x->shape[2], x->shape[3]},
          y0sh[4] = {0, y->shape[1], y->shape[2], y->shape[3]};
  view_of(&x0, x, 4, x0sh, 0);
  view_of(&y0, y, 4, y0sh, 0);
  KL_RETURN_IF_ERROR(kl_rt_conv2d(&x0, w, bias, &p.conv, &y0));

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
    return whole_epilogue(kl_rt_conv2d(x, w, bias, &p.conv, y), epi, y);
  /* blocks of output channels only when images x groups cannot occupy every thread */
  int64_t units = N * j.groups, want = threads;
  j.n_blocks = units >= want ? 1 : (want + units - 1) / units;
  if (j.n_blocks > j.Cog)
    j.n_blocks = j.Cog;
  j.block = (j.Cog + j.n_blocks - 1) / j.n_blocks;
  j.n_blocks = (j.Cog + j.block - 1) / j.block;
  kl_parallel_for(env->pool, units * j.n_blocks, 1, conv_tasks, &j);
  return whole_epilogue(j.err, epi, y);
}

/* ---- attention -------------------------------------------------------------------------- */

/* Chunks of at least this many query rows, so that the kernel's GEMMs have rows to tile. */
enum { ATTENTION_MIN_ROWS = 16 };

typedef struct attention_job {
  const kl_tensor *q, *k, *v, *mask;
  kl_tensor *y;
  double scale;
  bool is_causal;
  kl_status err;
} attention_job;

static void attention_rows(void *ctx, int64_t begin, int64_t end) {
  attention_job *j = ctx;
  keep_first(&j->err, kl_rt_attention_rows(j->q, j->k, j->v, j->mask, j->scale, j->is_causal,
                                            j->y, begin, end));
}

STEP(attention) {
  kl_step_attention_params p;
  if (!params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "attention step: no parameter block");
  memcpy(&p, params, sizeof p);
  KL_RETURN_IF_ERROR(check_counts("attention", in, n_in, 3, 4, out, n_out));
  const kl_tensor *q = in[0], *k = in[1], *v = in[2], *mask = n_in > 3 ? in[3] : NULL;
  kl_tensor *y = out[0];
  if (pool_threads(env) <= 1 || y->numel == 0)
    return kl_rt_attention(q, k, v, mask, p.scale, p.is_causal, y);
  /* the kernel checks the operands on an empty range of rows, at no cost */
  KL_RETURN_IF_ERROR(kl_rt_attention_rows(q, k, v, mask, p.scale, p.is_causal, y, 0, 0));
  int64_t Ev = y->shape[y->rank - 1], rows = y->numel / Ev;
  int64_t S = k->shape[k->rank - 2], E = q->shape[q->rank - 1];
  int64_t row_work = S * (E + Ev);
  if (rows < 2 * ATTENTION_MIN_ROWS || rows * row_work < MIN_PARALLEL_WORK)
    return kl_rt_attention(q, k, v, mask, p.scale, p.is_causal, y);
  attention_job j = {.q = q, .k = k, .v = v, .mask = mask, .y = y, .scale = p.scale,
                     .is_causal = p.is_causal};
  int64_t chunk = clamp_chunk(row_work), L = q->rank >= 2 ? q->shape[q->rank - 2] : rows;
  if (chunk < ATTENTION_MIN_ROWS)
    chunk = ATTENTION_MIN_ROWS;
  /* with a few heads for every thread, whole heads per chunk: a chunk packs its heads' keys and
   * values for the GEMMs, which a head split across chunks would pack in each */
  if (L > chunk && rows / L >= 2 * (int64_t)pool_threads(env))
    chunk = L;
  kl_parallel_for(env->pool, rows, chunk, attention_rows, &j);
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
