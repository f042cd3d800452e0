/* Tests for runtime/npy.c: write-then-read round trips of every dtype at ranks 0..4, files
 * written by numpy itself (tests/malformed/valid, made by gen_corpus.py), header spellings
 * numpy accepts, and the errors for headers and sizes that are wrong. The big corpus of bad
 * files is run by tests/malformed; here each error is built in memory next to its check. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "runtime/npy.h"

static char tmp_path[64];

static void make_tmp_path(void) {
  strcpy(tmp_path, "/tmp/kiln_test_npy_XXXXXX");
  int fd = mkstemp(tmp_path);
  CHECK(fd >= 0);
  if (fd >= 0)
    close(fd);
}

/* Fills t with a pattern that differs per element and per dtype. */
static void fill_pattern(kl_tensor *t) {
  for (int64_t i = 0; i < t->numel; i++) {
    if (t->dtype == KL_BOOL)
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, i % 3 == 1);
    else if (kl_dtype_is_float(t->dtype))
      kl_dtype_store_f64(t->dtype, t->data, (size_t)i, (double)i * 0.25 - 3.0);
    else
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, (i * 37) % 101 - 50);
  }
}

static void test_round_trips(void) {
  const kl_dtype dtypes[] = {KL_F32, KL_F64, KL_F16, KL_I32, KL_I64, KL_I8, KL_U8, KL_BOOL};
  const int64_t shapes[5][4] = {{0}, {5}, {2, 3}, {2, 1, 4}, {1, 2, 3, 2}};
  for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
    for (int rank = 0; rank <= 4; rank++) {
      kl_tensor *t = NULL, *back = NULL;
      CHECK_OK(kl_tensor_create(dtypes[d], rank, shapes[rank], &t));
      if (!t)
        continue;
      fill_pattern(t);
      CHECK_OK(kl_npy_write(tmp_path, t));
      CHECK_OK(kl_npy_read(tmp_path, &back));
      if (back) {
        CHECK_EQ_INT(back->dtype, dtypes[d]);
        CHECK_EQ_INT(back->rank, rank);
        CHECK(kl_tensor_same_shape(back, t));
        CHECK_EQ_INT(back->nbytes, t->nbytes);
        CHECK(memcmp(back->data, t->data, t->nbytes) == 0);
      }
      kl_tensor_release(back);

      /* The file numpy would write: data at a multiple of 64, header ending in '\n'. */
      FILE *f = fopen(tmp_path, "rb");
      unsigned char head[4096];
      size_t n = f ? fread(head, 1, sizeof head, f) : 0;
      if (f)
        fclose(f);
      CHECK(n >= 10 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
      if (n >= 10) {
        size_t data_off = 10 + (size_t)(head[8] | head[9] << 8);
        CHECK_EQ_INT(data_off % 64, 0);
        CHECK_EQ_INT(n, data_off + t->nbytes);
        CHECK(data_off <= n && head[data_off - 1] == '\n');
        /* and reading it from memory gives the same tensor */
        back = NULL;
        CHECK_OK(kl_npy_read_buffer(head, n, "mem.npy", &back));
        CHECK(back && back->nbytes == t->nbytes && memcmp(back->data, t->data, t->nbytes) == 0);
        kl_tensor_release(back);
      }
      kl_tensor_release(t);
    }
  }
}

static void test_write_errors(void) {
  kl_tensor *t = NULL;
  int64_t shape[1] = {3};
  CHECK_OK(kl_tensor_create(KL_BF16, 1, shape, &t));
  if (t)
    CHECK_ERR(kl_npy_write(tmp_path, t), KL_ERR_UNSUPPORTED, "BFloat16");
  kl_tensor_release(t);
  t = NULL;
  CHECK_OK(kl_tensor_create(KL_F32, 1, shape, &t));
  if (t)
    CHECK_ERR(kl_npy_write("/nonexistent-dir/x.npy", t), KL_ERR_IO, "/nonexistent-dir/x.npy");
  kl_tensor_release(t);
  kl_tensor *none = NULL;
  CHECK_ERR(kl_npy_read("/nonexistent-dir/x.npy", &none), KL_ERR_IO, "cannot open");
  CHECK(none == NULL);
}

#define VALID "../malformed/valid/"

static kl_tensor *read_valid(const char *file) {
  char path[256];
  snprintf(path, sizeof path, VALID "%s", file);
  kl_tensor *t = NULL;
  CHECK_OK(kl_npy_read(path, &t));
  return t;
}

/* Files written by numpy (values as in gen_corpus.py). */
static void test_numpy_files(void) {
  kl_tensor *t = read_valid("np_f32.npy");
  if (t) {
    CHECK_EQ_INT(t->dtype, KL_F32);
    CHECK_EQ_INT(t->rank, 2);
    CHECK(t->shape[0] == 2 && t->shape[1] == 3);
    CHECK(((float *)t->data)[5] == 2.5f);
  }
  /* what we write for the same array is byte for byte what numpy wrote */
  if (t) {
    CHECK_OK(kl_npy_write(tmp_path, t));
    FILE *a = fopen(VALID "np_f32.npy", "rb"), *b = fopen(tmp_path, "rb");
    unsigned char ba[512], bb[512];
    size_t na = a ? fread(ba, 1, sizeof ba, a) : 0, nb = b ? fread(bb, 1, sizeof bb, b) : 0;
    CHECK(na > 64 && na == nb && memcmp(ba, bb, na) == 0);
    if (a)
      fclose(a);
    if (b)
      fclose(b);
  }
  kl_tensor_release(t);
  t = read_valid("np_f64.npy");
  CHECK(t && t->dtype == KL_F64 && t->numel == 2 && ((double *)t->data)[0] == M_PI);
  kl_tensor_release(t);
  t = read_valid("np_f16.npy");
  CHECK(t && t->dtype == KL_F16 && t->numel == 3);
  if (t) {
    CHECK(kl_f16_to_f32(((uint16_t *)t->data)[0]) == 1.5f);
    CHECK(kl_f16_to_f32(((uint16_t *)t->data)[2]) == 65504.0f);
  }
  kl_tensor_release(t);
  t = read_valid("np_i32.npy");
  CHECK(t && t->dtype == KL_I32 && t->rank == 2 && ((int32_t *)t->data)[3] == -4);
  kl_tensor_release(t);
  t = read_valid("np_i64.npy");
  CHECK(t && t->dtype == KL_I64 && t->numel == 4 && ((int64_t *)t->data)[3] == (int64_t)1 << 40);
  CHECK(t && ((int64_t *)t->data)[0] == -2);
  kl_tensor_release(t);
  t = read_valid("np_i8.npy");
  CHECK(t && t->dtype == KL_I8 && ((int8_t *)t->data)[0] == -128 && ((int8_t *)t->data)[1] == 127);
  kl_tensor_release(t);
  t = read_valid("np_u8.npy"); /* rank 0 */
  CHECK(t && t->dtype == KL_U8 && t->rank == 0 && t->numel == 1 && ((uint8_t *)t->data)[0] == 7);
  kl_tensor_release(t);
  t = read_valid("np_bool.npy");
  CHECK(t && t->dtype == KL_BOOL && t->numel == 4);
  if (t) {
    const uint8_t *b = t->data;
    CHECK(b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 1);
  }
  kl_tensor_release(t);
  t = read_valid("np_empty.npy");
  CHECK(t && t->rank == 2 && t->shape[0] == 0 && t->shape[1] == 3 && t->numel == 0);
  kl_tensor_release(t);
  t = read_valid("np_v2.npy");
  CHECK(t && t->dtype == KL_I32 && t->numel == 4 && ((int32_t *)t->data)[3] == 3);
  kl_tensor_release(t);
  t = read_valid("np_v3.npy");
  CHECK(t && t->dtype == KL_F64 && t->numel == 3 && ((double *)t->data)[2] == 2.0);
  kl_tensor_release(t);
  /* spellings numpy accepts */
  t = read_valid("spelling.npy");
  CHECK(t && t->rank == 2 && t->shape[1] == 3 && ((float *)t->data)[4] == 4.0f);
  kl_tensor_release(t);
  t = read_valid("py2_long.npy");
  CHECK(t && t->rank == 2 && t->shape[0] == 2);
  kl_tensor_release(t);
  t = read_valid("fortran_1d.npy");
  CHECK(t && t->rank == 1 && t->shape[0] == 6);
  kl_tensor_release(t);
  t = read_valid("i1_spelling.npy");
  CHECK(t && t->dtype == KL_I8 && ((int8_t *)t->data)[0] == -1);
  kl_tensor_release(t);
}

/* A .npy image with the given dict (padded as numpy pads) and data bytes. */
static size_t make_npy(unsigned char *buf, const char *dict, const void *data, size_t nbytes) {
  size_t n = strlen(dict);
  size_t total = (10 + n + 1 + 63) / 64 * 64;
  size_t hlen = total - 10;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hlen & 0xff);
  buf[9] = (unsigned char)(hlen >> 8);
  memcpy(buf + 10, dict, n);
  memset(buf + 10 + n, ' ', hlen - n - 1);
  buf[total - 1] = '\n';
  memcpy(buf + total, data, nbytes);
  return total + nbytes;
}

static void expect_read_error(const char *dict, size_t nbytes, kl_status_code code,
                              const char *substr) {
  static unsigned char buf[8192];
  static const unsigned char zeros[256];
  size_t n = make_npy(buf, dict, zeros, nbytes);
  kl_tensor *t = NULL;
  CHECK_ERR(kl_npy_read_buffer(buf, n, "bad.npy", &t), code, substr);
  CHECK(t == NULL);
  /* the message names the file */
  kl_status s = kl_npy_read_buffer(buf, n, "named.npy", &t);
  CHECK(s && strstr(kl_status_message(s), "named.npy"));
  kl_status_destroy(s);
}

static void test_header_errors(void) {
  expect_read_error("{'descr': '<f4', 'shape': (2,), }", 8, KL_ERR_FORMAT, "fortran_order");
  expect_read_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}", 8,
                    KL_ERR_FORMAT, "duplicate key");
  expect_read_error("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}", 8, KL_ERR_FORMAT,
                    "True or False");
  expect_read_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", 24, KL_ERR_FORMAT,
                    "expected ',' or ')'");
  expect_read_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,),, }", 8,
                    KL_ERR_FORMAT, "bad .npy header");
  expect_read_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} }", 8,
                    KL_ERR_FORMAT, "after '}'");
  expect_read_error("{'descr': '>i4', 'fortran_order': False, 'shape': (2,)}", 8,
                    KL_ERR_UNSUPPORTED, "big-endian");
  expect_read_error("{'descr': '<U3', 'fortran_order': False, 'shape': (2,)}", 24,
                    KL_ERR_UNSUPPORTED, "'<U3' is not supported");
  expect_read_error("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}", 16,
                    KL_ERR_UNSUPPORTED, "not supported");
  expect_read_error("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}", 16,
                    KL_ERR_UNSUPPORTED, "Fortran order");
  expect_read_error("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 8, KL_ERR_FORMAT,
                    "negative dim");
  expect_read_error("{'descr': '<f8', 'fortran_order': False, 'shape': (3037000500, 3037000500)}",
                    8, KL_ERR_FORMAT, "overflows");
  expect_read_error("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 8, KL_ERR_FORMAT,
                    "too short: Float [3] needs 12 bytes, the file has 8");
  expect_read_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 8, KL_ERR_FORMAT,
                    "too long");
  /* one-byte types take any byte-order character; rank 0 is "()" */
  unsigned char buf[256];
  const uint8_t v = 200;
  size_t n = make_npy(buf, "{'descr': '>u1', 'fortran_order': False, 'shape': ()}", &v, 1);
  kl_tensor *t = NULL;
  CHECK_OK(kl_npy_read_buffer(buf, n, "u1.npy", &t));
  CHECK(t && t->dtype == KL_U8 && t->rank == 0 && ((uint8_t *)t->data)[0] == 200);
  kl_tensor_release(t);
  t = NULL;
  n = make_npy(buf, "{'descr': '=b1', 'fortran_order': False, 'shape': (1,)}", &v, 1);
  CHECK_OK(kl_npy_read_buffer(buf, n, "b1.npy", &t));
  CHECK(t && t->dtype == KL_BOOL);
  kl_tensor_release(t);
}

static void test_preamble_errors(void) {
  unsigned char buf[256];
  const float data[2] = {1, 2};
  size_t n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", data, 8);
  kl_tensor *t = NULL;
  CHECK_ERR(kl_npy_read_buffer(buf, 0, "e.npy", &t), KL_ERR_FORMAT, "bad magic");
  CHECK_ERR(kl_npy_read_buffer(buf, 7, "e.npy", &t), KL_ERR_FORMAT, "truncated");
  CHECK_ERR(kl_npy_read_buffer(buf, 9, "e.npy", &t), KL_ERR_FORMAT, "truncated");
  CHECK_ERR(kl_npy_read_buffer(buf, 40, "e.npy", &t), KL_ERR_FORMAT, "past the end");
  /* every prefix fails, none crashes */
  for (size_t k = 0; k < n; k++) {
    kl_status s = kl_npy_read_buffer(buf, k, "prefix.npy", &t);
    CHECK(s != NULL);
    kl_status_destroy(s);
  }
  buf[6] = 9;
  CHECK_ERR(kl_npy_read_buffer(buf, n, "v9.npy", &t), KL_ERR_UNSUPPORTED, "version 9.0");
  buf[6] = 1;
  buf[0] = 'X';
  CHECK_ERR(kl_npy_read_buffer(buf, n, "m.npy", &t), KL_ERR_FORMAT, "bad magic");
  buf[0] = 0x93;
  /* the size limit is honoured before allocating */
  size_t old = kl_tensor_max_bytes();
  kl_tensor_set_max_bytes(4);
  CHECK_ERR(kl_npy_read_buffer(buf, n, "lim.npy", &t), KL_ERR_LIMIT, "over the limit");
  kl_tensor_set_max_bytes(old);
  CHECK_OK(kl_npy_read_buffer(buf, n, "ok.npy", &t));
  CHECK(t && ((float *)t->data)[1] == 2.0f);
  kl_tensor_release(t);
}

int main(void) {
  make_tmp_path();
  test_round_trips();
  test_write_errors();
  test_numpy_files();
  test_header_errors();
  test_preamble_errors();
  unlink(tmp_path);
  return check_finish();
}
