/* Tensors: creation checks (negative dims, overflow, rank, size limit), wrap, clone, refcounts. */
#include <stdint.h>

#include "check.h"
#include "runtime/checked.h"
#include "runtime/tensor.h"

int main(void) {
  kl_tensor *t = NULL;
  int64_t shape[3] = {2, 3, 4};
  CHECK_OK(kl_tensor_create(KL_F32, 3, shape, &t));
  CHECK_EQ_INT(t->numel, 24);
  CHECK_EQ_INT(t->nbytes, 96);
  CHECK(((uintptr_t)t->data & 63) == 0);
  CHECK(((float *)t->data)[23] == 0.0f);
  ((float *)t->data)[5] = 2.5f;
  kl_tensor *c = NULL;
  CHECK_OK(kl_tensor_clone(t, &c));
  CHECK(c->data != t->data && ((float *)c->data)[5] == 2.5f && kl_tensor_same_shape(c, t));
  kl_tensor_release(c);
  CHECK(kl_tensor_retain(t) == t);
  CHECK_EQ_INT(t->refcount, 2);
  kl_tensor_release(t);
  kl_tensor_release(t);

  CHECK_OK(kl_tensor_create(KL_I64, 0, NULL, &t)); /* a scalar */
  CHECK_EQ_INT(t->numel, 1);
  kl_tensor_release(t);

  int64_t neg[2] = {2, -1};
  CHECK_ERR(kl_tensor_create(KL_F32, 2, neg, &t), KL_ERR_INVALID_ARGUMENT, "negative dim");
  int64_t huge[2] = {INT64_MAX / 2, 3};
  CHECK_ERR(kl_tensor_create(KL_F32, 2, huge, &t), KL_ERR_LIMIT, "overflows");
  int64_t bytes_overflow[1] = {INT64_MAX / 2};
  CHECK_ERR(kl_tensor_create(KL_F64, 1, bytes_overflow, &t), KL_ERR_LIMIT, NULL);
  int64_t trillion[2] = {1000000, 1000000};
  CHECK_ERR(kl_tensor_create(KL_F32, 2, trillion, &t), KL_ERR_LIMIT, "over the limit");
  int64_t ranky[KL_MAX_RANK + 1] = {0};
  CHECK_ERR(kl_tensor_create(KL_F32, KL_MAX_RANK + 1, ranky, &t), KL_ERR_LIMIT, "rank 33");
  CHECK_ERR(kl_tensor_create((kl_dtype)42, 1, shape, &t), KL_ERR_INVALID_ARGUMENT, "dtype");

  size_t old = kl_tensor_max_bytes();
  kl_tensor_set_max_bytes(64);
  int64_t s17[1] = {17};
  CHECK_ERR(kl_tensor_create(KL_F32, 1, s17, &t), KL_ERR_LIMIT, "68 bytes");
  kl_tensor_set_max_bytes(old);

  float buf[6] = {1, 2, 3, 4, 5, 6};
  int64_t s23[2] = {2, 3};
  CHECK_OK(kl_tensor_wrap(KL_F32, 2, s23, buf, sizeof buf, &t));
  CHECK(t->data == buf && !t->owns_data);
  kl_tensor_release(t);
  CHECK_ERR(kl_tensor_wrap(KL_F32, 2, s23, buf, 20, &t), KL_ERR_INVALID_ARGUMENT, "20 bytes");

  char text[64];
  kl_shape_format(shape, 3, text, sizeof text);
  CHECK_STREQ(text, "[2, 3, 4]");
  kl_shape_format(NULL, 0, text, sizeof text);
  CHECK_STREQ(text, "[]");
  kl_shape_format(shape, 3, text, 5); /* truncated, still terminated */
  CHECK_EQ_INT(strlen(text), 4);

  int64_t p;
  CHECK(!kl_mul_i64(INT64_MAX, 2, &p));
  CHECK(kl_shape_numel(shape, 3, &p) && p == 24);
  int64_t over[3] = {1 << 30, 1 << 30, 1 << 30};
  CHECK(!kl_shape_numel(over, 3, &p));
  return check_finish();
}
