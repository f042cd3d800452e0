/* What the files around the backend share (codegen/link.c, header.c, compile.c): temporary
 * files, running the system compiler without a shell, and target checks. */
#ifndef KL_CODEGEN_CODEGEN_INTERNAL_H
#define KL_CODEGEN_CODEGEN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen.h"

/* The artifact runtime archive linking uses: $KILN_RUNTIME_ARCHIVE, the one built next to this
 * kiln when it exists, else the installed one (link.c). */
const char *kl_codegen_runtime_archive(void);
/* True for NULL, "" and a Linux triple of the host's architecture. */
bool kl_codegen_triple_is_host(const char *triple);
/* Creates $TMPDIR/STEM-XXXXXXSUFFIX (default /tmp); *out_path is malloc'd. With out_fd the
 * open descriptor is returned, else closed. */
kl_status kl_codegen_temp_file(const char *stem, const char *suffix, char **out_path, int *out_fd);
/* Runs argv (NULL-terminated, argv[0] looked up in PATH) with fork/execvp and waits; a non-zero
 * exit is an error holding the command and what it printed (stdout and stderr). */
kl_status kl_codegen_run_program(const char *const *argv);

/* The header with NET_WORKSPACE_SIZE given (header.c); kl_codegen_write_header reads it from
 * a freshly emitted object instead. */
kl_status kl_codegen_write_header_sized(const kl_ir_graph *g, const kl_compile_options *o,
                                        uint64_t workspace_size, const char *header_path);

#endif
