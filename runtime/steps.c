/* The steps of runtime/steps.h for every kernel but the parallel ones (matmul, linear, conv2d,
 * attention and the pools: runtime/steps_parallel.c), and the table kl_step_lookup reads.
 *
 * A step copies its parameter block out with memcpy (artifacts embed blocks at any alignment),
 * checks what the kernel would otherwise trust blindly (operand counts, a dim against the rank,
 * an enum against its range, the rank the encoder precomputed for) and calls the kernel of
 * runtime/kernels/. Errors say which step failed; the caller adds which node it was. */
#include "steps.h"

#include <string.h>

#define STEP(kernel)                                                                        \
  kl_status kl_step_##kernel(const kl_step_env *env, const void *params,                    \
                             kl_tensor *const *in, int n_in, kl_tensor *const *out, int n_out)

/* Checks n_in in [min_in, max_in] (max -1: any) with the first min_in present, and n_out in
 * [min_out, max_out] with every output present. */
static kl_status check_operands(const char *kernel, kl_tensor *const *in, int n_in, int min_in,
                                int max_in, kl_tensor *const *out, int n_out, int min_out,
                                int max_out) {
  if (n_in < min_in || (max_in >= 0 && n_in > max_in) || (n_in > 0 && !in))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: %d inputs, expected %d to %d",
                            kernel, n_in, min_in, max_in);
  if (n_out < min_out || (max_out >= 0 && n_out > max_out) || (n_out > 0 && !out))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: %d outputs, expected %d to %d",
                            kernel, n_out, min_out, max_out);
  for (int i = 0; i < min_in; i++)
    if (!in[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: input %d is missing", kernel, i);
  for (int i = 0; i < n_out; i++)
    if (!out[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: output %d is missing", kernel,
                              i);
  return NULL;
}

static kl_status load_params(const char *kernel, const void *params, void *dst, size_t size) {
  if (!params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: no parameter block", kernel);
  memcpy(dst, params, size);
  return NULL;
}

#define CHECK_OPERANDS(kernel, min_in, max_in, min_out, max_out)                                   \
  KL_RETURN_IF_ERROR(                                                                              \
      check_operands(#kernel, in, n_in, min_in, max_in, out, n_out, min_out, max_out))
/* (p is zeroed first only so that compilers see it initialized on every path) */
#define LOAD_PARAMS(kernel, p)                                                                     \
  memset(&(p), 0, sizeof(p));                                                                      \
  KL_RETURN_IF_ERROR(load_params(#kernel, params, &(p), sizeof(p)))

static const kl_tensor *opt_input(kl_tensor *const *in, int n_in, int i) {
  return i < n_in ? in[i] : NULL;
}

static kl_status check_dim(const char *kernel, int64_t dim, int rank) {
  if (dim < 0 || dim >= (rank > 0 ? rank : 1))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: dim %lld out of range for rank %d",
                            kernel, (long long)dim, rank);
  return NULL;
}

static kl_status check_rank(const char *kernel, int want, const kl_tensor *x) {
  if (want != x->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s step: parameters were computed for rank %d, input has rank %d",
                            kernel, want, x->rank);
  return NULL;
}

static kl_status check_enum(const char *kernel, const char *what, int32_t v, int32_t count) {
  if (v < 0 || v >= count)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s step: %s %d out of range", kernel, what,
                            (int)v);
  return NULL;
}

STEP(control) {
  (void)env, (void)params, (void)in, (void)n_in, (void)out, (void)n_out;
  return kl_status_create(KL_ERR_INTERNAL,
                          "control ops (Param, Constant, If, Loop, FusionGroup) have no step");
}

STEP(unary) {
  (void)env;
  kl_step_unary_params p;
  LOAD_PARAMS(unary, p);
  CHECK_OPERANDS(unary, 1, 1, 1, 1);
  KL_RETURN_IF_ERROR(check_enum("unary", "op", p.op, KL_UNARY_OP_COUNT));
  return kl_rt_unary((kl_rt_unary_op)p.op, p.a, p.b, in[0], out[0]);
}

STEP(cast) {
  (void)env, (void)params;
  CHECK_OPERANDS(cast, 1, 1, 1, 1);
  return kl_rt_cast(in[0], out[0]);
}

STEP(binary) {
  (void)env;
  kl_step_binary_params p;
  LOAD_PARAMS(binary, p);
  CHECK_OPERANDS(binary, 2, 2, 1, 1);
  KL_RETURN_IF_ERROR(check_enum("binary", "op", p.op, KL_BINARY_OP_COUNT));
  return kl_rt_binary((kl_rt_binary_op)p.op, in[0], in[1], out[0]);
}

STEP(where) {
  (void)env, (void)params;
  CHECK_OPERANDS(where, 3, 3, 1, 1);
  return kl_rt_where(in[0], in[1], in[2], out[0]);
}

STEP(batch_norm) {
  (void)env;
  kl_step_batch_norm_params p;
  LOAD_PARAMS(batch_norm, p);
  CHECK_OPERANDS(batch_norm, 5, 5, 1, 1);
  return kl_rt_batch_norm(in[0], in[1], in[2], in[3], in[4], p.eps, out[0]);
}

STEP(layer_norm) {
  (void)env;
  kl_step_layer_norm_params p;
  LOAD_PARAMS(layer_norm, p);
  CHECK_OPERANDS(layer_norm, 1, 3, 1, 1);
  if (p.n_norm_dims < 0 || p.n_norm_dims > in[0]->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "layer_norm step: %d normalized dims for an input of rank %d",
                            (int)p.n_norm_dims, in[0]->rank);
  return kl_rt_layer_norm(in[0], opt_input(in, n_in, 1), opt_input(in, n_in, 2), p.n_norm_dims,
                          p.eps, out[0]);
}

STEP(softmax) {
  (void)env;
  kl_step_softmax_params p;
  LOAD_PARAMS(softmax, p);
  CHECK_OPERANDS(softmax, 1, 1, 1, 1);
  KL_RETURN_IF_ERROR(check_dim("softmax", p.dim, in[0]->rank));
  return kl_rt_softmax(in[0], p.dim, p.log, out[0]);
}

STEP(reduce) {
  (void)env;
  kl_step_reduce_params p;
  LOAD_PARAMS(reduce, p);
  CHECK_OPERANDS(reduce, 1, 1, 1, 1);
  KL_RETURN_IF_ERROR(check_enum("reduce", "op", p.op, KL_REDUCE_PROD + 1));
  KL_RETURN_IF_ERROR(check_rank("reduce", p.rank, in[0]));
  return kl_rt_reduce((kl_rt_reduce_op)p.op, in[0], p.mask, out[0]);
}

STEP(copy) {
  (void)env, (void)params;
  CHECK_OPERANDS(copy, 1, 1, 1, 1);
  return kl_rt_copy(in[0], out[0]);
}

STEP(permute) {
  (void)env;
  kl_step_permute_params p;
  LOAD_PARAMS(permute, p);
  CHECK_OPERANDS(permute, 1, 1, 1, 1);
  KL_RETURN_IF_ERROR(check_rank("permute", p.rank, in[0]));
  int perm[KL_MAX_RANK];
  bool seen[KL_MAX_RANK] = {false};
  for (int i = 0; i < p.rank; i++) {
    if (p.perm[i] < 0 || p.perm[i] >= p.rank || seen[p.perm[i]])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "permute step: entry %d (%d) is not a permutation of %d dims", i,
                              (int)p.perm[i], (int)p.rank);
    seen[p.perm[i]] = true;
    perm[i] = p.perm[i];
  }
  return kl_rt_permute(in[0], perm, out[0]);
}

STEP(expand) {
  (void)env, (void)params;
  CHECK_OPERANDS(expand, 1, 1, 1, 1);
  return kl_rt_expand(in[0], out[0]);
}

STEP(cat) {
  (void)env;
  kl_step_dim_params p;
  LOAD_PARAMS(cat, p);
  CHECK_OPERANDS(cat, 1, -1, 1, 1);
  for (int i = 0; i < n_in; i++)
    if (!in[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "cat step: input %d is missing", i);
  KL_RETURN_IF_ERROR(check_dim("cat", p.dim, in[0]->rank));
  return kl_rt_cat((const kl_tensor *const *)in, n_in, p.dim, out[0]);
}

STEP(split) {
  (void)env;
  kl_step_dim_params p;
  LOAD_PARAMS(split, p);
  CHECK_OPERANDS(split, 1, 1, 1, -1);
  KL_RETURN_IF_ERROR(check_dim("split", p.dim, in[0]->rank));
  return kl_rt_split(in[0], p.dim, out, n_out);
}

STEP(slice) {
  (void)env;
  kl_step_slice_params p;
  LOAD_PARAMS(slice, p);
  CHECK_OPERANDS(slice, 1, 1, 1, 1);
  KL_RETURN_IF_ERROR(check_dim("slice", p.dim, in[0]->rank));
  if (out[0]->rank != in[0]->rank || out[0]->shape[p.dim] != p.len)
    return kl_status_create(
        KL_ERR_INVALID_ARGUMENT, "slice step: output length %lld along dim %d, parameters give %lld",
        (long long)(out[0]->rank == in[0]->rank ? out[0]->shape[p.dim] : -1), (int)p.dim,
        (long long)p.len);
  if (p.step == 0 || (p.len > 0 && (p.start < 0 || p.start >= in[0]->shape[p.dim])))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "slice step: start %lld step %lld do not fit dim %d of size %lld",
                            (long long)p.start, (long long)p.step, (int)p.dim,
                            (long long)in[0]->shape[p.dim]);
  return kl_rt_slice(in[0], p.dim, p.start, p.step, out[0]);
}

STEP(constant_pad) {
  (void)env;
  kl_step_constant_pad_params p;
  LOAD_PARAMS(constant_pad, p);
  CHECK_OPERANDS(constant_pad, 1, 1, 1, 1);
  KL_RETURN_IF_ERROR(check_rank("constant_pad", p.rank, in[0]));
  return kl_rt_constant_pad(in[0], p.pad, p.value, out[0]);
}

STEP(gather) {
  (void)env;
  kl_step_gather_params p;
  LOAD_PARAMS(gather, p);
  CHECK_OPERANDS(gather, 2, 2, 1, 1);
  KL_RETURN_IF_ERROR(check_dim("gather", p.axis, in[0]->rank));
  if (p.indices_1d && in[1]->rank != 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "indices must be 1-D, got rank %d",
                            in[1]->rank);
  return kl_rt_gather(in[0], in[1], p.axis, p.allow_negative, out[0]);
}

STEP(cumsum) {
  (void)env;
  kl_step_cumsum_params p;
  LOAD_PARAMS(cumsum, p);
  CHECK_OPERANDS(cumsum, 1, 1, 1, 1);
  KL_RETURN_IF_ERROR(check_dim("cumsum", p.dim, in[0]->rank));
  return kl_rt_cumsum(in[0], p.dim, p.exclusive, p.reverse, out[0]);
}

STEP(scatter) {
  (void)env;
  kl_step_scatter_params p;
  LOAD_PARAMS(scatter, p);
  CHECK_OPERANDS(scatter, 3, 3, 1, 1);
  KL_RETURN_IF_ERROR(check_enum("scatter", "reduction", p.reduce, KL_SCATTER_MIN + 1));
  KL_RETURN_IF_ERROR(check_dim("scatter", p.dim, in[0]->rank));
  return kl_rt_scatter(in[0], in[1], in[2], p.dim, (kl_rt_scatter_reduce)p.reduce, out[0]);
}

STEP(scatter_nd) {
  (void)env;
  kl_step_scatter_params p;
  LOAD_PARAMS(scatter_nd, p);
  CHECK_OPERANDS(scatter_nd, 3, 3, 1, 1);
  KL_RETURN_IF_ERROR(check_enum("scatter_nd", "reduction", p.reduce, KL_SCATTER_MIN + 1));
  return kl_rt_scatter_nd(in[0], in[1], in[2], (kl_rt_scatter_reduce)p.reduce, out[0]);
}

STEP(gather_nd) {
  (void)env;
  kl_step_gather_nd_params p;
  LOAD_PARAMS(gather_nd, p);
  CHECK_OPERANDS(gather_nd, 2, 2, 1, 1);
  return kl_rt_gather_nd(in[0], in[1], p.batch_dims, out[0]);
}

/* Input i of a recurrent op, or NULL when absent: missing, NULL, or the 1-D size-0
 * placeholder ONNX uses for an omitted optional input before a present one. */
static const kl_tensor *rnn_given(kl_tensor *const *in, int n_in, int i) {
  const kl_tensor *t = opt_input(in, n_in, i);
  return t && t->rank == 1 && t->shape[0] == 0 ? NULL : t;
}

STEP(rnn) {
  (void)env;
  kl_step_rnn_params p;
  LOAD_PARAMS(rnn, p);
  bool lstm = p.rnn.kind == KL_RT_LSTM;
  CHECK_OPERANDS(rnn, 3, lstm ? 8 : 6, lstm ? 3 : 2, lstm ? 3 : 2);
  return kl_rt_rnn(&p.rnn, in[0], in[1], in[2], rnn_given(in, n_in, 3), rnn_given(in, n_in, 4),
                   rnn_given(in, n_in, 5), lstm ? rnn_given(in, n_in, 6) : NULL,
                   lstm ? rnn_given(in, n_in, 7) : NULL, out[0], out[1], lstm ? out[2] : NULL);
}

STEP(resize) {
  (void)env;
  kl_step_resize_params p;
  LOAD_PARAMS(resize, p);
  CHECK_OPERANDS(resize, 1, 1, 1, 1);
  return kl_rt_resize(in[0], &p.resize, out[0]);
}

STEP(grid_sample) {
  (void)env;
  kl_step_grid_sample_params p;
  LOAD_PARAMS(grid_sample, p);
  CHECK_OPERANDS(grid_sample, 2, 2, 1, 1);
  KL_RETURN_IF_ERROR(check_enum("grid_sample", "mode", p.mode, KL_RESIZE_CUBIC + 1));
  KL_RETURN_IF_ERROR(check_enum("grid_sample", "padding", p.padding, KL_GRID_PAD_REFLECTION + 1));
  return kl_rt_grid_sample(in[0], in[1], (kl_rt_resize_mode)p.mode,
                           (kl_rt_grid_padding)p.padding, p.align_corners, out[0]);
}

/* One row per op of the table (a kernel shared by several ops repeats; lookup takes the first).
 * The sizes are checked against KL_STEP_PARAMS_MAX at compile time. */
static const kl_step_info step_table[] = {
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel)       \
  {#kernel, "kl_step_" #kernel, kl_step_##kernel, KL_STEP_PARAMS_SIZE_##kernel},
#include "../ir/ops.def"
#undef KL_OP
};

#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel)       \
  _Static_assert(KL_STEP_PARAMS_SIZE_##kernel <= KL_STEP_PARAMS_MAX,                    \
                 "the parameter block of " #kernel " exceeds KL_STEP_PARAMS_MAX");
#include "../ir/ops.def"
#undef KL_OP

/* "control" has no function to call: its entry says so with fn NULL. */
static const kl_step_info control_info = {"control", "kl_step_control", NULL, 0};

const kl_step_info *kl_step_lookup(const char *kernel) {
  if (!kernel)
    return NULL;
  if (strcmp(kernel, "control") == 0)
    return &control_info;
  for (size_t i = 0; i < sizeof step_table / sizeof step_table[0]; i++)
    if (strcmp(step_table[i].kernel, kernel) == 0)
      return &step_table[i];
  return NULL;
}
