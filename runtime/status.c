/* kl_status implementation: a heap-allocated code and message; a static status stands in when
 * memory for the message itself cannot be had. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kl_status_s {
  kl_status_code code;
  char *message;
};

static struct kl_status_s oom_status = {KL_ERR_OUT_OF_MEMORY, "out of memory"};

kl_status kl_status_createv(kl_status_code code, const char *fmt, va_list ap) {
  if (code == KL_OK)
    return NULL;
  if (!fmt)
    fmt = "(no message)";
  kl_status s = malloc(sizeof *s);
  if (!s)
    return &oom_status;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    n = 0;
  s->message = malloc((size_t)n + 1);
  if (!s->message) {
    free(s);
    return &oom_status;
  }
  vsnprintf(s->message, (size_t)n + 1, fmt, ap);
  s->code = code;
  return s;
}

kl_status kl_status_create(kl_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kl_status s = kl_status_createv(code, fmt, ap);
  va_end(ap);
  return s;
}

kl_status kl_status_annotate(kl_status s, const char *fmt, ...) {
  if (!s || s == &oom_status)
    return s;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return s;
  size_t old = strlen(s->message);
  char *msg = malloc((size_t)n + 2 + old + 1);
  if (!msg)
    return s;
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  memcpy(msg + n, ": ", 2);
  memcpy(msg + n + 2, s->message, old + 1);
  free(s->message);
  s->message = msg;
  return s;
}

kl_status_code kl_status_code_of(kl_status s) { return s ? s->code : KL_OK; }

const char *kl_status_message(kl_status s) { return s ? s->message : ""; }

const char *kl_status_code_name(kl_status_code code) {
  static const char *const names[KL_STATUS_CODE_COUNT] = {
      [KL_OK] = "ok",
      [KL_ERR_INVALID_ARGUMENT] = "invalid argument",
      [KL_ERR_PARSE] = "parse error",
      [KL_ERR_FORMAT] = "malformed file",
      [KL_ERR_UNSUPPORTED] = "unsupported",
      [KL_ERR_NOT_FOUND] = "not found",
      [KL_ERR_IO] = "I/O error",
      [KL_ERR_OUT_OF_MEMORY] = "out of memory",
      [KL_ERR_LIMIT] = "limit exceeded",
      [KL_ERR_VERSION] = "unsupported version",
      [KL_ERR_INTERNAL] = "internal error",
  };
  return (code >= 0 && code < KL_STATUS_CODE_COUNT) ? names[code] : "unknown error";
}

void kl_status_destroy(kl_status s) {
  if (!s || s == &oom_status)
    return;
  free(s->message);
  free(s);
}

void kl_assert_fail(const char *what, const char *file, int line) {
  fprintf(stderr, "kiln: internal error: assertion '%s' failed at %s:%d\n", what, file, line);
  abort();
}

void kl_fatal_oom(void) {
  fputs("kiln: out of memory\n", stderr);
  exit(70);
}
