/* A program outside the source tree that uses an installed kiln: it includes <kiln.h> and
 * links through `pkg-config --cflags --libs kiln`. It runs relu(a + b) eagerly, traces the same
 * computation, prints the graph's text IR and runs it with the interpreter, so the eager API,
 * the tracer, the IR printer and the interpreter all have to link and work. */
#include <kiln.h>
#include <stdio.h>

static int fail(const char *what, kl_status s) {
  fprintf(stderr, "consumer: %s: %s\n", what, s ? kl_status_message(s) : "failed");
  kl_status_destroy(s);
  return 1;
}

int main(void) {
  const float a_data[] = {1.0f, -2.0f, 3.0f, -4.0f};
  const float b_data[] = {0.5f, 0.5f, -5.0f, 5.0f};
  int rc = 0;
  kl_scope_begin();
  kl_tensor *a = kl_from_buffer(KL_F32, KL_SHAPE(2, 2), a_data);
  kl_tensor *b = kl_from_buffer(KL_F32, KL_SHAPE(2, 2), b_data);
  kl_tensor *y = kl_relu(kl_add(a, b));
  if (!y) {
    kl_scope_end();
    return fail("eager relu(a + b)", NULL);
  }
  kl_print(y);
  const float *v = kl_data(y);
  printf("eager sum %g\n", (double)(v[0] + v[1] + v[2] + v[3]));

  kl_tensor *inputs[] = {a, b};
  const char *names[] = {"a", "b"};
  kl_ir_graph *g = NULL;
  kl_status s = kl_trace_begin(NULL, 2, inputs, names);
  if (s) {
    kl_scope_end();
    return fail("trace", s);
  }
  kl_tensor *traced = kl_relu(kl_add(a, b));
  s = kl_trace_end(1, &traced, &g);
  if (!s)
    s = kl_ir_print_file(g, stdout);
  kl_tensor *out = NULL;
  if (!s)
    s = kl_interp_run(g, inputs, 2, &out);
  if (s) {
    rc = fail("trace and run", s);
  } else {
    const float *w = kl_data(out);
    printf("interp sum %g\n", (double)(w[0] + w[1] + w[2] + w[3]));
  }
  kl_tensor_release(out);
  kl_ir_graph_destroy(g);
  kl_scope_end();
  return rc;
}
