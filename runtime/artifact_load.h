/* Loading compiled artifacts (.so files written by `kiln compile`) and reading their descriptor.
 *
 * kl_artifact_open finds the one dynamic symbol whose name starts with "kiln_model_" by reading
 * the file's ELF symbol table (every offset checked: the file is untrusted), dlopens the file
 * and checks the descriptor's magic, ABI version and counts before handing it out.
 *
 * kl_artifact_peek reads the same descriptor's plain fields straight from the file bytes
 * without loading it, for an artifact or object of any 64-bit ELF target (an aarch64 object on
 * an x86-64 host); the header writer takes NET_WORKSPACE_SIZE from there. */
#ifndef KL_RUNTIME_ARTIFACT_LOAD_H
#define KL_RUNTIME_ARTIFACT_LOAD_H

#include <stdint.h>

#include "artifact.h"
#include "status.h"

typedef struct kl_artifact_handle kl_artifact_handle;

/* Opens the artifact at path (RTLD_NOW | RTLD_LOCAL). *out_desc points into the loaded library
 * and lives until kl_artifact_close. Errors: not a regular file, not ELF, no descriptor symbol,
 * two descriptor symbols, dlopen failure (its dlerror text), bad magic, wrong ABI version, bad
 * counts. */
kl_status kl_artifact_open(const char *path, kl_artifact_handle **out_handle,
                           const kl_artifact_descriptor **out_desc);
void kl_artifact_close(kl_artifact_handle *handle); /* NULL is fine */

/* The descriptor's plain fields as stored in a file. */
typedef struct kl_artifact_file_info {
  char symbol[128];  /* "kiln_model_net" */
  uint16_t machine;  /* ELF e_machine: EM_X86_64, EM_AARCH64, ... */
  int type;          /* ELF e_type: ET_DYN for an artifact, ET_REL for an object */
  uint32_t magic, abi_version;
  int32_t target, n_inputs, n_outputs;
  uint64_t workspace_size, weights_size;
} kl_artifact_file_info;

/* Reads the descriptor of an ELF64 shared object (.dynsym) or relocatable object (.symtab)
 * without loading it. The same errors as kl_artifact_open where they apply. */
kl_status kl_artifact_peek(const char *path, kl_artifact_file_info *out_info);

#endif
