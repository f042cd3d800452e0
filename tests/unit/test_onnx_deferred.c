/* Tests for ONNX nodes whose mapping needs values known only at run time (onnx::Deferred,
 * frontend/onnx/onnx_import_deferred.c): a model whose Reshape shape and ReduceSum axes are
 * graph inputs is built in memory, imported, printed and parsed back byte for byte, run by the
 * interpreter with different shape values, given bad values (a clear error, no crash), and
 * expanded by canonicalize once those inputs become constants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "frontend/onnx/onnx.h"
#include "frontend/onnx/onnx_internal.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/interp.h"

/* ---- building a model ------------------------------------------------------------------- */

typedef struct model_parts {
  Onnx__ModelProto model;
  Onnx__OperatorSetIdProto opset, *opsets[1];
  Onnx__GraphProto graph;
  Onnx__NodeProto reshape, reduce, *nodes[2];
  Onnx__AttributeProto keepdims, *reduce_attrs[1];
  char *reshape_in[2], *reshape_out[1], *reduce_in[2], *reduce_out[1];
  Onnx__ValueInfoProto vi[4], *inputs[3], *outputs[1];
  Onnx__TypeProto tp[4];
  Onnx__TypeProto__Tensor tt[4];
  Onnx__TensorShapeProto shp[4];
  Onnx__TensorShapeProto__Dimension dim[8], *dims[8];
} model_parts;

/* Value info k named name: elem_type with rank dims from sizes (rank -1: no shape). */
static void value_info(model_parts *m, int k, const char *name, int elem_type, int rank,
                       const int64_t *sizes, int *next_dim) {
  onnx__value_info_proto__init(&m->vi[k]);
  onnx__type_proto__init(&m->tp[k]);
  onnx__type_proto__tensor__init(&m->tt[k]);
  m->vi[k].name = (char *)name;
  m->vi[k].type = &m->tp[k];
  m->tp[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  m->tp[k].tensor_type = &m->tt[k];
  m->tt[k].has_elem_type = 1;
  m->tt[k].elem_type = elem_type;
  if (rank < 0)
    return;
  onnx__tensor_shape_proto__init(&m->shp[k]);
  m->tt[k].shape = &m->shp[k];
  m->shp[k].n_dim = (size_t)rank;
  m->shp[k].dim = &m->dims[*next_dim];
  for (int d = 0; d < rank; d++, (*next_dim)++) {
    Onnx__TensorShapeProto__Dimension *dm = &m->dim[*next_dim];
    onnx__tensor_shape_proto__dimension__init(dm);
    dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    dm->dim_value = sizes[d];
    m->dims[*next_dim] = dm;
  }
}

/* graph(x: Float(2, 3, 4), shape: Long(2), axes: Long(1)):
 *   y = Reshape(x, shape); z = ReduceSum(y, axes, keepdims=1); return z (declared Float, no
 *   shape, so the importer takes the rank from the op's rule). Packed into a malloc'd buffer. */
static uint8_t *build_model(size_t *out_len) {
  model_parts *m = calloc(1, sizeof *m);
  if (!m)
    abort();
  onnx__model_proto__init(&m->model);
  onnx__operator_set_id_proto__init(&m->opset);
  onnx__graph_proto__init(&m->graph);
  m->model.has_ir_version = 1;
  m->model.ir_version = 8;
  m->opset.domain = "";
  m->opset.has_version = 1;
  m->opset.version = 18;
  m->opsets[0] = &m->opset;
  m->model.opset_import = m->opsets;
  m->model.n_opset_import = 1;
  m->model.graph = &m->graph;
  m->graph.name = "deferred";

  onnx__node_proto__init(&m->reshape);
  m->reshape.op_type = "Reshape";
  m->reshape_in[0] = "x";
  m->reshape_in[1] = "shape";
  m->reshape_out[0] = "y";
  m->reshape.input = m->reshape_in;
  m->reshape.n_input = 2;
  m->reshape.output = m->reshape_out;
  m->reshape.n_output = 1;

  onnx__node_proto__init(&m->reduce);
  onnx__attribute_proto__init(&m->keepdims);
  m->reduce.op_type = "ReduceSum";
  m->reduce_in[0] = "y";
  m->reduce_in[1] = "axes";
  m->reduce_out[0] = "z";
  m->reduce.input = m->reduce_in;
  m->reduce.n_input = 2;
  m->reduce.output = m->reduce_out;
  m->reduce.n_output = 1;
  m->keepdims.name = "keepdims";
  m->keepdims.has_type = 1;
  m->keepdims.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  m->keepdims.has_i = 1;
  m->keepdims.i = 1;
  m->reduce_attrs[0] = &m->keepdims;
  m->reduce.attribute = m->reduce_attrs;
  m->reduce.n_attribute = 1;
  m->nodes[0] = &m->reshape;
  m->nodes[1] = &m->reduce;
  m->graph.node = m->nodes;
  m->graph.n_node = 2;

  int next_dim = 0;
  const int64_t xs[] = {2, 3, 4}, two[] = {2}, one[] = {1};
  value_info(m, 0, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, xs, &next_dim);
  value_info(m, 1, "shape", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, two, &next_dim);
  value_info(m, 2, "axes", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, one, &next_dim);
  value_info(m, 3, "z", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, -1, NULL, &next_dim);
  for (int i = 0; i < 3; i++)
    m->inputs[i] = &m->vi[i];
  m->outputs[0] = &m->vi[3];
  m->graph.input = m->inputs;
  m->graph.n_input = 3;
  m->graph.output = m->outputs;
  m->graph.n_output = 1;

  size_t len = onnx__model_proto__get_packed_size(&m->model);
  uint8_t *buf = malloc(len + 1);
  if (!buf)
    abort();
  onnx__model_proto__pack(&m->model, buf);
  free(m);
  *out_len = len;
  return buf;
}

static kl_ir_graph *import_model(void) {
  size_t len;
  uint8_t *buf = build_model(&len);
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_onnx_import_buffer(buf, len, NULL, "deferred.onnx", NULL, &g));
  free(buf);
  return g;
}

static kl_tensor *i64_vector(int n, const int64_t *v) {
  kl_tensor *t = NULL;
  int64_t shape[1] = {n};
  CHECK_OK(kl_tensor_create(KL_I64, 1, shape, &t));
  memcpy(t->data, v, (size_t)n * sizeof *v);
  return t;
}

static kl_tensor *iota_x(void) {
  kl_tensor *t = NULL;
  int64_t shape[3] = {2, 3, 4};
  CHECK_OK(kl_tensor_create(KL_F32, 3, shape, &t));
  for (int i = 0; i < 24; i++)
    ((float *)t->data)[i] = (float)i;
  return t;
}

static int count_op(const kl_ir_graph *g, kl_op op) {
  int n = 0;
  for (const kl_ir_node *node = g->top->first; node; node = node->next)
    n += node->op == op;
  return n;
}

static char *print_graph(const kl_ir_graph *g) {
  char *text = NULL;
  size_t size = 0;
  CHECK_OK(kl_ir_print(g, NULL, &text, &size));
  return text;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_import_and_text(void) {
  kl_ir_graph *g = import_model();
  if (!g)
    return;
  CHECK_EQ_INT(g->top->n_params, 3);
  CHECK_EQ_INT(count_op(g, KL_OP_ONNX_DEFERRED), 2);
  CHECK_OK(kl_ir_verify(g));
  const kl_ir_value *z = g->top->returns[0];
  /* Rank from the op's rules, dims unknown: Reshape to a Long(2) shape, ReduceSum keepdims. */
  CHECK_EQ_INT(z->type.rank, 2);
  CHECK(z->type.dims[0].sym == KL_DIM_UNKNOWN && z->type.dims[1].sym == KL_DIM_UNKNOWN);
  char *text = print_graph(g);
  CHECK(text && strstr(text, "onnx::Deferred[op_type=\"Reshape\""));
  CHECK(text && strstr(text, "Float(*, *)"));
  kl_ir_graph *back = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &back));
  if (back) {
    char *again = print_graph(back);
    CHECK_STREQ(again, text);
    free(again);
  }
  kl_ir_graph_destroy(back);
  free(text);
  kl_ir_graph_destroy(g);
}

/* Runs g on x with the given shape and axes; returns z or NULL. */
static kl_tensor *run(const kl_ir_graph *g, const int64_t *shape, const int64_t *axes,
                      kl_status *out_status) {
  kl_tensor *in[3] = {iota_x(), i64_vector(2, shape), i64_vector(1, axes)};
  kl_tensor *out[1] = {NULL};
  *out_status = kl_interp_run(g, in, 3, out);
  for (int i = 0; i < 3; i++)
    kl_tensor_release(in[i]);
  return out[0];
}

static void test_run_time_values(void) {
  kl_ir_graph *g = import_model();
  if (!g)
    return;
  /* shape (4, 6), sum over axis 1: z[i] = sum of x[6i .. 6i+5]. */
  kl_status s;
  kl_tensor *z = run(g, (const int64_t[]){4, 6}, (const int64_t[]){1}, &s);
  CHECK_OK(s);
  if (z) {
    CHECK(z->rank == 2 && z->shape[0] == 4 && z->shape[1] == 1);
    for (int i = 0; i < 4 && z->numel == 4; i++)
      CHECK(((float *)z->data)[i] == (float)(36 * i + 15));
  }
  kl_tensor_release(z);
  /* The same graph with other values: shape (-1, 8) is (3, 8), sum over axis 0. */
  z = run(g, (const int64_t[]){-1, 8}, (const int64_t[]){0}, &s);
  CHECK_OK(s);
  if (z) {
    CHECK(z->rank == 2 && z->shape[0] == 1 && z->shape[1] == 8);
    for (int j = 0; j < 8 && z->numel == 8; j++)
      CHECK(((float *)z->data)[j] == (float)(j + (j + 8) + (j + 16)));
  }
  kl_tensor_release(z);
  /* Values that cannot work are an error naming the node, not a crash. */
  z = run(g, (const int64_t[]){5, 5}, (const int64_t[]){0}, &s);
  CHECK(s && !z);
  CHECK(s && strstr(kl_status_message(s), "onnx::Deferred"));
  kl_status_destroy(s);
  z = run(g, (const int64_t[]){4, 6}, (const int64_t[]){7}, &s);
  CHECK(s && !z);
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
}

/* Replaces graph input `index` by a constant holding t (as a harness binding would). */
static void make_constant(kl_ir_graph *g, int index, kl_tensor *t) {
  kl_ir_value *param = g->top->params[index];
  kl_ir_node *c = kl_ir_node_create(g, KL_OP_CONSTANT, NULL, 0, 1);
  kl_ir_node_set_tensor(c, "value", t);
  c->outputs[0]->type = kl_ir_type_of_tensor(t);
  kl_ir_node_insert_before(c, g->top->first);
  kl_ir_value_replace_all_uses(param, c->outputs[0]);
  kl_tensor_release(t);
}

static void test_canonicalize_expands(void) {
  kl_ir_graph *g = import_model();
  if (!g)
    return;
  make_constant(g, 1, i64_vector(2, (const int64_t[]){6, 4}));
  make_constant(g, 2, i64_vector(1, (const int64_t[]){0}));
  bool changed = false;
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  CHECK_OK(kl_pass_find("canonicalize")->run(g, &opts, &changed));
  CHECK(changed);
  CHECK_EQ_INT(count_op(g, KL_OP_ONNX_DEFERRED), 0);
  CHECK_EQ_INT(count_op(g, KL_OP_RESHAPE), 1);
  CHECK_OK(kl_ir_verify(g));
  const kl_ir_value *z = g->top->returns[0];
  CHECK(kl_ir_type_is_static(&z->type) && z->type.rank == 2 && z->type.dims[0].size == 1 &&
        z->type.dims[1].size == 4);
  CHECK_STREQ(z->name, "z");
  /* Still three graph inputs (the two unused ones are fed and ignored). */
  kl_tensor *in[3] = {iota_x(), i64_vector(2, (const int64_t[]){6, 4}),
                      i64_vector(1, (const int64_t[]){0})};
  kl_tensor *out[1] = {NULL};
  CHECK_OK(kl_interp_run(g, in, 3, out));
  if (out[0] && out[0]->numel == 4)
    for (int j = 0; j < 4; j++) /* sum over 6 rows of 4: sum_i (4i + j) = 60 + 6j */
      CHECK(((float *)out[0]->data)[j] == (float)(60 + 6 * j));
  kl_tensor_release(out[0]);
  for (int i = 0; i < 3; i++)
    kl_tensor_release(in[i]);
  kl_ir_graph_destroy(g);
}

/* The inputs whose values decide shapes are shape and axes (read by the Reshape and the
 * ReduceSum), not the data x; probing leaves the graph printing as before. */
static void test_shape_inputs(void) {
  kl_ir_graph *g = import_model();
  if (!g)
    return;
  char *before = print_graph(g);
  kl_ir_node *reshape = g->top->first;
  bool reads[2] = {true, false};
  CHECK(reshape && reshape->op == KL_OP_ONNX_DEFERRED && reshape->n_inputs == 2);
  if (reshape && reshape->n_inputs == 2) {
    CHECK_OK(kl_onnx_deferred_value_inputs(reshape, reads));
    CHECK(!reads[0] && reads[1]);
  }
  bool inputs[3] = {true, false, false};
  CHECK_EQ_INT(kl_onnx_shape_inputs(g, inputs), 2);
  CHECK(!inputs[0] && inputs[1] && inputs[2]);
  CHECK_OK(kl_ir_verify(g));
  char *after = print_graph(g);
  CHECK_STREQ(after, before);
  free(after);
  free(before);
  /* Bound to constants, the graph reads no more values: nothing decides shapes. */
  kl_tensor *shape = i64_vector(2, (const int64_t[]){6, 4});
  kl_tensor *axes = i64_vector(1, (const int64_t[]){0});
  CHECK_OK(kl_pass_bind_input(g, "shape", shape, NULL));
  CHECK_OK(kl_pass_bind_input(g, "axes", axes, NULL));
  kl_tensor_release(shape);
  kl_tensor_release(axes);
  CHECK_EQ_INT(g->top->n_params, 1);
  CHECK_EQ_INT(kl_onnx_shape_inputs(g, inputs), 0);
  CHECK(!inputs[0]);
  kl_ir_graph_destroy(g);
}

/* Binding shape and axes at compile time (kiln compile --bind) leaves one input, x, and a
 * graph that -O1 makes static, computing what the interpreter computes from all three. */
static void test_bind_then_static(void) {
  kl_ir_graph *g = import_model();
  if (!g)
    return;
  kl_tensor *shape = i64_vector(2, (const int64_t[]){6, 4});
  kl_tensor *axes = i64_vector(1, (const int64_t[]){0});
  CHECK_OK(kl_pass_bind_input(g, "shape", shape, "shape.npy"));
  CHECK_OK(kl_pass_bind_input(g, "axes", axes, "axes.npy"));
  kl_tensor_release(shape);
  kl_tensor_release(axes);
  CHECK_EQ_INT(g->top->n_params, 1);
  CHECK_STREQ(g->top->params[0]->name, "x");
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  opts.verify_each = true;
  CHECK_OK(kl_pass_run_level(g, 1, &opts));
  CHECK_EQ_INT(count_op(g, KL_OP_ONNX_DEFERRED), 0);
  const kl_ir_value *z = g->top->returns[0];
  CHECK(kl_ir_type_is_static(&z->type) && z->type.rank == 2 && z->type.dims[0].size == 1 &&
        z->type.dims[1].size == 4);
  kl_tensor *in[1] = {iota_x()};
  kl_tensor *out[1] = {NULL};
  CHECK_OK(kl_interp_run(g, in, 1, out));
  if (out[0] && out[0]->numel == 4)
    for (int j = 0; j < 4; j++)
      CHECK(((float *)out[0]->data)[j] == (float)(60 + 6 * j));
  kl_tensor_release(out[0]);
  kl_tensor_release(in[0]);
  kl_ir_graph_destroy(g);
}

/* Export writes a deferred node back as the ONNX node it keeps, at that node's opset only;
 * importing the export gives the same IR text. */
static void test_export_round_trip(void) {
  kl_ir_graph *g = import_model();
  if (!g)
    return;
  char path[] = "/tmp/kl_deferred_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd >= 0)
    close(fd);
  CHECK_ERR(kl_onnx_export_file(g, path, 17), KL_ERR_UNSUPPORTED, "opset 18");
  CHECK_OK(kl_onnx_export_file(g, path, 18));
  kl_ir_graph *back = NULL;
  CHECK_OK(kl_onnx_import_file(path, NULL, &back));
  if (back) {
    char *a = print_graph(g), *b = print_graph(back);
    CHECK_STREQ(b, a);
    free(a);
    free(b);
  }
  kl_ir_graph_destroy(back);
  remove(path);
  kl_ir_graph_destroy(g);
}

/* A deferred node with a damaged ONNX node is an error at run time, not a crash. */
static void test_bad_node_attribute(void) {
  kl_ir_graph *g = import_model();
  if (!g)
    return;
  for (kl_ir_node *n = g->top->first; n; n = n->next)
    if (n->op == KL_OP_ONNX_DEFERRED)
      kl_ir_node_set_string(n, "node", "0a0x");
  kl_status s;
  kl_tensor *z = run(g, (const int64_t[]){4, 6}, (const int64_t[]){1}, &s);
  CHECK(s && !z && strstr(kl_status_message(s), "hex"));
  kl_status_destroy(s);
  for (kl_ir_node *n = g->top->first; n; n = n->next)
    if (n->op == KL_OP_ONNX_DEFERRED)
      kl_ir_node_set_string(n, "node", "ffffffff");
  z = run(g, (const int64_t[]){4, 6}, (const int64_t[]){1}, &s);
  CHECK(s && !z);
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_import_and_text();
  test_run_time_values();
  test_canonicalize_expands();
  test_export_round_trip();
  test_bad_node_attribute();
  test_shape_inputs();
  test_bind_then_static();
  return check_finish();
}
