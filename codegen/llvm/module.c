/* kl_codegen_llvm_object: a graph to an object file, through the LLVM C API.
 *
 * The module holds the constant tables lower.c fills (tensor table, weights, parameter blocks),
 * the body, and the artifact's ABI: the descriptor kiln_model_<name> and the typed functions
 * <name>_create ... <name>_status_message, each a one-call forward into the artifact runtime
 * (runtime/artifact_rt.c, linked from the runtime archive). Only those have default
 * visibility; everything generated is private, runtime symbols are hidden. The module is
 * verified, optimized with LLVM's default<On> pipeline for the target machine and emitted as
 * an object (kl_codegen_llvm_object) or handed back as text (kl_codegen_llvm_ir). */
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../codegen_internal.h"
#include "llvm_internal.h"

#ifndef KL_VERSION
#define KL_VERSION "unknown"
#endif

/* ---- constants -------------------------------------------------------------------------- */

void kl_llvm_name(kl_llvm_lower *L, const char *kind, char *buf, size_t size) {
  snprintf(buf, size, "%s_%s%d", L->name, kind, L->n_names++);
}

static LLVMValueRef private_global(kl_llvm_lower *L, const char *kind, LLVMValueRef init,
                                   unsigned align) {
  char name[96];
  kl_llvm_name(L, kind, name, sizeof name);
  LLVMValueRef g = LLVMAddGlobal(L->m, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  if (align)
    LLVMSetAlignment(g, align);
  return g;
}

LLVMValueRef kl_llvm_const_bytes(kl_llvm_lower *L, const void *data, size_t n, unsigned align) {
  LLVMValueRef init = LLVMConstStringInContext2(L->ctx, (const char *)data, n, 1);
  return private_global(L, "w", init, align);
}

LLVMValueRef kl_llvm_const_string(kl_llvm_lower *L, const char *s) {
  LLVMValueRef init = LLVMConstStringInContext2(L->ctx, s, strlen(s), 0);
  return private_global(L, "s", init, 1);
}

LLVMValueRef kl_llvm_const_i32s(kl_llvm_lower *L, const int32_t *v, int n) {
  LLVMValueRef *elems = malloc(((size_t)n + 1) * sizeof *elems);
  if (!elems)
    kl_fatal_oom();
  for (int i = 0; i < n; i++)
    elems[i] = LLVMConstInt(L->i32, (unsigned long long)(int64_t)v[i], 1);
  LLVMValueRef init = LLVMConstArray2(L->i32, elems, (uint64_t)n);
  free(elems);
  return private_global(L, "i", init, 4);
}

static LLVMValueRef const_i64s(kl_llvm_lower *L, const int64_t *v, size_t n) {
  LLVMValueRef *elems = malloc((n + 1) * sizeof *elems);
  if (!elems)
    kl_fatal_oom();
  for (size_t i = 0; i < n; i++)
    elems[i] = LLVMConstInt(L->i64, (unsigned long long)v[i], 1);
  LLVMValueRef init = LLVMConstArray2(L->i64, elems, n);
  free(elems);
  return private_global(L, "t", init, 8);
}

LLVMValueRef kl_llvm_runtime_fn(kl_llvm_lower *L, const char *symbol, LLVMTypeRef ret,
                                LLVMTypeRef *params, unsigned n_params) {
  LLVMValueRef fn = LLVMGetNamedFunction(L->m, symbol);
  if (fn)
    return fn;
  fn = LLVMAddFunction(L->m, symbol, LLVMFunctionType(ret, params, n_params, 0));
  LLVMSetVisibility(fn, LLVMHiddenVisibility);
  return fn;
}

/* ---- the ABI ------------------------------------------------------------------------------ */

/* An exported (or, with local, internal) function "<name><suffix>" whose body forwards to
 * callee with args: param i of the new function where map[i] >= 0 is that index, else
 * extra[i]. */
static void forward(kl_llvm_lower *L, const char *suffix, bool local, LLVMTypeRef ret,
                    LLVMTypeRef *params, unsigned n_params, LLVMValueRef callee,
                    const int *map, LLVMValueRef *extra, unsigned n_args) {
  char name[128];
  snprintf(name, sizeof name, "%s%s", L->name, suffix);
  LLVMValueRef fn = LLVMAddFunction(L->m, name, LLVMFunctionType(ret, params, n_params, 0));
  if (local)
    LLVMSetLinkage(fn, LLVMInternalLinkage);
  else
    LLVMSetVisibility(fn, LLVMDefaultVisibility);
  LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(L->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(L->b, bb);
  LLVMValueRef args[8];
  for (unsigned i = 0; i < n_args; i++)
    args[i] = map[i] >= 0 ? LLVMGetParam(fn, (unsigned)map[i]) : extra[i];
  LLVMValueRef r = LLVMBuildCall2(L->b, LLVMGlobalGetValueType(callee), callee, args, n_args, "");
  if (LLVMGetTypeKind(ret) == LLVMVoidTypeKind)
    LLVMBuildRetVoid(L->b);
  else
    LLVMBuildRet(L->b, r);
}

/* The kl_artifact_tensor_info array of the inputs (outputs: false) as a private constant. */
static LLVMValueRef tensor_infos(kl_llvm_lower *L, LLVMTypeRef info_type, bool inputs,
                                 char **c_names) {
  const kl_ir_block *top = L->g->top;
  int n = inputs ? top->n_params : top->n_returns;
  LLVMValueRef *elems = malloc(((size_t)n + 1) * sizeof *elems);
  if (!elems)
    kl_fatal_oom();
  for (int i = 0; i < n; i++) {
    const kl_ir_value *v = inputs ? top->params[i] : top->returns[i];
    int64_t shape[KL_MAX_RANK] = {0};
    int64_t numel = 1;
    for (int k = 0; k < v->type.rank; k++) {
      shape[k] = v->type.dims[k].size;
      numel *= shape[k]; /* checked by the memory plan and the tensor table */
    }
    LLVMValueRef fields[6] = {
        kl_llvm_const_string(L, v->name),
        kl_llvm_const_string(L, c_names[i]),
        LLVMConstInt(L->i32, (unsigned long long)v->type.dtype, 0),
        LLVMConstInt(L->i32, (unsigned long long)v->type.rank, 0),
        const_i64s(L, shape, v->type.rank ? (size_t)v->type.rank : 1),
        LLVMConstInt(L->i64, (unsigned long long)(numel * (int64_t)kl_dtype_size(v->type.dtype)),
                     0),
    };
    elems[i] = LLVMConstNamedStruct(info_type, fields, 6);
  }
  LLVMValueRef g = n ? private_global(L, "d", LLVMConstArray2(info_type, elems, (uint64_t)n), 8)
                     : LLVMConstNull(L->ptr);
  free(elems);
  return g;
}

kl_status kl_llvm_emit_abi(kl_llvm_lower *L) {
  const kl_ir_block *top = L->g->top;
  char **c_names = NULL;
  int n_names = 0;
  KL_RETURN_IF_ERROR(kl_codegen_io_names(L->g, &c_names, &n_names));
  if (n_names != top->n_params + top->n_returns) {
    kl_codegen_free_names(c_names, n_names);
    return kl_status_create(KL_ERR_INTERNAL, "kl_codegen_io_names gave %d names for %d values",
                            n_names, top->n_params + top->n_returns);
  }
  LLVMTypeRef p = L->ptr, i32 = L->i32, i64 = L->i64;

  /* The tensor table (kl_art_tensor_desc is all int64) and the weight pointers. */
  size_t row = sizeof(kl_art_tensor_desc) / sizeof(int64_t);
  LLVMValueRef table = L->n_tensors
                           ? const_i64s(L, (const int64_t *)L->tensors, row * (size_t)L->n_tensors)
                           : LLVMConstNull(p);
  LLVMValueRef weights = L->n_weights
                             ? private_global(L, "t", LLVMConstArray2(p, L->weights,
                                                                      (uint64_t)L->n_weights), 8)
                             : LLVMConstNull(p);
  uint64_t workspace = (uint64_t)L->scratch_end;

  /* The descriptor (runtime/artifact.h), created first so the model can point at it. */
  LLVMTypeRef info_fields[6] = {p, p, i32, i32, p, i64};
  LLVMTypeRef info_type = LLVMStructCreateNamed(L->ctx, "kl_artifact_tensor_info");
  LLVMStructSetBody(info_type, info_fields, 6, 0);
  LLVMTypeRef desc_fields[18] = {i32, i32, p, p, i32, i32, i32, i32, p,
                                 p,   i64, i64, p, p, p,   p,   p,   p};
  LLVMTypeRef desc_type = LLVMStructCreateNamed(L->ctx, "kl_artifact_descriptor");
  LLVMStructSetBody(desc_type, desc_fields, 18, 0);
  char desc_name[128];
  snprintf(desc_name, sizeof desc_name, "%s%s", KL_ARTIFACT_SYMBOL_PREFIX, L->name);
  LLVMValueRef desc = LLVMAddGlobal(L->m, desc_type, desc_name);
  LLVMSetGlobalConstant(desc, 1);
  LLVMSetVisibility(desc, LLVMDefaultVisibility);
  LLVMSetAlignment(desc, 8);

  /* The model (runtime/artifact_rt.h's kl_art_model). */
  LLVMValueRef model_init[6] = {desc,
                                table,
                                LLVMConstInt(i64, (unsigned long long)L->n_tensors, 0),
                                weights,
                                LLVMConstInt(i64, workspace, 0),
                                L->body};
  LLVMValueRef model =
      private_global(L, "m", LLVMConstStructInContext(L->ctx, model_init, 6, 0), 8);

  /* Runtime entry points and the typed API forwarding to them. */
  LLVMTypeRef t_create[3] = {p, p, p};
  LLVMValueRef f_create = kl_llvm_runtime_fn(L, "kl_art_create", i32, t_create, 3);
  LLVMTypeRef t_create_n[3] = {p, i32, p};
  LLVMValueRef f_create_n = kl_llvm_runtime_fn(L, "kl_art_create_n", i32, t_create_n, 3);
  LLVMTypeRef t_run[4] = {p, p, p, i32};
  LLVMValueRef f_run = kl_llvm_runtime_fn(L, "kl_art_run", i32, t_run, 4);
  LLVMTypeRef t_threads[2] = {p, i32};
  LLVMValueRef f_threads = kl_llvm_runtime_fn(L, "kl_art_set_threads", i32, t_threads, 2);
  LLVMValueRef f_destroy =
      kl_llvm_runtime_fn(L, "kl_art_destroy", LLVMVoidTypeInContext(L->ctx), &p, 1);
  LLVMValueRef f_error = kl_llvm_runtime_fn(L, "kl_art_error_message", p, &p, 1);
  LLVMValueRef f_status = kl_llvm_runtime_fn(L, "kl_art_status_message", p, &i32, 1);

  LLVMValueRef x3[4] = {model, NULL, NULL, LLVMConstInt(i32, 0, 0)};
  LLVMTypeRef pi[2] = {p, i32}, pp[2] = {p, p}, ppp[3] = {p, p, p};
  forward(L, "_create", false, i32, pi, 2, f_create_n, (int[]){-1, 1, 0}, x3, 3);
  forward(L, "_create_with", false, i32, pp, 2, f_create, (int[]){-1, 1, 0}, x3, 3);
  char dcreate_suffix[32];
  snprintf(dcreate_suffix, sizeof dcreate_suffix, "_fn%d", L->n_names++);
  forward(L, dcreate_suffix, true, i32, pp, 2, f_create, (int[]){-1, 0, 1}, x3, 3);
  char dcreate_name[128];
  snprintf(dcreate_name, sizeof dcreate_name, "%s%s", L->name, dcreate_suffix);
  LLVMValueRef f_dcreate = LLVMGetNamedFunction(L->m, dcreate_name);
  forward(L, "_run", false, i32, ppp, 3, f_run, (int[]){0, 1, 2, -1}, x3, 4);
  forward(L, "_set_threads", false, i32, pi, 2, f_threads, (int[]){0, 1}, x3, 2);
  forward(L, "_destroy", false, LLVMVoidTypeInContext(L->ctx), &p, 1, f_destroy, (int[]){0}, x3,
          1);
  forward(L, "_error_message", false, p, &p, 1, f_error, (int[]){0}, x3, 1);
  forward(L, "_status_message", false, p, &i32, 1, f_status, (int[]){0}, x3, 1);

  LLVMValueRef desc_init[18] = {
      LLVMConstInt(i32, KL_ARTIFACT_MAGIC, 0),
      LLVMConstInt(i32, KL_ARTIFACT_ABI_VERSION, 0),
      kl_llvm_const_string(L, L->name),
      kl_llvm_const_string(L, KL_VERSION),
      LLVMConstInt(i32, KL_ARTIFACT_TARGET_CPU, 0),
      LLVMConstInt(i32, (unsigned long long)top->n_params, 0),
      LLVMConstInt(i32, (unsigned long long)top->n_returns, 0),
      LLVMConstInt(i32, 0, 0),
      tensor_infos(L, info_type, true, c_names),
      tensor_infos(L, info_type, false, c_names + top->n_params),
      LLVMConstInt(i64, workspace, 0),
      LLVMConstInt(i64, L->weights_size, 0),
      f_dcreate,
      f_run,
      f_destroy,
      f_threads,
      f_error,
      f_status,
  };
  LLVMSetInitializer(desc, LLVMConstNamedStruct(desc_type, desc_init, 18));
  kl_codegen_free_names(c_names, n_names);
  return NULL;
}

/* ---- target, optimization, emission --------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void report_time(const kl_compile_options *o, const char *stage, double t0) {
  if (o->time_report)
    fprintf(o->time_report, "  %-10s %10.2f ms\n", stage, now_ms() - t0);
}

static void progress(const kl_compile_options *o, const char *stage, int done, int total) {
  if (o->progress)
    o->progress(o->progress_ctx, stage, done, total);
}

static void init_targets(void) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
}

static kl_status target_machine(const kl_compile_options *o, LLVMTargetMachineRef *out_tm) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_targets);
  bool host = kl_codegen_triple_is_host(o->triple);
  char *triple = o->triple && o->triple[0] ? LLVMNormalizeTargetTriple(o->triple)
                                           : LLVMGetDefaultTargetTriple();
  char *cpu = o->cpu ? LLVMCreateMessage(o->cpu)
                     : host ? LLVMGetHostCPUName() : LLVMCreateMessage("generic");
  /* The host's features only with the host's CPU: --cpu alone (say for a portable build)
   * must not bring in what this machine happens to have. */
  char *features = o->features        ? LLVMCreateMessage(o->features)
                   : host && !o->cpu ? LLVMGetHostCPUFeatures()
                                     : LLVMCreateMessage("");
  LLVMTargetRef target = NULL;
  char *err = NULL;
  kl_status s = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    s = kl_status_create(KL_ERR_UNSUPPORTED, "unknown target triple \"%s\": %s",
                         o->triple ? o->triple : triple, err ? err : "");
  } else {
    LLVMCodeGenOptLevel level = o->opt_level <= 0   ? LLVMCodeGenLevelNone
                                : o->opt_level == 1 ? LLVMCodeGenLevelLess
                                : o->opt_level == 2 ? LLVMCodeGenLevelDefault
                                                    : LLVMCodeGenLevelAggressive;
    *out_tm = LLVMCreateTargetMachine(target, triple, cpu, features, level, LLVMRelocPIC,
                                      LLVMCodeModelDefault);
    if (!*out_tm)
      s = kl_status_create(KL_ERR_UNSUPPORTED, "no target machine for \"%s\" (cpu \"%s\")",
                           triple, cpu);
  }
  LLVMDisposeMessage(err);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return s;
}

/* Frees what build_module made (everything it may have left half-made too). */
static void free_lowering(kl_llvm_lower *L, LLVMTargetMachineRef tm) {
  if (L->b)
    LLVMDisposeBuilder(L->b);
  if (L->m)
    LLVMDisposeModule(L->m);
  if (L->ctx)
    LLVMContextDispose(L->ctx);
  if (tm)
    LLVMDisposeTargetMachine(tm);
  kl_memory_plan_destroy(L->plan);
  free(L->tensors);
  free(L->tid);
  for (int i = 0; i < L->n_weights; i++)
    free(L->weight_owned[i]);
  free(L->weights);
  free(L->weight_src);
  free(L->weight_data);
  free(L->weight_bytes);
  free(L->weight_owned);
  free(L->weight_used);
  free(L->packed_of);
  free(L->packed_with);
}

/* The module of g for o's target: lowered, verified and optimized with LLVM's default<On>
 * pipeline. *L and *out_tm are set even on an error; the caller frees them with free_lowering.
 * fn names the public entry point in the messages about its arguments. */
static kl_status build_module(const kl_ir_graph *g, const kl_compile_options *o, const char *fn,
                              kl_llvm_lower *L, LLVMTargetMachineRef *out_tm) {
  *L = (kl_llvm_lower){.g = g, .o = o};
  *out_tm = NULL;
  if (!g || !o)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: NULL argument", fn);
  const char *name = o->name ? o->name : "net";
  if (!kl_codegen_valid_model_name(name))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "model name \"%s\" is not a usable C identifier", name);
  if (o->target != KL_TARGET_CPU)
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s makes CPU code only", fn);
  if (o->opt_level < 0 || o->opt_level > 3)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "optimization level %d is not 0..3",
                            o->opt_level);
  KL_RETURN_IF_ERROR(target_machine(o, out_tm));
  LLVMTargetMachineRef tm = *out_tm;

  L->name = name;
  L->ctx = LLVMContextCreate();
  L->m = LLVMModuleCreateWithNameInContext(name, L->ctx);
  L->b = LLVMCreateBuilderInContext(L->ctx);
  L->i8 = LLVMInt8TypeInContext(L->ctx);
  L->i32 = LLVMInt32TypeInContext(L->ctx);
  L->i64 = LLVMInt64TypeInContext(L->ctx);
  L->ptr = LLVMPointerTypeInContext(L->ctx, 0);
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(L->m, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(L->m, layout);
  LLVMDisposeTargetData(layout);

  double t0 = now_ms();
  kl_status s = kl_llvm_lower_graph(L);
  if (!s)
    s = kl_llvm_emit_abi(L);
  report_time(o, "lower", t0);
  char *err = NULL;
  if (!s && LLVMVerifyModule(L->m, LLVMReturnStatusAction, &err))
    s = kl_status_create(KL_ERR_INTERNAL, "the generated LLVM module does not verify: %s",
                         err ? err : "");
  LLVMDisposeMessage(err);
  if (!s) {
    progress(o, "optimize", 0, 1);
    t0 = now_ms();
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", o->opt_level);
    LLVMPassBuilderOptionsRef popts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(L->m, pipeline, tm, popts);
    LLVMDisposePassBuilderOptions(popts);
    if (e) {
      char *msg = LLVMGetErrorMessage(e);
      s = kl_status_create(KL_ERR_INTERNAL, "LLVM pipeline %s failed: %s", pipeline, msg);
      LLVMDisposeErrorMessage(msg);
    }
    report_time(o, "optimize", t0);
    if (!s)
      progress(o, "optimize", 1, 1);
  }
  return s;
}

kl_status kl_codegen_llvm_object(const kl_ir_graph *g, const kl_compile_options *o,
                                 const char *obj_path) {
  if (!obj_path)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_codegen_llvm_object: NULL argument");
  kl_llvm_lower L;
  LLVMTargetMachineRef tm;
  kl_status s = build_module(g, o, "kl_codegen_llvm_object", &L, &tm);
  char *err = NULL;
  if (!s && o->emit_llvm_path && LLVMPrintModuleToFile(L.m, o->emit_llvm_path, &err))
    s = kl_status_create(KL_ERR_IO, "cannot write LLVM IR to %s: %s", o->emit_llvm_path,
                         err ? err : "");
  LLVMDisposeMessage(err);
  err = NULL;
  if (!s) {
    progress(o, "emit", 0, 1);
    double t0 = now_ms();
    if (LLVMTargetMachineEmitToFile(tm, L.m, (char *)obj_path, LLVMObjectFile, &err))
      s = kl_status_create(KL_ERR_IO, "cannot write the object %s: %s", obj_path,
                           err ? err : "");
    LLVMDisposeMessage(err);
    report_time(o, "emit", t0);
    if (!s)
      progress(o, "emit", 1, 1);
  }
  free_lowering(&L, tm);
  return s;
}

kl_status kl_codegen_llvm_ir(const kl_ir_graph *g, const kl_compile_options *o,
                             char **out_text, size_t *out_len) {
  if (out_text)
    *out_text = NULL;
  if (out_len)
    *out_len = 0;
  kl_llvm_lower L;
  LLVMTargetMachineRef tm;
  kl_status s = build_module(g, o, "kl_codegen_llvm_ir", &L, &tm);
  if (!s && out_text) {
    char *text = LLVMPrintModuleToString(L.m);
    size_t len = strlen(text);
    *out_text = malloc(len + 1);
    if (!*out_text)
      kl_fatal_oom();
    memcpy(*out_text, text, len + 1);
    LLVMDisposeMessage(text);
    if (out_len)
      *out_len = len;
  }
  free_lowering(&L, tm);
  return s;
}
