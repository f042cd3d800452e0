/* kl_codegen_cuda: a CUDA artifact from a graph (codegen/cuda/cuda.h).
 *
 * The kernels come from kl_cuda_emit and NVRTC; the host part is C written here and compiled by
 * the system C compiler ($CC or cc): the descriptor (runtime/artifact.h), the typed API of
 * codegen.h plus NAME_run_device, and the tables of runtime/cuda_rt.h, with the PTX, the cubin
 * and the weights pulled in by the assembler's .incbin from temporary files (so a large model
 * never becomes a large C initializer). The object is then linked with the artifact runtime
 * archive by kl_codegen_link_shared like a CPU artifact, and needs only libc at run time (the
 * driver is opened with dlopen when a context is created). The generated C declares the few
 * types it uses itself, with exactly the layouts of artifact.h and cuda_rt.h, so that it
 * compiles without kiln's headers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../runtime/cuda_rt.h"
#include "../codegen_internal.h"
#include "cuda.h"

#ifndef KL_VERSION
#define KL_VERSION "unknown"
#endif

/* A C string literal of any bytes. */
static void put_c_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p >= 0x20 && *p < 0x7f && *p != '?')
      fputc(*p, f);
    else
      fprintf(f, "\\%03o", *p);
  }
  fputc('"', f);
}

/* Writes bytes to a new temporary file; *out_path is malloc'd. */
static kl_status write_blob(const char *stem, const void *data, size_t size, char **out_path) {
  int fd = -1;
  KL_RETURN_IF_ERROR(kl_codegen_temp_file(stem, ".bin", out_path, &fd));
  const unsigned char *p = data;
  size_t left = size;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      kl_status s = kl_status_create(KL_ERR_IO, "%s: cannot write: %s", *out_path,
                                     strerror(errno));
      close(fd);
      return s;
    }
    p += w;
    left -= (size_t)w;
  }
  if (close(fd) != 0)
    return kl_status_create(KL_ERR_IO, "%s: cannot write: %s", *out_path, strerror(errno));
  return NULL;
}

/* An .incbin of path as global hidden symbol sym (followed by a NUL byte). */
static kl_status put_incbin(FILE *f, const char *sym, const char *path) {
  if (strpbrk(path, "\n\r"))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "the temporary directory's path holds a line break");
  fprintf(f,
          "__asm__(\".section .rodata\\n.balign 256\\n.globl %s\\n.hidden %s\\n%s:\\n"
          ".incbin \\\"",
          sym, sym, sym);
  for (const char *p = path; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\\\\\%c", *p);
    else
      fputc(*p, f);
  }
  fprintf(f, "\\\"\\n.byte 0\\n.previous\\n\");\nextern const unsigned char %s[];\n", sym);
  return NULL;
}

static void put_tensor_infos(FILE *f, const char *kind, const kl_ir_value *const *vals, int n,
                             char *const *c_names) {
  for (int i = 0; i < n; i++) {
    const kl_ir_type *t = &vals[i]->type;
    fprintf(f, "static const int64_t %s_shape%d[] = {", kind, i);
    for (int k = 0; k < t->rank; k++)
      fprintf(f, "%s%lldLL", k ? ", " : "", (long long)t->dims[k].size);
    fprintf(f, "%s};\n", t->rank ? "" : "0");
  }
  fprintf(f, "static const kl_artifact_tensor_info %s_info[] = {\n", kind);
  for (int i = 0; i < n; i++) {
    const kl_ir_type *t = &vals[i]->type;
    int64_t numel = 1;
    for (int k = 0; k < t->rank; k++)
      numel *= t->dims[k].size;
    fputs("  {", f);
    put_c_string(f, vals[i]->name);
    fputs(", ", f);
    put_c_string(f, c_names[i]);
    fprintf(f, ", %d, %d, %s_shape%d, %lluULL},\n", (int)t->dtype, t->rank, kind, i,
            (unsigned long long)(numel * (int64_t)kl_dtype_size(t->dtype)));
  }
  if (n == 0)
    fputs("  {0, 0, 0, 0, 0, 0},\n", f);
  fputs("};\n", f);
}

static const char host_types[] =
    "#include <stdint.h>\n"
    "#include <stddef.h>\n"
    "/* The layouts of kiln's runtime/artifact.h and runtime/cuda_rt.h. */\n"
    "typedef struct kl_artifact_tensor_info { const char *name; const char *c_name;\n"
    "  int32_t dtype; int32_t rank; const int64_t *shape; uint64_t nbytes; }\n"
    "  kl_artifact_tensor_info;\n"
    "typedef struct kl_artifact_options { uint32_t struct_size; int32_t n_threads;\n"
    "  int32_t device; void *stream; } kl_artifact_options;\n"
    "typedef struct kl_artifact_descriptor { uint32_t magic; uint32_t abi_version;\n"
    "  const char *name; const char *kiln_version; int32_t target; int32_t n_inputs;\n"
    "  int32_t n_outputs; int32_t reserved; const kl_artifact_tensor_info *inputs;\n"
    "  const kl_artifact_tensor_info *outputs; uint64_t workspace_size; uint64_t weights_size;\n"
    "  int (*create)(const kl_artifact_options *, void **);\n"
    "  int (*run)(void *, const void *const *, void *const *, uint32_t);\n"
    "  void (*destroy)(void *); int (*set_threads)(void *, int32_t);\n"
    "  const char *(*error_message)(const void *); const char *(*status_message)(int);\n"
    "} kl_artifact_descriptor;\n"
    "typedef struct kl_cuda_arg { int64_t kind, index, offset; } kl_cuda_arg;\n"
    "typedef struct kl_cuda_launch { const char *kernel; int64_t grid[3]; int64_t block[3];\n"
    "  int64_t shared_bytes; int64_t n_args; const kl_cuda_arg *args; const char *what; }\n"
    "  kl_cuda_launch;\n"
    "typedef struct kl_cuda_model { const kl_artifact_descriptor *desc; const char *ptx;\n"
    "  const unsigned char *cubin; uint64_t cubin_size; int64_t cubin_arch;\n"
    "  const unsigned char *weights; uint64_t weights_size; uint64_t workspace_size;\n"
    "  int64_t n_launches; const kl_cuda_launch *launches; } kl_cuda_model;\n"
    "int kl_cuda_create(const kl_cuda_model *, const kl_artifact_options *, void **);\n"
    "int kl_cuda_create_n(const kl_cuda_model *, int32_t, void **);\n"
    "int kl_cuda_run(void *, const void *const *, void *const *, uint32_t);\n"
    "int kl_cuda_set_threads(void *, int32_t);\n"
    "void kl_cuda_destroy(void *);\n"
    "const char *kl_cuda_error_message(const void *);\n"
    "const char *kl_cuda_status_message(int);\n\n";

static kl_status write_host(const char *path, const kl_ir_graph *g, const char *name,
                            const kl_cuda_program *p, int arch, const char *ptx_path,
                            const char *cubin_path, size_t cubin_size, const char *weights_path) {
  FILE *f = fopen(path, "w");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
  char **c_names = NULL;
  int n_names = 0;
  kl_status s = kl_codegen_io_names(g, &c_names, &n_names);
  if (s) {
    fclose(f);
    return s;
  }
  const kl_ir_block *top = g->top;
  fprintf(f, "/* The host part of the CUDA model %s (generated by kiln). */\n", name);
  fputs(host_types, f);
  if (!s)
    s = put_incbin(f, "kl_cuda_ptx_blob", ptx_path);
  if (!s)
    s = put_incbin(f, "kl_cuda_cubin_blob", cubin_path);
  if (!s && p->weights_size)
    s = put_incbin(f, "kl_cuda_weights_blob", weights_path);
  if (!s) {
    put_tensor_infos(f, "in", (const kl_ir_value *const *)top->params, top->n_params, c_names);
    put_tensor_infos(f, "out", (const kl_ir_value *const *)top->returns, top->n_returns,
                     c_names + top->n_params);
    for (int i = 0; i < p->n_launches; i++) {
      const kl_cuda_emit_launch *l = &p->launches[i];
      fprintf(f, "static const kl_cuda_arg args%d[] = {", i);
      for (int a = 0; a < l->n_args; a++)
        fprintf(f, "%s{%d, %lld, %lld}", a ? ", " : "", l->args[a].kind,
                (long long)l->args[a].index, (long long)l->args[a].offset);
      fprintf(f, "%s};\n", l->n_args ? "" : "{0, 0, 0}");
    }
    fputs("static const kl_cuda_launch launches[] = {\n", f);
    for (int i = 0; i < p->n_launches; i++) {
      const kl_cuda_emit_launch *l = &p->launches[i];
      fprintf(f, "  {\"%s\", {%lld, %lld, %lld}, {%lld, %lld, %lld}, %lld, %d, args%d, ",
              l->kernel, (long long)l->grid[0], (long long)l->grid[1], (long long)l->grid[2],
              (long long)l->block[0], (long long)l->block[1], (long long)l->block[2],
              (long long)l->shared_bytes, l->n_args, i);
      put_c_string(f, l->what);
      fputs("},\n", f);
    }
    if (p->n_launches == 0)
      fputs("  {0, {0, 0, 0}, {0, 0, 0}, 0, 0, 0, 0},\n", f);
    fputs("};\n", f);
    fprintf(f, "extern const kl_artifact_descriptor kiln_model_%s;\n", name);
    fprintf(f,
            "static const kl_cuda_model model = {&kiln_model_%s, (const char *)kl_cuda_ptx_blob,\n"
            "  kl_cuda_cubin_blob, %lluULL, %d, %s, %lluULL, %lluULL, %d, launches};\n",
            name, (unsigned long long)cubin_size, arch,
            p->weights_size ? "kl_cuda_weights_blob" : "0",
            (unsigned long long)p->weights_size, (unsigned long long)p->workspace_size,
            p->n_launches);
    fprintf(f,
            "static int d_create(const kl_artifact_options *o, void **c) {\n"
            "  return kl_cuda_create(&model, o, c);\n}\n"
            "const kl_artifact_descriptor kiln_model_%s = {0x%xu, %uu, \"%s\", ",
            name, KL_ARTIFACT_MAGIC, KL_ARTIFACT_ABI_VERSION, name);
    put_c_string(f, KL_VERSION);
    fprintf(f,
            ", %d, %d, %d, 0, in_info, out_info, %lluULL, %lluULL, d_create, kl_cuda_run,\n"
            "  kl_cuda_destroy, kl_cuda_set_threads, kl_cuda_error_message,\n"
            "  kl_cuda_status_message};\n",
            KL_ARTIFACT_TARGET_CUDA, top->n_params, top->n_returns,
            (unsigned long long)p->workspace_size, (unsigned long long)p->weights_size);
    fprintf(f,
            "typedef struct %s_ctx %s_ctx;\n"
            "int %s_create(%s_ctx **c, int n_threads) {\n"
            "  return kl_cuda_create_n(&model, n_threads, (void **)c);\n}\n"
            "int %s_create_with(%s_ctx **c, const kl_artifact_options *o) {\n"
            "  return kl_cuda_create(&model, o, (void **)c);\n}\n"
            "int %s_run(%s_ctx *c, const void *in, void *out) {\n"
            "  return kl_cuda_run(c, (const void *const *)in, (void *const *)out, 0);\n}\n"
            "int %s_run_device(%s_ctx *c, const void *in, void *out) {\n"
            "  return kl_cuda_run(c, (const void *const *)in, (void *const *)out, %uu);\n}\n"
            "int %s_set_threads(%s_ctx *c, int n) { return kl_cuda_set_threads(c, n); }\n"
            "void %s_destroy(%s_ctx *c) { kl_cuda_destroy(c); }\n"
            "const char *%s_error_message(const %s_ctx *c) { return kl_cuda_error_message(c); }\n"
            "const char *%s_status_message(int code) { return kl_cuda_status_message(code); }\n",
            name, name, name, name, name, name, name, name, name, name,
            KL_ARTIFACT_RUN_DEVICE_POINTERS, name, name, name, name, name, name, name);
  }
  kl_codegen_free_names(c_names, n_names);
  if ((ferror(f) | (fclose(f) != 0)) && !s)
    s = kl_status_create(KL_ERR_IO, "%s: cannot write", path);
  return s;
}

/* Adds NAME_run_device to the header kl_codegen_write_header_sized wrote. */
static kl_status add_run_device(const char *header_path, const char *name) {
  FILE *f = fopen(header_path, "rb");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot read back: %s", header_path, strerror(errno));
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap ? 2 * cap : 16384;
      text = realloc(text, cap + 1);
      if (!text)
        kl_fatal_oom();
    }
    size_t got = fread(text + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  fclose(f);
  text[len] = '\0';
  const char *marker = "#ifdef __cplusplus\n}\n#endif";
  char *at = NULL;
  for (char *p = strstr(text, marker); p; p = strstr(p + 1, marker))
    at = p;
  if (!at) {
    free(text);
    return kl_status_create(KL_ERR_INTERNAL, "%s: unexpected header layout", header_path);
  }
  f = fopen(header_path, "wb");
  if (!f) {
    free(text);
    return kl_status_create(KL_ERR_IO, "%s: cannot write: %s", header_path, strerror(errno));
  }
  fwrite(text, 1, (size_t)(at - text), f);
  fprintf(f,
          "/* CUDA: like %s_run with device pointers (no copies); runs on the context's stream\n"
          " * and synchronizes. */\n"
          "int %s_run_device(%s_ctx *ctx, const %s_inputs *in, %s_outputs *out);\n\n",
          name, name, name, name, name);
  fputs(at, f);
  free(text);
  if (ferror(f) | (fclose(f) != 0))
    return kl_status_create(KL_ERR_IO, "%s: cannot write", header_path);
  return NULL;
}

/* Best effort: the files are an aid, so a failure to write them is not an error. */
static void keep_program(const char *path, const kl_cuda_program *p) {
  FILE *f = fopen(path, "w");
  if (f) {
    fwrite(p->source, 1, p->source_len, f);
    fclose(f);
  }
  size_t n = strlen(path) + 16;
  char *other = malloc(n);
  if (!other)
    kl_fatal_oom();
  snprintf(other, n, "%s.launches", path);
  if ((f = fopen(other, "w"))) {
    fprintf(f, "workspace %llu weights %llu launches %d\n", (unsigned long long)p->workspace_size,
            (unsigned long long)p->weights_size, p->n_launches);
    for (int i = 0; i < p->n_launches; i++) {
      const kl_cuda_emit_launch *l = &p->launches[i];
      fprintf(f, "%s %lld %lld %lld %lld %lld %lld %lld %d", l->kernel, (long long)l->grid[0],
              (long long)l->grid[1], (long long)l->grid[2], (long long)l->block[0],
              (long long)l->block[1], (long long)l->block[2], (long long)l->shared_bytes,
              l->n_args);
      for (int a = 0; a < l->n_args; a++)
        fprintf(f, " %d:%lld:%lld", l->args[a].kind, (long long)l->args[a].index,
                (long long)l->args[a].offset);
      fputc('\n', f);
    }
    fclose(f);
  }
  snprintf(other, n, "%s.weights", path);
  if ((f = fopen(other, "wb"))) {
    if (p->weights_size)
      fwrite(p->weights, 1, p->weights_size, f);
    fclose(f);
  }
  free(other);
}

kl_status kl_codegen_cuda(const kl_ir_graph *g, const kl_compile_options *o, const char *so_path,
                          const char *header_path) {
  const char *name = o && o->name ? o->name : "net";
  if (!kl_codegen_valid_model_name(name))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "'%s' is not a valid model name", name);
  const char *arch = o && o->cuda_arch ? o->cuda_arch : "sm_80";
  int arch_num = kl_cuda_arch_number(arch);
  if (arch_num < 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "--arch '%s' is not a CUDA architecture (sm_80, sm_90, ...)", arch);
  if (o && o->emit_obj_path && !so_path)
    return kl_status_create(KL_ERR_UNSUPPORTED, "--target cuda writes a library (-o LIB.so), "
                                                "not an object alone");
  if (!so_path)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "compile: nothing to write");
  kl_compile_options opts = {0};
  if (o)
    opts = *o;
  opts.name = name;
  if (opts.progress)
    opts.progress(opts.progress_ctx, "lower", 0, 1);
  kl_cuda_program p;
  KL_RETURN_IF_ERROR(kl_cuda_emit(g, &p));
  if (opts.progress)
    opts.progress(opts.progress_ctx, "emit", 0, 1);
  char *ptx = NULL;
  unsigned char *cubin = NULL;
  size_t cubin_size = 0;
  char *ptx_path = NULL, *cubin_path = NULL, *weights_path = NULL, *host_path = NULL,
       *obj_path = NULL;
  /* $KILN_CUDA_KEEP_SOURCE: where to keep the generated CUDA C, to read or to run elsewhere
   * (tests/cuda/emulate.py): PATH gets the source, PATH.launches the launch table as text and
   * PATH.weights the weight blob. */
  const char *keep = getenv("KILN_CUDA_KEEP_SOURCE");
  if (keep && *keep)
    keep_program(keep, &p);
  kl_status s = kl_cuda_nvrtc_compile(p.source, arch, &ptx, &cubin, &cubin_size);
  if (!s)
    s = write_blob("kiln-cuda-ptx", ptx, strlen(ptx), &ptx_path);
  if (!s)
    s = write_blob("kiln-cuda-cubin", cubin, cubin_size, &cubin_path);
  if (!s && p.weights_size)
    s = write_blob("kiln-cuda-weights", p.weights, p.weights_size, &weights_path);
  if (!s)
    s = kl_codegen_temp_file("kiln-cuda-host", ".c", &host_path, NULL);
  if (!s)
    s = write_host(host_path, g, name, &p, arch_num, ptx_path, cubin_path, cubin_size,
                   weights_path);
  if (!s)
    s = kl_codegen_temp_file("kiln-cuda-host", ".o", &obj_path, NULL);
  if (!s) {
    if (opts.progress)
      opts.progress(opts.progress_ctx, "link", 0, 1);
    const char *cc = getenv("CC");
    if (!cc || !*cc)
      cc = "cc";
    const char *argv[] = {cc, "-c", "-fPIC", "-O1", "-w", "-o", obj_path, host_path, NULL};
    s = kl_status_annotate(kl_codegen_run_program(argv), "compiling the CUDA model's host code");
  }
  if (!s) {
    s = kl_codegen_link_shared(obj_path, &opts, so_path);
    if (s)
      unlink(so_path);
  }
  if (!s && header_path) {
    s = kl_codegen_write_header_sized(g, &opts, p.workspace_size, header_path);
    if (!s)
      s = add_run_device(header_path, name);
  }
  if (opts.emit_obj_path && !s) {
    /* --emit-obj: keep the host object too. */
    const char *argv[] = {"cp", obj_path, opts.emit_obj_path, NULL};
    s = kl_codegen_run_program(argv);
  }
  char *paths[] = {ptx_path, cubin_path, weights_path, host_path, obj_path};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    if (paths[i]) {
      unlink(paths[i]);
      free(paths[i]);
    }
  free(ptx);
  free(cubin);
  kl_cuda_program_free(&p);
  return s;
}
