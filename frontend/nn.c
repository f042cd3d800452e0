/* Modules, parameters and layers of the eager API (kiln.h).
 *
 * A module tree is one root that owns every module below it and one flat list of parameters
 * in registration order, each with its full dotted name. Keeping the list flat at the root
 * makes the questions the tracer and the loaders ask (which name has this tensor, what are
 * all the parameters) one scan, and makes destroying the tree one loop. A child module is
 * just a prefix ("layer1.0") and a pointer to its root.
 *
 * Loading checks every parameter before it copies any, so a failed load leaves the module as
 * it was. Layers create their parameters with PyTorch's default initialization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/kir.h"
#include "../runtime/npy.h"
#include "frontend_internal.h"

typedef struct kl_module_entry {
  char *name; /* full dotted name, malloc'd */
  kl_tensor *tensor; /* one reference held by the module */
} kl_module_entry;

struct kl_module {
  kl_module *root; /* itself for a root */
  char *prefix;    /* full dotted name of this module; "" for a root */
  /* The rest is used in a root only. */
  kl_module **children; /* every module below the root, in creation order */
  int n_children, cap_children;
  kl_module_entry *params;
  int n_params, cap_params;
};

/* ---- names ---------------------------------------------------------------------------- */

static char *copy_string(const char *s) {
  size_t len = strlen(s);
  char *copy = malloc(len + 1);
  if (!copy)
    kl_fatal_oom();
  memcpy(copy, s, len + 1);
  return copy;
}

/* prefix + "." + name, or name alone under the root. */
static char *join_name(const char *prefix, const char *name) {
  size_t lp = strlen(prefix), ln = strlen(name);
  char *full = malloc(lp + ln + 2);
  if (!full)
    kl_fatal_oom();
  if (lp) {
    memcpy(full, prefix, lp);
    full[lp] = '.';
    memcpy(full + lp + 1, name, ln + 1);
  } else {
    memcpy(full, name, ln + 1);
  }
  return full;
}

/* A child or parameter name is one component of a dotted name: any string but an empty one
 * or one holding a '.', which would make two different trees spell the same full name. */
static bool check_component(const char *fn, const kl_module *m, const char *what,
                            const char *name) {
  const char *where = m->prefix[0] ? m->prefix : "(root)";
  if (!name) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: NULL %s name in module %s", fn,
                                  what, where));
    return false;
  }
  if (!name[0]) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: empty %s name in module %s", fn,
                                  what, where));
    return false;
  }
  if (strchr(name, '.')) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "%s: %s name '%s' in module %s contains '.', which separates "
                                  "the parts of a full name",
                                  fn, what, name, where));
    return false;
  }
  return true;
}

static int find_param(const kl_module *root, const char *full_name) {
  for (int i = 0; i < root->n_params; i++)
    if (strcmp(root->params[i].name, full_name) == 0)
      return i;
  return -1;
}

/* ---- the module tree ------------------------------------------------------------------ */

kl_module *kl_module_create(void) {
  kl_module *m = calloc(1, sizeof *m);
  if (!m)
    kl_fatal_oom();
  m->root = m;
  m->prefix = copy_string("");
  return m;
}

/* Asking twice for the same child gives the same module, so code may look a child up by name. */
kl_module *kl_module_child(kl_module *parent, const char *name) {
  if (!parent) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_module_child: NULL parent"));
    return NULL;
  }
  if (!check_component("kl_module_child", parent, "child", name))
    return NULL;
  kl_module *root = parent->root;
  char *prefix = join_name(parent->prefix, name);
  for (int i = 0; i < root->n_children; i++) {
    if (strcmp(root->children[i]->prefix, prefix) == 0) {
      free(prefix);
      return root->children[i];
    }
  }
  if (root->n_children == root->cap_children) {
    int cap = root->cap_children ? root->cap_children * 2 : 8;
    kl_module **children = realloc(root->children, (size_t)cap * sizeof *children);
    if (!children)
      kl_fatal_oom();
    root->children = children;
    root->cap_children = cap;
  }
  kl_module *child = calloc(1, sizeof *child);
  if (!child)
    kl_fatal_oom();
  child->root = root;
  child->prefix = prefix;
  root->children[root->n_children++] = child;
  return child;
}

void kl_module_destroy(kl_module *root) {
  if (!root)
    return;
  if (root->root != root) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_module_destroy: module '%s' is a child; destroy its root, "
                                  "which owns it",
                                  root->prefix));
    return;
  }
  for (int i = 0; i < root->n_params; i++) {
    free(root->params[i].name);
    kl_tensor_release(root->params[i].tensor);
  }
  free(root->params);
  for (int i = 0; i < root->n_children; i++) {
    free(root->children[i]->prefix);
    free(root->children[i]);
  }
  free(root->children);
  free(root->prefix);
  free(root);
}

/* A NULL value comes from a creation call that failed and has reported already. */
kl_tensor *kl_module_param(kl_module *m, const char *name, kl_tensor *value) {
  if (!m) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_module_param: NULL module"));
    return NULL;
  }
  if (!check_component("kl_module_param", m, "parameter", name) || !value)
    return NULL;
  kl_module *root = m->root;
  char *full = join_name(m->prefix, name);
  if (find_param(root, full) >= 0) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_module_param: a parameter named '%s' is already registered",
                                  full));
    free(full);
    return NULL;
  }
  if (root->n_params == root->cap_params) {
    int cap = root->cap_params ? root->cap_params * 2 : 16;
    kl_module_entry *params = realloc(root->params, (size_t)cap * sizeof *params);
    if (!params)
      kl_fatal_oom();
    root->params = params;
    root->cap_params = cap;
  }
  root->params[root->n_params].name = full;
  root->params[root->n_params].tensor = kl_tensor_retain(value);
  root->n_params++;
  return value;
}

/* Any module of a tree stands for its root here and below: names are always full names. A
 * tensor registered twice (tied weights) answers with its first name. */
const char *kl_module_param_name(const kl_module *root, const kl_tensor *t) {
  if (!root || !t)
    return NULL;
  root = root->root;
  for (int i = 0; i < root->n_params; i++)
    if (root->params[i].tensor == t)
      return root->params[i].name;
  return NULL;
}

int kl_module_param_count(const kl_module *root) { return root ? root->root->n_params : 0; }

const char *kl_module_param_at(const kl_module *root, int i, kl_tensor **out_tensor) {
  if (out_tensor)
    *out_tensor = NULL;
  if (!root || i < 0 || i >= root->root->n_params)
    return NULL;
  root = root->root;
  if (out_tensor)
    *out_tensor = root->params[i].tensor;
  return root->params[i].name;
}

/* ---- loading values ------------------------------------------------------------------- */

/* Edit distance of a and b, capped (a long name far from every other needs no exact count). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 200 || lb > 200)
    return (size_t)-1;
  size_t row[201];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Appends " (close names in the file: 'a', 'b')" to buf for up to three weight names of g
 * within a few edits of name, nearest first. */
static void close_names(const kl_ir_graph *g, const char *name, char *buf, size_t size) {
  buf[0] = '\0';
  size_t limit = strlen(name) / 3 + 2;
  int best[3] = {-1, -1, -1};
  size_t dist[3] = {0, 0, 0};
  for (int i = 0; i < g->n_weights; i++) {
    size_t d = edit_distance(name, g->weights[i].name);
    if (d > limit)
      continue;
    for (int k = 0; k < 3; k++) {
      if (best[k] < 0 || d < dist[k]) {
        for (int m = 2; m > k; m--) {
          best[m] = best[m - 1];
          dist[m] = dist[m - 1];
        }
        best[k] = i;
        dist[k] = d;
        break;
      }
    }
  }
  if (best[0] < 0)
    return;
  size_t n = (size_t)snprintf(buf, size, " (close names in the file:");
  for (int k = 0; k < 3 && best[k] >= 0 && n < size; k++)
    n += (size_t)snprintf(buf + n, size - n, "%s '%s'", k ? "," : "", g->weights[best[k]].name);
  if (n < size)
    snprintf(buf + n, size - n, ")");
}

/* Whether src may be copied into the parameter named name; else an error naming both types. */
static kl_status check_match(const char *source, const char *name, const kl_tensor *param,
                             const kl_tensor *src) {
  if (src->dtype == param->dtype && kl_tensor_same_shape(src, param))
    return NULL;
  char want[256], got[256];
  kl_shape_format(param->shape, param->rank, want, sizeof want);
  kl_shape_format(src->shape, src->rank, got, sizeof got);
  return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                          "%s: parameter '%s' is %s%s in the module but %s%s in the file", source,
                          name, kl_dtype_ir_name(param->dtype), want, kl_dtype_ir_name(src->dtype),
                          got);
}

/* Copies sources[i] into parameter i of root for every i; all were checked before. */
static void copy_all(kl_module *root, kl_tensor *const *sources) {
  for (int i = 0; i < root->n_params; i++)
    if (root->params[i].tensor->nbytes)
      memcpy(root->params[i].tensor->data, sources[i]->data, root->params[i].tensor->nbytes);
}

kl_status kl_module_load_kir(kl_module *root, const char *path) {
  if (!root || !path)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_module_load_kir: NULL %s",
                            root ? "path" : "module");
  root = root->root;
  kl_ir_graph *g = NULL;
  KL_RETURN_IF_ERROR(kl_kir_load(path, &g));
  kl_tensor **sources = calloc((size_t)root->n_params + 1, sizeof *sources);
  if (!sources)
    kl_fatal_oom();
  kl_status s = NULL;
  for (int i = 0; i < root->n_params && !s; i++) {
    const char *name = root->params[i].name;
    sources[i] = kl_ir_graph_weight(g, name);
    if (!sources[i]) {
      char hint[512];
      close_names(g, name, hint, sizeof hint);
      s = kl_status_create(KL_ERR_NOT_FOUND, "%s: no weight named '%s' for parameter %d of %d%s",
                           path, name, i + 1, root->n_params, hint);
    } else {
      s = check_match(path, name, root->params[i].tensor, sources[i]);
    }
  }
  if (!s)
    copy_all(root, sources);
  free(sources);
  kl_ir_graph_destroy(g);
  return s;
}

/* The file of a parameter must stay inside dir: its name may be any string, so one holding a
 * '/' or equal to ".." is refused rather than opened. */
static kl_status npy_path(const char *dir, const char *name, char **out_path) {
  *out_path = NULL;
  if (strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: parameter name '%s' cannot name a file in the directory "
                            "(it contains '/' or is '..')",
                            dir, name);
  size_t ld = strlen(dir), ln = strlen(name);
  char *path = malloc(ld + ln + 6);
  if (!path)
    kl_fatal_oom();
  memcpy(path, dir, ld);
  path[ld] = '/';
  memcpy(path + ld + 1, name, ln);
  memcpy(path + ld + 1 + ln, ".npy", 5);
  *out_path = path;
  return NULL;
}

kl_status kl_module_load_npy_dir(kl_module *root, const char *dir) {
  if (!root || !dir)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_module_load_npy_dir: NULL %s",
                            root ? "directory" : "module");
  root = root->root;
  kl_tensor **sources = calloc((size_t)root->n_params + 1, sizeof *sources);
  if (!sources)
    kl_fatal_oom();
  kl_status s = NULL;
  for (int i = 0; i < root->n_params && !s; i++) {
    const char *name = root->params[i].name;
    char *path = NULL;
    s = npy_path(dir, name, &path);
    if (!s)
      s = kl_status_annotate(kl_npy_read(path, &sources[i]), "parameter '%s'", name);
    if (!s)
      s = check_match(path, name, root->params[i].tensor, sources[i]);
    free(path);
  }
  if (!s)
    copy_all(root, sources);
  for (int i = 0; i < root->n_params; i++)
    kl_tensor_release(sources[i]);
  free(sources);
  return s;
}

/* ---- layers --------------------------------------------------------------------------- */

/* A new f32 parameter of the given shape registered as name in m, filled by fill: U(-bound,
 * bound), N(0, 1), or the constant bound. Module-owned: no scope takes it. */
typedef enum { FILL_UNIFORM, FILL_NORMAL, FILL_CONSTANT } fill_kind;

static kl_tensor *new_param(kl_module *m, const char *name, int rank, const int64_t *shape,
                            fill_kind fill, double bound, kl_generator *gen) {
  kl_tensor *t = NULL;
  kl_status s = kl_tensor_create(KL_F32, rank, shape, &t);
  if (s) {
    kl_fe_report(kl_status_annotate(s, "parameter '%s%s%s'", m->prefix, m->prefix[0] ? "." : "",
                                    name));
    return NULL;
  }
  float *data = t->data;
  for (int64_t i = 0; i < t->numel; i++) {
    if (fill == FILL_UNIFORM)
      data[i] = (float)((2.0 * kl_generator_uniform(gen) - 1.0) * bound);
    else if (fill == FILL_NORMAL)
      data[i] = (float)kl_generator_normal(gen);
    else
      data[i] = (float)bound;
  }
  kl_tensor *registered = kl_module_param(m, name, t);
  kl_tensor_release(t); /* the module holds the only reference, or none on error */
  return registered;
}

/* The checks every init shares; reports and returns NULL, else the layer's module. */
static kl_module *layer_module(const char *fn, const void *layer, kl_module *parent,
                               const char *name, bool needs_gen, const kl_generator *gen) {
  if (!layer || !parent || (needs_gen && !gen)) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: NULL %s", fn,
                                  !layer ? "layer" : !parent ? "parent module" : "generator"));
    return NULL;
  }
  return kl_module_child(parent, name);
}

static bool positive(const char *fn, const char *name, const char *what, int64_t v) {
  if (v > 0)
    return true;
  kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s '%s': %s must be positive, got %lld",
                                fn, name ? name : "(null)", what, (long long)v));
  return false;
}

bool kl_nn_linear_init(kl_nn_linear *layer, kl_module *parent, const char *name, int64_t in_features,
                       int64_t out_features, bool bias, kl_generator *gen) {
  static const char fn[] = "kl_nn_linear_init";
  if (layer)
    memset(layer, 0, sizeof *layer);
  if (!positive(fn, name, "in_features", in_features) ||
      !positive(fn, name, "out_features", out_features))
    return false;
  kl_module *m = layer_module(fn, layer, parent, name, true, gen);
  if (!m)
    return false;
  double bound = 1.0 / sqrt((double)in_features);
  layer->weight = new_param(m, "weight", KL_SHAPE(out_features, in_features), FILL_UNIFORM, bound,
                            gen);
  if (!layer->weight)
    return false;
  if (bias) {
    layer->bias = new_param(m, "bias", KL_SHAPE(out_features), FILL_UNIFORM, bound, gen);
    if (!layer->bias)
      return false;
  }
  return true;
}

kl_tensor *kl_nn_linear_forward(const kl_nn_linear *layer, kl_tensor *x) {
  if (!layer) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_nn_linear_forward: NULL layer"));
    return NULL;
  }
  return kl_linear(x, layer->weight, layer->bias);
}

bool kl_nn_conv2d_init(kl_nn_conv2d *layer, kl_module *parent, const char *name, int64_t in_channels,
                       int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                       const kl_conv2d_opts *opts, bool bias, kl_generator *gen) {
  static const char fn[] = "kl_nn_conv2d_init";
  if (layer)
    memset(layer, 0, sizeof *layer);
  if (opts && layer)
    layer->opts = *opts;
  int64_t groups = opts && opts->groups ? opts->groups : 1;
  if (!positive(fn, name, "in_channels", in_channels) ||
      !positive(fn, name, "out_channels", out_channels) ||
      !positive(fn, name, "kernel height", kernel_h) ||
      !positive(fn, name, "kernel width", kernel_w) || !positive(fn, name, "groups", groups))
    return false;
  if (in_channels % groups || out_channels % groups) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "%s '%s': in_channels %lld and out_channels %lld must both be "
                                  "divisible by groups %lld",
                                  fn, name ? name : "(null)", (long long)in_channels,
                                  (long long)out_channels, (long long)groups));
    return false;
  }
  kl_module *m = layer_module(fn, layer, parent, name, true, gen);
  if (!m)
    return false;
  int64_t in_per_group = in_channels / groups;
  double bound = 1.0 / sqrt((double)in_per_group * (double)kernel_h * (double)kernel_w);
  layer->weight = new_param(m, "weight", KL_SHAPE(out_channels, in_per_group, kernel_h, kernel_w),
                            FILL_UNIFORM, bound, gen);
  if (!layer->weight)
    return false;
  if (bias) {
    layer->bias = new_param(m, "bias", KL_SHAPE(out_channels), FILL_UNIFORM, bound, gen);
    if (!layer->bias)
      return false;
  }
  return true;
}

kl_tensor *kl_nn_conv2d_forward(const kl_nn_conv2d *layer, kl_tensor *x) {
  if (!layer) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_nn_conv2d_forward: NULL layer"));
    return NULL;
  }
  return kl_conv2d(x, layer->weight, layer->bias, &layer->opts);
}

bool kl_nn_batch_norm2d_init(kl_nn_batch_norm2d *layer, kl_module *parent, const char *name,
                             int64_t channels) {
  static const char fn[] = "kl_nn_batch_norm2d_init";
  if (layer)
    memset(layer, 0, sizeof *layer);
  if (!positive(fn, name, "channels", channels))
    return false;
  kl_module *m = layer_module(fn, layer, parent, name, false, NULL);
  if (!m)
    return false;
  layer->eps = 1e-5;
  layer->weight = new_param(m, "weight", KL_SHAPE(channels), FILL_CONSTANT, 1.0, NULL);
  layer->bias = layer->weight ? new_param(m, "bias", KL_SHAPE(channels), FILL_CONSTANT, 0.0, NULL)
                              : NULL;
  layer->running_mean =
      layer->bias ? new_param(m, "running_mean", KL_SHAPE(channels), FILL_CONSTANT, 0.0, NULL)
                  : NULL;
  layer->running_var =
      layer->running_mean
          ? new_param(m, "running_var", KL_SHAPE(channels), FILL_CONSTANT, 1.0, NULL)
          : NULL;
  return layer->running_var != NULL;
}

kl_tensor *kl_nn_batch_norm2d_forward(const kl_nn_batch_norm2d *layer, kl_tensor *x) {
  if (!layer) {
    kl_fe_report(
        kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_nn_batch_norm2d_forward: NULL layer"));
    return NULL;
  }
  return kl_batch_norm(x, layer->weight, layer->bias, layer->running_mean, layer->running_var,
                       layer->eps);
}

bool kl_nn_layer_norm_init(kl_nn_layer_norm *layer, kl_module *parent, const char *name, int n_dims,
                           const int64_t *normalized_shape) {
  static const char fn[] = "kl_nn_layer_norm_init";
  if (layer)
    memset(layer, 0, sizeof *layer);
  if (n_dims < 1 || n_dims > KL_MAX_RANK || !normalized_shape) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "%s '%s': normalized shape needs 1 to %d dims, got %d%s", fn,
                                  name ? name : "(null)", KL_MAX_RANK, n_dims,
                                  normalized_shape ? "" : " (NULL)"));
    return false;
  }
  for (int d = 0; d < n_dims; d++)
    if (!positive(fn, name, "each normalized dim", normalized_shape[d]))
      return false;
  kl_module *m = layer_module(fn, layer, parent, name, false, NULL);
  if (!m)
    return false;
  layer->n_dims = n_dims;
  layer->eps = 1e-5;
  layer->weight = new_param(m, "weight", n_dims, normalized_shape, FILL_CONSTANT, 1.0, NULL);
  layer->bias =
      layer->weight ? new_param(m, "bias", n_dims, normalized_shape, FILL_CONSTANT, 0.0, NULL)
                    : NULL;
  return layer->bias != NULL;
}

kl_tensor *kl_nn_layer_norm_forward(const kl_nn_layer_norm *layer, kl_tensor *x) {
  if (!layer) {
    kl_fe_report(
        kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_nn_layer_norm_forward: NULL layer"));
    return NULL;
  }
  return kl_layer_norm(x, layer->n_dims, layer->weight, layer->bias, layer->eps);
}

bool kl_nn_embedding_init(kl_nn_embedding *layer, kl_module *parent, const char *name,
                          int64_t num_embeddings, int64_t embedding_dim, kl_generator *gen) {
  static const char fn[] = "kl_nn_embedding_init";
  if (layer)
    memset(layer, 0, sizeof *layer);
  if (!positive(fn, name, "num_embeddings", num_embeddings) ||
      !positive(fn, name, "embedding_dim", embedding_dim))
    return false;
  kl_module *m = layer_module(fn, layer, parent, name, true, gen);
  if (!m)
    return false;
  layer->weight = new_param(m, "weight", KL_SHAPE(num_embeddings, embedding_dim), FILL_NORMAL, 0.0,
                            gen);
  return layer->weight != NULL;
}

kl_tensor *kl_nn_embedding_forward(const kl_nn_embedding *layer, kl_tensor *indices) {
  if (!layer) {
    kl_fe_report(
        kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_nn_embedding_forward: NULL layer"));
    return NULL;
  }
  return kl_embedding(layer->weight, indices);
}
