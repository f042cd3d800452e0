/* Vectorizable float math as generated IR: expf by range reduction and a polynomial, and the
 * activations built on it (sigmoid, SiLU, tanh, erf, both GELUs).
 *
 * Everything is straight-line code on one scalar float: the loop vectorizer widens it, and the
 * artifact needs no libmvec. Branches are replaced by computing each case and selecting, with
 * inputs clamped first so that no case computes a poison value (an fptosi of nan, a shift past
 * the width). Polynomials are Taylor series cut where the next term falls below half an ulp on
 * the interval used; erf away from 0 is Abramowitz and Stegun 7.1.26 (absolute error 1.5e-7). */
#include "vmath.h"

#include <math.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------------------------ */

static LLVMTypeRef f32_type(LLVMValueRef x) { return LLVMTypeOf(x); }

static LLVMValueRef cf(LLVMValueRef like, double v) { return LLVMConstReal(f32_type(like), v); }

static LLVMValueRef ci32(LLVMValueRef like, long long v) {
  return LLVMConstInt(LLVMInt32TypeInContext(LLVMGetTypeContext(LLVMTypeOf(like))),
                      (unsigned long long)v, 1);
}

/* Calls the LLVM intrinsic `name` overloaded on the type of args[0]. */
static LLVMValueRef intrinsic(LLVMBuilderRef b, const char *name, LLVMValueRef *args, unsigned n) {
  LLVMModuleRef m = LLVMGetGlobalParent(LLVMGetBasicBlockParent(LLVMGetInsertBlock(b)));
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef t = LLVMTypeOf(args[0]);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(m, id, &t, 1);
  LLVMTypeRef fn_type = LLVMIntrinsicGetType(LLVMGetTypeContext(t), id, &t, 1);
  return LLVMBuildCall2(b, fn_type, fn, args, n, "");
}

static LLVMValueRef fabs_(LLVMBuilderRef b, LLVMValueRef x) {
  return intrinsic(b, "llvm.fabs", &x, 1);
}

static LLVMValueRef copysign_(LLVMBuilderRef b, LLVMValueRef mag, LLVMValueRef sign) {
  LLVMValueRef args[2] = {mag, sign};
  return intrinsic(b, "llvm.copysign", args, 2);
}

static LLVMValueRef minnum(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef args[2] = {x, y};
  return intrinsic(b, "llvm.minnum", args, 2);
}

static LLVMValueRef maxnum(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef args[2] = {x, y};
  return intrinsic(b, "llvm.maxnum", args, 2);
}

static LLVMValueRef mul_(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y) {
  return LLVMBuildFMul(b, x, y, "");
}

static LLVMValueRef add_(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y) {
  return LLVMBuildFAdd(b, x, y, "");
}

/* a * b + c as llvm.fmuladd: one fused multiply-add where the target has one. */
static LLVMValueRef fmuladd(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y, LLVMValueRef z) {
  LLVMValueRef args[3] = {x, y, z};
  return intrinsic(b, "llvm.fmuladd", args, 3);
}

/* c[0] + x (c[1] + x (c[2] + ...)), Horner's rule over n coefficients. */
static LLVMValueRef horner(LLVMBuilderRef b, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef acc = cf(x, c[n - 1]);
  for (int i = n - 2; i >= 0; i--)
    acc = fmuladd(b, acc, x, cf(x, c[i]));
  return acc;
}

/* ---- exp ---------------------------------------------------------------------------------- */

/* e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln2 / 2. n is rounded by adding 1.5 * 2^23
 * (the float's integer bits then hold n) so no rounding intrinsic is needed on old targets. r is
 * x - n ln2 in two parts (ln2_hi has few bits, so n ln2_hi is exact). 2^n is built from two
 * exponent fields, n = n1 + n2, so that n from -150 (subnormal results) to 128 stays in range. */
LLVMValueRef kl_vmath_expf(LLVMBuilderRef b, LLVMValueRef x) {
  static const double taylor[] = {1.0,         1.0,          1.0 / 2,   1.0 / 6,
                                  1.0 / 24,    1.0 / 120,    1.0 / 720, 1.0 / 5040};
  LLVMTypeRef i32 = LLVMInt32TypeInContext(LLVMGetTypeContext(LLVMTypeOf(x)));
  LLVMValueRef xc = minnum(b, maxnum(b, x, cf(x, -104.0)), cf(x, 88.75)); /* nan -> -104 */
  LLVMValueRef magic = cf(x, 12582912.0);                                  /* 1.5 * 2^23 */
  LLVMValueRef t = add_(b, mul_(b, xc, cf(x, 1.44269504088896341)), magic);
  LLVMValueRef nf = LLVMBuildFSub(b, t, magic, "");
  LLVMValueRef n = LLVMBuildSub(b, LLVMBuildBitCast(b, t, i32, ""),
                                LLVMBuildBitCast(b, magic, i32, ""), "");
  LLVMValueRef r = LLVMBuildFSub(b, xc, mul_(b, nf, cf(x, 0.693359375)), "");
  r = LLVMBuildFSub(b, r, mul_(b, nf, cf(x, -2.12194440e-4)), "");
  LLVMValueRef p = horner(b, r, taylor, (int)(sizeof taylor / sizeof taylor[0]));
  LLVMValueRef n1 = LLVMBuildAShr(b, n, ci32(x, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
  LLVMValueRef s1 = LLVMBuildBitCast(
      b, LLVMBuildShl(b, LLVMBuildAdd(b, n1, ci32(x, 127), ""), ci32(x, 23), ""),
      f32_type(x), "");
  LLVMValueRef s2 = LLVMBuildBitCast(
      b, LLVMBuildShl(b, LLVMBuildAdd(b, n2, ci32(x, 127), ""), ci32(x, 23), ""),
      f32_type(x), "");
  LLVMValueRef y = mul_(b, mul_(b, p, s1), s2);
  y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, cf(x, 88.72283935546875), ""),
                      cf(x, INFINITY), y, "");
  y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, cf(x, -103.972084045410), ""),
                      cf(x, 0.0), y, "");
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, y, "");
}

LLVMValueRef kl_vmath_sigmoidf(LLVMBuilderRef b, LLVMValueRef x) {
  LLVMValueRef e = kl_vmath_expf(b, LLVMBuildFNeg(b, x, ""));
  return LLVMBuildFDiv(b, cf(x, 1.0), add_(b, cf(x, 1.0), e), "");
}

LLVMValueRef kl_vmath_siluf(LLVMBuilderRef b, LLVMValueRef x) {
  LLVMValueRef e = kl_vmath_expf(b, LLVMBuildFNeg(b, x, ""));
  return LLVMBuildFDiv(b, x, add_(b, cf(x, 1.0), e), "");
}

/* ---- tanh --------------------------------------------------------------------------------- */

/* |x| < 0.5: the odd Taylor series through x^15 (the x^17 term is below 1e-8 relative);
 * otherwise 1 - 2 / (e^2|x| + 1) with x's sign, which loses at most a bit at |x| = 0.5 and
 * reaches exactly 1 for large |x| (and for inf; nan propagates through expf). */
LLVMValueRef kl_vmath_tanhf(LLVMBuilderRef b, LLVMValueRef x) {
  static const double odd[] = {-1.0 / 3,
                               2.0 / 15,
                               -17.0 / 315,
                               62.0 / 2835,
                               -1382.0 / 155925,
                               21844.0 / 6081075,
                               -929569.0 / 638512875};
  LLVMValueRef ax = fabs_(b, x);
  LLVMValueRef x2 = mul_(b, x, x);
  LLVMValueRef poly = horner(b, x2, odd, (int)(sizeof odd / sizeof odd[0]));
  LLVMValueRef small = add_(b, x, mul_(b, mul_(b, x, x2), poly));
  LLVMValueRef e = kl_vmath_expf(b, mul_(b, ax, cf(x, 2.0)));
  LLVMValueRef large =
      LLVMBuildFSub(b, cf(x, 1.0), LLVMBuildFDiv(b, cf(x, 2.0), add_(b, e, cf(x, 1.0)), ""), "");
  large = copysign_(b, large, x);
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ax, cf(x, 0.5), ""), small, large, "");
}

/* ---- erf and GELU ------------------------------------------------------------------------- */

/* The two pieces erf is made of: *out_small = erf(z) by its Taylor series (good for |z| < 0.5)
 * and *out_erfc_abs = erfc(|z|) by Abramowitz and Stegun 7.1.26 (good for |z| >= 0.5). */
static void erf_parts(LLVMBuilderRef b, LLVMValueRef z, LLVMValueRef *out_small,
                      LLVMValueRef *out_erfc_abs) {
  static const double series[] = {1.0,          -1.0 / 3,    1.0 / 10,     -1.0 / 42,
                                  1.0 / 216,    -1.0 / 1320, 1.0 / 9360,   -1.0 / 75600};
  static const double as[] = {0.0,          0.254829592, -0.284496736,
                              1.421413741,  -1.453152027, 1.061405429};
  LLVMValueRef z2 = mul_(b, z, z);
  LLVMValueRef s = horner(b, z2, series, (int)(sizeof series / sizeof series[0]));
  *out_small = mul_(b, mul_(b, z, s), cf(z, 1.12837916709551257)); /* 2 / sqrt(pi) */
  LLVMValueRef az = fabs_(b, z);
  LLVMValueRef t = LLVMBuildFDiv(b, cf(z, 1.0), add_(b, cf(z, 1.0), mul_(b, az, cf(z, 0.3275911))),
                                 "");
  LLVMValueRef poly = horner(b, t, as, (int)(sizeof as / sizeof as[0]));
  *out_erfc_abs = mul_(b, poly, kl_vmath_expf(b, LLVMBuildFNeg(b, z2, "")));
}

LLVMValueRef kl_vmath_erff(LLVMBuilderRef b, LLVMValueRef x) {
  LLVMValueRef small, erfc_abs;
  erf_parts(b, x, &small, &erfc_abs);
  LLVMValueRef large = copysign_(b, LLVMBuildFSub(b, cf(x, 1.0), erfc_abs, ""), x);
  LLVMValueRef ax = fabs_(b, x);
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ax, cf(x, 0.5), ""), small, large, "");
}

/* 1 + erf(z) is formed without cancelling for negative z: it is erfc(|z|) itself there. */
LLVMValueRef kl_vmath_geluf(LLVMBuilderRef b, LLVMValueRef x) {
  LLVMValueRef z = mul_(b, x, cf(x, 0.70710678118654752));
  LLVMValueRef small, erfc_abs;
  erf_parts(b, z, &small, &erfc_abs);
  LLVMValueRef one_plus_large =
      LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, z, cf(x, 0.0), ""), erfc_abs,
                      LLVMBuildFSub(b, cf(x, 2.0), erfc_abs, ""), "");
  LLVMValueRef one_plus_small = add_(b, cf(x, 1.0), small);
  LLVMValueRef az = fabs_(b, z);
  LLVMValueRef one_plus = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, az, cf(x, 0.5), ""),
                                          one_plus_small, one_plus_large, "");
  return mul_(b, mul_(b, x, cf(x, 0.5)), one_plus);
}

/* (1 + tanh u) / 2 = sigmoid(2u), so the tanh form is x * sigmoid(2u): no cancellation for
 * negative x. */
LLVMValueRef kl_vmath_gelu_tanhf(LLVMBuilderRef b, LLVMValueRef x) {
  LLVMValueRef x3 = mul_(b, mul_(b, x, x), x);
  LLVMValueRef u = mul_(b, add_(b, x, mul_(b, x3, cf(x, 0.044715))), cf(x, 0.7978845608028654));
  LLVMValueRef e = kl_vmath_expf(b, mul_(b, u, cf(x, -2.0)));
  return LLVMBuildFDiv(b, x, add_(b, cf(x, 1.0), e), "");
}
