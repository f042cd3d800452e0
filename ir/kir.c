/* .kir files: a graph and its weights in one file, loaded by mapping it rather than copying.
 *
 * Layout of format version 1 (all offsets are from the start of the file):
 *
 *   bytes 0..255   the header: one line of text, padded with spaces, byte 255 is '\n':
 *                    KILNIR 1 text=256+T dir=D+DL data=A+AL sum=0123456789abcdef
 *                  "KILNIR " is the magic; 1 the format version; each section is
 *                  offset+size in decimal; sum is the checksum (below) in 16 hex digits.
 *   text           T bytes of text IR (ir/text.h), starting at byte 256, so `head net.kir`
 *                  shows the header line and then the graph. A tensor attribute with more
 *                  than 16 elements is printed as a reference to blob N: Float(64, 3){@N}.
 *   dir            the blob directory, at a multiple of 8 after the text, little-endian:
 *                    u64 count, then per blob:
 *                    u32 dtype code                u32 rank       u32 name length  u32 0
 *                    u64 offset in the data section  u64 byte size  i64 dims[rank]
 *                    name bytes (no NUL; empty for constant blobs), zero padded to 8
 *                  dtype codes: 0 f32, 1 f16, 2 bf16, 3 f64, 4 i8, 5 u8, 6 i32, 7 i64, 8 bool.
 *                  The writer puts the weights first, then constants in the order printed.
 *   data           at a multiple of 64: the raw little-endian bytes of each blob, each at an
 *                  offset (from the data section start) that is a multiple of 64, zero padded.
 *                  The file ends where the data section ends.
 *
 * Blobs with a name are the graph's weights (the values of prim::Param nodes of that name);
 * blobs without one are the big constants the text refers to as {@N}. The checksum covers the
 * header line up to and including "sum=" followed by every byte after the header: a running
 * 64-bit hash over little-endian 8-byte words of that byte stream (each step is a bijection of
 * the state, so any one changed word is always caught).
 *
 * Loading trusts nothing before checking it: magic, version, that each section lies inside the
 * file in order, the checksum, then every directory entry (dtype, rank, dims, sizes, alignment,
 * bounds, no overlaps, unique names), then the text (parsed and verified by kl_ir_parse, with
 * {@N} checked against the blob's type), then each Param's declared type against its blob.
 * Nothing in the file is ever executed. */
#include "kir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runtime/checked.h"
#include "../runtime/limits.h"
#include "text.h"

#define KIR_MAGIC "KILNIR "
#define KIR_MAGIC_LEN 7
#define KIR_HEADER_SIZE 256
#define KIR_ALIGN 64
#define KIR_INLINE_MAX 16     /* constants with more elements go to a blob */
#define KIR_ENTRY_FIXED 32    /* bytes of a directory entry before dims and name */

/* dtype codes in the file, fixed by the format: never reorder. */
static const kl_dtype kir_dtype_codes[] = {KL_F32, KL_F16, KL_BF16, KL_F64, KL_I8,
                                           KL_U8,  KL_I32, KL_I64,  KL_BOOL};
#define KIR_N_DTYPE_CODES (sizeof kir_dtype_codes / sizeof kir_dtype_codes[0])

static uint32_t kir_dtype_code(kl_dtype dt) {
  for (uint32_t i = 0; i < KIR_N_DTYPE_CODES; i++)
    if (kir_dtype_codes[i] == dt)
      return i;
  return UINT32_MAX;
}

static bool host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* ---- checksum ---------------------------------------------------------------------------- */

typedef struct kir_hash {
  uint64_t h, total;
  unsigned char buf[8];
  size_t nbuf;
} kir_hash;

static void hash_init(kir_hash *hs) {
  memset(hs, 0, sizeof *hs);
  hs->h = 0x6b696c6e2e6b6972ull; /* "kiln.kir" */
}

static inline uint64_t load_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static inline void hash_word(kir_hash *hs, uint64_t w) {
  uint64_t h = hs->h ^ w;
  h *= 0x9e3779b97f4a7c15ull;
  hs->h = h ^ (h >> 29);
}

static void hash_update(kir_hash *hs, const void *data, size_t n) {
  const unsigned char *p = data;
  hs->total += n;
  while (n && hs->nbuf) {
    hs->buf[hs->nbuf++] = *p++;
    n--;
    if (hs->nbuf == 8) {
      hash_word(hs, load_le64(hs->buf));
      hs->nbuf = 0;
    }
  }
  if (hs->nbuf) /* all of data went into the partial word */
    return;
  for (; n >= 8; n -= 8, p += 8)
    hash_word(hs, load_le64(p));
  memcpy(hs->buf, p, n);
  hs->nbuf = n;
}

static uint64_t hash_final(kir_hash *hs) {
  if (hs->nbuf) {
    memset(hs->buf + hs->nbuf, 0, 8 - hs->nbuf);
    hash_word(hs, load_le64(hs->buf));
  }
  hash_word(hs, hs->total);
  return hs->h;
}

/* ---- little-endian fields ------------------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

/* ================================ saving ================================================= */

typedef struct kir_out_blob {
  const char *name; /* NULL for a constant */
  const kl_tensor *t;
  size_t offset; /* in the data section */
} kir_out_blob;

typedef struct kir_writer {
  kir_out_blob *blobs;
  int n_blobs, cap_blobs;
} kir_writer;

static int writer_add(kir_writer *w, const char *name, const kl_tensor *t) {
  if (w->n_blobs == w->cap_blobs) {
    int cap = w->cap_blobs ? w->cap_blobs * 2 : 16;
    kir_out_blob *b = realloc(w->blobs, (size_t)cap * sizeof *b);
    if (!b)
      kl_fatal_oom();
    w->blobs = b;
    w->cap_blobs = cap;
  }
  w->blobs[w->n_blobs] = (kir_out_blob){name, t, 0};
  return w->n_blobs++;
}

/* kl_ir_print_options.tensor_ref: big tensors become blobs; one tensor shared by several
 * attributes is stored once. */
static int64_t writer_tensor_ref(void *ctx, const kl_tensor *t) {
  kir_writer *w = ctx;
  if (t->numel <= KIR_INLINE_MAX)
    return -1;
  for (int i = 0; i < w->n_blobs; i++)
    if (w->blobs[i].t == t)
      return i;
  return writer_add(w, NULL, t);
}

/* Bytes go either into the checksum or into the file, so both passes emit the same bytes. */
typedef struct kir_sink {
  kir_hash *hash;
  FILE *f;
  bool ok;
} kir_sink;

static void sink_put(kir_sink *s, const void *p, size_t n) {
  if (!n)
    return;
  if (s->hash)
    hash_update(s->hash, p, n);
  else if (s->ok)
    s->ok = fwrite(p, 1, n, s->f) == n;
}

static void sink_zeros(kir_sink *s, size_t n) {
  static const unsigned char zeros[KIR_ALIGN];
  while (n) {
    size_t k = n < sizeof zeros ? n : sizeof zeros;
    sink_put(s, zeros, k);
    n -= k;
  }
}

typedef struct kir_layout {
  size_t text_off, text_len, dir_off, dir_len, data_off, data_len;
} kir_layout;

/* Everything after the header, in file order. */
static void emit_body(kir_sink *s, const kir_layout *L, const char *text, const unsigned char *dir,
                      const kir_writer *w) {
  sink_put(s, text, L->text_len);
  sink_zeros(s, L->dir_off - (L->text_off + L->text_len));
  sink_put(s, dir, L->dir_len);
  sink_zeros(s, L->data_off - (L->dir_off + L->dir_len));
  size_t pos = 0;
  for (int i = 0; i < w->n_blobs; i++) {
    sink_zeros(s, w->blobs[i].offset - pos);
    sink_put(s, w->blobs[i].t->data, w->blobs[i].t->nbytes);
    pos = w->blobs[i].offset + w->blobs[i].t->nbytes;
  }
  sink_zeros(s, L->data_len - pos);
}

/* Builds the directory and assigns blob offsets. */
static kl_status build_dir(kir_writer *w, const char *path, unsigned char **out_dir,
                           size_t *out_dir_len, size_t *out_data_len) {
  size_t dir_len = 8, data_len = 0;
  for (int i = 0; i < w->n_blobs; i++) {
    const kl_tensor *t = w->blobs[i].t;
    const char *name = w->blobs[i].name ? w->blobs[i].name : "";
    if (!kl_dtype_is_valid((int)t->dtype) || t->rank < 0 || t->rank > KL_MAX_RANK ||
        t->nbytes != (size_t)t->numel * kl_dtype_size(t->dtype) || (t->nbytes && !t->data))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: blob %d (\"%s\") is not a valid tensor",
                              path, i, name);
    size_t entry = KIR_ENTRY_FIXED + (size_t)t->rank * 8 + align_up(strlen(name), 8);
    w->blobs[i].offset = data_len;
    if (!kl_add_size(dir_len, entry, &dir_len) || !kl_add_size(data_len, t->nbytes, &data_len) ||
        data_len > SIZE_MAX - KIR_ALIGN)
      return kl_status_create(KL_ERR_LIMIT, "%s: the weights are too large to save", path);
    data_len = align_up(data_len, KIR_ALIGN);
  }
  unsigned char *dir = calloc(1, dir_len);
  if (!dir)
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "%s: out of memory for the blob directory",
                            path);
  unsigned char *p = dir;
  put_le(p, (uint64_t)w->n_blobs, 8);
  p += 8;
  for (int i = 0; i < w->n_blobs; i++) {
    const kl_tensor *t = w->blobs[i].t;
    const char *name = w->blobs[i].name ? w->blobs[i].name : "";
    size_t name_len = strlen(name);
    put_le(p, kir_dtype_code(t->dtype), 4);
    put_le(p + 4, (uint64_t)t->rank, 4);
    put_le(p + 8, name_len, 4);
    put_le(p + 12, 0, 4);
    put_le(p + 16, w->blobs[i].offset, 8);
    put_le(p + 24, t->nbytes, 8);
    p += KIR_ENTRY_FIXED;
    for (int d = 0; d < t->rank; d++, p += 8)
      put_le(p, (uint64_t)t->shape[d], 8);
    memcpy(p, name, name_len);
    p += align_up(name_len, 8);
  }
  *out_dir = dir;
  *out_dir_len = dir_len;
  *out_data_len = data_len;
  return NULL;
}

/* Opens a new file next to path for writing. The file is written under this name and then
 * renamed over path, so a graph loaded from path (whose weights are still mapped from it) can
 * be saved back to path: truncating the mapped file in place would fault on the next read of a
 * weight. O_EXCL with the process id and a counter makes the name ours; the mode is 0666 less
 * the umask, as for any new file. */
static FILE *create_temp(const char *path, char *tmp, size_t size) {
  static _Atomic unsigned counter;
  for (int attempt = 0; attempt < 100; attempt++) {
    int n = snprintf(tmp, size, "%s.tmp%ld.%u", path, (long)getpid(), counter++);
    if (n < 0 || (size_t)n >= size) {
      errno = ENAMETOOLONG;
      return NULL;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST)
      continue;
    if (fd < 0)
      return NULL;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
      int err = errno;
      close(fd);
      remove(tmp);
      errno = err;
    }
    return f;
  }
  errno = EEXIST;
  return NULL;
}

kl_status kl_kir_save(const kl_ir_graph *g, const char *path) {
  if (!host_is_little_endian())
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: .kir files need a little-endian host", path);
  kir_writer w = {0};
  for (int i = 0; i < g->n_weights; i++) {
    if (!g->weights[i].tensor)
      continue;
    if (strlen(g->weights[i].name) > UINT32_MAX / 2) {
      free(w.blobs);
      return kl_status_create(KL_ERR_LIMIT, "%s: a weight name is too long", path);
    }
    writer_add(&w, g->weights[i].name, g->weights[i].tensor);
  }
  char *text = NULL;
  unsigned char *dir = NULL;
  size_t text_len = 0;
  kl_ir_print_options popts = {writer_tensor_ref, &w};
  kl_status s = kl_ir_print(g, &popts, &text, &text_len);
  if (s) {
    free(w.blobs);
    return kl_status_annotate(s, "%s", path);
  }
  kir_layout L = {.text_off = KIR_HEADER_SIZE, .text_len = text_len};
  s = build_dir(&w, path, &dir, &L.dir_len, &L.data_len);
  if (s)
    goto done;
  L.dir_off = align_up(L.text_off + L.text_len, 8);
  L.data_off = align_up(L.dir_off + L.dir_len, KIR_ALIGN);

  char header[KIR_HEADER_SIZE + 1];
  int n = snprintf(header, sizeof header, "%s%d text=%zu+%zu dir=%zu+%zu data=%zu+%zu sum=",
                   KIR_MAGIC, KL_KIR_VERSION, L.text_off, L.text_len, L.dir_off, L.dir_len,
                   L.data_off, L.data_len);
  if (n < 0 || n + 16 > KIR_HEADER_SIZE - 1) {
    s = kl_status_create(KL_ERR_LIMIT, "%s: sections too large for the header", path);
    goto done;
  }
  kir_hash hs;
  hash_init(&hs);
  hash_update(&hs, header, (size_t)n);
  kir_sink hsink = {&hs, NULL, true};
  emit_body(&hsink, &L, text, dir, &w);
  n += snprintf(header + n, sizeof header - (size_t)n, "%016" PRIx64, hash_final(&hs));
  memset(header + n, ' ', (size_t)(KIR_HEADER_SIZE - 1 - n));
  header[KIR_HEADER_SIZE - 1] = '\n';

  char tmp[4096];
  FILE *f = create_temp(path, tmp, sizeof tmp);
  if (!f) {
    s = kl_status_create(KL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    goto done;
  }
  kir_sink fsink = {NULL, f, true};
  sink_put(&fsink, header, KIR_HEADER_SIZE);
  emit_body(&fsink, &L, text, dir, &w);
  int err = fsink.ok ? 0 : errno;
  if (fclose(f) != 0 && fsink.ok) {
    fsink.ok = false;
    err = errno;
  }
  if (fsink.ok && rename(tmp, path) != 0) {
    fsink.ok = false;
    err = errno;
  }
  if (!fsink.ok) {
    s = kl_status_create(KL_ERR_IO, "%s: cannot write: %s", path, strerror(err));
    remove(tmp);
  }
done:
  free(dir);
  free(text);
  free(w.blobs);
  return s;
}

/* ================================ loading ================================================ */

typedef struct kir_blob {
  char *name; /* malloc'd; "" for constants */
  kl_dtype dtype;
  int rank;
  int64_t dims[KL_MAX_RANK];
  size_t offset, nbytes;
} kir_blob;

typedef struct kir_loader {
  const char *name; /* file name for messages */
  const unsigned char *data; /* start of the data section */
  bool borrow;               /* wrap blob data rather than copying it */
  kir_blob *blobs;
  int n_blobs;
  int n_borrowed;
} kir_loader;

static kl_status fmt_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static kl_status fmt_error(const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kl_status s = kl_status_createv(KL_ERR_FORMAT, fmt, ap);
  va_end(ap);
  return kl_status_annotate(s, "%s", name);
}

/* ---- header ---------------------------------------------------------------------------- */

/* A decimal number of at most 19 digits (so it fits in int64) at *pos. */
static bool scan_u64(const char *h, size_t *pos, size_t end, uint64_t *out) {
  size_t p = *pos;
  uint64_t v = 0;
  int digits = 0;
  while (p < end && h[p] >= '0' && h[p] <= '9') {
    if (++digits > 19)
      return false;
    v = v * 10 + (uint64_t)(h[p] - '0');
    p++;
  }
  if (!digits)
    return false;
  *pos = p;
  *out = v;
  return true;
}

static bool scan_lit(const char *h, size_t *pos, size_t end, const char *lit) {
  size_t n = strlen(lit);
  if (end - *pos < n || memcmp(h + *pos, lit, n) != 0)
    return false;
  *pos += n;
  return true;
}

typedef struct kir_header {
  uint64_t off[3], len[3]; /* text, dir, data */
  uint64_t sum;
} kir_header;

static const char *const section_names[3] = {"text", "dir", "data"};

static kl_status parse_header(const unsigned char *data, size_t size, const char *name,
                              kir_header *hd) {
  size_t cmp = size < KIR_MAGIC_LEN ? size : KIR_MAGIC_LEN;
  if (size == 0 || memcmp(data, KIR_MAGIC, cmp) != 0)
    return fmt_error(name, "not a .kir file (bad magic)");
  const char *h = (const char *)data;
  size_t end = size < KIR_HEADER_SIZE ? size : KIR_HEADER_SIZE;
  size_t pos = KIR_MAGIC_LEN;
  uint64_t version;
  /* The version comes first and is read before anything else, so that a newer file is told
   * apart from a broken one even if its header is laid out differently. */
  if (scan_u64(h, &pos, end, &version) && pos < end && h[pos] == ' ') {
    if (version > KL_KIR_VERSION)
      return kl_status_create(KL_ERR_VERSION,
                              "%s: written by a newer kiln: format version %" PRIu64
                              ", this kiln reads up to %d", name, version, KL_KIR_VERSION);
    if (version == 0)
      return fmt_error(name, "format version 0 is not valid");
  }
  if (size < KIR_HEADER_SIZE)
    return fmt_error(name, "truncated header: the file has %zu bytes, the header needs %d", size,
                     KIR_HEADER_SIZE);
  pos = KIR_MAGIC_LEN;
  bool ok = scan_u64(h, &pos, end, &version) && version == KL_KIR_VERSION;
  for (int i = 0; ok && i < 3; i++) {
    char key[16];
    snprintf(key, sizeof key, " %s=", section_names[i]);
    ok = scan_lit(h, &pos, end, key) && scan_u64(h, &pos, end, &hd->off[i]) &&
         scan_lit(h, &pos, end, "+") && scan_u64(h, &pos, end, &hd->len[i]);
  }
  ok = ok && scan_lit(h, &pos, end, " sum=") && end - pos >= 16;
  size_t summed_header = pos; /* the header up to the digits of the sum is checksummed too */
  if (ok) {
    hd->sum = 0;
    for (int i = 0; ok && i < 16; i++) {
      char c = h[pos++];
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      ok = v >= 0;
      hd->sum = hd->sum << 4 | (uint64_t)(v < 0 ? 0 : v);
    }
  }
  while (ok && pos < KIR_HEADER_SIZE - 1)
    ok = h[pos++] == ' ';
  if (!ok || h[KIR_HEADER_SIZE - 1] != '\n')
    return fmt_error(name, "malformed header line near byte %zu", pos);

  /* Sections: in order text, dir, data; inside the file; data ends the file. */
  if (hd->off[0] != KIR_HEADER_SIZE)
    return fmt_error(name, "text section starts at byte %" PRIu64 ", expected %d", hd->off[0],
                     KIR_HEADER_SIZE);
  uint64_t prev_end = KIR_HEADER_SIZE;
  for (int i = 0; i < 3; i++) {
    uint64_t sec_end;
    if (__builtin_add_overflow(hd->off[i], hd->len[i], &sec_end) || sec_end > size)
      return fmt_error(name,
                       "%s section (offset %" PRIu64 ", %" PRIu64
                       " bytes) runs past the end of the file (%zu bytes)",
                       section_names[i], hd->off[i], hd->len[i], size);
    if (hd->off[i] < prev_end)
      return fmt_error(name, "%s section at offset %" PRIu64 " overlaps the section before it",
                       section_names[i], hd->off[i]);
    prev_end = sec_end;
  }
  if (hd->off[1] % 8 != 0)
    return fmt_error(name, "dir section offset %" PRIu64 " is not a multiple of 8", hd->off[1]);
  if (hd->off[2] % KIR_ALIGN != 0)
    return fmt_error(name, "data section offset %" PRIu64 " is not a multiple of %d", hd->off[2],
                     KIR_ALIGN);
  if (prev_end != size)
    return fmt_error(name, "%" PRIu64 " stray bytes after the data section", size - prev_end);

  kir_hash hs;
  hash_init(&hs);
  hash_update(&hs, data, summed_header);
  hash_update(&hs, data + KIR_HEADER_SIZE, size - KIR_HEADER_SIZE);
  uint64_t sum = hash_final(&hs);
  if (sum != hd->sum)
    return fmt_error(name, "checksum mismatch: header says %016" PRIx64 ", contents give %016" PRIx64
                     " (the file is corrupt)", hd->sum, sum);
  return NULL;
}

/* ---- directory ------------------------------------------------------------------------- */

static int cmp_blob_offset(const void *a, const void *b) {
  const kir_blob *x = *(const kir_blob *const *)a, *y = *(const kir_blob *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_blob_name(const void *a, const void *b) {
  const kir_blob *x = *(const kir_blob *const *)a, *y = *(const kir_blob *const *)b;
  return strcmp(x->name, y->name);
}

static void blob_type_format(const kir_blob *b, char *buf, size_t size) {
  kl_ir_type t = kl_ir_type_make(b->dtype, b->rank, b->dims);
  kl_ir_type_format(NULL, &t, buf, size);
}

/* "blob 3" or, for a weight, "blob 3 ("fc1.weight")" (names are cut at 100 bytes). */
static const char *blob_label(const kir_blob *b, uint64_t i, char *buf, size_t size) {
  if (b->name && b->name[0])
    snprintf(buf, size, "blob %" PRIu64 " (\"%.100s\")", i, b->name);
  else
    snprintf(buf, size, "blob %" PRIu64, i);
  return buf;
}

/* No two non-empty blobs share bytes, and no two blobs share a name. */
static kl_status check_blob_set(kir_loader *L) {
  if (L->n_blobs < 2)
    return NULL;
  kir_blob **order = malloc((size_t)L->n_blobs * sizeof *order);
  if (!order)
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "%s: out of memory", L->name);
  kl_status s = NULL;
  int n = 0;
  for (int i = 0; i < L->n_blobs; i++)
    if (L->blobs[i].nbytes)
      order[n++] = &L->blobs[i];
  qsort(order, (size_t)n, sizeof *order, cmp_blob_offset);
  for (int i = 1; i < n && !s; i++)
    if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
      s = fmt_error(L->name, "blobs %d and %d overlap (bytes %zu..%zu and %zu..%zu of the data "
                    "section)", (int)(order[i - 1] - L->blobs), (int)(order[i] - L->blobs),
                    order[i - 1]->offset, order[i - 1]->offset + order[i - 1]->nbytes,
                    order[i]->offset, order[i]->offset + order[i]->nbytes);
  n = 0;
  for (int i = 0; i < L->n_blobs; i++)
    if (L->blobs[i].name[0])
      order[n++] = &L->blobs[i];
  qsort(order, (size_t)n, sizeof *order, cmp_blob_name);
  for (int i = 1; i < n && !s; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0)
      s = fmt_error(L->name, "two blobs are named \"%s\"", order[i]->name);
  free(order);
  return s;
}

static kl_status parse_dir(kir_loader *L, const unsigned char *dir, size_t dir_len,
                           size_t data_len) {
  if (dir_len < 8)
    return fmt_error(L->name, "blob directory is %zu bytes, too short for its count", dir_len);
  uint64_t count = get_le(dir, 8);
  if (count > (dir_len - 8) / KIR_ENTRY_FIXED || count > INT32_MAX)
    return fmt_error(L->name, "blob directory claims %" PRIu64 " blobs but has room for at most %zu",
                     count, (dir_len - 8) / KIR_ENTRY_FIXED);
  L->blobs = calloc(count ? (size_t)count : 1, sizeof *L->blobs);
  if (!L->blobs)
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "%s: out of memory for %" PRIu64 " blobs",
                            L->name, count);
  size_t pos = 8;
  for (uint64_t i = 0; i < count; i++) {
    kir_blob *b = &L->blobs[i];
    L->n_blobs = (int)i + 1; /* so that names allocated so far are freed on error */
    if (dir_len - pos < KIR_ENTRY_FIXED)
      return fmt_error(L->name, "blob %" PRIu64 ": directory entry runs past the directory", i);
    const unsigned char *e = dir + pos;
    uint64_t code = get_le(e, 4), rank = get_le(e + 4, 4), name_len = get_le(e + 8, 4);
    uint64_t reserved = get_le(e + 12, 4), offset = get_le(e + 16, 8), nbytes = get_le(e + 24, 8);
    pos += KIR_ENTRY_FIXED;
    if (code >= KIR_N_DTYPE_CODES)
      return fmt_error(L->name, "blob %" PRIu64 ": unknown dtype code %" PRIu64, i, code);
    if (rank > KL_MAX_RANK || rank > kl_limits_get()->max_rank)
      return fmt_error(L->name, "blob %" PRIu64 ": rank %" PRIu64 " is over the limit of %d", i,
                       rank, (int)kl_limits_get()->max_rank);
    if (reserved != 0)
      return fmt_error(L->name, "blob %" PRIu64 ": reserved field is %" PRIu64 ", expected 0", i,
                       reserved);
    if ((dir_len - pos) / 8 < rank)
      return fmt_error(L->name, "blob %" PRIu64 ": dims run past the directory", i);
    b->dtype = kir_dtype_codes[code];
    b->rank = (int)rank;
    for (int d = 0; d < b->rank; d++, pos += 8) {
      b->dims[d] = (int64_t)get_le(dir + pos, 8);
      if (b->dims[d] < 0)
        return fmt_error(L->name, "blob %" PRIu64 ": dim %d is negative (%" PRId64 ")", i, d,
                         b->dims[d]);
    }
    size_t padded_name = align_up((size_t)name_len, 8);
    if (dir_len - pos < padded_name)
      return fmt_error(L->name, "blob %" PRIu64 ": name runs past the directory", i);
    if (memchr(dir + pos, '\0', (size_t)name_len))
      return fmt_error(L->name, "blob %" PRIu64 ": name contains a NUL byte", i);
    b->name = malloc((size_t)name_len + 1);
    if (!b->name)
      return kl_status_create(KL_ERR_OUT_OF_MEMORY, "%s: out of memory", L->name);
    memcpy(b->name, dir + pos, (size_t)name_len);
    b->name[name_len] = '\0';
    pos += padded_name;

    char type[300], label[160];
    blob_type_format(b, type, sizeof type);
    blob_label(b, i, label, sizeof label);
    int64_t numel;
    size_t want;
    if (!kl_shape_numel(b->dims, b->rank, &numel) ||
        !kl_mul_size((size_t)numel, kl_dtype_size(b->dtype), &want))
      return fmt_error(L->name, "%s: %s: element count overflows", label, type);
    if (nbytes != want)
      return fmt_error(L->name, "%s: byte size %" PRIu64 " does not match its shape %s (%zu bytes)",
                       label, nbytes, type, want);
    if (offset % KIR_ALIGN != 0)
      return fmt_error(L->name, "%s: offset %" PRIu64 " is not aligned to %d bytes", label, offset,
                       KIR_ALIGN);
    if (offset > data_len || nbytes > data_len - offset)
      return fmt_error(L->name, "%s (offset %" PRIu64 ", %" PRIu64
                       " bytes) runs past the end of the data section (%zu bytes)", label, offset,
                       nbytes, data_len);
    b->offset = (size_t)offset;
    b->nbytes = (size_t)nbytes;
  }
  if (pos != dir_len)
    return fmt_error(L->name, "%zu stray bytes after the last directory entry", dir_len - pos);
  return check_blob_set(L);
}

/* ---- tensors and text ------------------------------------------------------------------ */

/* A new tensor for blob i: borrowed from the buffer when it is 64-aligned, else a copy. */
static kl_status blob_tensor(kir_loader *L, int i, kl_tensor **out) {
  kir_blob *b = &L->blobs[i];
  void *p = (void *)(L->data + b->offset); /* tensors shared by a graph are never written */
  kl_status s;
  if (L->borrow) {
    s = kl_tensor_wrap(b->dtype, b->rank, b->dims, p, b->nbytes, out);
    if (!s)
      L->n_borrowed++;
  } else {
    s = kl_tensor_create(b->dtype, b->rank, b->dims, out);
    if (!s && b->nbytes)
      memcpy((*out)->data, p, b->nbytes);
  }
  char label[160];
  return s ? kl_status_annotate(s, "%s: %s", L->name, blob_label(b, (uint64_t)i, label, sizeof label))
           : NULL;
}

/* kl_ir_parse_options.resolve_tensor: {@N} must name a blob whose type is the one written.
 * The parser puts "file:line:col: tensor reference {@N}: " before these messages. */
static kl_status loader_resolve(void *ctx, int64_t index, const kl_ir_type *type,
                                kl_tensor **out_tensor) {
  kir_loader *L = ctx;
  if (index < 0 || index >= L->n_blobs)
    return kl_status_create(KL_ERR_FORMAT, "index out of range, the file has %d blobs",
                            L->n_blobs);
  kir_blob *b = &L->blobs[index];
  kl_ir_type bt = kl_ir_type_make(b->dtype, b->rank, b->dims);
  if (!kl_ir_type_equal(type, &bt)) {
    char want[300], have[300];
    kl_ir_type_format(NULL, type, want, sizeof want);
    kl_ir_type_format(NULL, &bt, have, sizeof have);
    return kl_status_create(KL_ERR_FORMAT, "written as %s but blob %" PRId64 " is %s", want,
                            index, have);
  }
  return blob_tensor(L, (int)index, out_tensor);
}

/* Each prim::Param's declared type must be its weight's; sub-blocks included. */
static kl_status check_params(const kir_loader *L, const kl_ir_graph *g, const kl_ir_block *blk) {
  for (const kl_ir_node *n = blk->first; n; n = n->next) {
    for (int i = 0; i < n->n_blocks; i++)
      KL_RETURN_IF_ERROR(check_params(L, g, n->blocks[i]));
    if (n->op != KL_OP_PARAM || n->n_outputs != 1)
      continue;
    const char *pname = kl_ir_node_string(n, "name", NULL);
    const kl_tensor *w = pname ? kl_ir_graph_weight(g, pname) : NULL;
    if (!w)
      continue;
    kl_ir_type wt = kl_ir_type_of_tensor(w);
    if (!kl_ir_type_equal(&wt, &n->outputs[0]->type)) {
      char want[300], have[300];
      kl_ir_type_format(g, &n->outputs[0]->type, want, sizeof want);
      kl_ir_type_format(g, &wt, have, sizeof have);
      return fmt_error(L->name, "prim::Param \"%s\" (%%%s) is declared %s but its blob is %s",
                       pname, n->outputs[0]->name, want, have);
    }
  }
  return NULL;
}

static void loader_free(kir_loader *L) {
  for (int i = 0; i < L->n_blobs; i++)
    free(L->blobs[i].name);
  free(L->blobs);
}

/* Loads from data (size bytes); blob tensors borrow from data when borrow is set. */
static kl_status load(const unsigned char *data, size_t size, const char *name, bool borrow,
                      kl_ir_graph **out_graph, int *out_n_borrowed) {
  if (!host_is_little_endian())
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: .kir files need a little-endian host", name);
  kir_header hd;
  KL_RETURN_IF_ERROR(parse_header(data, size, name, &hd));
  KL_RETURN_IF_ERROR(kl_limit_check(KL_LIMIT_TOTAL_BYTES, hd.len[2], "%s: weights", name));
  kir_loader L = {.name = name, .data = data + hd.off[2], .borrow = borrow};
  kl_ir_graph *g = NULL;
  kl_status s = parse_dir(&L, data + hd.off[1], (size_t)hd.len[1], (size_t)hd.len[2]);
  if (s)
    goto fail;
  /* Parser messages say "net.kir[text]:3:7": line 3 of the text, line 4 of the file. */
  char text_name[512];
  snprintf(text_name, sizeof text_name, "%s[text]", name);
  kl_ir_parse_options popts = {text_name, loader_resolve, &L};
  s = kl_ir_parse((const char *)data + hd.off[0], (size_t)hd.len[0], &popts, &g);
  if (s) {
    kl_status_code code = kl_status_code_of(s);
    if (code == KL_ERR_PARSE || code == KL_ERR_INVALID_ARGUMENT) {
      kl_status parse_error = s;
      s = kl_status_create(KL_ERR_FORMAT, "%s: text section is not valid IR: %s", name,
                           kl_status_message(parse_error));
      kl_status_destroy(parse_error);
    }
    goto fail;
  }
  for (int i = 0; i < L.n_blobs; i++) {
    if (!L.blobs[i].name[0])
      continue;
    kl_tensor *t;
    s = blob_tensor(&L, i, &t);
    if (s)
      goto fail;
    kl_ir_graph_set_weight(g, L.blobs[i].name, t);
    kl_tensor_release(t);
  }
  s = check_params(&L, g, g->top);
  if (s)
    goto fail;
  loader_free(&L);
  *out_graph = g;
  *out_n_borrowed = L.n_borrowed;
  return NULL;
fail:
  kl_ir_graph_destroy(g);
  loader_free(&L);
  return s;
}

/* ---- entry points ---------------------------------------------------------------------- */

typedef struct kir_mapping {
  void *addr;
  size_t size;
} kir_mapping;

static void unmap_file(void *ctx) {
  kir_mapping *m = ctx;
  munmap(m->addr, m->size);
  free(m);
}

kl_status kl_kir_load(const char *path, kl_ir_graph **out_graph) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return kl_status_create(KL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return kl_status_create(KL_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return kl_status_create(KL_ERR_IO, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  if (size < KIR_HEADER_SIZE) {
    /* Too small to map usefully (and mmap refuses 0 bytes): read it for the message. */
    unsigned char small[KIR_HEADER_SIZE];
    ssize_t got = read(fd, small, sizeof small);
    close(fd);
    if (got < 0)
      return kl_status_create(KL_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    kir_header hd;
    kl_status s = parse_header(small, (size_t)got, path, &hd);
    return s ? s : kl_status_create(KL_ERR_INTERNAL, "%s: short header accepted", path);
  }
  /* Read-only and private: a borrowed weight can never be written through, and another
   * process rewriting the file does not change a loaded graph's text (already parsed). */
  void *addr = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);
  if (addr == MAP_FAILED)
    return kl_status_create(KL_ERR_IO, "%s: cannot map: %s", path, strerror(err));
  kl_ir_graph *g;
  int n_borrowed = 0;
  kl_status s = load(addr, size, path, true, &g, &n_borrowed);
  if (s || n_borrowed == 0) {
    munmap(addr, size);
    if (!s)
      *out_graph = g;
    return s;
  }
  kir_mapping *m = malloc(sizeof *m);
  if (!m)
    kl_fatal_oom();
  m->addr = addr;
  m->size = size;
  kl_ir_graph_on_destroy(g, unmap_file, m);
  *out_graph = g;
  return NULL;
}

/* Borrowing needs every blob 64-byte aligned in memory; blob offsets are multiples of 64 from
 * the start of the buffer, so that holds exactly when the buffer itself is 64-aligned. A
 * buffer that is not (a fuzzer's, a std::string's) gets its blobs copied instead. */
kl_status kl_kir_load_buffer(const void *data, size_t size, const char *name,
                             kl_ir_graph **out_graph) {
  if (!name)
    name = "<buffer>";
  if (!data && size)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: NULL buffer", name);
  if (!data)
    data = "";
  bool aligned = (uintptr_t)data % KIR_ALIGN == 0;
  int n_borrowed;
  return load(data, size, name, aligned, out_graph, &n_borrowed);
}

bool kl_kir_is_kir(const void *data, size_t size) {
  return data && size >= KIR_MAGIC_LEN && memcmp(data, KIR_MAGIC, KIR_MAGIC_LEN) == 0;
}
