/* What the CUDA backend's files share (codegen/cuda/emit.c, ops.c): the emitter's state, the
 * parameter blocks and elementwise runs being generated, and the helpers that write kernel
 * signatures, index math and launches. */
#ifndef KL_CODEGEN_CUDA_CUDA_INTERNAL_H
#define KL_CODEGEN_CUDA_CUDA_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../passes/plan_memory.h"
#include "../../runtime/checked.h"
#include "../../runtime/cuda_rt.h"
#include "../../runtime/interp_encode.h"
#include "cuda.h"

#define EW_BLOCK 256
#define MAX_GRID 65536

typedef struct loc {
  int kind; /* KL_CUDA_ARG_*; -1 while unset */
  int64_t index, offset;
} loc;

typedef struct emitter {
  const kl_ir_graph *g;
  kl_cuda_program *p;
  kl_memory_plan *plan;
  loc *locs; /* by value id */
  FILE *src;
  int64_t scratch_base, scratch_cur, scratch_end;
  int out_pos; /* a parameter that is an output though not at the end (-1: none) */
  char *too_big;  /* the first launch the runtime could not make (too many arguments, too
                   * large a grid), malloc'd; reported at the end */
} emitter;

/* Operand descriptions for kl_step_encode. */
typedef struct encoded {
  const kl_step_info *info;
  unsigned char params[KL_STEP_PARAMS_MAX];
} encoded;

/* A run of elementwise nodes as code: what it reads from outside (besides `given`, a value the
 * code around it already holds in v<id>), and what it must store. */
typedef struct region_plan {
  kl_ir_node *const *nodes;
  int n;
  const kl_ir_value **ins;
  int n_ins;
  const kl_ir_value **outs;
  int n_outs;
} region_plan;

static inline const char *ctype(kl_dtype t) {
  switch (t) {
  case KL_F32: return "float";
  case KL_F64: return "double";
  case KL_I32: return "int";
  case KL_I64: return "long long";
  case KL_I8: return "signed char";
  case KL_U8: return "unsigned char";
  case KL_BOOL: return "unsigned char";
  default: return NULL;
  }
}

/* The type a kernel's parameter points to: ctype, or for a dtype without arithmetic here (Half,
 * BFloat16) an unsigned integer of its size, which data movement copies unchanged. */
static inline const char *storage_type(kl_dtype t) {
  const char *c = ctype(t);
  if (c)
    return c;
  return kl_dtype_size(t) == 2 ? "unsigned short" : "unsigned char";
}

static inline bool is_float(kl_dtype t) { return t == KL_F32 || t == KL_F64; }

/* A double as a CUDA expression (infinities and NaN included). */
static inline void fmt_double(char *buf, size_t size, double v) {
  if (isnan(v))
    snprintf(buf, size, "K_NAN");
  else if (isinf(v))
    snprintf(buf, size, "%sK_INF", v < 0 ? "-" : "");
  else
    snprintf(buf, size, "%.17g", v);
}

/* Element count of a static type whose byte size encode() has checked. */
static inline int64_t numel_of(const kl_ir_type *t) {
  int64_t n = 0;
  return kl_ir_type_numel(t, &n) ? n : 0;
}

static inline int64_t grid_for(int64_t n, int64_t block) {
  int64_t g = (n + block - 1) / block;
  if (g < 1)
    g = 1;
  return g > MAX_GRID ? MAX_GRID : g;
}

/* Emits the coordinates c0..c<rank-1> of the linear index `idx` in shape. */
static inline void emit_coords(FILE *f, const int64_t *shape, int rank, const char *idx,
                        const char *prefix) {
  fprintf(f, "    long long %s_t = %s;\n", prefix, idx);
  for (int d = rank - 1; d >= 0; d--) {
    if (d == 0)
      fprintf(f, "    long long %s%d = %s_t;\n", prefix, d, prefix);
    else
      fprintf(f, "    long long %s%d = %s_t %% %lldLL; %s_t /= %lldLL;\n", prefix, d, prefix,
              (long long)shape[d], prefix, (long long)shape[d]);
  }
  fprintf(f, "    (void)%s_t;\n", prefix);
}

static inline void shape_of(const kl_ir_type *t, int64_t *out) {
  for (int k = 0; k < t->rank; k++)
    out[k] = t->dims[k].size;
}

static inline bool same_shape(const kl_ir_type *a, const kl_ir_type *b) {
  if (a->rank != b->rank)
    return false;
  for (int k = 0; k < a->rank; k++)
    if (a->dims[k].size != b->dims[k].size)
      return false;
  return true;
}

/* The element offset into a tensor of type t read broadcast against coordinates c0.. of an
 * output of rank out_rank, as an expression in buf. */
static inline void bcast_offset(char *buf, size_t size, const kl_ir_type *t, int out_rank,
                         const char *prefix) {
  size_t at = 0;
  int64_t stride = 1;
  buf[0] = '\0';
  at += (size_t)snprintf(buf + at, size - at, "0LL");
  for (int d = t->rank - 1; d >= 0; d--) {
    int64_t n = t->dims[d].size;
    int od = d + (out_rank - t->rank);
    if (n != 1 && at < size)
      at += (size_t)snprintf(buf + at, size - at, " + %s%d * %lldLL", prefix, od,
                             (long long)stride);
    stride *= n;
  }
}

/* Per-batch element offsets of x (rank xr, its last `mat` dims a matrix) against the batch
 * shape batch[0..nb-1], written as "off_<name>" from the batch coordinates b0... */
static inline void emit_batch_offset(FILE *f, const char *name, const kl_ir_type *t, int mat,
                              int nb) {
  int xb = t->rank - mat;
  int64_t st = 1;
  for (int d = t->rank - 1; d >= xb; d--)
    st *= t->dims[d].size;
  fprintf(f, "  long long off_%s = 0LL", name);
  for (int d = xb - 1; d >= 0; d--) {
    int bd = d + (nb - xb);
    if (t->dims[d].size != 1)
      fprintf(f, " + b%d * %lldLL", bd, (long long)st);
    st *= t->dims[d].size;
  }
  fprintf(f, ";\n");
}

/* outer/inner sizes around dim d of t. */
static inline void around(const kl_ir_type *t, int d, int64_t *outer, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int k = 0; k < d; k++)
    *outer *= t->dims[k].size;
  for (int k = d + 1; k < t->rank; k++)
    *inner *= t->dims[k].size;
}

/* ---- emit.c ---- */

/* An error naming the node: "--target cuda does not support OP (%v) yet: WHY". */
kl_status kl_cuda_unsupported(const kl_ir_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kl_cuda_add_launch(emitter *E, const char *what, int64_t grid_x, int64_t grid_y,
                       int64_t grid_z, int64_t block_x, int64_t block_y, int64_t shared,
                       const kl_ir_value *const *vals, int n_vals);
void kl_cuda_signature(emitter *E, const char *what, const kl_ir_value *const *vals, int n_vals,
                      int n_outputs_at_end);
kl_status kl_cuda_region_code(FILE *f, const region_plan *rp, const kl_ir_type *ot,
                             int first_param);
kl_status kl_cuda_emit_permute(emitter *E, const kl_ir_node *n, const encoded *e,
                              const char *what);
kl_status kl_cuda_emit_gemm(emitter *E, const kl_ir_node *n, bool linear, const char *what,
                          const region_plan *epi, bool y_escapes);
kl_status kl_cuda_emit_conv2d(emitter *E, const kl_ir_node *n, const encoded *e,
                             const char *what, const region_plan *epi, bool y_escapes);
kl_status kl_cuda_emit_batch_norm(emitter *E, const kl_ir_node *n, const encoded *e,
                                 const char *what);
kl_status kl_cuda_emit_layer_norm(emitter *E, const kl_ir_node *n, const encoded *e,
                                 const char *what);
kl_status kl_cuda_emit_softmax(emitter *E, const kl_ir_node *n, const encoded *e,
                              const char *what);
kl_status kl_cuda_emit_pool(emitter *E, const kl_ir_node *n, const encoded *e, const char *kind,
                           const char *what);
kl_status kl_cuda_emit_reduce(emitter *E, const kl_ir_node *n, const encoded *e,
                             const char *what);
kl_status kl_cuda_emit_cat(emitter *E, const kl_ir_node *n, const encoded *e, const char *what);
kl_status kl_cuda_emit_slice(emitter *E, const kl_ir_node *n, const encoded *e,
                            const char *what);
kl_status kl_cuda_emit_split(emitter *E, const kl_ir_node *n, const encoded *e,
                            const char *what);
kl_status kl_cuda_emit_gather(emitter *E, const kl_ir_node *n, const encoded *e,
                             const char *what);
kl_status kl_cuda_emit_constant_pad(emitter *E, const kl_ir_node *n, const encoded *e,
                                   const char *what);
kl_status kl_cuda_emit_attention(emitter *E, const kl_ir_node *n, const encoded *e,
                                const char *what);

#endif
