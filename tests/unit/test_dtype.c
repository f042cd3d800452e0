/* dtypes: names, sizes, and half/bfloat16 conversions (rounding, subnormals, inf, nan). */
#include <math.h>

#include "check.h"
#include "runtime/dtype.h"

int main(void) {
  CHECK_EQ_INT(kl_dtype_size(KL_F32), 4);
  CHECK_EQ_INT(kl_dtype_size(KL_BF16), 2);
  CHECK_EQ_INT(kl_dtype_size(KL_I64), 8);
  CHECK_EQ_INT(kl_dtype_size(KL_BOOL), 1);
  CHECK_STREQ(kl_dtype_ir_name(KL_I8), "Char");
  CHECK_STREQ(kl_dtype_ir_name(KL_U8), "Byte");
  CHECK_STREQ(kl_dtype_short_name(KL_BF16), "bf16");
  for (int i = 0; i < KL_DTYPE_COUNT; i++) {
    kl_dtype back;
    const char *name = kl_dtype_ir_name((kl_dtype)i);
    CHECK(kl_dtype_from_ir_name(name, strlen(name), &back) && back == (kl_dtype)i);
    CHECK(kl_dtype_from_short_name(kl_dtype_short_name((kl_dtype)i), &back) &&
          back == (kl_dtype)i);
  }
  kl_dtype dt;
  CHECK(!kl_dtype_from_ir_name("Floa", 4, &dt));
  CHECK(!kl_dtype_from_ir_name("Floats", 6, &dt));
  CHECK(kl_dtype_is_float(KL_BF16) && !kl_dtype_is_float(KL_I32));

  /* half: exact values, rounding to nearest even, overflow, subnormals, nan */
  CHECK_EQ_INT(kl_f32_to_f16(1.0f), 0x3c00);
  CHECK_EQ_INT(kl_f32_to_f16(-2.0f), 0xc000);
  CHECK_EQ_INT(kl_f32_to_f16(65504.0f), 0x7bff);
  CHECK_EQ_INT(kl_f32_to_f16(65520.0f), 0x7c00);  /* rounds up to inf */
  CHECK_EQ_INT(kl_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie goes to even */
  CHECK_EQ_INT(kl_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
  CHECK_EQ_INT(kl_f32_to_f16(0x1p-24f), 0x0001); /* smallest subnormal */
  CHECK_EQ_INT(kl_f32_to_f16(0x1p-26f), 0x0000);
  CHECK(kl_f16_to_f32(0x0001) == 0x1p-24f);
  CHECK(kl_f16_to_f32(0x7bff) == 65504.0f);
  CHECK(isinf(kl_f16_to_f32(0xfc00)) && kl_f16_to_f32(0xfc00) < 0);
  CHECK(isnan(kl_f16_to_f32(kl_f32_to_f16(NAN))));
  /* every half value round-trips through float */
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = kl_f16_to_f32((uint16_t)h);
    if (!isnan(f) && kl_f32_to_f16(f) != h)
      bad++;
  }
  CHECK_EQ_INT(bad, 0);

  /* bfloat16 */
  CHECK_EQ_INT(kl_f32_to_bf16(1.0f), 0x3f80);
  CHECK(kl_bf16_to_f32(0x3f80) == 1.0f);
  CHECK_EQ_INT(kl_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80); /* tie to even */
  CHECK_EQ_INT(kl_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  CHECK(isnan(kl_bf16_to_f32(kl_f32_to_bf16(NAN))));

  /* generic loads and stores */
  int64_t big[1] = {(int64_t)1 << 60};
  CHECK(kl_dtype_load_i64(KL_I64, big, 0) == (int64_t)1 << 60);
  uint8_t b[2];
  kl_dtype_store_f64(KL_BOOL, b, 0, 0.5);
  kl_dtype_store_f64(KL_BOOL, b, 1, 0.0);
  CHECK(b[0] == 1 && b[1] == 0);
  int32_t i32[1];
  kl_dtype_store_f64(KL_I32, i32, 0, -3.7);
  CHECK_EQ_INT(i32[0], -3);
  kl_dtype_store_f64(KL_I32, i32, 0, NAN);
  CHECK_EQ_INT(i32[0], 0);
  return check_finish();
}
