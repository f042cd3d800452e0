/* Deferred ONNX nodes: nodes whose mapping needs values that are only known at run time.
 *
 * Many ONNX ops take "shape-ish" operands as tensors (Reshape's shape, Expand's shape, Tile's
 * repeats, Slice's starts/ends/axes/steps, Pad's pads, the axes of the reductions, Squeeze and
 * Unsqueeze, Resize's scales and sizes, TopK's k, Range, ConstantOfShape, OneHot's depth, the
 * windows' size, CenterCropPad's shape...). kiln's ops take those as attributes, so the mapping
 * of such a node reads the operand's values at import. When the operand is an ordinary tensor
 * (a graph input, or computed from one), or when the mapping needs a static shape that the
 * graph only knows at run time, the mapping fails with "needs a constant" or "needs a static
 * shape"; the importer then keeps the node as onnx::Deferred (ir/ops.def): its inputs, the
 * serialized NodeProto, the opset, and output types whose value-dependent dims are unknown.
 *
 * The expander registered here (kl_ir_set_expander) turns a deferred node back into static
 * IR: it runs the very same mapping on the node, now that the inputs it reads are constants,
 * into the node's block, and replaces the node by the result. The interpreter calls it at run
 * time on a one-node graph of the concrete input values; canonicalize calls it at compile time
 * when the inputs became constants, so real models keep compiling with static shapes.
 *
 * The output types of a deferred node come from the model's own type information (graph
 * outputs and value_info) when it declares the output's rank, else from the op's rank rule
 * below (the rank never depends on the values, only on the inputs' ranks and lengths). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_export_internal.h"
#include "onnx_internal.h"

/* ---- hex (the NodeProto is kept as a string attribute, so the text IR can hold it) ---------- */

static char *hex_encode(const uint8_t *data, size_t len) {
  static const char digits[] = "0123456789abcdef";
  char *s = malloc(2 * len + 1);
  if (!s)
    kl_fatal_oom();
  for (size_t i = 0; i < len; i++) {
    s[2 * i] = digits[data[i] >> 4];
    s[2 * i + 1] = digits[data[i] & 15];
  }
  s[2 * len] = '\0';
  return s;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* NULL when s is not an even-length string of hex digits. */
static uint8_t *hex_decode(const char *s, size_t *out_len) {
  size_t n = strlen(s);
  if (n % 2)
    return NULL;
  uint8_t *b = malloc(n / 2 + 1);
  if (!b)
    kl_fatal_oom();
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(b);
      return NULL;
    }
    b[i] = (uint8_t)(hi * 16 + lo);
  }
  *out_len = n / 2;
  return b;
}

/* ---- output types at import ---------------------------------------------------------------- */

/* The element count of a rank-0 or rank-1 value with a static length, or -1. */
static int64_t length_of(const kl_ir_value *v) {
  if (!v)
    return -1;
  if (v->type.rank == 0)
    return 1;
  if (v->type.rank == 1 && kl_ir_dim_is_static(v->type.dims[0]))
    return v->type.dims[0].size;
  return -1;
}

static bool is_reduction(const char *op) {
  return !strncmp(op, "Reduce", 6);
}

static bool keeps_rank(const char *op) {
  static const char *const ops[] = {"Slice", "Pad", "Tile", "Resize", "Upsample", "CumSum",
                                    "CenterCropPad", "TopK", "Split", "Clip", NULL};
  for (int i = 0; ops[i]; i++)
    if (!strcmp(op, ops[i]))
      return true;
  return false;
}

/* The declared type of ONNX value `name` in the main graph (outputs, then value_info), when it
 * has a known element type and rank. */
static bool declared_type(kl_onnx_node_ctx *c, const char *name, kl_ir_type *out) {
  const kl_onnx_importer *imp = c->imp;
  if (!imp->model || !imp->model->graph || imp->depth > 0 || imp->inline_depth > 0 || !name ||
      !*name)
    return false;
  const Onnx__GraphProto *gp = imp->model->graph;
  const Onnx__ValueInfoProto *vi = NULL;
  for (size_t i = 0; i < gp->n_output && !vi; i++)
    if (gp->output[i]->name && !strcmp(gp->output[i]->name, name))
      vi = gp->output[i];
  for (size_t i = 0; i < gp->n_value_info && !vi; i++)
    if (gp->value_info[i]->name && !strcmp(gp->value_info[i]->name, name))
      vi = gp->value_info[i];
  if (!vi)
    return false;
  kl_status s = kl_onnx_type_from_proto(c->imp, vi->type, name, out);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  return true;
}

/* dtype and rank of output k by the op's rule; false when kiln has no rule for the op. */
static bool rule_type(kl_onnx_node_ctx *c, int k, kl_ir_type *out) {
  const char *op = c->node->op_type ? c->node->op_type : "";
  kl_ir_value *x = kl_onnx_input(c, 0);
  memset(out, 0, sizeof *out);
  out->dtype = x ? x->type.dtype : KL_F32;
  int64_t rank = -1;
  if (!strcmp(op, "Reshape")) {
    rank = length_of(kl_onnx_input(c, 1));
  } else if (!strcmp(op, "Expand")) {
    int64_t n = length_of(kl_onnx_input(c, 1));
    rank = x && n >= 0 ? (n > x->type.rank ? n : x->type.rank) : -1;
  } else if (!strcmp(op, "ConstantOfShape")) {
    rank = length_of(x);
    out->dtype = KL_F32;
    const Onnx__AttributeProto *a = kl_onnx_attr(c->node, "value");
    if (a && a->t) {
      kl_status s = kl_onnx_dtype_from_onnx(a->t->data_type, &out->dtype);
      if (s) { /* an element type kiln lacks: the mapping says so */
        kl_status_destroy(s);
        return false;
      }
    }
  } else if (!strcmp(op, "Shape") || !strcmp(op, "Size")) {
    out->dtype = KL_I64;
    if (!x)
      return false;
    if (op[1] == 'i') {
      out->rank = 0;
      return true;
    }
    /* Shape's length is known from the rank: [start, end) clamped as the op clamps it. */
    int64_t r = x->type.rank;
    int64_t start = kl_onnx_attr_int(c, "start", 0), end = kl_onnx_attr_int(c, "end", r);
    start = start < 0 ? start + r : start;
    end = end < 0 ? end + r : end;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    out->rank = 1;
    out->dims[0] = kl_ir_dim_static(end > start ? end - start : 0);
    return true;
  } else if (!strcmp(op, "Range")) {
    rank = 1;
  } else if (!strcmp(op, "HannWindow") || !strcmp(op, "HammingWindow") ||
             !strcmp(op, "BlackmanWindow")) {
    rank = 1;
    kl_status s = kl_onnx_dtype_from_onnx((int32_t)kl_onnx_attr_int(c, "output_datatype", 1),
                                          &out->dtype);
    if (s) {
      kl_status_destroy(s);
      return false;
    }
  } else if (!strcmp(op, "OneHot")) {
    kl_ir_value *values = kl_onnx_input(c, 2);
    if (!x || !values)
      return false;
    rank = x->type.rank + 1;
    out->dtype = values->type.dtype;
  } else if (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze")) {
    int64_t n = length_of(kl_onnx_input(c, 1));
    if (x && n >= 0)
      rank = op[0] == 'S' ? x->type.rank - n : x->type.rank + n;
  } else if (is_reduction(op)) {
    if (x && kl_onnx_attr_int(c, "keepdims", 1)) {
      rank = x->type.rank;
    } else if (x) {
      int64_t n = kl_onnx_input(c, 1) ? length_of(kl_onnx_input(c, 1)) : 0;
      if (n == 0)
        rank = kl_onnx_attr_int(c, "noop_with_empty_axes", 0) ? x->type.rank : 0;
      else if (n > 0)
        rank = x->type.rank - n;
    }
  } else if (keeps_rank(op)) {
    rank = x ? x->type.rank : -1;
    if (!strcmp(op, "TopK") && k == 1)
      out->dtype = KL_I64;
  }
  if (rank < 0 || rank > KL_MAX_RANK)
    return false;
  out->rank = (int)rank;
  for (int d = 0; d < out->rank; d++)
    out->dims[d].sym = KL_DIM_UNKNOWN;
  return true;
}

static bool can_defer(const kl_onnx_node_ctx *c) {
  const Onnx__NodeProto *node = c->node;
  if (node->domain && *node->domain && strcmp(node->domain, "ai.onnx"))
    return false;
  if (!node->op_type || !*node->op_type || c->n_out < 1)
    return false;
  for (size_t a = 0; a < node->n_attribute; a++) {
    const Onnx__AttributeProto *attr = node->attribute[a];
    if (attr->g || attr->n_graphs || (attr->ref_attr_name && *attr->ref_attr_name))
      return false;
  }
  for (int k = 0; k < c->n_out; k++)
    if (!node->output[k] || !*node->output[k])
      return false;
  return true;
}

kl_status kl_onnx_emit_deferred(kl_onnx_node_ctx *c, kl_status why) {
  if (!can_defer(c))
    return why;
  kl_ir_type *types = calloc((size_t)c->n_out, sizeof *types);
  if (!types)
    kl_fatal_oom();
  for (int k = 0; k < c->n_out; k++) {
    if (!declared_type(c, c->node->output[k], &types[k]) && !rule_type(c, k, &types[k])) {
      free(types);
      return why;
    }
  }
  kl_ir_value **ins = calloc((size_t)c->n_in + 1, sizeof *ins);
  if (!ins)
    kl_fatal_oom();
  int n_ins = 0;
  for (int i = 0; i < c->n_in; i++)
    if (c->in[i])
      ins[n_ins++] = c->in[i];
  /* Without its name and doc string, so that an export and re-import keep the same text. */
  Onnx__NodeProto kept = *c->node;
  kept.name = NULL;
  kept.doc_string = NULL;
  size_t len = onnx__node_proto__get_packed_size(&kept);
  uint8_t *buf = malloc(len + 1);
  if (!buf)
    kl_fatal_oom();
  onnx__node_proto__pack(&kept, buf);
  char *hex = hex_encode(buf, len);
  free(buf);
  kl_ir_node *n = kl_ir_block_add_node(c->block, KL_OP_ONNX_DEFERRED, ins, n_ins, c->n_out);
  kl_ir_node_set_string(n, "op_type", c->node->op_type);
  kl_ir_node_set_string(n, "node", hex);
  kl_ir_node_set_int(n, "opset", c->opset);
  free(hex);
  for (int k = 0; k < c->n_out; k++) {
    n->outputs[k]->type = types[k];
    c->out[k] = n->outputs[k];
  }
  free(types);
  free(ins);
  kl_status_destroy(why);
  return NULL;
}

/* ---- the expander ---------------------------------------------------------------------------- */

/* Whether value type `have` can stand where `want` was declared: same dtype and rank, and
 * equal sizes where want's dims are static. */
static bool fits_declared(const kl_ir_type *have, const kl_ir_type *want) {
  if (have->dtype != want->dtype || have->rank != want->rank)
    return false;
  for (int d = 0; d < want->rank; d++)
    if (kl_ir_dim_is_static(want->dims[d]) &&
        !(kl_ir_dim_is_static(have->dims[d]) && have->dims[d].size == want->dims[d].size))
      return false;
  return true;
}

static void remove_after(kl_ir_block *b, kl_ir_node *mark) {
  while (b->last && b->last != mark) {
    kl_ir_node *last = b->last;
    for (int i = 0; i < last->n_outputs; i++)
      if (last->outputs[i]->n_uses)
        return; /* cannot happen: nodes are appended in order, so later users go first */
    kl_ir_node_remove(last);
  }
}

static kl_status expand_with(kl_ir_node *n, const Onnx__NodeProto *np, int64_t opset) {
  kl_ir_block *b = n->owner;
  const char *op_type = np->op_type ? np->op_type : "";
  int n_named = 0;
  for (size_t i = 0; i < np->n_input; i++)
    if (np->input[i] && *np->input[i])
      n_named++;
  if (n_named != n->n_inputs || (int)np->n_output != n->n_outputs)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "onnx::Deferred (%s): the node has %d "
                            "inputs and %d outputs, its ONNX node %d and %zu", op_type,
                            n->n_inputs, n->n_outputs, n_named, np->n_output);
  kl_onnx_op_fn map = kl_onnx_find_op(op_type, opset, NULL);
  if (!map || (np->domain && *np->domain && strcmp(np->domain, "ai.onnx")))
    return kl_status_create(KL_ERR_UNSUPPORTED, "onnx::Deferred: op %s (opset %lld) is not "
                            "supported", op_type, (long long)opset);
  kl_onnx_importer imp;
  memset(&imp, 0, sizeof imp);
  imp.g = n->graph;
  imp.name = "at run time";
  kl_onnx_import_options_init(&imp.opts);
  imp.budget = imp.opts.max_total_bytes;
  imp.opset = opset;
  /* At least 16 slots each, NULL past the node's own, as convert_node gives a mapping. */
  kl_ir_value **in = calloc(np->n_input < 16 ? 16 : np->n_input, sizeof *in);
  kl_ir_value **out = calloc(np->n_output < 16 ? 16 : np->n_output, sizeof *out);
  if (!in || !out)
    kl_fatal_oom();
  for (size_t i = 0, k = 0; i < np->n_input; i++)
    if (np->input[i] && *np->input[i])
      in[i] = n->inputs[k++];
  kl_onnx_node_ctx c = {&imp, np, b, NULL, opset, in, (int)np->n_input, out, (int)np->n_output};
  kl_ir_node *mark = b->last;
  int first_value_id = n->graph->next_value_id;
  kl_status s = map(&c);
  for (int k = 0; !s && k < n->n_outputs; k++) {
    if (!out[k]) {
      if (n->outputs[k]->n_uses)
        s = kl_status_create(KL_ERR_UNSUPPORTED, "onnx::Deferred (%s): output %d is not "
                             "supported by kiln", op_type, k);
      continue;
    }
    if (!fits_declared(&out[k]->type, &n->outputs[k]->type)) {
      char have[256], want[256];
      kl_ir_type_format(n->graph, &out[k]->type, have, sizeof have);
      kl_ir_type_format(n->graph, &n->outputs[k]->type, want, sizeof want);
      s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "onnx::Deferred (%s): output %d ('%s') is "
                           "%s, but the model declares %s", op_type, k,
                           np->output[k] ? np->output[k] : "", have, want);
    }
  }
  if (s) {
    remove_after(b, mark);
    free(in);
    free(out);
    return s;
  }
  /* The new nodes were appended to the block; they belong where n is. */
  kl_ir_node *first = mark ? mark->next : b->first;
  while (first) {
    kl_ir_node *next = first->next;
    kl_ir_node_move_before(first, n);
    first = next;
  }
  char **names = calloc((size_t)n->n_outputs + 1, sizeof *names);
  if (!names)
    kl_fatal_oom();
  for (int k = 0; k < n->n_outputs; k++) {
    names[k] = strdup(n->outputs[k]->name);
    if (!names[k])
      kl_fatal_oom();
    if (out[k])
      kl_ir_value_replace_all_uses(n->outputs[k], out[k]);
  }
  kl_ir_node_remove(n);
  for (int k = 0; k < (int)np->n_output; k++) {
    if (out[k] && out[k]->id >= first_value_id && out[k]->node)
      kl_ir_value_set_name(out[k], names[k]);
    free(names[k]);
  }
  free(names);
  free(in);
  free(out);
  return NULL;
}

/* The ONNX node a deferred node keeps, unpacked with allocator (NULL: malloc), and its
 * opset. */
static kl_status deferred_proto(const kl_ir_node *n, ProtobufCAllocator *allocator,
                                Onnx__NodeProto **out_proto, int64_t *out_opset) {
  *out_proto = NULL;
  const char *hex = kl_ir_node_string(n, "node", NULL);
  int64_t opset = kl_ir_node_int(n, "opset", -1);
  *out_opset = opset;
  if (!hex)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "onnx::Deferred: attribute node is "
                            "missing");
  if (opset < 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "onnx::Deferred: opset %lld is not valid",
                            (long long)opset);
  size_t len = 0;
  uint8_t *bytes = hex_decode(hex, &len);
  if (!bytes)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "onnx::Deferred: attribute node is not "
                            "hex digits");
  kl_status s = kl_onnx_check_wire(bytes, len, &onnx__node_proto__descriptor, 64,
                                   "onnx::Deferred node");
  if (!s) {
    *out_proto = onnx__node_proto__unpack(allocator, len, bytes);
    if (!*out_proto)
      s = kl_status_create(KL_ERR_FORMAT, "onnx::Deferred: attribute node is not a valid "
                           "ONNX NodeProto");
  }
  free(bytes);
  return s;
}

static void *arena_alloc(void *ctx, size_t size) {
  return kl_onnx_ex_alloc(ctx, size);
}
static void arena_free(void *ctx, void *p) {
  (void)ctx, (void)p; /* freed with the exporter */
}

kl_status kl_onnx_export_deferred(kl_onnx_exporter *ex, kl_onnx_scope *scope,
                                  const kl_ir_node *n) {
  ProtobufCAllocator alloc = {arena_alloc, arena_free, ex};
  Onnx__NodeProto *np;
  int64_t opset;
  KL_RETURN_IF_ERROR(deferred_proto(n, &alloc, &np, &opset));
  const char *op_type = np->op_type ? np->op_type : "";
  if (opset != kl_onnx_ex_opset(ex))
    return kl_status_create(KL_ERR_UNSUPPORTED, "onnx::Deferred (%s) defining %%%s: the node "
                            "is kept as ONNX opset %lld wrote it; export at that opset, or make "
                            "the inputs it reads constant and run canonicalize", op_type,
                            n->outputs[0]->name, (long long)opset);
  int n_named = 0;
  for (size_t i = 0; i < np->n_input; i++)
    n_named += np->input[i] && *np->input[i];
  if (n_named != n->n_inputs || (int)np->n_output != n->n_outputs)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "onnx::Deferred (%s) defining %%%s: the "
                            "node does not match its ONNX node", op_type, n->outputs[0]->name);
  const char **ins = kl_onnx_ex_alloc(ex, (np->n_input + 1) * sizeof *ins);
  for (size_t i = 0, k = 0; i < np->n_input; i++)
    ins[i] = np->input[i] && *np->input[i] ? kl_onnx_ex_name(ex, n->inputs[k++]) : NULL;
  const char **outs = kl_onnx_ex_alloc(ex, ((size_t)n->n_outputs + 1) * sizeof *outs);
  for (int k = 0; k < n->n_outputs; k++)
    outs[k] = kl_onnx_ex_name(ex, n->outputs[k]);
  Onnx__NodeProto *node = kl_onnx_ex_node(ex, scope, op_type, ins, (int)np->n_input, outs,
                                          n->n_outputs);
  node->attribute = np->attribute;
  node->n_attribute = np->n_attribute;
  return NULL;
}

static kl_status expand_deferred(kl_ir_node *n) {
  if (n->op != KL_OP_ONNX_DEFERRED || !n->owner)
    return kl_status_create(KL_ERR_INTERNAL, "not an onnx::Deferred node in a block");
  Onnx__NodeProto *np = NULL;
  int64_t opset;
  kl_status s = deferred_proto(n, NULL, &np, &opset);
  if (!s)
    s = expand_with(n, np, opset);
  if (np)
    onnx__node_proto__free_unpacked(np, NULL);
  return s;
}

/* ---- which inputs a deferred node reads as values ------------------------------------------- */

/* Runs the node's mapping as a probe (imp.probe_node): every value it reads is noted and then
 * treated as absent, so the mapping goes on to the next; whatever it emitted is removed. */
static kl_status probe_with(kl_ir_node *n, const Onnx__NodeProto *np, int64_t opset,
                            bool *out_reads) {
  kl_ir_block *b = n->owner;
  const char *op_type = np->op_type ? np->op_type : "";
  int n_named = 0;
  for (size_t i = 0; i < np->n_input; i++)
    n_named += np->input[i] && *np->input[i];
  if (n_named != n->n_inputs || (int)np->n_output != n->n_outputs)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "onnx::Deferred (%s): the node does not "
                            "match its ONNX node", op_type);
  kl_onnx_op_fn map = kl_onnx_find_op(op_type, opset, NULL);
  if (!map || (np->domain && *np->domain && strcmp(np->domain, "ai.onnx")))
    return kl_status_create(KL_ERR_UNSUPPORTED, "onnx::Deferred: op %s (opset %lld) is not "
                            "supported", op_type, (long long)opset);
  kl_onnx_importer imp;
  memset(&imp, 0, sizeof imp);
  imp.g = n->graph;
  imp.name = "probe";
  kl_onnx_import_options_init(&imp.opts);
  imp.budget = imp.opts.max_total_bytes;
  imp.opset = opset;
  imp.probe_node = n;
  imp.probe_reads = out_reads;
  kl_ir_value **in = calloc(np->n_input + 1, sizeof *in);
  kl_ir_value **out = calloc(np->n_output + 1, sizeof *out);
  if (!in || !out)
    kl_fatal_oom();
  for (size_t i = 0, k = 0; i < np->n_input; i++)
    if (np->input[i] && *np->input[i])
      in[i] = n->inputs[k++];
  kl_onnx_node_ctx c = {&imp, np, b, NULL, opset, in, (int)np->n_input, out, (int)np->n_output};
  kl_ir_node *mark = b->last;
  kl_status_destroy(map(&c)); /* success or not, the reads before the end are what counts */
  remove_after(b, mark);
  free(in);
  free(out);
  return NULL;
}

kl_status kl_onnx_deferred_value_inputs(kl_ir_node *n, bool *out_reads) {
  if (n->op != KL_OP_ONNX_DEFERRED || !n->owner)
    return kl_status_create(KL_ERR_INTERNAL, "not an onnx::Deferred node in a block");
  for (int k = 0; k < n->n_inputs; k++)
    out_reads[k] = false;
  Onnx__NodeProto *np = NULL;
  int64_t opset;
  kl_status s = deferred_proto(n, NULL, &np, &opset);
  if (!s)
    s = probe_with(n, np, opset, out_reads);
  if (np)
    onnx__node_proto__free_unpacked(np, NULL);
  return s;
}

/* The graph inputs each value depends on, as bit sets over g->top's params, computed forward
 * in block order (every value is defined before its uses): `values` for what its values
 * depend on, `shapes` for what its shape depends on (only a deferred node's outputs have
 * shapes that depend on values). */
typedef struct deps {
  int words;         /* uint64_t per set */
  uint64_t *values;  /* [value id][words] */
  uint64_t *shapes;
  bool **reads;      /* per deferred node id: its probe, or NULL */
} deps;

static uint64_t *dep_set(uint64_t *sets, const deps *d, const kl_ir_value *v) {
  return sets + (size_t)v->id * (size_t)d->words;
}

static void dep_union(const deps *d, uint64_t *into, const uint64_t *from) {
  for (int w = 0; w < d->words; w++)
    into[w] |= from[w];
}

static bool is_shape_query(const kl_ir_node *n) {
  const char *op = kl_ir_node_string(n, "op_type", "");
  return !strcmp(op, "Shape") || !strcmp(op, "Size");
}

/* Block params of a sub-block stand for values the owner passes in: they depend on whatever
 * the owner's inputs depend on. */
static void deps_block(deps *d, const kl_ir_block *b, const uint64_t *param_values,
                       const uint64_t *param_shapes) {
  for (int i = 0; i < b->n_params; i++) {
    kl_ir_value *p = b->params[i];
    if (!param_values) { /* the top block: input i is itself */
      dep_set(d->values, d, p)[p->index / 64] |= 1ull << (p->index % 64);
      continue;
    }
    dep_union(d, dep_set(d->values, d, p), param_values);
    dep_union(d, dep_set(d->shapes, d, p), param_shapes);
  }
  uint64_t *in_values = calloc((size_t)d->words, sizeof *in_values);
  uint64_t *in_shapes = calloc((size_t)d->words, sizeof *in_shapes);
  uint64_t *read_values = calloc((size_t)d->words, sizeof *read_values);
  if (!in_values || !in_shapes || !read_values)
    kl_fatal_oom();
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    memset(in_values, 0, (size_t)d->words * sizeof *in_values);
    memset(in_shapes, 0, (size_t)d->words * sizeof *in_shapes);
    memset(read_values, 0, (size_t)d->words * sizeof *read_values);
    const bool *reads = n->op == KL_OP_ONNX_DEFERRED ? d->reads[n->id] : NULL;
    for (int k = 0; k < n->n_inputs; k++) {
      if (!n->inputs[k])
        continue;
      dep_union(d, in_values, dep_set(d->values, d, n->inputs[k]));
      dep_union(d, in_shapes, dep_set(d->shapes, d, n->inputs[k]));
      if (reads && reads[k])
        dep_union(d, read_values, dep_set(d->values, d, n->inputs[k]));
    }
    /* A node with blocks (If, Loop): its outputs depend on what its blocks return. */
    for (int k = 0; k < n->n_blocks; k++) {
      deps_block(d, n->blocks[k], in_values, in_shapes);
      for (int r = 0; r < n->blocks[k]->n_returns; r++) {
        dep_union(d, in_values, dep_set(d->values, d, n->blocks[k]->returns[r]));
        dep_union(d, in_shapes, dep_set(d->shapes, d, n->blocks[k]->returns[r]));
      }
    }
    for (int k = 0; k < n->n_outputs; k++) {
      uint64_t *values = dep_set(d->values, d, n->outputs[k]);
      uint64_t *shapes = dep_set(d->shapes, d, n->outputs[k]);
      /* Shape and Size read only their input's shape; any other op's values may depend on
       * both the values and the shapes of its inputs. */
      if (!(n->op == KL_OP_ONNX_DEFERRED && is_shape_query(n)))
        dep_union(d, values, in_values);
      dep_union(d, values, in_shapes);
      dep_union(d, shapes, in_shapes);
      if (n->op == KL_OP_ONNX_DEFERRED)
        dep_union(d, shapes, read_values);
    }
  }
  free(in_values);
  free(in_shapes);
  free(read_values);
}

/* Probes every deferred node of b and its sub-blocks into d->reads. */
static void probe_block(deps *d, kl_ir_block *b, int n_node_ids) {
  for (kl_ir_node *n = b->first; n; n = n->next) {
    for (int k = 0; k < n->n_blocks; k++)
      probe_block(d, n->blocks[k], n_node_ids);
    if (n->op != KL_OP_ONNX_DEFERRED || n->id >= n_node_ids)
      continue;
    bool *reads = calloc((size_t)n->n_inputs + 1, sizeof *reads);
    if (!reads)
      kl_fatal_oom();
    kl_status s = kl_onnx_deferred_value_inputs(n, reads);
    kl_status_destroy(s); /* a node that cannot be probed reads nothing we can name */
    d->reads[n->id] = reads;
  }
}

/* Sets out[i] for each top-level input i in the value sets of what deferred nodes read. */
static int collect_read(const deps *d, const kl_ir_block *b, bool *out) {
  int found = 0;
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    for (int k = 0; k < n->n_blocks; k++)
      found += collect_read(d, n->blocks[k], out);
    const bool *reads = n->op == KL_OP_ONNX_DEFERRED ? d->reads[n->id] : NULL;
    for (int k = 0; reads && k < n->n_inputs; k++) {
      if (!reads[k] || !n->inputs[k])
        continue;
      const uint64_t *set = dep_set(d->values, d, n->inputs[k]);
      for (int i = 0; i < b->graph->top->n_params; i++)
        if ((set[i / 64] >> (i % 64) & 1) && !out[i]) {
          out[i] = true;
          found++;
        }
    }
  }
  return found;
}

int kl_onnx_shape_inputs(kl_ir_graph *g, bool *out_inputs) {
  int n_params = g->top->n_params;
  for (int i = 0; i < n_params; i++)
    out_inputs[i] = false;
  deps d = {.words = n_params / 64 + 1};
  int n_node_ids = g->next_node_id;
  d.reads = calloc((size_t)n_node_ids + 1, sizeof *d.reads);
  if (!d.reads)
    kl_fatal_oom();
  probe_block(&d, g->top, n_node_ids);
  /* The probes made (and removed) values of their own: size the sets after them. */
  size_t n_sets = (size_t)g->next_value_id * (size_t)d.words;
  d.values = calloc(n_sets + 1, sizeof *d.values);
  d.shapes = calloc(n_sets + 1, sizeof *d.shapes);
  if (!d.values || !d.shapes)
    kl_fatal_oom();
  deps_block(&d, g->top, NULL, NULL);
  int found = collect_read(&d, g->top, out_inputs);
  for (int i = 0; i < n_node_ids; i++)
    free(d.reads[i]);
  free(d.reads);
  free(d.values);
  free(d.shapes);
  return found;
}

void kl_onnx_register_expanders(void) {
  kl_ir_set_expander(KL_OP_ONNX_DEFERRED, expand_deferred);
}
