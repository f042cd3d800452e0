/* Unit tests for the text IR printer and parser (ir/print.c, ir/parse.c): float formatting
 * that round-trips every bit, string escapes, non-canonical input printed canonically,
 * attribute values on their own, tensor references, error recovery, and robustness: every
 * prefix and many one-byte corruptions of a valid file must give an error or a graph. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/text.h"
#include "tests/unit/check.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static kl_ir_graph *parse_ok(const char *text) {
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(text, strlen(text), NULL, &g);
  if (s) {
    fprintf(stderr, "unexpected parse error:\n%s\n", kl_status_message(s));
    kl_status_destroy(s);
  }
  return g;
}

static char *print_graph(const kl_ir_graph *g) {
  char *text = NULL;
  size_t len = 0;
  CHECK_OK(kl_ir_print(g, NULL, &text, &len));
  CHECK(text && strlen(text) == len);
  return text;
}

/* Doubles of random bits (and awkward ones) as clamp attributes survive print -> parse. */
static void test_float_attr_roundtrip(void) {
  static const double special[] = {0.0,
                                   -0.0,
                                   1.0,
                                   0.1,
                                   1.0 / 3.0,
                                   1e-5,
                                   5e-324,
                                   2.2250738585072014e-308,
                                   1.7976931348623157e308,
                                   123456789.0,
                                   1e22,
                                   1e23,
                                   -2.5,
                                   INFINITY,
                                   -INFINITY};
  enum { N = 400 };
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_type t = kl_ir_type_make(KL_F32, 1, (int64_t[]){2});
  kl_ir_value *v = kl_ir_block_add_param(g->top, "x", &t);
  double want[N];
  for (int i = 0; i < N; i++) {
    double d;
    if (i < (int)(sizeof special / sizeof *special)) {
      d = special[i];
    } else {
      do {
        uint64_t bits = rng();
        memcpy(&d, &bits, sizeof d);
      } while (isnan(d));
    }
    want[i] = d;
    kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_CLAMP, &v, 1, 1);
    kl_ir_node_set_float(n, "min", d);
    n->outputs[0]->type = t;
    v = n->outputs[0];
  }
  kl_ir_block_add_return(g->top, v);
  char *text = print_graph(g);
  kl_ir_graph *back = parse_ok(text);
  CHECK(back != NULL);
  if (back) {
    int i = 0, exact = 0;
    for (kl_ir_node *n = back->top->first; n && i < N; n = n->next, i++) {
      double got = kl_ir_node_float(n, "min", NAN);
      exact += memcmp(&got, &want[i], sizeof got) == 0;
    }
    CHECK_EQ_INT(i, N);
    CHECK_EQ_INT(exact, N);
    char *again = print_graph(back);
    CHECK_STREQ(again, text);
    free(again);
  }
  /* A few spellings: always a float token, shortest form. */
  CHECK(strstr(text, "[min=0.0]") != NULL);
  CHECK(strstr(text, "[min=-0.0]") != NULL);
  CHECK(strstr(text, "[min=1.0]") != NULL);
  CHECK(strstr(text, "[min=0.1]") != NULL);
  CHECK(strstr(text, "[min=0.3333333333333333]") != NULL);
  CHECK(strstr(text, "[min=1e-05]") != NULL);
  CHECK(strstr(text, "[min=5e-324]") != NULL);
  CHECK(strstr(text, "[min=123456789.0]") != NULL);
  CHECK(strstr(text, "[min=-inf]") != NULL);
  free(text);
  kl_ir_graph_destroy(back);
  kl_ir_graph_destroy(g);
}

/* Random float32/half/bfloat16/double tensor elements print in their own precision. */
static void test_float_tensor_roundtrip(void) {
  static const kl_dtype dts[] = {KL_F32, KL_F16, KL_BF16, KL_F64};
  for (int k = 0; k < 4; k++) {
    enum { N = 300 };
    kl_tensor *t = NULL;
    CHECK_OK(kl_tensor_create(dts[k], 1, (int64_t[]){N}, &t));
    if (!t)
      continue;
    size_t es = kl_dtype_size(dts[k]);
    for (int i = 0; i < N; i++) {
      for (;;) {
        uint64_t bits = rng();
        memcpy((char *)t->data + (size_t)i * es, &bits, es);
        double d = kl_dtype_load_f64(dts[k], t->data, (size_t)i);
        if (!isnan(d))
          break;
      }
    }
    kl_ir_graph *g = kl_ir_graph_create();
    kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_CONSTANT, NULL, 0, 1);
    kl_ir_node_set_tensor(n, "value", t);
    n->outputs[0]->type = kl_ir_type_of_tensor(t);
    kl_ir_block_add_return(g->top, n->outputs[0]);
    char *text = print_graph(g);
    kl_ir_graph *back = parse_ok(text);
    CHECK(back != NULL);
    if (back) {
      const kl_ir_attr *a = kl_ir_node_attr(back->top->first, "value");
      CHECK(a && a->kind == KL_ATTR_TENSOR);
      if (a && a->kind == KL_ATTR_TENSOR)
        CHECK(a->u.t->nbytes == t->nbytes && memcmp(a->u.t->data, t->data, t->nbytes) == 0);
      /* Float elements are short: no float32 needs more than 9 digits. */
      if (dts[k] == KL_F32)
        CHECK(strlen(text) < 120 + (size_t)N * 17);
    }
    free(text);
    kl_ir_graph_destroy(back);
    kl_ir_graph_destroy(g);
    kl_tensor_release(t);
  }
}

static void test_escapes(void) {
  const char *text =
      "graph(%\"a\\\"b\\\\c\\nd\\te\\x01\\x7f\\xC3\\xA9\" : Float(2)):\n"
      "  %plain.name_1 : Float(2) = aten::relu(%\"a\\\"b\\\\c\\nd\\te\\x01\\x7f\\xC3\\xA9\")\n"
      "  return (%plain.name_1)\n";
  kl_ir_graph *g = parse_ok(text);
  CHECK(g != NULL);
  if (!g)
    return;
  CHECK_STREQ(g->top->params[0]->name, "a\"b\\c\nd\te\x01\x7f\xc3\xa9");
  CHECK(kl_ir_graph_find_value(g, "plain.name_1") != NULL);
  char *out = print_graph(g);
  /* Canonical form: \xHH only for control bytes, UTF-8 bytes as they are, lower-case hex. */
  CHECK(strstr(out, "%\"a\\\"b\\\\c\\nd\\te\\x01\\x7f\xc3\xa9\" : Float(2)") != NULL);
  CHECK(strstr(out, "%plain.name_1 : Float(2) = aten::relu(") != NULL);
  free(out);
  kl_ir_graph_destroy(g);

  /* Names the graph gives out are printed and parsed back as they are. */
  g = kl_ir_graph_create();
  kl_ir_type t = kl_ir_type_make(KL_F32, 0, NULL);
  const char *names[] = {"*/", "#include <x.h>", "\"", "\\", "a b", "1", "%", "x\n\ny", "é"};
  kl_ir_value *prev = NULL;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    kl_ir_value *p = kl_ir_block_add_param(g->top, names[i], &t);
    CHECK_STREQ(p->name, names[i]);
    prev = p;
  }
  kl_ir_block_add_return(g->top, prev);
  out = print_graph(g);
  kl_ir_graph *back = parse_ok(out);
  CHECK(back != NULL);
  for (size_t i = 0; back && i < sizeof names / sizeof *names; i++)
    CHECK_STREQ(back->top->params[i]->name, names[i]);
  free(out);
  kl_ir_graph_destroy(back);
  kl_ir_graph_destroy(g);
}

/* Omitted types, comments, odd spacing and block numbering parse, and print canonically. */
static void test_canonical_output(void) {
  const char *in = "# a comment line\n"
                   "\n"
                   "graph<N=1..64>( %x:Float(N,3) , %c : Bool() ):   # header\n"
                   "  %1 = aten::relu(%x)\n"
                   "\t%2 = aten::softmax[ dim = -1 ]( %1 )\n"
                   "  %3 : Float(N, 3) = prim::If(%c)\n"
                   "      block0(  ):\n"
                   "   -> (%2)\n"
                   "block1():\n"
                   "  -> ( %1 )\n"
                   "  %4 = prim::FusionGroup_7(%3)\n"
                   "  return (%4)\n"
                   "\n"
                   "with prim::FusionGroup_7 = graph(%a : Float(N, 3)):\n"
                   "  %b = aten::neg(%a)  # inferred: Float(N, 3)\n"
                   "  return (%b)";
  const char *want = "graph<N=1..64>(%x : Float(N, 3), %c : Bool()):\n"
                     "  %1 : Float(N, 3) = aten::relu(%x)\n"
                     "  %2 : Float(N, 3) = aten::softmax[dim=-1](%1)\n"
                     "  %3 : Float(N, 3) = prim::If(%c)\n"
                     "    block0():\n"
                     "      -> (%2)\n"
                     "    block1():\n"
                     "      -> (%1)\n"
                     "  %4 : Float(N, 3) = prim::FusionGroup_0(%3)\n"
                     "  return (%4)\n"
                     "with prim::FusionGroup_0 = graph(%a : Float(N, 3)):\n"
                     "  %b : Float(N, 3) = aten::neg(%a)\n"
                     "  return (%b)\n";
  kl_ir_graph *g = parse_ok(in);
  CHECK(g != NULL);
  if (g) {
    char *out = print_graph(g);
    CHECK_STREQ(out, want);
    free(out);
    CHECK_EQ_INT(g->n_symbols, 1);
    CHECK_EQ_INT(g->symbols[0].min, 1);
    CHECK_EQ_INT(g->symbols[0].max, 64);
  }
  kl_ir_graph_destroy(g);

  /* An unbounded symbol and the empty graph. */
  g = parse_ok("graph<S=0..>(%x : Long(S)):\n  return (%x)\n");
  CHECK(g && g->n_symbols == 1 && g->symbols[0].max == INT64_MAX);
  kl_ir_graph_destroy(g);
  g = parse_ok("graph():\n  return ()\n");
  CHECK(g != NULL);
  if (g) {
    char *out = print_graph(g);
    CHECK_STREQ(out, "graph():\n  return ()\n");
    free(out);
  }
  kl_ir_graph_destroy(g);
}

/* Numeric output names that the graph handed out to a node's other outputs still parse. */
static void test_numeric_names(void) {
  static const char *const orders[] = {"%0, %1, %2", "%2, %1, %0", "%1, %2, %3", "%3, %2, %1",
                                       "%1, %0, %5"};
  for (size_t k = 0; k < sizeof orders / sizeof *orders; k++) {
    char text[512];
    char outs[3][8];
    sscanf(orders[k], "%7[^,], %7[^,], %7s", outs[0], outs[1], outs[2]);
    snprintf(text, sizeof text,
             "graph(%%x : Float(6)):\n"
             "  %s : Float(2), %s : Float(2), %s : Float(2) = aten::split[sizes=[2, 2, 2]](%%x)\n"
             "  return (%s, %s, %s)\n",
             outs[0], outs[1], outs[2], outs[0], outs[1], outs[2]);
    kl_ir_graph *g = parse_ok(text);
    CHECK(g != NULL);
    if (!g)
      continue;
    char *out = print_graph(g);
    CHECK_STREQ(out, text);
    free(out);
    kl_ir_graph_destroy(g);
  }
}

static void test_attr_values(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_attr a;
#define PARSE_ATTR(text, kind) kl_ir_parse_attr_value(g, text, strlen(text), kind, &a)
  CHECK_OK(PARSE_ATTR("-3", KL_ATTR_INT));
  CHECK_EQ_INT(a.u.i, -3);
  CHECK_OK(PARSE_ATTR("9223372036854775807", KL_ATTR_INT));
  CHECK(a.u.i == INT64_MAX);
  CHECK_OK(PARSE_ATTR("1e-05", KL_ATTR_FLOAT));
  CHECK(a.u.f == 1e-05);
  CHECK_OK(PARSE_ATTR("2", KL_ATTR_FLOAT)); /* an integer is a fine float */
  CHECK(a.u.f == 2.0);
  CHECK_OK(PARSE_ATTR("-inf", KL_ATTR_FLOAT));
  CHECK(isinf(a.u.f) && a.u.f < 0);
  CHECK_OK(PARSE_ATTR("nan", KL_ATTR_FLOAT));
  CHECK(isnan(a.u.f));
  CHECK_OK(PARSE_ATTR("\"tanh\"", KL_ATTR_STRING));
  CHECK_STREQ(a.u.s, "tanh");
  CHECK_OK(PARSE_ATTR("[1, -2, 3]", KL_ATTR_INTS));
  CHECK(a.kind == KL_ATTR_INTS && a.n == 3 && a.u.is[0] == 1 && a.u.is[1] == -2 && a.u.is[2] == 3);
  CHECK_OK(PARSE_ATTR("[]", KL_ATTR_INTS));
  CHECK_EQ_INT(a.n, 0);
  CHECK_OK(PARSE_ATTR("[1.5, 2, -inf]", KL_ATTR_FLOATS));
  CHECK(a.n == 3 && a.u.fs[0] == 1.5 && a.u.fs[1] == 2.0 && isinf(a.u.fs[2]));
  CHECK_OK(PARSE_ATTR("[\"a\", \"b\\n\"]", KL_ATTR_STRINGS));
  CHECK(a.n == 2 && strcmp(a.u.ss[0], "a") == 0 && strcmp(a.u.ss[1], "b\n") == 0);
  CHECK_OK(PARSE_ATTR("Long", KL_ATTR_DTYPE));
  CHECK_EQ_INT(a.u.dtype, KL_I64);
  CHECK_OK(PARSE_ATTR("Float(2, 2){1.0, 2.0, 3.0, 4.5}", KL_ATTR_TENSOR));
  CHECK(a.kind == KL_ATTR_TENSOR && a.u.t && a.u.t->rank == 2 && a.u.t->numel == 4 &&
        ((float *)a.u.t->data)[3] == 4.5f);
  if (a.kind == KL_ATTR_TENSOR)
    kl_tensor_release(a.u.t); /* the caller owns a parsed tensor */
  CHECK_OK(PARSE_ATTR("Bool(){true}", KL_ATTR_TENSOR));
  CHECK(a.u.t && a.u.t->rank == 0 && ((uint8_t *)a.u.t->data)[0] == 1);
  kl_tensor_release(a.u.t);

  CHECK_ERR(PARSE_ATTR("1.5", KL_ATTR_INT), KL_ERR_PARSE, "expected an integer, found number 1.5");
  CHECK_ERR(PARSE_ATTR("9223372036854775808", KL_ATTR_INT), KL_ERR_PARSE, "out of range");
  CHECK_ERR(PARSE_ATTR("1e999", KL_ATTR_FLOAT), KL_ERR_PARSE, "out of range");
  CHECK_ERR(PARSE_ATTR("[1, 2", KL_ATTR_INTS), KL_ERR_PARSE, "expected ',', found end of file");
  CHECK_ERR(PARSE_ATTR("[1, \"x\"]", KL_ATTR_INTS), KL_ERR_PARSE, "1:5: ");
  CHECK_ERR(PARSE_ATTR("\"abc", KL_ATTR_STRING), KL_ERR_PARSE, "unterminated string");
  CHECK_ERR(PARSE_ATTR("\"a\\x00\"", KL_ATTR_STRING), KL_ERR_PARSE, "bad escape");
  CHECK_ERR(PARSE_ATTR("Longer", KL_ATTR_DTYPE), KL_ERR_PARSE, "expected a dtype");
  CHECK_ERR(PARSE_ATTR("3 4", KL_ATTR_INT), KL_ERR_PARSE, "expected end of the attribute value");
  CHECK_ERR(PARSE_ATTR("Float(2){1.0}", KL_ATTR_TENSOR), KL_ERR_PARSE, "has 1 elements");
  CHECK_ERR(PARSE_ATTR("Float(N){1.0}", KL_ATTR_TENSOR), KL_ERR_PARSE, "expected a dimension size");
  CHECK_ERR(PARSE_ATTR("Float(2){@3}", KL_ATTR_TENSOR), KL_ERR_PARSE, "needs the weights");
  CHECK_ERR(PARSE_ATTR("Byte(1){256}", KL_ATTR_TENSOR), KL_ERR_PARSE, "does not fit in Byte");
  CHECK_ERR(PARSE_ATTR("Bool(1){1}", KL_ATTR_TENSOR), KL_ERR_PARSE, "expected true or false");
  CHECK_ERR(PARSE_ATTR("Float(4611686018427387904, 4){}", KL_ATTR_TENSOR), KL_ERR_PARSE,
            "too many elements");
  CHECK_ERR(PARSE_ATTR("", KL_ATTR_STRING), KL_ERR_PARSE, "found end of file");
#undef PARSE_ATTR
  kl_ir_graph_destroy(g);
}

/* FLOATS and STRINGS attributes (no op in the table uses them yet) print as lists. */
static void test_print_list_kinds(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_CONSTANT, NULL, 0, 1);
  kl_ir_node_set_floats(n, "fs", (double[]){1.0, 0.5, -2e-10}, 3);
  kl_ir_node_set_strings(n, "ss", (const char *[]){"a", "b\"c"}, 2);
  kl_ir_node_set_floats(n, "none", NULL, 0);
  kl_ir_node_set_dtype(n, "dt", KL_BF16);
  char *out = print_graph(g);
  CHECK(strstr(out, "[fs=[1.0, 0.5, -2e-10], ss=[\"a\", \"b\\\"c\"], none=[], dt=BFloat16]()") !=
        NULL);
  free(out);
  kl_ir_graph_destroy(g);
}

static int64_t ref_of(void *ctx, const kl_tensor *t) {
  (void)ctx;
  return t->numel == 6 ? 7 : -1;
}

static kl_status resolve_ref(void *ctx, int64_t index, const kl_ir_type *type, kl_tensor **out) {
  int *calls = ctx;
  (*calls)++;
  if (index != 7)
    return kl_status_create(KL_ERR_NOT_FOUND, "no blob %lld", (long long)index);
  int64_t shape[KL_MAX_RANK];
  if (!kl_ir_type_shape(type, shape))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "not static");
  return kl_tensor_create(type->dtype, type->rank, shape, out);
}

static void test_tensor_refs(void) {
  const char *text =
      "graph():\n"
      "  %w : Float(2, 3) = prim::Constant[value=Float(2, 3){1.0, 2.0, 3.0, 4.0, 5.0, 6.0}]()\n"
      "  %v : Long(1) = prim::Constant[value=Long(1){5}]()\n"
      "  return (%w, %v)\n";
  kl_ir_graph *g = parse_ok(text);
  CHECK(g != NULL);
  if (!g)
    return;
  kl_ir_print_options popts = {.tensor_ref = ref_of};
  char *out = NULL;
  size_t len;
  CHECK_OK(kl_ir_print(g, &popts, &out, &len));
  CHECK(out && strstr(out, "[value=Float(2, 3){@7}]()") != NULL);
  CHECK(out && strstr(out, "[value=Long(1){5}]()") != NULL);
  kl_ir_graph *back = NULL;
  CHECK_ERR(kl_ir_parse(out, len, NULL, &back), KL_ERR_PARSE, "2:56: tensor reference {@7}");
  CHECK(back == NULL);
  int calls = 0;
  kl_ir_parse_options opts = {.filename = "net.kir", .resolve_tensor = resolve_ref, .ctx = &calls};
  CHECK_OK(kl_ir_parse(out, len, &opts, &back));
  CHECK_EQ_INT(calls, 1);
  kl_ir_graph_destroy(back);
  back = NULL;
  char *bad = malloc(len + 1);
  memcpy(bad, out, len + 1);
  char *at7 = strstr(bad, "{@7}");
  at7[2] = '8';
  CHECK_ERR(kl_ir_parse(bad, len, &opts, &back), KL_ERR_PARSE,
            "net.kir:2:56: tensor reference {@8}: no blob 8");
  free(bad);
  free(out);
  kl_ir_graph_destroy(g);
}

static int count_lines(const char *s) {
  int n = 1;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* Several mistakes: each is reported, sorted by position, and the parse goes on after each. */
static void test_error_recovery(void) {
  const char *text = "graph(%x : Float(2)):\n"
                     "  %a : Float(2) = aten::relu(%nope)\n"
                     "  %b : Float(2) = aten::bogus(%x)\n"
                     "  %c : Float(2) = aten::add(%b, %x)\n" /* %b failed: no cascade */
                     "  %d : Float(2) = aten::relu(%x %x)\n"
                     "  %e : Float(2) = aten::softmax(%x)\n"
                     "  return (%c)\n";
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(text, strlen(text), NULL, &g);
  CHECK(s != NULL && g == NULL);
  const char *m = kl_status_message(s);
  CHECK(strstr(m, "<input>:2:30: undefined value %nope") == m);
  CHECK(strstr(m, "<input>:3:19: unknown op 'aten::bogus'") != NULL);
  CHECK(strstr(m, "<input>:5:33: expected ',', found %x") != NULL);
  CHECK(strstr(m, "<input>:6:19: aten::softmax is missing its required attribute 'dim'") != NULL);
  CHECK(strstr(m, "%b") == NULL);
  CHECK_EQ_INT(count_lines(m), 4);
  kl_status_destroy(s);

  /* A type that cannot be inferred is one error; its users are not inferred after it. */
  text = "graph(%x : Float(2, 3), %y : Float(4, 5)):\n"
         "  %a = aten::matmul(%x, %y)\n"
         "  %b = aten::relu(%a)\n"
         "  %c = aten::relu(%b)\n"
         "  return (%c)\n";
  s = kl_ir_parse(text, strlen(text), NULL, &g);
  CHECK(s && strstr(kl_status_message(s), "<input>:2:8: cannot infer the type of an output") ==
                 kl_status_message(s));
  CHECK_EQ_INT(count_lines(kl_status_message(s)), 1);
  kl_status_destroy(s);

  /* Too many errors: the first ones and a count. */
  size_t cap = 64 * 100 + 64;
  char *many = malloc(cap);
  size_t o = (size_t)snprintf(many, cap, "graph():\n");
  for (int i = 0; i < 60; i++)
    o += (size_t)snprintf(many + o, cap - o, "  %%v%d : Float(2) = aten::relu(%%u%d)\n", i, i);
  snprintf(many + o, cap - o, "  return ()\n");
  s = kl_ir_parse(many, strlen(many), NULL, &g);
  CHECK(s && strstr(kl_status_message(s), "(40 more errors)") != NULL);
  kl_status_destroy(s);
  free(many);
}

/* Nesting past the limit is an error, not a stack overflow. */
static void test_deep_nesting(void) {
  enum { DEPTH = 300 };
  size_t cap = (size_t)DEPTH * DEPTH * 8 + 4096;
  char *text = malloc(cap);
  size_t o = (size_t)snprintf(text, cap, "graph(%%c : Bool()):\n");
  for (int i = 0; i < DEPTH; i++)
    o += (size_t)snprintf(text + o, cap - o, "%*sprim::If(%%c)\n%*sblock0():\n", 2 + 4 * i, "",
                          4 + 4 * i, "");
  snprintf(text + o, cap - o, "  return ()\n");
  kl_ir_graph *g = NULL;
  CHECK_ERR(kl_ir_parse(text, strlen(text), NULL, &g), KL_ERR_PARSE, "nested deeper than");
  free(text);
}

static const char robust_text[] =
    "graph<N=1..64, S=1..>(%x : Float(N, 4), %c : Bool(), %\"odd \\\"name\\n\" : Long(S)):\n"
    "  %w : Float(4, 4) = prim::Constant[value=Float(4, 4){1.0, 0.5, -2.0, 1e-05, 0.0, 1.0, 2.0, "
    "3.0, "
    "4.0, 5.0, 6.0, 7.0, inf, -inf, nan, 0.25}]()\n"
    "  %1 : Float(N, 4) = aten::matmul(%x, %w)\n"
    "  %2 : Float(N, 4) = aten::leaky_relu[negative_slope=0.2](%1)\n"
    "  %a : Float(N, 2), %b : Float(N, 2) = aten::split[sizes=[2, 2], dim=1](%2)\n"
    "  %y : Float(N, 2) = prim::If(%c)\n"
    "    block0():\n"
    "      %r : Float(N, 2) = aten::gelu[approximate=\"tanh\"](%a)\n"
    "      -> (%r)\n"
    "    block1():\n"
    "      -> (%b)\n"
    "  %z : Float(N, 2) = prim::FusionGroup_0(%y, %b)\n"
    "  %l : Long(S) = aten::neg(%\"odd \\\"name\\n\")\n"
    "  return (%z, %l)\n"
    "with prim::FusionGroup_0 = graph(%p : Float(N, 2), %q : Float(N, 2)):\n"
    "  %s : Float(N, 2) = aten::add(%p, %q)\n"
    "  return (%s)\n";

/* Every prefix, and one-byte corruptions at every position, give an error or a graph (run
 * under ASan/UBSan by the sanitizer build). */
static void test_robustness(void) {
  size_t len = strlen(robust_text);
  kl_ir_graph *g = parse_ok(robust_text);
  CHECK(g != NULL);
  if (g) {
    char *out = print_graph(g);
    CHECK_STREQ(out, robust_text);
    free(out);
  }
  kl_ir_graph_destroy(g);
  int failures = 0, graphs = 0;
  for (size_t n = 0; n < len; n++) {
    char *copy = malloc(n ? n : 1); /* exact size: a read past the end is caught by ASan */
    memcpy(copy, robust_text, n);
    kl_status s = kl_ir_parse(copy, n, NULL, &g);
    if (s) {
      failures += kl_status_code_of(s) != KL_OK && *kl_status_message(s);
      kl_status_destroy(s);
    } else {
      graphs++;
      kl_ir_graph_destroy(g);
    }
    free(copy);
  }
  /* Only the whole file, less perhaps its last newline, is complete. */
  CHECK_EQ_INT(failures, (int)len - 1);
  CHECK_EQ_INT(graphs, 1);
  static const char subst[] = {'"', '%', '(', ')', '\n', '\\', '9',        '-',
                               '[', '{', '#', ':', '.',  '\0', (char)0xff, ' '};
  int outcomes = 0;
  for (size_t i = 0; i < len; i++) {
    for (size_t k = 0; k < sizeof subst; k++) {
      char *copy = malloc(len);
      memcpy(copy, robust_text, len);
      copy[i] = subst[k];
      kl_status s = kl_ir_parse(copy, len, NULL, &g);
      if (s)
        kl_status_destroy(s);
      else
        kl_ir_graph_destroy(g);
      outcomes++;
      free(copy);
    }
  }
  CHECK_EQ_INT(outcomes, (int)(len * sizeof subst));
}

/* Every prefix of every canonical test file (tests/ir/roundtrip; the unit tests run in
 * tests/unit) parses to an error or a graph, never a crash. */
static void test_prefixes_of_test_files(void) {
  DIR *dir = opendir("../ir/roundtrip");
  CHECK(dir != NULL);
  if (!dir)
    return;
  int files = 0;
  struct dirent *ent;
  while ((ent = readdir(dir))) {
    size_t nlen = strlen(ent->d_name);
    if (nlen < 4 || strcmp(ent->d_name + nlen - 3, ".ir") != 0)
      continue;
    char path[512];
    snprintf(path, sizeof path, "../ir/roundtrip/%s", ent->d_name);
    FILE *f = fopen(path, "rb");
    if (!f)
      continue;
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    files++;
    int complete = 0;
    for (size_t n = 0; n <= len; n++) {
      char *copy = malloc(n ? n : 1);
      memcpy(copy, buf, n);
      kl_ir_graph *g = NULL;
      kl_status s = kl_ir_parse(copy, n, NULL, &g);
      complete += s == NULL;
      kl_status_destroy(s);
      kl_ir_graph_destroy(g);
      free(copy);
    }
    /* The whole file and the file less its final newline. */
    CHECK_EQ_INT(complete, 2);
  }
  closedir(dir);
  CHECK(files >= 12);
}

static void test_files(void) {
  kl_ir_graph *g = NULL;
  CHECK_ERR(kl_ir_parse_file("/nonexistent/dir/net.ir", &g), KL_ERR_IO, "/nonexistent/dir/net.ir");
  g = parse_ok("graph(%x : Float(1)):\n  return (%x)\n");
  CHECK(g != NULL);
  if (!g)
    return;
  FILE *f = tmpfile();
  CHECK(f != NULL);
  if (f) {
    CHECK_OK(kl_ir_print_file(g, f));
    rewind(f);
    char buf[128] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    CHECK_EQ_INT(n, strlen("graph(%x : Float(1)):\n  return (%x)\n"));
    CHECK_STREQ(buf, "graph(%x : Float(1)):\n  return (%x)\n");
    fclose(f);
  }
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_float_attr_roundtrip();
  test_float_tensor_roundtrip();
  test_escapes();
  test_canonical_output();
  test_numeric_names();
  test_attr_values();
  test_print_list_kinds();
  test_tensor_refs();
  test_error_recovery();
  test_deep_nesting();
  test_robustness();
  test_prefixes_of_test_files();
  test_files();
  return check_finish();
}
