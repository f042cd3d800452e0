/* The text IR printer: writes a graph in the canonical form that ir/parse.c reads back byte
 * for byte (the grammar is documented at the top of parse.c).
 *
 * Canonical means one spelling per graph: two-space indentation per nesting level, types on
 * every definition, floats in the shortest %.*g form that reads back to the same bits, names
 * quoted only when they are not plain [A-Za-z0-9_.]+, and prim::FusionGroup bodies moved out
 * of line into `with prim::FusionGroup_K = graph(...)` sections, numbered in print order. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* A growable output buffer. Printing only fails when memory runs out, which exits. */
typedef struct kl_printer {
  char *buf;
  size_t len, cap;
  const kl_ir_graph *graph;
  const kl_ir_print_options *opts;
  const kl_ir_node **groups; /* fusion groups in numbering order; bodies printed after */
  int n_groups, cap_groups;
} kl_printer;

static void reserve(kl_printer *p, size_t extra) {
  if (p->len + extra + 1 <= p->cap)
    return;
  size_t cap = p->cap ? p->cap : 256;
  while (cap < p->len + extra + 1)
    cap *= 2;
  char *buf = realloc(p->buf, cap);
  if (!buf)
    kl_fatal_oom();
  p->buf = buf;
  p->cap = cap;
}

static void put_mem(kl_printer *p, const char *s, size_t n) {
  reserve(p, n);
  memcpy(p->buf + p->len, s, n);
  p->len += n;
  p->buf[p->len] = '\0';
}

static void put(kl_printer *p, const char *s) { put_mem(p, s, strlen(s)); }

static void putf(kl_printer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(kl_printer *p, const char *fmt, ...) {
  char small[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n < sizeof small) {
    put_mem(p, small, (size_t)n);
    return;
  }
  reserve(p, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  p->len += (size_t)n;
}

static void indent(kl_printer *p, int depth) {
  for (int i = 0; i < depth; i++)
    put(p, "  ");
}

/* A C-style quoted string: quotes, backslashes and control bytes escaped; bytes >= 0x80 are
 * copied as they are, so UTF-8 names stay readable. */
static void put_quoted(kl_printer *p, const char *s) {
  put(p, "\"");
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    switch (*c) {
    case '"': put(p, "\\\""); break;
    case '\\': put(p, "\\\\"); break;
    case '\n': put(p, "\\n"); break;
    case '\t': put(p, "\\t"); break;
    case '\r': put(p, "\\r"); break;
    default:
      if (*c < 0x20 || *c == 0x7f)
        putf(p, "\\x%02x", *c);
      else
        put_mem(p, (const char *)c, 1);
    }
  }
  put(p, "\"");
}

static bool is_plain_value_name(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++) {
    char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.'))
      return false;
  }
  return true;
}

/* Symbol names are identifiers unless they were imported with odd characters. */
static bool is_identifier(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
    return false;
  for (s++; *s; s++) {
    char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

static void put_value(kl_printer *p, const kl_ir_value *v) {
  const char *name = v->name ? v->name : "";
  put(p, "%");
  if (is_plain_value_name(name))
    put(p, name);
  else
    put_quoted(p, name);
}

static void put_symbol_name(kl_printer *p, const char *name) {
  if (is_identifier(name))
    put(p, name);
  else
    put_quoted(p, name);
}

static void put_type(kl_printer *p, const kl_ir_type *t) {
  put(p, kl_dtype_is_valid((int)t->dtype) ? kl_dtype_ir_name(t->dtype) : "Invalid");
  put(p, "(");
  for (int i = 0; i < t->rank && i < KL_MAX_RANK; i++) {
    if (i)
      put(p, ", ");
    kl_ir_dim d = t->dims[i];
    if (d.sym == KL_DIM_STATIC)
      putf(p, "%" PRId64, d.size);
    else if (d.sym >= 0 && d.sym < p->graph->n_symbols)
      put_symbol_name(p, p->graph->symbols[d.sym].name);
    else
      put(p, "*");
  }
  put(p, ")");
}

/* The shortest "%.*g" that reads back as the same value when rounded to the element type
 * (float32 for Float, half/bfloat16 bit patterns, double otherwise), always spelled so the
 * parser sees a float: with '.', 'e', or as inf/nan. */
static void put_float_as(kl_printer *p, double v, kl_dtype dt) {
  char buf[64];
  if (isnan(v)) {
    put(p, "nan");
    return;
  }
  if (isinf(v)) {
    put(p, v < 0 ? "-inf" : "inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    double back = strtod(buf, NULL);
    bool same;
    switch (dt) {
    case KL_F32: same = (float)back == (float)v; break;
    case KL_F16: same = kl_f32_to_f16((float)back) == kl_f32_to_f16((float)v); break;
    case KL_BF16: same = kl_f32_to_bf16((float)back) == kl_f32_to_bf16((float)v); break;
    default: same = back == v; break;
    }
    if (same)
      break;
  }
  if (!strpbrk(buf, ".eEin"))
    strcat(buf, ".0");
  put(p, buf);
}

static void put_tensor(kl_printer *p, const kl_tensor *t) {
  kl_ir_type type = kl_ir_type_of_tensor(t);
  put_type(p, &type);
  if (p->opts && p->opts->tensor_ref) {
    int64_t ref = p->opts->tensor_ref(p->opts->ctx, t);
    if (ref >= 0) {
      putf(p, "{@%" PRId64 "}", ref);
      return;
    }
  }
  put(p, "{");
  for (int64_t i = 0; i < t->numel && t->data; i++) {
    if (i)
      put(p, ", ");
    if (t->dtype == KL_BOOL)
      put(p, kl_dtype_load_i64(t->dtype, t->data, (size_t)i) ? "true" : "false");
    else if (kl_dtype_is_float(t->dtype))
      put_float_as(p, kl_dtype_load_f64(t->dtype, t->data, (size_t)i), t->dtype);
    else
      putf(p, "%" PRId64, kl_dtype_load_i64(t->dtype, t->data, (size_t)i));
  }
  put(p, "}");
}

static void put_attr(kl_printer *p, const kl_ir_attr *a) {
  put(p, a->name ? a->name : "?");
  put(p, "=");
  switch (a->kind) {
  case KL_ATTR_INT: putf(p, "%" PRId64, a->u.i); break;
  case KL_ATTR_FLOAT: put_float_as(p, a->u.f, KL_F64); break;
  case KL_ATTR_STRING: put_quoted(p, a->u.s ? a->u.s : ""); break;
  case KL_ATTR_DTYPE:
    put(p, kl_dtype_is_valid((int)a->u.dtype) ? kl_dtype_ir_name(a->u.dtype) : "Invalid");
    break;
  case KL_ATTR_TENSOR:
    if (a->u.t)
      put_tensor(p, a->u.t);
    else
      put(p, "None");
    break;
  case KL_ATTR_INTS:
  case KL_ATTR_FLOATS:
  case KL_ATTR_STRINGS:
    put(p, "[");
    for (int i = 0; i < a->n; i++) {
      if (i)
        put(p, ", ");
      if (a->kind == KL_ATTR_INTS)
        putf(p, "%" PRId64, a->u.is[i]);
      else if (a->kind == KL_ATTR_FLOATS)
        put_float_as(p, a->u.fs[i], KL_F64);
      else
        put_quoted(p, a->u.ss[i] ? a->u.ss[i] : "");
    }
    put(p, "]");
    break;
  default: put(p, "?"); break;
  }
}

static void put_value_list(kl_printer *p, kl_ir_value *const *values, int n) {
  put(p, "(");
  for (int i = 0; i < n; i++) {
    if (i)
      put(p, ", ");
    put_value(p, values[i]);
  }
  put(p, ")");
}

static void put_params(kl_printer *p, const kl_ir_block *b) {
  put(p, "(");
  for (int i = 0; i < b->n_params; i++) {
    if (i)
      put(p, ", ");
    put_value(p, b->params[i]);
    put(p, " : ");
    put_type(p, &b->params[i]->type);
  }
  put(p, ")");
}

static void put_block_body(kl_printer *p, const kl_ir_block *b, int depth);

static void put_node(kl_printer *p, const kl_ir_node *n, int depth) {
  indent(p, depth);
  for (int i = 0; i < n->n_outputs; i++) {
    if (i)
      put(p, ", ");
    put_value(p, n->outputs[i]);
    put(p, " : ");
    put_type(p, &n->outputs[i]->type);
  }
  if (n->n_outputs)
    put(p, " = ");
  put(p, kl_ir_node_op_name(n));
  if (n->op == KL_OP_FUSION_GROUP) {
    if (p->n_groups == p->cap_groups) {
      int cap = p->cap_groups ? 2 * p->cap_groups : 8;
      const kl_ir_node **groups = realloc(p->groups, (size_t)cap * sizeof *groups);
      if (!groups)
        kl_fatal_oom();
      p->groups = groups;
      p->cap_groups = cap;
    }
    putf(p, "_%d", p->n_groups);
    p->groups[p->n_groups++] = n;
  }
  if (n->n_attrs) {
    put(p, "[");
    for (int i = 0; i < n->n_attrs; i++) {
      if (i)
        put(p, ", ");
      put_attr(p, &n->attrs[i]);
    }
    put(p, "]");
  }
  put_value_list(p, n->inputs, n->n_inputs);
  put(p, "\n");
  if (n->op == KL_OP_FUSION_GROUP)
    return;
  for (int i = 0; i < n->n_blocks; i++) {
    const kl_ir_block *b = n->blocks[i];
    indent(p, depth + 1);
    putf(p, "block%d", i);
    put_params(p, b);
    put(p, ":\n");
    put_block_body(p, b, depth + 2);
    indent(p, depth + 2);
    put(p, "-> ");
    put_value_list(p, b->returns, b->n_returns);
    put(p, "\n");
  }
}

static void put_block_body(kl_printer *p, const kl_ir_block *b, int depth) {
  for (const kl_ir_node *n = b->first; n; n = n->next)
    put_node(p, n, depth);
}

/* "graph<syms>(params):", the body, "return (...)": the top graph and each fusion body. */
static void put_graph_section(kl_printer *p, const kl_ir_block *b, bool with_symbols) {
  put(p, "graph");
  const kl_ir_graph *g = p->graph;
  if (with_symbols && g->n_symbols) {
    put(p, "<");
    for (int i = 0; i < g->n_symbols; i++) {
      if (i)
        put(p, ", ");
      put_symbol_name(p, g->symbols[i].name);
      putf(p, "=%" PRId64 "..", g->symbols[i].min);
      if (g->symbols[i].max != INT64_MAX)
        putf(p, "%" PRId64, g->symbols[i].max);
    }
    put(p, ">");
  }
  if (b) {
    put_params(p, b);
    put(p, ":\n");
    put_block_body(p, b, 1);
    put(p, "  return ");
    put_value_list(p, b->returns, b->n_returns);
  } else {
    put(p, "():\n  return ()");
  }
  put(p, "\n");
}

kl_status kl_ir_print(const kl_ir_graph *g, const kl_ir_print_options *opts, char **out_text,
                      size_t *out_len) {
  if (!g || !out_text)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_ir_print: graph and out_text are required");
  kl_printer p = {0};
  p.graph = g;
  p.opts = opts;
  reserve(&p, 0);
  p.buf[0] = '\0';
  put_graph_section(&p, g->top, true);
  /* Bodies may contain further groups; they join the end of the list and print later. */
  for (int k = 0; k < p.n_groups; k++) {
    const kl_ir_node *group = p.groups[k];
    putf(&p, "with prim::FusionGroup_%d = ", k);
    put_graph_section(&p, group->n_blocks ? group->blocks[0] : NULL, false);
  }
  free(p.groups);
  *out_text = p.buf;
  if (out_len)
    *out_len = p.len;
  return NULL;
}

kl_status kl_ir_print_file(const kl_ir_graph *g, FILE *f) {
  char *text = NULL;
  size_t len = 0;
  KL_RETURN_IF_ERROR(kl_ir_print(g, NULL, &text, &len));
  size_t written = fwrite(text, 1, len, f);
  free(text);
  if (written != len || fflush(f) != 0)
    return kl_status_create(KL_ERR_IO, "writing the text IR failed after %zu of %zu bytes", written,
                            len);
  return NULL;
}
