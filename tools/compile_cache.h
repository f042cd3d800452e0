/* Compiling a model file to an artifact from the command line, directly (`kiln compile`) or
 * through the content-addressed compile cache (`kiln run --compiled`, `kiln bench`).
 *
 * The cache lives in $XDG_CACHE_HOME/kiln (default ~/.cache/kiln) unless a directory is given.
 * An entry is named by a 64-bit FNV-1a hash of everything that decides the artifact's bytes:
 * the model file's bytes, the name and the .npy file's bytes of each --bind, KL_VERSION, the kiln executable's and the artifact runtime archive's
 * bytes, the target triple, CPU and features (the host CPU's flags when those are left to the
 * host), the -O level and the model name. KEY.so sits next to KEY.sum, which records the .so's
 * size and checksum; both are written under temporary names and renamed into place, and an
 * entry whose .so does not match its .sum (truncated, corrupt, half written) is deleted and
 * rebuilt before anything loads it. */
#ifndef KL_TOOLS_COMPILE_CACHE_H
#define KL_TOOLS_COMPILE_CACHE_H

#include <stdbool.h>
#include <stdio.h>

#include "codegen/codegen.h"
#include "kiln_internal.h"
#include "runtime/status.h"

typedef struct kl_tool_compile {
  const char *model_path;
  const kl_cli_bind *binds;  /* graph inputs bound to .npy values before the passes (--bind) */
  int n_binds;
  int level;                 /* 0..3: the graph pass pipeline and LLVM's level */
  kl_compile_options codegen; /* name, triple, cpu, features, outputs; opt_level is set from level */
  FILE *time_passes;          /* per-pass and per-stage times, or NULL */
  bool progress;              /* show progress on stderr (the caller checks it is a terminal) */
} kl_tool_compile;

/* Loads the model, binds c->binds, runs the pass pipeline of c->level and kl_compile's it. A
 * graph whose shapes still depend on input values gets an error naming those inputs. */
kl_status kl_tool_compile_model(const kl_tool_compile *c, const char *so_path,
                                const char *header_path);

/* The artifact for c from the cache, compiling it on a miss; *out_so_path is malloc'd.
 * cache_dir NULL: the default. With verbose, says "compiled" or "compiled (cached)" on stderr. */
kl_status kl_compile_cache_get(const kl_tool_compile *c, const char *cache_dir, bool verbose,
                               char **out_so_path);

/* The 64-bit FNV-1a hash, continued from h (start with KL_FNV_OFFSET). */
#define KL_FNV_OFFSET 0xcbf29ce484222325ull
unsigned long long kl_fnv1a(unsigned long long h, const void *data, size_t n);

#endif
