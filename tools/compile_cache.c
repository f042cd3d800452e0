/* Compiling model files to artifacts for the kiln command, and the compile cache.
 *
 * See compile_cache.h for what a cache key covers. Hashing the kiln executable itself makes a
 * rebuilt kiln (a changed backend) miss the cache even when KL_VERSION did not change. The
 * check of an entry reads the whole .so once per run; that costs far less than compiling and
 * means a damaged file is never handed to dlopen. */
#include "compile_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/codegen_internal.h"
#include "kiln_internal.h"
#include "passes/pass.h"

#ifndef KL_VERSION
#define KL_VERSION "unknown"
#endif

#define CACHE_FORMAT "kiln-cache 1"

unsigned long long kl_fnv1a(unsigned long long h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* Hashes a string with its terminator, so "ab"+"c" and "a"+"bc" differ. NULL hashes as "\1". */
static unsigned long long hash_string(unsigned long long h, const char *s) {
  return s ? kl_fnv1a(h, s, strlen(s) + 1) : kl_fnv1a(h, "\1", 1);
}

/* Hashes a file's size and bytes into *h; a missing file fails. */
static kl_status hash_file(const char *path, unsigned long long *h, uint64_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return kl_status_create(errno == ENOENT ? KL_ERR_NOT_FOUND : KL_ERR_IO, "%s: %s", path,
                            strerror(errno));
  unsigned char buf[65536];
  uint64_t size = 0;
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    *h = kl_fnv1a(*h, buf, n);
    size += n;
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad)
    return kl_status_create(KL_ERR_IO, "%s: read error", path);
  *h = kl_fnv1a(*h, &size, sizeof size);
  if (out_size)
    *out_size = size;
  return NULL;
}

/* ---- compiling ------------------------------------------------------------------------ */

static void show_progress(void *ctx, const char *stage, int done, int total) {
  (void)ctx;
  if (total > 0)
    fprintf(stderr, "\r\033[Kkiln: %s %d/%d", stage, done, total);
  else
    fprintf(stderr, "\r\033[Kkiln: %s", stage);
  fflush(stderr);
}

kl_status kl_tool_compile_model(const kl_tool_compile *c, const char *so_path,
                                const char *header_path) {
  if (c->level < 0 || c->level > 3)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "optimization level %d is not 0..3",
                            c->level);
  kl_ir_graph *g = NULL;
  if (c->progress)
    show_progress(NULL, "load", 0, 0);
  KL_RETURN_IF_ERROR(kl_cli_load_graph(c->model_path, &g));
  kl_status s = kl_cli_apply_binds(g, c->binds, c->n_binds);
  kl_pass_options popts;
  kl_pass_options_init(&popts);
  popts.time_passes = c->time_passes;
  if (c->progress && !s)
    show_progress(NULL, "passes", 0, 0);
  if (!s)
    s = kl_pass_run_level(g, c->level, &popts);
  if (!s)
    s = kl_cli_explain_value_dependent(g, c->level);
  if (s)
    s = kl_status_annotate(s, "%s", c->model_path);
  kl_compile_options o = c->codegen;
  o.opt_level = c->level;
  o.time_report = c->time_passes;
  if (c->progress) {
    o.progress = show_progress;
    o.progress_ctx = NULL;
  }
  if (!s)
    s = kl_compile(g, &o, so_path, header_path);
  if (c->progress)
    fputs("\r\033[K", stderr);
  kl_ir_graph_destroy(g);
  return s;
}

/* ---- the cache ------------------------------------------------------------------------ */

/* mkdir -p with mode 0700 for what it creates. */
static kl_status make_dirs(const char *dir) {
  char *path = strdup(dir);
  if (!path)
    kl_fatal_oom();
  kl_status s = NULL;
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
      s = kl_status_create(KL_ERR_IO, "cache directory %s: cannot create %s: %s", dir, path,
                           strerror(errno));
      break;
    }
    *p = saved;
    if (saved == '\0')
      break;
  }
  free(path);
  struct stat st;
  if (!s && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
    s = kl_status_create(KL_ERR_IO, "cache directory %s is not a directory", dir);
  return s;
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = malloc(n);
  if (!s)
    kl_fatal_oom();
  snprintf(s, n, "%s/%s", a, b);
  return s;
}

static kl_status default_cache_dir(char **out_dir) {
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && xdg[0] == '/') {
    *out_dir = join(xdg, "kiln");
    return NULL;
  }
  const char *home = getenv("HOME");
  if (!home || !*home)
    return kl_status_create(KL_ERR_NOT_FOUND,
                            "no cache directory: set XDG_CACHE_HOME or HOME, or give --cache-dir");
  char *cache = join(home, ".cache");
  *out_dir = join(cache, "kiln");
  free(cache);
  return NULL;
}

/* The host CPU's feature flags (the "flags" line of /proc/cpuinfo), hashed into the key when
 * the CPU or features are left to the host, so a cache shared between machines stays right. */
static unsigned long long hash_host_cpu(unsigned long long h) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return h;
  char line[8192];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "flags", 5) == 0 || strncmp(line, "Features", 8) == 0 ||
        strncmp(line, "model name", 10) == 0) {
      h = hash_string(h, line);
    }
    if (line[0] == '\n')
      break; /* the first processor is enough */
  }
  fclose(f);
  return h;
}

static kl_status cache_key(const kl_tool_compile *c, char out_key[17]) {
  unsigned long long h = KL_FNV_OFFSET;
  h = hash_string(h, CACHE_FORMAT);
  h = hash_string(h, KL_VERSION);
  KL_RETURN_IF_ERROR(hash_file(c->model_path, &h, NULL));
  /* Each bound value: the input's name and the .npy file's bytes. */
  int32_t n_binds = c->n_binds;
  h = kl_fnv1a(h, &n_binds, sizeof n_binds);
  for (int i = 0; i < c->n_binds; i++) {
    h = hash_string(h, c->binds[i].name);
    kl_status s = hash_file(c->binds[i].path, &h, NULL);
    if (s)
      return kl_status_annotate(s, "--bind %s=%s", c->binds[i].name, c->binds[i].path);
  }
  /* The executable and the runtime archive: a rebuilt kiln or runtime misses the cache. */
  if (hash_file("/proc/self/exe", &h, NULL) != NULL)
    h = hash_string(h, "no-exe");
  kl_status s = hash_file(kl_codegen_runtime_archive(), &h, NULL);
  if (s) {
    kl_status_destroy(s); /* compiling will say what is missing */
    h = hash_string(h, kl_codegen_runtime_archive());
  }
  const kl_compile_options *o = &c->codegen;
  h = hash_string(h, o->name ? o->name : "net");
  h = hash_string(h, o->triple);
  h = hash_string(h, o->cpu);
  h = hash_string(h, o->features);
  if (!o->cpu || !o->features)
    h = hash_host_cpu(h);
  int32_t fields[4] = {c->level, (int32_t)o->target, (int32_t)o->no_winograd,
                       (int32_t)o->no_fuse_epilogue};
  h = kl_fnv1a(h, fields, sizeof fields);
  snprintf(out_key, 17, "%016llx", h);
  return NULL;
}

/* What KEY.sum says about KEY.so: CACHE_FORMAT, the size and the FNV-1a of the bytes. */
static kl_status checksum_line(const char *so_path, char *buf, size_t size) {
  unsigned long long h = KL_FNV_OFFSET;
  uint64_t bytes = 0;
  KL_RETURN_IF_ERROR(hash_file(so_path, &h, &bytes));
  snprintf(buf, size, "%s %" PRIu64 " %016llx\n", CACHE_FORMAT, bytes, h);
  return NULL;
}

/* True when so_path and sum_path are a complete, matching entry. */
static bool entry_valid(const char *so_path, const char *sum_path) {
  FILE *f = fopen(sum_path, "r");
  if (!f)
    return false;
  char stored[128] = "";
  bool read_ok = fgets(stored, sizeof stored, f) != NULL;
  fclose(f);
  char actual[128];
  kl_status s = checksum_line(so_path, actual, sizeof actual);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  return read_ok && strcmp(stored, actual) == 0;
}

static kl_status write_text_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: %s", path, strerror(errno));
  fputs(text, f);
  if (ferror(f) | (fclose(f) != 0))
    return kl_status_create(KL_ERR_IO, "%s: cannot write", path);
  return NULL;
}

/* A unique temporary name in dir for base ("KEY.so" -> "KEY.so.tmp-PID-XXXXXX"), created
 * empty. */
static kl_status temp_name(const char *dir, const char *base, char **out_path) {
  size_t n = strlen(dir) + strlen(base) + 64;
  char *path = malloc(n);
  if (!path)
    kl_fatal_oom();
  snprintf(path, n, "%s/%s.tmp-%ld-XXXXXX", dir, base, (long)getpid());
  int fd = mkstemp(path);
  if (fd < 0) {
    kl_status s = kl_status_create(KL_ERR_IO, "cache: cannot create a file in %s: %s", dir,
                                   strerror(errno));
    free(path);
    return s;
  }
  close(fd);
  *out_path = path;
  return NULL;
}

kl_status kl_compile_cache_get(const kl_tool_compile *c, const char *cache_dir, bool verbose,
                               char **out_so_path) {
  *out_so_path = NULL;
  char *dir = NULL;
  if (cache_dir) {
    dir = strdup(cache_dir);
    if (!dir)
      kl_fatal_oom();
  } else {
    KL_RETURN_IF_ERROR(default_cache_dir(&dir));
  }
  kl_status s = make_dirs(dir);
  char key[17];
  if (!s)
    s = cache_key(c, key);
  if (s) {
    free(dir);
    return s;
  }
  char so_base[32], sum_base[32];
  snprintf(so_base, sizeof so_base, "%s.so", key);
  snprintf(sum_base, sizeof sum_base, "%s.sum", key);
  char *so_path = join(dir, so_base), *sum_path = join(dir, sum_base);

  struct stat st;
  bool present = stat(so_path, &st) == 0 || stat(sum_path, &st) == 0;
  if (present && entry_valid(so_path, sum_path)) {
    if (verbose)
      fprintf(stderr, "kiln: compiled (cached) %s\n", so_path);
  } else {
    if (present) {
      /* Half written, truncated or corrupt: never load it. */
      if (verbose)
        fprintf(stderr, "kiln: cache entry %s is damaged; rebuilding\n", so_path);
      unlink(so_path);
      unlink(sum_path);
    }
    char *tmp_so = NULL, *tmp_sum = NULL;
    char line[128];
    s = temp_name(dir, so_base, &tmp_so);
    if (!s)
      s = kl_tool_compile_model(c, tmp_so, NULL);
    if (!s)
      s = checksum_line(tmp_so, line, sizeof line);
    if (!s)
      s = temp_name(dir, sum_base, &tmp_sum);
    if (!s)
      s = write_text_file(tmp_sum, line);
    /* The .so first: a .so without its .sum is an invalid entry, never a trusted one. */
    if (!s && rename(tmp_so, so_path) != 0)
      s = kl_status_create(KL_ERR_IO, "cache: cannot rename into %s: %s", so_path,
                           strerror(errno));
    if (!s && rename(tmp_sum, sum_path) != 0)
      s = kl_status_create(KL_ERR_IO, "cache: cannot rename into %s: %s", sum_path,
                           strerror(errno));
    if (tmp_so)
      unlink(tmp_so); /* gone already after a successful rename */
    if (tmp_sum)
      unlink(tmp_sum);
    free(tmp_so);
    free(tmp_sum);
    if (!s && verbose)
      fprintf(stderr, "kiln: compiled %s\n", so_path);
  }
  free(sum_path);
  free(dir);
  if (s) {
    free(so_path);
    return s;
  }
  *out_so_path = so_path;
  return NULL;
}
