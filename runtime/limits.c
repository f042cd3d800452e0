/* The process-wide limits on untrusted input, their parsing from KILN_LIMITS, and the
 * KL_ERR_LIMIT messages that name them. */
#include "limits.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "tensor.h"

#define DEPTH_CEILING 4096u
#define VALUE_CEILING ((uint64_t)1 << 62)

typedef struct limit_info {
  const char *name;
  const char *unit; /* how a value reads in messages */
  uint64_t def, ceiling;
} limit_info;

static const limit_info infos[KL_LIMIT_COUNT] = {
    [KL_LIMIT_FILE_BYTES] = {"max_file_bytes", "bytes", (uint64_t)INT32_MAX, VALUE_CEILING},
    [KL_LIMIT_PROTO_DEPTH] = {"max_proto_depth", "levels", 64, DEPTH_CEILING},
    [KL_LIMIT_SUBGRAPH_DEPTH] = {"max_subgraph_depth", "levels", 32, DEPTH_CEILING},
    [KL_LIMIT_RANK] = {"max_rank", "dims", KL_MAX_RANK, KL_MAX_RANK},
    [KL_LIMIT_NODES] = {"max_nodes", "nodes", 1000000, VALUE_CEILING},
    [KL_LIMIT_TENSOR_BYTES] = {"max_tensor_bytes", "bytes", (uint64_t)16 << 30, VALUE_CEILING},
    [KL_LIMIT_TOTAL_BYTES] = {"max_total_bytes", "bytes", (uint64_t)16 << 30, VALUE_CEILING},
    [KL_LIMIT_FOLD_BYTES] = {"max_fold_bytes", "bytes", (uint64_t)1 << 20, VALUE_CEILING},
};

static uint64_t *field(kl_limits *l, kl_limit_id id) {
  switch (id) {
  case KL_LIMIT_FILE_BYTES: return &l->max_file_bytes;
  case KL_LIMIT_PROTO_DEPTH: return &l->max_proto_depth;
  case KL_LIMIT_SUBGRAPH_DEPTH: return &l->max_subgraph_depth;
  case KL_LIMIT_RANK: return &l->max_rank;
  case KL_LIMIT_NODES: return &l->max_nodes;
  case KL_LIMIT_TENSOR_BYTES: return &l->max_tensor_bytes;
  case KL_LIMIT_TOTAL_BYTES: return &l->max_total_bytes;
  case KL_LIMIT_FOLD_BYTES: return &l->max_fold_bytes;
  default: return NULL;
  }
}

void kl_limits_defaults(kl_limits *l) {
  for (int i = 0; i < KL_LIMIT_COUNT; i++)
    *field(l, (kl_limit_id)i) = infos[i].def;
}

static kl_limits current = {
    .max_file_bytes = (uint64_t)INT32_MAX,
    .max_proto_depth = 64,
    .max_subgraph_depth = 32,
    .max_rank = KL_MAX_RANK,
    .max_nodes = 1000000,
    .max_tensor_bytes = (uint64_t)16 << 30,
    .max_total_bytes = (uint64_t)16 << 30,
    .max_fold_bytes = (uint64_t)1 << 20,
};

const kl_limits *kl_limits_get(void) { return &current; }

const char *kl_limit_name(kl_limit_id id) {
  return (int)id >= 0 && id < KL_LIMIT_COUNT ? infos[id].name : "?";
}

uint64_t kl_limit_value(const kl_limits *l, kl_limit_id id) {
  uint64_t *p = field((kl_limits *)l, id);
  return p ? *p : 0;
}

static kl_status check_range(kl_limit_id id, uint64_t v) {
  if (v < 1 || v > infos[id].ceiling)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "limit %s = %llu is outside its range 1..%llu", infos[id].name,
                            (unsigned long long)v, (unsigned long long)infos[id].ceiling);
  return NULL;
}

kl_status kl_limits_set(const kl_limits *l) {
  if (!l)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_limits_set: limits are required");
  for (int i = 0; i < KL_LIMIT_COUNT; i++)
    KL_RETURN_IF_ERROR(check_range((kl_limit_id)i, kl_limit_value(l, (kl_limit_id)i)));
  if (l->max_tensor_bytes > (uint64_t)SIZE_MAX)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "limit max_tensor_bytes is over SIZE_MAX");
  current = *l;
  kl_tensor_set_max_bytes((size_t)l->max_tensor_bytes);
  return NULL;
}

/* "123", "1G", "16GiB", "2k", "1gb": decimal digits then an optional binary suffix. */
static bool parse_value(const char *s, size_t len, uint64_t *out) {
  size_t i = 0;
  uint64_t v = 0;
  if (len == 0 || !isdigit((unsigned char)s[0]))
    return false;
  for (; i < len && isdigit((unsigned char)s[i]); i++) {
    size_t next;
    if (!kl_mul_size((size_t)v, 10, &next) || !kl_add_size(next, (size_t)(s[i] - '0'), &next))
      return false;
    v = next;
  }
  if (i < len) {
    static const char suffixes[] = "kmgt";
    const char *at = strchr(suffixes, tolower((unsigned char)s[i]));
    if (!at || !*at)
      return false;
    i++;
    if (i < len && (s[i] == 'i' || s[i] == 'I'))
      i++;
    if (i < len && (s[i] == 'b' || s[i] == 'B'))
      i++;
    if (i != len)
      return false;
    for (int k = 0; k <= (int)(at - suffixes); k++) {
      size_t next;
      if (!kl_mul_size((size_t)v, 1024, &next))
        return false;
      v = next;
    }
  }
  *out = v;
  return true;
}

static kl_status unknown_name(const char *name, size_t len) {
  char known[256] = "";
  for (int i = 0; i < KL_LIMIT_COUNT; i++) {
    size_t n = strlen(known);
    snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", infos[i].name);
  }
  return kl_status_create(KL_ERR_INVALID_ARGUMENT, "unknown limit '%.*s' (known: %s)",
                          (int)(len > 64 ? 64 : len), name, known);
}

kl_status kl_limits_parse(const char *spec, kl_limits *l) {
  if (!spec || !l)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_limits_parse: spec and limits are "
                                                     "required");
  kl_limits next = *l;
  const char *p = spec;
  while (*p) {
    size_t item_len = strcspn(p, ",");
    while (item_len && isspace((unsigned char)*p)) {
      p++;
      item_len--;
    }
    size_t end = item_len;
    while (end && isspace((unsigned char)p[end - 1]))
      end--;
    if (end > 0) {
      const char *eq = memchr(p, '=', end);
      if (!eq)
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "'%.*s' is not name=value (e.g. max_nodes=1000)",
                                (int)(end > 64 ? 64 : end), p);
      size_t name_len = (size_t)(eq - p);
      while (name_len && isspace((unsigned char)p[name_len - 1]))
        name_len--;
      const char *val = eq + 1;
      size_t val_len = end - (size_t)(val - p);
      while (val_len && isspace((unsigned char)*val)) {
        val++;
        val_len--;
      }
      int id = -1;
      for (int i = 0; i < KL_LIMIT_COUNT; i++)
        if (strlen(infos[i].name) == name_len && !memcmp(infos[i].name, p, name_len))
          id = i;
      if (id < 0)
        return unknown_name(p, name_len);
      uint64_t v;
      if (!parse_value(val, val_len, &v))
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "limit %s: '%.*s' is not a number (digits, then optionally "
                                "K, M, G or T)", infos[id].name,
                                (int)(val_len > 64 ? 64 : val_len), val);
      KL_RETURN_IF_ERROR(check_range((kl_limit_id)id, v));
      *field(&next, (kl_limit_id)id) = v;
    }
    p += item_len;
    if (*p == ',')
      p++;
  }
  *l = next;
  return NULL;
}

kl_status kl_limits_from_env(void) {
  const char *spec = getenv("KILN_LIMITS");
  if (!spec || !*spec)
    return NULL;
  kl_limits l = current;
  kl_status s = kl_limits_parse(spec, &l);
  if (!s)
    s = kl_limits_set(&l);
  return kl_status_annotate(s, "KILN_LIMITS");
}

static kl_status limit_errorv(kl_limit_id id, uint64_t value, const char *fmt, va_list ap) {
  char context[512];
  vsnprintf(context, sizeof context, fmt, ap);
  const char *name = kl_limit_name(id);
  const char *unit = (int)id >= 0 && id < KL_LIMIT_COUNT ? infos[id].unit : "";
  return kl_status_create(KL_ERR_LIMIT,
                          "%s: %llu %s is over the limit %s = %llu; raise it with "
                          "KILN_LIMITS=%s=N (or kl_limits_set)",
                          context, (unsigned long long)value, unit, name,
                          (unsigned long long)kl_limit_value(&current, id), name);
}

kl_status kl_limit_error(kl_limit_id id, uint64_t value, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kl_status s = limit_errorv(id, value, fmt, ap);
  va_end(ap);
  return s;
}

kl_status kl_limit_check(kl_limit_id id, uint64_t value, const char *fmt, ...) {
  if (value <= kl_limit_value(&current, id))
    return NULL;
  va_list ap;
  va_start(ap, fmt);
  kl_status s = limit_errorv(id, value, fmt, ap);
  va_end(ap);
  return s;
}
