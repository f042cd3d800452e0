/* The recurrent reference kernel for ONNX RNN, GRU and LSTM: a plain loop over time steps for
 * each direction and batch row, with the gate products written as dot products in double.
 * Sequences are independent, so running one batch row at a time keeps sequence_lens simple:
 * a row stops after its own length, its later outputs stay zero, and its last state is what
 * Y_h / Y_c report. Gate order follows ONNX: GRU z, r, h; LSTM i, o, f, c; peepholes i, o, f. */
#include <math.h>
#include <string.h>

#include "kernels_internal.h"

static const char *kind_name(kl_rt_rnn_kind k) {
  return k == KL_RT_LSTM ? "LSTM" : k == KL_RT_GRU ? "GRU" : "RNN";
}

static double activate(kl_rt_rnn_act act, double alpha, double beta, double x) {
  switch (act) {
  case KL_RT_ACT_RELU: return x > 0 ? x : 0;
  case KL_RT_ACT_TANH: return tanh(x);
  case KL_RT_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case KL_RT_ACT_AFFINE: return alpha * x + beta;
  case KL_RT_ACT_LEAKY_RELU: return x >= 0 ? x : alpha * x;
  case KL_RT_ACT_THRESHOLDED_RELU: return x > alpha ? x : 0;
  case KL_RT_ACT_SCALED_TANH: return alpha * tanh(beta * x);
  case KL_RT_ACT_HARD_SIGMOID: return fmax(0.0, fmin(1.0, alpha * x + beta));
  case KL_RT_ACT_ELU: return x >= 0 ? x : alpha * (exp(x) - 1.0);
  case KL_RT_ACT_SOFTSIGN: return x / (1.0 + fabs(x));
  case KL_RT_ACT_SOFTPLUS: return log1p(exp(x));
  }
  return x;
}

/* An input whose element count must be `want`, or an error naming it. */
static kl_status check_numel(const kl_rt_rnn_params *p, const kl_tensor *t, const char *what,
                             int64_t want) {
  if (!t || t->numel == want)
    return NULL;
  return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %s %s has %lld elements; expected %lld",
                          kind_name(p->kind), what, KL_SHAPE(t), (long long)t->numel,
                          (long long)want);
}

/* Everything one direction of one batch row needs, loaded to double. */
typedef struct rnn_ctx {
  const kl_rt_rnn_params *p;
  int64_t T, B, I, H, G;
  double *x, *w, *r, *bias, *h0, *c0, *peep; /* bias, h0, c0, peep may be NULL */
  double *h, *c, *gx, *gh, *tmp;             /* scratch: H, H, G*H, G*H, H */
} rnn_ctx;

static int64_t x_index(const rnn_ctx *k, int64_t t, int64_t b) {
  return k->p->layout_batch ? (b * k->T + t) * k->I : (t * k->B + b) * k->I;
}
static int64_t y_index(const rnn_ctx *k, int64_t t, int d, int64_t b) {
  int64_t D = k->p->num_directions;
  return k->p->layout_batch ? ((b * k->T + t) * D + d) * k->H : ((t * D + d) * k->B + b) * k->H;
}
static int64_t state_index(const rnn_ctx *k, int d, int64_t b) {
  int64_t D = k->p->num_directions;
  return k->p->layout_batch ? (b * D + d) * k->H : (d * k->B + b) * k->H;
}

static double clip(const rnn_ctx *k, double v) {
  if (!k->p->has_clip)
    return v;
  return v > k->p->clip ? k->p->clip : v < -k->p->clip ? -k->p->clip : v;
}

/* out (rows) = m (rows, n) @ v (n) + bias (rows, may be NULL). */
static void matvec(const double *m, const double *v, const double *bias, int64_t rows,
                   int64_t n, double *out) {
  for (int64_t i = 0; i < rows; i++) {
    double s = bias ? bias[i] : 0.0;
    const double *row = m + i * n;
    for (int64_t j = 0; j < n; j++)
      s += row[j] * v[j];
    out[i] = s;
  }
}

/* One time step t of direction d for batch row b: updates k->h (and k->c). */
static void step(rnn_ctx *k, int d, int64_t b, int64_t t) {
  const kl_rt_rnn_params *p = k->p;
  int64_t H = k->H, GH = k->G * H;
  int per_dir = p->kind == KL_RT_LSTM ? 3 : p->kind == KL_RT_GRU ? 2 : 1;
  const kl_rt_rnn_act *act = &p->act[d * per_dir];
  const double *alpha = &p->alpha[d * per_dir], *beta = &p->beta[d * per_dir];
  const double *w = k->w + d * GH * k->I, *r = k->r + d * GH * H;
  const double *wb = k->bias ? k->bias + d * 2 * GH : NULL, *rb = wb ? wb + GH : NULL;
  /* gx (G*H) = W @ x_t + Wb; gh (G*H) = R @ h + Rb */
  matvec(w, k->x + x_index(k, t, b), wb, GH, k->I, k->gx);
  double *h = k->h, *c = k->c;
  if (p->kind == KL_RT_RNN) {
    matvec(r, h, rb, GH, H, k->gh);
    for (int64_t j = 0; j < H; j++)
      h[j] = activate(act[0], alpha[0], beta[0], clip(k, k->gx[j] + k->gh[j]));
  } else if (p->kind == KL_RT_GRU) {
    double *z = k->gh + GH, *rr = k->tmp; /* gh is 2*G*H long for GRU */
    matvec(r, h, rb, 2 * H, H, k->gh);  /* z and r rows */
    for (int64_t j = 0; j < H; j++) {
      z[j] = activate(act[0], alpha[0], beta[0], clip(k, k->gx[j] + k->gh[j]));
      rr[j] = activate(act[0], alpha[0], beta[0], clip(k, k->gx[H + j] + k->gh[H + j]));
    }
    double *hh = k->gh + 2 * H; /* the candidate's recurrent part, H entries */
    if (p->linear_before_reset) {
      matvec(r + 2 * H * H, h, rb ? rb + 2 * H : NULL, H, H, hh);
      for (int64_t j = 0; j < H; j++)
        hh[j] *= rr[j];
    } else {
      double *rh = z + H; /* H more scratch entries */
      for (int64_t j = 0; j < H; j++)
        rh[j] = rr[j] * h[j];
      matvec(r + 2 * H * H, rh, rb ? rb + 2 * H : NULL, H, H, hh);
    }
    for (int64_t j = 0; j < H; j++) {
      double cand = activate(act[1], alpha[1], beta[1], clip(k, k->gx[2 * H + j] + hh[j]));
      h[j] = (1.0 - z[j]) * cand + z[j] * h[j];
    }
  } else {
    matvec(r, h, rb, GH, H, k->gh);
    const double *pi = k->peep ? k->peep + d * 3 * H : NULL;
    for (int64_t j = 0; j < H; j++) {
      double g[4];
      for (int q = 0; q < 4; q++)
        g[q] = k->gx[q * H + j] + k->gh[q * H + j];
      double cp = c[j];
      double in = activate(act[0], alpha[0], beta[0], clip(k, g[0] + (pi ? pi[j] * cp : 0)));
      double fg = p->input_forget
                      ? 1.0 - in
                      : activate(act[0], alpha[0], beta[0],
                                 clip(k, g[2] + (pi ? pi[2 * H + j] * cp : 0)));
      double cand = activate(act[1], alpha[1], beta[1], clip(k, g[3]));
      double cn = fg * cp + in * cand;
      double og = activate(act[0], alpha[0], beta[0], clip(k, g[1] + (pi ? pi[H + j] * cn : 0)));
      c[j] = cn;
      k->tmp[j] = og * activate(act[2], alpha[2], beta[2], cn);
    }
    memcpy(h, k->tmp, (size_t)H * sizeof *h);
  }
}

static kl_status run(rnn_ctx *k, const kl_tensor *seq_lens, kl_tensor *y, kl_tensor *y_h,
                     kl_tensor *y_c) {
  const kl_rt_rnn_params *p = k->p;
  int64_t H = k->H;
  for (int64_t i = 0; i < y->numel; i++)
    kl_st(y, i, 0.0);
  for (int d = 0; d < p->num_directions; d++) {
    bool reverse = p->num_directions == 2 ? d == 1 : p->reverse;
    for (int64_t b = 0; b < k->B; b++) {
      int64_t len = k->T;
      if (seq_lens) {
        double v = kl_ld(seq_lens, b);
        if (!(v >= 0 && v <= (double)k->T))
          return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "%s: sequence_lens[%lld] = %g is outside 0..%lld",
                                  kind_name(p->kind), (long long)b, v, (long long)k->T);
        len = (int64_t)v;
      }
      int64_t s0 = state_index(k, d, b);
      for (int64_t j = 0; j < H; j++) {
        k->h[j] = k->h0 ? k->h0[s0 + j] : 0.0;
        k->c[j] = k->c0 ? k->c0[s0 + j] : 0.0;
      }
      for (int64_t s = 0; s < len; s++) {
        int64_t t = reverse ? len - 1 - s : s;
        step(k, d, b, t);
        int64_t yo = y_index(k, t, d, b);
        for (int64_t j = 0; j < H; j++)
          kl_st(y, yo + j, k->h[j]);
      }
      for (int64_t j = 0; j < H; j++) {
        if (y_h)
          kl_st(y_h, s0 + j, k->h[j]);
        if (y_c)
          kl_st(y_c, s0 + j, k->c[j]);
      }
    }
  }
  return NULL;
}

kl_status kl_rt_rnn(const kl_rt_rnn_params *p, const kl_tensor *x, const kl_tensor *w,
                    const kl_tensor *r, const kl_tensor *b, const kl_tensor *seq_lens,
                    const kl_tensor *h0, const kl_tensor *c0, const kl_tensor *peep, kl_tensor *y,
                    kl_tensor *y_h, kl_tensor *y_c) {
  const char *op = kind_name(p->kind);
  if (x->rank != 3)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: X %s must have 3 dims", op,
                            KL_SHAPE(x));
  if (!kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: X must be a float tensor, not %s", op,
                            kl_dtype_ir_name(x->dtype));
  if (p->num_directions < 1 || p->num_directions > 2 || p->hidden <= 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: bad direction count or hidden size",
                            op);
  rnn_ctx k = {.p = p, .H = p->hidden};
  k.G = p->kind == KL_RT_LSTM ? 4 : p->kind == KL_RT_GRU ? 3 : 1;
  k.T = x->shape[p->layout_batch ? 1 : 0];
  k.B = x->shape[p->layout_batch ? 0 : 1];
  k.I = x->shape[2];
  int64_t D = p->num_directions, GH = k.G * k.H, state = D * k.B * k.H;
  KL_RETURN_IF_ERROR(check_numel(p, w, "W", D * GH * k.I));
  KL_RETURN_IF_ERROR(check_numel(p, r, "R", D * GH * k.H));
  KL_RETURN_IF_ERROR(check_numel(p, b, "B", D * 2 * GH));
  KL_RETURN_IF_ERROR(check_numel(p, seq_lens, "sequence_lens", k.B));
  KL_RETURN_IF_ERROR(check_numel(p, h0, "initial_h", state));
  KL_RETURN_IF_ERROR(check_numel(p, c0, "initial_c", state));
  KL_RETURN_IF_ERROR(check_numel(p, peep, "P", D * 3 * k.H));
  KL_RETURN_IF_ERROR(check_numel(p, y, "Y", k.T * state));
  KL_RETURN_IF_ERROR(check_numel(p, y_h, "Y_h", state));
  KL_RETURN_IF_ERROR(check_numel(p, y_c, "Y_c", state));
  if (!w || !r || !y)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: X, W, R and Y are required", op);

  kl_status st = NULL;
  k.x = kl_load_all_f64(x);
  k.w = kl_load_all_f64(w);
  k.r = kl_load_all_f64(r);
  k.bias = b ? kl_load_all_f64(b) : NULL;
  k.h0 = h0 ? kl_load_all_f64(h0) : NULL;
  k.c0 = c0 ? kl_load_all_f64(c0) : NULL;
  k.peep = peep ? kl_load_all_f64(peep) : NULL;
  /* h, c, gx (G*H), gh (2*G*H: GRU keeps z, r*h and the candidate past the first G*H), tmp */
  double *scratch = malloc((size_t)(2 * k.H + 3 * GH + k.H) * sizeof *scratch);
  if (!k.x || !k.w || !k.r || (b && !k.bias) || (h0 && !k.h0) || (c0 && !k.c0) ||
      (peep && !k.peep) || !scratch) {
    st = kl_rt_oom(op);
  } else {
    k.h = scratch;
    k.c = k.h + k.H;
    k.gx = k.c + k.H;
    k.gh = k.gx + GH;
    k.tmp = k.gh + 2 * GH;
    st = run(&k, seq_lens, y, y_h, y_c);
  }
  free(scratch);
  free(k.x), free(k.w), free(k.r), free(k.bias), free(k.h0), free(k.c0), free(k.peep);
  return st;
}
