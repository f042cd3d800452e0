/* Tests for passes/manager.c: the registry, the -O pipelines, parsing pass lists, and running
 * passes with verify_each, print_after_all and time_passes. Also infer-shapes on a graph
 * whose types went stale (text tests cannot hold one: the parser rejects stale types) and
 * test-break, which verifies fine but must change results. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/interp.h"

static kl_ir_graph *parse(const char *text) {
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(text, strlen(text), NULL, &g);
  if (s) {
    fprintf(stderr, "parse: %s\n", kl_status_message(s));
    kl_status_destroy(s);
  }
  return g;
}

static char *print(const kl_ir_graph *g) {
  char *text = NULL;
  size_t len = 0;
  kl_status s = kl_ir_print(g, NULL, &text, &len);
  kl_status_destroy(s);
  return text;
}

static const char *const add_relu_dead =
    "graph(%x : Float(2, 2), %y : Float(2, 2)):\n"
    "  %sum : Float(2, 2) = aten::add(%x, %y)\n"
    "  %dead : Float(2, 2) = aten::exp(%x)\n"
    "  %out : Float(2, 2) = aten::relu(%sum)\n"
    "  return (%out)\n";

static void test_registry(void) {
  CHECK_EQ_INT(kl_pass_count(), 9);
  CHECK(kl_pass_at(-1) == NULL);
  CHECK(kl_pass_at(kl_pass_count()) == NULL);
  int n_test_only = 0;
  for (int i = 0; i < kl_pass_count(); i++) {
    const kl_pass_info *p = kl_pass_at(i);
    CHECK(p && p->name && p->summary && p->summary[0] && p->run);
    CHECK(kl_pass_find(p->name) == p);
    n_test_only += p->test_only;
  }
  CHECK_EQ_INT(n_test_only, 1);
  CHECK(kl_pass_find("test-break") && kl_pass_find("test-break")->test_only);
  CHECK_STREQ(kl_pass_find("dce")->name, "dce");
  CHECK(!kl_pass_find("dce")->test_only);
  CHECK(kl_pass_find("DCE") == NULL);
  CHECK(kl_pass_find("") == NULL);
  CHECK(kl_pass_find(NULL) == NULL);
}

static int pipeline_length(int level) {
  const char *const *names = kl_pass_pipeline(level);
  int n = 0;
  while (names[n])
    n++;
  return n;
}

static void test_pipelines(void) {
  CHECK(kl_pass_pipeline(-1) == NULL);
  CHECK(kl_pass_pipeline(4) == NULL);
  for (int level = 0; level <= 3; level++) {
    const char *const *names = kl_pass_pipeline(level);
    CHECK(names != NULL);
    for (int i = 0; names && names[i]; i++) {
      const kl_pass_info *p = kl_pass_find(names[i]);
      CHECK(p != NULL);
      CHECK(p && !p->test_only);
    }
  }
  CHECK_EQ_INT(pipeline_length(0), 0);
  CHECK_EQ_INT(pipeline_length(1), 3);
  CHECK_EQ_INT(pipeline_length(2), 9);
  CHECK_EQ_INT(pipeline_length(3), 11);
  CHECK_STREQ(kl_pass_pipeline(1)[0], "infer-shapes");
  CHECK_STREQ(kl_pass_pipeline(2)[4], "cse");
  /* -O3 is -O2 then fuse, dce. */
  for (int i = 0; i < 9; i++)
    CHECK_STREQ(kl_pass_pipeline(3)[i], kl_pass_pipeline(2)[i]);
  CHECK_STREQ(kl_pass_pipeline(3)[9], "fuse");
  CHECK_STREQ(kl_pass_pipeline(3)[10], "dce");
}

static void test_parse_list(void) {
  const kl_pass_info **passes = NULL;
  int n = -1;
  CHECK_OK(kl_pass_parse_list("cse,dce", &passes, &n));
  CHECK_EQ_INT(n, 2);
  CHECK(passes && passes[0] == kl_pass_find("cse") && passes[1] == kl_pass_find("dce"));
  free(passes);
  CHECK_OK(kl_pass_parse_list(" dce , infer-shapes,dce", &passes, &n));
  CHECK_EQ_INT(n, 3);
  CHECK(passes && passes[1] == kl_pass_find("infer-shapes") && passes[2] == kl_pass_find("dce"));
  free(passes);
  CHECK_OK(kl_pass_parse_list("", &passes, &n));
  CHECK_EQ_INT(n, 0);
  free(passes);

  passes = (const kl_pass_info **)&n; /* must be reset on failure */
  CHECK_ERR(kl_pass_parse_list("cse,bogus", &passes, &n), KL_ERR_NOT_FOUND,
            "unknown pass 'bogus'; known passes: infer-shapes, canonicalize");
  CHECK(passes == NULL);
  CHECK_EQ_INT(n, 0);
  CHECK_ERR(kl_pass_parse_list("cse,bogus", &passes, &n), KL_ERR_NOT_FOUND, "test-break");
  CHECK_ERR(kl_pass_parse_list("cse,,dce", &passes, &n), KL_ERR_INVALID_ARGUMENT,
            "empty pass name at position 2");
  CHECK_ERR(kl_pass_parse_list("cse,", &passes, &n), KL_ERR_INVALID_ARGUMENT, "empty pass name");
  CHECK_ERR(kl_pass_parse_list("dce cse", &passes, &n), KL_ERR_NOT_FOUND, "'dce cse'");
  CHECK_ERR(kl_pass_parse_list(NULL, &passes, &n), KL_ERR_INVALID_ARGUMENT, NULL);
}

/* A pass that leaves a structurally broken graph: a wrong output type. */
static kl_status break_types(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)opts;
  g->top->first->outputs[0]->type.dims[0].size = 7;
  *out_changed = true;
  return NULL;
}

static kl_status refuse(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)g;
  (void)opts;
  *out_changed = false;
  return kl_status_create(KL_ERR_UNSUPPORTED, "cannot handle this graph");
}

static void test_verify_each(void) {
  const kl_pass_info breaker = {"breaker", "breaks types", break_types, true};
  const kl_pass_info *list[] = {kl_pass_find("dce"), &breaker, kl_pass_find("cse")};
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  CHECK(!opts.verify_each && !opts.print_after_all && !opts.time_passes);
  CHECK_EQ_INT(opts.fold_max_bytes, 1 << 20);

  kl_ir_graph *g = parse(add_relu_dead);
  opts.verify_each = true;
  CHECK_ERR(kl_pass_run(g, list, 3, &opts), KL_ERR_INVALID_ARGUMENT,
            "after pass breaker: ");
  kl_ir_graph_destroy(g);

  /* Without verification the broken graph goes through unnoticed. */
  g = parse(add_relu_dead);
  opts.verify_each = false;
  CHECK_OK(kl_pass_run(g, list, 3, &opts));
  kl_status s = kl_ir_verify(g);
  CHECK(s != NULL);
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);

  /* A pass's own error names the pass, and later passes do not run. */
  const kl_pass_info refuser = {"refuser", "fails", refuse, true};
  const kl_pass_info *list2[] = {&refuser, kl_pass_find("dce")};
  g = parse(add_relu_dead);
  CHECK_ERR(kl_pass_run(g, list2, 2, &opts), KL_ERR_UNSUPPORTED,
            "pass refuser: cannot handle this graph");
  char *text = print(g);
  CHECK(text && strstr(text, "aten::exp")); /* dce did not run */
  free(text);
  kl_ir_graph_destroy(g);
}

static char *read_back(FILE *f) {
  long size = ftell(f);
  rewind(f);
  char *buf = calloc((size_t)size + 1, 1);
  if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size)
    buf[0] = '\0';
  return buf;
}

static void test_print_and_time(void) {
  kl_ir_graph *g = parse(add_relu_dead);
  FILE *printed = tmpfile(), *timed = tmpfile();
  CHECK(printed && timed);
  if (!g || !printed || !timed)
    return;
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  opts.verify_each = true;
  opts.print_after_all = printed;
  opts.time_passes = timed;
  const kl_pass_info *list[] = {kl_pass_find("dce"), kl_pass_find("dce")};
  CHECK_OK(kl_pass_run(g, list, 2, &opts));
  char *p = read_back(printed), *t = read_back(timed);
  const char *first = p ? strstr(p, "# after dce (changed)\ngraph(") : NULL;
  CHECK(first != NULL);
  const char *second = first ? strstr(first, "# after dce (unchanged)\ngraph(") : NULL;
  CHECK(second != NULL);
  CHECK(p && !strstr(p, "aten::exp"));
  CHECK(t && strstr(t, "pass"));
  CHECK(t && strstr(t, "\n# dce "));
  CHECK(t && strstr(t, "yes\n"));
  CHECK(t && strstr(t, "no\n"));
  CHECK(t && strstr(t, "# total"));
  free(p);
  free(t);
  fclose(printed);
  fclose(timed);
  kl_ir_graph_destroy(g);
}

static void test_levels(void) {
  kl_ir_graph *g = parse(add_relu_dead);
  CHECK_ERR(kl_pass_run_level(g, 4, NULL), KL_ERR_INVALID_ARGUMENT, "level 4");
  char *before = print(g);
  CHECK_OK(kl_pass_run_level(g, 0, NULL));
  char *after = print(g);
  CHECK(before && after && strcmp(before, after) == 0);
  free(before);
  free(after);
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  opts.verify_each = true;
  CHECK_OK(kl_pass_run_level(g, 1, &opts));
  after = print(g);
  CHECK(after && !strstr(after, "aten::exp"));
  free(after);
  kl_ir_graph_destroy(g);
}

/* infer-shapes after a graph input changed its type: every type downstream follows. */
static void test_infer_shapes_stale(void) {
  kl_ir_graph *g = parse("graph(%x : Float(2, 3)):\n"
                         "  %a : Float(2, 3) = aten::relu(%x)\n"
                         "  %b : Float(3, 2) = aten::transpose[dim0=0, dim1=1](%a)\n"
                         "  return (%b)\n");
  if (!g)
    return;
  g->top->params[0]->type.dims[0].size = 5;
  kl_status s = kl_ir_verify(g);
  CHECK(s != NULL); /* stale now */
  kl_status_destroy(s);
  bool changed = false;
  const kl_pass_info *infer = kl_pass_find("infer-shapes");
  CHECK_OK(infer->run(g, NULL, &changed));
  CHECK(changed);
  CHECK_OK(kl_ir_verify(g));
  char *text = print(g);
  CHECK(text && strstr(text, "%b : Float(3, 5) = aten::transpose"));
  free(text);
  CHECK_OK(infer->run(g, NULL, &changed));
  CHECK(!changed);
  kl_ir_graph_destroy(g);
}

/* test-break keeps the graph verifiable but changes what it computes. */
static void test_break_changes_results(void) {
  kl_ir_graph *g = parse(add_relu_dead);
  if (!g)
    return;
  int64_t shape[2] = {2, 2};
  kl_tensor *x = NULL, *y = NULL, *before = NULL, *after = NULL;
  CHECK_OK(kl_tensor_create(KL_F32, 2, shape, &x));
  CHECK_OK(kl_tensor_create(KL_F32, 2, shape, &y));
  for (int i = 0; i < 4; i++) {
    ((float *)x->data)[i] = 1.0f + (float)i;
    ((float *)y->data)[i] = 0.5f;
  }
  kl_tensor *inputs[2] = {x, y};
  CHECK_OK(kl_interp_run(g, inputs, 2, &before));
  const kl_pass_info *list[] = {kl_pass_find("test-break")};
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  opts.verify_each = true;
  CHECK_OK(kl_pass_run(g, list, 1, &opts));
  CHECK_OK(kl_interp_run(g, inputs, 2, &after));
  CHECK(before && after && memcmp(before->data, after->data, before->nbytes) != 0);
  kl_tensor_release(x);
  kl_tensor_release(y);
  kl_tensor_release(before);
  kl_tensor_release(after);
  kl_ir_graph_destroy(g);
}

/* dce drops the weight of a Param it removes, and only that one. */
static void test_dce_drops_dead_weights(void) {
  kl_ir_graph *g = parse("graph(%x : Float(1, 2)):\n"
                         "  %w : Float(3, 2) = prim::Param[name=\"used\"]()\n"
                         "  %v : Float(3, 2) = prim::Param[name=\"unused\"]()\n"
                         "  %y : Float(1, 3) = aten::linear(%x, %w)\n"
                         "  return (%y)\n");
  if (!g)
    return;
  int64_t shape[2] = {3, 2};
  kl_tensor *t = NULL;
  CHECK_OK(kl_tensor_create(KL_F32, 2, shape, &t));
  kl_ir_graph_set_weight(g, "used", t);
  kl_ir_graph_set_weight(g, "unused", t);
  kl_tensor_release(t);
  bool changed = false;
  CHECK_OK(kl_pass_find("dce")->run(g, NULL, &changed));
  CHECK(changed);
  CHECK(kl_ir_graph_weight(g, "used") != NULL);
  CHECK(kl_ir_graph_weight(g, "unused") == NULL);
  CHECK_OK(kl_ir_verify(g));
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_registry();
  test_pipelines();
  test_parse_list();
  test_verify_each();
  test_print_and_time();
  test_levels();
  test_infer_shapes_stale();
  test_break_changes_results();
  test_dce_drops_dead_weights();
  return check_finish();
}
