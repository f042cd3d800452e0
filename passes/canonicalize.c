/* canonicalize: local rewrites that make a graph smaller without changing what it computes,
 * repeated until none applies, so that later passes (folding, CSE, fusion) see one spelling of
 * each computation. The rules, each checked on one node and its producer:
 *
 *   identities     inference dropout; aten::to to the input's dtype; reshape, flatten, squeeze,
 *                  unsqueeze and expand whose output type is the input's (static dims or named
 *                  symbols, no unknown dims); permute and transpose by the identity; slice over
 *                  a whole dim with step 1
 *   shape chains   any chain of reshape/flatten/squeeze/unsqueeze becomes one reshape of the
 *                  chain's input (static shapes only)
 *   permute chains permute/transpose of permute/transpose becomes one permute, or none
 *   arithmetic     x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1 become x when the constant is all
 *                  ones or zeros, the output type equals x's, and the constant's shape
 *                  broadcasts into x's (broadcasting could otherwise change the shape)
 *   cast chains    to(to(x, A), B) becomes to(x, B) when every value of x's dtype is exact in
 *                  A (a widening first cast: see cast_is_exact), so the second cast alone sees
 *                  the same values
 *   deferred nodes onnx::Deferred (an ONNX node whose mapping needed values known only at run
 *                  time) is expanded into its static ops by the expander its frontend
 *                  registered (ir/ops.h) once the inputs it reads are constants or the shapes
 *                  it needs are static; types are then inferred again, so the values that
 *                  were unknown at import become static. Without an expander, or while the
 *                  values are still unknown, the node stays (the interpreter expands it).
 *                  While deferred nodes remain, constants are folded between sweeps
 *                  (fold-constants), so that shape arithmetic feeding one (Shape of an
 *                  expanded node, Sub, Div) becomes the constant it reads
 *
 * A removed node's output name survives where it can: a merged node takes over the name of the
 * node it replaces, and a graph output replaced by an existing value renames that value unless
 * it is a graph input or already another graph output. Sub-blocks are visited too. */
#include "../ir/op_params.h"
#include "pass_internal.h"

#define MAX_ROUNDS 64 /* every rule shrinks the graph; the cap only guards against a bug */

/* ---- small queries -------------------------------------------------------------------- */

static bool is_top_return(const kl_ir_graph *g, const kl_ir_value *v) {
  for (int i = 0; i < v->n_uses; i++)
    if (!v->uses[i].user && v->uses[i].block == g->top)
      return true;
  return false;
}

static bool is_graph_input(const kl_ir_graph *g, const kl_ir_value *v) {
  return !v->node && v->block == g->top;
}

/* Whether v is a constant whose every element equals want (0 or 1) and whose shape broadcasts
 * into x's without growing it: each of its dims, right-aligned, is 1 or x's static size. -0.0
 * counts as zero: x + (-0.0) is x exactly, and x + 0.0 differs from x only in a zero's sign. */
static bool constant_all(const kl_ir_graph *g, const kl_ir_value *v, double want,
                         const kl_ir_value *x) {
  const kl_tensor *t = kl_pass_constant_tensor(g, v);
  if (!t || t->dtype == KL_BOOL || t->dtype != x->type.dtype || t->rank > x->type.rank)
    return false;
  for (int i = 1; i <= t->rank; i++) {
    kl_ir_dim xd = x->type.dims[x->type.rank - i];
    int64_t c = t->shape[t->rank - i];
    if (c != 1 && !(kl_ir_dim_is_static(xd) && xd.size == c))
      return false;
  }
  for (int64_t i = 0; i < t->numel; i++)
    if (kl_dtype_load_f64(t->dtype, t->data, (size_t)i) != want)
      return false;
  return true;
}

static bool is_static_type(const kl_ir_value *v) { return kl_ir_type_is_static(&v->type); }

/* Whether every dim of v is a number or a named symbol: two such types that are equal have the
 * same shape at run time, which two unknown ('*') dims need not. */
static bool is_known_type(const kl_ir_value *v) {
  for (int d = 0; d < v->type.rank; d++)
    if (v->type.dims[d].sym == KL_DIM_UNKNOWN)
      return false;
  return true;
}

static bool same_type(const kl_ir_value *a, const kl_ir_value *b) {
  return kl_ir_type_equal(&a->type, &b->type);
}

/* ---- rewriting helpers ---------------------------------------------------------------- */

/* Removes the producer of v if nothing uses v any more (a chain's middle link). */
static void remove_if_dead(kl_ir_value *v) {
  kl_ir_node *def = v->node;
  if (!def || def->n_blocks > 0 || def->op == KL_OP_PARAM)
    return;
  for (int i = 0; i < def->n_outputs; i++)
    if (def->outputs[i]->n_uses > 0)
      return;
  kl_ir_node_remove(def);
}

/* Replaces n (one output) by an existing value repl and removes n. When n's output is a graph
 * output, repl takes over its name unless repl is a graph input or another graph output. */
static void replace_by_value(kl_ir_graph *g, kl_ir_node *n, kl_ir_value *repl) {
  kl_ir_value *out = n->outputs[0];
  const char *name = out->name; /* arena string: outlives the rename */
  bool rename = is_top_return(g, out) && !is_graph_input(g, repl) && !is_top_return(g, repl);
  kl_ir_value_replace_all_uses(out, repl);
  kl_ir_node_remove(n);
  if (rename)
    kl_ir_value_set_name(repl, name);
}

/* Replaces n (one output) by the new node fresh, inserted before n; fresh's output takes n's
 * output name and its uses. */
static void replace_by_node(kl_ir_node *n, kl_ir_node *fresh) {
  kl_ir_value *out = n->outputs[0], *repl = fresh->outputs[0];
  kl_ir_node_insert_before(fresh, n);
  repl->type = out->type;
  const char *name = out->name;
  kl_ir_value_set_name(out, NULL);
  kl_ir_value_set_name(repl, name);
  kl_ir_value_replace_all_uses(out, repl);
  kl_ir_value *input = n->inputs[0];
  kl_ir_node_remove(n);
  remove_if_dead(input);
}

/* ---- identities ----------------------------------------------------------------------- */

/* Whether aten::slice n leaves its input as it is: step 1 over the whole dim. */
static bool slice_is_identity(const kl_ir_node *n) {
  const kl_ir_type *x = &n->inputs[0]->type;
  if (kl_ir_node_int(n, "step", 1) != 1 || !same_type(n->inputs[0], n->outputs[0]))
    return false;
  int64_t shape[KL_MAX_RANK];
  for (int d = 0; d < x->rank; d++)
    shape[d] = kl_ir_dim_is_static(x->dims[d]) ? x->dims[d].size : 0;
  int dim;
  int64_t start, step, len;
  kl_status s = kl_ir_slice_params(n, x->rank, shape, &dim, &start, &step, &len);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  if (kl_ir_dim_is_static(x->dims[dim]))
    return start == 0 && len == shape[dim];
  /* A dim of unknown size: only the literal [0:end] slice is surely all of it. */
  return kl_ir_node_int(n, "start", 0) == 0 && kl_ir_node_int(n, "end", INT64_MAX) == INT64_MAX;
}

static bool permutation_of(const kl_ir_node *n, int *out_perm) {
  kl_status s = kl_ir_permute_params(n, n->inputs[0]->type.rank, out_perm);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  return true;
}

static bool is_identity_perm(const int *perm, int rank) {
  for (int i = 0; i < rank; i++)
    if (perm[i] != i)
      return false;
  return true;
}

/* The value n merely passes on, or NULL when n is not an identity. */
static kl_ir_value *identity_source(const kl_ir_graph *g, const kl_ir_node *n) {
  kl_ir_value *x = n->n_inputs > 0 ? n->inputs[0] : NULL;
  if (n->n_outputs != 1 || !x)
    return NULL;
  kl_ir_value *y = n->outputs[0];
  int perm[KL_MAX_RANK];
  switch (n->op) {
  case KL_OP_DROPOUT:
    return kl_ir_node_int(n, "train", 0) == 0 && same_type(x, y) ? x : NULL;
  case KL_OP_CAST:
    return same_type(x, y) ? x : NULL;
  case KL_OP_RESHAPE:
  case KL_OP_FLATTEN:
  case KL_OP_SQUEEZE:
  case KL_OP_UNSQUEEZE:
  case KL_OP_EXPAND:
    return is_known_type(x) && same_type(x, y) ? x : NULL;
  case KL_OP_PERMUTE:
  case KL_OP_TRANSPOSE:
    return permutation_of(n, perm) && is_identity_perm(perm, x->type.rank) && same_type(x, y)
               ? x
               : NULL;
  case KL_OP_SLICE:
    return slice_is_identity(n) ? x : NULL;
  case KL_OP_ADD:
  case KL_OP_SUB:
  case KL_OP_MUL:
  case KL_OP_DIV: {
    kl_ir_value *a = x, *b = n->inputs[1];
    double unit = n->op == KL_OP_MUL || n->op == KL_OP_DIV ? 1.0 : 0.0;
    bool commutes = n->op == KL_OP_ADD || n->op == KL_OP_MUL;
    if (same_type(a, y) && constant_all(g, b, unit, a))
      return a;
    if (commutes && same_type(b, y) && constant_all(g, a, unit, b))
      return b;
    return NULL;
  }
  default:
    return NULL;
  }
}

/* ---- chains --------------------------------------------------------------------------- */

static bool is_shape_only(kl_op op) {
  return op == KL_OP_RESHAPE || op == KL_OP_FLATTEN || op == KL_OP_SQUEEZE ||
         op == KL_OP_UNSQUEEZE;
}

/* reshape-like(reshape-like(x)) -> reshape[shape=final](x), static shapes only. */
static bool merge_shape_chain(kl_ir_graph *g, kl_ir_node *n) {
  if (!is_shape_only(n->op))
    return false;
  kl_ir_node *p = n->inputs[0]->node;
  if (!p || !is_shape_only(p->op) || p->owner != n->owner)
    return false;
  kl_ir_value *x = p->inputs[0], *y = n->outputs[0];
  if (!is_static_type(x) || !is_static_type(y) || x->type.dtype != y->type.dtype)
    return false;
  if (same_type(x, y)) {
    kl_ir_value *mid = n->inputs[0];
    replace_by_value(g, n, x);
    remove_if_dead(mid);
    return true;
  }
  int64_t shape[KL_MAX_RANK];
  kl_ir_type_shape(&y->type, shape);
  kl_ir_node *merged = kl_ir_node_create(g, KL_OP_RESHAPE, &x, 1, 1);
  kl_ir_node_set_ints(merged, "shape", shape, y->type.rank);
  replace_by_node(n, merged);
  return true;
}

/* permute(permute(x)) -> permute(x) with the composed order, or x when that is the identity. */
static bool merge_permute_chain(kl_ir_graph *g, kl_ir_node *n) {
  if (n->op != KL_OP_PERMUTE && n->op != KL_OP_TRANSPOSE)
    return false;
  kl_ir_node *p = n->inputs[0]->node;
  if (!p || (p->op != KL_OP_PERMUTE && p->op != KL_OP_TRANSPOSE) || p->owner != n->owner)
    return false;
  int outer[KL_MAX_RANK], inner[KL_MAX_RANK];
  if (!permutation_of(n, outer) || !permutation_of(p, inner))
    return false;
  kl_ir_value *x = p->inputs[0];
  int rank = x->type.rank;
  /* p: t.dims[i] = x.dims[inner[i]]; n: y.dims[i] = t.dims[outer[i]] = x.dims[inner[outer[i]]] */
  int64_t composed[KL_MAX_RANK];
  bool identity = true;
  for (int i = 0; i < rank; i++) {
    composed[i] = inner[outer[i]];
    identity = identity && composed[i] == i;
  }
  if (identity) {
    if (!same_type(x, n->outputs[0]))
      return false;
    kl_ir_value *mid = n->inputs[0];
    replace_by_value(g, n, x);
    remove_if_dead(mid);
    return true;
  }
  kl_ir_node *merged = kl_ir_node_create(g, KL_OP_PERMUTE, &x, 1, 1);
  kl_ir_node_set_ints(merged, "dims", composed, rank);
  replace_by_node(n, merged);
  return true;
}

/* Whether every value of dtype from is exactly representable in dtype to, so that converting
 * to `to` and on to anything else gives what converting directly gives (kl_rt_cast converts by
 * value). Allowed: Bool to anything; Byte and Char to Int, Long, Half, BFloat16, Float and
 * Double (8-bit integers fit the 8-bit significands of Half and BFloat16); Int to Long and
 * Double; Half and BFloat16 to Float and Double; Float to Double. Nothing else: Byte to Char
 * wraps 200, Int to Float rounds above 2^24, Long to Double above 2^53. */
static bool cast_is_exact(kl_dtype from, kl_dtype to) {
  if (from == to || from == KL_BOOL)
    return true;
  switch (from) {
  case KL_U8:
  case KL_I8:
    return to == KL_I32 || to == KL_I64 || to == KL_F16 || to == KL_BF16 || to == KL_F32 ||
           to == KL_F64;
  case KL_I32: return to == KL_I64 || to == KL_F64;
  case KL_F16:
  case KL_BF16: return to == KL_F32 || to == KL_F64;
  case KL_F32: return to == KL_F64;
  default: return false;
  }
}

/* to(to(x, A), B) -> to(x, B) when x's dtype converts to A exactly. */
static bool merge_cast_chain(kl_ir_node *n) {
  if (n->op != KL_OP_CAST)
    return false;
  kl_ir_value *mid = n->inputs[0];
  kl_ir_node *p = mid->node;
  if (!p || p->op != KL_OP_CAST || p->owner != n->owner)
    return false;
  kl_ir_value *x = p->inputs[0];
  if (!cast_is_exact(x->type.dtype, mid->type.dtype))
    return false;
  kl_ir_node_set_input(n, 0, x);
  remove_if_dead(mid);
  return true;
}

/* ---- deferred nodes ------------------------------------------------------------------- */

/* Tries the registered expander on n; false (graph unchanged) when there is none or it fails,
 * which for onnx::Deferred mostly means a value it reads is still not a constant. */
static bool expand_deferred(kl_ir_node *n, bool *expanded) {
  kl_ir_expand_fn expand = kl_ir_expander(n->op);
  if (n->op != KL_OP_ONNX_DEFERRED || !expand)
    return false;
  kl_status s = expand(n);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  *expanded = true;
  return true;
}

/* ---- driver --------------------------------------------------------------------------- */

/* Applies the first rule that matches n; true when the graph changed (n may be gone). */
static bool rewrite_node(kl_ir_graph *g, kl_ir_node *n) {
  kl_ir_value *source = identity_source(g, n);
  if (source) {
    replace_by_value(g, n, source);
    return true;
  }
  return merge_shape_chain(g, n) || merge_permute_chain(g, n) || merge_cast_chain(n);
}

/* One sweep over b and its sub-blocks. A rewrite may remove the node before n (a chain's
 * middle link), never a later one, so the saved next pointer stays valid. */
static bool sweep_block(kl_ir_graph *g, kl_ir_block *b, bool *expanded) {
  bool changed = false;
  kl_ir_node *next;
  for (kl_ir_node *n = b->first; n; n = next) {
    next = n->next;
    for (int i = 0; i < n->n_blocks; i++)
      changed |= sweep_block(g, n->blocks[i], expanded);
    if (n->op == KL_OP_ONNX_DEFERRED) {
      changed |= expand_deferred(n, expanded); /* new nodes go before n: next stays valid */
      continue;
    }
    if (n->n_blocks == 0 && rewrite_node(g, n))
      changed = true;
  }
  return changed;
}

static bool has_deferred(const kl_ir_block *b) {
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    if (n->op == KL_OP_ONNX_DEFERRED)
      return true;
    for (int i = 0; i < n->n_blocks; i++)
      if (has_deferred(n->blocks[i]))
        return true;
  }
  return false;
}

kl_status kl_pass_canonicalize(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  bool changed = false;
  for (int round = 0; round < MAX_ROUNDS; round++) {
    bool expanded_now = false;
    bool swept = sweep_block(g, g->top, &expanded_now);
    changed |= swept;
    if (expanded_now) {
      /* Values downstream of an expanded node had unknown dims the new ops now give. */
      bool inferred;
      KL_RETURN_IF_ERROR(kl_pass_find("infer-shapes")->run(g, opts, &inferred));
    }
    /* A deferred node may read values computed from a static shape an expansion just gave
     * (Pad, then Shape of it, Sub, Div, then Slice by the result): folding them lets the
     * next sweep expand it, so a chain of such nodes becomes static in one run. */
    bool folded = false;
    if (has_deferred(g->top))
      KL_RETURN_IF_ERROR(kl_pass_find("fold-constants")->run(g, opts, &folded));
    changed |= folded;
    if (!swept && !folded)
      break;
  }
  *out_changed = changed;
  return NULL;
}
