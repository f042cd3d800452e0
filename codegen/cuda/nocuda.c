/* The CUDA backend's stand-in for builds configured without NVRTC (-Dcuda=disabled or no CUDA
 * toolkit found): --target cuda is refused with a clear message. */
#include "cuda.h"

kl_status kl_codegen_cuda(const kl_ir_graph *g, const kl_compile_options *o, const char *so_path,
                          const char *header_path) {
  (void)g, (void)o, (void)so_path, (void)header_path;
  return kl_status_create(KL_ERR_UNSUPPORTED,
                          "--target cuda is not available: this kiln was built without NVRTC "
                          "(configure with -Dcuda=enabled and -Dcudahome=DIR)");
}
