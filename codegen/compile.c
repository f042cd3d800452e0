/* kl_compile: the three stages of codegen.h in a row (object, link, header).
 *
 * The object goes to a temporary file under $TMPDIR unless the caller wants it kept
 * (o->emit_obj_path); the header's NET_WORKSPACE_SIZE is read from that object's descriptor
 * before it is removed. A failed link removes the half-written library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen.h"
#include "codegen_internal.h"
#include "cuda/cuda.h" /* the CUDA target */
#include "runtime/artifact_load.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

kl_status kl_compile(const kl_ir_graph *g, const kl_compile_options *o, const char *so_path,
                     const char *header_path) {
  kl_compile_options opts = {0};
  if (o)
    opts = *o;
  if (!opts.name)
    opts.name = "net";
  if (!kl_codegen_valid_model_name(opts.name))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "'%s' is not a valid model name (a C identifier of at most 64 bytes, "
                            "not a keyword, not starting with kiln_ or kl_)",
                            opts.name);
  if (!so_path && !opts.emit_obj_path)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "compile: nothing to write");
  /* ---- the CUDA target: its own flow (codegen/cuda/artifact.c) ---- */
  if (opts.target == KL_TARGET_CUDA)
    return kl_codegen_cuda(g, &opts, so_path, header_path);
  /* ---- end CUDA target ---- */

  char *temp_obj = NULL;
  const char *obj = opts.emit_obj_path;
  if (!obj && so_path && !kl_codegen_triple_is_host(opts.triple)) {
    /* Linking for another target may need tools this machine lacks; the object is kept
     * beside the library (SO.o) so that the error can point at it. */
    size_t n = strlen(so_path) + 3;
    char *kept = malloc(n);
    if (!kept)
      kl_fatal_oom();
    snprintf(kept, n, "%s.o", so_path);
    opts.emit_obj_path = kept;
    kl_status s = kl_compile(g, &opts, so_path, header_path);
    if (!s)
      unlink(kept);
    free(kept);
    return s;
  }
  if (!obj) {
    KL_RETURN_IF_ERROR(kl_codegen_temp_file("kiln-compile", ".o", &temp_obj, NULL));
    obj = temp_obj;
  }
  kl_status s = kl_codegen_llvm_object(g, &opts, obj);
  kl_artifact_file_info info;
  if (!s && header_path)
    s = kl_status_annotate(kl_artifact_peek(obj, &info), "reading the emitted object");
  if (!s && so_path) {
    if (opts.progress)
      opts.progress(opts.progress_ctx, "link", 0, 1);
    double t0 = now_ms();
    s = kl_codegen_link_shared(obj, &opts, so_path);
    if (s)
      unlink(so_path);
    else if (opts.time_report)
      fprintf(opts.time_report, "  %-10s %10.2f ms\n", "link", now_ms() - t0);
    if (opts.progress && !s)
      opts.progress(opts.progress_ctx, "link", 1, 1);
  }
  if (!s && header_path)
    s = kl_codegen_write_header_sized(g, &opts, info.workspace_size, header_path);
  if (temp_obj) {
    unlink(temp_obj);
    free(temp_obj);
  }
  return s;
}
