/* kl_status: codes, formatted messages, annotation, NULL as success. */
#include <stdlib.h>

#include "check.h"
#include "runtime/status.h"

static kl_status fails_at(int depth) {
  if (depth == 0)
    return kl_status_create(KL_ERR_PARSE, "bad token '%s' at %d", "}", 7);
  KL_RETURN_IF_ERROR(fails_at(depth - 1));
  return NULL;
}

static kl_status succeeds(void) {
  KL_RETURN_IF_ERROR(NULL);
  return NULL;
}

int main(void) {
  kl_status s = kl_status_create(KL_ERR_FORMAT, "offset %d past end %s", 10, "of file");
  CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_FORMAT);
  CHECK_STREQ(kl_status_message(s), "offset 10 past end of file");
  s = kl_status_annotate(s, "net.kir");
  s = kl_status_annotate(s, "loading %s", "model");
  CHECK_STREQ(kl_status_message(s), "loading model: net.kir: offset 10 past end of file");
  kl_status_destroy(s);

  CHECK(kl_status_create(KL_OK, "nothing") == NULL);
  CHECK_EQ_INT(kl_status_code_of(NULL), KL_OK);
  CHECK_STREQ(kl_status_message(NULL), "");
  CHECK(kl_status_annotate(NULL, "x") == NULL);
  kl_status_destroy(NULL);

  CHECK(succeeds() == NULL);
  CHECK_ERR(fails_at(3), KL_ERR_PARSE, "bad token '}' at 7");
  CHECK_STREQ(kl_status_code_name(KL_ERR_VERSION), "unsupported version");
  CHECK_STREQ(kl_status_code_name((kl_status_code)999), "unknown error");

  /* A long message is not truncated. */
  char big[5000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  s = kl_status_create(KL_ERR_IO, "%s", big);
  CHECK_EQ_INT(strlen(kl_status_message(s)), sizeof big - 1);
  kl_status_destroy(s);
  return check_finish();
}
