/* ONNX import of the elementwise math ops (issue 4): the trigonometric and hyperbolic
 * functions, Floor, Ceil, Round and Sign map to one IR op each; Mod maps to aten::remainder
 * (fmod=0: the divisor's sign, integers only in ONNX) or aten::fmod (fmod=1: the dividend's
 * sign); BitShift maps to aten::bitwise_left_shift or aten::bitwise_right_shift by its
 * direction; BitwiseAnd/Or/Xor/Not (opset 18) map to aten::bitwise_and/or/xor/not. ONNX's
 * float-only and unsigned-only type rules are left to the IR's shape functions, whose errors
 * name the node; the attribute rules ONNX adds are checked here. */
#include <string.h>

#include "onnx_internal.h"

typedef struct math_pair {
  const char *onnx;
  kl_op op;
} math_pair;

static const math_pair math_unary_ops[] = {
    {"Sin", KL_OP_SIN},     {"Cos", KL_OP_COS},     {"Tan", KL_OP_TAN},
    {"Asin", KL_OP_ASIN},   {"Acos", KL_OP_ACOS},   {"Atan", KL_OP_ATAN},
    {"Sinh", KL_OP_SINH},   {"Cosh", KL_OP_COSH},   {"Asinh", KL_OP_ASINH},
    {"Acosh", KL_OP_ACOSH}, {"Atanh", KL_OP_ATANH}, {"Floor", KL_OP_FLOOR},
    {"Ceil", KL_OP_CEIL},   {"Round", KL_OP_ROUND}, {"Sign", KL_OP_SIGN},
};

/* Sin ... Sign: x -> op(x), same shape and dtype. */
kl_status kl_onnx_map_math_unary(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  for (size_t i = 0; i < sizeof math_unary_ops / sizeof *math_unary_ops; i++)
    if (!strcmp(math_unary_ops[i].onnx, c->node->op_type))
      return kl_onnx_emit1(c, math_unary_ops[i].op, x, &c->out[0]);
  return kl_onnx_node_error(c, KL_ERR_INTERNAL, "no elementwise math op for op type %s",
                            c->node->op_type);
}

/* Two inputs A and B, both present. */
static kl_status need_two(kl_onnx_node_ctx *c, kl_ir_value **out_a, kl_ir_value **out_b) {
  *out_a = kl_onnx_input(c, 0);
  *out_b = kl_onnx_input(c, 1);
  if (!*out_a || !*out_b)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "inputs A and B are both required, got %d",
                              (*out_a != NULL) + (*out_b != NULL));
  return NULL;
}

/* Mod(A, B) with fmod 0 (default) or 1. ONNX requires fmod=1 for floating-point inputs (ONNX
 * Runtime refuses fmod=0 there too), so that combination is refused rather than guessed. */
kl_status kl_onnx_map_mod(kl_onnx_node_ctx *c) {
  kl_ir_value *a, *b;
  KL_RETURN_IF_ERROR(need_two(c, &a, &b));
  int64_t fmod = kl_onnx_attr_int(c, "fmod", 0);
  if (fmod != 0 && fmod != 1)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "attribute fmod = %lld must be 0 or 1",
                              (long long)fmod);
  if (!fmod && kl_dtype_is_float(a->type.dtype))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT,
                              "attribute fmod = 0 with %s input '%s': ONNX requires fmod = 1 for "
                              "floating-point inputs",
                              kl_dtype_ir_name(a->type.dtype), a->name);
  return kl_onnx_emit2(c, fmod ? KL_OP_FMOD : KL_OP_REMAINDER, a, b, &c->out[0]);
}

/* BitShift(X, Y) with direction "LEFT" or "RIGHT" (required). */
kl_status kl_onnx_map_bit_shift(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *y;
  KL_RETURN_IF_ERROR(need_two(c, &x, &y));
  char buf[16];
  const char *dir = kl_onnx_attr_string(c, "direction", NULL, buf, sizeof buf);
  if (!dir)
    return kl_onnx_missing_attr(c, "direction");
  kl_op op;
  if (!strcmp(dir, "LEFT"))
    op = KL_OP_BITWISE_LEFT_SHIFT;
  else if (!strcmp(dir, "RIGHT"))
    op = KL_OP_BITWISE_RIGHT_SHIFT;
  else
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT,
                              "attribute direction = \"%s\" must be \"LEFT\" or \"RIGHT\"", dir);
  return kl_onnx_emit2(c, op, x, y, &c->out[0]);
}

/* ---- bitwise (issue 4) ---- */
/* BitwiseAnd/Or/Xor(A, B) and BitwiseNot(X): one IR op each; integer inputs only in ONNX, the
 * IR also accepts Bool. */
kl_status kl_onnx_map_bitwise(kl_onnx_node_ctx *c) {
  const char *t = c->node->op_type;
  if (!strcmp(t, "BitwiseNot")) {
    kl_ir_value *x;
    KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
    return kl_onnx_emit1(c, KL_OP_BITWISE_NOT, x, &c->out[0]);
  }
  kl_op op;
  if (!strcmp(t, "BitwiseAnd"))
    op = KL_OP_BITWISE_AND;
  else if (!strcmp(t, "BitwiseOr"))
    op = KL_OP_BITWISE_OR;
  else if (!strcmp(t, "BitwiseXor"))
    op = KL_OP_BITWISE_XOR;
  else
    return kl_onnx_node_error(c, KL_ERR_INTERNAL, "no bitwise op for op type %s", t);
  kl_ir_value *a, *b;
  KL_RETURN_IF_ERROR(need_two(c, &a, &b));
  return kl_onnx_emit2(c, op, a, b, &c->out[0]);
}
