/* Tests for runtime/steps.h and runtime/interp_encode.h: the step table covers every kernel of
 * the op table; encode + step gives the interpreter's bytes for a range of ops; a parameter
 * block is byte-identical across encodes; encoding errors name the op; and matmul, linear and
 * conv2d (and attention) run on a pool of 4 give bit-identical results to a run without one. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "ir/ir.h"
#include "ir/text.h"
#include "runtime/interp.h"
#include "runtime/interp_encode.h"
#include "runtime/steps.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static kl_tensor *make(kl_dtype dt, int rank, const int64_t *shape) {
  kl_tensor *t = NULL;
  kl_status s = kl_tensor_create(dt, rank, shape, &t);
  if (s) {
    fprintf(stderr, "tensor: %s\n", kl_status_message(s));
    kl_status_destroy(s);
    exit(1);
  }
  return t;
}

/* Deterministic values: floats in about [-1, 1]; integers in [0, bound). */
static void fill(kl_tensor *t, uint32_t seed, int64_t bound) {
  uint32_t x = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t->numel; i++) {
    x = x * 1664525u + 1013904223u;
    if (kl_dtype_is_float(t->dtype))
      kl_dtype_store_f64(t->dtype, t->data, (size_t)i, ((double)(x >> 8) / (1 << 23)) - 1.0);
    else
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, (int64_t)((x >> 8) % (uint32_t)bound));
  }
}

static kl_tensor *random_tensor(kl_dtype dt, int rank, const int64_t *shape, uint32_t seed) {
  kl_tensor *t = make(dt, rank, shape);
  fill(t, seed, 1);
  return t;
}

static bool same_bytes(const kl_tensor *a, const kl_tensor *b) {
  return a->dtype == b->dtype && kl_tensor_same_shape(a, b) && a->nbytes == b->nbytes &&
         (a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
}

static kl_step_operand operand_of(const kl_tensor *t) {
  return (kl_step_operand){.dtype = t->dtype, .rank = t->rank, .shape = t->shape};
}

/* ---- the table -------------------------------------------------------------------------- */

static void test_lookup(void) {
  static const char *const kernels[] = {
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel) #kernel,
#include "ir/ops.def"
#undef KL_OP
  };
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
    const kl_step_info *info = kl_step_lookup(kernels[i]);
    CHECK(info != NULL);
    if (!info)
      continue;
    CHECK_STREQ(info->kernel, kernels[i]);
    char symbol[64];
    snprintf(symbol, sizeof symbol, "kl_step_%s", kernels[i]);
    CHECK_STREQ(info->symbol, symbol);
    CHECK(info->params_size <= KL_STEP_PARAMS_MAX);
    CHECK((info->fn == NULL) == (strcmp(kernels[i], "control") == 0));
  }
  CHECK(kl_step_lookup("no_such_kernel") == NULL);
  CHECK(kl_step_lookup(NULL) == NULL);
  CHECK(kl_step_lookup("conv2d")->fn == kl_step_conv2d);
  CHECK_EQ_INT(kl_step_lookup("conv2d")->params_size, sizeof(kl_step_conv2d_params));
  CHECK_EQ_INT(kl_step_lookup("matmul")->params_size, sizeof(kl_step_matmul_params));
  CHECK_EQ_INT(kl_step_lookup("cast")->params_size, 0);
  /* the control step exists for artifacts' tables and refuses */
  CHECK_ERR(kl_step_control(NULL, NULL, NULL, 0, NULL, 0), KL_ERR_INTERNAL, "control");
}

/* ---- encode + step against the interpreter ---------------------------------------------- */

/* Parses a one-node graph (text), fills its inputs (integer inputs get values in [0, bound)),
 * runs it with the interpreter and with encode + step, and checks the outputs are identical. */
static void check_against_interp(const char *text, int64_t bound) {
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(text, strlen(text), NULL, &g);
  CHECK_OK(s);
  if (!g)
    return;
  const kl_ir_block *top = g->top;
  const kl_ir_node *node = top->first;
  int n_in = top->n_params;
  kl_tensor *inputs[8] = {NULL}, *ref[8] = {NULL}, *got[8] = {NULL};
  for (int i = 0; i < n_in; i++) {
    int64_t shape[KL_MAX_RANK];
    CHECK(kl_ir_type_shape(&top->params[i]->type, shape));
    inputs[i] = make(top->params[i]->type.dtype, top->params[i]->type.rank, shape);
    fill(inputs[i], (uint32_t)i + 7, bound);
  }
  CHECK_OK(kl_interp_run(g, inputs, n_in, ref));

  kl_step_operand in_ops[8], out_ops[8];
  for (int i = 0; i < node->n_inputs; i++)
    in_ops[i] = operand_of(inputs[i]);
  int64_t shapes[8][KL_MAX_RANK];
  for (int i = 0; i < node->n_outputs; i++) {
    CHECK(kl_ir_type_shape(&node->outputs[i]->type, shapes[i]));
    got[i] = make(node->outputs[i]->type.dtype, node->outputs[i]->type.rank, shapes[i]);
    out_ops[i] = operand_of(got[i]);
  }
  _Alignas(max_align_t) unsigned char params[KL_STEP_PARAMS_MAX];
  const kl_step_info *step = NULL;
  CHECK_OK(kl_step_encode(node, in_ops, node->n_inputs, out_ops, node->n_outputs, &step, params));
  CHECK(step != NULL);
  if (step) {
    kl_step_env env = {.pool = NULL};
    CHECK_OK(step->fn(&env, params, inputs, node->n_inputs, got, node->n_outputs));
    for (int i = 0; i < top->n_returns; i++) {
      bool same = ref[i] && same_bytes(ref[i], got[i]);
      if (!same)
        fprintf(stderr, "  differs from the interpreter: %s\n", kl_ir_node_op_name(node));
      CHECK(same);
    }
  }
  for (int i = 0; i < 8; i++) {
    kl_tensor_release(inputs[i]);
    kl_tensor_release(ref[i]);
    kl_tensor_release(got[i]);
  }
  kl_ir_graph_destroy(g);
}

static void test_against_interp(void) {
  check_against_interp("graph(%x : Float(3, 17), %w : Float(5, 17), %b : Float(5)):\n"
                       "  %y = aten::linear(%x, %w, %b)\n  return (%y)\n", 1);
  check_against_interp("graph(%a : Float(2, 3, 4), %b : Float(4, 5)):\n"
                       "  %y = aten::matmul(%a, %b)\n  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(2, 3, 9, 9), %w : Float(4, 3, 3, 3), %b : Float(4)):\n"
                       "  %y = aten::conv2d[stride=[2, 2], padding=[1, 1]](%x, %w, %b)\n"
                       "  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(2, 6)):\n"
                       "  %y = aten::layer_norm[normalized_shape=[6], eps=0.001](%x)\n"
                       "  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(3, 5)):\n"
                       "  %y = aten::log_softmax[dim=-1](%x)\n  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(2, 7)):\n"
                       "  %y = aten::slice[dim=-1, start=1, end=6, step=2](%x)\n  return (%y)\n",
                       1);
  check_against_interp("graph(%x : Float(2, 3)):\n"
                       "  %y = aten::constant_pad_nd[pad=[1, 2], value=0.5](%x)\n"
                       "  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(3, 4, 2)):\n"
                       "  %y = aten::sum[dim=[0, -1], keepdim=1](%x)\n  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(2, 3, 4)):\n"
                       "  %y = aten::permute[dims=[2, 0, 1]](%x)\n  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(2, 3, 4)):\n"
                       "  %y = aten::transpose[dim0=0, dim1=-1](%x)\n  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(4, 5)):\n"
                       "  %y = aten::gelu[approximate=\"tanh\"](%x)\n  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(4, 5)):\n"
                       "  %y = aten::clamp[min=-0.25, max=0.5](%x)\n  return (%y)\n", 1);
  check_against_interp("graph(%a : Float(4, 5), %b : Float(5)):\n"
                       "  %y = aten::sub(%a, %b)\n  return (%y)\n", 1);
  check_against_interp("graph(%q : Float(2, 3, 4), %k : Float(2, 5, 4), %v : Float(2, 5, 6)):\n"
                       "  %y = aten::scaled_dot_product_attention[is_causal=1](%q, %k, %v)\n"
                       "  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(3, 4), %i : Long(5)):\n"
                       "  %y = aten::index_select[dim=1](%x, %i)\n  return (%y)\n", 4);
  check_against_interp("graph(%x : Float(1, 2, 6, 6)):\n"
                       "  %y = aten::max_pool2d[kernel_size=[3, 3], stride=[2, 2], padding=[1, 1]](%x)\n"
                       "  return (%y)\n", 1);
  check_against_interp("graph(%x : Float(2, 6)):\n"
                       "  %y = aten::cumsum[dim=1, exclusive=1](%x)\n  return (%y)\n", 1);
  check_against_interp("graph(%a : Float(2, 3), %b : Float(2, 2)):\n"
                       "  %y = aten::cat[dim=-1](%a, %b)\n  return (%y)\n", 1);
  /* LSTM with an omitted B (the size-0 placeholder) before a present sequence_lens */
  check_against_interp(
      "graph(%x : Float(4, 2, 3), %w : Float(2, 8, 3), %r : Float(2, 8, 2), %b : Float(0), "
      "%len : Int(2)):\n"
      "  %y : Float(4, 2, 2, 2), %yh : Float(2, 2, 2), %yc : Float(2, 2, 2) = "
      "onnx::LSTM[hidden_size=2, direction=\"bidirectional\"](%x, %w, %r, %b, %len)\n"
      "  return (%y, %yh, %yc)\n", 4);
}

/* The interpreter's adapter names the op in errors of kernels whose messages do not. */
static void test_adapter_errors(void) {
  const char *text = "graph(%x : Float(3, 2), %i : Long(2)):\n"
                     "  %y = onnx::Gather[axis=0](%x, %i)\n  return (%y)\n";
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return;
  int64_t xs[2] = {3, 2}, is[1] = {2}, ys[2] = {2, 2};
  kl_tensor *in[2] = {make(KL_F32, 2, xs), make(KL_I64, 1, is)}, *y = make(KL_F32, 2, ys);
  ((int64_t *)in[1]->data)[1] = 7;
  const kl_ir_node *node = g->top->first;
  CHECK_ERR(kl_interp_kernel(node->op)(g, node, in, &y), KL_ERR_INVALID_ARGUMENT,
            "onnx::Gather: ");
  kl_tensor *ref[1] = {NULL};
  CHECK_ERR(kl_interp_run(g, in, 2, ref), KL_ERR_INVALID_ARGUMENT, "index 7");
  kl_tensor_release(in[0]);
  kl_tensor_release(in[1]);
  kl_tensor_release(y);
  kl_ir_graph_destroy(g);
}

/* ---- parameter blocks --------------------------------------------------------------------- */

/* Encodes every node of text twice, into blocks prefilled with different garbage, and checks
 * the bytes agree (and are zero past the block); returns the graph (the caller destroys it). */
static kl_ir_graph *check_blocks_deterministic(const char *text, int want_nodes) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return NULL;
  int nodes = 0;
  for (const kl_ir_node *n = g->top->first; n; n = n->next, nodes++) {
    kl_step_operand in[8], out[4];
    int64_t shapes[12][KL_MAX_RANK];
    for (int i = 0; i < n->n_inputs; i++) {
      CHECK(kl_ir_type_shape(&n->inputs[i]->type, shapes[i]));
      in[i] = (kl_step_operand){n->inputs[i]->type.dtype, n->inputs[i]->type.rank, shapes[i]};
    }
    for (int i = 0; i < n->n_outputs; i++) {
      CHECK(kl_ir_type_shape(&n->outputs[i]->type, shapes[8 + i]));
      out[i] = (kl_step_operand){n->outputs[i]->type.dtype, n->outputs[i]->type.rank,
                                 shapes[8 + i]};
    }
    unsigned char a[KL_STEP_PARAMS_MAX], b[KL_STEP_PARAMS_MAX];
    memset(a, 0xaa, sizeof a);
    memset(b, 0x55, sizeof b);
    const kl_step_info *sa = NULL, *sb = NULL;
    CHECK_OK(kl_step_encode(n, in, n->n_inputs, out, n->n_outputs, &sa, a));
    CHECK_OK(kl_step_encode(n, in, n->n_inputs, out, n->n_outputs, &sb, b));
    CHECK(sa && sa == sb);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* everything past the block is zero too */
    bool tail_zero = true;
    for (size_t i = sa ? sa->params_size : 0; i < sizeof a; i++)
      tail_zero = tail_zero && a[i] == 0;
    CHECK(tail_zero);
  }
  CHECK_EQ_INT(nodes, want_nodes);
  return g;
}

static void test_deterministic_blocks(void) {
  kl_ir_graph_destroy(check_blocks_deterministic(
      "graph(%x : Float(4, 2, 3), %w : Float(1, 12, 3), %r : Float(1, 12, 4), %im : "
      "Float(1, 1, 4, 4)):\n"
      "  %y, %yh = onnx::GRU[hidden_size=4, clip=2.5](%x, %w, %r)\n"
      "  %z = onnx::Resize[size=[1, 1, 8, 6], mode=\"cubic\"](%im)\n"
      "  %p = aten::constant_pad_nd[pad=[1, 1, 2, 0]](%z)\n"
      "  %q = aten::slice[dim=2, start=-3, step=1](%p)\n"
      "  return (%y, %yh, %q)\n",
      4));
  const char *text =
      "graph(%x : Float(1, 3, 8, 8), %w : Float(4, 3, 3, 3)):\n"
      "  %c = aten::conv2d[padding=[1, 1]](%x, %w)\n"
      "  %p = aten::avg_pool2d[kernel_size=[2, 2], ceil_mode=1](%c)\n"
      "  %s = aten::softmax[dim=1](%p)\n"
      "  %r = aten::amax[dim=[1]](%s)\n"
      "  return (%r)\n";
  kl_ir_graph *g = check_blocks_deterministic(text, 4);
  if (!g)
    return;
  /* the blocks hold what the attributes say */
  const kl_ir_node *conv = g->top->first;
  int64_t xs[4] = {1, 3, 8, 8}, ws[4] = {4, 3, 3, 3}, ys[4] = {1, 4, 8, 8};
  kl_step_operand in[2] = {{KL_F32, 4, xs}, {KL_F32, 4, ws}}, out[1] = {{KL_F32, 4, ys}};
  _Alignas(max_align_t) unsigned char block[KL_STEP_PARAMS_MAX];
  const kl_step_info *step;
  CHECK_OK(kl_step_encode(conv, in, 2, out, 1, &step, block));
  const kl_step_conv2d_params *cp = (const kl_step_conv2d_params *)block;
  CHECK_EQ_INT(cp->conv.pad[0], 1);
  CHECK_EQ_INT(cp->conv.pad[3], 1);
  CHECK_EQ_INT(cp->conv.stride[1], 1);
  CHECK_EQ_INT(cp->conv.groups, 1);
  const kl_ir_node *amax = conv->next->next->next;
  int64_t as[4] = {1, 4, 4, 4}, rs[3] = {1, 4, 4};
  kl_step_operand ain[1] = {{KL_F32, 4, as}}, aout[1] = {{KL_F32, 3, rs}};
  CHECK_OK(kl_step_encode(amax, ain, 1, aout, 1, &step, block));
  const kl_step_reduce_params *rp = (const kl_step_reduce_params *)block;
  CHECK_EQ_INT(rp->op, KL_REDUCE_MAX);
  CHECK_EQ_INT(rp->rank, 4);
  CHECK(!rp->mask[0] && rp->mask[1] && !rp->mask[2] && !rp->mask[3]);
  kl_ir_graph_destroy(g);
}

static void test_encode_errors(void) {
  const char *text = "graph(%x : Float(2, 6)):\n"
                     "  %y = aten::layer_norm[normalized_shape=[6]](%x)\n  return (%y)\n";
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return;
  const kl_ir_node *ln = g->top->first;
  unsigned char block[KL_STEP_PARAMS_MAX];
  const kl_step_info *step = (const kl_step_info *)1;
  int64_t bad[2] = {2, 5};
  kl_step_operand in[1] = {{KL_F32, 2, bad}}, out[1] = {{KL_F32, 2, bad}};
  CHECK_ERR(kl_step_encode(ln, in, 1, out, 1, &step, block), KL_ERR_INVALID_ARGUMENT,
            "aten::layer_norm: normalized_shape does not match");
  CHECK(step == NULL);
  /* operand descriptions are checked: a missing required input, a dynamic dim */
  CHECK_ERR(kl_step_encode(ln, in, 0, out, 1, &step, block), KL_ERR_INVALID_ARGUMENT,
            "aten::layer_norm: 0 inputs");
  int64_t dyn[2] = {2, -1};
  kl_step_operand din[1] = {{KL_F32, 2, dyn}};
  CHECK_ERR(kl_step_encode(ln, din, 1, out, 1, &step, block), KL_ERR_INVALID_ARGUMENT,
            "not static");
  /* control ops have no step */
  kl_ir_node *param = kl_ir_block_add_node(g->top, KL_OP_PARAM, NULL, 0, 1);
  CHECK_ERR(kl_step_encode(param, NULL, 0, out, 1, &step, block), KL_ERR_INTERNAL, "prim::Param");
  /* a step refuses a block computed for another rank */
  kl_step_permute_params pp;
  memset(&pp, 0, sizeof pp);
  pp.rank = 3;
  pp.perm[0] = 2, pp.perm[1] = 0, pp.perm[2] = 1;
  int64_t s2[2] = {2, 3};
  kl_tensor *x = make(KL_F32, 2, s2), *y = make(KL_F32, 2, s2);
  kl_step_env env = {NULL};
  CHECK_ERR(kl_step_permute(&env, &pp, &x, 1, &y, 1), KL_ERR_INVALID_ARGUMENT, "rank 3");
  pp.rank = 2, pp.perm[0] = 1, pp.perm[1] = 1;
  CHECK_ERR(kl_step_permute(&env, &pp, &x, 1, &y, 1), KL_ERR_INVALID_ARGUMENT,
            "not a permutation");
  CHECK_ERR(kl_step_permute(&env, NULL, &x, 1, &y, 1), KL_ERR_INVALID_ARGUMENT,
            "no parameter block");
  kl_step_unary_params up = {.op = 9999};
  CHECK_ERR(kl_step_unary(&env, &up, &x, 1, &y, 1), KL_ERR_INVALID_ARGUMENT, "op 9999");
  kl_tensor_release(x);
  kl_tensor_release(y);
  kl_ir_graph_destroy(g);
}

/* ---- parallel steps ----------------------------------------------------------------------- */

/* Runs step on (in, n_in) -> y with no pool and with pool; both must succeed and agree. */
static void check_parallel(kl_step_fn step, const void *params, kl_tensor **in, int n_in,
                           kl_tensor *y_ref, kl_tensor *y_par, kl_threadpool *pool,
                           const char *what) {
  kl_step_env serial = {NULL}, parallel = {pool};
  memset(y_par->data, 0x7f, y_par->nbytes); /* stale bytes must all be overwritten */
  CHECK_OK(step(&serial, params, in, n_in, &y_ref, 1));
  CHECK_OK(step(&parallel, params, in, n_in, &y_par, 1));
  bool same = same_bytes(y_ref, y_par);
  if (!same)
    fprintf(stderr, "  pool of %d differs: %s\n", kl_threadpool_size(pool), what);
  CHECK(same);
}

static void test_parallel_linear(kl_threadpool *pool) {
  static const int64_t sizes[] = {1, 3, 17, 65, 130};
  const int ns = sizeof sizes / sizeof sizes[0];
  for (int a = 0; a < ns; a++)
    for (int b = 0; b < ns; b++)
      for (int c = 0; c < ns; c++) {
        int64_t M = sizes[a], K = sizes[b], N = sizes[c];
        int64_t xs[2] = {M, K}, ws[2] = {N, K}, ys[2] = {M, N};
        kl_tensor *in[3] = {random_tensor(KL_F32, 2, xs, 1), random_tensor(KL_F32, 2, ws, 2),
                            random_tensor(KL_F32, 1, &N, 3)};
        kl_tensor *y0 = make(KL_F32, 2, ys), *y1 = make(KL_F32, 2, ys);
        char what[96];
        snprintf(what, sizeof what, "linear M %lld K %lld N %lld", (long long)M, (long long)K,
                 (long long)N);
        check_parallel(kl_step_linear, NULL, in, 3 - (int)((a + b + c) % 2), y0, y1, pool, what);
        for (int i = 0; i < 3; i++)
          kl_tensor_release(in[i]);
        kl_tensor_release(y0);
        kl_tensor_release(y1);
      }
  /* batch dims in front, f64 and f16 */
  const kl_dtype dts[] = {KL_F32, KL_F64, KL_F16};
  for (int d = 0; d < 3; d++) {
    int64_t xs[3] = {3, 17, 65}, ws[2] = {65, 65}, ys[3] = {3, 17, 65};
    kl_tensor *in[2] = {random_tensor(dts[d], 3, xs, 4), random_tensor(dts[d], 2, ws, 5)};
    kl_tensor *y0 = make(dts[d], 3, ys), *y1 = make(dts[d], 3, ys);
    check_parallel(kl_step_linear, NULL, in, 2, y0, y1, pool, kl_dtype_short_name(dts[d]));
    kl_tensor_release(in[0]);
    kl_tensor_release(in[1]);
    kl_tensor_release(y0);
    kl_tensor_release(y1);
  }
  /* a shape error is still the kernel's error */
  int64_t xs[2] = {65, 65}, ws[2] = {65, 64}, ys[2] = {65, 65};
  kl_tensor *in[2] = {make(KL_F32, 2, xs), make(KL_F32, 2, ws)}, *y = make(KL_F32, 2, ys);
  kl_step_env env = {pool};
  CHECK_ERR(kl_step_linear(&env, NULL, in, 2, &y, 1), KL_ERR_INVALID_ARGUMENT, "features");
  kl_tensor_release(in[0]);
  kl_tensor_release(in[1]);
  kl_tensor_release(y);
}

static void test_parallel_matmul(kl_threadpool *pool) {
  static const int64_t sizes[] = {1, 3, 17, 65, 130};
  const int ns = sizeof sizes / sizeof sizes[0];
  for (int a = 0; a < ns; a++)
    for (int b = 0; b < ns; b++)
      for (int c = 0; c < ns; c++) {
        int64_t M = sizes[a], K = sizes[b], N = sizes[c];
        /* alternate: plain 2-D, batched with broadcast a (3, 1, M, K) @ b (2, K, N) */
        bool batched = (a + b + c) % 3 == 0;
        int64_t as[4] = {3, 1, M, K}, bs[3] = {2, K, N}, ys[4] = {3, 2, M, N};
        kl_tensor *in[2], *y0, *y1;
        if (batched) {
          in[0] = random_tensor(KL_F32, 4, as, 6);
          in[1] = random_tensor(KL_F32, 3, bs, 7);
          y0 = make(KL_F32, 4, ys), y1 = make(KL_F32, 4, ys);
        } else {
          in[0] = random_tensor(KL_F32, 2, as + 2, 6);
          in[1] = random_tensor(KL_F32, 2, bs + 1, 7);
          y0 = make(KL_F32, 2, ys + 2), y1 = make(KL_F32, 2, ys + 2);
        }
        char what[96];
        snprintf(what, sizeof what, "matmul%s M %lld K %lld N %lld", batched ? " batched" : "",
                 (long long)M, (long long)K, (long long)N);
        check_parallel(kl_step_matmul, NULL, in, 2, y0, y1, pool, what);
        kl_tensor_release(in[0]);
        kl_tensor_release(in[1]);
        kl_tensor_release(y0);
        kl_tensor_release(y1);
      }
  /* a (2, 65, 130) @ b (130,) -> (2, 65), in f64 and Long */
  const kl_dtype dts[] = {KL_F64, KL_I64};
  for (int d = 0; d < 2; d++) {
    int64_t as[3] = {2, 65, 130}, bs[1] = {130}, ys[2] = {2, 65};
    kl_tensor *in[2] = {make(dts[d], 3, as), make(dts[d], 1, bs)};
    fill(in[0], 8, 50);
    fill(in[1], 9, 50);
    kl_tensor *y0 = make(dts[d], 2, ys), *y1 = make(dts[d], 2, ys);
    check_parallel(kl_step_matmul, NULL, in, 2, y0, y1, pool, "matmul @ vector");
    kl_tensor_release(in[0]);
    kl_tensor_release(in[1]);
    kl_tensor_release(y0);
    kl_tensor_release(y1);
  }
}

static void test_parallel_conv(kl_threadpool *pool) {
  typedef struct conv_case {
    int64_t N, Cin, H, W, Cout, K, stride, pad, groups;
  } conv_case;
  static const conv_case cases[] = {
      {1, 3, 17, 17, 1, 3, 1, 1, 1},   {1, 3, 17, 17, 17, 3, 2, 1, 1},
      {3, 3, 17, 17, 65, 3, 1, 0, 1},  {1, 17, 9, 9, 65, 1, 1, 0, 1},
      {1, 3, 33, 17, 3, 3, 1, 1, 3},   {3, 6, 17, 17, 66, 3, 2, 1, 3},
      {1, 65, 9, 9, 65, 3, 1, 1, 65},  {2, 4, 12, 12, 17, 5, 1, 2, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const conv_case *c = &cases[i];
    kl_step_conv2d_params p;
    memset(&p, 0, sizeof p);
    p.conv.stride[0] = p.conv.stride[1] = c->stride;
    for (int k = 0; k < 4; k++)
      p.conv.pad[k] = c->pad;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.groups = c->groups;
    int64_t Ho = (c->H + 2 * c->pad - c->K) / c->stride + 1;
    int64_t Wo = (c->W + 2 * c->pad - c->K) / c->stride + 1;
    int64_t xs[4] = {c->N, c->Cin, c->H, c->W}, ws[4] = {c->Cout, c->Cin / c->groups, c->K, c->K};
    int64_t ys[4] = {c->N, c->Cout, Ho, Wo};
    kl_tensor *in[3] = {random_tensor(KL_F32, 4, xs, 10), random_tensor(KL_F32, 4, ws, 11),
                        random_tensor(KL_F32, 1, &c->Cout, 12)};
    kl_tensor *y0 = make(KL_F32, 4, ys), *y1 = make(KL_F32, 4, ys);
    char what[64];
    snprintf(what, sizeof what, "conv2d case %zu", i);
    check_parallel(kl_step_conv2d, &p, in, 3 - (int)(i % 2), y0, y1, pool, what);
    for (int k = 0; k < 3; k++)
      kl_tensor_release(in[k]);
    kl_tensor_release(y0);
    kl_tensor_release(y1);
  }
  /* a wrong output shape is the kernel's error, pool or not */
  int64_t xs[4] = {2, 3, 17, 17}, ws[4] = {17, 3, 3, 3}, ys[4] = {2, 17, 16, 16};
  kl_tensor *in[2] = {make(KL_F32, 4, xs), make(KL_F32, 4, ws)}, *y = make(KL_F32, 4, ys);
  kl_step_conv2d_params p = {.conv = {{1, 1}, {0, 0, 0, 0}, {1, 1}, 1}};
  kl_step_env env = {pool};
  CHECK_ERR(kl_step_conv2d(&env, &p, in, 2, &y, 1), KL_ERR_INVALID_ARGUMENT, "output is");
  p.conv.groups = 2;
  CHECK_ERR(kl_step_conv2d(&env, &p, in, 2, &y, 1), KL_ERR_INVALID_ARGUMENT, "groups");
  kl_tensor_release(in[0]);
  kl_tensor_release(in[1]);
  kl_tensor_release(y);
}

static void test_parallel_attention(kl_threadpool *pool) {
  static const int64_t Ls[] = {1, 3, 17, 65}, Ss[] = {1, 17, 65};
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 3; b++)
      for (int m = 0; m < 4; m++) { /* no mask, float (L, S), Bool (3, 1, L, S), Bool (S) */
        int64_t L = Ls[a], S = Ss[b], E = 5, Ev = 3;
        int64_t qs[4] = {3, 2, L, E}, ks[4] = {1, 2, S, E}, vs[3] = {3, 1, S}, ys[4] = {3, 2, L, Ev};
        int64_t vfull[4] = {3, 1, S, Ev};
        (void)vs;
        kl_tensor *in[4] = {random_tensor(KL_F32, 4, qs, 13), random_tensor(KL_F32, 4, ks, 14),
                            random_tensor(KL_F32, 4, vfull, 15), NULL};
        if (m == 1) {
          int64_t ms[2] = {L, S};
          in[3] = random_tensor(KL_F32, 2, ms, 16);
        } else if (m == 2) {
          int64_t ms[4] = {3, 1, L, S};
          in[3] = make(KL_BOOL, 4, ms);
          fill(in[3], 17, 2);
        } else if (m == 3) {
          in[3] = make(KL_BOOL, 1, &S);
          fill(in[3], 18, 2);
        }
        kl_tensor *y0 = make(KL_F32, 4, ys), *y1 = make(KL_F32, 4, ys);
        kl_step_attention_params p;
        memset(&p, 0, sizeof p);
        p.scale = 0.4;
        p.is_causal = (a + b) % 2;
        char what[96];
        snprintf(what, sizeof what, "attention L %lld S %lld mask %d causal %d", (long long)L,
                 (long long)S, m, (int)p.is_causal);
        check_parallel(kl_step_attention, &p, in, m ? 4 : 3, y0, y1, pool, what);
        for (int i = 0; i < 4; i++)
          kl_tensor_release(in[i]);
        kl_tensor_release(y0);
        kl_tensor_release(y1);
      }
}

int main(void) {
  test_lookup();
  test_against_interp();
  test_adapter_errors();
  test_deterministic_blocks();
  test_encode_errors();
  kl_threadpool *pool = NULL;
  CHECK_OK(kl_threadpool_create(4, &pool));
  if (pool) {
    test_parallel_linear(pool);
    test_parallel_matmul(pool);
    test_parallel_conv(pool);
    test_parallel_attention(pool);
  }
  kl_threadpool_destroy(pool);
  return check_finish();
}
