/* kl_status: how every kiln function reports failure.
 *
 * A status is NULL on success, or a heap object carrying a code and a formatted message that
 * names what was wrong and where (file, line, node, op, input index). It is returned up the
 * stack with KL_RETURN_IF_ERROR; callers may prefix context with kl_status_annotate. The
 * final owner prints kl_status_message() and calls kl_status_destroy(). */
#ifndef KL_RUNTIME_STATUS_H
#define KL_RUNTIME_STATUS_H

#include <stdarg.h>

typedef enum kl_status_code {
  KL_OK = 0,
  KL_ERR_INVALID_ARGUMENT, /* a caller passed something wrong: bad shape, attribute, name */
  KL_ERR_PARSE,            /* text IR or header syntax */
  KL_ERR_FORMAT,           /* a malformed binary file (.kir, .npy, ONNX) */
  KL_ERR_UNSUPPORTED,      /* an op, dtype or feature kiln does not handle */
  KL_ERR_NOT_FOUND,        /* a named thing does not exist */
  KL_ERR_IO,               /* the operating system refused a file operation */
  KL_ERR_OUT_OF_MEMORY,
  KL_ERR_LIMIT,            /* a configured limit (size, rank, depth) was exceeded */
  KL_ERR_VERSION,          /* a file written by a newer kiln */
  KL_ERR_INTERNAL,         /* a bug in kiln */
  KL_STATUS_CODE_COUNT
} kl_status_code;

typedef struct kl_status_s *kl_status;

/* Returns a new status with code and printf-style message. Never returns NULL for a non-OK
 * code: when memory is short it returns a shared static out-of-memory status. */
kl_status kl_status_create(kl_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
kl_status kl_status_createv(kl_status_code code, const char *fmt, va_list ap);

/* Prefixes "<context>: " to the message of s and returns s. NULL stays NULL. */
kl_status kl_status_annotate(kl_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

kl_status_code kl_status_code_of(kl_status s);   /* KL_OK for NULL */
const char *kl_status_message(kl_status s);      /* "" for NULL; owned by s */
const char *kl_status_code_name(kl_status_code code); /* "invalid argument", ... */
void kl_status_destroy(kl_status s);             /* NULL is fine */

#define KL_RETURN_IF_ERROR(expr)      \
  do {                                \
    kl_status kl_status_tmp_ = (expr); \
    if (kl_status_tmp_)               \
      return kl_status_tmp_;          \
  } while (0)

/* For the code's own invariants only; bad input must be a status, never an assertion. */
#define KL_ASSERT(cond)                                                   \
  do {                                                                    \
    if (!(cond))                                                          \
      kl_assert_fail(#cond, __FILE__, __LINE__);                          \
  } while (0)
_Noreturn void kl_assert_fail(const char *what, const char *file, int line);

/* Called when a small internal allocation fails: prints and exits with status 70. Sizes that
 * come from files are checked before allocating, so this means the machine is out of memory. */
_Noreturn void kl_fatal_oom(void);

#endif
