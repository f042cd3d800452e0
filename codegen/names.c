/* C names for compiled models: the model's own name and the field names of its inputs and
 * outputs in the generated header's structs.
 *
 * A model name prefixes every exported symbol, so it must be an identifier that cannot clash
 * with kiln's own symbols or with C. A value name comes from the model file and may hold any
 * bytes; it becomes a struct field only when, after mapping every other byte to '_', it is an
 * identifier that no header in play could have defined as a macro. The macro-like names refused
 * (besides C keywords) are reserved identifiers (a leading "__" or "_" and an uppercase letter),
 * the GNU predefined "linux", "unix" and "i386", and upper-case names shaped like the macros of
 * <stdint.h> and of the generated header itself (..._MAX, ..._MIN, ..._C, ..._WIDTH, ..._OK,
 * ..._SIZE, ..._INPUTS, ..._OUTPUTS, ..._H, ..._ERR_...): such a value falls back to "input<i>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"

#define KL_NAME_MAX 64

static const char *const c_keywords[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "_Alignas", "_Alignof", "_Atomic", "_Bool",
    "_Complex", "_Generic", "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
    /* C23 */
    "alignas", "alignof", "bool", "constexpr", "false", "nullptr", "static_assert",
    "thread_local", "true", "typeof", "typeof_unqual", "_BitInt", "_Decimal32", "_Decimal64",
    "_Decimal128",
};

static bool is_keyword(const char *s) {
  for (size_t i = 0; i < sizeof c_keywords / sizeof c_keywords[0]; i++) {
    if (strcmp(s, c_keywords[i]) == 0)
      return true;
  }
  return false;
}

static bool is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_alnum(unsigned char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }

/* [A-Za-z_][A-Za-z0-9_]*, 1..64 bytes, not a keyword. */
static bool is_identifier(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > KL_NAME_MAX || !is_alpha((unsigned char)s[0]))
    return false;
  for (size_t i = 1; i < n; i++) {
    if (!is_alnum((unsigned char)s[i]))
      return false;
  }
  return !is_keyword(s);
}

bool kl_codegen_valid_model_name(const char *s) {
  if (!s || !is_identifier(s))
    return false;
  return strncmp(s, "kiln_", 5) != 0 && strncmp(s, "kl_", 3) != 0;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* See the file comment: names a header in play might have defined as a macro. */
static bool is_macro_like(const char *s) {
  if (s[0] == '_' && (s[1] == '_' || (s[1] >= 'A' && s[1] <= 'Z')))
    return true;
  if (strcmp(s, "linux") == 0 || strcmp(s, "unix") == 0 || strcmp(s, "i386") == 0)
    return true;
  bool upper = true, underscore = false;
  for (const char *p = s; *p; p++) {
    if (*p >= 'a' && *p <= 'z')
      upper = false;
    if (*p == '_')
      underscore = true;
  }
  if (!upper || !underscore)
    return false;
  static const char *const suffixes[] = {"_MAX", "_MIN",    "_C",      "_WIDTH", "_OK",
                                         "_SIZE", "_INPUTS", "_OUTPUTS", "_H"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    if (ends_with(s, suffixes[i]))
      return true;
  }
  return strstr(s, "_ERR_") != NULL;
}

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (!d)
    kl_fatal_oom();
  memcpy(d, s, n);
  return d;
}

/* The field name a value would get before duplicates are resolved. */
static char *field_name(const char *value_name, const char *fallback_stem, int index) {
  char buf[KL_NAME_MAX + 1];
  size_t n = value_name ? strlen(value_name) : 0;
  if (n > 0 && n <= KL_NAME_MAX) {
    for (size_t i = 0; i < n; i++)
      buf[i] = is_alnum((unsigned char)value_name[i]) ? value_name[i] : '_';
    buf[n] = '\0';
    if (is_identifier(buf) && !is_macro_like(buf))
      return dup_string(buf);
  }
  snprintf(buf, sizeof buf, "%s%d", fallback_stem, index);
  return dup_string(buf);
}

static bool taken(char **names, int count, const char *s) {
  for (int i = 0; i < count; i++) {
    if (strcmp(names[i], s) == 0)
      return true;
  }
  return false;
}

kl_status kl_codegen_io_names(const kl_ir_graph *g, char ***out_names, int *out_count) {
  *out_names = NULL;
  *out_count = 0;
  if (!g || !g->top)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "io names: no graph");
  int n_in = g->top->n_params, n_out = g->top->n_returns;
  int total = n_in + n_out;
  char **names = calloc(total > 0 ? (size_t)total : 1, sizeof *names);
  if (!names)
    kl_fatal_oom();
  for (int i = 0; i < total; i++) {
    const kl_ir_value *v = i < n_in ? g->top->params[i] : g->top->returns[i - n_in];
    const char *stem_kind = i < n_in ? "input" : "output";
    int stem_index = i < n_in ? i : i - n_in;
    char *stem = field_name(v ? v->name : NULL, stem_kind, stem_index);
    char *name = dup_string(stem);
    /* Duplicates: "<stem>_2", "<stem>_3", ..., the stem cut so the result stays in bounds. */
    for (int suffix = 2; taken(names, i, name); suffix++) {
      char tail[16], buf[KL_NAME_MAX + 1];
      int tail_len = snprintf(tail, sizeof tail, "_%d", suffix);
      size_t stem_len = strlen(stem);
      if (stem_len + (size_t)tail_len > KL_NAME_MAX)
        stem_len = KL_NAME_MAX - (size_t)tail_len;
      memcpy(buf, stem, stem_len);
      memcpy(buf + stem_len, tail, (size_t)tail_len + 1);
      free(name);
      name = dup_string(buf);
    }
    free(stem);
    names[i] = name;
  }
  *out_names = names;
  *out_count = total;
  return NULL;
}

void kl_codegen_free_names(char **names, int count) {
  if (!names)
    return;
  for (int i = 0; i < count; i++)
    free(names[i]);
  free(names);
}
