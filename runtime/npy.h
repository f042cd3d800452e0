/* NumPy .npy files (format versions 1.0, 2.0 and 3.0), C order, for dtypes f32, f64, f16,
 * i32, i64, i8, u8 and bool. Fortran order, other dtypes, big-endian data and malformed headers
 * are errors naming the file and what was wrong. Sizes are checked before allocating. */
#ifndef KL_RUNTIME_NPY_H
#define KL_RUNTIME_NPY_H

#include <stddef.h>

#include "status.h"
#include "tensor.h"

kl_status kl_npy_read(const char *path, kl_tensor **out_tensor);
/* name is used in messages only. */
kl_status kl_npy_read_buffer(const void *data, size_t size, const char *name,
                             kl_tensor **out_tensor);
kl_status kl_npy_write(const char *path, const kl_tensor *t); /* bf16 is refused: numpy has none */

#endif
