/* ONNX import of the reductions and indexing ops added for issue 4: ReduceProd, CumSum,
 * ScatterElements (and the older Scatter), ScatterND, GatherND, each one IR op, and Einsum,
 * written at import as diagonals (permute, reshape, strided slice), sums, permutes, reshapes
 * and batched matmuls. Einsum needs static shapes; its equation may use "..." and the implicit
 * output form. The op table in onnx_import_ops.c points here. */
#include <stdio.h>
#include <string.h>

#include "../../runtime/checked.h"
#include "onnx_internal.h"

/* ---- one IR op each ---------------------------------------------------------------------- */

/* Axes from the attribute before opset 18, from input 1 after. aten::prod of integers is Long;
 * ONNX keeps the input's type, so a cast follows. */
kl_status kl_onnx_map_reduce_prod(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int64_t axes[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_axes_of(c, 18, axes, &n));
  if (n <= 0 && kl_onnx_attr_int(c, "noop_with_empty_axes", 0)) {
    c->out[0] = x;
    return NULL;
  }
  bool keep = kl_onnx_attr_int(c, "keepdims", 1) != 0;
  kl_ir_value *y;
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_PROD, x, axes, n, keep, &y));
  return kl_onnx_cast(c, y, x->type.dtype, &c->out[0]);
}

/* CumSum(x, axis): axis a constant scalar input. */
kl_status kl_onnx_map_cumsum(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int64_t axis;
  int n;
  if (!kl_onnx_input(c, 1))
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 1 (axis) is missing");
  KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, &axis, 1, &n));
  if (n != 1)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "input 1 (axis) must hold one integer");
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CUMSUM, &x, 1, &node));
  kl_ir_node_set_int(node, "dim", axis);
  if (kl_onnx_attr_int(c, "exclusive", 0))
    kl_ir_node_set_int(node, "exclusive", 1);
  if (kl_onnx_attr_int(c, "reverse", 0))
    kl_ir_node_set_int(node, "reverse", 1);
  return kl_onnx_finish(c, node, &c->out[0]);
}

/* data, indices, updates: all three must be given. */
static kl_status need3(kl_onnx_node_ctx *c, kl_ir_value **out) {
  static const char *const names[] = {"data", "indices", "updates"};
  for (int i = 0; i < 3; i++)
    if (!(out[i] = kl_onnx_input(c, i)))
      return kl_onnx_node_error(c, KL_ERR_FORMAT, "input %d (%s) is missing", i, names[i]);
  return NULL;
}

/* ScatterElements (and Scatter, opsets 9-10, which has no reduction) -> aten::scatter. */
kl_status kl_onnx_map_scatter_elements(kl_onnx_node_ctx *c) {
  kl_ir_value *in[3];
  KL_RETURN_IF_ERROR(need3(c, in));
  char buf[16];
  const char *reduction = kl_onnx_attr_string(c, "reduction", "none", buf, sizeof buf);
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_SCATTER, in, 3, &node));
  kl_ir_node_set_int(node, "dim", kl_onnx_attr_int(c, "axis", 0));
  if (strcmp(reduction, "none"))
    kl_ir_node_set_string(node, "reduce", reduction);
  return kl_onnx_finish(c, node, &c->out[0]);
}

kl_status kl_onnx_map_scatter_nd(kl_onnx_node_ctx *c) {
  kl_ir_value *in[3];
  KL_RETURN_IF_ERROR(need3(c, in));
  char buf[16];
  const char *reduction = kl_onnx_attr_string(c, "reduction", "none", buf, sizeof buf);
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_SCATTER_ND, in, 3, &node));
  if (strcmp(reduction, "none"))
    kl_ir_node_set_string(node, "reduction", reduction);
  return kl_onnx_finish(c, node, &c->out[0]);
}

kl_status kl_onnx_map_gather_nd(kl_onnx_node_ctx *c) {
  kl_ir_value *in[2] = {kl_onnx_input(c, 0), kl_onnx_input(c, 1)};
  if (!in[0] || !in[1])
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input %d is missing", in[0] ? 1 : 0);
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_GATHER_ND, in, 2, &node));
  int64_t batch_dims = kl_onnx_attr_int(c, "batch_dims", 0);
  if (batch_dims)
    kl_ir_node_set_int(node, "batch_dims", batch_dims);
  return kl_onnx_finish(c, node, &c->out[0]);
}

/* ---- Einsum ------------------------------------------------------------------------------ */

/* Labels: 'A'..'Z' are 0..25 and 'a'..'z' 26..51 (so label order is ASCII order, as the
 * implicit output sorts them); the dims "..." stands for are ELL + j, right-aligned across
 * operands so that broadcast dims share a label. */
enum { ELL = 64, N_LABELS = ELL + KL_MAX_RANK };

/* An operand on the way: its value, and its dims' labels and sizes. */
typedef struct einsum_term {
  kl_ir_value *v;
  int rank;
  int label[KL_MAX_RANK];
  int64_t size[KL_MAX_RANK];
} einsum_term;

static int label_of(char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return 26 + ch - 'a';
  return -1;
}

/* Parses one side's term s[0..len) into labels; *out_ell is the position of "..." among the
 * labels (-1: none) and *out_n the count of letters. */
static kl_status parse_term(kl_onnx_node_ctx *c, const char *s, size_t len, int *labels,
                            int *out_n, int *out_ell) {
  int n = 0;
  *out_ell = -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '.') {
      if (*out_ell >= 0 || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
        return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT,
                                  "equation: a term has a stray '.' or two ellipses");
      *out_ell = n;
      i += 2;
      continue;
    }
    int l = label_of(s[i]);
    if (l < 0)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT,
                                "equation: '%c' is not a letter, ',', '->' or '...'", s[i]);
    if (n >= KL_MAX_RANK)
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "equation: a term has more than %d labels",
                                KL_MAX_RANK);
    labels[n++] = l;
  }
  *out_n = n;
  return NULL;
}

/* Takes the diagonal over the dims p < q of t (equal labels): moves them last, merges them and
 * keeps every (n+1)-th element. */
static kl_status take_diagonal(kl_onnx_node_ctx *c, einsum_term *t, int p, int q) {
  int64_t n = t->size[p], perm[KL_MAX_RANK], shape[KL_MAX_RANK];
  if (t->size[q] != n)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT,
                              "equation: a repeated label has sizes %lld and %lld",
                              (long long)n, (long long)t->size[q]);
  einsum_term r = {.rank = 0};
  for (int d = 0; d < t->rank; d++)
    if (d != p && d != q) {
      perm[r.rank] = d;
      shape[r.rank] = t->size[d];
      r.label[r.rank] = t->label[d];
      r.size[r.rank++] = t->size[d];
    }
  perm[r.rank] = p;
  perm[r.rank + 1] = q;
  int64_t nn;
  if (!kl_mul_i64(n, n, &nn))
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "equation: a diagonal is too large");
  shape[r.rank] = nn;
  KL_RETURN_IF_ERROR(kl_onnx_permute(c, t->v, perm, t->rank, &r.v));
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, r.v, shape, r.rank + 1, &r.v));
  KL_RETURN_IF_ERROR(kl_onnx_slice(c, r.v, r.rank, 0, nn, n + 1, &r.v));
  r.label[r.rank] = t->label[p];
  r.size[r.rank++] = n;
  *t = r;
  return NULL;
}

/* Sums t over the dims whose labels are not in keep. */
static kl_status sum_unneeded(kl_onnx_node_ctx *c, einsum_term *t, const bool *keep) {
  int64_t dims[KL_MAX_RANK];
  int n = 0;
  einsum_term r = *t;
  r.rank = 0;
  for (int d = 0; d < t->rank; d++) {
    if (keep[t->label[d]]) {
      r.label[r.rank] = t->label[d];
      r.size[r.rank++] = t->size[d];
    } else {
      dims[n++] = d;
    }
  }
  if (n == 0)
    return NULL;
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_SUM, t->v, dims, n, false, &r.v));
  KL_RETURN_IF_ERROR(kl_onnx_cast(c, r.v, t->v->type.dtype, &r.v));
  *t = r;
  return NULL;
}

/* Permutes t so its labels read in the order of want (n labels, all in t) and reshapes it to
 * sizes (m entries); m < 0 skips the reshape. */
static kl_status arrange(kl_onnx_node_ctx *c, einsum_term *t, const int *want, int n,
                         const int64_t *sizes, int m) {
  int64_t perm[KL_MAX_RANK];
  bool moved = false;
  for (int i = 0; i < n; i++) {
    perm[i] = -1;
    for (int d = 0; d < t->rank; d++)
      if (t->label[d] == want[i])
        perm[i] = d;
    if (perm[i] < 0)
      return kl_onnx_node_error(c, KL_ERR_INTERNAL, "einsum: a label was lost");
    moved |= perm[i] != i;
  }
  if (moved)
    KL_RETURN_IF_ERROR(kl_onnx_permute(c, t->v, perm, n, &t->v));
  if (m >= 0)
    KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, t->v, sizes, m, &t->v));
  return NULL;
}

/* Contracts a with b over the labels they share that need is false for: a (batch, a_only,
 * contracted) @ b (batch, contracted, b_only) as one batched matmul. */
static kl_status contract(kl_onnx_node_ctx *c, einsum_term *a, einsum_term *b, const bool *need) {
  bool in_a[N_LABELS] = {false}, in_b[N_LABELS] = {false};
  int64_t size_of[N_LABELS] = {0};
  for (int d = 0; d < a->rank; d++)
    in_a[a->label[d]] = true, size_of[a->label[d]] = a->size[d];
  for (int d = 0; d < b->rank; d++) {
    in_b[b->label[d]] = true;
    int64_t s = b->size[d];
    if (in_a[b->label[d]] && size_of[b->label[d]] != s && size_of[b->label[d]] != 1 && s != 1)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT,
                                "equation: a label has sizes %lld and %lld",
                                (long long)size_of[b->label[d]], (long long)s);
    if (!in_a[b->label[d]] || size_of[b->label[d]] == 1)
      size_of[b->label[d]] = s;
  }
  int batch[KL_MAX_RANK], aonly[KL_MAX_RANK], bonly[KL_MAX_RANK], con[KL_MAX_RANK];
  int nb = 0, na = 0, nbo = 0, nc = 0;
  for (int d = 0; d < a->rank; d++) {
    int l = a->label[d];
    if (!in_b[l])
      aonly[na++] = l;
    else if (need[l])
      batch[nb++] = l;
    else
      con[nc++] = l;
  }
  for (int d = 0; d < b->rank; d++)
    if (!in_a[b->label[d]])
      bonly[nbo++] = b->label[d];
  if (nb + 2 > KL_MAX_RANK || nb + na + nbo > KL_MAX_RANK)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "einsum: too many dims for one product");
  int64_t m = 1, k = 1, n = 1, shape[KL_MAX_RANK];
  for (int i = 0; i < na; i++)
    m *= size_of[aonly[i]];
  for (int i = 0; i < nc; i++)
    k *= size_of[con[i]];
  for (int i = 0; i < nbo; i++)
    n *= size_of[bonly[i]];
  /* a -> (a's batch sizes, m, k) */
  int order[KL_MAX_RANK], no = 0;
  for (int i = 0; i < nb; i++) {
    order[no] = batch[i];
    for (int d = 0; d < a->rank; d++)
      if (a->label[d] == batch[i])
        shape[no] = a->size[d];
    no++;
  }
  for (int i = 0; i < na; i++)
    order[no++] = aonly[i];
  for (int i = 0; i < nc; i++)
    order[no++] = con[i];
  shape[nb] = m;
  shape[nb + 1] = k;
  KL_RETURN_IF_ERROR(arrange(c, a, order, no, shape, nb + 2));
  /* b -> (b's batch sizes, k, n) */
  no = 0;
  for (int i = 0; i < nb; i++) {
    order[no] = batch[i];
    for (int d = 0; d < b->rank; d++)
      if (b->label[d] == batch[i])
        shape[no] = b->size[d];
    no++;
  }
  for (int i = 0; i < nc; i++)
    order[no++] = con[i];
  for (int i = 0; i < nbo; i++)
    order[no++] = bonly[i];
  shape[nb] = k;
  shape[nb + 1] = n;
  KL_RETURN_IF_ERROR(arrange(c, b, order, no, shape, nb + 2));
  einsum_term r = {.rank = 0};
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MATMUL, a->v, b->v, &r.v));
  for (int i = 0; i < nb; i++)
    r.label[r.rank] = batch[i], r.size[r.rank++] = size_of[batch[i]];
  for (int i = 0; i < na; i++)
    r.label[r.rank] = aonly[i], r.size[r.rank++] = size_of[aonly[i]];
  for (int i = 0; i < nbo; i++)
    r.label[r.rank] = bonly[i], r.size[r.rank++] = size_of[bonly[i]];
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, r.v, r.size, r.rank, &r.v));
  *a = r;
  return NULL;
}

kl_status kl_onnx_map_einsum(kl_onnx_node_ctx *c) {
  char eq[256], buf[256];
  const char *raw = kl_onnx_attr_string(c, "equation", NULL, buf, sizeof buf);
  if (!raw)
    return kl_onnx_missing_attr(c, "equation");
  if (strlen(raw) >= sizeof buf - 1)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "equation is longer than %d characters",
                              (int)sizeof buf - 2);
  size_t len = 0;
  for (const char *s = raw; *s && len + 1 < sizeof eq; s++)
    if (*s != ' ')
      eq[len++] = *s;
  eq[len] = '\0';
  const char *arrow = strstr(eq, "->");
  size_t lhs_len = arrow ? (size_t)(arrow - eq) : len;
  int n_terms = c->n_in;
  if (n_terms < 1 || n_terms > 8)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "einsum of %d operands (1 to 8 supported)",
                              n_terms);
  einsum_term t[8];
  int ell_pos[8], n_letters[8], ell_rank = 0;
  size_t start = 0;
  for (int i = 0; i < n_terms; i++) {
    size_t end = start;
    while (end < lhs_len && eq[end] != ',')
      end++;
    if ((end == lhs_len) != (i == n_terms - 1))
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT,
                                "equation '%s' does not have %d terms", raw, n_terms);
    KL_RETURN_IF_ERROR(parse_term(c, eq + start, end - start, t[i].label, &n_letters[i],
                                  &ell_pos[i]));
    if (!(t[i].v = kl_onnx_input(c, i)))
      return kl_onnx_node_error(c, KL_ERR_FORMAT, "input %d is missing", i);
    KL_RETURN_IF_ERROR(kl_onnx_need_static(c, t[i].v, t[i].size));
    t[i].rank = t[i].v->type.rank;
    int e = t[i].rank - n_letters[i];
    if (e < 0 || (e > 0 && ell_pos[i] < 0))
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "input %d has rank %d but term %d "
                                "of '%s' names %d dims", i, t[i].rank, i, raw, n_letters[i]);
    if (e > ell_rank)
      ell_rank = e;
    start = end + 1;
  }
  /* spell out each "...", right-aligned */
  for (int i = 0; i < n_terms; i++) {
    if (ell_pos[i] < 0)
      continue;
    int e = t[i].rank - n_letters[i], labels[KL_MAX_RANK], n = 0;
    for (int j = 0; j < n_letters[i] + 1; j++) {
      if (j == ell_pos[i])
        for (int k = 0; k < e; k++)
          labels[n++] = ELL + ell_rank - e + k;
      if (j < n_letters[i])
        labels[n++] = t[i].label[j];
    }
    memcpy(t[i].label, labels, sizeof labels);
  }
  int count[N_LABELS] = {0}, out[KL_MAX_RANK], n_out = 0;
  for (int i = 0; i < n_terms; i++)
    for (int d = 0; d < t[i].rank; d++)
      count[t[i].label[d]]++;
  if (arrow) {
    int ell;
    KL_RETURN_IF_ERROR(parse_term(c, arrow + 2, strlen(arrow + 2), out, &n_out, &ell));
    if (ell >= 0) {
      if (n_out + ell_rank > KL_MAX_RANK)
        return kl_onnx_node_error(c, KL_ERR_LIMIT, "equation: the output has too many dims");
      memmove(out + ell + ell_rank, out + ell, (size_t)(n_out - ell) * sizeof *out);
      for (int k = 0; k < ell_rank; k++)
        out[ell + k] = ELL + k;
      n_out += ell_rank;
    }
  } else {
    for (int k = 0; k < ell_rank; k++)
      out[n_out++] = ELL + k;
    for (int l = 0; l < ELL; l++)
      if (count[l] == 1 && n_out < KL_MAX_RANK)
        out[n_out++] = l;
  }
  bool in_out[N_LABELS] = {false};
  for (int i = 0; i < n_out; i++) {
    if (in_out[out[i]] || !count[out[i]])
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "equation '%s': an output label is "
                                "repeated or names no input dim", raw);
    in_out[out[i]] = true;
  }
  /* per operand: diagonals, then sums over labels no one else needs */
  for (int i = 0; i < n_terms; i++) {
    for (bool again = true; again;) {
      again = false;
      for (int p = 0; p < t[i].rank && !again; p++)
        for (int q = p + 1; q < t[i].rank && !again; q++)
          if (t[i].label[p] == t[i].label[q]) {
            KL_RETURN_IF_ERROR(take_diagonal(c, &t[i], p, q));
            again = true;
          }
    }
    bool keep[N_LABELS];
    for (int l = 0; l < N_LABELS; l++)
      keep[l] = in_out[l];
    for (int j = 0; j < n_terms; j++)
      for (int d = 0; j != i && d < t[j].rank; d++)
        keep[t[j].label[d]] = true;
    KL_RETURN_IF_ERROR(sum_unneeded(c, &t[i], keep));
  }
  /* fold left to right; a label is needed while the output or a later operand has it */
  for (int i = 1; i < n_terms; i++) {
    bool need[N_LABELS];
    for (int l = 0; l < N_LABELS; l++)
      need[l] = in_out[l];
    for (int j = i + 1; j < n_terms; j++)
      for (int d = 0; d < t[j].rank; d++)
        need[t[j].label[d]] = true;
    KL_RETURN_IF_ERROR(contract(c, &t[0], &t[i], need));
  }
  KL_RETURN_IF_ERROR(sum_unneeded(c, &t[0], in_out));
  if (t[0].rank != n_out)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "equation '%s': the output labels "
                              "do not match the inputs", raw);
  KL_RETURN_IF_ERROR(arrange(c, &t[0], out, n_out, NULL, -1));
  c->out[0] = t[0].v;
  return NULL;
}
