/* Element types. The IR, the runtime and every file format share this one enum.
 * Half and bfloat16 are stored as uint16_t bit patterns and computed in float. */
#ifndef KL_RUNTIME_DTYPE_H
#define KL_RUNTIME_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kl_dtype {
  KL_F32,
  KL_F16,
  KL_BF16,
  KL_F64,
  KL_I8,
  KL_U8,
  KL_I32,
  KL_I64,
  KL_BOOL,
  KL_DTYPE_COUNT
} kl_dtype;

size_t kl_dtype_size(kl_dtype dt);          /* bytes per element */
const char *kl_dtype_ir_name(kl_dtype dt);  /* "Float", "Half", "BFloat16", "Double", "Char", "Byte", "Int", "Long", "Bool" */
const char *kl_dtype_short_name(kl_dtype dt); /* "f32", "f16", "bf16", "f64", "i8", "u8", "i32", "i64", "bool" */
/* Looks up an IR type name ("Float") of length len. */
bool kl_dtype_from_ir_name(const char *name, size_t len, kl_dtype *out);
bool kl_dtype_from_short_name(const char *name, kl_dtype *out);
bool kl_dtype_is_float(kl_dtype dt); /* f32, f16, bf16, f64 */
bool kl_dtype_is_valid(int dt);

float kl_f16_to_f32(uint16_t h);
uint16_t kl_f32_to_f16(float f);  /* round to nearest even */
float kl_bf16_to_f32(uint16_t h);
uint16_t kl_f32_to_bf16(float f); /* round to nearest even */

/* Element i of a buffer of type dt, converted. Loading an i64 as double rounds above 2^53;
 * integer code paths use the _i64 forms. Stores convert like a C cast (bool: != 0). */
double kl_dtype_load_f64(kl_dtype dt, const void *data, size_t i);
int64_t kl_dtype_load_i64(kl_dtype dt, const void *data, size_t i);
void kl_dtype_store_f64(kl_dtype dt, void *data, size_t i, double v);
void kl_dtype_store_i64(kl_dtype dt, void *data, size_t i, int64_t v);

#endif
