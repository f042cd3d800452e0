/* Compiling an optimized graph into a standalone shared library (an artifact) and its header.
 *
 * The flow `kiln compile` drives: the graph is optimized by the pass manager (the caller's
 * business), then
 *   1. kl_codegen_llvm_object (codegen/llvm/) lowers it to an object file for a target,
 *   2. kl_codegen_link_shared links that object with the artifact runtime archive (the steps and
 *      kernels of runtime/, built without sanitizers, position independent) into a .so that
 *      needs only libc, libm and libpthread and exports only the model's own symbols,
 *   3. kl_codegen_write_header writes the typed C header.
 * kl_compile does all three.
 *
 * The typed API of a model named NET (every exported symbol starts with NET's name):
 *
 *     typedef struct net_ctx net_ctx;
 *     typedef struct net_inputs { const float *x; ... } net_inputs;   // one pointer per input
 *     typedef struct net_outputs { float *y; ... } net_outputs;        // one pointer per output
 *     #define NET_WORKSPACE_SIZE ...  NET_NUM_INPUTS  NET_NUM_OUTPUTS
 *     #define NET_OK 0 ... (the codes of kl_artifact_status, prefixed)
 *     int net_create(net_ctx **out_ctx, int n_threads);        // n_threads 0: one
 *     int net_create_with(net_ctx **out_ctx, const kl_artifact_options *opts);  (layout-
 *                                                     compatible struct net_options in the header)
 *     int net_run(net_ctx *ctx, const net_inputs *in, net_outputs *out);
 *     int net_set_threads(net_ctx *ctx, int n_threads);
 *     void net_destroy(net_ctx *ctx);
 *     const char *net_error_message(const net_ctx *ctx);
 *     const char *net_status_message(int code);
 *     extern const struct kl_artifact_descriptor kiln_model_net;   // runtime/artifact.h
 *
 * net_inputs and net_outputs are structs of pointers in descriptor order, so they have the
 * layout of the pointer arrays the descriptor's run takes. */
#ifndef KL_CODEGEN_CODEGEN_H
#define KL_CODEGEN_CODEGEN_H

#include <stdbool.h>
#include <stdio.h>

#include "../ir/ir.h"
#include "../runtime/artifact.h"

typedef enum kl_compile_target { KL_TARGET_CPU, KL_TARGET_CUDA } kl_compile_target;

/* Progress of a long compile: stage ("lower", "optimize", "emit", "link"), done of total units
 * (nodes, functions; total 0 when unknown). */
typedef void (*kl_compile_progress_fn)(void *ctx, const char *stage, int done, int total);

typedef struct kl_compile_options {
  const char *name;      /* the model's C name (a C identifier); NULL: "net" */
  kl_compile_target target;
  const char *triple;    /* LLVM target triple; NULL: the host */
  const char *cpu;       /* NULL: the host CPU for the host triple, "generic" otherwise */
  const char *features;  /* LLVM feature string ("+avx2,+fma"); NULL: the host's / none */
  const char *cuda_arch; /* "sm_90"; NULL: sm_80 */
  int opt_level;         /* 0..3: LLVM's optimization level (the graph passes are the caller's) */
  bool no_winograd;      /* 3x3 convolutions as GEMMs only, never by Winograd's F(2x2, 3x3) */
  bool no_fuse_epilogue; /* a residual add and activation after a convolution as passes of
                            their own, not applied by the convolution as it stores */
  const char *emit_llvm_path; /* if set, also write the optimized LLVM IR there */
  const char *emit_obj_path;  /* if set, keep the object file there */
  FILE *time_report;     /* if set, per-stage times are printed there */
  kl_compile_progress_fn progress; /* may be NULL */
  void *progress_ctx;
} kl_compile_options;

/* ---- names (codegen/names.c) ---------------------------------------------------------- */

/* True when s is a usable C identifier for a model name: [A-Za-z_][A-Za-z0-9_]*, at most 64
 * bytes, not a C keyword, not starting with "kiln_" or "kl_" (reserved for kiln). */
bool kl_codegen_valid_model_name(const char *s);
/* The struct field names of the graph's inputs and outputs, one per input then one per output:
 * a value's name with every byte outside [A-Za-z0-9_] turned into '_' when that gives a valid
 * identifier of at most 64 bytes that is not a C keyword, else "input<i>" / "output<i>";
 * duplicates get "_<n>" suffixes. out_names has g->top->n_params + g->top->n_returns entries,
 * each malloc'd; free with kl_codegen_free_names. */
kl_status kl_codegen_io_names(const kl_ir_graph *g, char ***out_names, int *out_count);
void kl_codegen_free_names(char **names, int count);

/* ---- the three stages --------------------------------------------------------------- */

/* Lowers an optimized graph with static shapes to an object file (codegen/llvm/). A symbolic
 * dim, an op the backend does not handle, or an unknown target is an error naming it. */
kl_status kl_codegen_llvm_object(const kl_ir_graph *g, const kl_compile_options *o,
                                 const char *obj_path);
/* The same lowering, verification and LLVM optimization (o->opt_level) without emitting
 * anything: no object, no file (o->emit_llvm_path and o->emit_obj_path are ignored). With
 * out_text, the module's LLVM IR as text (malloc'd, NUL-terminated, *out_len bytes; the caller
 * frees it); with out_text NULL only the status is wanted (the compile fuzz target). */
kl_status kl_codegen_llvm_ir(const kl_ir_graph *g, const kl_compile_options *o,
                             char **out_text, size_t *out_len);
/* Links obj_path with the artifact runtime archive into so_path (codegen/link.c) using the
 * system C compiler ($CC or cc); the link command's output is part of the error on failure. */
kl_status kl_codegen_link_shared(const char *obj_path, const kl_compile_options *o,
                                 const char *so_path);
/* Writes the typed header (codegen/header.c). Names from the model appear only inside
 * comments, escaped so that no byte sequence ends the comment or starts a directive. */
kl_status kl_codegen_write_header(const kl_ir_graph *g, const kl_compile_options *o,
                                  const char *header_path);

/* Object (to a temporary file unless o->emit_obj_path), link, and header (if header_path). */
kl_status kl_compile(const kl_ir_graph *g, const kl_compile_options *o, const char *so_path,
                     const char *header_path);

#endif
