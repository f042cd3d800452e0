/* Freezing test inputs: the ONNX node tests feed shape-like operands (Reshape's shape,
 * ReduceSum's axes, Clip's bounds) as graph inputs, where kiln needs them constant. With
 * --freeze-inputs the harness turns the inputs the importer names as needing a constant into
 * initializers holding the data set's values and imports the model again; the data input
 * stays a real input. */
#ifndef KL_TESTS_ONNX_FREEZE_INPUTS_H
#define KL_TESTS_ONNX_FREEZE_INPUTS_H

#include <stdbool.h>

#include "ir/ir.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

/* The names of the graph inputs (ModelProto.graph.input, in order) of the model at path; the
 * test's input_K.pb belongs to the K-th. Free with free_input_names. */
kl_status freeze_read_input_names(const char *model_path, char ***out_names, int *out_n);
void freeze_free_input_names(char **names, int n);

/* Adds to frozen[] (one flag per graph input) the inputs a "needs a constant" message of the
 * importer names ("input 1 ('axes') needs a constant"); returns how many it added. */
int freeze_mark_named(const char *message, char *const *names, int n, bool *frozen);

/* Imports the model at model_path (n graph inputs) with every input K whose frozen[K] is set replaced by
 * an initializer holding set_dir/input_K.pb. */
kl_status freeze_import(const char *model_path, const char *set_dir, int n, const bool *frozen,
                        kl_ir_graph **out_graph);

/* Also the harness's other use of the ONNX protobuf: a TensorProto of UINT16 at path (how
 * ONNX's test data stores bfloat16) read as a bfloat16 tensor; false when it is not one. */
bool read_uint16_tensor_as_bf16(const char *path, kl_tensor **out_tensor);

#endif
