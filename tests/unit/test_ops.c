/* The op table: every row is well formed, names are unique and look up, schemas parse. */
#include "check.h"
#include "ir/ir.h"

int main(void) {
  for (int i = 0; i < KL_OP_COUNT; i++) {
    const kl_op_info *info = kl_op_get((kl_op)i);
    CHECK(info->name && strstr(info->name, "::"));
    CHECK(info->shape != NULL);
    CHECK(info->min_inputs >= 0);
    CHECK(info->max_inputs < 0 || info->max_inputs >= info->min_inputs);
    CHECK(info->max_outputs < 0 || info->max_outputs >= info->min_outputs);
    kl_op found;
    CHECK(kl_op_lookup(info->name, strlen(info->name), &found) && found == (kl_op)i);
    for (int j = 0; j < i; j++)
      CHECK(strcmp(info->name, kl_op_get((kl_op)j)->name) != 0);
    int colons = 0;
    for (const char *p = info->attr_spec; *p; p++)
      colons += *p == ':';
    CHECK_EQ_INT(info->n_attrs, colons);
    for (int a = 0; a < info->n_attrs; a++) {
      CHECK(info->attrs[a].kind >= 0 && info->attrs[a].kind < KL_ATTR_KIND_COUNT);
      CHECK(kl_op_attr_schema((kl_op)i, info->attrs[a].name) == &info->attrs[a]);
    }
  }
  const kl_attr_schema *s = kl_op_attr_schema(KL_OP_CONV2D, "groups");
  CHECK(s && s->kind == KL_ATTR_INT && !s->required);
  s = kl_op_attr_schema(KL_OP_MAX_POOL2D, "kernel_size");
  CHECK(s && s->kind == KL_ATTR_INTS && s->required);
  s = kl_op_attr_schema(KL_OP_CAST, "dtype");
  CHECK(s && s->kind == KL_ATTR_DTYPE && s->required);
  CHECK(kl_op_attr_schema(KL_OP_RELU, "groups") == NULL);
  kl_op op;
  CHECK(!kl_op_lookup("aten::relu", 9, &op)); /* a prefix is not a name */
  CHECK(!kl_op_lookup("aten::nope", 10, &op));
  CHECK(kl_op_lookup("aten::conv2d", 12, &op) && op == KL_OP_CONV2D);
  CHECK_EQ_INT(kl_op_get(KL_OP_IF)->n_blocks, 2);
  CHECK_EQ_INT(kl_op_get(KL_OP_ADD)->category, KL_FUSE_BROADCAST);
  CHECK_EQ_INT(kl_op_get(KL_OP_CONV2D)->category, KL_FUSE_OUT_ELEMENTWISE);
  CHECK_STREQ(kl_fuse_category_name(KL_FUSE_REDUCTION), "reduction");
  return check_finish();
}
