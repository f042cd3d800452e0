/* The text IR parser: reads what ir/print.c writes (and a little more: omitted types, comments,
 * free spacing) into a new graph, checks it against the op table, infers omitted types and
 * runs the verifier. Errors carry "file:line:col:" and the parser goes on at the next line
 * after one, so a file with several mistakes reports several, sorted by position.
 *
 * Grammar (newlines end statements; spaces, tabs and `# comments` are ignored elsewhere;
 * indentation is not significant, the printer just indents two spaces per level):
 *
 *   file      := graph NL+ with*                       -- nothing may follow the last section
 *   graph     := 'graph' symbols? params ':' NL body 'return' values NL
 *   with      := 'with' GROUP '=' 'graph' params ':' NL body 'return' values NL
 *   symbols   := '<' symdecl (',' symdecl)* '>'
 *   symdecl   := symname '=' INT '..' INT?                -- no upper bound: INT64_MAX
 *   params    := '(' (VALUE ':' type (',' VALUE ':' type)*)? ')'
 *   body      := node*
 *   node      := (output (',' output)* '=')? OP attrs? '(' (VALUE (',' VALUE)*)? ')' NL block*
 *   output    := VALUE (':' type)?                        -- an omitted type is inferred
 *   block     := 'block'K params ':' NL body '->' values NL  -- K = 0, 1, ... in order
 *   values    := '(' (VALUE (',' VALUE)*)? ')'
 *   attrs     := '[' (attr (',' attr)*)? ']'
 *   attr      := IDENT '=' avalue                         -- the op's schema gives the kind
 *   avalue    := INT | FLOAT | STRING | DTYPE | list | tensor   -- an INT may stand for a FLOAT
 *   list      := '[' (avalue (',' avalue)*)? ']'
 *   tensor    := type '{' (elem (',' elem)*)? '}' | type '{' '@' INT '}'
 *   elem      := INT | FLOAT | 'true' | 'false'            -- as the dtype needs, range-checked
 *   type      := DTYPE '(' (dim (',' dim)*)? ')'          -- rank <= KL_MAX_RANK
 *   dim       := INT | symname | '*'                      -- '*': unknown
 *   symname   := IDENT | STRING                           -- declared in the graph header
 *
 *   VALUE  := '%' [A-Za-z0-9_.]+ | '%' STRING
 *   STRING := '"' chars '"' with escapes \" \\ \n \t \r \xHH (\x00 is refused)
 *   INT    := [-+]?[0-9]+        FLOAT := INT with '.' or exponent, or inf, -inf, nan
 *   OP     := ns::name; prim::FusionGroup is written prim::FusionGroup_K, GROUP likewise
 *   DTYPE  := Float Half BFloat16 Double Char Byte Int Long Bool
 *
 * Scoping: a value may be used after its definition, in its block or any block nested in it;
 * a node's outputs are not visible inside its own blocks; a fusion group body (its `with`
 * section) sees only its own parameters. Names are unique in the whole file.
 *
 * The lexer and number reading are in ir/parse_lex.c; state shared by the two files is in
 * ir/parse_internal.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/limits.h"
#include "parse_internal.h"

/* ---- names and scopes ------------------------------------------------------------------- */

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static name_entry *name_find(kl_ir_parser *P, const char *name) {
  if (!P->cap_names)
    return NULL;
  size_t mask = P->cap_names - 1;
  for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
    if (!P->names[i].name)
      return NULL;
    if (strcmp(P->names[i].name, name) == 0)
      return &P->names[i];
  }
}

static name_entry *name_insert(kl_ir_parser *P, const char *name) {
  if (2 * (P->n_names + 1) > P->cap_names) {
    size_t cap = P->cap_names ? 2 * P->cap_names : 64;
    name_entry *old = P->names;
    size_t old_cap = P->cap_names;
    P->names = calloc(cap, sizeof *P->names);
    if (!P->names)
      kl_fatal_oom();
    P->cap_names = cap;
    for (size_t i = 0; i < old_cap; i++) {
      if (!old[i].name)
        continue;
      size_t j = hash_name(old[i].name) & (cap - 1);
      while (P->names[j].name)
        j = (j + 1) & (cap - 1);
      P->names[j] = old[i];
    }
    free(old);
  }
  size_t mask = P->cap_names - 1, i = hash_name(name) & mask;
  while (P->names[i].name)
    i = (i + 1) & mask;
  P->names[i].name = name;
  P->n_names++;
  return &P->names[i];
}

static bool scope_active(const kl_ir_parser *P, int scope) {
  for (int i = P->n_scopes - 1; i >= 0; i--)
    if (P->scopes[i] == scope)
      return true;
  return false;
}

static int scope_push(kl_ir_parser *P) {
  P->scopes = kl_ir_parse_grow(P->scopes, &P->cap_scopes, P->n_scopes + 1, sizeof *P->scopes);
  P->scopes[P->n_scopes++] = P->next_scope;
  return P->next_scope++;
}

/* Records a definition in the current scope; false (with an error) for a second definition. */
static bool define_name(kl_ir_parser *P, const char *name, kl_ir_value *v, int line, int col,
                        bool pending) {
  name_entry *e = name_find(P, name);
  if (e) {
    char lb[200];
    if (e->value || v) /* a poisoned name redefined by another failure is not news */
      kl_ir_parse_error_at(P, line, col, "%s is defined twice (first at %d:%d)",
                           kl_ir_parse_value_label(name, lb, sizeof lb), e->line, e->col);
    return false;
  }
  e = name_insert(P, name);
  e->value = v;
  e->line = line;
  e->col = col;
  e->scope = P->n_scopes ? P->scopes[P->n_scopes - 1] : -1;
  e->pending = pending;
  return true;
}

/* The value a use names, or NULL (an error recorded, or deferred to the end of the file when
 * the name is not defined yet). */
static kl_ir_value *resolve(kl_ir_parser *P, const char *name, int line, int col) {
  name_entry *e = name_find(P, name);
  char lb[200];
  if (!e) {
    P->uses = kl_ir_parse_grow(P->uses, &P->cap_uses, P->n_uses + 1, sizeof *P->uses);
    P->uses[P->n_uses++] = (pending_use){name, line, col};
    return NULL;
  }
  if (!e->value)
    return NULL; /* its definition failed and was reported */
  if (e->pending) {
    kl_ir_parse_error_at(P, line, col,
                         "%s is used inside a block of the node that defines it (at %d:%d)",
                         kl_ir_parse_value_label(name, lb, sizeof lb), e->line, e->col);
    return NULL;
  }
  if (!scope_active(P, e->scope)) {
    kl_ir_parse_error_at(P, line, col,
                         "%s (defined at %d:%d) is not visible here: it is in another block",
                         kl_ir_parse_value_label(name, lb, sizeof lb), e->line, e->col);
    return NULL;
  }
  return e->value;
}

/* ---- types ------------------------------------------------------------------------------ */

static bool parse_dtype(kl_ir_parser *P, kl_dtype *out) {
  if (!tok_is(P, T_IDENT) || !kl_dtype_from_ir_name(P->tok.start, P->tok.len, out))
    return kl_ir_parse_expected(
        P, "a dtype (Float, Half, BFloat16, Double, Char, Byte, Int, Long, Bool)");
  kl_ir_lex_next(P);
  return true;
}

/* type := DTYPE '(' dims ')'; static_only refuses symbols and '*' (tensor literals). */
static bool parse_type(kl_ir_parser *P, bool static_only, kl_ir_type *out) {
  memset(out, 0, sizeof *out);
  if (!parse_dtype(P, &out->dtype) || !kl_ir_parse_expect_punct(P, '('))
    return false;
  if (tok_punct(P, ')')) {
    kl_ir_lex_next(P);
    return true;
  }
  for (;;) {
    if (out->rank == KL_MAX_RANK || (uint64_t)out->rank >= kl_limits_get()->max_rank) {
      kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "rank exceeds the maximum of %d",
                           (int)kl_limits_get()->max_rank);
      return false;
    }
    kl_ir_dim *d = &out->dims[out->rank];
    int line = P->tok.line, col = P->tok.col;
    if (tok_is(P, T_INT)) {
      int64_t size;
      if (!kl_ir_parse_int(P, &size))
        return false;
      if (size < 0) {
        kl_ir_parse_error_at(P, line, col, "dimension %" PRId64 " is negative", size);
        return false;
      }
      *d = kl_ir_dim_static(size);
    } else if (!static_only && tok_punct(P, '*')) {
      d->sym = KL_DIM_UNKNOWN;
      kl_ir_lex_next(P);
    } else if (!static_only && (tok_is(P, T_IDENT) || tok_is(P, T_STRING))) {
      char *name = tok_is(P, T_STRING) ? P->tok.str
                                       : kl_arena_strndup(P->g->arena, P->tok.start, P->tok.len);
      int sym = kl_ir_graph_find_symbol(P->g, name);
      if (sym < 0) {
        char esc[160];
        kl_ir_parse_escape(name, strlen(name), esc, sizeof esc, 60, true);
        kl_ir_parse_error_at(P, line, col,
                             "dimension symbol '%s' is not declared in the graph header", esc);
        return false;
      }
      d->sym = sym;
      kl_ir_lex_next(P);
    } else {
      return kl_ir_parse_expected(P, static_only ? "a dimension size"
                                                 : "a dimension (size, symbol or '*')");
    }
    out->rank++;
    if (tok_punct(P, ')')) {
      kl_ir_lex_next(P);
      return true;
    }
    if (!kl_ir_parse_expect_punct(P, ','))
      return false;
  }
}

/* ---- attribute values ------------------------------------------------------------------- */

static bool int_fits(kl_dtype dt, int64_t v) {
  switch (dt) {
  case KL_I8: return v >= INT8_MIN && v <= INT8_MAX;
  case KL_U8: return v >= 0 && v <= UINT8_MAX;
  case KL_I32: return v >= INT32_MIN && v <= INT32_MAX;
  default: return true;
  }
}

/* tensor := type '{' elems '}' | type '{' '@' INT '}'. The new tensor is returned with one
 * reference that the caller owns. */
static bool parse_tensor(kl_ir_parser *P, kl_tensor **out) {
  kl_ir_type type;
  int line = P->tok.line, col = P->tok.col;
  if (!parse_type(P, true, &type) || !kl_ir_parse_expect_punct(P, '{'))
    return false;
  if (tok_punct(P, '@')) {
    kl_ir_lex_next(P);
    int ref_line = P->tok.line, ref_col = P->tok.col;
    int64_t index;
    if (!kl_ir_parse_int(P, &index) || !kl_ir_parse_expect_punct(P, '}'))
      return false;
    if (!P->opts || !P->opts->resolve_tensor) {
      kl_ir_parse_error_at(P, ref_line, ref_col,
                           "tensor reference {@%" PRId64 "} needs the weights of a .kir file",
                           index);
      return false;
    }
    kl_status s = P->opts->resolve_tensor(P->opts->ctx, index, &type, out);
    if (s) {
      kl_ir_parse_error_at(P, ref_line, ref_col, "tensor reference {@%" PRId64 "}: %s", index,
                           kl_status_message(s));
      kl_status_destroy(s);
      return false;
    }
    return true;
  }
  int64_t numel;
  if (!kl_ir_type_numel(&type, &numel)) {
    kl_ir_parse_error_at(P, line, col, "tensor literal has too many elements");
    return false;
  }
  /* Elements are read first so a short list never allocates a huge tensor. */
  double *fs = NULL;
  int64_t *is = NULL;
  int n = 0, cap = 0;
  bool is_float = kl_dtype_is_float(type.dtype), ok = true;
  while (ok && !tok_punct(P, '}')) {
    if (n && !(ok = kl_ir_parse_expect_punct(P, ',')))
      break;
    int eline = P->tok.line, ecol = P->tok.col;
    if (is_float) {
      fs = kl_ir_parse_grow(fs, &cap, n + 1, sizeof *fs);
      ok = kl_ir_parse_float(P, &fs[n]);
    } else {
      is = kl_ir_parse_grow(is, &cap, n + 1, sizeof *is);
      if (type.dtype == KL_BOOL) {
        if (tok_ident(P, "true") || tok_ident(P, "false")) {
          is[n] = tok_ident(P, "true");
          kl_ir_lex_next(P);
        } else {
          ok = kl_ir_parse_expected(P, "true or false");
        }
      } else if ((ok = kl_ir_parse_int(P, &is[n])) && !int_fits(type.dtype, is[n])) {
        kl_ir_parse_error_at(P, eline, ecol, "%" PRId64 " does not fit in %s", is[n],
                             kl_dtype_ir_name(type.dtype));
        ok = false;
      }
    }
    n++;
  }
  if (ok && n != numel) {
    kl_ir_parse_error_at(P, line, col, "tensor literal has %d elements, its shape needs %" PRId64,
                         n, numel);
    ok = false;
  }
  int64_t shape[KL_MAX_RANK];
  kl_tensor *t = NULL;
  if (ok) {
    kl_ir_type_shape(&type, shape);
    kl_status s = kl_tensor_create(type.dtype, type.rank, shape, &t);
    if (s) {
      kl_ir_parse_error_at(P, line, col, "tensor literal: %s", kl_status_message(s));
      kl_status_destroy(s);
      ok = false;
    }
  }
  if (ok) {
    for (int i = 0; i < n; i++) {
      if (is_float)
        kl_dtype_store_f64(t->dtype, t->data, (size_t)i, fs[i]);
      else
        kl_dtype_store_i64(t->dtype, t->data, (size_t)i, is[i]);
    }
    kl_ir_lex_next(P); /* '}' */
    *out = t;
  }
  free(fs);
  free(is);
  return ok;
}

/* One value of the given kind into attr (name untouched), arrays and strings in the arena. */
static bool parse_attr_value(kl_ir_parser *P, kl_ir_attr_kind kind, kl_ir_attr *attr) {
  attr->kind = kind;
  attr->n = 0;
  switch (kind) {
  case KL_ATTR_INT: return kl_ir_parse_int(P, &attr->u.i);
  case KL_ATTR_FLOAT: return kl_ir_parse_float(P, &attr->u.f);
  case KL_ATTR_STRING:
    if (!tok_is(P, T_STRING))
      return kl_ir_parse_expected(P, "a string");
    attr->u.s = P->tok.str;
    kl_ir_lex_next(P);
    return true;
  case KL_ATTR_DTYPE: return parse_dtype(P, &attr->u.dtype);
  case KL_ATTR_TENSOR: attr->u.t = NULL; return parse_tensor(P, &attr->u.t);
  case KL_ATTR_INTS:
  case KL_ATTR_FLOATS:
  case KL_ATTR_STRINGS: break;
  default: return kl_ir_parse_expected(P, "an attribute of a known kind");
  }
  if (!kl_ir_parse_expect_punct(P, '['))
    return false;
  size_t elem = kind == KL_ATTR_INTS     ? sizeof(int64_t)
                : kind == KL_ATTR_FLOATS ? sizeof(double)
                                         : sizeof(char *);
  char *items = NULL;
  int n = 0, cap = 0;
  bool ok = true;
  while (ok && !tok_punct(P, ']')) {
    if (n && !(ok = kl_ir_parse_expect_punct(P, ',')))
      break;
    items = kl_ir_parse_grow(items, &cap, n + 1, elem);
    if (kind == KL_ATTR_INTS) {
      ok = kl_ir_parse_int(P, (int64_t *)items + n);
    } else if (kind == KL_ATTR_FLOATS) {
      ok = kl_ir_parse_float(P, (double *)items + n);
    } else if (tok_is(P, T_STRING)) {
      ((char **)items)[n] = P->tok.str;
      kl_ir_lex_next(P);
    } else {
      ok = kl_ir_parse_expected(P, "a string");
    }
    n++;
  }
  if (ok) {
    kl_ir_lex_next(P); /* ']' */
    void *copy = kl_arena_alloc(P->g->arena, (size_t)(n ? n : 1) * elem);
    if (n)
      memcpy(copy, items, (size_t)n * elem);
    attr->n = n;
    if (kind == KL_ATTR_INTS)
      attr->u.is = copy;
    else if (kind == KL_ATTR_FLOATS)
      attr->u.fs = copy;
    else
      attr->u.ss = copy;
  }
  free(items);
  return ok;
}

/* ---- nodes and blocks ------------------------------------------------------------------- */

typedef struct out_decl {
  const char *name;
  int line, col;
  bool has_type;
  kl_ir_type type;
} out_decl;

/* Everything on one node line, gathered before the node is created. */
typedef struct node_line {
  out_decl *outs;
  int n_outs, cap_outs;
  kl_ir_value **ins;
  int n_ins, cap_ins;
  kl_ir_attr *attrs;
  int n_attrs, cap_attrs;
} node_line;

static void node_line_free(node_line *nl) {
  for (int i = 0; i < nl->n_attrs; i++)
    if (nl->attrs[i].kind == KL_ATTR_TENSOR)
      kl_tensor_release(nl->attrs[i].u.t);
  free(nl->outs);
  free(nl->ins);
  free(nl->attrs);
}

static void record_node_pos(kl_ir_parser *P, const kl_ir_node *n, int line, int col) {
  P->node_pos =
      kl_ir_parse_grow(P->node_pos, &P->cap_node_pos, 2 * (n->id + 1), sizeof *P->node_pos);
  P->node_pos[2 * n->id] = line;
  P->node_pos[2 * n->id + 1] = col;
}

static void mark_omitted(kl_ir_parser *P, const kl_ir_value *v) {
  P->omitted = kl_ir_parse_grow(P->omitted, &P->cap_omitted, v->id + 1, sizeof *P->omitted);
  P->omitted[v->id] = 1;
}

static bool is_omitted(const kl_ir_parser *P, const kl_ir_value *v) {
  return v->id < P->cap_omitted && P->omitted[v->id];
}

/* An omitted type that could not be inferred: users of the value are not inferred either. */
static bool is_failed(const kl_ir_parser *P, const kl_ir_value *v) {
  return v->id < P->cap_omitted && P->omitted[v->id] == 2;
}

static void mark_failed(kl_ir_parser *P, const kl_ir_node *n) {
  for (int i = 0; i < n->n_outputs; i++)
    if (is_omitted(P, n->outputs[i]))
      P->omitted[n->outputs[i]->id] = 2;
}

/* Gives v the name the text gave it. The parser checks uniqueness itself, so the graph's
 * renaming to "name.1" would mean the two tables disagree. */
static bool name_value(kl_ir_parser *P, kl_ir_value *v, const char *name, int line, int col) {
  /* A sibling output may still hold the number it got when the node was made: move it on. */
  kl_ir_value *holder = kl_ir_graph_find_value(P->g, name);
  if (holder && holder != v && v->node && holder->node == v->node)
    kl_ir_value_set_name(holder, NULL);
  kl_ir_value_set_name(v, name);
  if (strcmp(v->name, name) != 0) {
    char lb[200];
    kl_ir_parse_error_at(P, line, col, "%s clashes with a name the graph already holds",
                         kl_ir_parse_value_label(name, lb, sizeof lb));
    return false;
  }
  return true;
}

static bool is_block_word(const kl_ir_parser *P) {
  if (!tok_is(P, T_IDENT) || P->tok.len < 5 || memcmp(P->tok.start, "block", 5) != 0)
    return false;
  for (size_t i = 5; i < P->tok.len; i++)
    if (!is_digit(P->tok.start[i]))
      return false;
  return true;
}

/* params := '(' (VALUE ':' type),* ')'; each parameter is defined in the current scope. */
static bool parse_params(kl_ir_parser *P, kl_ir_block *b) {
  if (!kl_ir_parse_expect_punct(P, '('))
    return false;
  bool first = true;
  while (!tok_punct(P, ')')) {
    if (!first && !kl_ir_parse_expect_punct(P, ','))
      return false;
    first = false;
    if (!tok_is(P, T_VALUE))
      return kl_ir_parse_expected(P, "a parameter %name");
    const char *name = P->tok.str;
    int line = P->tok.line, col = P->tok.col;
    kl_ir_lex_next(P);
    kl_ir_type type;
    if (!kl_ir_parse_expect_punct(P, ':') || !parse_type(P, false, &type)) {
      define_name(P, name, NULL, line, col, false); /* later uses are not news */
      return false;
    }
    if (name_find(P, name)) {
      define_name(P, name, NULL, line, col, false); /* reports the duplicate */
      continue;
    }
    kl_ir_value *v = kl_ir_block_add_param(b, name, &type);
    if (name_value(P, v, name, line, col))
      define_name(P, name, v, line, col, false);
  }
  kl_ir_lex_next(P);
  return true;
}

/* values := '(' VALUE,* ')'. Syntax errors return false; names that do not resolve leave
 * *all_resolved false (their errors are recorded or deferred). */
static bool parse_uses(kl_ir_parser *P, kl_ir_value ***values, int *n, int *cap,
                       bool *all_resolved) {
  *all_resolved = true;
  if (!kl_ir_parse_expect_punct(P, '('))
    return false;
  while (!tok_punct(P, ')')) {
    if (*n && !kl_ir_parse_expect_punct(P, ','))
      return false;
    if (!tok_is(P, T_VALUE))
      return kl_ir_parse_expected(P, "a value %name");
    kl_ir_value *v = resolve(P, P->tok.str, P->tok.line, P->tok.col);
    if (!v)
      *all_resolved = false;
    *values = kl_ir_parse_grow(*values, cap, *n + 1, sizeof **values);
    (*values)[(*n)++] = v;
    kl_ir_lex_next(P);
  }
  kl_ir_lex_next(P);
  return true;
}

/* "return (...)" or "-> (...)" after the keyword: the block's returns, then end of line. */
static void parse_returns(kl_ir_parser *P, kl_ir_block *b) {
  kl_ir_value **vals = NULL;
  int n = 0, cap = 0;
  bool resolved;
  if (parse_uses(P, &vals, &n, &cap, &resolved) && kl_ir_parse_expect_eol(P)) {
    if (resolved)
      for (int i = 0; i < n; i++)
        kl_ir_block_add_return(b, vals[i]);
  } else {
    kl_ir_parse_skip_line(P);
  }
  free(vals);
}

static void parse_body(kl_ir_parser *P, kl_ir_block *b, bool is_graph);

/* block := 'block'K params ':' NL body '->' values NL, added to node. */
static void parse_block(kl_ir_parser *P, kl_ir_node *node, int index) {
  if (P->depth >= MAX_DEPTH) {
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "blocks nested deeper than %d", MAX_DEPTH);
    P->fatal = true;
    return;
  }
  char want[32];
  snprintf(want, sizeof want, "block%d", index);
  if (!tok_ident(P, want))
    kl_ir_parse_expected(P, want);
  kl_ir_lex_next(P);
  kl_ir_block *b = kl_ir_node_add_block(node);
  int saved = P->n_scopes;
  scope_push(P);
  P->depth++;
  if (!parse_params(P, b) || !kl_ir_parse_expect_punct(P, ':') || !kl_ir_parse_expect_eol(P))
    kl_ir_parse_skip_line(P);
  parse_body(P, b, false);
  P->depth--;
  P->n_scopes = saved;
}

/* The block lines after a node; node NULL parses them into a throwaway node (after an error).
 * Returns how many there were. */
static int parse_blocks(kl_ir_parser *P, kl_ir_node *node) {
  int count = 0;
  for (;;) {
    kl_ir_parse_skip_blank_lines(P);
    if (!is_block_word(P) || P->fatal)
      return count;
    if (!node)
      node = kl_ir_node_create(P->g, KL_OP_IF, NULL, 0, 0);
    parse_block(P, node, count++);
  }
}

static bool parse_group_number(kl_ir_parser *P, int64_t *out_k) {
  static const char prefix[] = "prim::FusionGroup_";
  size_t plen = sizeof prefix - 1;
  const kl_ir_token *t = &P->tok;
  if (t->kind != T_IDENT || t->len <= plen || t->len > plen + 9 ||
      memcmp(t->start, prefix, plen) != 0)
    return false;
  int64_t k = 0;
  for (size_t i = plen; i < t->len; i++) {
    if (!is_digit(t->start[i]))
      return false;
    k = 10 * k + (t->start[i] - '0');
  }
  *out_k = k;
  return true;
}

static void arity_error(kl_ir_parser *P, int line, int col, const char *op, const char *what,
                        int min, int max, int found) {
  if (max < 0)
    kl_ir_parse_error_at(P, line, col, "%s takes at least %d %ss, found %d", op, min, what, found);
  else if (min == max)
    kl_ir_parse_error_at(P, line, col, "%s takes %d %s%s, found %d", op, min, what,
                         min == 1 ? "" : "s", found);
  else
    kl_ir_parse_error_at(P, line, col, "%s takes %d to %d %ss, found %d", op, min, max, what,
                         found);
}

/* The part of a node line after the outputs: op, attributes, inputs, end of line. */
static bool parse_node_rest(kl_ir_parser *P, node_line *nl, kl_op *out_op, int64_t *out_group,
                            bool *resolved) {
  *out_group = -1;
  if (!tok_is(P, T_IDENT))
    return kl_ir_parse_expected(P, "an op name");
  int line = P->tok.line, col = P->tok.col;
  char esc[160];
  kl_ir_parse_escape(P->tok.start, P->tok.len, esc, sizeof esc, 60, false);
  if (parse_group_number(P, out_group)) {
    *out_op = KL_OP_FUSION_GROUP;
  } else if (!kl_op_lookup(P->tok.start, P->tok.len, out_op)) {
    kl_ir_parse_error_at(P, line, col, "unknown op '%s'", esc);
    return false;
  } else if (*out_op == KL_OP_FUSION_GROUP) {
    kl_ir_parse_error_at(P, line, col,
                         "write prim::FusionGroup as prim::FusionGroup_K, with its body in a "
                         "`with prim::FusionGroup_K = graph(...)` section");
    return false;
  }
  const char *op_name = kl_op_get(*out_op)->name;
  kl_ir_lex_next(P);
  if (tok_punct(P, '[')) {
    kl_ir_lex_next(P);
    while (!tok_punct(P, ']')) {
      if (nl->n_attrs && !kl_ir_parse_expect_punct(P, ','))
        return false;
      if (!tok_is(P, T_IDENT))
        return kl_ir_parse_expected(P, "an attribute name");
      char *name = kl_arena_strndup(P->g->arena, P->tok.start, P->tok.len);
      const kl_attr_schema *schema = kl_op_attr_schema(*out_op, name);
      if (!schema) {
        kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "%s has no attribute '%s'", op_name, name);
        return false;
      }
      for (int i = 0; i < nl->n_attrs; i++) {
        if (strcmp(nl->attrs[i].name, name) == 0) {
          kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "attribute '%s' of %s given twice", name,
                               op_name);
          return false;
        }
      }
      kl_ir_lex_next(P);
      if (!kl_ir_parse_expect_punct(P, '='))
        return false;
      char what[160];
      snprintf(what, sizeof what, "attribute %s of %s (%s)", name, op_name,
               kl_ir_attr_kind_name((kl_ir_attr_kind)schema->kind));
      P->what = what;
      nl->attrs = kl_ir_parse_grow(nl->attrs, &nl->cap_attrs, nl->n_attrs + 1, sizeof *nl->attrs);
      kl_ir_attr *a = &nl->attrs[nl->n_attrs];
      memset(a, 0, sizeof *a);
      bool ok = parse_attr_value(P, (kl_ir_attr_kind)schema->kind, a);
      P->what = NULL;
      if (!ok)
        return false;
      a->name = name;
      nl->n_attrs++;
    }
    kl_ir_lex_next(P);
  }
  if (!parse_uses(P, &nl->ins, &nl->n_ins, &nl->cap_ins, resolved))
    return false;
  return kl_ir_parse_expect_eol(P);
}

/* Checks a well-formed node line against the op table; false with errors. */
static bool check_node_line(kl_ir_parser *P, const node_line *nl, kl_op op, int line, int col) {
  const kl_op_info *info = kl_op_get(op);
  bool ok = true;
  if (nl->n_ins < info->min_inputs || (info->max_inputs >= 0 && nl->n_ins > info->max_inputs)) {
    arity_error(P, line, col, info->name, "input", info->min_inputs, info->max_inputs, nl->n_ins);
    ok = false;
  }
  if (nl->n_outs < info->min_outputs ||
      (info->max_outputs >= 0 && nl->n_outs > info->max_outputs)) {
    arity_error(P, line, col, info->name, "output", info->min_outputs, info->max_outputs,
                nl->n_outs);
    ok = false;
  }
  for (int i = 0; i < info->n_attrs; i++) {
    if (!info->attrs[i].required)
      continue;
    bool found = false;
    for (int j = 0; j < nl->n_attrs; j++)
      found |= strcmp(nl->attrs[j].name, info->attrs[i].name) == 0;
    if (!found) {
      kl_ir_parse_error_at(P, line, col, "%s is missing its required attribute '%s'", info->name,
                           info->attrs[i].name);
      ok = false;
    }
  }
  return ok;
}

/* node := outputs '=' OP attrs? values NL block*, appended to b. */
static void parse_node(kl_ir_parser *P, kl_ir_block *b) {
  int line = P->tok.line, col = P->tok.col;
  node_line nl = {0};
  bool syntax = true, resolved = true;
  kl_op op = KL_OP_COUNT;
  int64_t group = -1;
  int op_line = line, op_col = col;
  if (tok_is(P, T_VALUE)) {
    for (;;) {
      if (!tok_is(P, T_VALUE)) {
        syntax = kl_ir_parse_expected(P, "an output %name");
        break;
      }
      nl.outs = kl_ir_parse_grow(nl.outs, &nl.cap_outs, nl.n_outs + 1, sizeof *nl.outs);
      out_decl *d = &nl.outs[nl.n_outs++];
      d->name = P->tok.str;
      d->line = P->tok.line;
      d->col = P->tok.col;
      d->has_type = false;
      kl_ir_lex_next(P);
      if (tok_punct(P, ':')) {
        kl_ir_lex_next(P);
        if (!(syntax = parse_type(P, false, &d->type)))
          break;
        d->has_type = true;
      }
      if (!tok_punct(P, ','))
        break;
      kl_ir_lex_next(P);
    }
    if (syntax)
      syntax = kl_ir_parse_expect_punct(P, '=');
  }
  if (syntax) {
    op_line = P->tok.line;
    op_col = P->tok.col;
    syntax = parse_node_rest(P, &nl, &op, &group, &resolved);
  }
  bool ok = syntax && resolved && check_node_line(P, &nl, op, op_line, op_col);
  for (int i = 0; ok && op == KL_OP_PARAM && i < nl.n_outs; i++) {
    if (!nl.outs[i].has_type) {
      kl_ir_parse_error_at(P, nl.outs[i].line, nl.outs[i].col,
                           "a prim::Param output needs its type: nothing can infer it");
      ok = false;
    }
  }
  if (!syntax)
    kl_ir_parse_skip_line(P);
  if (!ok) {
    for (int i = 0; i < nl.n_outs; i++)
      define_name(P, nl.outs[i].name, NULL, nl.outs[i].line, nl.outs[i].col, false);
    node_line_free(&nl);
    parse_blocks(P, NULL);
    return;
  }

  if ((uint64_t)P->g->next_node_id >= kl_limits_get()->max_nodes) {
    /* the limit on nodes per graph (runtime/limits.h); kl_ir_parse makes this KL_ERR_LIMIT */
    kl_ir_parse_error_at(P, op_line, op_col, "more than %llu nodes, over the limit max_nodes; "
                         "raise it with KILN_LIMITS=max_nodes=N",
                         (unsigned long long)kl_limits_get()->max_nodes);
    P->fatal = true;
    node_line_free(&nl);
    return;
  }
  kl_ir_node *node = kl_ir_node_create(P->g, op, nl.ins, nl.n_ins, nl.n_outs);
  record_node_pos(P, node, op_line, op_col);
  for (int i = 0; i < nl.n_attrs; i++)
    kl_ir_node_set_attr(node, &nl.attrs[i]);
  for (int i = 0; i < nl.n_outs; i++) {
    out_decl *d = &nl.outs[i];
    kl_ir_value *v = node->outputs[i];
    if (d->has_type)
      v->type = d->type;
    else
      mark_omitted(P, v);
    if (name_find(P, d->name))
      define_name(P, d->name, NULL, d->line, d->col, false); /* reports the duplicate */
    else if (name_value(P, v, d->name, d->line, d->col))
      define_name(P, d->name, v, d->line, d->col, true);
  }
  kl_ir_block_append(b, node);

  if (op == KL_OP_FUSION_GROUP) {
    kl_ir_node_add_block(node);
    for (int i = 0; i < P->n_groups; i++) {
      if (P->groups[i].k == group) {
        kl_ir_parse_error_at(P, op_line, op_col,
                             "prim::FusionGroup_%" PRId64 " is used twice (first at %d:%d)", group,
                             P->groups[i].line, P->groups[i].col);
        group = -1;
        break;
      }
    }
    if (group >= 0) {
      P->groups = kl_ir_parse_grow(P->groups, &P->cap_groups, P->n_groups + 1, sizeof *P->groups);
      P->groups[P->n_groups++] = (group_entry){group, node, op_line, op_col, false};
    }
    int stray = parse_blocks(P, NULL);
    if (stray)
      kl_ir_parse_error_at(P, op_line, op_col,
                           "prim::FusionGroup_%" PRId64 " takes its body from a `with` "
                           "section, not from block lines",
                           group);
  } else {
    int count = parse_blocks(P, node);
    int want = kl_op_get(op)->n_blocks;
    if (count != want && !P->fatal)
      kl_ir_parse_error_at(P, op_line, op_col, "%s takes %d block%s, found %d", kl_op_get(op)->name,
                           want, want == 1 ? "" : "s", count);
  }
  for (int i = 0; i < nl.n_outs; i++) {
    name_entry *e = name_find(P, nl.outs[i].name);
    if (e && e->value == node->outputs[i])
      e->pending = false;
  }
  node_line_free(&nl);
}

/* body := node*, ended by "return (...)" (graphs) or "-> (...)" (blocks). */
static void parse_body(kl_ir_parser *P, kl_ir_block *b, bool is_graph) {
  const char *ender = is_graph ? "a node or 'return'" : "a node or '->'";
  for (;;) {
    kl_ir_parse_skip_blank_lines(P);
    if (P->fatal)
      return;
    if (tok_is(P, T_EOF)) {
      kl_ir_parse_expected(P, ender);
      return;
    }
    if (is_graph ? tok_ident(P, "return") : tok_is(P, T_ARROW)) {
      kl_ir_lex_next(P);
      parse_returns(P, b);
      return;
    }
    if (tok_ident(P, "with") || (is_block_word(P) && !is_graph)) {
      kl_ir_parse_expected(P, ender); /* the enclosing structure goes on from here */
      return;
    }
    if (is_block_word(P)) {
      kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "block without a node that takes blocks");
      parse_blocks(P, NULL);
      continue;
    }
    parse_node(P, b);
  }
}

/* symbols := '<' (symname '=' INT '..' INT?),* '>' */
static bool parse_symbols(kl_ir_parser *P) {
  kl_ir_lex_next(P);
  bool first = true;
  while (!tok_punct(P, '>')) {
    if (!first && !kl_ir_parse_expect_punct(P, ','))
      return false;
    first = false;
    int line = P->tok.line, col = P->tok.col;
    char *name;
    if (tok_is(P, T_STRING))
      name = P->tok.str;
    else if (tok_is(P, T_IDENT))
      name = kl_arena_strndup(P->g->arena, P->tok.start, P->tok.len);
    else
      return kl_ir_parse_expected(P, "a dimension symbol name");
    kl_ir_lex_next(P);
    int64_t min, max = INT64_MAX;
    if (!kl_ir_parse_expect_punct(P, '=') || !kl_ir_parse_int(P, &min))
      return false;
    if (!tok_is(P, T_DOTDOT))
      return kl_ir_parse_expected(P, "'..'");
    kl_ir_lex_next(P);
    if (tok_is(P, T_INT) && !kl_ir_parse_int(P, &max))
      return false;
    if (min < 0) {
      kl_ir_parse_error_at(P, line, col, "symbol '%s' has a negative lower bound", name);
      return false;
    }
    int index;
    kl_status s = kl_ir_graph_add_symbol(P->g, name, min, max, &index);
    if (s) {
      kl_ir_parse_error_at(P, line, col, "%s", kl_status_message(s));
      kl_status_destroy(s);
      return false;
    }
  }
  kl_ir_lex_next(P);
  return true;
}

/* with := 'with' GROUP '=' 'graph' params ':' NL body 'return' values NL */
static void parse_with(kl_ir_parser *P) {
  int line = P->tok.line, col = P->tok.col;
  kl_ir_lex_next(P);
  int64_t k = -1;
  kl_ir_block *body = NULL;
  bool ok = true;
  if (!parse_group_number(P, &k)) {
    ok = kl_ir_parse_expected(P, "prim::FusionGroup_K");
  } else {
    group_entry *ge = NULL;
    for (int i = 0; i < P->n_groups; i++)
      if (P->groups[i].k == k)
        ge = &P->groups[i];
    if (!ge)
      kl_ir_parse_error_at(P, line, col,
                           "`with` section for prim::FusionGroup_%" PRId64 ", which no node "
                           "before it uses",
                           k);
    else if (ge->has_body)
      kl_ir_parse_error_at(P, line, col, "prim::FusionGroup_%" PRId64 " has two `with` sections",
                           k);
    else {
      ge->has_body = true;
      body = ge->node->blocks[0];
    }
    kl_ir_lex_next(P);
    ok = kl_ir_parse_expect_punct(P, '=');
    if (ok && !tok_ident(P, "graph"))
      ok = kl_ir_parse_expected(P, "'graph'");
    else if (ok)
      kl_ir_lex_next(P);
    if (ok && tok_punct(P, '<')) {
      kl_ir_parse_error_at(P, P->tok.line, P->tok.col,
                           "dimension symbols are declared on the first graph's "
                           "header only");
      ok = false;
    }
  }
  if (!body) /* errors above: parse the body anyway, into a throwaway group */
    body = kl_ir_node_add_block(kl_ir_node_create(P->g, KL_OP_FUSION_GROUP, NULL, 0, 0));
  int saved = P->n_scopes;
  P->n_scopes = 0; /* a body sees only its own parameters */
  scope_push(P);
  if (!ok || !parse_params(P, body) || !kl_ir_parse_expect_punct(P, ':') ||
      !kl_ir_parse_expect_eol(P))
    kl_ir_parse_skip_line(P);
  parse_body(P, body, true);
  P->n_scopes = saved;
}

/* ---- after parsing: deferred checks, type inference ------------------------------------- */

static void check_deferred(kl_ir_parser *P) {
  char lb[200];
  for (int i = 0; i < P->n_uses; i++) {
    pending_use *u = &P->uses[i];
    name_entry *e = name_find(P, u->name);
    if (e)
      kl_ir_parse_error_at(P, u->line, u->col, "%s used before it is defined (at %d:%d)",
                           kl_ir_parse_value_label(u->name, lb, sizeof lb), e->line, e->col);
    else
      kl_ir_parse_error_at(P, u->line, u->col, "undefined value %s",
                           kl_ir_parse_value_label(u->name, lb, sizeof lb));
  }
  for (int i = 0; i < P->n_groups; i++)
    if (!P->groups[i].has_body)
      kl_ir_parse_error_at(P, P->groups[i].line, P->groups[i].col,
                           "prim::FusionGroup_%" PRId64 " has no `with` section giving its body",
                           P->groups[i].k);
}

/* Fills in omitted output types, blocks (and fusion bodies) first so If, Loop and groups see
 * their bodies' types. Nodes after a failed inference that depend on it are skipped. */
static void infer_block(kl_ir_parser *P, kl_ir_block *b, int depth) {
  if (depth > 4 * MAX_DEPTH) {
    if (!P->fatal)
      kl_ir_parse_error_at(P, 1, 1, "blocks and fusion groups nested deeper than %d",
                           4 * MAX_DEPTH);
    P->fatal = true;
    return;
  }
  for (kl_ir_node *n = b->first; n && !P->fatal; n = n->next) {
    for (int i = 0; i < n->n_blocks; i++)
      infer_block(P, n->blocks[i], depth + 1);
    bool any = false;
    for (int i = 0; i < n->n_outputs; i++)
      any |= is_omitted(P, n->outputs[i]);
    bool inputs_failed = false;
    for (int i = 0; i < n->n_inputs; i++)
      inputs_failed |= is_failed(P, n->inputs[i]);
    if (!any || inputs_failed) {
      mark_failed(P, n);
      continue;
    }
    kl_ir_type *in = calloc((size_t)n->n_inputs + 1, sizeof *in);
    kl_ir_type *out = calloc((size_t)n->n_outputs + 1, sizeof *out);
    if (!in || !out)
      kl_fatal_oom();
    for (int i = 0; i < n->n_inputs; i++)
      in[i] = n->inputs[i]->type;
    kl_status s = kl_ir_node_infer_types(n, in, n->n_inputs, out, n->n_outputs);
    if (s) {
      int line = n->id < P->cap_node_pos / 2 ? P->node_pos[2 * n->id] : 0;
      int col = n->id < P->cap_node_pos / 2 ? P->node_pos[2 * n->id + 1] : 0;
      kl_ir_parse_error_at(P, line, col, "cannot infer the type of an output: %s",
                           kl_status_message(s));
      kl_status_destroy(s);
      mark_failed(P, n);
    } else {
      for (int i = 0; i < n->n_outputs; i++)
        if (is_omitted(P, n->outputs[i]))
          n->outputs[i]->type = out[i];
    }
    free(in);
    free(out);
  }
}

static int compare_errors(const void *a, const void *b) {
  const perror_entry *x = a, *y = b;
  if (x->line != y->line)
    return x->line < y->line ? -1 : 1;
  if (x->col != y->col)
    return x->col < y->col ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static kl_status errors_status(kl_ir_parser *P) {
  qsort(P->errs, (size_t)P->n_errs, sizeof *P->errs, compare_errors);
  size_t size = 64;
  int shown = P->n_errs < MAX_ERRORS ? P->n_errs : MAX_ERRORS;
  for (int i = 0; i < shown; i++)
    size += strlen(P->errs[i].msg) + 1;
  char *msg = malloc(size);
  if (!msg)
    kl_fatal_oom();
  size_t o = 0;
  for (int i = 0; i < shown; i++)
    o += (size_t)snprintf(msg + o, size - o, "%s%s", i ? "\n" : "", P->errs[i].msg);
  if (P->total_errs > shown)
    snprintf(msg + o, size - o, "\n(%d more errors)", P->total_errs - shown);
  kl_status s = kl_status_create(KL_ERR_PARSE, "%s", msg);
  free(msg);
  return s;
}

static void parser_deinit(kl_ir_parser *P) {
  for (int i = 0; i < P->n_errs; i++)
    free(P->errs[i].msg);
  free(P->errs);
  free(P->names);
  free(P->scopes);
  free(P->uses);
  free(P->groups);
  free(P->node_pos);
  free(P->omitted);
}

static void parse_file_text(kl_ir_parser *P) {
  kl_ir_parse_skip_blank_lines(P);
  if (!tok_ident(P, "graph")) {
    kl_ir_parse_expected(P, "'graph'");
    return;
  }
  kl_ir_lex_next(P);
  scope_push(P);
  if ((tok_punct(P, '<') && !parse_symbols(P)) || !parse_params(P, P->g->top) ||
      !kl_ir_parse_expect_punct(P, ':') || !kl_ir_parse_expect_eol(P))
    kl_ir_parse_skip_line(P);
  parse_body(P, P->g->top, true);
  for (;;) {
    kl_ir_parse_skip_blank_lines(P);
    if (tok_is(P, T_EOF) || P->fatal)
      break;
    if (tok_ident(P, "with")) {
      parse_with(P);
    } else {
      kl_ir_parse_expected(P, "a `with` section or end of file");
      kl_ir_parse_skip_line(P);
    }
  }
  if (!P->fatal)
    check_deferred(P);
}

kl_status kl_ir_parse(const char *text, size_t len, const kl_ir_parse_options *opts,
                      kl_ir_graph **out_graph) {
  if ((!text && len) || !out_graph)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_ir_parse: text and out_graph are required");
  *out_graph = NULL;
  kl_ir_parser P = {0};
  P.text = text ? text : "";
  P.len = len;
  P.line = 1;
  P.opts = opts;
  P.filename = opts && opts->filename ? opts->filename : "<input>";
  P.g = kl_ir_graph_create();
  kl_ir_lex_next(&P);
  parse_file_text(&P);
  if (!P.n_errs)
    infer_block(&P, P.g->top, 0);
  kl_status s = P.n_errs ? errors_status(&P) : NULL;
  if (s && P.fatal && (uint64_t)P.g->next_node_id >= kl_limits_get()->max_nodes) {
    kl_status parse_error = s;
    s = kl_status_create(KL_ERR_LIMIT, "%s", kl_status_message(parse_error));
    kl_status_destroy(parse_error);
  }
  if (!s) {
    s = kl_ir_verify(P.g);
    if (s)
      s = kl_status_annotate(s, "%s", P.filename);
  }
  parser_deinit(&P);
  if (s) {
    kl_ir_graph_destroy(P.g);
    return s;
  }
  *out_graph = P.g;
  return NULL;
}

kl_status kl_ir_parse_file(const char *path, kl_ir_graph **out_graph) {
  if (!path || !out_graph)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_ir_parse_file: path and out_graph are required");
  *out_graph = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : 65536;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return kl_status_create(KL_ERR_OUT_OF_MEMORY, "%s: file too large to read", path);
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  bool failed = ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return kl_status_create(KL_ERR_IO, "%s: read error", path);
  }
  kl_ir_parse_options opts = {0};
  opts.filename = path;
  kl_status s = kl_ir_parse(buf, len, &opts, out_graph);
  free(buf);
  return s;
}

kl_status kl_ir_parse_attr_value(kl_ir_graph *g, const char *text, size_t len, kl_ir_attr_kind kind,
                                 kl_ir_attr *out_attr) {
  if (!g || (!text && len) || !out_attr)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_ir_parse_attr_value: graph, text and out_attr are required");
  if ((int)kind < 0 || kind >= KL_ATTR_KIND_COUNT)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_ir_parse_attr_value: bad kind %d",
                            (int)kind);
  kl_ir_parser P = {0};
  P.text = text ? text : "";
  P.len = len;
  P.line = 1;
  P.filename = "<attribute>";
  P.g = g;
  kl_ir_attr attr = {0};
  kl_ir_lex_next(&P);
  char what[64];
  snprintf(what, sizeof what, "%s attribute", kl_ir_attr_kind_name(kind));
  P.what = what;
  bool ok = parse_attr_value(&P, kind, &attr);
  P.what = NULL;
  kl_ir_parse_skip_blank_lines(&P);
  if (ok && !tok_is(&P, T_EOF))
    ok = kl_ir_parse_expected(&P, "end of the attribute value");
  kl_status s = NULL;
  if (!ok) {
    if (attr.kind == KL_ATTR_TENSOR)
      kl_tensor_release(attr.u.t);
    s = errors_status(&P);
  } else {
    attr.name = out_attr->name;
    *out_attr = attr;
  }
  parser_deinit(&P);
  return s;
}
