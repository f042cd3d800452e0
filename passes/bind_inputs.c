/* Binding graph inputs to values at compile time, the way an ahead-of-time compiler
 * specializes a model (TVM's freeze_params): the input becomes a constant holding the value
 * and leaves the graph's inputs, so the passes that follow can fold what depends on it. This
 * is what makes a model whose shapes depend on input values (an ONNX Reshape whose shape is
 * a graph input, kept as onnx::Deferred) static: once the values it reads are constants,
 * canonicalize expands the deferred node into static ops.
 *
 * Not a registered pass: it takes a value, so the command line (kiln compile --bind) calls it
 * before the pipeline runs. A named symbol in the input's type takes the value's size, in
 * every type of the graph, as the interpreter binds a symbol on first sight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

/* "x (Float(2, 3)), shape (Long(2))", or "(none)", into a malloc'd string. */
static char *describe_inputs(const kl_ir_graph *g) {
  const kl_ir_block *top = g->top;
  size_t cap = 64, len = 0;
  char *s = malloc(cap);
  if (!s)
    kl_fatal_oom();
  snprintf(s, cap, "(none)");
  for (int i = 0; i < top->n_params; i++) {
    char type[256];
    kl_ir_type_format(g, &top->params[i]->type, type, sizeof type);
    size_t need = strlen(top->params[i]->name) + strlen(type) + 8;
    while (len + need >= cap) {
      cap *= 2;
      s = realloc(s, cap);
      if (!s)
        kl_fatal_oom();
    }
    len += (size_t)snprintf(s + len, cap - len, "%s%s (%s)", i ? ", " : "",
                            top->params[i]->name, type);
  }
  return s;
}

/* Gives every dim of symbol sym in t the static size. */
static void fix_symbol_in(kl_ir_type *t, int sym, int64_t size) {
  for (int d = 0; d < t->rank; d++)
    if (t->dims[d].sym == sym)
      t->dims[d] = kl_ir_dim_static(size);
}

static void fix_symbol_in_block(kl_ir_block *b, int sym, int64_t size) {
  for (int i = 0; i < b->n_params; i++)
    fix_symbol_in(&b->params[i]->type, sym, size);
  for (kl_ir_node *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->n_outputs; i++)
      fix_symbol_in(&n->outputs[i]->type, sym, size);
    for (int k = 0; k < n->n_blocks; k++)
      fix_symbol_in_block(n->blocks[k], sym, size);
  }
}

/* Checks value against the declared type of input: the same dtype and rank, the same size
 * where a dim is static, a size within the bounds where it is a symbol (the same one for
 * every dim of that symbol), any size where it is unknown. */
static kl_status check_fits(const kl_ir_graph *g, const kl_ir_value *input, const kl_tensor *value,
                            const char *source) {
  const kl_ir_type *want = &input->type;
  kl_ir_type have = kl_ir_type_of_tensor(value);
  char want_s[256], have_s[256];
  kl_ir_type_format(g, want, want_s, sizeof want_s);
  kl_ir_type_format(g, &have, have_s, sizeof have_s);
  bool fits = have.dtype == want->dtype && have.rank == want->rank;
  for (int d = 0; fits && d < want->rank; d++) {
    kl_ir_dim dim = want->dims[d];
    int64_t size = value->shape[d];
    if (kl_ir_dim_is_static(dim)) {
      fits = dim.size == size;
    } else if (dim.sym >= 0) {
      const kl_ir_symbol *sym = &g->symbols[dim.sym];
      if (size < sym->min || size > sym->max)
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "input '%s' is %s, but %s is %s: dim %d is %lld, outside the "
                                "bounds of %s (%lld..%lld)",
                                input->name, want_s, source, have_s, d, (long long)size,
                                sym->name, (long long)sym->min, (long long)sym->max);
      for (int e = 0; e < d; e++)
        if (want->dims[e].sym == dim.sym && value->shape[e] != size)
          return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "input '%s' is %s, but %s is %s: dims %d and %d are both %s",
                                  input->name, want_s, source, have_s, e, d, sym->name);
    }
  }
  if (!fits)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s' is %s, but %s is %s",
                            input->name, want_s, source, have_s);
  return NULL;
}

kl_status kl_pass_bind_input(kl_ir_graph *g, const char *name, kl_tensor *value,
                             const char *source) {
  kl_ir_block *top = g->top;
  if (!source)
    source = "the value";
  int index = -1;
  for (int i = 0; i < top->n_params && index < 0; i++)
    if (strcmp(top->params[i]->name, name) == 0)
      index = i;
  if (index < 0) {
    char *inputs = describe_inputs(g);
    kl_status s = kl_status_create(KL_ERR_NOT_FOUND, "no graph input named '%s' to bind; the "
                                   "graph's inputs are %s", name, inputs);
    free(inputs);
    return s;
  }
  kl_ir_value *input = top->params[index];
  KL_RETURN_IF_ERROR(check_fits(g, input, value, source));
  /* Symbols first: the input's own type then reads static, like the constant's. */
  for (int d = 0; d < input->type.rank; d++)
    if (input->type.dims[d].sym >= 0)
      fix_symbol_in_block(top, input->type.dims[d].sym, value->shape[d]);
  kl_ir_value *constant;
  if (top->first) {
    constant = kl_pass_insert_constant(g, value, input->name, top->first);
  } else { /* a graph that only returns its inputs */
    kl_ir_node *anchor = kl_ir_block_add_node(top, KL_OP_CONSTANT, NULL, 0, 1);
    constant = kl_pass_insert_constant(g, value, input->name, anchor);
    kl_ir_node_remove(anchor);
  }
  kl_ir_value_replace_all_uses(input, constant);
  char *kept_name = strdup(input->name);
  if (!kept_name)
    kl_fatal_oom();
  kl_ir_block_remove_param(top, index);
  /* The input's name, now free, goes to the constant (a large one's weight has it already). */
  kl_ir_value_set_name(constant, kept_name);
  free(kept_name);
  return NULL;
}
