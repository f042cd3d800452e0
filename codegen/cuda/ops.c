/* The CUDA backend's kernels for the heavy and data-movement ops (the elementwise runs and the
 * graph walk are emit.c's): one kl_cuda_emit_* per kernel kind of ir/ops.def, each writing one
 * CUDA kernel with every shape a constant and recording its launch. matmul, linear and conv2d
 * take an optional elementwise epilogue (region_plan) computed from their accumulator. */
#include "cuda_internal.h"

/* permute: output coordinate i reads input dim perm[i]. */
kl_status kl_cuda_emit_permute(emitter *E, const kl_ir_node *n, const encoded *e,
                              const char *what) {
  kl_step_permute_params pp;
  memcpy(&pp, e->params, sizeof pp);
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (pp.rank != x->type.rank || pp.rank != y->type.rank)
    return kl_cuda_unsupported(n, "a permutation of another rank");
  int64_t ys[KL_MAX_RANK], xstride[KL_MAX_RANK];
  shape_of(&y->type, ys);
  int64_t st = 1;
  for (int d = x->type.rank - 1; d >= 0; d--) {
    xstride[d] = st;
    st *= x->type.dims[d].size;
  }
  const kl_ir_value *vals[2] = {x, y};
  int64_t total = numel_of(&y->type);
  kl_cuda_signature(E, what, vals, 2, 1);
  fprintf(E->src,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n",
          (long long)total);
  emit_coords(E->src, ys, pp.rank, "i", "c");
  fprintf(E->src, "    p1[i] = p0[0LL");
  for (int d = 0; d < pp.rank; d++)
    fprintf(E->src, " + c%d * %lldLL", d, (long long)xstride[pp.perm[d]]);
  fprintf(E->src, "];\n  }\n}\n\n");
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 2);
  return NULL;
}

/* The parameters of an anchor kernel (matmul, linear, conv2d) with an epilogue: its own four
 * (the output NULL when only the epilogue reads it), then the epilogue's inputs and outputs. */
static const kl_ir_value **anchor_vals(const kl_ir_value *const *own, const region_plan *epi,
                                       bool y_escapes, int *out_n) {
  int n = 4 + (epi ? epi->n_ins + epi->n_outs : 0);
  const kl_ir_value **vals = malloc((size_t)n * sizeof *vals);
  if (!vals)
    kl_fatal_oom();
  memcpy(vals, own, 4 * sizeof *vals);
  if (epi) {
    if (!y_escapes)
      vals[3] = NULL;
    for (int i = 0; i < epi->n_ins; i++)
      vals[4 + i] = epi->ins[i];
    for (int i = 0; i < epi->n_outs; i++)
      vals[4 + epi->n_ins + i] = epi->outs[i];
  }
  *out_n = n;
  return vals;
}

/* The end of an anchor kernel's per-element code: y's value `expr` at element i, stored and/or
 * fed to the epilogue. */
static kl_status anchor_store(FILE *f, const kl_ir_value *y, const char *expr,
                              const region_plan *epi, bool y_escapes) {
  if (!epi) {
    fprintf(f, "    p3[i] = %s;\n", expr);
    return NULL;
  }
  fprintf(f, "    const %s v%d = %s;\n", ctype(y->type.dtype), y->id, expr);
  if (y_escapes)
    fprintf(f, "    p3[i] = v%d;\n", y->id);
  return kl_cuda_region_code(f, epi, &y->type, 4);
}


#define TILE 16

/* matmul and linear: a 16x16 tiled shared-memory kernel, one batch matrix per blockIdx.z. */
kl_status kl_cuda_emit_gemm(emitter *E, const kl_ir_node *n, bool linear, const char *what,
                          const region_plan *epi, bool y_escapes) {
  const kl_ir_value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
  const kl_ir_value *bias = linear && n->n_inputs > 2 ? n->inputs[2] : NULL;
  kl_dtype dt = y->type.dtype;
  if (!is_float(dt) || a->type.dtype != dt || b->type.dtype != dt ||
      (bias && bias->type.dtype != dt))
    return kl_cuda_unsupported(n, "dtype %s (Float and Double only)", kl_dtype_ir_name(dt));
  const char *T = ctype(dt);
  int64_t M, N, K, nbatch = 1;
  int nb = 0;
  int64_t bshape[KL_MAX_RANK];
  bool b_vec = false;
  if (linear) {
    if (a->type.rank < 1 || b->type.rank != 2)
      return kl_cuda_unsupported(n, "input ranks %d and %d", a->type.rank, b->type.rank);
    K = a->type.dims[a->type.rank - 1].size;
    N = b->type.dims[0].size;
    M = K ? numel_of(&a->type) / K : 0;
  } else {
    int ar = a->type.rank, br = b->type.rank;
    if (ar < 1 || br < 1)
      return kl_cuda_unsupported(n, "a 0-d operand");
    M = ar >= 2 ? a->type.dims[ar - 2].size : 1;
    K = a->type.dims[ar - 1].size;
    N = br >= 2 ? b->type.dims[br - 1].size : 1;
    b_vec = br == 1;
    nb = y->type.rank - (ar >= 2) - (br >= 2);
    if (nb < 0)
      return kl_cuda_unsupported(n, "output rank %d", y->type.rank);
    for (int d = 0; d < nb; d++) {
      bshape[d] = y->type.dims[d].size;
      nbatch *= bshape[d];
    }
  }
  if (nbatch > 65535)
    return kl_cuda_unsupported(n, "more than 65535 batch matrices");
  const kl_ir_value *own[4] = {a, b, bias, y};
  int n_vals;
  const kl_ir_value **vals = anchor_vals(own, epi, y_escapes, &n_vals);
  E->out_pos = 3;
  kl_cuda_signature(E, what, vals, n_vals, epi ? epi->n_outs : 0);
  E->out_pos = -1;
  FILE *f = E->src;
  fprintf(f, "  __shared__ %s As[%d][%d], Bs[%d][%d];\n", T, TILE, TILE + 1, TILE, TILE + 1);
  fprintf(f, "  const long long M = %lldLL, N = %lldLL, K = %lldLL;\n", (long long)M,
          (long long)N, (long long)K);
  if (nb > 0) {
    emit_coords(f, bshape, nb, "(long long)blockIdx.z", "b");
    emit_batch_offset(f, "a", &a->type, a->type.rank >= 2 ? 2 : 1, nb);
    emit_batch_offset(f, "b", &b->type, b->type.rank >= 2 ? 2 : 1, nb);
  } else {
    fprintf(f, "  long long off_a = 0, off_b = 0;\n");
  }
  fprintf(f, "  long long off_y = (long long)blockIdx.z * M * N;\n");
  fprintf(f,
          "  int tx = threadIdx.x, ty = threadIdx.y;\n"
          "  long long row = (long long)blockIdx.y * %d + ty, col = (long long)blockIdx.x * %d + "
          "tx;\n"
          "  %s acc = 0;\n"
          "  for (long long k0 = 0; k0 < K; k0 += %d) {\n"
          "    long long ka = k0 + tx, kb = k0 + ty;\n"
          "    As[ty][tx] = (row < M && ka < K) ? p0[off_a + row * K + ka] : (%s)0;\n",
          TILE, TILE, T, TILE, T);
  if (linear)
    fprintf(f, "    Bs[ty][tx] = (kb < K && col < N) ? p1[col * K + kb] : (%s)0;\n", T);
  else if (b_vec)
    fprintf(f, "    Bs[ty][tx] = (kb < K && col < N) ? p1[off_b + kb] : (%s)0;\n", T);
  else
    fprintf(f, "    Bs[ty][tx] = (kb < K && col < N) ? p1[off_b + kb * N + col] : (%s)0;\n", T);
  fprintf(f,
          "    __syncthreads();\n"
          "    for (int kk = 0; kk < %d; kk++) acc += As[ty][kk] * Bs[kk][tx];\n"
          "    __syncthreads();\n"
          "  }\n"
          "  if (row < M && col < N) {\n"
          "    long long i = off_y + row * N + col;\n",
          TILE);
  kl_status s = anchor_store(f, y, bias ? "acc + p2[col]" : "acc", epi, y_escapes);
  fprintf(f, "  }\n}\n\n");
  kl_cuda_add_launch(E, what, (N + TILE - 1) / TILE > 0 ? (N + TILE - 1) / TILE : 1,
             (M + TILE - 1) / TILE > 0 ? (M + TILE - 1) / TILE : 1, nbatch, TILE, TILE, 0, vals,
             n_vals);
  free(vals);
  return s;
}

/* conv2d: one thread per output element, the reduction over (ci, kh, kw) in registers. */
kl_status kl_cuda_emit_conv2d(emitter *E, const kl_ir_node *n, const encoded *e,
                             const char *what, const region_plan *epi, bool y_escapes) {
  kl_step_conv2d_params cp;
  memcpy(&cp, e->params, sizeof cp);
  const kl_rt_conv2d_params *c = &cp.conv;
  const kl_ir_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  const kl_ir_value *bias = n->n_inputs > 2 ? n->inputs[2] : NULL;
  kl_dtype dt = y->type.dtype;
  if (!is_float(dt) || x->type.rank != 4 || w->type.rank != 4 || y->type.rank != 4)
    return kl_cuda_unsupported(n, "only 4-d Float/Double convolutions are generated");
  int64_t C = x->type.dims[1].size, H = x->type.dims[2].size, W = x->type.dims[3].size;
  int64_t Co = y->type.dims[1].size, Ho = y->type.dims[2].size, Wo = y->type.dims[3].size;
  int64_t Cg = w->type.dims[1].size, Kh = w->type.dims[2].size, Kw = w->type.dims[3].size;
  int64_t G = c->groups > 0 ? c->groups : 1;
  if (Cg * G != C || Co % G != 0)
    return kl_cuda_unsupported(n, "channels that do not match the groups");
  const kl_ir_value *own[4] = {x, w, bias, y};
  int n_vals;
  const kl_ir_value **vals = anchor_vals(own, epi, y_escapes, &n_vals);
  int64_t total = numel_of(&y->type);
  int64_t Cog = Co / G, HWo = Ho * Wo, Kg = Cg * Kh * Kw, NG = y->type.dims[0].size * G;
  E->out_pos = 3;
  kl_cuda_signature(E, what, vals, n_vals, epi ? epi->n_outs : 0);
  E->out_pos = -1;
  if (Cog >= TILE && NG <= 65535) {
    /* Implicit GEMM per (image, group): Y (Cog, Ho*Wo) = W (Cog, Cg*Kh*Kw) @ patches (Cg*Kh*Kw,
     * Ho*Wo), 16x16 tiles of both in shared memory, the patches gathered (zero padding) as
     * they are loaded. */
    const char *T = ctype(dt);
    fprintf(E->src,
            "  __shared__ %s As[%d][%d], Bs[%d][%d];\n"
            "  const long long M = %lldLL, N = %lldLL, K = %lldLL;\n"
            "  long long z = blockIdx.z, nn = z / %lldLL, g = z %% %lldLL;\n"
            "  const %s *wg = p1 + g * M * K;\n"
            "  const %s *xg = p0 + (nn * %lldLL + g * %lldLL) * %lldLL;\n"
            "  int tx = threadIdx.x, ty = threadIdx.y;\n"
            "  long long row = (long long)blockIdx.y * %d + ty;\n"
            "  long long col = (long long)blockIdx.x * %d + tx;\n"
            "  %s acc = 0;\n"
            "  for (long long k0 = 0; k0 < K; k0 += %d) {\n"
            "    long long ka = k0 + tx;\n"
            "    As[ty][tx] = (row < M && ka < K) ? wg[row * K + ka] : (%s)0;\n"
            "    long long kb = k0 + ty;\n"
            "    %s bv = 0;\n"
            "    if (kb < K && col < N) {\n"
            "      long long ci = kb / %lldLL, r = kb %% %lldLL;\n"
            "      long long kh = r / %lldLL, kw = r %% %lldLL;\n"
            "      long long ho = col / %lldLL, wo = col %% %lldLL;\n"
            "      long long hi = ho * %lldLL - %lldLL + kh * %lldLL;\n"
            "      long long wi = wo * %lldLL - %lldLL + kw * %lldLL;\n"
            "      if (hi >= 0 && hi < %lldLL && wi >= 0 && wi < %lldLL)\n"
            "        bv = xg[(ci * %lldLL + hi) * %lldLL + wi];\n"
            "    }\n"
            "    Bs[ty][tx] = bv;\n"
            "    __syncthreads();\n"
            "    for (int kk = 0; kk < %d; kk++) acc += As[ty][kk] * Bs[kk][tx];\n"
            "    __syncthreads();\n"
            "  }\n"
            "  if (row < M && col < N) {\n"
            "    long long co = g * M + row;\n"
            "    long long i = (nn * %lldLL + co) * N + col;\n",
            T, TILE, TILE + 1, TILE, TILE + 1, (long long)Cog, (long long)HWo, (long long)Kg,
            (long long)G, (long long)G, T, T, (long long)C, (long long)Cg, (long long)(H * W),
            TILE, TILE, T, TILE, T, T, (long long)(Kh * Kw), (long long)(Kh * Kw),
            (long long)Kw, (long long)Kw, (long long)Wo, (long long)Wo, (long long)c->stride[0],
            (long long)c->pad[0], (long long)c->dilation[0], (long long)c->stride[1],
            (long long)c->pad[1], (long long)c->dilation[1], (long long)H, (long long)W,
            (long long)H, (long long)W, TILE, (long long)Co);
    char expr[64];
    snprintf(expr, sizeof expr, "acc%s", bias ? " + p2[co]" : "");
    kl_status s = anchor_store(E->src, y, expr, epi, y_escapes);
    fprintf(E->src, "  }\n}\n\n");
    kl_cuda_add_launch(E, what, (HWo + TILE - 1) / TILE > 0 ? (HWo + TILE - 1) / TILE : 1,
                       (Cog + TILE - 1) / TILE, NG > 0 ? NG : 1, TILE, TILE, 0, vals, n_vals);
    free(vals);
    return s;
  }
  fprintf(E->src,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n"
          "    long long wo = i %% %lldLL, t = i / %lldLL;\n"
          "    long long ho = t %% %lldLL; t /= %lldLL;\n"
          "    long long co = t %% %lldLL, nn = t / %lldLL;\n"
          "    long long g = co / %lldLL;\n"
          "    %s acc = %s;\n"
          "    for (long long ci = 0; ci < %lldLL; ci++) {\n"
          "      const %s *xp = p0 + ((nn * %lldLL + g * %lldLL + ci) * %lldLL) * %lldLL;\n"
          "      const %s *wp = p1 + (co * %lldLL + ci) * %lldLL;\n"
          "      for (long long kh = 0; kh < %lldLL; kh++) {\n"
          "        long long hi = ho * %lldLL - %lldLL + kh * %lldLL;\n"
          "        if (hi < 0 || hi >= %lldLL) continue;\n"
          "        for (long long kw = 0; kw < %lldLL; kw++) {\n"
          "          long long wi = wo * %lldLL - %lldLL + kw * %lldLL;\n"
          "          if (wi < 0 || wi >= %lldLL) continue;\n"
          "          acc += xp[hi * %lldLL + wi] * wp[kh * %lldLL + kw];\n"
          "        }\n"
          "      }\n"
          "    }\n",
          (long long)total, (long long)Wo, (long long)Wo, (long long)Ho, (long long)Ho,
          (long long)Co, (long long)Co, (long long)(Co / G), ctype(dt), bias ? "p2[co]" : "0",
          (long long)Cg, ctype(dt), (long long)C, (long long)Cg, (long long)H, (long long)W,
          ctype(dt), (long long)Cg, (long long)(Kh * Kw), (long long)Kh, (long long)c->stride[0],
          (long long)c->pad[0], (long long)c->dilation[0], (long long)H, (long long)Kw,
          (long long)c->stride[1], (long long)c->pad[1], (long long)c->dilation[1], (long long)W,
          (long long)W, (long long)Kw);
  kl_status s = anchor_store(E->src, y, "acc", epi, y_escapes);
  fprintf(E->src, "  }\n}\n\n");
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, n_vals);
  free(vals);
  return s;
}

/* batch_norm (inference): channel dim 1. */
kl_status kl_cuda_emit_batch_norm(emitter *E, const kl_ir_node *n, const encoded *e,
                                 const char *what) {
  kl_step_batch_norm_params bp;
  memcpy(&bp, e->params, sizeof bp);
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (!is_float(y->type.dtype) || x->type.rank < 2 || n->n_inputs < 5 || !n->inputs[3] ||
      !n->inputs[4])
    return kl_cuda_unsupported(n, "a Float input of rank >= 2 with running statistics");
  int64_t C = x->type.dims[1].size, inner = 1;
  for (int d = 2; d < x->type.rank; d++)
    inner *= x->type.dims[d].size;
  const kl_ir_value *vals[6] = {x, n->inputs[1], n->inputs[2], n->inputs[3], n->inputs[4], y};
  int64_t total = numel_of(&y->type);
  const char *T = ctype(y->type.dtype);
  char eps[64];
  fmt_double(eps, sizeof eps, bp.eps);
  kl_cuda_signature(E, what, vals, 6, 1);
  fprintf(E->src,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n"
          "    long long c = (i / %lldLL) %% %lldLL;\n"
          "    %s v = (p0[i] - p3[c]) / k_sqrt(p4[c] + (%s)(%s));\n"
          "    p5[i] = v * %s + %s;\n"
          "  }\n}\n\n",
          (long long)total, (long long)inner, (long long)C, T, T, eps,
          n->inputs[1] ? "p1[c]" : "1", n->inputs[2] ? "p2[c]" : "0");
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 6);
  return NULL;
}

/* layer_norm: one block per row of the trailing normalized dims. */
kl_status kl_cuda_emit_layer_norm(emitter *E, const kl_ir_node *n, const encoded *e,
                                 const char *what) {
  kl_step_layer_norm_params lp;
  memcpy(&lp, e->params, sizeof lp);
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (y->type.dtype != KL_F32 || lp.n_norm_dims < 1 || lp.n_norm_dims > x->type.rank)
    return kl_cuda_unsupported(n, "a Float input");
  int64_t D = 1;
  for (int d = x->type.rank - lp.n_norm_dims; d < x->type.rank; d++)
    D *= x->type.dims[d].size;
  int64_t rows = D ? numel_of(&x->type) / D : 0;
  const kl_ir_value *w = n->n_inputs > 1 ? n->inputs[1] : NULL;
  const kl_ir_value *b = n->n_inputs > 2 ? n->inputs[2] : NULL;
  const kl_ir_value *vals[4] = {x, w, b, y};
  char eps[64];
  fmt_double(eps, sizeof eps, lp.eps);
  kl_cuda_signature(E, what, vals, 4, 1);
  fprintf(E->src,
          "  const long long D = %lldLL;\n"
          "  const float *xr = p0 + (long long)blockIdx.x * D;\n"
          "  float *yr = p3 + (long long)blockIdx.x * D;\n"
          "  float s = 0.0f;\n"
          "  for (long long j = threadIdx.x; j < D; j += blockDim.x) s += xr[j];\n"
          "  float mean = k_block_reduce(s, 0) / (float)D;\n"
          "  float q = 0.0f;\n"
          "  for (long long j = threadIdx.x; j < D; j += blockDim.x) {\n"
          "    float d = xr[j] - mean;\n"
          "    q += d * d;\n"
          "  }\n"
          "  float rstd = 1.0f / sqrtf(k_block_reduce(q, 0) / (float)D + (float)(%s));\n"
          "  for (long long j = threadIdx.x; j < D; j += blockDim.x)\n"
          "    yr[j] = (xr[j] - mean) * rstd%s%s;\n"
          "}\n\n",
          (long long)D, eps, w ? " * p1[j]" : "", b ? " + p2[j]" : "");
  kl_cuda_add_launch(E, what, rows > 0 ? rows : 1, 1, 1, 256, 1, 0, vals, 4);
  return NULL;
}

/* softmax / log_softmax along dim: one block per (outer, inner) row. */
kl_status kl_cuda_emit_softmax(emitter *E, const kl_ir_node *n, const encoded *e,
                              const char *what) {
  kl_step_softmax_params sp;
  memcpy(&sp, e->params, sizeof sp);
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (y->type.dtype != KL_F32 || x->type.dtype != KL_F32 || sp.dim < 0 ||
      sp.dim >= x->type.rank)
    return kl_cuda_unsupported(n, "a Float input");
  int64_t D = x->type.dims[sp.dim].size, inner = 1;
  for (int d = sp.dim + 1; d < x->type.rank; d++)
    inner *= x->type.dims[d].size;
  int64_t rows = D ? numel_of(&x->type) / D : 0;
  const kl_ir_value *vals[2] = {x, y};
  kl_cuda_signature(E, what, vals, 2, 1);
  fprintf(E->src,
          "  const long long D = %lldLL, inner = %lldLL;\n"
          "  long long r = blockIdx.x;\n"
          "  long long base = (r / inner) * D * inner + r %% inner;\n"
          "  float m = -(float)K_INF;\n"
          "  for (long long j = threadIdx.x; j < D; j += blockDim.x)\n"
          "    m = k_max(m, p0[base + j * inner]);\n"
          "  m = k_block_reduce(m, 1);\n"
          "  if (m == -(float)K_INF) m = 0.0f;\n"
          "  float s = 0.0f;\n"
          "  for (long long j = threadIdx.x; j < D; j += blockDim.x)\n"
          "    s += expf(p0[base + j * inner] - m);\n"
          "  s = k_block_reduce(s, 0);\n"
          "  for (long long j = threadIdx.x; j < D; j += blockDim.x) {\n"
          "    float v = p0[base + j * inner] - m;\n"
          "    p1[base + j * inner] = %s;\n"
          "  }\n"
          "}\n\n",
          (long long)D, (long long)inner, sp.log ? "v - logf(s)" : "expf(v) / s");
  kl_cuda_add_launch(E, what, rows > 0 ? rows : 1, 1, 1, 256, 1, 0, vals, 2);
  return NULL;
}

/* max_pool2d, avg_pool2d, adaptive_avg_pool2d: one thread per output element. */
kl_status kl_cuda_emit_pool(emitter *E, const kl_ir_node *n, const encoded *e, const char *kind,
                           const char *what) {
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (!is_float(y->type.dtype) || x->type.rank != 4 || y->type.rank != 4)
    return kl_cuda_unsupported(n, "only 4-d Float pooling is generated");
  int64_t H = x->type.dims[2].size, W = x->type.dims[3].size;
  int64_t Ho = y->type.dims[2].size, Wo = y->type.dims[3].size;
  int64_t total = numel_of(&y->type);
  const char *T = ctype(y->type.dtype);
  const kl_ir_value *vals[2] = {x, y};
  kl_cuda_signature(E, what, vals, 2, 1);
  FILE *f = E->src;
  fprintf(f,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n"
          "    long long wo = i %% %lldLL, t = i / %lldLL;\n"
          "    long long ho = t %% %lldLL, nc = t / %lldLL;\n"
          "    const %s *xp = p0 + nc * %lldLL;\n",
          (long long)total, (long long)Wo, (long long)Wo, (long long)Ho, (long long)Ho, T,
          (long long)(H * W));
  if (strcmp(kind, "adaptive_avg_pool2d") == 0) {
    fprintf(f,
            "    long long h0 = ho * %lldLL / %lldLL;\n"
            "    long long h1 = ((ho + 1) * %lldLL + %lldLL - 1) / %lldLL;\n"
            "    long long w0 = wo * %lldLL / %lldLL;\n"
            "    long long w1 = ((wo + 1) * %lldLL + %lldLL - 1) / %lldLL;\n"
            "    %s acc = 0;\n"
            "    for (long long h = h0; h < h1; h++)\n"
            "      for (long long w = w0; w < w1; w++) acc += xp[h * %lldLL + w];\n"
            "    p1[i] = acc / (%s)((h1 - h0) * (w1 - w0));\n  }\n}\n\n",
            (long long)H, (long long)Ho, (long long)H, (long long)Ho, (long long)Ho,
            (long long)W, (long long)Wo, (long long)W, (long long)Wo, (long long)Wo, T,
            (long long)W, T);
  } else {
    kl_step_pool2d_params pp;
    memcpy(&pp, e->params, sizeof pp);
    const kl_rt_pool2d_params *p = &pp.pool;
    bool is_max = strcmp(kind, "max_pool2d") == 0;
    fprintf(f,
            "    long long hs = ho * %lldLL - %lldLL, ws = wo * %lldLL - %lldLL;\n",
            (long long)p->stride[0], (long long)p->pad[0], (long long)p->stride[1],
            (long long)p->pad[1]);
    if (is_max) {
      fprintf(f,
              "    %s acc = -(%s)K_INF;\n"
              "    for (long long kh = 0; kh < %lldLL; kh++) {\n"
              "      long long h = hs + kh * %lldLL;\n"
              "      if (h < 0 || h >= %lldLL) continue;\n"
              "      for (long long kw = 0; kw < %lldLL; kw++) {\n"
              "        long long w = ws + kw * %lldLL;\n"
              "        if (w < 0 || w >= %lldLL) continue;\n"
              "        acc = k_max(acc, xp[h * %lldLL + w]);\n"
              "      }\n"
              "    }\n"
              "    p1[i] = acc;\n  }\n}\n\n",
              T, T, (long long)p->kernel[0], (long long)p->dilation[0], (long long)H,
              (long long)p->kernel[1], (long long)p->dilation[1], (long long)W, (long long)W);
    } else {
      fprintf(f,
              "    long long he = hs + %lldLL, we = ws + %lldLL;\n"
              "    if (he > %lldLL) he = %lldLL;\n"
              "    if (we > %lldLL) we = %lldLL;\n"
              "    long long full = (he - hs) * (we - ws);\n"
              "    long long h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;\n"
              "    long long h1 = he > %lldLL ? %lldLL : he, w1 = we > %lldLL ? %lldLL : we;\n"
              "    %s acc = 0;\n"
              "    for (long long h = h0; h < h1; h++)\n"
              "      for (long long w = w0; w < w1; w++) acc += xp[h * %lldLL + w];\n"
              "    long long cnt = %s;\n"
              "    p1[i] = cnt > 0 ? acc / (%s)cnt : (%s)0;\n  }\n}\n\n",
              (long long)p->kernel[0], (long long)p->kernel[1], (long long)(H + p->pad[2]),
              (long long)(H + p->pad[2]), (long long)(W + p->pad[3]),
              (long long)(W + p->pad[3]), (long long)H, (long long)H, (long long)W,
              (long long)W, T, (long long)W,
              p->count_include_pad ? "full" : "(h1 - h0) * (w1 - w0)", T, T);
    }
  }
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 2);
  return NULL;
}

/* reduce: one thread per output element, looping over the reduced elements. */
kl_status kl_cuda_emit_reduce(emitter *E, const kl_ir_node *n, const encoded *e,
                             const char *what) {
  kl_step_reduce_params rp;
  memcpy(&rp, e->params, sizeof rp);
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (!is_float(x->type.dtype) || y->type.dtype != x->type.dtype || rp.rank != x->type.rank)
    return kl_cuda_unsupported(n, "a Float input");
  int rank = x->type.rank;
  int64_t kept[KL_MAX_RANK], red[KL_MAX_RANK], kst[KL_MAX_RANK], rst[KL_MAX_RANK];
  int nk = 0, nr = 0;
  int64_t st = 1, R = 1;
  int64_t stride[KL_MAX_RANK];
  for (int d = rank - 1; d >= 0; d--) {
    stride[d] = st;
    st *= x->type.dims[d].size;
  }
  for (int d = 0; d < rank; d++) {
    if (rp.mask[d]) {
      red[nr] = x->type.dims[d].size;
      rst[nr++] = stride[d];
      R *= x->type.dims[d].size;
    } else {
      kept[nk] = x->type.dims[d].size;
      kst[nk++] = stride[d];
    }
  }
  int64_t total = numel_of(&y->type);
  const char *T = ctype(x->type.dtype);
  const char *acc_init = "0", *acc_step = "acc += v;", *fin = "acc";
  switch ((kl_rt_reduce_op)rp.op) {
  case KL_REDUCE_SUM: break;
  case KL_REDUCE_MEAN: fin = "acc / (double)R"; break;
  case KL_REDUCE_MAX: acc_init = "-K_INF"; acc_step = "acc = k_max<double>(acc, (double)v);"; break;
  case KL_REDUCE_MIN: acc_init = "K_INF"; acc_step = "acc = k_min<double>(acc, (double)v);"; break;
  case KL_REDUCE_PROD: acc_init = "1"; acc_step = "acc *= v;"; break;
  default: return kl_cuda_unsupported(n, "reduce op %d", (int)rp.op);
  }
  const kl_ir_value *vals[2] = {x, y};
  kl_cuda_signature(E, what, vals, 2, 1);
  FILE *f = E->src;
  fprintf(f,
          "  const long long R = %lldLL;\n"
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n",
          (long long)R, (long long)total);
  emit_coords(f, kept, nk, "i", "o");
  fprintf(f, "    long long base = 0LL");
  for (int d = 0; d < nk; d++)
    fprintf(f, " + o%d * %lldLL", d, (long long)kst[d]);
  fprintf(f, ";\n    double acc = %s;\n    for (long long r = 0; r < R; r++) {\n", acc_init);
  emit_coords(f, red, nr, "r", "q");
  fprintf(f, "    %s v = p0[base", T);
  for (int d = 0; d < nr; d++)
    fprintf(f, " + q%d * %lldLL", d, (long long)rst[d]);
  fprintf(f, "];\n      %s\n    }\n    p1[i] = (%s)(%s);\n  }\n}\n\n", acc_step, T, fin);
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 2);
  return NULL;
}


/* cat along dim: one thread per output element picks its input. */
kl_status kl_cuda_emit_cat(emitter *E, const kl_ir_node *n, const encoded *e, const char *what) {
  kl_step_dim_params dp;
  memcpy(&dp, e->params, sizeof dp);
  const kl_ir_value *y = n->outputs[0];
  if (dp.dim < 0 || dp.dim >= y->type.rank || n->n_inputs > 32)
    return kl_cuda_unsupported(n, "dim %d with %d inputs", dp.dim, n->n_inputs);
  int64_t outer, inner;
  around(&y->type, dp.dim, &outer, &inner);
  int64_t Dy = y->type.dims[dp.dim].size;
  const kl_ir_value *vals[33];
  for (int i = 0; i < n->n_inputs; i++)
    vals[i] = n->inputs[i];
  vals[n->n_inputs] = y;
  int64_t total = numel_of(&y->type);
  kl_cuda_signature(E, what, vals, n->n_inputs + 1, 1);
  FILE *f = E->src;
  fprintf(f,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n"
          "    long long in = i %% %lldLL, t = i / %lldLL;\n"
          "    long long c = t %% %lldLL, out = t / %lldLL;\n",
          (long long)total, (long long)inner, (long long)inner, (long long)Dy, (long long)Dy);
  int64_t off = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    int64_t Di = n->inputs[i]->type.dims[dp.dim].size;
    fprintf(f, "    %sif (c < %lldLL) p%d[i] = p%d[(out * %lldLL + c - %lldLL) * %lldLL + in];\n",
            i ? "else " : "", (long long)(off + Di), n->n_inputs, i, (long long)Di,
            (long long)off, (long long)inner);
    off += Di;
  }
  fprintf(f, "  }\n}\n\n");
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals,
                     n->n_inputs + 1);
  return NULL;
}

kl_status kl_cuda_emit_slice(emitter *E, const kl_ir_node *n, const encoded *e,
                            const char *what) {
  kl_step_slice_params sp;
  memcpy(&sp, e->params, sizeof sp);
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (sp.dim < 0 || sp.dim >= x->type.rank)
    return kl_cuda_unsupported(n, "dim %d", sp.dim);
  int64_t outer, inner;
  around(&y->type, sp.dim, &outer, &inner);
  int64_t Dy = y->type.dims[sp.dim].size, Dx = x->type.dims[sp.dim].size;
  int64_t total = numel_of(&y->type);
  const kl_ir_value *vals[2] = {x, y};
  kl_cuda_signature(E, what, vals, 2, 1);
  fprintf(E->src,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n"
          "    long long in = i %% %lldLL, t = i / %lldLL;\n"
          "    long long c = t %% %lldLL, out = t / %lldLL;\n"
          "    p1[i] = p0[(out * %lldLL + %lldLL + c * %lldLL) * %lldLL + in];\n"
          "  }\n}\n\n",
          (long long)total, (long long)inner, (long long)inner, (long long)Dy, (long long)Dy,
          (long long)Dx, (long long)sp.start, (long long)sp.step, (long long)inner);
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 2);
  return NULL;
}

/* split along dim: one copy kernel per output, from its offset along dim. */
kl_status kl_cuda_emit_split(emitter *E, const kl_ir_node *n, const encoded *e,
                            const char *what) {
  kl_step_dim_params dp;
  memcpy(&dp, e->params, sizeof dp);
  const kl_ir_value *x = n->inputs[0];
  if (dp.dim < 0 || dp.dim >= x->type.rank)
    return kl_cuda_unsupported(n, "dim %d", dp.dim);
  int64_t outer, inner, at = 0;
  around(&x->type, dp.dim, &outer, &inner);
  int64_t Dx = x->type.dims[dp.dim].size;
  for (int o = 0; o < n->n_outputs; o++) {
    const kl_ir_value *y = n->outputs[o];
    int64_t Dy = y->type.dims[dp.dim].size, total = numel_of(&y->type);
    const kl_ir_value *vals[2] = {x, y};
    kl_cuda_signature(E, what, vals, 2, 1);
    fprintf(E->src,
            "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
            "       i += (long long)gridDim.x * blockDim.x) {\n"
            "    long long in = i %% %lldLL, t = i / %lldLL;\n"
            "    long long c = t %% %lldLL, out = t / %lldLL;\n"
            "    p1[i] = p0[(out * %lldLL + %lldLL + c) * %lldLL + in];\n"
            "  }\n}\n\n",
            (long long)total, (long long)inner, (long long)inner, (long long)(Dy ? Dy : 1),
            (long long)(Dy ? Dy : 1), (long long)Dx, (long long)at, (long long)inner);
    kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 2);
    at += Dy;
  }
  return NULL;
}

/* gather along axis; an index out of range reads 0 (the kernel cannot report it). */
kl_status kl_cuda_emit_gather(emitter *E, const kl_ir_node *n, const encoded *e,
                             const char *what) {
  kl_step_gather_params gp;
  memcpy(&gp, e->params, sizeof gp);
  const kl_ir_value *x = n->inputs[0], *ix = n->inputs[1], *y = n->outputs[0];
  if (gp.axis < 0 || gp.axis >= x->type.rank ||
      (ix->type.dtype != KL_I64 && ix->type.dtype != KL_I32))
    return kl_cuda_unsupported(n, "axis %d with %s indices", gp.axis,
                               kl_dtype_ir_name(ix->type.dtype));
  int64_t outer, inner;
  around(&x->type, gp.axis, &outer, &inner);
  int64_t D = x->type.dims[gp.axis].size, NI = numel_of(&ix->type);
  int64_t total = numel_of(&y->type);
  const kl_ir_value *vals[3] = {x, ix, y};
  kl_cuda_signature(E, what, vals, 3, 1);
  fprintf(E->src,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n"
          "    long long in = i %% %lldLL, t = i / %lldLL;\n"
          "    long long j = t %% %lldLL, out = t / %lldLL;\n"
          "    long long k = (long long)p1[j];\n"
          "    if (%d && k < 0) k += %lldLL;\n"
          "    p2[i] = (k >= 0 && k < %lldLL) ? p0[(out * %lldLL + k) * %lldLL + in] : 0;\n"
          "  }\n}\n\n",
          (long long)total, (long long)inner, (long long)inner, (long long)NI, (long long)NI,
          gp.allow_negative ? 1 : 0, (long long)D, (long long)D, (long long)D, (long long)inner);
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 3);
  return NULL;
}

kl_status kl_cuda_emit_constant_pad(emitter *E, const kl_ir_node *n, const encoded *e,
                                   const char *what) {
  kl_step_constant_pad_params cp;
  memcpy(&cp, e->params, sizeof cp);
  const kl_ir_value *x = n->inputs[0], *y = n->outputs[0];
  if (cp.rank != x->type.rank)
    return kl_cuda_unsupported(n, "pads of another rank");
  int64_t ys[KL_MAX_RANK];
  shape_of(&y->type, ys);
  int64_t total = numel_of(&y->type);
  char val[64];
  fmt_double(val, sizeof val, cp.value);
  const kl_ir_value *vals[2] = {x, y};
  kl_cuda_signature(E, what, vals, 2, 1);
  FILE *f = E->src;
  fprintf(f,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n",
          (long long)total);
  emit_coords(f, ys, cp.rank, "i", "c");
  fprintf(f, "    long long off = 0; bool inside = true;\n");
  int64_t st = 1;
  for (int d = cp.rank - 1; d >= 0; d--) {
    int64_t nx = x->type.dims[d].size;
    fprintf(f,
            "    { long long s = c%d - %lldLL; if (s < 0 || s >= %lldLL) inside = false; "
            "off += s * %lldLL; }\n",
            d, (long long)cp.pad[2 * d], (long long)nx, (long long)st);
    st *= nx;
  }
  fprintf(f, "    p1[i] = inside ? p0[off] : (%s)(%s);\n  }\n}\n\n", ctype(y->type.dtype),
          val);
  kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 2);
  return NULL;
}

/* scaled_dot_product_attention: one block per (batch matrix, query row); the row's scores
 * live in dynamic shared memory. */
kl_status kl_cuda_emit_attention(emitter *E, const kl_ir_node *n, const encoded *e,
                                const char *what) {
  kl_step_attention_params ap;
  memcpy(&ap, e->params, sizeof ap);
  const kl_ir_value *q = n->inputs[0], *k = n->inputs[1], *v = n->inputs[2], *y = n->outputs[0];
  const kl_ir_value *mask = n->n_inputs > 3 ? n->inputs[3] : NULL;
  if (y->type.dtype != KL_F32 || q->type.dtype != KL_F32 || k->type.dtype != KL_F32 ||
      v->type.dtype != KL_F32 || q->type.rank < 2 || k->type.rank < 2 || v->type.rank < 2 ||
      y->type.rank < 2)
    return kl_cuda_unsupported(n, "Float operands of rank >= 2");
  if (mask && mask->type.dtype != KL_F32 && mask->type.dtype != KL_BOOL)
    return kl_cuda_unsupported(n, "a %s mask", kl_dtype_ir_name(mask->type.dtype));
  int nb = y->type.rank - 2;
  int64_t L = q->type.dims[q->type.rank - 2].size, Ed = q->type.dims[q->type.rank - 1].size;
  int64_t S = k->type.dims[k->type.rank - 2].size, Ev = v->type.dims[v->type.rank - 1].size;
  if (S * 4 > 40000)
    return kl_cuda_unsupported(n, "a key sequence of %lld (at most 10000)", (long long)S);
  int64_t bshape[KL_MAX_RANK], nbatch = 1;
  for (int d = 0; d < nb; d++) {
    bshape[d] = y->type.dims[d].size;
    nbatch *= bshape[d];
  }
  char scale[64];
  fmt_double(scale, sizeof scale, ap.scale);
  const kl_ir_value *vals[5] = {q, k, v, mask, y};
  kl_cuda_signature(E, what, vals, 5, 1);
  FILE *f = E->src;
  fprintf(f,
          "  extern __shared__ float sc[];\n"
          "  const long long L = %lldLL, Ed = %lldLL, S = %lldLL, Ev = %lldLL;\n"
          "  long long i = (long long)blockIdx.x %% L, z = (long long)blockIdx.x / L;\n",
          (long long)L, (long long)Ed, (long long)S, (long long)Ev);
  if (nb > 0) {
    emit_coords(f, bshape, nb, "z", "b");
    emit_batch_offset(f, "q", &q->type, 2, nb);
    emit_batch_offset(f, "k", &k->type, 2, nb);
    emit_batch_offset(f, "v", &v->type, 2, nb);
  } else {
    fprintf(f, "  long long off_q = 0, off_k = 0, off_v = 0;\n");
  }
  char moff[1024] = "0";
  if (mask) {
    /* the mask broadcasts against (batch..., L, S): coordinates b0.. then i, j */
    fprintf(f, "  long long b%d = i, b%d = 0;\n", nb, nb + 1);
    size_t at = 0;
    int64_t st = 1;
    int mr = mask->type.rank, out_rank = nb + 2;
    at += (size_t)snprintf(moff, sizeof moff, "0LL");
    for (int d = mr - 1; d >= 0; d--) {
      int od = d + (out_rank - mr);
      int64_t sz = mask->type.dims[d].size;
      if (sz != 1 && od != nb + 1 && at < sizeof moff)
        at += (size_t)snprintf(moff + at, sizeof moff - at, " + b%d * %lldLL", od,
                               (long long)st);
      if (sz != 1 && od == nb + 1 && at < sizeof moff)
        at += (size_t)snprintf(moff + at, sizeof moff - at, " + j * %lldLL", (long long)st);
      st *= sz;
    }
    fprintf(f, "  (void)b%d;\n", nb + 1);
  }
  fprintf(f,
          "  const float *qr = p0 + off_q + i * Ed;\n"
          "  float m = -(float)K_INF;\n"
          "  for (long long j = threadIdx.x; j < S; j += blockDim.x) {\n"
          "    const float *kr = p1 + off_k + j * Ed;\n"
          "    float s = 0.0f;\n"
          "    for (long long e = 0; e < Ed; e++) s += qr[e] * kr[e];\n"
          "    s *= (float)(%s);\n",
          scale);
  if (mask && mask->type.dtype == KL_BOOL)
    fprintf(f, "    if (!p3[%s]) s = -(float)K_INF;\n", moff);
  else if (mask)
    fprintf(f, "    s += p3[%s];\n", moff);
  if (ap.is_causal)
    fprintf(f, "    if (j > i) s = -(float)K_INF;\n");
  fprintf(f,
          "    sc[j] = s;\n"
          "    m = k_max(m, s);\n"
          "  }\n"
          "  m = k_block_reduce(m, 1);\n"
          "  if (m == -(float)K_INF) m = 0.0f;\n"
          "  float sum = 0.0f;\n"
          "  for (long long j = threadIdx.x; j < S; j += blockDim.x) {\n"
          "    float w = expf(sc[j] - m);\n"
          "    sc[j] = w;\n"
          "    sum += w;\n"
          "  }\n"
          "  sum = k_block_reduce(sum, 0);\n"
          "  __syncthreads();\n"
          "  float *yr = p4 + z * L * Ev + i * Ev;\n"
          "  for (long long e = threadIdx.x; e < Ev; e += blockDim.x) {\n"
          "    float acc = 0.0f;\n"
          "    for (long long j = 0; j < S; j++) acc += sc[j] * p2[off_v + j * Ev + e];\n"
          "    yr[e] = acc / sum;\n"
          "  }\n"
          "}\n\n");
  kl_cuda_add_launch(E, what, nbatch * L > 0 ? nbatch * L : 1, 1, 1, 128, 1,
                     (S > 0 ? S : 1) * 4, vals, 5);
  return NULL;
}
