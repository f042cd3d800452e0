/* Freezing test inputs into initializers (see freeze_inputs.h). The model is unpacked with the
 * protobuf-c code kiln generates from onnx.proto, its graph's input and initializer arrays are
 * swapped for new ones just long enough to pack it again, and the result is imported from
 * memory; the unpacked messages are restored before they are freed, so protobuf-c frees only
 * what it allocated. */
#include "freeze_inputs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx/onnx.h"
#include "onnx/onnx.pb-c.h"

#define FREEZE_MAX_FILE ((long)1 << 30)

static kl_status read_whole_file(const char *path, uint8_t **out_data, size_t *out_size) {
  *out_data = NULL;
  *out_size = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot open", path);
  long end = -1;
  if (fseek(f, 0, SEEK_END) == 0)
    end = ftell(f);
  if (end < 0 || end > FREEZE_MAX_FILE || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return kl_status_create(KL_ERR_IO, "%s: cannot size (or over 1 GiB)", path);
  }
  uint8_t *data = malloc(end ? (size_t)end : 1);
  if (!data)
    kl_fatal_oom();
  bool ok = fread(data, 1, (size_t)end, f) == (size_t)end;
  fclose(f);
  if (!ok) {
    free(data);
    return kl_status_create(KL_ERR_IO, "%s: short read", path);
  }
  *out_data = data;
  *out_size = (size_t)end;
  return NULL;
}

static kl_status unpack_model(const char *model_path, Onnx__ModelProto **out_model) {
  uint8_t *data;
  size_t size;
  KL_RETURN_IF_ERROR(read_whole_file(model_path, &data, &size));
  *out_model = onnx__model_proto__unpack(NULL, size, data);
  free(data);
  if (!*out_model || !(*out_model)->graph) {
    if (*out_model)
      onnx__model_proto__free_unpacked(*out_model, NULL);
    *out_model = NULL;
    return kl_status_create(KL_ERR_FORMAT, "%s: not an ONNX model with a graph", model_path);
  }
  return NULL;
}

kl_status freeze_read_input_names(const char *model_path, char ***out_names, int *out_n) {
  *out_names = NULL;
  *out_n = 0;
  Onnx__ModelProto *model;
  KL_RETURN_IF_ERROR(unpack_model(model_path, &model));
  Onnx__GraphProto *graph = model->graph;
  char **names = calloc(graph->n_input + 1, sizeof *names);
  if (!names)
    kl_fatal_oom();
  for (size_t i = 0; i < graph->n_input; i++) {
    names[i] = strdup(graph->input[i]->name ? graph->input[i]->name : "");
    if (!names[i])
      kl_fatal_oom();
  }
  *out_names = names;
  *out_n = (int)graph->n_input;
  onnx__model_proto__free_unpacked(model, NULL);
  return NULL;
}

void freeze_free_input_names(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

int freeze_mark_named(const char *message, char *const *names, int n, bool *frozen) {
  static const char marker[] = "') needs a constant";
  int added = 0;
  for (const char *end = strstr(message, marker); end; end = strstr(end + 1, marker)) {
    const char *start = end;
    while (start > message && !(start[-1] == '\'' && start - 1 > message && start[-2] == '('))
      start--;
    if (start == message)
      continue;
    size_t len = (size_t)(end - start);
    for (int k = 0; k < n; k++)
      if (!frozen[k] && strlen(names[k]) == len && strncmp(names[k], start, len) == 0) {
        frozen[k] = true;
        added++;
      }
  }
  return added;
}

kl_status freeze_import(const char *model_path, const char *set_dir, int n, const bool *frozen,
                        kl_ir_graph **out_graph) {
  *out_graph = NULL;
  Onnx__ModelProto *model;
  KL_RETURN_IF_ERROR(unpack_model(model_path, &model));
  Onnx__GraphProto *graph = model->graph;
  if ((int)graph->n_input != n) {
    onnx__model_proto__free_unpacked(model, NULL);
    return kl_status_create(KL_ERR_INTERNAL, "%s: %zu graph inputs, expected %d", model_path,
                            graph->n_input, n);
  }
  Onnx__TensorProto **values = calloc((size_t)n + 1, sizeof *values);
  char **value_names = calloc((size_t)n + 1, sizeof *value_names);
  Onnx__ValueInfoProto **kept = calloc((size_t)n + 1, sizeof *kept);
  Onnx__TensorProto **inits = calloc(graph->n_initializer + (size_t)n + 1, sizeof *inits);
  if (!values || !value_names || !kept || !inits)
    kl_fatal_oom();
  kl_status s = NULL;
  size_t n_kept = 0, n_inits = graph->n_initializer;
  if (n_inits)
    memcpy(inits, graph->initializer, n_inits * sizeof *inits);
  for (int k = 0; k < n && !s; k++) {
    if (!frozen[k]) {
      kept[n_kept++] = graph->input[k];
      continue;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/input_%d.pb", set_dir, k);
    uint8_t *data;
    size_t size;
    s = read_whole_file(path, &data, &size);
    if (s)
      break;
    values[k] = onnx__tensor_proto__unpack(NULL, size, data);
    free(data);
    if (!values[k]) {
      s = kl_status_create(KL_ERR_FORMAT, "%s: not a TensorProto", path);
      break;
    }
    value_names[k] = values[k]->name;
    values[k]->name = graph->input[k]->name;
    inits[n_inits++] = values[k];
  }
  uint8_t *packed = NULL;
  size_t packed_size = 0;
  if (!s) {
    Onnx__ValueInfoProto **saved_inputs = graph->input;
    Onnx__TensorProto **saved_inits = graph->initializer;
    size_t saved_n_input = graph->n_input, saved_n_inits = graph->n_initializer;
    graph->input = kept;
    graph->n_input = n_kept;
    graph->initializer = inits;
    graph->n_initializer = n_inits;
    packed_size = onnx__model_proto__get_packed_size(model);
    packed = malloc(packed_size ? packed_size : 1);
    if (!packed)
      kl_fatal_oom();
    onnx__model_proto__pack(model, packed);
    graph->input = saved_inputs;
    graph->n_input = saved_n_input;
    graph->initializer = saved_inits;
    graph->n_initializer = saved_n_inits;
  }
  for (int k = 0; k < n; k++)
    if (values[k]) {
      values[k]->name = value_names[k];
      onnx__tensor_proto__free_unpacked(values[k], NULL);
    }
  free(values);
  free(value_names);
  free(kept);
  free(inits);
  onnx__model_proto__free_unpacked(model, NULL);
  if (s)
    return s;
  /* External data (none in the node tests) is looked up next to the original model. */
  char *base_dir = strdup(model_path);
  if (!base_dir)
    kl_fatal_oom();
  char *slash = strrchr(base_dir, '/');
  if (slash)
    *slash = '\0';
  else
    strcpy(base_dir, ".");
  s = kl_onnx_import_buffer(packed, packed_size, base_dir, model_path, NULL, out_graph);
  free(base_dir);
  free(packed);
  return s;
}

bool read_uint16_tensor_as_bf16(const char *path, kl_tensor **out_tensor) {
  *out_tensor = NULL;
  uint8_t *data;
  size_t size;
  kl_status s = read_whole_file(path, &data, &size);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  Onnx__TensorProto *proto = onnx__tensor_proto__unpack(NULL, size, data);
  free(data);
  if (!proto)
    return false;
  bool ok = proto->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT16 &&
            proto->n_dims <= KL_MAX_RANK && proto->data_location == 0;
  int64_t shape[KL_MAX_RANK];
  for (size_t i = 0; ok && i < proto->n_dims; i++)
    shape[i] = proto->dims[i];
  kl_tensor *t = NULL;
  if (ok) {
    s = kl_tensor_create(KL_BF16, (int)proto->n_dims, shape, &t);
    ok = !s;
    kl_status_destroy(s);
  }
  uint16_t *bits = ok ? t->data : NULL;
  if (ok && proto->raw_data.len) {
    ok = proto->raw_data.len == (size_t)t->numel * 2;
    for (int64_t i = 0; ok && i < t->numel; i++) /* little-endian on the wire */
      bits[i] = (uint16_t)(proto->raw_data.data[2 * i] | proto->raw_data.data[2 * i + 1] << 8);
  } else if (ok) {
    ok = proto->n_int32_data == (size_t)t->numel;
    for (int64_t i = 0; ok && i < t->numel; i++)
      bits[i] = (uint16_t)proto->int32_data[i];
  }
  onnx__tensor_proto__free_unpacked(proto, NULL);
  if (!ok) {
    kl_tensor_release(t);
    return false;
  }
  *out_tensor = t;
  return true;
}
