/* kl_codegen_llvm_object and kl_codegen_llvm_ir for a kiln built without LLVM: every compile
 * is refused with a message saying what to install. codegen/meson.build lists this file
 * instead of the backend when llvm-config-19 was not found. */
#include <stddef.h>

#include "../codegen.h"

kl_status kl_codegen_llvm_object(const kl_ir_graph *g, const kl_compile_options *o,
                                 const char *obj_path) {
  (void)g;
  (void)o;
  (void)obj_path;
  return kl_status_create(KL_ERR_UNSUPPORTED, "kiln was built without LLVM (install llvm-19-dev)");
}

kl_status kl_codegen_llvm_ir(const kl_ir_graph *g, const kl_compile_options *o,
                             char **out_text, size_t *out_len) {
  (void)g;
  (void)o;
  if (out_text)
    *out_text = NULL;
  if (out_len)
    *out_len = 0;
  return kl_status_create(KL_ERR_UNSUPPORTED, "kiln was built without LLVM (install llvm-19-dev)");
}
