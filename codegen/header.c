/* The typed C header of a compiled model (net.h for --name net).
 *
 * The header is plain C99 (it compiles with -std=c99 -pedantic -Wall -Wextra and as C++): the
 * input and output structs hold one typed pointer per tensor in descriptor order, each with a
 * comment giving the model's own name for it and its type; then the status codes, the sizes and
 * the entry points of codegen.h. Names taken from the model appear only inside those comments,
 * escaped so that no byte sequence ends the comment, opens another, splices a line or leaves the
 * printable ASCII range.
 *
 * NET_WORKSPACE_SIZE is what the backend put into the descriptor; it is read back from the
 * emitted object (kl_artifact_peek) rather than recomputed, so the header cannot disagree with
 * the library. kl_compile passes it in from the object it already has; the public
 * kl_codegen_write_header emits an object to a temporary file to learn it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "codegen_internal.h"
#include "runtime/artifact_load.h"

static const char *c_type(kl_dtype dt) {
  switch (dt) {
  case KL_F32: return "float";
  case KL_F64: return "double";
  case KL_F16:
  case KL_BF16: return "uint16_t";
  case KL_I8: return "int8_t";
  case KL_U8:
  case KL_BOOL: return "uint8_t";
  case KL_I32: return "int32_t";
  case KL_I64: return "int64_t";
  default: return NULL;
  }
}

/* Writes s so that it is harmless inside a C comment: bytes outside printable ASCII as \xNN,
 * "*" before "/" and "/" before "*" broken with a backslash, and "??" (a trigraph start) as
 * "?\?". */
static void put_comment_text(FILE *f, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if (c < 0x20 || c >= 0x7f || c == '\\')
      fprintf(f, "\\x%02x", c);
    else if ((c == '*' && p[1] == '/') || (c == '/' && p[1] == '*') || (c == '?' && p[1] == '?'))
      fprintf(f, "%c\\", c);
    else
      fputc(c, f);
  }
}

static void put_upper(FILE *f, const char *s) {
  for (; *s; s++)
    fputc(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s, f);
}

static kl_status check_value(const kl_ir_graph *g, const kl_ir_value *v, const char *what,
                             int index) {
  if (!c_type(v->type.dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED, "header: %s %d ('%s') has an unknown dtype", what,
                            index, v->name);
  if (!kl_ir_type_is_static(&v->type)) {
    char type[256];
    kl_ir_type_format(g, &v->type, type, sizeof type);
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "header: %s %d ('%s') has the non-static type %s; compiled models "
                            "need static shapes",
                            what, index, v->name, type);
  }
  return NULL;
}

/* One struct of pointers. */
static void put_struct(FILE *f, const kl_ir_graph *g, const char *name, const char *kind,
                       kl_ir_value *const *values, int n, char *const *fields, bool is_const) {
  fprintf(f, "/* The %s, in the order of the descriptor's %s array. */\n", kind, kind);
  fprintf(f, "typedef struct %s_%s {\n", name, kind);
  if (n == 0)
    fprintf(f, "  const void *reserved_; /* the model has no %s */\n", kind);
  for (int i = 0; i < n; i++) {
    char type[512];
    kl_ir_type_format(g, &values[i]->type, type, sizeof type);
    int64_t numel = 0;
    kl_ir_type_numel(&values[i]->type, &numel);
    fprintf(f, "  %s%s *%s; /* ", is_const ? "const " : "", c_type(values[i]->type.dtype),
            fields[i]);
    put_comment_text(f, values[i]->name);
    fputs(": ", f);
    put_comment_text(f, type);
    fprintf(f, ", %lld elements */\n", (long long)numel);
  }
  fprintf(f, "} %s_%s;\n\n", name, kind);
}

static const struct {
  const char *suffix;
  int code;
  const char *meaning;
} status_codes[] = {
    {"OK", KL_ARTIFACT_OK, "success"},
    {"ERR_INVALID_ARGUMENT", KL_ARTIFACT_ERR_INVALID_ARGUMENT,
     "a NULL pointer, a bad thread count or device index"},
    {"ERR_OUT_OF_MEMORY", KL_ARTIFACT_ERR_OUT_OF_MEMORY, "the workspace or a thread could not be had"},
    {"ERR_RUNTIME", KL_ARTIFACT_ERR_RUNTIME, "a data-dependent error (an index out of range)"},
    {"ERR_NO_DEVICE", KL_ARTIFACT_ERR_NO_DEVICE, "no GPU driver or device"},
    {"ERR_UNSUPPORTED", KL_ARTIFACT_ERR_UNSUPPORTED, "the request is not supported by this model"},
    {"ERR_INTERNAL", KL_ARTIFACT_ERR_INTERNAL, "a bug in kiln"},
};

static void put_header(FILE *f, const kl_ir_graph *g, const char *name, uint64_t workspace_size,
                       char *const *fields) {
  const kl_ir_block *top = g->top;
  fprintf(f,
          "/* %s.h: the C API of the model compiled as lib%s.so (written by kiln %s; do not edit).\n"
          " *\n"
          " * One %s_ctx runs one call at a time; give each thread that runs the model its own\n"
          " * context. Input and output buffers are the caller's, of the sizes in the comments\n"
          " * (elements of the pointed-to type, dense, row-major). */\n",
          name, name, KL_VERSION, name);
  fputs("#ifndef KILN_MODEL_", f);
  put_upper(f, name);
  fputs("_H\n#define KILN_MODEL_", f);
  put_upper(f, name);
  fputs("_H\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", f);

  fputs("/* Status codes returned by the functions below. */\n", f);
  for (size_t i = 0; i < sizeof status_codes / sizeof status_codes[0]; i++) {
    fputs("#define ", f);
    put_upper(f, name);
    fprintf(f, "_%s %d /* %s */\n", status_codes[i].suffix, status_codes[i].code,
            status_codes[i].meaning);
  }
  fputs("\n#define ", f);
  put_upper(f, name);
  fprintf(f, "_NUM_INPUTS %d\n#define ", top->n_params);
  put_upper(f, name);
  fprintf(f, "_NUM_OUTPUTS %d\n", top->n_returns);
  fputs("/* Bytes of workspace each context allocates when it is created. */\n#define ", f);
  put_upper(f, name);
  fprintf(f, "_WORKSPACE_SIZE UINT64_C(%llu)\n\n", (unsigned long long)workspace_size);

  fprintf(f, "typedef struct %s_ctx %s_ctx;\n\n", name, name);
  put_struct(f, g, name, "inputs", top->params, top->n_params, fields, true);
  put_struct(f, g, name, "outputs", top->returns, top->n_returns, fields + top->n_params, false);

  fprintf(f,
          "/* Options of %s_create_with; set struct_size to sizeof(%s_options). */\n"
          "typedef struct %s_options {\n"
          "  uint32_t struct_size;\n"
          "  int32_t n_threads; /* 0: one; > 0: that many workers in total */\n"
          "  int32_t device;    /* ignored on CPU */\n"
          "  void *stream;      /* ignored on CPU */\n"
          "} %s_options;\n\n",
          name, name, name, name);
  fprintf(f,
          "/* Creates a context (allocating its workspace and threads); n_threads 0 means one.\n"
          " * On failure *out_ctx is NULL and the code says why. */\n"
          "int %s_create(%s_ctx **out_ctx, int n_threads);\n"
          "int %s_create_with(%s_ctx **out_ctx, const %s_options *opts);\n"
          "/* Runs the model once; allocates nothing. */\n"
          "int %s_run(%s_ctx *ctx, const %s_inputs *in, %s_outputs *out);\n"
          "int %s_set_threads(%s_ctx *ctx, int n_threads);\n"
          "void %s_destroy(%s_ctx *ctx);\n"
          "/* The context's last failure (\"\" after a success). */\n"
          "const char *%s_error_message(const %s_ctx *ctx);\n"
          "/* A constant text for a status code. */\n"
          "const char *%s_status_message(int code);\n\n",
          name, name, name, name, name, name, name, name, name, name, name, name, name, name, name,
          name);
  fprintf(f,
          "/* The generic descriptor (kiln's runtime/artifact.h), for tools that drive any model. */\n"
          "struct kl_artifact_descriptor;\n"
          "extern const struct kl_artifact_descriptor %s%s;\n\n",
          KL_ARTIFACT_SYMBOL_PREFIX, name);
  fputs("#ifdef __cplusplus\n}\n#endif\n\n#endif\n", f);
}

kl_status kl_codegen_write_header_sized(const kl_ir_graph *g, const kl_compile_options *o,
                                        uint64_t workspace_size, const char *header_path) {
  const char *name = o && o->name ? o->name : "net";
  if (!kl_codegen_valid_model_name(name))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "header: '%s' is not a valid model name",
                            name);
  const kl_ir_block *top = g->top;
  for (int i = 0; i < top->n_params; i++)
    KL_RETURN_IF_ERROR(check_value(g, top->params[i], "input", i));
  for (int i = 0; i < top->n_returns; i++)
    KL_RETURN_IF_ERROR(check_value(g, top->returns[i], "output", i));
  char **fields = NULL;
  int n_fields = 0;
  KL_RETURN_IF_ERROR(kl_codegen_io_names(g, &fields, &n_fields));
  FILE *f = fopen(header_path, "w");
  if (!f) {
    kl_status s = kl_status_create(KL_ERR_IO, "%s: cannot open for writing: %s", header_path,
                                   strerror(errno));
    kl_codegen_free_names(fields, n_fields);
    return s;
  }
  put_header(f, g, name, workspace_size, fields);
  kl_codegen_free_names(fields, n_fields);
  if (ferror(f) | (fclose(f) != 0)) {
    unlink(header_path);
    return kl_status_create(KL_ERR_IO, "%s: cannot write", header_path);
  }
  return NULL;
}

kl_status kl_codegen_write_header(const kl_ir_graph *g, const kl_compile_options *o,
                                  const char *header_path) {
  /* NET_WORKSPACE_SIZE comes from the descriptor of a freshly emitted object. */
  char *obj = NULL;
  KL_RETURN_IF_ERROR(kl_codegen_temp_file("kiln-header", ".o", &obj, NULL));
  kl_compile_options quiet = {0};
  if (o)
    quiet = *o;
  quiet.emit_llvm_path = NULL;
  quiet.emit_obj_path = NULL;
  quiet.time_report = NULL;
  quiet.progress = NULL;
  kl_status s = kl_codegen_llvm_object(g, &quiet, obj);
  kl_artifact_file_info info;
  if (!s)
    s = kl_artifact_peek(obj, &info);
  unlink(obj);
  free(obj);
  if (!s)
    s = kl_codegen_write_header_sized(g, o, info.workspace_size, header_path);
  return s;
}
