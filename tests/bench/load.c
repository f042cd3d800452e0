/* `load LIB.so [THREADS] [RUNS]`: what tools/bench.sh measures of an artifact besides latency.
 *
 * Opens the artifact (ELF check, dlopen, descriptor check: runtime/artifact_load.h), creates
 * one context with THREADS threads (default 1), runs it RUNS times (default 10) on zero-filled
 * inputs (every index input then points at row 0, in range for any table), and prints one JSON
 * object: {"open_ms", "create_ms", "load_ms" (open + create), "first_run_ms", "peak_rss_kib"
 * (the process's resident high-water mark after the runs), "workspace_bytes", "weights_bytes"}.
 * Errors go to stderr with exit status 1. Not installed, not a test.
 *
 * The high-water mark is VmHWM of /proc/self/status: getrusage's ru_maxrss would do elsewhere,
 * but on Linux it survives exec, so a driver started from a large parent (Python) reports
 * the parent's peak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "runtime/artifact_load.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long parse_count(const char *arg, long max) {
  char *end;
  long v = strtol(arg, &end, 10);
  return *arg != '\0' && *end == '\0' && v >= 1 && v <= max ? v : -1;
}

/* Zero-filled buffers of the sizes the descriptor gives; NULL when out of memory. */
static void **alloc_buffers(const kl_artifact_tensor_info *info, int n) {
  void **bufs = calloc((size_t)n + 1, sizeof *bufs);
  for (int i = 0; bufs && i < n; i++) {
    bufs[i] = calloc(1, info[i].nbytes ? (size_t)info[i].nbytes : 1);
    if (!bufs[i]) {
      for (int k = 0; k < i; k++)
        free(bufs[k]);
      free(bufs);
      return NULL;
    }
  }
  return bufs;
}

static void free_buffers(void **bufs, int n) {
  for (int i = 0; bufs && i < n; i++)
    free(bufs[i]);
  free(bufs);
}

/* The peak resident set in KiB: VmHWM where /proc has it, else getrusage's ru_maxrss. */
static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && kib < 0 && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  if (kib < 0) {
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    getrusage(RUSAGE_SELF, &usage);
    kib = usage.ru_maxrss;
  }
  return kib;
}

int main(int argc, char **argv) {
  long threads = argc > 2 ? parse_count(argv[2], 1024) : 1;
  long runs = argc > 3 ? parse_count(argv[3], 1000000) : 10;
  if (argc < 2 || argc > 4 || threads < 0 || runs < 0) {
    fprintf(stderr, "usage: load LIB.so [THREADS 1..1024] [RUNS 1..1000000]\n");
    return 2;
  }
  const char *path = argv[1];
  kl_artifact_handle *handle = NULL;
  const kl_artifact_descriptor *d = NULL;
  double t0 = now_ms();
  kl_status s = kl_artifact_open(path, &handle, &d);
  double t1 = now_ms();
  if (s) {
    fprintf(stderr, "load: %s: %s\n", path, kl_status_message(s));
    kl_status_destroy(s);
    return 1;
  }
  kl_artifact_options opts = {.struct_size = sizeof opts, .n_threads = (int32_t)threads};
  void *ctx = NULL;
  int code = d->create(&opts, &ctx);
  double t2 = now_ms();
  if (code != 0 || !ctx) {
    fprintf(stderr, "load: %s: create failed: %s\n", path, d->status_message(code));
    kl_artifact_close(handle);
    return 1;
  }
  void **in = alloc_buffers(d->inputs, d->n_inputs);
  void **out = alloc_buffers(d->outputs, d->n_outputs);
  int rc = 0;
  double first_run_ms = 0;
  if (!in || !out) {
    fprintf(stderr, "load: %s: out of memory for the input and output buffers\n", path);
    rc = 1;
  }
  for (long r = 0; r < runs && rc == 0; r++) {
    double r0 = now_ms();
    code = d->run(ctx, (const void *const *)in, out, 0);
    if (r == 0)
      first_run_ms = now_ms() - r0;
    if (code != 0) {
      fprintf(stderr, "load: %s: run failed: %s: %s\n", path, d->status_message(code),
              d->error_message(ctx));
      rc = 1;
    }
  }
  if (rc == 0)
    printf("{\"open_ms\": %.4f, \"create_ms\": %.4f, \"load_ms\": %.4f, \"first_run_ms\": %.4f, "
           "\"peak_rss_kib\": %ld, \"workspace_bytes\": %llu, \"weights_bytes\": %llu}\n",
           t1 - t0, t2 - t1, t2 - t0, first_run_ms, peak_rss_kib(),
           (unsigned long long)d->workspace_size, (unsigned long long)d->weights_size);
  d->destroy(ctx);
  free_buffers(in, d->n_inputs);
  free_buffers(out, d->n_outputs);
  kl_artifact_close(handle);
  return rc;
}
