/* The eager core: per-thread errors and scopes, tensor creation and reading, and kl_fe_call,
 * the one function every eager op goes through.
 *
 * An eager op is run the way the interpreter runs a node, so eager results, traced graphs and
 * `kiln run` agree by construction: the op becomes a node (in the active trace graph, or in a
 * scratch graph made for the call), ops.def's shape function gives the output types, and the
 * reference kernel fills outputs allocated with them. Errors are reported once, where they
 * happen; ops given a NULL input (an earlier failure) return NULL quietly so a chain fails once.
 *
 * Scopes, the last error and the trace are per thread (_Thread_local); the error and warning
 * handlers are process-wide, guarded by a mutex. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/interp.h"
#include "../runtime/tensor_print.h"
#include "frontend_internal.h"

/* ---- errors and warnings ------------------------------------------------------------- */

/* Freed by kl_clear_error or replaced by the next error. A thread that may have failed should
 * call kl_clear_error before it exits, or its last status is lost with its storage. */
static _Thread_local kl_status last_error;

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static kl_error_fn error_fn;
static void *error_ctx;
static kl_warning_fn warning_fn;
static void *warning_ctx;

kl_status kl_last_error(void) { return last_error; }

void kl_clear_error(void) {
  kl_status_destroy(last_error);
  last_error = NULL;
}

void kl_set_error_handler(kl_error_fn fn, void *ctx) {
  pthread_mutex_lock(&handler_lock);
  error_fn = fn;
  error_ctx = fn ? ctx : NULL;
  pthread_mutex_unlock(&handler_lock);
}

void kl_set_warning_handler(kl_warning_fn fn, void *ctx) {
  pthread_mutex_lock(&handler_lock);
  warning_fn = fn;
  warning_ctx = fn ? ctx : NULL;
  pthread_mutex_unlock(&handler_lock);
}

/* The handler sees the status after it became the last error, so it may call kl_last_error;
 * it borrows the status and must not destroy it. */
void kl_fe_report(kl_status s) {
  if (!s)
    return;
  if (last_error != s)
    kl_status_destroy(last_error);
  last_error = s;
  pthread_mutex_lock(&handler_lock);
  kl_error_fn fn = error_fn;
  void *ctx = error_ctx;
  pthread_mutex_unlock(&handler_lock);
  if (fn)
    fn(ctx, s);
  else
    fprintf(stderr, "kiln: error: %s\n", kl_status_message(s));
}

void kl_fe_warn(const char *file, int line, const char *fmt, ...) {
  char small[512];
  char *msg = small;
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (len < 0) { /* an encoding error: send an empty message rather than none */
    len = 0;
    small[0] = '\0';
  }
  if ((size_t)len >= sizeof small) {
    msg = malloc((size_t)len + 1);
    if (!msg)
      kl_fatal_oom();
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)len + 1, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_lock(&handler_lock);
  kl_warning_fn fn = warning_fn;
  void *ctx = warning_ctx;
  pthread_mutex_unlock(&handler_lock);
  if (!file)
    file = "?";
  if (fn)
    fn(ctx, file, line, msg);
  else
    fprintf(stderr, "kiln: warning: %s:%d: %s\n", file, line, msg);
  if (msg != small)
    free(msg);
}

/* ---- scopes -------------------------------------------------------------------------- */

typedef struct scope {
  kl_tensor **tensors; /* one reference each, released when the scope ends */
  int n, cap;
} scope;

/* The stack of open scopes; freed when the last one ends, so a balanced program leaves
 * nothing behind. */
static _Thread_local scope *scopes;
static _Thread_local int n_scopes, cap_scopes;

void kl_scope_begin(void) {
  if (n_scopes == cap_scopes) {
    int cap = cap_scopes ? 2 * cap_scopes : 8;
    scope *grown = realloc(scopes, (size_t)cap * sizeof *grown);
    if (!grown)
      kl_fatal_oom();
    scopes = grown;
    cap_scopes = cap;
  }
  scopes[n_scopes++] = (scope){0};
}

void kl_scope_end(void) {
  if (n_scopes == 0) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_scope_end: no scope is open (kl_scope_begin and "
                                  "kl_scope_end calls are unbalanced)"));
    return;
  }
  scope *s = &scopes[--n_scopes];
  /* Newest first, the reverse of creation, as C++ destructors would run. */
  for (int i = s->n - 1; i >= 0; i--)
    kl_tensor_release(s->tensors[i]);
  free(s->tensors);
  if (n_scopes == 0) {
    free(scopes);
    scopes = NULL;
    cap_scopes = 0;
  }
}

kl_tensor *kl_fe_own(kl_tensor *t) {
  if (!t || n_scopes == 0)
    return t;
  scope *s = &scopes[n_scopes - 1];
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 16;
    kl_tensor **grown = realloc(s->tensors, (size_t)cap * sizeof *grown);
    if (!grown)
      kl_fatal_oom();
    s->tensors = grown;
    s->cap = cap;
  }
  s->tensors[s->n++] = t;
  return t;
}

/* Three cases, each leaving the caller with exactly one reference to release:
 *   t is held by the innermost scope: the scope lets go of it and the caller gets its reference;
 *   a scope is open but t is not in the innermost one (an outer scope's tensor, a parameter, a
 *   tensor kept before): t is retained, the new reference is the caller's;
 *   no scope is open: the caller already owns the reference it got, and t is returned as is. */
kl_tensor *kl_keep(kl_tensor *t) {
  if (!t || n_scopes == 0)
    return t;
  scope *s = &scopes[n_scopes - 1];
  for (int i = s->n - 1; i >= 0; i--) {
    if (s->tensors[i] == t) {
      memmove(&s->tensors[i], &s->tensors[i + 1], (size_t)(s->n - i - 1) * sizeof *s->tensors);
      s->n--;
      return t;
    }
  }
  return kl_tensor_retain(t);
}

/* ---- running one op ------------------------------------------------------------------ */

/* A shape error names the node's first output ("%2 = aten::add(Float(2, 3), Float(4)): ...");
 * in a scratch graph that name means nothing to the user, so the message starts at the op. */
static kl_status drop_value_name(kl_status s, const kl_ir_node *node) {
  if (node->n_outputs == 0)
    return s;
  const char *msg = kl_status_message(s);
  const char *name = node->outputs[0]->name;
  size_t len = strlen(name);
  if (msg[0] != '%' || strncmp(msg + 1, name, len) != 0 || strncmp(msg + 1 + len, " = ", 3) != 0)
    return s;
  kl_status plain = kl_status_create(kl_status_code_of(s), "%s", msg + 1 + len + 3);
  kl_status_destroy(s);
  return plain;
}

kl_status kl_fe_call(kl_op op, kl_tensor *const *inputs, int n_inputs, const kl_ir_attr *attrs,
                     int n_attrs, kl_tensor **outputs, int n_outputs) {
  const kl_op_info *info = kl_op_get(op);
  for (int i = 0; i < n_outputs; i++)
    outputs[i] = NULL;
  for (int i = 0; i < n_inputs; i++)
    if (!inputs[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input %d is NULL", info->name, i);
  if (n_outputs < info->min_outputs || (info->max_outputs >= 0 && n_outputs > info->max_outputs))
    return kl_status_create(KL_ERR_INTERNAL, "%s: asked for %d outputs", info->name, n_outputs);

  kl_ir_graph *trace = kl_fe_trace_graph();
  kl_ir_graph *g = trace ? trace : kl_ir_graph_create();
  kl_ir_value *small[8];
  kl_ir_value **values = n_inputs <= 8 ? small : malloc((size_t)n_inputs * sizeof *values);
  if (!values)
    kl_fatal_oom();
  kl_status s = NULL;
  kl_ir_node *node = NULL;
  for (int i = 0; i < n_inputs && !s; i++) {
    if (trace) {
      s = kl_fe_trace_value(inputs[i], &values[i]);
    } else {
      kl_ir_type type = kl_ir_type_of_tensor(inputs[i]);
      values[i] = kl_ir_block_add_param(g->top, NULL, &type);
    }
  }
  if (!s) {
    node = kl_ir_block_add_node(g->top, op, values, n_inputs, n_outputs);
    for (int i = 0; i < n_attrs; i++)
      kl_ir_node_set_attr(node, &attrs[i]);
    s = kl_ir_node_infer(node);
    if (s && !trace)
      s = drop_value_name(s, node);
  }
  for (int i = 0; i < n_outputs && !s; i++) {
    int64_t shape[KL_MAX_RANK];
    const kl_ir_type *type = &node->outputs[i]->type;
    if (!kl_ir_type_shape(type, shape))
      s = kl_status_create(KL_ERR_INTERNAL, "%s: output %d has no static shape", info->name, i);
    else
      s = kl_status_annotate(kl_tensor_create(type->dtype, type->rank, shape, &outputs[i]),
                             "%s: output %d", info->name, i);
  }
  if (!s)
    s = kl_interp_kernel(op)(g, node, inputs, outputs);
  if (s) {
    for (int i = 0; i < n_outputs; i++) {
      kl_tensor_release(outputs[i]);
      outputs[i] = NULL;
    }
    if (trace && node)
      kl_ir_node_remove(node); /* nothing uses its outputs yet: they were never bound */
  } else if (trace) {
    for (int i = 0; i < n_outputs; i++)
      kl_fe_trace_bind(outputs[i], node->outputs[i]);
  }
  if (values != small)
    free(values);
  if (!trace)
    kl_ir_graph_destroy(g);
  return s;
}

kl_tensor *kl_fe_call1(kl_op op, kl_tensor *const *inputs, int n_inputs, const kl_ir_attr *attrs,
                       int n_attrs) {
  for (int i = 0; i < n_inputs; i++)
    if (!inputs[i])
      return NULL; /* an earlier failure, already reported */
  kl_tensor *out;
  kl_status s = kl_fe_call(op, inputs, n_inputs, attrs, n_attrs, &out, 1);
  if (s) {
    kl_fe_report(s);
    return NULL;
  }
  return kl_fe_own(out);
}

/* ---- creating tensors ---------------------------------------------------------------- */

/* splitmix64: spreads one seed over the four words of xoshiro's state. */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna): the next 64 random bits. */
static uint64_t next_u64(kl_generator *gen) {
  uint64_t *s = gen->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void kl_generator_init(kl_generator *gen, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    gen->s[i] = splitmix64(&x);
}

/* The top 53 bits as a multiple of 2^-53: every double in [0, 1) that step can reach. */
double kl_generator_uniform(kl_generator *gen) {
  return (double)(next_u64(gen) >> 11) * 0x1.0p-53;
}

/* Box-Muller, one normal from two uniforms and the second one discarded: the generator's state
 * stays its four words, so a copied generator repeats exactly. u1 is taken from (0, 1] so the
 * logarithm is finite. */
double kl_generator_normal(kl_generator *gen) {
  double u1 = 1.0 - kl_generator_uniform(gen);
  double u2 = kl_generator_uniform(gen);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

/* Checks what the creation functions share and allocates; errors are reported here. */
static kl_tensor *new_tensor(const char *fn, kl_dtype dtype, int rank, const int64_t *shape) {
  kl_status s = NULL;
  if (!kl_dtype_is_valid((int)dtype))
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %d is not a dtype", fn, (int)dtype);
  else if (rank < 0 || rank > KL_MAX_RANK)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: rank %d is outside 0..%d", fn, rank,
                         KL_MAX_RANK);
  else if (rank > 0 && !shape)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: shape is NULL for rank %d", fn, rank);
  kl_tensor *t = NULL;
  if (!s)
    s = kl_status_annotate(kl_tensor_create(dtype, rank, shape, &t), "%s", fn);
  if (s) {
    kl_fe_report(s);
    return NULL;
  }
  return t;
}

kl_tensor *kl_from_buffer(kl_dtype dtype, int rank, const int64_t *shape, const void *data) {
  kl_tensor *t = new_tensor("kl_from_buffer", dtype, rank, shape);
  if (!t)
    return NULL;
  if (t->nbytes && !data) {
    kl_tensor_release(t);
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_from_buffer: data is NULL"));
    return NULL;
  }
  if (t->nbytes)
    memcpy(t->data, data, t->nbytes);
  return kl_fe_own(t);
}

kl_tensor *kl_from_buffer_borrowed(kl_dtype dtype, int rank, const int64_t *shape, void *data) {
  kl_status s = NULL;
  if (!kl_dtype_is_valid((int)dtype))
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_from_buffer_borrowed: %d is not a dtype",
                         (int)dtype);
  else if (rank < 0 || rank > KL_MAX_RANK || (rank > 0 && !shape))
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                         "kl_from_buffer_borrowed: bad rank %d or NULL shape", rank);
  /* The byte size the shape implies, saturating: kl_tensor_wrap reports an overflow itself. */
  size_t nbytes = kl_dtype_size(s ? KL_F32 : dtype);
  bool empty = false;
  for (int d = 0; !s && d < rank; d++) {
    if (shape[d] == 0)
      empty = true;
    else if (shape[d] > 0 && nbytes <= SIZE_MAX / (uint64_t)shape[d])
      nbytes *= (size_t)shape[d];
    else if (shape[d] > 0)
      nbytes = SIZE_MAX;
  }
  if (empty)
    nbytes = 0;
  if (!s && nbytes && !data)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_from_buffer_borrowed: data is NULL");
  kl_tensor *t = NULL;
  if (!s)
    s = kl_status_annotate(kl_tensor_wrap(dtype, rank, shape, data, nbytes, &t),
                           "kl_from_buffer_borrowed");
  if (s) {
    kl_fe_report(s);
    return NULL;
  }
  return kl_fe_own(t);
}

static void fill(kl_tensor *t, double value) {
  for (int64_t i = 0; i < t->numel; i++)
    kl_dtype_store_f64(t->dtype, t->data, (size_t)i, value);
}

kl_tensor *kl_zeros(kl_dtype dtype, int rank, const int64_t *shape) {
  return kl_fe_own(new_tensor("kl_zeros", dtype, rank, shape)); /* created zero-filled */
}

kl_tensor *kl_ones(kl_dtype dtype, int rank, const int64_t *shape) {
  kl_tensor *t = new_tensor("kl_ones", dtype, rank, shape);
  if (t)
    fill(t, 1.0);
  return kl_fe_own(t);
}

kl_tensor *kl_full(kl_dtype dtype, int rank, const int64_t *shape, double value) {
  kl_tensor *t = new_tensor("kl_full", dtype, rank, shape);
  if (t)
    fill(t, value);
  return kl_fe_own(t);
}

kl_tensor *kl_scalar(kl_dtype dtype, double value) {
  kl_tensor *t = new_tensor("kl_scalar", dtype, 0, NULL);
  if (t)
    fill(t, value);
  return kl_fe_own(t);
}

kl_tensor *kl_arange(kl_dtype dtype, double start, double end, double step) {
  kl_status s = NULL;
  double len = step != 0 ? ceil((end - start) / step) : 0;
  if (step == 0 || isnan(step))
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_arange: step is 0");
  else if (!isfinite(len))
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                         "kl_arange: start %g, end %g, step %g give no finite length", start, end,
                         step);
  else if (len > 4611686018427387904.0) /* 2^62: far past any allocation, still an int64 */
    s = kl_status_create(KL_ERR_LIMIT, "kl_arange: start %g, end %g, step %g give %g elements",
                         start, end, step, len);
  if (s) {
    kl_fe_report(s);
    return NULL;
  }
  int64_t n = len > 0 ? (int64_t)len : 0;
  kl_tensor *t = new_tensor("kl_arange", dtype, 1, &n);
  if (t)
    for (int64_t i = 0; i < n; i++)
      kl_dtype_store_f64(dtype, t->data, (size_t)i, start + (double)i * step);
  return kl_fe_own(t);
}

static kl_tensor *random_tensor(const char *fn, kl_generator *gen, kl_dtype dtype, int rank,
                                const int64_t *shape, bool normal) {
  kl_status s = NULL;
  if (!gen)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: the generator is NULL", fn);
  else if (kl_dtype_is_valid((int)dtype) && !kl_dtype_is_float(dtype))
    s = kl_status_create(KL_ERR_UNSUPPORTED,
                         "%s: dtype %s is not a floating-point type (random values need one)", fn,
                         kl_dtype_ir_name(dtype));
  if (s) {
    kl_fe_report(s);
    return NULL;
  }
  kl_tensor *t = new_tensor(fn, dtype, rank, shape);
  if (t)
    for (int64_t i = 0; i < t->numel; i++)
      kl_dtype_store_f64(dtype, t->data, (size_t)i,
                         normal ? kl_generator_normal(gen) : kl_generator_uniform(gen));
  return kl_fe_own(t);
}

/* A uniform value rounded to Half or BFloat16 can round up to exactly 1; PyTorch has the same
 * property for those dtypes. Float and Double stay below 1. */
kl_tensor *kl_rand(kl_generator *gen, kl_dtype dtype, int rank, const int64_t *shape) {
  return random_tensor("kl_rand", gen, dtype, rank, shape, false);
}

kl_tensor *kl_randn(kl_generator *gen, kl_dtype dtype, int rank, const int64_t *shape) {
  return random_tensor("kl_randn", gen, dtype, rank, shape, true);
}

/* ---- reading tensors ----------------------------------------------------------------- */

void kl_print_at(const kl_tensor *t, const char *file, int line) {
  if (!t) {
    fputs("tensor(NULL)\n", stdout);
    return;
  }
  kl_fe_trace_note_read(t, file, line, "kl_print");
  kl_tensor_print_options opts = kl_tensor_print_defaults();
  opts.shape_and_dtype = true;
  kl_fe_report(kl_tensor_print(t, &opts, stdout));
}

/* NULL (an earlier failure, already reported) gives NaN without a second report. */
double kl_item_at(const kl_tensor *t, const char *file, int line) {
  if (!t)
    return NAN;
  kl_fe_trace_note_read(t, file, line, "kl_item");
  if (t->numel != 1) {
    char shape[256];
    kl_shape_format(t->shape, t->rank, shape, sizeof shape);
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_item: %s:%d: the tensor has %lld elements (shape %s); "
                                  "only a one-element tensor has an item",
                                  file ? file : "?", line, (long long)t->numel, shape));
    return NAN;
  }
  return kl_dtype_load_f64(t->dtype, t->data, 0);
}

void *kl_data_at(const kl_tensor *t, const char *file, int line) {
  if (!t)
    return NULL;
  kl_fe_trace_note_read(t, file, line, "kl_data");
  return t->data;
}
