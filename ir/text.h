/* The text form of the IR, TorchScript style:
 *
 *   graph<N=1..64>(%x : Float(N, 10)):
 *     %fc1.weight : Float(5, 10) = prim::Param[name="fc1.weight"]()
 *     %1 : Float(N, 5) = aten::linear(%x, %fc1.weight)
 *     %2 : Float(N, 5) = prim::FusionGroup_0(%1)
 *     return (%2)
 *   with prim::FusionGroup_0 = graph(%a : Float(N, 5)):
 *     %b : Float(N, 5) = aten::relu(%a)
 *     return (%b)
 *
 * Printing a parsed file gives back the same bytes. The full grammar is in ir/parse.c. */
#ifndef KL_IR_TEXT_H
#define KL_IR_TEXT_H

#include <stddef.h>
#include <stdio.h>

#include "ir.h"

typedef struct kl_ir_print_options {
  /* When set, a tensor attribute for which tensor_ref returns >= 0 is printed as a reference
   * "Float(64, 3){@N}" to blob N instead of inline values (the .kir writer uses this). */
  int64_t (*tensor_ref)(void *ctx, const kl_tensor *t);
  void *ctx;
} kl_ir_print_options;

/* Prints g into a malloc'd NUL-terminated string (*out_len excludes the NUL). opts may be NULL. */
kl_status kl_ir_print(const kl_ir_graph *g, const kl_ir_print_options *opts, char **out_text,
                      size_t *out_len);
kl_status kl_ir_print_file(const kl_ir_graph *g, FILE *f);

typedef struct kl_ir_parse_options {
  const char *filename; /* for messages: "net.ir:3:7: expected ..., found ..." */
  /* Resolves a "{@N}" tensor reference to a new tensor of the given type (the .kir loader
   * supplies this); without it a reference is a parse error. */
  kl_status (*resolve_tensor)(void *ctx, int64_t index, const kl_ir_type *type,
                              kl_tensor **out_tensor);
  void *ctx;
} kl_ir_parse_options;

/* Parses text (len bytes, need not be NUL-terminated) into a new graph. Types omitted from a
 * definition are inferred; the result passes kl_ir_verify. opts may be NULL. */
kl_status kl_ir_parse(const char *text, size_t len, const kl_ir_parse_options *opts,
                      kl_ir_graph **out_graph);
kl_status kl_ir_parse_file(const char *path, kl_ir_graph **out_graph);

/* Parses one attribute value of the given kind from text ("[1, 2]", "1e-05", "\"tanh\"", "Long")
 * into attr (name left unset), allocating in g's arena. */
kl_status kl_ir_parse_attr_value(kl_ir_graph *g, const char *text, size_t len,
                                 kl_ir_attr_kind kind, kl_ir_attr *out_attr);

#endif
