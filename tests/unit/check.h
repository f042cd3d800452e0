/* A tiny test harness: CHECK macros count failures and print where; main returns
 * check_finish(). Each test executable is one meson test. */
#ifndef KL_TESTS_CHECK_H
#define KL_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "runtime/status.h"

static int check_failures;
static int check_count;

#define CHECK(cond)                                                            \
  do {                                                                         \
    check_count++;                                                             \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      check_failures++;                                                        \
    }                                                                          \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                              \
  do {                                                                                  \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);                     \
    check_count++;                                                                      \
    if (check_a_ != check_b_) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", __FILE__,       \
              __LINE__, #a, #b, check_a_, check_b_);                                    \
      check_failures++;                                                                 \
    }                                                                                   \
  } while (0)

#define CHECK_STREQ(a, b)                                                                  \
  do {                                                                                     \
    const char *check_a_ = (a), *check_b_ = (b);                                           \
    check_count++;                                                                         \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                      \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s\n  got:      \"%s\"\n  expected: \"%s\"\n", \
              __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                  \
              check_b_ ? check_b_ : "(null)");                                             \
      check_failures++;                                                                    \
    }                                                                                      \
  } while (0)

/* expr must succeed; on failure prints the status message. */
#define CHECK_OK(expr)                                                                    \
  do {                                                                                    \
    kl_status check_s_ = (expr);                                                          \
    check_count++;                                                                        \
    if (check_s_) {                                                                       \
      fprintf(stderr, "%s:%d: CHECK_OK failed: %s\n  status: %s\n", __FILE__, __LINE__, \
              #expr, kl_status_message(check_s_));                                        \
      kl_status_destroy(check_s_);                                                        \
      check_failures++;                                                                   \
    }                                                                                     \
  } while (0)

/* expr must fail with code and a message containing substr (NULL: any message). */
#define CHECK_ERR(expr, code, substr)                                                       \
  do {                                                                                      \
    kl_status check_s_ = (expr);                                                            \
    const char *check_sub_ = (substr);                                                      \
    check_count++;                                                                          \
    if (!check_s_) {                                                                        \
      fprintf(stderr, "%s:%d: CHECK_ERR failed: %s succeeded\n", __FILE__, __LINE__, #expr); \
      check_failures++;                                                                     \
    } else if (kl_status_code_of(check_s_) != (code) ||                                     \
               (check_sub_ && !strstr(kl_status_message(check_s_), check_sub_))) {          \
      fprintf(stderr, "%s:%d: CHECK_ERR failed: %s\n  got: [%s] %s\n  expected: [%s] ...%s...\n", \
              __FILE__, __LINE__, #expr, kl_status_code_name(kl_status_code_of(check_s_)),  \
              kl_status_message(check_s_), kl_status_code_name(code),                       \
              check_sub_ ? check_sub_ : "");                                                \
      check_failures++;                                                                     \
    }                                                                                       \
    kl_status_destroy(check_s_);                                                            \
  } while (0)

static inline int check_finish(void) {
  if (check_failures)
    fprintf(stderr, "%d of %d checks failed\n", check_failures, check_count);
  else
    printf("%d checks passed\n", check_count);
  return check_failures ? 1 : 0;
}

#endif
