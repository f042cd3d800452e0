/* The per-op conformance test: every case of tests/ops/cases.txt (written by gen_ops.py from
 * numpy references) is built as a one-node graph, verified, saved to a .kir file and loaded
 * back, run by the interpreter on the case's .npy inputs, and compared with the expected .npy
 * outputs. It also checks that every op of ir/ops.def except the control-flow ones has a case,
 * so a new op row without a conformance case fails here. Runs with tests/ops as its workdir. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/ir.h"
#include "ir/kir.h"
#include "ir/text.h"
#include "runtime/interp.h"
#include "runtime/npy.h"

#define MAX_FILES 16

typedef struct op_case {
  char name[128];
  kl_op op;
  char attrs[1024]; /* the text between the brackets */
  char ins[MAX_FILES][160];
  int n_ins;
  char outs[MAX_FILES][160];
  int n_outs;
  double rtol, atol;
} op_case;

/* ---- manifest -------------------------------------------------------------------------- */

static int split_files(const char *list, char files[][160], int *n) {
  *n = 0;
  while (*list) {
    const char *comma = strchr(list, ',');
    size_t len = comma ? (size_t)(comma - list) : strlen(list);
    if (*n == MAX_FILES || len == 0 || len >= 160)
      return -1;
    memcpy(files[*n], list, len);
    files[(*n)++][len] = '\0';
    list += len + (comma ? 1 : 0);
  }
  return 0;
}

/* Parses one manifest line; returns 0, or -1 with why set. */
static int parse_line(char *line, op_case *c, const char **why) {
  memset(c, 0, sizeof *c);
  c->rtol = 1e-5;
  c->atol = 1e-6;
  char op_name[128];
  int used = 0;
  if (sscanf(line, "%127s %127s %n", c->name, op_name, &used) != 2) {
    *why = "expected NAME OP";
    return -1;
  }
  if (!kl_op_lookup(op_name, strlen(op_name), &c->op)) {
    *why = "unknown op";
    return -1;
  }
  char *p = line + used;
  if (*p == '[') { /* to the matching ']', skipping quoted strings */
    int depth = 0;
    bool quoted = false;
    char *q = p;
    for (; *q; q++) {
      if (quoted) {
        if (*q == '\\' && q[1])
          q++;
        else if (*q == '"')
          quoted = false;
      } else if (*q == '"') {
        quoted = true;
      } else if (*q == '[') {
        depth++;
      } else if (*q == ']' && --depth == 0) {
        break;
      }
    }
    if (!*q || (size_t)(q - p - 1) >= sizeof c->attrs) {
      *why = "unterminated or too long attribute list";
      return -1;
    }
    memcpy(c->attrs, p + 1, (size_t)(q - p - 1));
    p = q + 1;
  }
  for (char *tok = strtok(p, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
    if (strncmp(tok, "in=", 3) == 0) {
      if (split_files(tok + 3, c->ins, &c->n_ins)) {
        *why = "bad in= list";
        return -1;
      }
    } else if (strncmp(tok, "out=", 4) == 0) {
      if (split_files(tok + 4, c->outs, &c->n_outs)) {
        *why = "bad out= list";
        return -1;
      }
    } else if (strncmp(tok, "rtol=", 5) == 0) {
      c->rtol = strtod(tok + 5, NULL);
    } else if (strncmp(tok, "atol=", 5) == 0) {
      c->atol = strtod(tok + 5, NULL);
    } else {
      *why = "unknown field";
      return -1;
    }
  }
  if (c->n_outs == 0) {
    *why = "no out= files";
    return -1;
  }
  return 0;
}

/* ---- building the graph ---------------------------------------------------------------- */

/* Sets each "name=value" of the attribute text on n, parsing values by the op's schema. */
static kl_status set_attrs(kl_ir_graph *g, kl_ir_node *n, const char *text) {
  const char *p = text;
  while (*p) {
    while (*p == ' ' || *p == ',')
      p++;
    if (!*p)
      break;
    const char *eq = strchr(p, '=');
    if (!eq)
      return kl_status_create(KL_ERR_PARSE, "attribute without '=': %s", p);
    char name[64];
    size_t nlen = (size_t)(eq - p);
    if (nlen == 0 || nlen >= sizeof name)
      return kl_status_create(KL_ERR_PARSE, "bad attribute name in %s", text);
    memcpy(name, p, nlen);
    name[nlen] = '\0';
    const char *v = eq + 1, *end = v; /* the value ends at a top-level comma */
    int depth = 0;
    bool quoted = false;
    for (; *end; end++) {
      if (quoted) {
        if (*end == '\\' && end[1])
          end++;
        else if (*end == '"')
          quoted = false;
      } else if (*end == '"') {
        quoted = true;
      } else if (*end == '[' || *end == '(' || *end == '{') {
        depth++;
      } else if (*end == ']' || *end == ')' || *end == '}') {
        depth--;
      } else if (*end == ',' && depth == 0) {
        break;
      }
    }
    const kl_attr_schema *schema = kl_op_attr_schema(n->op, name);
    if (!schema)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s has no attribute %s",
                              kl_ir_node_op_name(n), name);
    kl_ir_attr attr;
    memset(&attr, 0, sizeof attr);
    KL_RETURN_IF_ERROR(kl_status_annotate(
        kl_ir_parse_attr_value(g, v, (size_t)(end - v), (kl_ir_attr_kind)schema->kind, &attr),
        "attribute %s", name));
    attr.name = kl_arena_strdup(g->arena, name);
    kl_ir_node_set_attr(n, &attr);
    if (attr.kind == KL_ATTR_TENSOR)
      kl_tensor_release(attr.u.t); /* set_attr took its own reference */
    p = end;
  }
  return NULL;
}

/* Builds the one-node graph of case c over the tensors read from its in= files. For Param
 * and Constant the single tensor becomes the weight or the value; otherwise each is an input. */
static kl_status build_graph(const op_case *c, kl_tensor *const *ins, kl_ir_graph **out_graph) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_value *params[MAX_FILES];
  bool structural = c->op == KL_OP_PARAM || c->op == KL_OP_CONSTANT;
  int n_params = structural ? 0 : c->n_ins;
  for (int i = 0; i < n_params; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    kl_ir_type t = kl_ir_type_of_tensor(ins[i]);
    params[i] = kl_ir_block_add_param(g->top, name, &t);
  }
  kl_ir_node *n = kl_ir_block_add_node(g->top, c->op, params, n_params, c->n_outs);
  kl_status s = set_attrs(g, n, c->attrs);
  if (!s && structural) {
    if (c->n_ins != 1) {
      s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "a Param or Constant case needs one in= file");
    } else if (c->op == KL_OP_PARAM) {
      const char *wname = kl_ir_node_string(n, "name", NULL);
      if (!wname) {
        s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "prim::Param case without a name");
      } else {
        kl_ir_graph_set_weight(g, wname, ins[0]);
        n->outputs[0]->type = kl_ir_type_of_tensor(ins[0]); /* a Param declares its type */
      }
    } else {
      kl_ir_node_set_tensor(n, "value", ins[0]);
    }
  }
  if (!s)
    s = kl_ir_node_infer(n);
  if (!s) {
    for (int i = 0; i < n->n_outputs; i++)
      kl_ir_block_add_return(g->top, n->outputs[i]);
    s = kl_ir_verify(g);
  }
  if (s) {
    kl_ir_graph_destroy(g);
    return s;
  }
  *out_graph = g;
  return NULL;
}

/* ---- comparing ------------------------------------------------------------------------- */

static kl_status compare(const char *file, const kl_tensor *got, const kl_tensor *want, double rtol,
                         double atol) {
  char gs[160], ws[160];
  kl_shape_format(got->shape, got->rank, gs, sizeof gs);
  kl_shape_format(want->shape, want->rank, ws, sizeof ws);
  if (got->dtype != want->dtype || !kl_tensor_same_shape(got, want))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: got %s %s, expected %s %s", file,
                            kl_dtype_ir_name(got->dtype), gs, kl_dtype_ir_name(want->dtype), ws);
  bool is_float = kl_dtype_is_float(want->dtype);
  for (int64_t i = 0; i < want->numel; i++) {
    if (!is_float) {
      int64_t a = kl_dtype_load_i64(got->dtype, got->data, (size_t)i);
      int64_t b = kl_dtype_load_i64(want->dtype, want->data, (size_t)i);
      if (a != b)
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "%s: element %" PRId64 " is %" PRId64 ", expected %" PRId64, file,
                                i, a, b);
      continue;
    }
    double a = kl_dtype_load_f64(got->dtype, got->data, (size_t)i);
    double b = kl_dtype_load_f64(want->dtype, want->data, (size_t)i);
    bool ok = isnan(b)   ? isnan(a)
              : isinf(b) ? a == b
                         : !isnan(a) && fabs(a - b) <= atol + rtol * fabs(b);
    if (!ok)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "%s: element %" PRId64 " is %.9g, expected %.9g (rtol %g, atol %g)",
                              file, i, a, b, rtol, atol);
  }
  return NULL;
}

/* ---- one case -------------------------------------------------------------------------- */

static kl_status read_npy(const char *file, kl_tensor **out) {
  char path[256];
  snprintf(path, sizeof path, "data/%s", file);
  return kl_npy_read(path, out);
}

static kl_status run_case(const op_case *c) {
  kl_tensor *ins[MAX_FILES] = {0}, *want[MAX_FILES] = {0}, *got[MAX_FILES] = {0};
  kl_ir_graph *g = NULL, *loaded = NULL;
  char kir_path[] = "/tmp/kiln_ops_XXXXXX";
  int fd = -1;
  kl_status s = NULL;
  for (int i = 0; !s && i < c->n_ins; i++)
    s = read_npy(c->ins[i], &ins[i]);
  for (int i = 0; !s && i < c->n_outs; i++)
    s = read_npy(c->outs[i], &want[i]);
  if (!s)
    s = kl_status_annotate(build_graph(c, ins, &g), "building the graph");
  if (!s) {
    fd = mkstemp(kir_path);
    if (fd < 0)
      s = kl_status_create(KL_ERR_IO, "cannot create a temporary .kir file");
    else
      close(fd);
  }
  if (!s)
    s = kl_status_annotate(kl_kir_save(g, kir_path), "saving .kir");
  if (!s)
    s = kl_status_annotate(kl_kir_load(kir_path, &loaded), "loading .kir");
  if (!s && loaded->top->n_returns != c->n_outs)
    s = kl_status_create(KL_ERR_INTERNAL, "the loaded graph returns %d values, expected %d",
                         loaded->top->n_returns, c->n_outs);
  bool structural = c->op == KL_OP_PARAM || c->op == KL_OP_CONSTANT;
  if (!s)
    s = kl_status_annotate(kl_interp_run(loaded, ins, structural ? 0 : c->n_ins, got), "running");
  for (int i = 0; !s && i < c->n_outs; i++)
    s = compare(c->outs[i], got[i], want[i], c->rtol, c->atol);
  if (fd >= 0)
    unlink(kir_path);
  for (int i = 0; i < MAX_FILES; i++) {
    kl_tensor_release(ins[i]);
    kl_tensor_release(want[i]);
    kl_tensor_release(got[i]);
  }
  kl_ir_graph_destroy(loaded);
  kl_ir_graph_destroy(g);
  return s;
}

int main(int argc, char **argv) {
  const char *manifest = argc > 1 ? argv[1] : "cases.txt";
  FILE *f = fopen(manifest, "r");
  if (!f) {
    fprintf(stderr, "cannot open %s (run from tests/ops)\n", manifest);
    return 1;
  }
  static char line[4096];
  int n_cases = 0, n_failed = 0, n_uncovered = 0, line_no = 0;
  int covered[KL_OP_COUNT] = {0};
  op_case c;
  while (fgets(line, sizeof line, f)) {
    line_no++;
    if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
      continue;
    const char *why = NULL;
    if (parse_line(line, &c, &why)) {
      printf("FAIL %s:%d: %s\n", manifest, line_no, why);
      n_cases++;
      n_failed++;
      continue;
    }
    n_cases++;
    covered[c.op]++;
    kl_status s = run_case(&c);
    if (s) {
      printf("FAIL %-32s %s: [%s] %s\n", c.name, kl_op_get(c.op)->name,
             kl_status_code_name(kl_status_code_of(s)), kl_status_message(s));
      kl_status_destroy(s);
      n_failed++;
    } else {
      printf("ok   %-32s %s\n", c.name, kl_op_get(c.op)->name);
    }
  }
  fclose(f);
  /* Every op but the control-flow ones (tested with the interpreter) and onnx::Deferred
   * (expanded into other ops at run time; tests/unit/test_onnx_deferred.c) needs a case. */
  for (int op = 0; op < KL_OP_COUNT; op++) {
    if (op == KL_OP_IF || op == KL_OP_LOOP || op == KL_OP_FUSION_GROUP ||
        op == KL_OP_ONNX_DEFERRED || covered[op])
      continue;
    printf("FAIL %s has no conformance case in %s\n", kl_op_get((kl_op)op)->name, manifest);
    n_uncovered++;
  }
  printf("%d of %d cases passed", n_cases - n_failed, n_cases);
  if (n_uncovered)
    printf("; %d ops have no case", n_uncovered);
  printf("\n");
  return n_failed || n_uncovered ? 1 : 0;
}
