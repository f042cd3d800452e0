/* Vectorizable float math emitted as straight-line LLVM IR (codegen/llvm/vmath.c).
 *
 * Each function emits, at the builder's position, the IR computing one scalar float result
 * from one scalar float x: no branches, no calls (not even to libm or libmvec), only
 * arithmetic, compares, selects and bit casts, so LLVM's loop vectorizer widens a loop that
 * uses them. Accuracy against the double-precision libm result rounded to float:
 *   expf             <= 2 ulp; exact 0 below -104, +inf above 88.73, nan stays nan
 *   sigmoid, silu, tanh, gelu (erf form and tanh form)   relative error ~1e-6 or better
 *   erf              absolute error <= 4e-7, and relative error ~1e-7 near 0
 * Double-precision math is not here: the elementwise emitter calls libm for it. */
#ifndef KL_CODEGEN_LLVM_VMATH_H
#define KL_CODEGEN_LLVM_VMATH_H

#include <llvm-c/Core.h>

LLVMValueRef kl_vmath_expf(LLVMBuilderRef b, LLVMValueRef x);
LLVMValueRef kl_vmath_sigmoidf(LLVMBuilderRef b, LLVMValueRef x); /* 1 / (1 + e^-x) */
LLVMValueRef kl_vmath_siluf(LLVMBuilderRef b, LLVMValueRef x);    /* x / (1 + e^-x) */
LLVMValueRef kl_vmath_tanhf(LLVMBuilderRef b, LLVMValueRef x);
LLVMValueRef kl_vmath_erff(LLVMBuilderRef b, LLVMValueRef x);
/* x/2 * (1 + erf(x / sqrt 2)) */
LLVMValueRef kl_vmath_geluf(LLVMBuilderRef b, LLVMValueRef x);
/* x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as x * sigmoid(2u) */
LLVMValueRef kl_vmath_gelu_tanhf(LLVMBuilderRef b, LLVMValueRef x);

#endif
