/* Runs the malformed-file corpus: every file listed in cases.txt (written by gen_corpus.py) is
 * loaded through each entry point that reads its format (.kir: kl_kir_load, and
 * kl_kir_load_buffer on a 64-aligned and on a misaligned copy; .npy: kl_npy_read and
 * kl_npy_read_buffer), and each must give the expected status code and a message containing
 * the expected text. Then every proper prefix of every file must be refused, never crash.
 * Usage: run_malformed [cases.txt]   (paths in it are relative to the current directory) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/kir.h"
#include "runtime/npy.h"

static int failures, checks;

typedef struct corpus_case {
  char path[512];
  kl_status_code code; /* KL_OK for files that must load */
  char substring[512];
} corpus_case;

static bool code_from_word(const char *w, kl_status_code *out) {
  static const struct {
    const char *word;
    kl_status_code code;
  } words[] = {{"ok", KL_OK},
               {"format", KL_ERR_FORMAT},
               {"unsupported", KL_ERR_UNSUPPORTED},
               {"version", KL_ERR_VERSION},
               {"limit", KL_ERR_LIMIT}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    if (strcmp(w, words[i].word) == 0) {
      *out = words[i].code;
      return true;
    }
  }
  return false;
}

static bool read_all(const char *path, unsigned char **out_data, size_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  size_t cap = 4096, n = 0;
  unsigned char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      unsigned char *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  fclose(f);
  *out_data = buf;
  *out_size = n;
  return buf != NULL;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Checks one status against the case, then destroys it. */
static void expect(const corpus_case *c, const char *how, kl_status s) {
  checks++;
  bool ok;
  if (c->code == KL_OK)
    ok = s == NULL;
  else
    ok = s && kl_status_code_of(s) == c->code && strstr(kl_status_message(s), c->substring);
  if (!ok) {
    failures++;
    fprintf(stderr, "FAIL %s via %s\n  got:      [%s] %s\n  expected: [%s] ...%s...\n", c->path,
            how, kl_status_code_name(kl_status_code_of(s)), s ? kl_status_message(s) : "",
            kl_status_code_name(c->code), c->substring);
  }
  kl_status_destroy(s);
}

static kl_status load_kir_buffer(const unsigned char *data, size_t size, size_t misalign,
                                 const char *name) {
  /* aligned_alloc wants a size that is a multiple of the alignment */
  unsigned char *copy = aligned_alloc(64, ((size + misalign) | 63) + 1);
  if (!copy)
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "test: out of memory");
  if (size)
    memcpy(copy + misalign, data, size);
  kl_ir_graph *g = NULL;
  kl_status s = kl_kir_load_buffer(copy + misalign, size, name, &g);
  kl_ir_graph_destroy(g); /* the graph may borrow copy: destroy it first */
  free(copy);
  return s;
}

static kl_status load_npy_buffer(const unsigned char *data, size_t size, const char *name) {
  kl_tensor *t = NULL;
  kl_status s = kl_npy_read_buffer(data, size, name, &t);
  kl_tensor_release(t);
  return s;
}

static void run_case(const corpus_case *c) {
  unsigned char *data;
  size_t size;
  if (!read_all(c->path, &data, &size)) {
    failures++;
    fprintf(stderr, "FAIL %s: cannot read the file\n", c->path);
    return;
  }
  if (ends_with(c->path, ".kir")) {
    kl_ir_graph *g = NULL;
    expect(c, "kl_kir_load", kl_kir_load(c->path, &g));
    kl_ir_graph_destroy(g);
    expect(c, "kl_kir_load_buffer (aligned)", load_kir_buffer(data, size, 0, c->path));
    expect(c, "kl_kir_load_buffer (misaligned)", load_kir_buffer(data, size, 3, c->path));
  } else {
    kl_tensor *t = NULL;
    expect(c, "kl_npy_read", kl_npy_read(c->path, &t));
    kl_tensor_release(t);
    expect(c, "kl_npy_read_buffer", load_npy_buffer(data, size, c->path));
  }
  /* Every prefix of every file must load or fail cleanly (ASan watches); a proper prefix of a
   * valid file is a broken file. (A prefix of a bad file may be valid: "stray bytes".) */
  for (size_t n = 0; n < size; n++) {
    kl_status s = ends_with(c->path, ".kir") ? load_kir_buffer(data, n, 0, c->path)
                                             : load_npy_buffer(data, n, c->path);
    checks++;
    if (!s && c->code == KL_OK) {
      failures++;
      fprintf(stderr, "FAIL %s truncated to %zu bytes was accepted\n", c->path, n);
    }
    kl_status_destroy(s);
  }
  free(data);
}

int main(int argc, char **argv) {
  const char *manifest = argc > 1 ? argv[1] : "cases.txt";
  FILE *f = fopen(manifest, "r");
  if (!f) {
    fprintf(stderr, "run_malformed: cannot open %s\n", manifest);
    return 1;
  }
  char line[2048];
  int n_cases = 0, lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
      continue;
    char *path = line, *code = strchr(path, '\t'), *sub = NULL;
    if (code) {
      *code++ = '\0';
      sub = strchr(code, '\t');
      if (sub)
        *sub++ = '\0';
    }
    corpus_case c;
    if (!code || !code_from_word(code, &c.code) || strlen(path) >= sizeof c.path ||
        strlen(sub ? sub : "") >= sizeof c.substring) {
      fprintf(stderr, "%s:%d: malformed line\n", manifest, lineno);
      failures++;
      continue;
    }
    strcpy(c.path, path);
    strcpy(c.substring, sub ? sub : "");
    run_case(&c);
    n_cases++;
  }
  fclose(f);
  if (n_cases == 0) {
    fprintf(stderr, "run_malformed: no cases in %s\n", manifest);
    return 1;
  }
  if (failures) {
    fprintf(stderr, "%d of %d checks failed (%d files)\n", failures, checks, n_cases);
    return 1;
  }
  printf("%d checks passed (%d files)\n", checks, n_cases);
  return 0;
}
