/* ONNX in and out.
 *
 * Import turns an ONNX ModelProto (opsets 7 and later) into a kiln graph: graph inputs become
 * graph inputs, initializers named parameters (prim::Param with weights), Constant nodes
 * prim::Constant, and every other node one or a few IR ops. External tensor data is read
 * relative to the model's folder, and a location that would leave that folder (an absolute
 * path, "..", a symlink) is refused. Every unsupported op is reported, all at once, with its
 * name, domain, opset and node name.
 *
 * Export writes a graph as a ModelProto: parameters as initializers, value types as
 * value_info, each IR op as the ONNX op(s) that compute it.
 *
 * Both use protobuf-c code generated at build time from the onnx.proto of Debian's
 * libonnx-dev. Nothing here trusts a size from the file before checking it. */
#ifndef KL_FRONTEND_ONNX_H
#define KL_FRONTEND_ONNX_H

#include <stdbool.h>
#include <stddef.h>

#include "../../ir/ir.h"
#include "../../runtime/status.h"
#include "../../runtime/tensor.h"

typedef struct kl_onnx_import_options {
  size_t max_file_bytes;     /* default 2 GiB - 1: protobuf's own limit */
  int max_proto_depth;       /* nesting of messages, checked before unpacking; default 64 */
  int max_subgraph_depth;    /* If/Loop bodies within bodies; default 32 */
  size_t max_total_bytes;    /* all tensors a model may ask for together; default 16 GiB */
} kl_onnx_import_options;

void kl_onnx_import_options_init(kl_onnx_import_options *opts);

/* Imports the model at path; external data is looked up next to it. opts may be NULL. */
kl_status kl_onnx_import_file(const char *path, const kl_onnx_import_options *opts,
                              kl_ir_graph **out_graph);
/* The same from memory; base_dir (may be NULL: external data refused) is where external data
 * lives and name is used in messages. */
kl_status kl_onnx_import_buffer(const void *data, size_t size, const char *base_dir,
                                const char *name, const kl_onnx_import_options *opts,
                                kl_ir_graph **out_graph);

/* Registers the expander of onnx::Deferred nodes (ONNX nodes whose mapping needs values known
 * only at run time) with ir/ (kl_ir_set_expander), so the interpreter and the passes can turn
 * them into static ops. Importing calls it; a program that loads graphs holding such nodes
 * from .kir or text IR calls it once before running them. Idempotent. */
void kl_onnx_register_expanders(void);

/* Which inputs of an onnx::Deferred node its mapping reads as values (a Reshape's shape, a
 * Slice's starts and ends, a Resize's sizes) that are not constants yet: out_reads, one flag per
 * node input. Found by running the mapping as a probe; the nodes it emits are removed again,
 * so n's graph computes the same afterwards (its value and node counters have moved on). */
kl_status kl_onnx_deferred_value_inputs(kl_ir_node *n, bool *out_reads);

/* The graph inputs whose values decide shapes: out_inputs (one flag per input of g, in order)
 * is set for each input that what an onnx::Deferred node of g reads as a value is computed
 * from, so that binding those inputs to constants (kl_pass_bind_input, kiln compile --bind)
 * lets canonicalize expand the node. Returns how many are set. A deferred node that waits for
 * a static shape rather than a value (Shape of a value-dependent shape) adds nothing itself:
 * the node that made the shape value-dependent names its inputs. Probes each deferred node
 * (kl_onnx_deferred_value_inputs). */
int kl_onnx_shape_inputs(kl_ir_graph *g, bool *out_inputs);

/* Reads a serialized TensorProto (the input_N.pb / output_N.pb files of ONNX's test cases). */
kl_status kl_onnx_read_tensor_file(const char *path, kl_tensor **out_tensor);

/* Writes g as an ONNX model with the given opset (0: the newest kiln writes). Fails naming the
 * first op that has no ONNX form at that opset. */
kl_status kl_onnx_export_file(const kl_ir_graph *g, const char *path, int opset);

/* True when path names an ONNX model by its extension (".onnx"). */
bool kl_onnx_is_onnx_path(const char *path);

#endif
