/* Tests for passes/plan_memory.c on small graphs written as text IR, with every offset worked
 * out by hand: chains reuse buffers (two for an out-of-place chain, one in place), diamonds keep
 * both branches alive, in place only where the input dies at the node, 64-byte alignment,
 * best fit among free ranges, uses inside sub-blocks, graph outputs and weights left out, and
 * symbolic dims planned at their bounds (or refused without one).
 *
 * Float(16) is 64 bytes, exactly one alignment unit, so most sizes below are multiples of 64. */
#include <stdint.h>
#include <string.h>

#include "ir/text.h"
#include "passes/plan_memory.h"
#include "tests/unit/check.h"

static kl_ir_graph *parse(const char *text) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  return g;
}

static kl_memory_plan *plan_of(const kl_ir_graph *g) {
  kl_memory_plan *plan = NULL;
  if (g)
    CHECK_OK(kl_memory_plan_create(g, &plan));
  return plan;
}

/* Offset of the value named name (-3 when there is no such value). */
static int64_t offset_of(const kl_ir_graph *g, const kl_memory_plan *plan, const char *name) {
  kl_ir_value *v = kl_ir_graph_find_value(g, name);
  CHECK(v != NULL);
  return v ? plan->offset[v->id] : -3;
}

static int inplace_of(const kl_ir_graph *g, const kl_memory_plan *plan, const char *name) {
  kl_ir_value *v = kl_ir_graph_find_value(g, name);
  CHECK(v != NULL);
  return v ? plan->inplace_of[v->id] : -3;
}

static int id_of(const kl_ir_graph *g, const char *name) {
  kl_ir_value *v = kl_ir_graph_find_value(g, name);
  CHECK(v != NULL);
  return v ? v->id : -3;
}

/* relu is elementwise: each link writes over the one before, so one buffer serves the chain.
 * The last link is the graph output and the input is the caller's: neither is planned. */
static void test_chain_in_place(void) {
  kl_ir_graph *g = parse("graph(%x : Float(4, 16)):\n"
                         "  %r1 : Float(4, 16) = aten::relu(%x)\n"
                         "  %r2 : Float(4, 16) = aten::relu(%r1)\n"
                         "  %r3 : Float(4, 16) = aten::sigmoid(%r2)\n"
                         "  %r4 : Float(4, 16) = aten::relu(%r3)\n"
                         "  %r5 : Float(4, 16) = aten::relu(%r4)\n"
                         "  return (%r5)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(plan->n_planned, 4);
    CHECK_EQ_INT(plan->n_inplace, 3);
    CHECK_EQ_INT(plan->workspace_bytes, 256);
    CHECK_EQ_INT(plan->peak_bytes, 256);
    CHECK_EQ_INT(plan->naive_bytes, 4 * 256);
    for (int i = 1; i <= 4; i++) {
      char name[8];
      snprintf(name, sizeof name, "r%d", i);
      CHECK_EQ_INT(offset_of(g, plan, name), 0);
      CHECK_EQ_INT(plan->size[id_of(g, name)], 256);
    }
    CHECK_EQ_INT(inplace_of(g, plan, "r1"), -1); /* %x belongs to the caller */
    CHECK_EQ_INT(inplace_of(g, plan, "r2"), id_of(g, "r1"));
    CHECK_EQ_INT(inplace_of(g, plan, "r4"), id_of(g, "r3"));
    CHECK_EQ_INT(offset_of(g, plan, "r5"), -1);
    CHECK_EQ_INT(offset_of(g, plan, "x"), -1);
    CHECK(!plan->used_symbol_bounds);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* softmax is not elementwise: every link needs a buffer apart from its input, so the chain
 * ping-pongs between two buffers. */
static void test_chain_two_buffers(void) {
  kl_ir_graph *g = parse("graph(%x : Float(4, 16)):\n"
                         "  %s1 : Float(4, 16) = aten::softmax[dim=1](%x)\n"
                         "  %s2 : Float(4, 16) = aten::softmax[dim=1](%s1)\n"
                         "  %s3 : Float(4, 16) = aten::softmax[dim=1](%s2)\n"
                         "  %s4 : Float(4, 16) = aten::softmax[dim=1](%s3)\n"
                         "  %s5 : Float(4, 16) = aten::softmax[dim=1](%s4)\n"
                         "  %s6 : Float(4, 16) = aten::softmax[dim=1](%s5)\n"
                         "  return (%s6)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(plan->n_planned, 5);
    CHECK_EQ_INT(plan->n_inplace, 0);
    CHECK_EQ_INT(plan->workspace_bytes, 512);
    CHECK_EQ_INT(plan->peak_bytes, 512);
    CHECK_EQ_INT(plan->naive_bytes, 5 * 256);
    CHECK_EQ_INT(offset_of(g, plan, "s1"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "s2"), 256);
    CHECK_EQ_INT(offset_of(g, plan, "s3"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "s4"), 256);
    CHECK_EQ_INT(offset_of(g, plan, "s5"), 0);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* A diamond: %a feeds two branches, which are both alive when they meet. %b may not write over
 * %a (the other branch still reads it), %c may (%a dies there), and the add writes over %b. */
static void test_diamond(void) {
  kl_ir_graph *g = parse("graph(%x : Float(16)):\n"
                         "  %a : Float(16) = aten::relu(%x)\n"
                         "  %b : Float(16) = aten::sigmoid(%a)\n"
                         "  %c : Float(16) = aten::tanh(%a)\n"
                         "  %d : Float(16) = aten::add(%b, %c)\n"
                         "  %out : Float(16) = aten::neg(%d)\n"
                         "  return (%out)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(offset_of(g, plan, "a"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "b"), 64);
    CHECK_EQ_INT(offset_of(g, plan, "c"), 0);
    CHECK_EQ_INT(inplace_of(g, plan, "b"), -1);
    CHECK_EQ_INT(inplace_of(g, plan, "c"), id_of(g, "a"));
    CHECK_EQ_INT(offset_of(g, plan, "d"), 64);
    CHECK_EQ_INT(inplace_of(g, plan, "d"), id_of(g, "b"));
    CHECK_EQ_INT(plan->workspace_bytes, 128);
    CHECK_EQ_INT(plan->peak_bytes, 128);
    CHECK_EQ_INT(plan->n_inplace, 2);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);

  /* The same diamond out of place: the branches' buffers are apart from %a and each other. */
  g = parse("graph(%x : Float(16)):\n"
            "  %a : Float(16) = aten::softmax[dim=0](%x)\n"
            "  %b : Float(16) = aten::softmax[dim=0](%a)\n"
            "  %c : Float(16) = aten::log_softmax[dim=0](%a)\n"
            "  %d : Float(32) = aten::cat[dim=0](%b, %c)\n"
            "  %out : Float(32) = aten::softmax[dim=0](%d)\n"
            "  return (%out)\n");
  plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(offset_of(g, plan, "a"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "b"), 64);
    CHECK_EQ_INT(offset_of(g, plan, "c"), 128);
    CHECK_EQ_INT(offset_of(g, plan, "d"), 192); /* 128 bytes; the hole at 0 holds only 64 */
    CHECK_EQ_INT(plan->workspace_bytes, 320);
    CHECK_EQ_INT(plan->peak_bytes, 256);
    CHECK_EQ_INT(plan->n_inplace, 0);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* In place only where legal: not over an input with a later use, not over an input of another
 * shape (a broadcast operand), not over a graph input or weight, and not across dtypes. */
static void test_in_place_rules(void) {
  kl_ir_graph *g = parse("graph(%x : Float(4, 16), %y : Float(16)):\n"
                         "  %w : Float(4, 16) = prim::Param[name=\"w\"]()\n"
                         "  %p : Long(4, 16) = aten::to[dtype=Long](%w)\n"
                         "  %r1 : Float(4, 16) = aten::relu(%x)\n"
                         "  %r2 : Float(4, 16) = aten::relu(%r1)\n"
                         "  %r3 : Float(4, 16) = aten::add(%r2, %r1)\n"
                         "  %e : Float(16) = aten::exp(%y)\n"
                         "  %b : Float(4, 16) = aten::mul(%e, %r3)\n"
                         "  %k : Long(4, 16) = aten::to[dtype=Long](%b)\n"
                         "  %m : Bool(4, 16) = aten::gt(%k, %p)\n"
                         "  return (%m)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(offset_of(g, plan, "w"), -1);
    CHECK_EQ_INT(inplace_of(g, plan, "p"), -1);  /* weights are read-only */
    CHECK_EQ_INT(inplace_of(g, plan, "r2"), -1); /* %r1 is read again by %r3 */
    CHECK(offset_of(g, plan, "r2") != offset_of(g, plan, "r1"));
    /* both inputs of %r3 die there; it takes the first one's buffer */
    CHECK_EQ_INT(inplace_of(g, plan, "r3"), id_of(g, "r2"));
    CHECK_EQ_INT(offset_of(g, plan, "r3"), offset_of(g, plan, "r2"));
    /* %b broadcasts %e (16) against %r3 (4, 16): only %r3 has the output's shape */
    CHECK_EQ_INT(inplace_of(g, plan, "b"), id_of(g, "r3"));
    CHECK_EQ_INT(inplace_of(g, plan, "k"), -1); /* Float to Long: 8 bytes an element */
    CHECK_EQ_INT(plan->size[id_of(g, "k")], 4 * 16 * 8);
    CHECK_EQ_INT(inplace_of(g, plan, "e"), -1); /* %y belongs to the caller */
    CHECK_EQ_INT(plan->n_inplace, 2);
    /* %k (512 bytes) is placed while %b (256) lives; %p lives from the start */
    CHECK(offset_of(g, plan, "k") != offset_of(g, plan, "b"));
    CHECK(offset_of(g, plan, "k") != offset_of(g, plan, "p"));
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* Float(3) is 12 bytes: it is planned in a 64-byte slot and its size stays 12. */
static void test_alignment(void) {
  kl_ir_graph *g = parse("graph(%x : Float(3)):\n"
                         "  %a : Float(3) = aten::softmax[dim=0](%x)\n"
                         "  %b : Float(3) = aten::softmax[dim=0](%a)\n"
                         "  %c : Float(3) = aten::softmax[dim=0](%b)\n"
                         "  %d : Float(3) = aten::add(%a, %c)\n"
                         "  return (%d)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(plan->size[id_of(g, "a")], 12);
    CHECK_EQ_INT(offset_of(g, plan, "a"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "b"), 64);
    CHECK_EQ_INT(offset_of(g, plan, "c"), 128);
    CHECK_EQ_INT(plan->workspace_bytes, 192);
    CHECK_EQ_INT(plan->naive_bytes, 192);
    for (int id = 0; id < plan->n_values; id++)
      CHECK(plan->offset[id] < 0 || plan->offset[id] % KL_MEMORY_ALIGN == 0);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* Best fit: with free ranges of 256 bytes at 0 and 128 bytes at 320, a 128-byte value goes to
 * 320 (first fit would take 0). Then a free range at the arena's end grows into fresh space
 * instead of leaving a hole. */
static void test_best_fit(void) {
  kl_ir_graph *g = parse("graph(%x : Float(64), %y : Float(32), %z : Float(16)):\n"
                         "  %a : Float(64) = aten::softmax[dim=0](%x)\n"
                         "  %m1 : Float(16) = aten::softmax[dim=0](%z)\n"
                         "  %s : Float(32) = aten::softmax[dim=0](%y)\n"
                         "  %m2 : Float(16) = aten::softmax[dim=0](%z)\n"
                         "  %o1 : Float(64) = aten::softmax[dim=0](%a)\n"
                         "  %o2 : Float(32) = aten::softmax[dim=0](%s)\n"
                         "  %t : Float(32) = aten::softmax[dim=0](%y)\n"
                         "  %o3 : Float(32) = aten::softmax[dim=0](%t)\n"
                         "  %o4 : Float(16) = aten::add(%m1, %m2)\n"
                         "  return (%o1, %o2, %o3, %o4)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(offset_of(g, plan, "a"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "m1"), 256);
    CHECK_EQ_INT(offset_of(g, plan, "s"), 320);
    CHECK_EQ_INT(offset_of(g, plan, "m2"), 448);
    CHECK_EQ_INT(offset_of(g, plan, "t"), 320);
    CHECK_EQ_INT(offset_of(g, plan, "o1"), -1);
    CHECK_EQ_INT(plan->workspace_bytes, 512);
    CHECK_EQ_INT(plan->peak_bytes, 512);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);

  g = parse("graph(%x : Float(16), %y : Float(64), %z : Float(128)):\n"
            "  %a : Float(16) = aten::softmax[dim=0](%x)\n"
            "  %b : Float(64) = aten::softmax[dim=0](%y)\n"
            "  %o1 : Float(64) = aten::softmax[dim=0](%b)\n"
            "  %c : Float(128) = aten::softmax[dim=0](%z)\n"
            "  %o2 : Float(128) = aten::softmax[dim=0](%c)\n"
            "  %o3 : Float(16) = aten::neg(%a)\n"
            "  return (%o1, %o2, %o3)\n");
  plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(offset_of(g, plan, "b"), 64);
    CHECK_EQ_INT(offset_of(g, plan, "c"), 64); /* grows the free 256 bytes at the end to 512 */
    CHECK_EQ_INT(plan->workspace_bytes, 576);
    CHECK_EQ_INT(plan->peak_bytes, 576);
    CHECK_EQ_INT(plan->naive_bytes, 64 + 256 + 512);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* A use inside a prim::If branch counts as a use at the If: %a must outlive the softmax before
 * it, so %s cannot take %a's buffer. An unused value is placed and freed at once. */
static void test_sub_blocks_and_unused(void) {
  kl_ir_graph *g = parse("graph(%c : Bool(), %x : Float(16)):\n"
                         "  %a : Float(16) = aten::softmax[dim=0](%x)\n"
                         "  %s : Float(16) = aten::softmax[dim=0](%x)\n"
                         "  %unused : Float(16) = aten::softmax[dim=0](%s)\n"
                         "  %y : Float(16) = prim::If(%c)\n"
                         "    block0():\n"
                         "      %in0 : Float(16) = aten::relu(%a)\n"
                         "      -> (%in0)\n"
                         "    block1():\n"
                         "      %in1 : Float(16) = aten::neg(%s)\n"
                         "      -> (%in1)\n"
                         "  %z : Float(16) = aten::add(%y, %y)\n"
                         "  %out : Float(16) = aten::softmax[dim=0](%z)\n"
                         "  return (%out)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(offset_of(g, plan, "a"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "s"), 64);
    CHECK_EQ_INT(offset_of(g, plan, "unused"), 128);
    /* %unused is gone; %y is placed while %a and %s are alive (its branches read them) */
    CHECK_EQ_INT(offset_of(g, plan, "y"), 128);
    CHECK_EQ_INT(offset_of(g, plan, "in0"), -1); /* branch values are the If's business */
    CHECK_EQ_INT(inplace_of(g, plan, "z"), id_of(g, "y")); /* add(%y, %y): %y dies here */
    CHECK_EQ_INT(plan->workspace_bytes, 192);
    CHECK_EQ_INT(plan->n_planned, 5);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* A fusion group is planned by its outputs; its body's values are not. A group of elementwise
 * and broadcast nodes may write over an input like one such node; a group holding anything
 * else (here a softmax) may not. */
static void test_fusion_group(void) {
  kl_ir_graph *g = parse("graph(%x : Float(16), %b : Float(1)):\n"
                         "  %s : Float(16) = aten::softmax[dim=0](%x)\n"
                         "  %g : Float(16) = prim::FusionGroup_0(%s, %b)\n"
                         "  %h : Float(16) = prim::FusionGroup_1(%g)\n"
                         "  %out : Float(16) = aten::softmax[dim=0](%h)\n"
                         "  return (%out)\n"
                         "with prim::FusionGroup_0 = graph(%p : Float(16), %c : Float(1)):\n"
                         "  %q : Float(16) = aten::add(%p, %c)\n"
                         "  %r : Float(16) = aten::neg(%q)\n"
                         "  return (%r)\n"
                         "with prim::FusionGroup_1 = graph(%p1 : Float(16)):\n"
                         "  %q1 : Float(16) = aten::relu(%p1)\n"
                         "  %r1 : Float(16) = aten::softmax[dim=0](%q1)\n"
                         "  return (%r1)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(offset_of(g, plan, "s"), 0);
    CHECK_EQ_INT(offset_of(g, plan, "g"), 0);
    CHECK_EQ_INT(inplace_of(g, plan, "g"), id_of(g, "s"));
    CHECK_EQ_INT(offset_of(g, plan, "h"), 64);
    CHECK_EQ_INT(inplace_of(g, plan, "h"), -1);
    CHECK_EQ_INT(offset_of(g, plan, "q"), -1);
    CHECK_EQ_INT(offset_of(g, plan, "q1"), -1);
    CHECK_EQ_INT(plan->n_planned, 3);
    CHECK_EQ_INT(plan->n_inplace, 1);
    CHECK_EQ_INT(plan->workspace_bytes, 128);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

/* Symbolic dims: a bounded symbol plans at its maximum; an unbounded one is an error that names
 * the value and the symbol. A graph with nothing to plan needs no workspace. */
static void test_symbolic(void) {
  kl_ir_graph *g = parse("graph<N=1..8>(%x : Float(N, 4)):\n"
                         "  %a : Float(N, 4) = aten::softmax[dim=1](%x)\n"
                         "  %b : Float(N, 4) = aten::relu(%a)\n"
                         "  %c : Float(N, 4) = aten::softmax[dim=1](%b)\n"
                         "  return (%c)\n");
  kl_memory_plan *plan = plan_of(g);
  if (plan) {
    CHECK(plan->used_symbol_bounds);
    CHECK_EQ_INT(plan->size[id_of(g, "a")], 8 * 4 * 4);
    CHECK_EQ_INT(inplace_of(g, plan, "b"), id_of(g, "a")); /* same symbolic type: same size */
    CHECK_EQ_INT(plan->workspace_bytes, 128);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);

  g = parse("graph<N=1..>(%x : Float(N, 4)):\n"
            "  %hidden : Float(N, 4) = aten::softmax[dim=1](%x)\n"
            "  %out : Float(N, 4) = aten::relu(%hidden)\n"
            "  return (%out)\n");
  plan = (kl_memory_plan *)1;
  if (g)
    CHECK_ERR(kl_memory_plan_create(g, &plan), KL_ERR_UNSUPPORTED, "%hidden has dim 0 = N");
  CHECK(plan == NULL);
  kl_ir_graph_destroy(g);

  /* the unbounded symbol only on the output: nothing planned needs it */
  g = parse("graph<N=1..>(%x : Float(N, 4)):\n"
            "  %out : Float(N, 4) = aten::relu(%x)\n"
            "  return (%out)\n");
  plan = plan_of(g);
  if (plan) {
    CHECK_EQ_INT(plan->n_planned, 0);
    CHECK_EQ_INT(plan->workspace_bytes, 0);
    CHECK_EQ_INT(plan->peak_bytes, 0);
    CHECK(!plan->used_symbol_bounds);
  }
  kl_memory_plan_destroy(plan);
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_chain_in_place();
  test_chain_two_buffers();
  test_diamond();
  test_in_place_rules();
  test_alignment();
  test_best_fit();
  test_sub_blocks_and_unused();
  test_fusion_group();
  test_symbolic();
  kl_memory_plan_destroy(NULL);
  return check_finish();
}
