/* kiln.h, as installed: the one header a program outside the source tree includes.
 *
 * `pkg-config --cflags kiln` points at <prefix>/include/kiln, where the public headers keep the
 * source tree's layout (frontend/, frontend/onnx/, ir/, passes/, runtime/) so their relative
 * includes work unchanged. This header pulls in all of them: the eager API and tracer, ONNX
 * import and export, the graph IR and its text and .kir forms, the pass manager, .npy I/O, the
 * interpreter and the artifact loader. Including a single one of them directly works too. */
#ifndef KL_KILN_H
#define KL_KILN_H

#include "frontend/kiln.h"
#include "frontend/onnx/onnx.h"
#include "ir/ir.h"
#include "ir/kir.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/artifact.h"
#include "runtime/dtype.h"
#include "runtime/interp.h"
#include "runtime/npy.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

#endif
