/* Element type names, sizes and conversions, including IEEE half and bfloat16. */
#include "dtype.h"

#include <math.h>
#include <string.h>

static const struct {
  size_t size;
  const char *ir_name;
  const char *short_name;
} dtype_info[KL_DTYPE_COUNT] = {
    [KL_F32] = {4, "Float", "f32"}, [KL_F16] = {2, "Half", "f16"},
    [KL_BF16] = {2, "BFloat16", "bf16"}, [KL_F64] = {8, "Double", "f64"},
    [KL_I8] = {1, "Char", "i8"}, [KL_U8] = {1, "Byte", "u8"},
    [KL_I32] = {4, "Int", "i32"}, [KL_I64] = {8, "Long", "i64"},
    [KL_BOOL] = {1, "Bool", "bool"},
};

bool kl_dtype_is_valid(int dt) { return dt >= 0 && dt < KL_DTYPE_COUNT; }
size_t kl_dtype_size(kl_dtype dt) { return kl_dtype_is_valid(dt) ? dtype_info[dt].size : 0; }
const char *kl_dtype_ir_name(kl_dtype dt) {
  return kl_dtype_is_valid(dt) ? dtype_info[dt].ir_name : "?";
}
const char *kl_dtype_short_name(kl_dtype dt) {
  return kl_dtype_is_valid(dt) ? dtype_info[dt].short_name : "?";
}

bool kl_dtype_from_ir_name(const char *name, size_t len, kl_dtype *out) {
  for (int i = 0; i < KL_DTYPE_COUNT; i++) {
    const char *n = dtype_info[i].ir_name;
    if (strlen(n) == len && memcmp(n, name, len) == 0) {
      *out = (kl_dtype)i;
      return true;
    }
  }
  return false;
}

bool kl_dtype_from_short_name(const char *name, kl_dtype *out) {
  for (int i = 0; i < KL_DTYPE_COUNT; i++) {
    if (strcmp(dtype_info[i].short_name, name) == 0) {
      *out = (kl_dtype)i;
      return true;
    }
  }
  return false;
}

bool kl_dtype_is_float(kl_dtype dt) {
  return dt == KL_F32 || dt == KL_F16 || dt == KL_BF16 || dt == KL_F64;
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float kl_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) /* inf or nan */
    return bits_f32(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) { /* zero or subnormal: mant * 2^-24 */
    float v = (float)mant * 0x1p-24f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t kl_f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) /* inf or nan (keep nan quiet) */
    return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
  if (abs >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
    return sign | 0x7c00;
  if (abs < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
    float a = bits_f32(abs);
    /* a * 2^24 rounded to nearest even gives the subnormal mantissa */
    float m = nearbyintf(a * 0x1p24f);
    return sign | (uint16_t)m;
  }
  /* normal: rebias exponent, round mantissa to 10 bits, nearest even */
  uint32_t mant = abs + ((uint32_t)(15 - 127) << 23);
  uint32_t round = 0xfff + ((mant >> 13) & 1);
  mant += round;
  return sign | (uint16_t)(mant >> 13);
}

float kl_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t kl_f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) /* nan stays nan */
    return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

double kl_dtype_load_f64(kl_dtype dt, const void *data, size_t i) {
  switch (dt) {
  case KL_F32: return ((const float *)data)[i];
  case KL_F16: return kl_f16_to_f32(((const uint16_t *)data)[i]);
  case KL_BF16: return kl_bf16_to_f32(((const uint16_t *)data)[i]);
  case KL_F64: return ((const double *)data)[i];
  case KL_I8: return ((const int8_t *)data)[i];
  case KL_U8: return ((const uint8_t *)data)[i];
  case KL_I32: return ((const int32_t *)data)[i];
  case KL_I64: return (double)((const int64_t *)data)[i];
  case KL_BOOL: return ((const uint8_t *)data)[i] != 0;
  default: return 0;
  }
}

/* Float to integer as a C cast would, but defined for nan and out-of-range values. */
static int64_t f64_to_i64(double v) {
  if (isnan(v))
    return 0;
  if (v >= 9223372036854775807.0)
    return INT64_MAX;
  if (v <= -9223372036854775808.0)
    return INT64_MIN;
  return (int64_t)v;
}

int64_t kl_dtype_load_i64(kl_dtype dt, const void *data, size_t i) {
  switch (dt) {
  case KL_I8: return ((const int8_t *)data)[i];
  case KL_U8: return ((const uint8_t *)data)[i];
  case KL_I32: return ((const int32_t *)data)[i];
  case KL_I64: return ((const int64_t *)data)[i];
  case KL_BOOL: return ((const uint8_t *)data)[i] != 0;
  default: return f64_to_i64(kl_dtype_load_f64(dt, data, i));
  }
}

void kl_dtype_store_f64(kl_dtype dt, void *data, size_t i, double v) {
  switch (dt) {
  case KL_F32: ((float *)data)[i] = (float)v; break;
  case KL_F16: ((uint16_t *)data)[i] = kl_f32_to_f16((float)v); break;
  case KL_BF16: ((uint16_t *)data)[i] = kl_f32_to_bf16((float)v); break;
  case KL_F64: ((double *)data)[i] = v; break;
  case KL_BOOL: ((uint8_t *)data)[i] = v != 0; break;
  default: kl_dtype_store_i64(dt, data, i, f64_to_i64(v)); break;
  }
}

void kl_dtype_store_i64(kl_dtype dt, void *data, size_t i, int64_t v) {
  switch (dt) {
  case KL_I8: ((int8_t *)data)[i] = (int8_t)v; break;
  case KL_U8: ((uint8_t *)data)[i] = (uint8_t)v; break;
  case KL_I32: ((int32_t *)data)[i] = (int32_t)v; break;
  case KL_I64: ((int64_t *)data)[i] = v; break;
  case KL_BOOL: ((uint8_t *)data)[i] = v != 0; break;
  default: kl_dtype_store_f64(dt, data, i, (double)v); break;
  }
}
