/* .kir files: one self-contained file holding a graph and its weights.
 *
 *   header    one 256-byte text line: magic "KILNIR ", format version, section offsets and
 *             sizes, checksum
 *   text      the text IR (ir/text.h), readable with `head`
 *   tensors   a directory of named blobs, then the raw little-endian data of each blob,
 *             every blob aligned to 64 bytes
 *
 * Loading maps the file and borrows weight data from the mapping (no copy); the graph keeps
 * the mapping until it is destroyed. Every offset, size and shape is checked against the file
 * before it is trusted, and loading never runs code. The exact layout is documented in kir.c. */
#ifndef KL_IR_KIR_H
#define KL_IR_KIR_H

#include "ir.h"

#define KL_KIR_VERSION 1

kl_status kl_kir_save(const kl_ir_graph *g, const char *path);
kl_status kl_kir_load(const char *path, kl_ir_graph **out_graph);
/* The same on a buffer the caller keeps alive for the graph's lifetime (tests, fuzzing). */
kl_status kl_kir_load_buffer(const void *data, size_t size, const char *name,
                             kl_ir_graph **out_graph);
/* True when the first bytes of a file are the .kir magic. */
bool kl_kir_is_kir(const void *data, size_t size);

#endif
