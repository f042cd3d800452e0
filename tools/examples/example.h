/* What every define-by-run example does after building its model: run it eagerly and print
 * the result, write the input and the eager output as .npy files, trace the same forward
 * function into OUTDIR/NAME.kir, and check the trace on a second random input. The examples
 * differ only in their models; this keeps that story in one place. */
#ifndef KL_TOOLS_EXAMPLE_H
#define KL_TOOLS_EXAMPLE_H

#include <stdint.h>

#include "frontend/kiln.h"

typedef struct kl_example {
  const char *name;      /* "mlp": files NAME.kir, NAME_input.npy, NAME_output.npy */
  kl_forward_fn forward; /* one input, one output */
  void *model;           /* forward's context */
  kl_module *params;     /* the model's parameters (recorded as prim::Param) */
  int input_rank;
  const int64_t *input_shape; /* inputs are randn Float tensors of this shape */
} kl_example;

/* The output directory from the command line ([OUTDIR], default "."), or NULL after printing
 * the usage line when the arguments are wrong. */
const char *kl_example_outdir(const char *name, int argc, char **argv);

/* Runs the story above with inputs drawn from gen; returns the exit code (0 or 1). */
int kl_example_run(const kl_example *ex, kl_generator *gen, const char *outdir);

#endif
