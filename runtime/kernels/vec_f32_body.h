/* The row kernels of vec_f32.h written once over a small vector vocabulary, included by
 * vec_f32.c once per ISA with these macros defined (no include guard, on purpose):
 *
 *   VW lanes, VT the vector type, VFN the attributes of every function (static, target ISA),
 *   NAME(f) the ISA's name for f; V_ZERO() V_SET1(x) V_LOAD(p) V_STORE(p, v); V_LOADN(p, n,
 *   fill) and V_STOREN(p, v, n) touch only the first n < VW lanes (fill the others); V_ADD V_SUB
 *   V_MUL, V_FMA(a, b, c) = a * b + c; V_MAX(x, acc) is acc where x is nan (x86's max); V_EXP;
 *   V_HSUM and V_HMAX reduce the lanes to a float; V_KEEP(v, m, n) is v where the first n bytes
 *   at m are nonzero, -inf elsewhere; V_FILLN(v, n, fill) keeps the first n lanes and fills
 *   the others; V_ZERO_IF_NEGINF(v) puts 0 in the lanes holding -inf.
 *
 * Each loop walks whole vectors, then one masked partial vector, so a row's arithmetic depends
 * only on its length. Sums run in f32 lanes over blocks of KL_VEC_SUM_BLOCK elements (a
 * multiple of every VW, so only a row's last block has a partial vector) added up in double. */

/* The max over x (n), ignoring nan (nan reaches the row through the sum instead). */
VFN float NAME(row_max)(const float *x, int64_t n) {
  VT acc = V_SET1(-INFINITY);
  int64_t j = 0;
  for (; j + VW <= n; j += VW)
    acc = V_MAX(V_LOAD(x + j), acc);
  if (j < n)
    acc = V_MAX(V_LOADN(x + j, n - j, -INFINITY), acc);
  return V_HMAX(acc);
}

/* Sum of e^(x - sub) over x (n), storing each term to y (n) unless y is NULL. */
VFN double NAME(exp_sum)(const float *x, float *y, int64_t n, float sub) {
  VT vs = V_SET1(sub);
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += KL_VEC_SUM_BLOCK) {
    int64_t b1 = n - b0 < KL_VEC_SUM_BLOCK ? n : b0 + KL_VEC_SUM_BLOCK;
    VT acc0 = V_ZERO(), acc1 = V_ZERO();
    int64_t j = b0;
    for (; j + 2 * VW <= b1; j += 2 * VW) {
      VT e0 = V_EXP(V_SUB(V_LOAD(x + j), vs)), e1 = V_EXP(V_SUB(V_LOAD(x + j + VW), vs));
      if (y) {
        V_STORE(y + j, e0);
        V_STORE(y + j + VW, e1);
      }
      acc0 = V_ADD(acc0, e0);
      acc1 = V_ADD(acc1, e1);
    }
    for (; j + VW <= b1; j += VW) {
      VT e = V_EXP(V_SUB(V_LOAD(x + j), vs));
      if (y)
        V_STORE(y + j, e);
      acc0 = V_ADD(acc0, e);
    }
    if (j < b1) { /* the fill -inf gives e^-inf = 0 in the lanes past the end */
      VT e = V_EXP(V_SUB(V_LOADN(x + j, b1 - j, -INFINITY), vs));
      if (y)
        V_STOREN(y + j, e, b1 - j);
      acc0 = V_ADD(acc0, e);
    }
    total += (double)V_HSUM(V_ADD(acc0, acc1));
  }
  return total;
}

/* y (n) = x (n) * a */
VFN void NAME(scale)(const float *x, float *y, int64_t n, float a) {
  VT va = V_SET1(a);
  int64_t j = 0;
  for (; j + VW <= n; j += VW)
    V_STORE(y + j, V_MUL(V_LOAD(x + j), va));
  if (j < n)
    V_STOREN(y + j, V_MUL(V_LOADN(x + j, n - j, 0.0f), va), n - j);
}

/* y (n) = (x (n) - a) - b: log_softmax's x - max - log(sum), the first difference exact when x
 * is near the max */
VFN void NAME(sub2)(const float *x, float *y, int64_t n, float a, float b) {
  VT va = V_SET1(a), vb = V_SET1(b);
  int64_t j = 0;
  for (; j + VW <= n; j += VW)
    V_STORE(y + j, V_SUB(V_SUB(V_LOAD(x + j), va), vb));
  if (j < n)
    V_STOREN(y + j, V_SUB(V_SUB(V_LOADN(x + j, n - j, 0.0f), va), vb), n - j);
}

VFN void NAME(softmax_rows)(const float *x, float *y, int64_t rows, int64_t n, bool use_log) {
  for (int64_t r = 0; r < rows; r++, x += n, y += n) {
    float mx = NAME(row_max)(x, n);
    if (mx == -INFINITY) /* every element -inf (or nan): the result is nan, as in PyTorch */
      mx = 0.0f;
    if (use_log) {
      double sum = NAME(exp_sum)(x, NULL, n, mx);
      NAME(sub2)(x, y, n, mx, (float)log(sum));
    } else {
      double sum = NAME(exp_sum)(x, y, n, mx);
      NAME(scale)(y, y, n, (float)(1.0 / sum));
    }
  }
}

/* softmax along n of x (n, inner), VW columns at a time: max, then the sum of exponentials
 * (stored to y unless log) per lane, then y normalized. */
VFN void NAME(softmax_cols)(const float *x, float *y, int64_t n, int64_t inner,
                            bool use_log) {
  for (int64_t c = 0; c < inner; c += VW) {
    int64_t w = inner - c < VW ? inner - c : VW;
    bool part = w < VW;
    VT mx = V_SET1(-INFINITY);
    for (int64_t k = 0; k < n; k++) {
      const float *p = x + k * inner + c;
      mx = V_MAX(part ? V_LOADN(p, w, -INFINITY) : V_LOAD(p), mx);
    }
    mx = V_ZERO_IF_NEGINF(mx);
    double total[VW];
    for (int l = 0; l < VW; l++)
      total[l] = 0.0;
    float lanes[VW];
    for (int64_t b0 = 0; b0 < n; b0 += KL_VEC_SUM_BLOCK) {
      int64_t b1 = n - b0 < KL_VEC_SUM_BLOCK ? n : b0 + KL_VEC_SUM_BLOCK;
      VT acc = V_ZERO();
      for (int64_t k = b0; k < b1; k++) {
        const float *p = x + k * inner + c;
        VT e = V_EXP(V_SUB(part ? V_LOADN(p, w, 0.0f) : V_LOAD(p), mx));
        if (!use_log) {
          if (part)
            V_STOREN(y + k * inner + c, e, w);
          else
            V_STORE(y + k * inner + c, e);
        }
        acc = V_ADD(acc, e);
      }
      V_STORE(lanes, acc);
      for (int l = 0; l < VW; l++)
        total[l] += (double)lanes[l];
    }
    for (int l = 0; l < VW; l++)
      lanes[l] = use_log ? (float)log(total[l]) : (float)(1.0 / total[l]);
    VT f = V_LOAD(lanes);
    for (int64_t k = 0; k < n; k++) {
      const float *p = x + k * inner + c;
      float *q = y + k * inner + c;
      VT v;
      if (use_log)
        v = V_SUB(V_SUB(part ? V_LOADN(p, w, 0.0f) : V_LOAD(p), mx), f);
      else
        v = V_MUL(part ? V_LOADN(q, w, 0.0f) : V_LOAD(q), f);
      if (part)
        V_STOREN(q, v, w);
      else
        V_STORE(q, v);
    }
  }
}

/* s (n) = s * scale (+ mask), dropped elements -inf, over [0, m->n_valid); returns the max. */
VFN float NAME(attention_scores)(float *s, float scale, const kl_vec_mask *m) {
  int64_t n = m->n_valid;
  VT vscale = V_SET1(scale), vadd = V_SET1(m->add_scalar), acc = V_SET1(-INFINITY);
  for (int64_t j = 0; j < n; j += VW) {
    int64_t w = n - j < VW ? n - j : VW;
    VT v = V_MUL(w < VW ? V_LOADN(s + j, w, 0.0f) : V_LOAD(s + j), vscale);
    if (m->add)
      v = V_ADD(v, w < VW ? V_LOADN(m->add + j, w, 0.0f) : V_LOAD(m->add + j));
    if (m->add_one)
      v = V_ADD(v, vadd);
    if (m->keep)
      v = V_KEEP(v, m->keep + j, w);
    if (w < VW) {
      V_STOREN(s + j, v, w);
      v = V_FILLN(v, w, -INFINITY);
    } else {
      V_STORE(s + j, v);
    }
    acc = V_MAX(v, acc);
  }
  return V_HMAX(acc);
}

VFN void NAME(attention_row)(float *s, int64_t n, float scale, const kl_vec_mask *m) {
  int64_t nv = m->n_valid < n ? m->n_valid : n;
  kl_vec_mask mm = *m;
  mm.n_valid = nv;
  float mx = NAME(attention_scores)(s, scale, &mm);
  if (mx == -INFINITY) /* every key dropped: 0/0 = nan below, as softmax gives */
    mx = 0.0f;
  double sum = NAME(exp_sum)(s, s, nv, mx);
  float inv = (float)(1.0 / sum);
  NAME(scale)(s, s, nv, inv);
  float dropped = 0.0f * inv; /* e^-inf / sum: 0, or nan when the sum is 0 or nan */
  for (int64_t j = nv; j < n; j++)
    s[j] = dropped;
}

/* ---- layer norm -------------------------------------------------------------------------- */

/* The plain sum of x (n). */
VFN double NAME(row_sum)(const float *x, int64_t n) {
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += KL_VEC_SUM_BLOCK) {
    int64_t b1 = n - b0 < KL_VEC_SUM_BLOCK ? n : b0 + KL_VEC_SUM_BLOCK;
    VT acc0 = V_ZERO(), acc1 = V_ZERO();
    int64_t j = b0;
    for (; j + 2 * VW <= b1; j += 2 * VW) {
      acc0 = V_ADD(acc0, V_LOAD(x + j));
      acc1 = V_ADD(acc1, V_LOAD(x + j + VW));
    }
    for (; j + VW <= b1; j += VW)
      acc0 = V_ADD(acc0, V_LOAD(x + j));
    if (j < b1)
      acc0 = V_ADD(acc0, V_LOADN(x + j, b1 - j, 0.0f));
    total += (double)V_HSUM(V_ADD(acc0, acc1));
  }
  return total;
}

/* The sums of d and d^2 over x (n), d = (x - mh) - ml. */
VFN void NAME(centred_sums)(const float *x, int64_t n, float mh, float ml, double *out_s1,
                            double *out_s2) {
  VT vh = V_SET1(mh), vl = V_SET1(ml);
  double s1 = 0.0, s2 = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += KL_VEC_SUM_BLOCK) {
    int64_t b1 = n - b0 < KL_VEC_SUM_BLOCK ? n : b0 + KL_VEC_SUM_BLOCK;
    VT a0 = V_ZERO(), a1 = V_ZERO(), q0 = V_ZERO(), q1 = V_ZERO();
    int64_t j = b0;
    for (; j + 2 * VW <= b1; j += 2 * VW) {
      VT d0 = V_SUB(V_SUB(V_LOAD(x + j), vh), vl);
      VT d1 = V_SUB(V_SUB(V_LOAD(x + j + VW), vh), vl);
      a0 = V_ADD(a0, d0), a1 = V_ADD(a1, d1);
      q0 = V_FMA(d0, d0, q0), q1 = V_FMA(d1, d1, q1);
    }
    for (; j < b1; j += VW) {
      int64_t w = b1 - j < VW ? b1 - j : VW;
      VT d = V_SUB(V_SUB(w < VW ? V_LOADN(x + j, w, 0.0f) : V_LOAD(x + j), vh), vl);
      if (w < VW) /* the lanes past the end hold -mh - ml: make them 0 */
        d = V_FILLN(d, w, 0.0f);
      a0 = V_ADD(a0, d);
      q0 = V_FMA(d, d, q0);
    }
    s1 += (double)V_HSUM(V_ADD(a0, a1));
    s2 += (double)V_HSUM(V_ADD(q0, q1));
  }
  *out_s1 = s1;
  *out_s2 = s2;
}

VFN void NAME(layer_norm_rows)(const float *x, float *y, int64_t rows, int64_t d,
                               const float *weight, const float *bias, double eps) {
  for (int64_t r = 0; r < rows; r++, x += d, y += d) {
    /* The corrected two-pass algorithm (Chan, Golub and LeVeque): a first mean m0 from f32
     * sums, then the sums of d = x - m0 and d^2, which move the mean to m0 + sum(d) / n and
     * give the variance about it; the f32 rounding of m0 then costs nothing. The mean is kept
     * as hi + lo floats: x - hi is exact for x near the mean, so centring loses nothing to
     * the mean's rounding when |mean| is large against the spread. */
    double m0 = NAME(row_sum)(x, d) / (double)d, s1, s2;
    float h0 = (float)m0;
    NAME(centred_sums)(x, d, h0, (float)(m0 - (double)h0), &s1, &s2);
    double mean = m0 + s1 / (double)d;
    double var = (s2 - s1 * s1 / (double)d) / (double)d;
    if (var < 0.0) /* by rounding; nan stays nan */
      var = 0.0;
    float mh = (float)mean, ml = (float)(mean - (double)mh);
    VT vh = V_SET1(mh), vl = V_SET1(ml), vinv = V_SET1((float)(1.0 / sqrt(var + eps)));
    for (int64_t j = 0; j < d; j += VW) {
      int64_t w = d - j < VW ? d - j : VW;
      bool part = w < VW;
      VT v = V_SUB(V_SUB(part ? V_LOADN(x + j, w, 0.0f) : V_LOAD(x + j), vh), vl);
      v = V_MUL(v, vinv);
      if (weight) {
        VT wv = part ? V_LOADN(weight + j, w, 0.0f) : V_LOAD(weight + j);
        v = bias ? V_FMA(v, wv, part ? V_LOADN(bias + j, w, 0.0f) : V_LOAD(bias + j))
                 : V_MUL(v, wv);
      } else if (bias) {
        v = V_ADD(v, part ? V_LOADN(bias + j, w, 0.0f) : V_LOAD(bias + j));
      }
      if (part)
        V_STOREN(y + j, v, w);
      else
        V_STORE(y + j, v);
    }
  }
}

VFN void NAME(affine)(const float *x, float *y, int64_t n, float a, float b) {
  VT va = V_SET1(a), vb = V_SET1(b);
  int64_t j = 0;
  for (; j + VW <= n; j += VW)
    V_STORE(y + j, V_FMA(V_LOAD(x + j), va, vb));
  if (j < n)
    V_STOREN(y + j, V_FMA(V_LOADN(x + j, n - j, 0.0f), va, vb), n - j);
}

static const kl_vec_f32_ops NAME(ops) = {
    .name = NAME_STR,
    .softmax_rows = NAME(softmax_rows),
    .softmax_cols = NAME(softmax_cols),
    .attention_row = NAME(attention_row),
    .layer_norm_rows = NAME(layer_norm_rows),
    .affine = NAME(affine),
};
