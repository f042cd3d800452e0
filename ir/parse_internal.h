/* Internal to the text IR parser (ir/parse.c, ir/parse_lex.c): the parser's state, its
 * tokens, and the lexer and error helpers that parse_lex.c gives parse.c. The grammar is
 * documented at the top of ir/parse.c. */
#ifndef KL_IR_PARSE_INTERNAL_H
#define KL_IR_PARSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "text.h"

#define MAX_ERRORS 20 /* reported; more are counted */
#define MAX_DEPTH 100 /* block nesting */

/* ---- tokens ----------------------------------------------------------------------------- */

typedef enum tok_kind {
  T_EOF,
  T_NL,
  T_IDENT,  /* identifiers, including ns::name */
  T_VALUE,  /* %name; str holds the decoded name */
  T_STRING, /* str holds the decoded contents */
  T_INT,
  T_FLOAT,
  T_PUNCT, /* one of ( ) [ ] { } < > , : = @ * - */
  T_DOTDOT,
  T_ARROW,
  T_ERROR, /* a lexical error; err says what */
} tok_kind;

typedef struct kl_ir_token {
  tok_kind kind;
  const char *start;
  size_t len;
  int line, col;
  char *str;
  const char *err;
} kl_ir_token;

typedef struct perror_entry {
  int line, col, seq;
  char *msg;
} perror_entry;

typedef struct name_entry {
  const char *name;   /* NULL: empty slot */
  kl_ir_value *value; /* NULL for a poisoned name (its definition failed) */
  int line, col, scope;
  bool pending; /* outputs of a node whose blocks are being parsed */
} name_entry;

typedef struct pending_use {
  const char *name;
  int line, col;
} pending_use;

typedef struct group_entry {
  int64_t k;
  kl_ir_node *node;
  int line, col;
  bool has_body;
} group_entry;

typedef struct kl_ir_parser {
  const char *text;
  size_t len, pos, line_start;
  int line;
  const char *filename;
  const kl_ir_parse_options *opts;
  kl_ir_graph *g;
  kl_ir_token tok;
  const char *what; /* context for "expected" messages: "attribute dim of aten::softmax" */
  perror_entry *errs;
  int n_errs, cap_errs, total_errs;
  name_entry *names;
  size_t cap_names, n_names;
  int *scopes;
  int n_scopes, cap_scopes, next_scope;
  pending_use *uses;
  int n_uses, cap_uses;
  group_entry *groups;
  int n_groups, cap_groups;
  int *node_pos; /* by node id: line, col */
  int cap_node_pos;
  unsigned char *omitted; /* by value id: 1 type omitted in the text, 2 inference failed */
  int cap_omitted;
  int depth;
  bool fatal; /* nesting too deep: stop at once */
} kl_ir_parser;

/* ---- parse_lex.c ------------------------------------------------------------------------ */

/* Grows a malloc'd array of elem-sized items to hold need (zeroing the new part). */
void *kl_ir_parse_grow(void *ptr, int *cap, int need, size_t elem);
/* Records "file:line:col: message"; all are reported, sorted, when parsing ends. */
void kl_ir_parse_error_at(kl_ir_parser *P, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* s (n bytes) with C escapes into buf, cut with "..." after max bytes; quotes escapes '"'. */
void kl_ir_parse_escape(const char *s, size_t n, char *buf, size_t size, size_t max, bool quotes);
/* "%x", or "%" and the quoted name when it is not plain, for messages. */
const char *kl_ir_parse_value_label(const char *name, char *buf, size_t size);
/* Records "expected WHAT, found <token>" (or the token's own lexical error); returns false. */
bool kl_ir_parse_expected(kl_ir_parser *P, const char *what);
/* Advances P->tok to the next token. */
void kl_ir_lex_next(kl_ir_parser *P);
bool kl_ir_parse_expect_punct(kl_ir_parser *P, char c);
bool kl_ir_parse_expect_eol(kl_ir_parser *P); /* end of line or of file */
void kl_ir_parse_skip_line(kl_ir_parser *P);  /* error recovery: past the next newline */
void kl_ir_parse_skip_blank_lines(kl_ir_parser *P);
/* Numbers with range checks: INT for ints; INT, FLOAT, inf, -inf, nan for floats. */
bool kl_ir_parse_int(kl_ir_parser *P, int64_t *out);
bool kl_ir_parse_float(kl_ir_parser *P, double *out);

static inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
static inline bool tok_is(const kl_ir_parser *P, tok_kind kind) { return P->tok.kind == kind; }
static inline bool tok_punct(const kl_ir_parser *P, char c) {
  return P->tok.kind == T_PUNCT && P->tok.start[0] == c;
}
static inline bool tok_ident(const kl_ir_parser *P, const char *word) {
  return P->tok.kind == T_IDENT && P->tok.len == strlen(word) &&
         memcmp(P->tok.start, word, P->tok.len) == 0;
}

#endif
