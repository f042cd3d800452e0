/* The artifact runtime: what the code generated for a compiled model calls.
 *
 * Generated code stays small: it holds constant tables (the model, the tensor table, the
 * weights, one parameter block per step) and one straight-line function, the body, that calls
 * kl_art_step, kl_art_region and kl_art_copy in node order. Everything else (the context with its
 * workspace and tensor headers, the thread pool, argument checks, error messages) is C here,
 * linked into every artifact from the artifact runtime archive with hidden visibility.
 *
 * The layouts below are emitted by codegen/llvm/ as LLVM constants: every field is 8 bytes
 * (pointers and int64), so there is no padding and no ABI subtlety. Changing them means
 * changing codegen/llvm/ together with this file. */
#ifndef KL_RUNTIME_ARTIFACT_RT_H
#define KL_RUNTIME_ARTIFACT_RT_H

#include <stdint.h>

#include "artifact.h"
#include "steps.h"
#include "tensor.h"

/* Where a tensor of the table lives. */
enum {
  KL_ART_INPUT = 0,     /* the caller's input buffer number `where` */
  KL_ART_OUTPUT = 1,    /* the caller's output buffer number `where` */
  KL_ART_WORKSPACE = 2, /* the context's workspace at byte offset `where` */
  KL_ART_WEIGHT = 3,    /* the model's weight number `where` (read-only) */
};

/* One operand: a tensor header the context fills at create (and at run for inputs/outputs). */
typedef struct kl_art_tensor_desc {
  int64_t kind;  /* KL_ART_* */
  int64_t where; /* input/output/weight index or workspace offset */
  int64_t dtype; /* kl_dtype */
  int64_t rank;
  int64_t shape[KL_MAX_RANK];
} kl_art_tensor_desc;

typedef struct kl_art_ctx kl_art_ctx;

/* One compiled model. */
typedef struct kl_art_model {
  const kl_artifact_descriptor *desc;
  const kl_art_tensor_desc *tensors;
  int64_t n_tensors;
  const void *const *weights;
  uint64_t workspace_bytes;
  int (*body)(kl_art_ctx *ctx); /* runs the nodes; KL_ARTIFACT_* */
} kl_art_model;

/* A region function of codegen/llvm/ew.h. */
typedef void (*kl_art_region_fn)(void *const *bufs, int64_t row_begin, int64_t row_end);

/* ---- entry points (the typed API and the descriptor forward here) ---- */

int kl_art_create(const kl_art_model *model, const kl_artifact_options *opts, void **out_ctx);
int kl_art_create_n(const kl_art_model *model, int32_t n_threads, void **out_ctx);
int kl_art_run(void *ctx, const void *const *inputs, void *const *outputs, uint32_t flags);
int kl_art_set_threads(void *ctx, int32_t n_threads);
void kl_art_destroy(void *ctx);
const char *kl_art_error_message(const void *ctx);
const char *kl_art_status_message(int code);

/* ---- what the body calls ---- */

/* With KILN_PROFILE set (to anything but "" or "0") when a context is created, every step and
 * region the context runs is timed, and destroying the context prints each one's time per run
 * to stderr, slowest first. */

/* Runs step fn (a kl_step_fn) with params on the tensors ids[0 .. n_in-1] -> ids[n_in ..
 * n_in+n_out-1] (id -1: an absent optional input). On failure the context's message becomes
 * "<what>: <the step's message>" and the result is KL_ARTIFACT_ERR_RUNTIME (or OUT_OF_MEMORY). */
int kl_art_step(kl_art_ctx *ctx, const void *fn, const void *params, const int32_t *ids,
                int32_t n_in, int32_t n_out, const char *what);
/* Runs region fn over rows [0, rows) with bufs = the data of tensors ids[0 .. n_bufs-1],
 * splitting rows across the context's pool in chunks of at least min_rows; what names it (the
 * node). Like kl_art_copy, returns a KL_ARTIFACT_* code the body checks. */
int kl_art_region(kl_art_ctx *ctx, const void *fn, const int32_t *ids, int32_t n_bufs,
                  int64_t rows, int64_t min_rows, const char *what);
/* Whether the first element of tensor id (a prim::If condition) is nonzero. */
int kl_art_cond(kl_art_ctx *ctx, int32_t id);
/* prim::Loop: the first element of tensor id as int64 (the trip count); storing the iteration
 * counter into the Long() tensor id. */
int64_t kl_art_load_i64(kl_art_ctx *ctx, int32_t id);
void kl_art_store_i64(kl_art_ctx *ctx, int32_t id, int64_t v);
/* Copies tensor src's bytes into tensor dst (same size). */
int kl_art_copy(kl_art_ctx *ctx, int32_t dst, int32_t src);

#endif
