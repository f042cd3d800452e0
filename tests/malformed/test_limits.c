/* The limits of runtime/limits.h: parsing of KILN_LIMITS specs, range checks, and each limit
 * refusing the input that crosses it with KL_ERR_LIMIT (or the reader's own code) and a message
 * that names the limit. Run from tests/malformed (the corpus files are read from here and
 * from ../onnx/malformed). */
#include <stdlib.h>

#include "../unit/check.h"
#include "frontend/onnx/onnx.h"
#include "ir/kir.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/limits.h"
#include "runtime/npy.h"

/* Sets the defaults with one spec applied on top. */
static void set_spec(const char *spec) {
  kl_limits l;
  kl_limits_defaults(&l);
  CHECK_OK(kl_limits_parse(spec, &l));
  CHECK_OK(kl_limits_set(&l));
}

static void reset(void) {
  kl_limits l;
  kl_limits_defaults(&l);
  CHECK_OK(kl_limits_set(&l));
}

static void test_parse(void) {
  kl_limits l;
  kl_limits_defaults(&l);
  CHECK(l.max_file_bytes == 2147483647u && l.max_proto_depth == 64 &&
        l.max_subgraph_depth == 32 && l.max_rank == 32 && l.max_nodes == 1000000 &&
        l.max_tensor_bytes == (uint64_t)16 << 30 && l.max_total_bytes == (uint64_t)16 << 30 &&
        l.max_fold_bytes == 1 << 20);
  CHECK_OK(kl_limits_parse("max_nodes=1000, max_tensor_bytes=1G,max_fold_bytes=64KiB,"
                           "max_total_bytes = 2gb,max_file_bytes=3m,max_rank=4,", &l));
  CHECK(l.max_nodes == 1000 && l.max_tensor_bytes == (uint64_t)1 << 30 &&
        l.max_fold_bytes == 64 << 10 && l.max_total_bytes == (uint64_t)2 << 30 &&
        l.max_file_bytes == 3 << 20 && l.max_rank == 4 && l.max_proto_depth == 64);
  CHECK_OK(kl_limits_parse("", &l));
  CHECK_OK(kl_limits_parse("max_tensor_bytes=1T", &l));
  CHECK(l.max_tensor_bytes == (uint64_t)1 << 40);
  kl_limits before = l;
  CHECK_ERR(kl_limits_parse("max_nodes=5,max_nodez=1", &l), KL_ERR_INVALID_ARGUMENT,
            "unknown limit 'max_nodez' (known: max_file_bytes, max_proto_depth");
  CHECK(l.max_nodes == before.max_nodes); /* unchanged on an error */
  CHECK_ERR(kl_limits_parse("max_nodes", &l), KL_ERR_INVALID_ARGUMENT, "is not name=value");
  CHECK_ERR(kl_limits_parse("max_nodes=-1", &l), KL_ERR_INVALID_ARGUMENT,
            "limit max_nodes: '-1' is not a number");
  CHECK_ERR(kl_limits_parse("max_nodes=12x", &l), KL_ERR_INVALID_ARGUMENT, "'12x'");
  CHECK_ERR(kl_limits_parse("max_nodes=", &l), KL_ERR_INVALID_ARGUMENT, "is not a number");
  CHECK_ERR(kl_limits_parse("max_tensor_bytes=99999999999999999999", &l),
            KL_ERR_INVALID_ARGUMENT, "is not a number");
  CHECK_ERR(kl_limits_parse("max_tensor_bytes=16777216T", &l), KL_ERR_INVALID_ARGUMENT,
            "is not a number"); /* 2^64: overflows */
  CHECK_ERR(kl_limits_parse("max_nodes=0", &l), KL_ERR_INVALID_ARGUMENT,
            "limit max_nodes = 0 is outside its range 1..");
  CHECK_ERR(kl_limits_parse("max_rank=33", &l), KL_ERR_INVALID_ARGUMENT,
            "max_rank = 33 is outside its range 1..32");
  CHECK_ERR(kl_limits_parse("max_proto_depth=100000", &l), KL_ERR_INVALID_ARGUMENT,
            "outside its range 1..4096");
  l.max_nodes = 0;
  CHECK_ERR(kl_limits_set(&l), KL_ERR_INVALID_ARGUMENT, "max_nodes = 0");
  CHECK(kl_limits_get()->max_nodes == 1000000); /* unchanged on an error */
  CHECK_STREQ(kl_limit_name(KL_LIMIT_FOLD_BYTES), "max_fold_bytes");
  CHECK_STREQ(kl_limit_name(KL_LIMIT_COUNT), "?");
}

static void test_env(void) {
  setenv("KILN_LIMITS", "max_nodes=77,max_tensor_bytes=1M", 1);
  CHECK_OK(kl_limits_from_env());
  CHECK(kl_limits_get()->max_nodes == 77 && kl_tensor_max_bytes() == 1 << 20);
  setenv("KILN_LIMITS", "max_rank=99", 1);
  CHECK_ERR(kl_limits_from_env(), KL_ERR_INVALID_ARGUMENT, "KILN_LIMITS: limit max_rank = 99");
  CHECK(kl_limits_get()->max_nodes == 77);
  unsetenv("KILN_LIMITS");
  CHECK_OK(kl_limits_from_env()); /* unset: nothing changes */
  CHECK(kl_limits_get()->max_nodes == 77);
  reset();
  CHECK(kl_tensor_max_bytes() == (size_t)16 << 30);
}

static void test_messages(void) {
  set_spec("max_nodes=10");
  CHECK(kl_limit_check(KL_LIMIT_NODES, 10, "x") == NULL);
  CHECK_ERR(kl_limit_check(KL_LIMIT_NODES, 11, "graph %s", "g"), KL_ERR_LIMIT,
            "graph g: 11 nodes is over the limit max_nodes = 10; raise it with "
            "KILN_LIMITS=max_nodes=N");
  reset();
}

static const char three_nodes[] = "graph(%x : Float(2)):\n"
                                  "  %a : Float(2) = aten::relu(%x)\n"
                                  "  %b : Float(2) = aten::neg(%a)\n"
                                  "  %c : Float(2) = aten::relu(%b)\n"
                                  "  return (%c)\n";

static kl_status parse(const char *text) {
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(text, strlen(text), NULL, &g);
  kl_ir_graph_destroy(g);
  return s;
}

static kl_status import(const char *path, const kl_onnx_import_options *opts) {
  kl_ir_graph *g = NULL;
  kl_status s = kl_onnx_import_file(path, opts, &g);
  kl_ir_graph_destroy(g);
  return s;
}

static kl_status load_kir(const char *path) {
  kl_ir_graph *g = NULL;
  kl_status s = kl_kir_load(path, &g);
  kl_ir_graph_destroy(g);
  return s;
}

static void test_nodes(void) {
  CHECK_OK(parse(three_nodes));
  set_spec("max_nodes=2");
  CHECK_ERR(parse(three_nodes), KL_ERR_LIMIT, "<input>:4:19: more than 2 nodes, over the limit "
                                              "max_nodes; raise it with KILN_LIMITS=max_nodes=N");
  set_spec("max_nodes=3");
  CHECK_OK(parse(three_nodes));
  /* ONNX: counted per graph on the wire, before unpacking */
  CHECK_OK(import("../onnx/malformed/valid_two_nodes.onnx", NULL));
  set_spec("max_nodes=1");
  CHECK_ERR(import("../onnx/malformed/valid_two_nodes.onnx", NULL), KL_ERR_LIMIT,
            "the onnx.GraphProto at byte");
  CHECK_ERR(import("../onnx/malformed/valid_two_nodes.onnx", NULL), KL_ERR_LIMIT,
            "2 nodes is over the limit max_nodes = 1");
  /* a .kir's text section is parsed under the same limit */
  CHECK_ERR(load_kir("valid/net.kir"), KL_ERR_LIMIT, "max_nodes");
  reset();
}

static void test_rank_and_bytes(void) {
  kl_tensor *t = NULL;
  set_spec("max_rank=1");
  CHECK_ERR(parse("graph(%x : Float(2, 2)):\n  return (%x)\n"), KL_ERR_PARSE,
            "rank exceeds the maximum of 1");
  CHECK_ERR(kl_npy_read("valid/np_f32.npy", &t), KL_ERR_LIMIT,
            "valid/np_f32.npy: .npy shape: 2 dims is over the limit max_rank = 1");
  set_spec("max_tensor_bytes=16");
  CHECK_ERR(kl_npy_read("valid/np_f32.npy", &t), KL_ERR_LIMIT,
            "valid/np_f32.npy: .npy array Float [2, 3]: 24 bytes is over the limit "
            "max_tensor_bytes = 16");
  CHECK(t == NULL);
  set_spec("max_total_bytes=10");
  kl_ir_graph *g = NULL;
  CHECK_ERR(kl_kir_load("valid/net.kir", &g), KL_ERR_LIMIT,
            "valid/net.kir: weights: 256 bytes is over the limit max_total_bytes = 10");
  CHECK(g == NULL);
  CHECK_ERR(import("../onnx/malformed/valid_two_nodes.onnx", NULL), KL_ERR_LIMIT, "");
  set_spec("max_fold_bytes=4K");
  kl_pass_options po;
  kl_pass_options_init(&po);
  CHECK_EQ_INT(po.fold_max_bytes, 4096);
  set_spec("max_file_bytes=100");
  CHECK_ERR(import("../onnx/malformed/valid_if.onnx", NULL), KL_ERR_LIMIT,
            "more than the limit of 100");
  reset();
}

static void test_depth(void) {
  /* 40 nested Ifs: the wire depth limit comes first; raised, the sub-graph limit does */
  CHECK_ERR(import("../onnx/malformed/if_nesting_40.onnx", NULL), KL_ERR_LIMIT,
            "nested more than 64 deep");
  CHECK_ERR(import("../onnx/malformed/if_nesting_40.onnx", NULL), KL_ERR_LIMIT,
            "is over the limit max_proto_depth = 64; raise it with KILN_LIMITS");
  /* (the importer's model check lists this among the graph's problems, as a format error) */
  set_spec("max_proto_depth=1000");
  CHECK_ERR(import("../onnx/malformed/if_nesting_40.onnx", NULL), KL_ERR_FORMAT,
            "subgraphs nested more than 32 deep");
  set_spec("max_proto_depth=1000,max_subgraph_depth=8");
  CHECK_ERR(import("../onnx/malformed/if_nesting_40.onnx", NULL), KL_ERR_FORMAT,
            "subgraphs nested more than 8 deep");
  set_spec("max_proto_depth=1000,max_subgraph_depth=64");
  CHECK_OK(import("../onnx/malformed/if_nesting_40.onnx", NULL));
  reset();
}

int main(void) {
  test_parse();
  test_env();
  test_messages();
  test_nodes();
  test_rank_and_bytes();
  test_depth();
  return check_finish();
}
