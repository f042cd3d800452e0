/* Runs the malformed ONNX corpus: every model listed in cases.txt (written by
 * make_malformed.py) is imported with kl_onnx_import_file and with kl_onnx_import_buffer (the
 * folder given for external data), and each must give the expected status code and a message
 * containing the expected text. Every prefix of the valid models must be handled without a
 * crash, and the symlink case is built here: a copy of the model next to a symlink to
 * /etc/passwd in a fresh temporary folder must be refused.
 * Usage: run_onnx_malformed [cases.txt]   (run from the folder that holds the corpus) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/onnx/onnx.h"

static int failures, checks;

static bool code_from_word(const char *w, kl_status_code *out) {
  static const struct {
    const char *word;
    kl_status_code code;
  } words[] = {{"ok", KL_OK},
               {"format", KL_ERR_FORMAT},
               {"unsupported", KL_ERR_UNSUPPORTED},
               {"invalid", KL_ERR_INVALID_ARGUMENT},
               {"limit", KL_ERR_LIMIT},
               {"io", KL_ERR_IO}};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (!strcmp(words[i].word, w)) {
      *out = words[i].code;
      return true;
    }
  return false;
}

static void expect(const char *what, kl_status s, kl_ir_graph *g, kl_status_code code,
                   const char *substring) {
  checks++;
  const char *m = kl_status_message(s);
  bool ok = kl_status_code_of(s) == code && (code == KL_OK ? g != NULL : g == NULL) &&
            strstr(m, substring) != NULL;
  if (!ok) {
    failures++;
    fprintf(stderr, "FAIL %s: expected %s containing \"%s\"\n  got %s: %s\n", what,
            kl_status_code_name(code), substring, kl_status_code_name(kl_status_code_of(s)), m);
  }
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
}

static unsigned char *read_all(const char *path, size_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *out_size = (size_t)n;
  return buf;
}

/* Every prefix must give a status or a graph, and a refusal must say something. */
static void all_prefixes(const char *path) {
  size_t size;
  unsigned char *buf = read_all(path, &size);
  if (!buf)
    return;
  for (size_t cut = 0; cut < size; cut++) {
    unsigned char *copy = malloc(cut ? cut : 1); /* exact size, so ASan sees over-reads */
    memcpy(copy, buf, cut);
    kl_ir_graph *g = NULL;
    kl_status s = kl_onnx_import_buffer(copy, cut, ".", path, NULL, &g);
    checks++;
    if (s && !*kl_status_message(s)) {
      failures++;
      fprintf(stderr, "FAIL %s cut at %zu: an error without a message\n", path, cut);
    }
    kl_status_destroy(s);
    kl_ir_graph_destroy(g);
    free(copy);
  }
  free(buf);
}

static void symlink_case(const char *model, const char *substring) {
  char dir[] = "/tmp/kiln_onnx_symlink_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    failures++;
    return;
  }
  size_t size;
  unsigned char *buf = read_all(model, &size);
  char path[512], link[512];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  snprintf(link, sizeof link, "%s/passwd_link.bin", dir);
  FILE *f = fopen(path, "wb");
  if (buf && f)
    fwrite(buf, 1, size, f);
  if (f)
    fclose(f);
  if (symlink("/etc/passwd", link) != 0)
    perror("symlink");
  kl_ir_graph *g = NULL;
  expect("symlink out of the folder", kl_onnx_import_file(path, NULL, &g), g,
         KL_ERR_INVALID_ARGUMENT, substring);
  unlink(link);
  unlink(path);
  rmdir(dir);
  free(buf);
}

int main(int argc, char **argv) {
  const char *cases = argc > 1 ? argv[1] : "cases.txt";
  FILE *f = fopen(cases, "r");
  if (!f) {
    perror(cases);
    return 1;
  }
  char line[2048];
  int n_cases = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n')
      continue;
    line[strcspn(line, "\n")] = '\0';
    char *name = strtok(line, "\t"), *word = strtok(NULL, "\t"), *sub = strtok(NULL, "");
    if (!sub)
      sub = "";
    kl_status_code code;
    n_cases++;
    if (word && !strcmp(word, "skip")) {
      symlink_case(name, sub);
      continue;
    }
    if (!name || !word || !code_from_word(word, &code)) {
      fprintf(stderr, "bad line in %s: %s\n", cases, line);
      failures++;
      continue;
    }
    kl_ir_graph *g = NULL;
    kl_status s = kl_onnx_import_file(name, NULL, &g);
    expect(name, s, g, code, sub);
    size_t size;
    unsigned char *buf = read_all(name, &size);
    if (buf) {
      char what[600];
      snprintf(what, sizeof what, "%s (from memory)", name);
      g = NULL;
      s = kl_onnx_import_buffer(buf, size, ".", name, NULL, &g);
      expect(what, s, g, code, sub);
      free(buf);
    }
    if (code == KL_OK)
      all_prefixes(name);
  }
  fclose(f);
  printf("%d cases, %d checks, %d failed\n", n_cases, checks, failures);
  return failures ? 1 : 0;
}
