/* Printing a tensor as PyTorch's print(tensor) lays it out. `kiln run` prints outputs with it
 * and the eager API's kl_print uses it too, so both show the same picture; it lives in
 * runtime/ because both tools/ and frontend/ need it. */
#ifndef KL_RUNTIME_TENSOR_PRINT_H
#define KL_RUNTIME_TENSOR_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"
#include "tensor.h"

typedef struct kl_tensor_print_options {
  int64_t threshold;  /* summarize (with "...") when numel exceeds this; PyTorch uses 1000 */
  int edge_items;     /* items shown at each end of a summarized dim; PyTorch uses 3 */
  int line_width;     /* wrap 1-D rows at this width; PyTorch uses 80 */
  int precision;      /* digits after the point; PyTorch uses 4 */
  /* false: PyTorch's ending, naming the dtype only when it is not the default of its kind
   * (", dtype=torch.float16"). true: always ", shape=(1, 2), dtype=Float" (kl_print). */
  bool shape_and_dtype;
} kl_tensor_print_options;

/* PyTorch's defaults (shape_and_dtype false). */
kl_tensor_print_options kl_tensor_print_defaults(void);
/* Prints t as PyTorch prints a tensor, "tensor([[0.1000, 2.0000], ...])", then a newline.
 * opts may be NULL (the defaults). */
kl_status kl_tensor_print(const kl_tensor *t, const kl_tensor_print_options *opts, FILE *f);

#endif
