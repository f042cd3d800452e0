/* TensorProto <-> kl_tensor, and the serialized TensorProto files of ONNX's test cases.
 *
 * A TensorProto keeps its elements in raw_data (little-endian bytes), in one of the typed
 * repeated fields (float_data, int32_data, ...), or in an external file named by
 * external_data. Every count and byte size is checked against the dims before anything is
 * allocated, and an external location must stay inside the model's folder: no absolute path,
 * no ".." component, and no symlink whose target leaves the folder (checked with realpath on
 * the path actually opened). ONNX Runtime reads /etc/passwd as weights when asked; kiln does
 * not. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../runtime/checked.h"
#include "onnx_internal.h"

/* ---- data types ------------------------------------------------------------------------- */

static const char *const onnx_type_names[] = {
    "UNDEFINED", "FLOAT",  "UINT8",     "INT8",       "UINT16",       "INT16",
    "INT32",     "INT64",  "STRING",    "BOOL",       "FLOAT16",      "DOUBLE",
    "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",     "FLOAT8E4M3FN",
    "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1"};
#define N_ONNX_TYPES ((int32_t)(sizeof onnx_type_names / sizeof onnx_type_names[0]))

const char *kl_onnx_dtype_name(int32_t data_type) {
  return data_type >= 0 && data_type < N_ONNX_TYPES ? onnx_type_names[data_type] : "?";
}

kl_status kl_onnx_dtype_from_onnx(int32_t data_type, kl_dtype *out_dtype) {
  switch (data_type) {
  case 1: *out_dtype = KL_F32; return NULL;
  case 2: *out_dtype = KL_U8; return NULL;
  case 3: *out_dtype = KL_I8; return NULL;
  case 6: *out_dtype = KL_I32; return NULL;
  case 7: *out_dtype = KL_I64; return NULL;
  case 9: *out_dtype = KL_BOOL; return NULL;
  case 10: *out_dtype = KL_F16; return NULL;
  case 11: *out_dtype = KL_F64; return NULL;
  case 16: *out_dtype = KL_BF16; return NULL;
  default: break;
  }
  if (data_type > 0 && data_type < N_ONNX_TYPES)
    return kl_status_create(KL_ERR_UNSUPPORTED, "data type %s (%d) is not supported by kiln",
                            onnx_type_names[data_type], (int)data_type);
  return kl_status_create(KL_ERR_FORMAT, "unknown data type %d", (int)data_type);
}

int32_t kl_onnx_dtype_to_onnx(kl_dtype dtype) {
  switch (dtype) {
  case KL_F32: return 1;
  case KL_U8: return 2;
  case KL_I8: return 3;
  case KL_I32: return 6;
  case KL_I64: return 7;
  case KL_BOOL: return 9;
  case KL_F16: return 10;
  case KL_F64: return 11;
  case KL_BF16: return 16;
  default: return 0;
  }
}

/* ---- external data ----------------------------------------------------------------------- */

/* Refuses a location that is empty, absolute, or has a ".." component. */
static kl_status check_location_text(const char *loc, const char *what) {
  if (!loc || !*loc)
    return kl_status_create(KL_ERR_FORMAT, "%s: external data has no location", what);
  if (loc[0] == '/')
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: external data location '%s' is an absolute path; only paths "
                            "inside the model's folder are allowed", what, loc);
  for (const char *p = loc; *p;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.')
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "%s: external data location '%s' has a '..' component; only paths "
                              "inside the model's folder are allowed", what, loc);
    p += len;
    if (*p == '/')
      p++;
  }
  return NULL;
}

static kl_status parse_u64(const char *text, const char *key, const char *what, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text ? text : "", &end, 10);
  if (!text || !*text || *end || errno || v < 0)
    return kl_status_create(KL_ERR_FORMAT, "%s: external data %s '%s' is not a non-negative "
                            "integer", what, key, text ? text : "");
  *out = v;
  return NULL;
}

/* Reads nbytes of external data for tensor `what` into dst. */
static kl_status read_external(const Onnx__TensorProto *tp, const char *base_dir,
                               const char *what, void *dst, size_t nbytes) {
  const char *location = NULL;
  int64_t offset = 0, length = -1;
  for (size_t i = 0; i < tp->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = tp->external_data[i];
    if (!e->key)
      continue;
    if (!strcmp(e->key, "location"))
      location = e->value;
    else if (!strcmp(e->key, "offset"))
      KL_RETURN_IF_ERROR(parse_u64(e->value, "offset", what, &offset));
    else if (!strcmp(e->key, "length"))
      KL_RETURN_IF_ERROR(parse_u64(e->value, "length", what, &length));
  }
  KL_RETURN_IF_ERROR(check_location_text(location, what));
  if (!base_dir)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: external data '%s' cannot be read: "
                            "the model was not loaded from a folder", what, location);
  if (length >= 0 && (uint64_t)length != (uint64_t)nbytes)
    return kl_status_create(KL_ERR_FORMAT, "%s: external data length %lld does not match the "
                            "%zu bytes its dims and type need", what, (long long)length, nbytes);
  char dir_real[PATH_MAX], file_real[PATH_MAX];
  if (!realpath(base_dir, dir_real))
    return kl_status_create(KL_ERR_IO, "%s: model folder '%s': %s", what, base_dir,
                            strerror(errno));
  size_t path_len = strlen(dir_real) + 1 + strlen(location) + 1;
  char *joined = malloc(path_len);
  if (!joined)
    kl_fatal_oom();
  snprintf(joined, path_len, "%s/%s", dir_real, location);
  if (!realpath(joined, file_real)) {
    kl_status s = kl_status_create(KL_ERR_IO, "%s: external data file '%s': %s", what, location,
                                   strerror(errno));
    free(joined);
    return s;
  }
  free(joined);
  size_t dir_len = strlen(dir_real);
  bool inside = strncmp(file_real, dir_real, dir_len) == 0 &&
                (file_real[dir_len] == '/' || (dir_len == 1 && dir_real[0] == '/'));
  if (!inside)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: external data location '%s' resolves to '%s', outside the "
                            "model's folder (a symlink?); refused", what, location, file_real);
  int fd = open(file_real, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return kl_status_create(KL_ERR_IO, "%s: external data file '%s': %s", what, location,
                            strerror(errno));
  struct stat st;
  kl_status s = NULL;
  int64_t end = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    s = kl_status_create(KL_ERR_IO, "%s: external data '%s' is not a regular file", what,
                         location);
  else if (!kl_add_i64(offset, (int64_t)nbytes, &end) || end > (int64_t)st.st_size)
    s = kl_status_create(KL_ERR_FORMAT, "%s: external data '%s' offset %lld + %zu bytes runs "
                         "past the file's end (%lld bytes)", what, location, (long long)offset,
                         nbytes, (long long)st.st_size);
  size_t done = 0;
  while (!s && done < nbytes) {
    ssize_t got = pread(fd, (char *)dst + done, nbytes - done, (off_t)(offset + (int64_t)done));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      s = kl_status_create(KL_ERR_IO, "%s: reading external data '%s': %s", what, location,
                           got < 0 ? strerror(errno) : "unexpected end of file");
    else
      done += (size_t)got;
  }
  close(fd);
  return s;
}

/* ---- TensorProto -> kl_tensor ------------------------------------------------------------ */

static kl_status count_error(const char *what, const char *field, size_t got, int64_t numel) {
  return kl_status_create(KL_ERR_FORMAT, "%s: %s holds %zu elements but the dims need %lld",
                          what, field, got, (long long)numel);
}

kl_status kl_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const kl_onnx_tensor_source *src,
                                    const char *what, kl_tensor **out_tensor) {
  *out_tensor = NULL;
  if (!what)
    what = tp->name && *tp->name ? tp->name : "tensor";
  if (tp->segment)
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
  if (!tp->has_data_type)
    return kl_status_create(KL_ERR_FORMAT, "%s: tensor has no data_type", what);
  kl_dtype dtype;
  kl_status s = kl_onnx_dtype_from_onnx(tp->data_type, &dtype);
  if (s)
    return kl_status_annotate(s, "%s", what);
  if (tp->n_dims > KL_MAX_RANK)
    return kl_status_create(KL_ERR_LIMIT, "%s: %zu dims, more than %d", what, tp->n_dims,
                            KL_MAX_RANK);
  int rank = (int)tp->n_dims;
  int64_t numel;
  if (!kl_shape_numel(tp->dims, rank, &numel))
    return kl_status_create(KL_ERR_FORMAT, "%s: dims are negative or their product overflows",
                            what);
  size_t esize = kl_dtype_size(dtype), nbytes;
  if (!kl_mul_size((size_t)numel, esize, &nbytes))
    return kl_status_create(KL_ERR_FORMAT, "%s: byte size overflows", what);
  bool external = tp->has_data_location &&
                  tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  /* Check what the fields hold before allocating, so a tiny file cannot ask for a huge tensor. */
  size_t n_typed = 0;
  const char *field = "raw_data";
  if (!external && !tp->has_raw_data) {
    switch (dtype) {
    case KL_F32: n_typed = tp->n_float_data; field = "float_data"; break;
    case KL_F64: n_typed = tp->n_double_data; field = "double_data"; break;
    case KL_I64: n_typed = tp->n_int64_data; field = "int64_data"; break;
    default: n_typed = tp->n_int32_data; field = "int32_data"; break;
    }
    if ((int64_t)n_typed != numel)
      return count_error(what, field, n_typed, numel);
  } else if (!external && tp->raw_data.len != nbytes) {
    return kl_status_create(KL_ERR_FORMAT, "%s: raw_data has %zu bytes but its dims and type "
                            "(%s) need %zu", what, tp->raw_data.len, kl_dtype_ir_name(dtype),
                            nbytes);
  }
  if (src && src->budget) {
    if (nbytes > *src->budget)
      return kl_status_create(KL_ERR_LIMIT, "%s: %zu bytes of tensor data exceed what is left "
                              "of the model's limit (%zu bytes)", what, nbytes, *src->budget);
    *src->budget -= nbytes;
  }
  kl_tensor *t;
  s = kl_tensor_create(dtype, rank, tp->dims, &t);
  if (s)
    return kl_status_annotate(s, "%s", what);
  if (external) {
    s = read_external(tp, src ? src->base_dir : NULL, what, t->data, nbytes);
  } else if (tp->has_raw_data) {
    if (nbytes)
      memcpy(t->data, tp->raw_data.data, nbytes); /* kiln runs on little-endian hosts */
  } else {
    for (int64_t i = 0; i < numel; i++) {
      size_t k = (size_t)i;
      switch (dtype) {
      case KL_F32: ((float *)t->data)[k] = tp->float_data[k]; break;
      case KL_F64: ((double *)t->data)[k] = tp->double_data[k]; break;
      case KL_I64: ((int64_t *)t->data)[k] = tp->int64_data[k]; break;
      case KL_F16:
      case KL_BF16: ((uint16_t *)t->data)[k] = (uint16_t)tp->int32_data[k]; break;
      default: kl_dtype_store_i64(dtype, t->data, k, tp->int32_data[k]); break;
      }
    }
  }
  if (s) {
    kl_tensor_release(t);
    return s;
  }
  *out_tensor = t;
  return NULL;
}

/* ---- kl_tensor -> TensorProto ------------------------------------------------------------ */

void kl_onnx_tensor_to_proto(const kl_tensor *t, const char *name, Onnx__TensorProto *out) {
  out->has_data_type = 1;
  out->data_type = kl_onnx_dtype_to_onnx(t->dtype);
  out->n_dims = (size_t)t->rank;
  out->dims = malloc(sizeof *out->dims * (size_t)(t->rank ? t->rank : 1));
  if (!out->dims)
    kl_fatal_oom();
  for (int i = 0; i < t->rank; i++)
    out->dims[i] = t->shape[i];
  if (name) {
    out->name = strdup(name);
    if (!out->name)
      kl_fatal_oom();
  }
  out->has_raw_data = 1;
  out->raw_data.len = t->nbytes;
  out->raw_data.data = malloc(t->nbytes ? t->nbytes : 1);
  if (!out->raw_data.data)
    kl_fatal_oom();
  if (t->nbytes)
    memcpy(out->raw_data.data, t->data, t->nbytes);
}

void kl_onnx_tensor_proto_clear(Onnx__TensorProto *tp) {
  free(tp->dims);
  free(tp->name);
  free(tp->raw_data.data);
  tp->dims = NULL;
  tp->name = NULL;
  tp->raw_data.data = NULL;
  tp->n_dims = 0;
  tp->raw_data.len = 0;
  tp->has_raw_data = 0;
}

/* ---- .pb files ----------------------------------------------------------------------------- */

kl_status kl_onnx_read_tensor_file(const char *path, kl_tensor **out_tensor) {
  *out_tensor = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return kl_status_create(KL_ERR_IO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > (uint64_t)INT32_MAX) {
    fclose(f);
    return kl_status_create(KL_ERR_LIMIT, "%s: %lld bytes, more than protobuf's 2 GiB limit",
                            path, (long long)st.st_size);
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    kl_fatal_oom();
  size_t got = fread(buf, 1, size, f);
  fclose(f);
  if (got != size) {
    free(buf);
    return kl_status_create(KL_ERR_IO, "%s: short read", path);
  }
  kl_status s = kl_onnx_check_wire(buf, size, &onnx__tensor_proto__descriptor, 64, path);
  if (s) {
    free(buf);
    return s;
  }
  Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, buf);
  free(buf);
  if (!tp)
    return kl_status_create(KL_ERR_FORMAT, "%s: not a valid TensorProto", path);
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    slash[slash == dir ? 1 : 0] = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  kl_onnx_tensor_source src = {dir, NULL};
  s = kl_onnx_tensor_from_proto(tp, &src, path, out_tensor);
  onnx__tensor_proto__free_unpacked(tp, NULL);
  return s;
}

bool kl_onnx_is_onnx_path(const char *path) {
  if (!path)
    return false;
  size_t n = strlen(path);
  return n > 5 && strcasecmp(path + n - 5, ".onnx") == 0;
}
