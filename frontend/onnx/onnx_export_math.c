/* ONNX export of the elementwise math ops (issue 4). The trigonometric and hyperbolic
 * functions, floor, ceil, round and sign are one ONNX op each (all exist at every opset kiln
 * writes). aten::fmod is Mod(fmod=1). aten::remainder is Mod(fmod=0) for integers; ONNX
 * allows fmod=0 only for integers, so for floats it is written as the formula it stands for:
 * r = Mod(a, b, fmod=1), then r + b where r is non-zero and its sign differs from b's. Shifts
 * are BitShift, which ONNX defines for unsigned integers only: Byte tensors export, the
 * signed ones are refused with a message. Bitwise and/or/xor/not are BitwiseAnd/Or/Xor/Not
 * (opset 18) for integers; Bool tensors are the logical And/Or/Xor/Not at any opset (ONNX's
 * bitwise ops take no Bool), integers below opset 18 are refused. */
#include <string.h>

#include "onnx_export_internal.h"

static kl_status no_math_form(kl_onnx_exporter *ex, const kl_ir_node *n, const char *why) {
  return kl_status_create(KL_ERR_UNSUPPORTED, "%s (defining %%%s) has no ONNX form at opset %d: %s",
                          kl_ir_node_op_name(n), n->outputs[0]->name, kl_onnx_ex_opset(ex), why);
}

static const char *math_unary_name(kl_op op) {
  switch (op) {
  case KL_OP_SIN: return "Sin";
  case KL_OP_COS: return "Cos";
  case KL_OP_TAN: return "Tan";
  case KL_OP_ASIN: return "Asin";
  case KL_OP_ACOS: return "Acos";
  case KL_OP_ATAN: return "Atan";
  case KL_OP_SINH: return "Sinh";
  case KL_OP_COSH: return "Cosh";
  case KL_OP_ASINH: return "Asinh";
  case KL_OP_ACOSH: return "Acosh";
  case KL_OP_ATANH: return "Atanh";
  case KL_OP_FLOOR: return "Floor";
  case KL_OP_CEIL: return "Ceil";
  case KL_OP_ROUND: return "Round";
  case KL_OP_SIGN: return "Sign";
  default: return NULL;
  }
}

/* Python-style remainder of floats: where(r != 0 and (r < 0) xor (b < 0), r + b, r) with
 * r = fmod(a, b). */
static void export_float_remainder(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *a,
                                   const char *b, kl_dtype dt, const char *out) {
  const char *zero = kl_onnx_ex_const_scalar(ex, dt, 0.0);
  const char *r = kl_onnx_ex_tmp(ex);
  Onnx__NodeProto *mod = kl_onnx_ex_node2(ex, scope, "Mod", a, b, r);
  kl_onnx_ex_attr_int(ex, mod, "fmod", 1);
  const char *r_zero = kl_onnx_ex_tmp(ex), *r_nonzero = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "Equal", r, zero, r_zero);
  kl_onnx_ex_node1(ex, scope, "Not", r_zero, r_nonzero);
  const char *r_neg = kl_onnx_ex_tmp(ex), *b_neg = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "Less", r, zero, r_neg);
  kl_onnx_ex_node2(ex, scope, "Less", b, zero, b_neg);
  const char *signs_differ = kl_onnx_ex_tmp(ex), *fix = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "Xor", r_neg, b_neg, signs_differ);
  kl_onnx_ex_node2(ex, scope, "And", r_nonzero, signs_differ, fix);
  const char *moved = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "Add", r, b, moved);
  const char *where_in[3] = {fix, moved, r};
  kl_onnx_ex_node(ex, scope, "Where", where_in, 3, &out, 1);
}

/* aten::bitwise_* (issue 4): the ONNX op name for dtype dt, or NULL when there is none at this
 * opset (then *out_why says why). */
static const char *bitwise_name(kl_onnx_exporter *ex, kl_op op, kl_dtype dt, const char **out_why) {
  bool logical = dt == KL_BOOL;
  *out_why = "ONNX's BitwiseAnd/Or/Xor/Not need opset 18 (Bool tensors export at any opset)";
  if (!logical && kl_onnx_ex_opset(ex) < 18)
    return NULL;
  switch (op) {
  case KL_OP_BITWISE_AND: return logical ? "And" : "BitwiseAnd";
  case KL_OP_BITWISE_OR: return logical ? "Or" : "BitwiseOr";
  case KL_OP_BITWISE_XOR: return logical ? "Xor" : "BitwiseXor";
  case KL_OP_BITWISE_NOT: return logical ? "Not" : "BitwiseNot";
  default: *out_why = "not a bitwise op"; return NULL;
  }
}

kl_status kl_onnx_export_math(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const char *out = kl_onnx_ex_name(ex, n->outputs[0]);
  if (n->op == KL_OP_BITWISE_AND || n->op == KL_OP_BITWISE_OR || n->op == KL_OP_BITWISE_XOR ||
      n->op == KL_OP_BITWISE_NOT) {
    const char *why;
    const char *name = bitwise_name(ex, n->op, n->inputs[0]->type.dtype, &why);
    if (!name)
      return no_math_form(ex, n, why);
    if (n->op == KL_OP_BITWISE_NOT)
      kl_onnx_ex_node1(ex, scope, name, kl_onnx_ex_name(ex, n->inputs[0]), out);
    else
      kl_onnx_ex_node2(ex, scope, name, kl_onnx_ex_name(ex, n->inputs[0]),
                       kl_onnx_ex_name(ex, n->inputs[1]), out);
    return NULL;
  }
  const char *unary = math_unary_name(n->op);
  if (unary) {
    kl_onnx_ex_node1(ex, scope, unary, kl_onnx_ex_name(ex, n->inputs[0]), out);
    return NULL;
  }
  if (n->n_inputs != 2)
    return no_math_form(ex, n, "expected two inputs");
  const char *a = kl_onnx_ex_name(ex, n->inputs[0]), *b = kl_onnx_ex_name(ex, n->inputs[1]);
  kl_dtype dt = n->inputs[0]->type.dtype;
  Onnx__NodeProto *node;
  switch (n->op) {
  case KL_OP_FMOD:
    node = kl_onnx_ex_node2(ex, scope, "Mod", a, b, out);
    kl_onnx_ex_attr_int(ex, node, "fmod", 1);
    return NULL;
  case KL_OP_REMAINDER:
    if (kl_dtype_is_float(dt)) {
      export_float_remainder(ex, scope, a, b, dt, out);
    } else {
      node = kl_onnx_ex_node2(ex, scope, "Mod", a, b, out);
      kl_onnx_ex_attr_int(ex, node, "fmod", 0);
    }
    return NULL;
  case KL_OP_BITWISE_LEFT_SHIFT:
  case KL_OP_BITWISE_RIGHT_SHIFT:
    if (dt != KL_U8)
      return no_math_form(ex, n, "ONNX BitShift takes unsigned integers only (kiln: Byte)");
    node = kl_onnx_ex_node2(ex, scope, "BitShift", a, b, out);
    kl_onnx_ex_attr_string(ex, node, "direction",
                           n->op == KL_OP_BITWISE_LEFT_SHIFT ? "LEFT" : "RIGHT");
    return NULL;
  default: return no_math_form(ex, n, "not an elementwise math op");
  }
}
