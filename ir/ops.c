/* The op table built from ops.def: names, arity, fusion category, attribute schema and shape
 * function per op, plus shape inference for a node. Attribute schemas are parsed from their
 * ops.def text once, on first use. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* Every shape function named in ops.def (defined in shape_nn.c and shape_tensor.c). */
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel)           \
  kl_status kl_shape_##shape(const kl_ir_node *node, const kl_ir_type *in, int n_in,       \
                             kl_ir_type *out, int n_out);
#include "ops.def"
#undef KL_OP

static kl_op_info op_table[KL_OP_COUNT] = {
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel) \
  [KL_OP_##id] = {name, imin, imax, omin, omax, blocks, KL_FUSE_##cat, attrs, kl_shape_##shape, NULL, 0},
#include "ops.def"
#undef KL_OP
};

static pthread_once_t schema_once = PTHREAD_ONCE_INIT;

/* Parses "stride:ints? groups:int" into schema entries. The spec is kiln's own text, so a
 * malformed one is a bug caught by the unit tests, not bad input. */
static void parse_schema(kl_op_info *info) {
  const char *p = info->attr_spec;
  int count = 0;
  for (const char *q = p; *q; q++)
    if (*q == ':')
      count++;
  if (!count)
    return;
  kl_attr_schema *attrs = calloc((size_t)count, sizeof *attrs);
  if (!attrs)
    kl_fatal_oom();
  int n = 0;
  while (*p) {
    while (*p == ' ')
      p++;
    if (!*p)
      break;
    const char *colon = strchr(p, ':');
    KL_ASSERT(colon);
    const char *end = colon + 1;
    while (*end && *end != ' ' && *end != '?')
      end++;
    char kind[16];
    size_t klen = (size_t)(end - colon - 1);
    KL_ASSERT(klen < sizeof kind);
    memcpy(kind, colon + 1, klen);
    kind[klen] = '\0';
    int k = -1;
    for (int i = 0; i < KL_ATTR_KIND_COUNT; i++)
      if (strcmp(kind, kl_ir_attr_kind_name((kl_ir_attr_kind)i)) == 0)
        k = i;
    KL_ASSERT(k >= 0);
    char *name = malloc((size_t)(colon - p) + 1);
    if (!name)
      kl_fatal_oom();
    memcpy(name, p, (size_t)(colon - p));
    name[colon - p] = '\0';
    attrs[n].name = name;
    attrs[n].kind = k;
    attrs[n].required = *end != '?';
    n++;
    p = *end == '?' ? end + 1 : end;
  }
  info->attrs = attrs;
  info->n_attrs = n;
}

static void parse_all_schemas(void) {
  for (int i = 0; i < KL_OP_COUNT; i++)
    parse_schema(&op_table[i]);
}

const kl_op_info *kl_op_get(kl_op op) {
  KL_ASSERT(op >= 0 && op < KL_OP_COUNT);
  pthread_once(&schema_once, parse_all_schemas);
  return &op_table[op];
}

bool kl_op_lookup(const char *name, size_t len, kl_op *out_op) {
  for (int i = 0; i < KL_OP_COUNT; i++) {
    const char *n = op_table[i].name;
    if (strlen(n) == len && memcmp(n, name, len) == 0) {
      *out_op = (kl_op)i;
      return true;
    }
  }
  return false;
}

const kl_attr_schema *kl_op_attr_schema(kl_op op, const char *name) {
  const kl_op_info *info = kl_op_get(op);
  for (int i = 0; i < info->n_attrs; i++)
    if (strcmp(info->attrs[i].name, name) == 0)
      return &info->attrs[i];
  return NULL;
}

const char *kl_fuse_category_name(kl_fuse_category c) {
  static const char *const names[] = {"elementwise", "broadcast", "injective",
                                      "reduction",   "out-elementwise-fusable", "opaque"};
  return (c >= 0 && c <= KL_FUSE_OPAQUE) ? names[c] : "?";
}

/* "node %3 (aten::linear, inputs Float(2, 7), Float(5, 10))" prefix for shape errors. */
static kl_status annotate_node(kl_status s, const kl_ir_node *n, const kl_ir_type *in, int n_in) {
  char buf[1024];
  size_t len = 0;
  const kl_ir_graph *g = n->graph;
  for (int i = 0; i < n_in && len < sizeof buf - 1; i++) {
    char t[256];
    kl_ir_type_format(g, &in[i], t, sizeof t);
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? ", " : "", t);
  }
  if (n->n_outputs)
    return kl_status_annotate(s, "%%%s = %s(%s)", n->outputs[0]->name, kl_ir_node_op_name(n),
                              buf);
  return kl_status_annotate(s, "%s(%s)", kl_ir_node_op_name(n), buf);
}

kl_status kl_ir_node_infer_types(const kl_ir_node *n, const kl_ir_type *in, int n_in,
                                 kl_ir_type *out, int n_out) {
  const kl_op_info *info = kl_op_get(n->op);
  if (n_in < info->min_inputs || (info->max_inputs >= 0 && n_in > info->max_inputs))
    return annotate_node(kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s takes %d%s inputs, got %d",
                                          info->name, info->min_inputs,
                                          info->max_inputs == info->min_inputs ? "" : " or more",
                                          n_in),
                         n, in, n_in);
  kl_status s = info->shape(n, in, n_in, out, n_out);
  return s ? annotate_node(s, n, in, n_in) : NULL;
}

kl_status kl_ir_node_infer_into(const kl_ir_node *n, kl_ir_type *out) {
  kl_ir_type *in = malloc(((size_t)n->n_inputs + 1) * sizeof *in);
  if (!in)
    kl_fatal_oom();
  for (int i = 0; i < n->n_inputs; i++)
    in[i] = n->inputs[i]->type;
  for (int i = 0; i < n->n_outputs; i++)
    out[i] = n->outputs[i]->type;
  kl_status s = kl_ir_node_infer_types(n, in, n->n_inputs, out, n->n_outputs);
  free(in);
  return s;
}

kl_status kl_ir_node_infer(kl_ir_node *n) {
  kl_ir_type small_out[4];
  kl_ir_type *out = n->n_outputs <= 4 ? small_out : malloc((size_t)n->n_outputs * sizeof *out);
  if (!out)
    kl_fatal_oom();
  kl_status s = kl_ir_node_infer_into(n, out);
  if (!s)
    for (int i = 0; i < n->n_outputs; i++)
      n->outputs[i]->type = out[i];
  if (out != small_out)
    free(out);
  return s;
}

/* ---- expanders ---------------------------------------------------------------------------- */

static _Atomic(kl_ir_expand_fn) expanders[KL_OP_COUNT];

void kl_ir_set_expander(kl_op op, kl_ir_expand_fn fn) {
  if ((unsigned)op < KL_OP_COUNT)
    atomic_store(&expanders[op], fn);
}

kl_ir_expand_fn kl_ir_expander(kl_op op) {
  if ((unsigned)op >= KL_OP_COUNT)
    return NULL;
  return atomic_load(&expanders[op]);
}
