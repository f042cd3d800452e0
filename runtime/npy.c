/* NumPy .npy reading and writing.
 *
 * A .npy file is the magic "\x93NUMPY", a major and minor version byte, the header length
 * (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and a newline,
 * and then the raw data. The dict is read by a small literal parser (strings, True/False,
 * tuples of integers) rather than by searching for substrings, so keys may come in any order
 * and spacing, and anything unexpected is reported with the file name and the byte offset.
 * Every size is checked before anything is allocated. Files are written as version 1.0 with the
 * header padded so that the data starts at a multiple of 64 bytes, as numpy itself does. */
#include "npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checked.h"
#include "limits.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* numpy refuses headers over 10000 bytes unless told otherwise; allow more, but not without
 * bound, so that a corrupt length cannot make us read or allocate gigabytes of header. */
#define NPY_MAX_HEADER (1u << 20)

/* What the header says. */
typedef struct npy_info {
  kl_dtype dtype;
  int rank;
  int64_t shape[KL_MAX_RANK];
  size_t data_offset; /* where the data starts */
  size_t nbytes;      /* numel * element size */
} npy_info;

/* ---- the header dict --------------------------------------------------------------------
 *
 * Grammar (Python literal syntax, restricted to what .npy headers hold):
 *   dict   := '{' [ entry { ',' entry } [ ',' ] ] '}'
 *   entry  := string ':' value
 *   value  := string | 'True' | 'False' | tuple
 *   tuple  := '(' [ int { ',' int } [ ',' ] ] ')'      (a 1-tuple needs its comma: "(3,)")
 *   int    := digits [ 'L' ]                            (Python 2 numpy wrote "3L")
 *   string := "'" chars "'" | '"' chars '"'             (no escapes: numpy never writes them)
 * Whitespace may appear between tokens; after the closing brace only whitespace may follow. */

typedef struct dict_parser {
  const char *text;
  size_t len, pos;
  const char *name; /* file name, for messages */
} dict_parser;

typedef struct dict_string {
  const char *s;
  size_t len;
} dict_string;

static kl_status dict_error(const dict_parser *p, const char *what) {
  return kl_status_create(KL_ERR_FORMAT, "%s: bad .npy header at byte %zu of the dict: %s",
                          p->name, p->pos, what);
}

static void dict_skip_space(dict_parser *p) {
  while (p->pos < p->len &&
         (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' || p->text[p->pos] == '\n' ||
          p->text[p->pos] == '\r'))
    p->pos++;
}

/* Consumes c (after optional whitespace) when it is next. */
static bool dict_accept(dict_parser *p, char c) {
  dict_skip_space(p);
  if (p->pos < p->len && p->text[p->pos] == c) {
    p->pos++;
    return true;
  }
  return false;
}

static bool dict_accept_word(dict_parser *p, const char *word) {
  size_t n = strlen(word);
  dict_skip_space(p);
  if (p->len - p->pos >= n && memcmp(p->text + p->pos, word, n) == 0) {
    size_t after = p->pos + n;
    /* "Truex" is not True */
    if (after < p->len && (p->text[after] == '_' || (p->text[after] >= 'a' && p->text[after] <= 'z') ||
                           (p->text[after] >= 'A' && p->text[after] <= 'Z') ||
                           (p->text[after] >= '0' && p->text[after] <= '9')))
      return false;
    p->pos = after;
    return true;
  }
  return false;
}

static kl_status dict_string_lit(dict_parser *p, dict_string *out) {
  dict_skip_space(p);
  if (p->pos >= p->len || (p->text[p->pos] != '\'' && p->text[p->pos] != '"'))
    return dict_error(p, "expected a quoted string");
  char quote = p->text[p->pos++];
  size_t start = p->pos;
  while (p->pos < p->len && p->text[p->pos] != quote && p->text[p->pos] != '\n') {
    if (p->text[p->pos] == '\\')
      return dict_error(p, "escapes in strings are not supported");
    p->pos++;
  }
  if (p->pos >= p->len || p->text[p->pos] == '\n')
    return dict_error(p, "unterminated string");
  out->s = p->text + start;
  out->len = p->pos - start;
  p->pos++;
  return NULL;
}

static bool dict_string_is(dict_string s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.s, lit, s.len) == 0;
}

/* A non-negative integer; a '-' is reported as a negative dim. */
static kl_status dict_int(dict_parser *p, int64_t *out) {
  dict_skip_space(p);
  if (p->pos < p->len && p->text[p->pos] == '-')
    return kl_status_create(KL_ERR_FORMAT, "%s: .npy shape has a negative dim", p->name);
  if (p->pos >= p->len || p->text[p->pos] < '0' || p->text[p->pos] > '9')
    return dict_error(p, "expected an integer in the shape");
  int64_t v = 0;
  while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') {
    if (!kl_mul_i64(v, 10, &v) || !kl_add_i64(v, p->text[p->pos] - '0', &v))
      return kl_status_create(KL_ERR_FORMAT, "%s: .npy shape has a dim too large for int64",
                              p->name);
    p->pos++;
  }
  if (p->pos < p->len && p->text[p->pos] == 'L')
    p->pos++;
  *out = v;
  return NULL;
}

static kl_status dict_shape(dict_parser *p, npy_info *info) {
  if (!dict_accept(p, '('))
    return dict_error(p, "expected '(' to start the shape tuple");
  int rank = 0;
  bool comma_after_last = false;
  while (!dict_accept(p, ')')) {
    if (rank > 0 && !comma_after_last)
      return dict_error(p, "expected ',' or ')' in the shape tuple");
    if (rank == KL_MAX_RANK)
      return kl_status_create(KL_ERR_UNSUPPORTED, "%s: .npy shape has more than %d dims",
                              p->name, KL_MAX_RANK);
    if ((uint64_t)rank >= kl_limits_get()->max_rank)
      return kl_limit_error(KL_LIMIT_RANK, (uint64_t)rank + 1, "%s: .npy shape", p->name);
    KL_RETURN_IF_ERROR(dict_int(p, &info->shape[rank]));
    rank++;
    comma_after_last = dict_accept(p, ',');
  }
  if (rank == 1 && !comma_after_last)
    return dict_error(p, "a one-element shape tuple needs a trailing comma, as in (3,)");
  info->rank = rank;
  return NULL;
}

/* Maps a numpy type string to a kiln dtype. The byte-order character may be '<' or '=' (this
 * host is little-endian) or '|'; for one-byte types any order character is fine, as in numpy. */
static kl_status parse_descr(dict_string d, const char *name, kl_dtype *out) {
  static const struct {
    const char *code;
    kl_dtype dtype;
  } codes[] = {{"f4", KL_F32}, {"f8", KL_F64}, {"f2", KL_F16}, {"i4", KL_I32},
               {"i8", KL_I64}, {"i1", KL_I8},  {"u1", KL_U8},  {"b1", KL_BOOL}};
  char order = 0;
  dict_string code = d;
  if (d.len > 0 && strchr("<>=|", d.s[0])) {
    order = d.s[0];
    code.s++;
    code.len--;
  }
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    if (!dict_string_is(code, codes[i].code))
      continue;
    if (order == '>' && kl_dtype_size(codes[i].dtype) > 1)
      return kl_status_create(KL_ERR_UNSUPPORTED,
                              "%s: .npy data is big-endian ('%.*s'); only little-endian is "
                              "supported (save with arr.astype(arr.dtype.newbyteorder('<')))",
                              name, (int)d.len, d.s);
    *out = codes[i].dtype;
    return NULL;
  }
  return kl_status_create(KL_ERR_UNSUPPORTED,
                          "%s: .npy dtype '%.*s' is not supported (supported: <f4 <f8 <f2 <i4 "
                          "<i8 |i1 |u1 |b1)",
                          name, (int)(d.len > 32 ? 32 : d.len), d.s);
}

static kl_status parse_dict(const char *text, size_t len, const char *name, npy_info *info) {
  dict_parser p = {text, len, 0, name};
  bool have_descr = false, have_order = false, have_shape = false;
  dict_string descr = {0};
  bool fortran = false;
  if (!dict_accept(&p, '{'))
    return dict_error(&p, "expected '{'");
  bool comma_after_last = true;
  while (!dict_accept(&p, '}')) {
    if (!comma_after_last)
      return dict_error(&p, "expected ',' or '}'");
    dict_string key;
    KL_RETURN_IF_ERROR(dict_string_lit(&p, &key));
    if (!dict_accept(&p, ':'))
      return dict_error(&p, "expected ':' after a key");
    if (dict_string_is(key, "descr")) {
      if (have_descr)
        return dict_error(&p, "duplicate key 'descr'");
      dict_skip_space(&p);
      if (p.pos < p.len && p.text[p.pos] == '[')
        return kl_status_create(KL_ERR_UNSUPPORTED,
                                "%s: .npy holds a structured array; only plain arrays are "
                                "supported", name);
      KL_RETURN_IF_ERROR(dict_string_lit(&p, &descr));
      have_descr = true;
    } else if (dict_string_is(key, "fortran_order")) {
      if (have_order)
        return dict_error(&p, "duplicate key 'fortran_order'");
      if (dict_accept_word(&p, "True"))
        fortran = true;
      else if (dict_accept_word(&p, "False"))
        fortran = false;
      else
        return dict_error(&p, "fortran_order must be True or False");
      have_order = true;
    } else if (dict_string_is(key, "shape")) {
      if (have_shape)
        return dict_error(&p, "duplicate key 'shape'");
      KL_RETURN_IF_ERROR(dict_shape(&p, info));
      have_shape = true;
    } else {
      return kl_status_create(KL_ERR_FORMAT, "%s: .npy header has an unexpected key '%.*s'",
                              name, (int)(key.len > 32 ? 32 : key.len), key.s);
    }
    comma_after_last = dict_accept(&p, ',');
  }
  dict_skip_space(&p);
  if (p.pos != p.len)
    return dict_error(&p, "unexpected text after '}'");
  if (!have_descr || !have_order || !have_shape)
    return kl_status_create(KL_ERR_FORMAT, "%s: .npy header lacks the key '%s'", name,
                            !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
  KL_RETURN_IF_ERROR(parse_descr(descr, name, &info->dtype));
  /* Fortran order of a 0-d or 1-d array is the same bytes as C order. */
  int non_unit = 0;
  for (int i = 0; i < info->rank; i++)
    non_unit += info->shape[i] != 1;
  if (fortran && non_unit > 1)
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "%s: .npy array is in Fortran order; only C order is supported "
                            "(save np.ascontiguousarray(arr))", name);
  int64_t numel;
  size_t nbytes;
  if (!kl_shape_numel(info->shape, info->rank, &numel) ||
      !kl_mul_size((size_t)numel, kl_dtype_size(info->dtype), &nbytes)) {
    char buf[256];
    kl_shape_format(info->shape, info->rank, buf, sizeof buf);
    return kl_status_create(KL_ERR_FORMAT, "%s: .npy shape %s: element count overflows", name,
                            buf);
  }
  info->nbytes = nbytes;
  return NULL;
}

/* ---- the preamble ---------------------------------------------------------------------- */

/* Reads magic, version and header length from the first bytes (avail of them; the file has
 * file_size) and sets *out_dict_off and *out_dict_len. */
static kl_status parse_preamble(const unsigned char *p, size_t avail, size_t file_size,
                                const char *name, size_t *out_dict_off, size_t *out_dict_len) {
  size_t cmp = avail < NPY_MAGIC_LEN ? avail : NPY_MAGIC_LEN;
  if (avail == 0 || memcmp(p, NPY_MAGIC, cmp) != 0)
    return kl_status_create(KL_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
  if (avail < NPY_MAGIC_LEN + 2)
    return kl_status_create(KL_ERR_FORMAT, "%s: .npy file truncated in its preamble (%zu bytes)",
                            name, file_size);
  int major = p[6], minor = p[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "%s: .npy format version %d.%d is not supported (1.0, 2.0, 3.0)",
                            name, major, minor);
  size_t len_bytes = major == 1 ? 2 : 4;
  if (avail < 8 + len_bytes)
    return kl_status_create(KL_ERR_FORMAT, "%s: .npy file truncated in its preamble (%zu bytes)",
                            name, file_size);
  size_t hlen = (size_t)p[8] | (size_t)p[9] << 8;
  if (len_bytes == 4)
    hlen |= (size_t)p[10] << 16 | (size_t)p[11] << 24;
  size_t dict_off = 8 + len_bytes;
  if (hlen > file_size - dict_off)
    return kl_status_create(KL_ERR_FORMAT,
                            "%s: .npy header length %zu runs past the end of the file (%zu "
                            "bytes)", name, hlen, file_size);
  if (hlen > NPY_MAX_HEADER)
    return kl_status_create(KL_ERR_FORMAT, "%s: .npy header length %zu is over the limit of %u",
                            name, hlen, NPY_MAX_HEADER);
  *out_dict_off = dict_off;
  *out_dict_len = hlen;
  return NULL;
}

/* Parses the whole header of a file of file_size bytes whose first avail bytes are at p. */
static kl_status parse_header(const unsigned char *p, size_t avail, size_t file_size,
                              const char *name, npy_info *info) {
  size_t dict_off = 0, dict_len = 0;
  KL_RETURN_IF_ERROR(parse_preamble(p, avail, file_size, name, &dict_off, &dict_len));
  if (dict_off + dict_len > avail)
    return kl_status_create(KL_ERR_INTERNAL, "%s: .npy header not fully read", name);
  KL_RETURN_IF_ERROR(parse_dict((const char *)p + dict_off, dict_len, name, info));
  info->data_offset = dict_off + dict_len;
  size_t have = file_size - info->data_offset;
  char buf[256];
  if (have != info->nbytes) {
    kl_shape_format(info->shape, info->rank, buf, sizeof buf);
    return kl_status_create(KL_ERR_FORMAT,
                            "%s: .npy data is %s: %s %s needs %zu bytes, the file has %zu", name,
                            have < info->nbytes ? "too short" : "too long",
                            kl_dtype_ir_name(info->dtype), buf, info->nbytes, have);
  }
  if (info->nbytes > kl_tensor_max_bytes()) {
    kl_shape_format(info->shape, info->rank, buf, sizeof buf);
    return kl_limit_error(KL_LIMIT_TENSOR_BYTES, info->nbytes, "%s: .npy array %s %s", name,
                          kl_dtype_ir_name(info->dtype), buf);
  }
  return NULL;
}

/* ---- reading --------------------------------------------------------------------------- */

kl_status kl_npy_read_buffer(const void *data, size_t size, const char *name,
                             kl_tensor **out_tensor) {
  if (!name)
    name = "<buffer>";
  if (!data && size)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: NULL buffer", name);
  npy_info info;
  KL_RETURN_IF_ERROR(parse_header(data, size, size, name, &info));
  kl_tensor *t;
  kl_status s = kl_tensor_create(info.dtype, info.rank, info.shape, &t);
  if (s)
    return kl_status_annotate(s, "%s", name);
  if (info.nbytes)
    memcpy(t->data, (const unsigned char *)data + info.data_offset, info.nbytes);
  *out_tensor = t;
  return NULL;
}

static kl_status io_error(const char *path, const char *what) {
  return kl_status_create(KL_ERR_IO, "%s: %s: %s", path, what, strerror(errno));
}

/* A short read is an I/O error or a file that shrank after we measured it. */
static kl_status read_error(FILE *f, const char *path, const char *what) {
  if (ferror(f))
    return kl_status_create(KL_ERR_IO, "%s: cannot read %s: %s", path, what, strerror(errno));
  return kl_status_create(KL_ERR_IO, "%s: cannot read %s: the file changed while being read",
                          path, what);
}

kl_status kl_npy_read(const char *path, kl_tensor **out_tensor) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return io_error(path, "cannot open");
  kl_status s = NULL;
  unsigned char *head = NULL;
  kl_tensor *t = NULL;
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    s = io_error(path, "cannot stat");
    goto done;
  }
  if (!S_ISREG(st.st_mode) || st.st_size < 0) {
    s = kl_status_create(KL_ERR_IO, "%s: not a regular file", path);
    goto done;
  }
  size_t file_size = (size_t)st.st_size;
  /* The preamble first, to learn how much header there is; then the header; then the data
   * straight into the tensor, so a large file is never held twice. */
  unsigned char pre[12];
  size_t pre_len = fread(pre, 1, sizeof pre < file_size ? sizeof pre : file_size, f);
  size_t dict_off = 0, dict_len = 0;
  s = parse_preamble(pre, pre_len, file_size, path, &dict_off, &dict_len);
  if (s)
    goto done;
  size_t head_len = dict_off + dict_len;
  head = malloc(head_len);
  if (!head) {
    s = kl_status_create(KL_ERR_OUT_OF_MEMORY, "%s: out of memory for the .npy header", path);
    goto done;
  }
  memcpy(head, pre, dict_off);
  if (fseek(f, (long)dict_off, SEEK_SET) != 0 ||
      fread(head + dict_off, 1, dict_len, f) != dict_len) {
    s = read_error(f, path, "the .npy header");
    goto done;
  }
  npy_info info;
  s = parse_header(head, head_len, file_size, path, &info);
  if (s)
    goto done;
  s = kl_tensor_create(info.dtype, info.rank, info.shape, &t);
  if (s) {
    s = kl_status_annotate(s, "%s", path);
    goto done;
  }
  if (info.nbytes && fread(t->data, 1, info.nbytes, f) != info.nbytes) {
    s = read_error(f, path, "the .npy data");
    goto done;
  }
  *out_tensor = t;
  t = NULL;
done:
  kl_tensor_release(t);
  free(head);
  fclose(f);
  return s;
}

/* ---- writing --------------------------------------------------------------------------- */

static const char *npy_descr(kl_dtype dt) {
  switch (dt) {
  case KL_F32: return "<f4";
  case KL_F64: return "<f8";
  case KL_F16: return "<f2";
  case KL_I32: return "<i4";
  case KL_I64: return "<i8";
  case KL_I8: return "|i1";
  case KL_U8: return "|u1";
  case KL_BOOL: return "|b1";
  default: return NULL;
  }
}

kl_status kl_npy_write(const char *path, const kl_tensor *t) {
  const char *descr = npy_descr(t->dtype);
  if (!descr)
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "%s: cannot write %s to .npy: numpy has no such dtype (convert to "
                            "Float first)", path, kl_dtype_ir_name(t->dtype));
  if (t->rank < 0 || t->rank > KL_MAX_RANK)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: tensor rank %d is invalid", path,
                            t->rank);
  /* 10 bytes of preamble + the dict + padding + '\n' must be a multiple of 64. A rank-32 shape
   * of 20-digit dims is under 800 bytes, well inside version 1.0's 65535. */
  char dict[1024];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr);
  for (int i = 0; i < t->rank; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                  (long long)t->shape[i]);
  n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
  size_t total = 10 + (size_t)n + 1;
  size_t padded = (total + 63) & ~(size_t)63;
  size_t hlen = padded - 10;
  unsigned char pre[10];
  memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
  pre[6] = 1;
  pre[7] = 0;
  pre[8] = (unsigned char)(hlen & 0xff);
  pre[9] = (unsigned char)(hlen >> 8);
  FILE *f = fopen(path, "wb");
  if (!f)
    return io_error(path, "cannot create");
  bool ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre &&
            fwrite(dict, 1, (size_t)n, f) == (size_t)n;
  for (size_t i = (size_t)n; ok && i + 1 < hlen; i++)
    ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF;
  if (ok && t->nbytes)
    ok = fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
  kl_status s = ok ? NULL : io_error(path, "cannot write");
  if (fclose(f) != 0 && !s)
    s = io_error(path, "cannot write");
  if (s)
    remove(path);
  return s;
}
