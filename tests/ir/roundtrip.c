/* Runs one text IR file. A canonical file (tests/ir/roundtrip/) must parse, verify and print
 * back byte for byte, and its printout must do the same again. A file whose first line is
 * "# expect: <text>" (tests/ir/errors/) must fail to parse with <text> in the message.
 * Usage: roundtrip FILE; exit 0 on success, 1 with a report on stderr otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/text.h"

static char *read_all(const char *path, size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  size_t got;
  while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
    len += got;
    if (len == cap) {
      cap *= 2;
      char *nb = realloc(buf, cap + 1);
      if (!nb)
        free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (buf)
    buf[len] = '\0';
  *out_len = len;
  return buf;
}

/* Prints the first line where a and b differ, to make a failed round trip readable. */
static void report_diff(const char *want, const char *got) {
  int line = 1;
  const char *w = want, *g = got;
  while (*w && *w == *g) {
    if (*w == '\n')
      line++;
    w++;
    g++;
  }
  const char *wl = w, *gl = g;
  while (wl > want && wl[-1] != '\n')
    wl--;
  while (gl > got && gl[-1] != '\n')
    gl--;
  fprintf(stderr, "first difference at line %d:\n  want: %.*s\n  got:  %.*s\n", line,
          (int)strcspn(wl, "\n"), wl, (int)strcspn(gl, "\n"), gl);
}

static int run_error_case(const char *path, const char *text, size_t len) {
  const char *p = text + strlen("# expect:");
  while (*p == ' ')
    p++;
  size_t n = strcspn(p, "\n");
  char *want = malloc(n + 1);
  memcpy(want, p, n);
  want[n] = '\0';
  kl_ir_parse_options opts = {.filename = path};
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(text, len, &opts, &g);
  int rc = 0;
  if (!s) {
    fprintf(stderr, "%s: parsed without error; expected: %s\n", path, want);
    kl_ir_graph_destroy(g);
    rc = 1;
  } else if (!strstr(kl_status_message(s), want)) {
    fprintf(stderr, "%s: wrong error.\n  expected to contain: %s\n  got: %s\n", path, want,
            kl_status_message(s));
    rc = 1;
  } else {
    printf("%s: fails as expected:\n%s\n", path, kl_status_message(s));
  }
  kl_status_destroy(s);
  free(want);
  return rc;
}

static int print_and_compare(const char *path, const char *what, const kl_ir_graph *g,
                             const char *want, char **out_text) {
  size_t len = 0;
  kl_status s = kl_ir_print(g, NULL, out_text, &len);
  if (s) {
    fprintf(stderr, "%s: print failed (%s): %s\n", path, what, kl_status_message(s));
    kl_status_destroy(s);
    return 1;
  }
  if (strlen(*out_text) != len || strcmp(*out_text, want) != 0) {
    fprintf(stderr, "%s: %s is not byte-identical\n", path, what);
    report_diff(want, *out_text);
    return 1;
  }
  return 0;
}

static int run_roundtrip_case(const char *path, const char *text, size_t len) {
  kl_ir_parse_options opts = {.filename = path};
  kl_ir_graph *g = NULL, *g2 = NULL;
  char *once = NULL, *twice = NULL;
  int rc = 1;
  kl_status s = kl_ir_parse(text, len, &opts, &g);
  if (s) {
    fprintf(stderr, "%s: parse failed:\n%s\n", path, kl_status_message(s));
    goto done;
  }
  if ((s = kl_ir_verify(g))) {
    fprintf(stderr, "%s: verify failed:\n%s\n", path, kl_status_message(s));
    goto done;
  }
  if (print_and_compare(path, "print(parse(file))", g, text, &once))
    goto done;
  if ((s = kl_ir_parse(once, strlen(once), &opts, &g2))) {
    fprintf(stderr, "%s: parsing the printout failed:\n%s\n", path, kl_status_message(s));
    goto done;
  }
  if (print_and_compare(path, "print(parse(print(parse(file))))", g2, once, &twice))
    goto done;
  printf("%s: round trip ok (%d nodes)\n", path, kl_ir_graph_node_count(g));
  rc = 0;
done:
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
  kl_ir_graph_destroy(g2);
  free(once);
  free(twice);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE.ir\n", argv[0]);
    return 2;
  }
  size_t len = 0;
  char *text = read_all(argv[1], &len);
  if (!text) {
    fprintf(stderr, "%s: cannot read\n", argv[1]);
    return 1;
  }
  int rc = strncmp(text, "# expect:", 9) == 0 ? run_error_case(argv[1], text, len)
                                              : run_roundtrip_case(argv[1], text, len);
  free(text);
  return rc;
}
