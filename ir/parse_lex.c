/* The text IR lexer and the parser's error and number helpers (ir/parse.c has the
 * grammar). Tokens never run past the given length: the text need not be NUL-terminated.
 * Lexical errors become T_ERROR tokens carrying their message, so the parser reports them
 * where it would otherwise say "expected X, found Y". */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_internal.h"

void *kl_ir_parse_grow(void *ptr, int *cap, int need, size_t elem) {
  if (need <= *cap)
    return ptr;
  int c = *cap ? *cap : 8;
  while (c < need)
    c *= 2;
  void *p = realloc(ptr, (size_t)c * elem);
  if (!p)
    kl_fatal_oom();
  memset((char *)p + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
  *cap = c;
  return p;
}

/* ---- errors ----------------------------------------------------------------------------- */

void kl_ir_parse_error_at(kl_ir_parser *P, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kl_ir_parse_error_at(kl_ir_parser *P, int line, int col, const char *fmt, ...) {
  P->total_errs++;
  if (P->n_errs >= 4 * MAX_ERRORS)
    return;
  char body[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  size_t n = strlen(P->filename) + strlen(body) + 48;
  char *msg = malloc(n);
  if (!msg)
    kl_fatal_oom();
  snprintf(msg, n, "%s:%d:%d: %s", P->filename, line, col, body);
  P->errs = kl_ir_parse_grow(P->errs, &P->cap_errs, P->n_errs + 1, sizeof *P->errs);
  P->errs[P->n_errs] = (perror_entry){line, col, P->n_errs, msg};
  P->n_errs++;
}

/* Writes s (n bytes) into buf with C escapes, truncated with "..." past max bytes. */
void kl_ir_parse_escape(const char *s, size_t n, char *buf, size_t size, size_t max, bool quotes) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 8 < size; i++) {
    if (i == max) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    unsigned char c = (unsigned char)s[i];
    if (c == '\n')
      o += (size_t)snprintf(buf + o, size - o, "\\n");
    else if (quotes && (c == '"' || c == '\\'))
      o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
    else
      buf[o++] = (char)c;
  }
  buf[o] = '\0';
}

/* "%x" or "%\"odd name\"" for messages. */
const char *kl_ir_parse_value_label(const char *name, char *buf, size_t size) {
  bool plain = *name != '\0';
  for (const char *c = name; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '_' || *c == '.'))
      plain = false;
  char esc[160];
  kl_ir_parse_escape(name, strlen(name), esc, sizeof esc, 60, true);
  snprintf(buf, size, plain ? "%%%s" : "%%\"%s\"", esc);
  return buf;
}

static const char *describe(const kl_ir_token *t, char *buf, size_t size) {
  char esc[160];
  switch (t->kind) {
  case T_EOF: return "end of file";
  case T_NL: return "end of line";
  case T_STRING:
    kl_ir_parse_escape(t->start, t->len, esc, sizeof esc, 40, false);
    snprintf(buf, size, "string %s", esc);
    return buf;
  case T_INT:
  case T_FLOAT:
    kl_ir_parse_escape(t->start, t->len, esc, sizeof esc, 40, false);
    snprintf(buf, size, "number %s", esc);
    return buf;
  case T_VALUE:
    kl_ir_parse_escape(t->start, t->len, esc, sizeof esc, 40, false);
    snprintf(buf, size, "%s", esc);
    return buf;
  default:
    kl_ir_parse_escape(t->start, t->len, esc, sizeof esc, 40, false);
    snprintf(buf, size, "'%s'", esc);
    return buf;
  }
}

/* "expected X, found Y" at the current token; a lexical error reports itself instead. */
bool kl_ir_parse_expected(kl_ir_parser *P, const char *what) {
  if (P->tok.kind == T_ERROR) {
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "%s", P->tok.err);
    return false;
  }
  char buf[256];
  if (P->what)
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "%s: expected %s, found %s", P->what, what,
                         describe(&P->tok, buf, sizeof buf));
  else
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "expected %s, found %s", what,
                         describe(&P->tok, buf, sizeof buf));
  return false;
}

/* ---- lexer ------------------------------------------------------------------------------ */

static bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }
static bool is_name_char(char c) { return is_ident_char(c) || c == '.'; }

static char at(const kl_ir_parser *P, size_t i) { return i < P->len ? P->text[i] : '\0'; }
static bool at_end(const kl_ir_parser *P, size_t i) { return i >= P->len; }

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Lexes a quoted string starting at the opening quote at P->pos into t->str (arena). */
static void lex_string(kl_ir_parser *P, kl_ir_token *t) {
  size_t i = P->pos + 1;
  /* The decoded string is never longer than its spelling up to the closing quote. */
  size_t end = i;
  while (!at_end(P, end) && P->text[end] != '"' && P->text[end] != '\n')
    end += P->text[end] == '\\' ? 2 : 1;
  char *out = kl_arena_alloc(P->g->arena, end - i + 1);
  size_t o = 0;
  for (;;) {
    if (at_end(P, i) || P->text[i] == '\n') {
      t->kind = T_ERROR;
      t->err = "unterminated string";
      P->pos = i;
      return;
    }
    char c = P->text[i];
    if (c == '"') {
      i++;
      break;
    }
    if (c != '\\') {
      out[o++] = c;
      i++;
      continue;
    }
    char e = at(P, i + 1);
    int hi, lo;
    switch (e) {
    case '"':
      out[o++] = '"';
      i += 2;
      continue;
    case '\\':
      out[o++] = '\\';
      i += 2;
      continue;
    case 'n':
      out[o++] = '\n';
      i += 2;
      continue;
    case 't':
      out[o++] = '\t';
      i += 2;
      continue;
    case 'r':
      out[o++] = '\r';
      i += 2;
      continue;
    case 'x':
      hi = hexval(at(P, i + 2));
      lo = hexval(at(P, i + 3));
      if (hi >= 0 && lo >= 0 && (hi || lo)) {
        out[o++] = (char)(hi * 16 + lo);
        i += 4;
        continue;
      }
      break;
    default: break;
    }
    /* A bad escape: report it and skip the rest of the line. */
    t->kind = T_ERROR;
    t->err = (e == 'x') ? "bad escape in string: \\x needs two hex digits, not 00"
                        : "bad escape in string (allowed: \\\" \\\\ \\n \\t \\r \\xHH)";
    t->col = (int)(i - P->line_start) + 1;
    while (!at_end(P, i) && P->text[i] != '\n')
      i++;
    P->pos = i;
    return;
  }
  out[o] = '\0';
  t->str = out;
  P->pos = i;
}

void kl_ir_lex_next(kl_ir_parser *P) {
  kl_ir_token *t = &P->tok;
  for (;;) {
    char c = at(P, P->pos);
    if (!at_end(P, P->pos) && (c == ' ' || c == '\t' || c == '\r')) {
      P->pos++;
    } else if (!at_end(P, P->pos) && c == '#') {
      while (!at_end(P, P->pos) && P->text[P->pos] != '\n')
        P->pos++;
    } else {
      break;
    }
  }
  memset(t, 0, sizeof *t);
  t->start = P->text + P->pos;
  t->line = P->line;
  t->col = (int)(P->pos - P->line_start) + 1;
  if (at_end(P, P->pos)) {
    t->kind = T_EOF;
    return;
  }
  size_t s = P->pos;
  char c = P->text[s];
  if (c == '\n') {
    t->kind = T_NL;
    P->pos++;
    P->line++;
    P->line_start = P->pos;
  } else if (is_ident_start(c)) {
    size_t i = s;
    for (;;) {
      while (is_ident_char(at(P, i)))
        i++;
      if (at(P, i) == ':' && at(P, i + 1) == ':' && is_ident_start(at(P, i + 2)))
        i += 2;
      else
        break;
    }
    t->kind = T_IDENT;
    P->pos = i;
  } else if (c == '%') {
    if (at(P, s + 1) == '"') {
      P->pos = s + 1;
      lex_string(P, t);
      if (t->kind != T_ERROR) {
        t->kind = T_VALUE;
        if (!*t->str) {
          t->kind = T_ERROR;
          t->err = "empty value name %\"\"";
        }
      }
    } else {
      size_t i = s + 1;
      while (is_name_char(at(P, i)))
        i++;
      if (i == s + 1) {
        t->kind = T_ERROR;
        t->err = "expected a value name after '%'";
        P->pos = s + 1;
      } else {
        t->kind = T_VALUE;
        t->str = kl_arena_strndup(P->g->arena, P->text + s + 1, i - s - 1);
        P->pos = i;
      }
    }
  } else if (c == '"') {
    lex_string(P, t);
    if (t->kind != T_ERROR)
      t->kind = T_STRING;
  } else if (is_digit(c) || ((c == '-' || c == '+') && is_digit(at(P, s + 1)))) {
    size_t i = s + 1;
    bool is_float = false;
    while (is_digit(at(P, i)))
      i++;
    if (at(P, i) == '.' && at(P, i + 1) != '.') {
      is_float = true;
      i++;
      while (is_digit(at(P, i)))
        i++;
    }
    if ((at(P, i) == 'e' || at(P, i) == 'E') &&
        (is_digit(at(P, i + 1)) ||
         ((at(P, i + 1) == '-' || at(P, i + 1) == '+') && is_digit(at(P, i + 2))))) {
      is_float = true;
      i += 2;
      while (is_digit(at(P, i)))
        i++;
    }
    P->pos = i;
    if (is_ident_char(at(P, i)) || (at(P, i) == '.' && at(P, i + 1) != '.')) {
      while (is_name_char(at(P, P->pos)))
        P->pos++;
      t->kind = T_ERROR;
      t->err = "malformed number";
    } else {
      t->kind = is_float ? T_FLOAT : T_INT;
    }
  } else if (c == '.' && at(P, s + 1) == '.') {
    t->kind = T_DOTDOT;
    P->pos = s + 2;
  } else if (c == '-' && at(P, s + 1) == '>') {
    t->kind = T_ARROW;
    P->pos = s + 2;
  } else if (strchr("()[]{}<>,:=@*-", c)) {
    t->kind = T_PUNCT;
    P->pos = s + 1;
  } else {
    t->kind = T_ERROR;
    t->err = (unsigned char)c >= 0x80
                 ? "unexpected non-ASCII byte (names with such bytes must be quoted)"
                 : "unexpected character";
    P->pos = s + 1;
  }
  t->len = (size_t)(P->pos - s);
  if (t->kind == T_ERROR && t->err && strcmp(t->err, "unexpected character") == 0) {
    /* Name the character: errors must say what they found. */
    char *msg = kl_arena_alloc(P->g->arena, 48);
    if (c >= 0x20 && c < 0x7f)
      snprintf(msg, 48, "unexpected character '%c'", c);
    else
      snprintf(msg, 48, "unexpected character '\\x%02x'", (unsigned char)c);
    t->err = msg;
  }
}

bool kl_ir_parse_expect_punct(kl_ir_parser *P, char c) {
  if (!tok_punct(P, c)) {
    char what[8] = {'\'', c, '\'', 0};
    return kl_ir_parse_expected(P, what);
  }
  kl_ir_lex_next(P);
  return true;
}

void kl_ir_parse_skip_line(kl_ir_parser *P) {
  while (!tok_is(P, T_NL) && !tok_is(P, T_EOF))
    kl_ir_lex_next(P);
  if (tok_is(P, T_NL))
    kl_ir_lex_next(P);
}

void kl_ir_parse_skip_blank_lines(kl_ir_parser *P) {
  while (tok_is(P, T_NL))
    kl_ir_lex_next(P);
}

bool kl_ir_parse_expect_eol(kl_ir_parser *P) {
  if (tok_is(P, T_EOF))
    return true;
  if (!tok_is(P, T_NL))
    return kl_ir_parse_expected(P, "end of line");
  kl_ir_lex_next(P);
  return true;
}

/* ---- numbers ---------------------------------------------------------------------------- */

bool kl_ir_parse_int(kl_ir_parser *P, int64_t *out) {
  char buf[72];
  if (!tok_is(P, T_INT))
    return kl_ir_parse_expected(P, "an integer");
  if (P->tok.len >= sizeof buf) {
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "integer out of range");
    return false;
  }
  memcpy(buf, P->tok.start, P->tok.len);
  buf[P->tok.len] = '\0';
  errno = 0;
  char *end;
  long long v = strtoll(buf, &end, 10);
  if (errno == ERANGE || *end) {
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "integer %s out of range", buf);
    return false;
  }
  *out = v;
  kl_ir_lex_next(P);
  return true;
}

/* A float: INT, FLOAT, inf, nan, optionally after '-'. */
bool kl_ir_parse_float(kl_ir_parser *P, double *out) {
  bool neg = false;
  if (tok_punct(P, '-')) {
    neg = true;
    kl_ir_lex_next(P);
    if (!tok_ident(P, "inf") && !tok_ident(P, "nan"))
      return kl_ir_parse_expected(P, "inf or nan after '-'");
  }
  if (tok_ident(P, "inf") || tok_ident(P, "nan")) {
    double v = tok_ident(P, "inf") ? INFINITY : NAN;
    *out = neg ? -v : v;
    kl_ir_lex_next(P);
    return true;
  }
  if (!tok_is(P, T_INT) && !tok_is(P, T_FLOAT))
    return kl_ir_parse_expected(P, "a float");
  char buf[512];
  if (P->tok.len >= sizeof buf) {
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "number too long");
    return false;
  }
  memcpy(buf, P->tok.start, P->tok.len);
  buf[P->tok.len] = '\0';
  char *end;
  double v = strtod(buf, &end);
  if (*end || isinf(v)) {
    kl_ir_parse_error_at(P, P->tok.line, P->tok.col, "float %s out of range", buf);
    return false;
  }
  *out = v;
  kl_ir_lex_next(P);
  return true;
}
