/* The conformance harness's results and its report (tests/onnx/REPORT.md): what a case's
 * verdict is, which ONNX op a case tests (read from model.onnx by a small protobuf walker, so
 * the report does not depend on the importer understanding the model), and the Markdown
 * report per op with the reason for every case that does not pass. */
#ifndef KL_TESTS_ONNX_REPORT_H
#define KL_TESTS_ONNX_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/status.h"

enum { RESULT_PASS, RESULT_FAIL, RESULT_UNSUPPORTED, RESULT_ERROR, RESULT_CRASH, RESULT_KINDS };
extern const char *const result_names[RESULT_KINDS]; /* "pass", "fail", ... */

#define REASON_MAX 1024

/* The compiled path of a case the interpreter passes: the graph optimized at -O3, compiled to
 * a shared library by the LLVM CPU backend, loaded and run on every data set. */
enum {
  COMPILED_NONE,           /* not tried: the interpreter did not pass, or --no-compiled */
  COMPILED_PASS,           /* matches the interpreter and ONNX's expected outputs */
  COMPILED_FAIL,           /* compiled but wrong, or the compile, load or run failed */
  COMPILED_NOT_COMPILABLE, /* value-dependent shapes, or an op the backend does not handle */
  COMPILED_KINDS
};
extern const char *const compiled_names[COMPILED_KINDS]; /* "-", "pass", "fail", ... */

typedef struct case_result {
  char *name;       /* the folder name, e.g. test_abs */
  char *op;         /* the ONNX op the case tests (case_op_label) */
  int kind;         /* RESULT_* */
  char frozen[256]; /* the inputs frozen into initializers (--freeze-inputs), or "" */
  char reason[REASON_MAX];
  int compiled;     /* COMPILED_* */
  char compiled_bound[256]; /* the inputs bound at compile time (kl_pass_bind_input), or "" */
  char compiled_reason[REASON_MAX];
} case_result;

typedef struct op_list {
  char **ops; /* "Abs", or "domain:Op" outside the default domain */
  int n, cap;
} op_list;

void op_list_add(op_list *l, const char *domain, size_t domain_len, const char *op,
                 size_t op_len);
void op_list_free(op_list *l);
/* The op types of the top-level nodes of the model at path, in order; false when the file
 * cannot be read or is not a well-formed protobuf. */
bool read_model_ops(const char *path, op_list *out);
/* The op case names[index] tests, given the ops of every case (names sorted) and the ops of
 * all one-node cases (known_ops). Returns a new string. */
char *case_op_label(int index, char *const *names, const op_list *ops, int n,
                    const op_list *known_ops);

/* Writes the report (sorting results by op); false, with a message, when it cannot. */
bool write_report(const char *path, bool freeze_inputs, bool compiled, const char *summary,
                  case_result *results, int n);

static inline char *xstrdup(const char *s) {
  char *copy = strdup(s);
  if (!copy)
    kl_fatal_oom();
  return copy;
}

static inline int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void free_names(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

#endif
