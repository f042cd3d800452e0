/* Limits on what an untrusted file may ask for.
 *
 * Every model and data file kiln reads (ONNX, .kir, text IR, .npy) is treated as hostile: each
 * size, depth and count it declares is checked against one of these limits, with
 * overflow-checked arithmetic (runtime/checked.h), before anything is allocated. Crossing one
 * is a KL_ERR_LIMIT status whose message names the limit, the value asked for, the limit, and
 * how to raise it.
 *
 *   limit               default          what it bounds
 *   max_file_bytes      2 GiB - 1        an ONNX file (protobuf's own limit)
 *   max_proto_depth     64               protobuf messages nested in an ONNX file, checked
 *                                        on the wire before unpacking
 *   max_subgraph_depth  32               If/Loop bodies within bodies (ONNX)
 *   max_rank            32               dims of one tensor or type; can be lowered, never
 *                                        raised past KL_MAX_RANK
 *   max_nodes           1,000,000        nodes of one graph (ONNX: per GraphProto, counted on
 *                                        the wire; text IR and .kir: the whole graph)
 *   max_tensor_bytes    16 GiB           bytes of one tensor (kl_tensor_max_bytes)
 *   max_total_bytes     16 GiB           all tensors one model may ask for together:
 *                                        weights and declared constants
 *   max_fold_bytes      1 MiB            one tensor created by constant folding
 *
 * The limits are process-wide. Set them at start (kl_limits_set, or kl_limits_from_env, which
 * the kiln command calls first: KILN_LIMITS="max_nodes=1000,max_tensor_bytes=1G"), before any
 * thread reads a file; reading them afterwards from many threads is safe. */
#ifndef KL_RUNTIME_LIMITS_H
#define KL_RUNTIME_LIMITS_H

#include <stdint.h>

#include "status.h"

typedef struct kl_limits {
  uint64_t max_file_bytes;
  uint64_t max_proto_depth;
  uint64_t max_subgraph_depth;
  uint64_t max_rank;
  uint64_t max_nodes;
  uint64_t max_tensor_bytes;
  uint64_t max_total_bytes;
  uint64_t max_fold_bytes;
} kl_limits;

/* Names each limit for kl_limit_error; the order is the struct's. */
typedef enum kl_limit_id {
  KL_LIMIT_FILE_BYTES,
  KL_LIMIT_PROTO_DEPTH,
  KL_LIMIT_SUBGRAPH_DEPTH,
  KL_LIMIT_RANK,
  KL_LIMIT_NODES,
  KL_LIMIT_TENSOR_BYTES,
  KL_LIMIT_TOTAL_BYTES,
  KL_LIMIT_FOLD_BYTES,
  KL_LIMIT_COUNT
} kl_limit_id;

/* Fills l with the defaults above. */
void kl_limits_defaults(kl_limits *l);
/* The limits in force (the defaults until kl_limits_set). Never NULL. */
const kl_limits *kl_limits_get(void);
/* Replaces the limits in force after checking each is in its range (1 up to a ceiling: ranks
 * up to KL_MAX_RANK, depths up to 4096, everything else up to 2^62); also sets
 * kl_tensor_set_max_bytes. On an error nothing changes. */
kl_status kl_limits_set(const kl_limits *l);

/* Applies "name=value,name=value" to *l (other fields unchanged). Values are decimal integers
 * with an optional binary suffix K, M, G, T (KiB..TiB; "KiB", "k", "1gb" are accepted too).
 * An unknown name, a bad number or an out-of-range value is KL_ERR_INVALID_ARGUMENT naming it
 * and listing the known names; on an error *l is unchanged. */
kl_status kl_limits_parse(const char *spec, kl_limits *l);
/* Reads the environment variable KILN_LIMITS (if set and non-empty), parses it over the limits
 * in force and sets the result. Errors are prefixed with "KILN_LIMITS". */
kl_status kl_limits_from_env(void);

/* The name of a limit ("max_nodes"), or "?" for an unknown id. */
const char *kl_limit_name(kl_limit_id id);
/* The value of limit id in l. */
uint64_t kl_limit_value(const kl_limits *l, kl_limit_id id);

/* A KL_ERR_LIMIT status: "<context>: <value> <unit> is over the limit max_x = <limit>; raise it
 * with KILN_LIMITS=max_x=N (or kl_limits_set)". context is printf-style. */
kl_status kl_limit_error(kl_limit_id id, uint64_t value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks value against the limit in force: NULL when within, else kl_limit_error. */
kl_status kl_limit_check(kl_limit_id id, uint64_t value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
