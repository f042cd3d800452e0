/* A small standalone driver for compiled models (CPU or CUDA artifacts), built from this one
 * file and runtime/artifact.h with libc and dlopen only, so it also builds on a GPU machine
 * that has neither kiln nor LLVM:
 *
 *   cuda_runner LIB.so NAME DIR [--device N] [--iters N] [--rtol R] [--atol A]
 *   cuda_runner LIB.so NAME --expect-no-device [--device N]
 *   cuda_runner LIB.so NAME --expect-run-ok [--device N]
 *   cuda_runner LIB.so NAME --expect-launch-fail
 *
 * The first form reads DIR/in<i>.npy for every input (descriptor order), runs the model, and
 * compares each output with DIR/expected<i>.npy (|got - want| <= atol + rtol * |want|, Float
 * outputs; other dtypes must match exactly); with --iters it also times that many runs after one
 * warm-up. It prints one line per output and exits 0 when all agree, 1 otherwise. The second
 * form checks that creating a context fails cleanly with KL_ARTIFACT_ERR_NO_DEVICE and a
 * message (what a machine without a GPU must see), exit 0 when it does. The last two drive the
 * host runtime against a fake driver (tests/cuda/fake_cuda.c): every entry point with zeroed
 * host buffers, then with "device" pointers, and the argument checks; or a run whose launches
 * fail, which must report KL_ARTIFACT_ERR_RUNTIME naming the node. */
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../runtime/artifact.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The data of an .npy file (v1-v3 header, any descr) into a malloc'd buffer. */
static void *read_npy(const char *path, size_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", path);
    return NULL;
  }
  unsigned char head[10];
  if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0) {
    fprintf(stderr, "%s: not an .npy file\n", path);
    fclose(f);
    return NULL;
  }
  long header_len;
  long data_at;
  if (head[6] == 1) {
    header_len = head[8] | (head[9] << 8);
    data_at = 10 + header_len;
  } else {
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2) {
      fclose(f);
      return NULL;
    }
    header_len = head[8] | (head[9] << 8) | ((long)more[0] << 16) | ((long)more[1] << 24);
    data_at = 12 + header_len;
  }
  fseek(f, 0, SEEK_END);
  long end = ftell(f);
  if (end < data_at) {
    fprintf(stderr, "%s: truncated\n", path);
    fclose(f);
    return NULL;
  }
  size_t size = (size_t)(end - data_at);
  void *data = malloc(size ? size : 1);
  fseek(f, data_at, SEEK_SET);
  if (!data || fread(data, 1, size, f) != size) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(data);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *out_size = size;
  return data;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s LIB.so NAME DIR [--device N] [--iters N] [--rtol R] [--atol A]\n"
                    "       %s LIB.so NAME --expect-no-device\n",
            argv[0], argv[0]);
    return 2;
  }
  const char *lib = argv[1], *name = argv[2], *dir = argv[3];
  bool expect_no_device = strcmp(dir, "--expect-no-device") == 0;
  bool expect_run_ok = strcmp(dir, "--expect-run-ok") == 0;
  bool expect_launch_fail = strcmp(dir, "--expect-launch-fail") == 0;
  int device = 0, iters = 0;
  double rtol = 1e-4, atol = 1e-4;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--device") == 0)
      device = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--iters") == 0)
      iters = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--rtol") == 0)
      rtol = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--atol") == 0)
      atol = atof(argv[i + 1]);
  }
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "%s: %s\n", lib, dlerror());
    return 1;
  }
  char sym[160];
  snprintf(sym, sizeof sym, "%s%s", KL_ARTIFACT_SYMBOL_PREFIX, name);
  const kl_artifact_descriptor *d = dlsym(h, sym);
  if (!d || d->magic != KL_ARTIFACT_MAGIC || d->abi_version != KL_ARTIFACT_ABI_VERSION) {
    fprintf(stderr, "%s: no usable %s\n", lib, sym);
    return 1;
  }
  kl_artifact_options opts = {sizeof opts, 0, device, NULL};
  void *ctx = NULL;
  int code = d->create(&opts, &ctx);
  if (expect_no_device) {
    const char *msg = d->error_message(NULL);
    printf("create: %d (%s): %s\n", code, d->status_message(code), msg ? msg : "(null)");
    bool ok = code == KL_ARTIFACT_ERR_NO_DEVICE && ctx == NULL && msg && *msg;
    if (ctx)
      d->destroy(ctx);
    return ok ? 0 : 1;
  }
  if (code == KL_ARTIFACT_OK && (expect_run_ok || expect_launch_fail)) {
    const void **hin = calloc((size_t)d->n_inputs + 1, sizeof *hin);
    void **hout = calloc((size_t)d->n_outputs + 1, sizeof *hout);
    for (int i = 0; i < d->n_inputs; i++)
      hin[i] = calloc(1, d->inputs[i].nbytes + 1);
    for (int i = 0; i < d->n_outputs; i++)
      hout[i] = calloc(1, d->outputs[i].nbytes + 1);
    int c1 = d->run(ctx, hin, hout, 0);
    char first_error[512];
    snprintf(first_error, sizeof first_error, "%s", d->error_message(ctx));
    int c2 = d->run(ctx, hin, hout, KL_ARTIFACT_RUN_DEVICE_POINTERS);
    int c3 = d->run(NULL, hin, hout, 0);
    int c4 = d->run(ctx, hin, hout, 0x80);
    int c5 = d->set_threads(ctx, 4);
    printf("run: host %d (%s), device pointers %d, NULL ctx %d, bad flags %d, set_threads %d\n",
           c1, first_error, c2, c3, c4, c5);
    bool ok;
    if (expect_run_ok)
      ok = c1 == 0 && c2 == 0 && c3 == KL_ARTIFACT_ERR_INVALID_ARGUMENT &&
           c4 == KL_ARTIFACT_ERR_INVALID_ARGUMENT && c5 == 0;
    else
      ok = c1 == KL_ARTIFACT_ERR_RUNTIME && strstr(first_error, "launching");
    if (d->n_inputs > 0 && expect_run_ok) {
      const void *saved = hin[0];
      hin[0] = NULL;
      int c6 = d->run(ctx, hin, hout, 0);
      printf("run with a NULL input: %d: %s\n", c6, d->error_message(ctx));
      ok = ok && c6 == KL_ARTIFACT_ERR_INVALID_ARGUMENT;
      hin[0] = saved;
    }
    for (int i = 0; i < d->n_inputs; i++)
      free((void *)hin[i]);
    for (int i = 0; i < d->n_outputs; i++)
      free(hout[i]);
    free(hin);
    free(hout);
    d->destroy(ctx);
    return ok ? 0 : 1;
  }
  if (code != KL_ARTIFACT_OK) {
    fprintf(stderr, "%s: create failed: %s: %s\n", lib, d->status_message(code),
            d->error_message(NULL));
    return 1;
  }
  const void **in = calloc((size_t)d->n_inputs + 1, sizeof *in);
  void **out = calloc((size_t)d->n_outputs + 1, sizeof *out);
  int rc = 0;
  for (int i = 0; i < d->n_inputs && !rc; i++) {
    char path[4096];
    size_t size = 0;
    snprintf(path, sizeof path, "%s/in%d.npy", dir, i);
    in[i] = read_npy(path, &size);
    if (!in[i] || size != d->inputs[i].nbytes) {
      fprintf(stderr, "%s: %zu bytes, input %s needs %llu\n", path, size, d->inputs[i].c_name,
              (unsigned long long)d->inputs[i].nbytes);
      rc = 1;
    }
  }
  for (int i = 0; i < d->n_outputs && !rc; i++)
    out[i] = calloc(1, d->outputs[i].nbytes + 1);
  if (!rc) {
    code = d->run(ctx, in, out, 0);
    if (code) {
      fprintf(stderr, "run failed: %s: %s\n", d->status_message(code), d->error_message(ctx));
      rc = 1;
    }
  }
  if (!rc && iters > 0) {
    double t0 = now_ms();
    for (int k = 0; k < iters && !code; k++)
      code = d->run(ctx, in, out, 0);
    double t1 = now_ms();
    printf("%s: %.4f ms per run (%d runs, host inputs and outputs)\n", name, (t1 - t0) / iters,
           iters);
  }
  for (int i = 0; i < d->n_outputs && !rc; i++) {
    char path[4096];
    size_t size = 0;
    snprintf(path, sizeof path, "%s/expected%d.npy", dir, i);
    void *want = read_npy(path, &size);
    if (!want || size != d->outputs[i].nbytes) {
      fprintf(stderr, "%s: %zu bytes, output %s has %llu\n", path, size, d->outputs[i].c_name,
              (unsigned long long)d->outputs[i].nbytes);
      free(want);
      rc = 1;
      break;
    }
    double max_abs = 0.0;
    long bad = 0, n = 0;
    if (d->outputs[i].dtype == 0) { /* Float */
      const float *g = out[i], *w = want;
      n = (long)(size / 4);
      for (long k = 0; k < n; k++) {
        double e = fabs((double)g[k] - (double)w[k]);
        if (e > max_abs || e != e)
          max_abs = e;
        if (!(e <= atol + rtol * fabs((double)w[k])) && !(g[k] != g[k] && w[k] != w[k]))
          bad++;
      }
    } else {
      n = (long)size;
      bad = memcmp(out[i], want, size) != 0;
    }
    printf("%s output %d (%s): %ld elements, max abs error %.3g, %ld beyond rtol %g atol %g: %s\n",
           name, i, d->outputs[i].c_name, n, max_abs, bad, rtol, atol, bad ? "FAIL" : "ok");
    if (bad)
      rc = 1;
    free(want);
  }
  for (int i = 0; i < d->n_inputs; i++)
    free((void *)in[i]);
  for (int i = 0; i < d->n_outputs; i++)
    free(out[i]);
  free(in);
  free(out);
  d->destroy(ctx);
  return rc;
}
