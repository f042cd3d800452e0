/* Linking an emitted object with the artifact runtime archive into a standalone .so.
 *
 * The system C compiler does the linking: `$CC -shared -o SO OBJ ARCHIVE -lm -lpthread` with a
 * version script that leaves only the model's own symbols (NAME_* and kiln_model_NAME) global,
 * so the kernels linked in statically stay private and several artifacts live in one program.
 * The compiler runs through fork/execvp with an argument vector, never a shell, because paths
 * may hold any bytes; what it prints goes into the error when it fails.
 *
 * The archive is, in order: $KILN_RUNTIME_ARCHIVE, the one built next to this kiln
 * (KL_ARTIFACT_RUNTIME_BUILD_PATH) when it exists, or the installed one
 * (KL_ARTIFACT_RUNTIME_INSTALL_PATH). For a target triple other than the host's, the linker is
 * $KILN_CROSS_CC or TRIPLE-gcc from PATH, and the archive must come from $KILN_RUNTIME_ARCHIVE
 * (built for that target). */
#include "codegen_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen.h"

#if defined(__has_include)
#if __has_include("codegen/link_paths.h")
#include "codegen/link_paths.h" /* written by codegen/meson.build: the install path */
#endif
#endif
#ifndef KL_ARTIFACT_RUNTIME_INSTALL_PATH
#define KL_ARTIFACT_RUNTIME_INSTALL_PATH "/usr/local/lib/kiln/libkilnrt.a"
#endif

#define MAX_ARGS 64
#define MAX_CAPTURE 16384 /* bytes of the compiler's output kept for the error message */

static bool is_regular_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *kl_codegen_runtime_archive(void) {
  const char *env = getenv("KILN_RUNTIME_ARCHIVE");
  if (env && *env)
    return env;
#ifdef KL_ARTIFACT_RUNTIME_BUILD_PATH
  if (is_regular_file(KL_ARTIFACT_RUNTIME_BUILD_PATH))
    return KL_ARTIFACT_RUNTIME_BUILD_PATH;
#endif
  return KL_ARTIFACT_RUNTIME_INSTALL_PATH;
}

/* The architecture of a triple: what comes before the first '-'. */
static void triple_arch(const char *triple, char *buf, size_t size) {
  size_t n = strcspn(triple, "-");
  if (n >= size)
    n = size - 1;
  memcpy(buf, triple, n);
  buf[n] = '\0';
}

bool kl_codegen_triple_is_host(const char *triple) {
  if (!triple || !*triple)
    return true;
  char arch[32];
  triple_arch(triple, arch, sizeof arch);
#if defined(__x86_64__)
  bool same_arch = strcmp(arch, "x86_64") == 0 || strcmp(arch, "amd64") == 0;
#elif defined(__aarch64__)
  bool same_arch = strcmp(arch, "aarch64") == 0 || strcmp(arch, "arm64") == 0;
#else
  bool same_arch = false;
#endif
  /* x86_64-pc-linux-gnu, x86_64-unknown-linux-gnu, x86_64-linux-gnu: all the host on Linux. */
  return same_arch && strstr(triple, "linux") != NULL;
}

/* The full path of program in $PATH, malloc'd, or NULL. */
static char *find_in_path(const char *program) {
  if (strchr(program, '/'))
    return is_regular_file(program) && access(program, X_OK) == 0 ? strdup(program) : NULL;
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    size_t len = n + 1 + strlen(program) + 1;
    char *candidate = malloc(len);
    if (!candidate)
      kl_fatal_oom();
    snprintf(candidate, len, "%.*s/%s", (int)n, n ? path : ".", program);
    if (is_regular_file(candidate) && access(candidate, X_OK) == 0)
      return candidate;
    free(candidate);
    path += n;
    if (*path == ':')
      path++;
  }
  return NULL;
}

kl_status kl_codegen_temp_file(const char *stem, const char *suffix, char **out_path, int *out_fd) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir)
    dir = "/tmp";
  size_t dir_len = strlen(dir), stem_len = strlen(stem), suffix_len = strlen(suffix);
  char *path = malloc(dir_len + stem_len + suffix_len + 16);
  if (!path)
    kl_fatal_oom();
  char *p = path;
  memcpy(p, dir, dir_len);
  p += dir_len;
  *p++ = '/';
  memcpy(p, stem, stem_len);
  p += stem_len;
  memcpy(p, "-XXXXXX", 7);
  p += 7;
  memcpy(p, suffix, suffix_len + 1);
  int fd = mkstemps(path, (int)strlen(suffix));
  if (fd < 0) {
    kl_status s = kl_status_create(KL_ERR_IO, "cannot create a temporary file in %s: %s", dir,
                                   strerror(errno));
    free(path);
    return s;
  }
  *out_path = path;
  if (out_fd)
    *out_fd = fd;
  else
    close(fd);
  return NULL;
}

/* Appends one argument, keeping the vector NULL-terminated. */
static kl_status push(const char **argv, int *argc, const char *arg) {
  if (*argc + 1 >= MAX_ARGS)
    return kl_status_create(KL_ERR_LIMIT, "link: too many compiler arguments");
  argv[(*argc)++] = arg;
  argv[*argc] = NULL;
  return NULL;
}

/* "cc -shared -o ..." for the error message, arguments quoted where they hold spaces. */
static void format_command(const char *const *argv, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; argv[i] && len < size; i++) {
    bool quote = strpbrk(argv[i], " \t\n'\"") != NULL;
    len += (size_t)snprintf(buf + len, size - len, "%s%s%s%s", i ? " " : "", quote ? "'" : "",
                            argv[i], quote ? "'" : "");
  }
}

kl_status kl_codegen_run_program(const char *const *argv) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0)
    return kl_status_create(KL_ERR_IO, "cannot create a pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return kl_status_create(KL_ERR_IO, "cannot fork: %s", strerror(errno));
  }
  if (pid == 0) {
    /* The child: both output streams into the pipe, then the compiler. */
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execvp(argv[0], (char *const *)argv);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(pipe_fds[1]);
  char *captured = malloc(MAX_CAPTURE + 1);
  if (!captured)
    kl_fatal_oom();
  size_t got = 0;
  for (;;) {
    char chunk[4096];
    ssize_t n = read(pipe_fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    size_t keep = (size_t)n;
    if (keep > MAX_CAPTURE - got)
      keep = MAX_CAPTURE - got;
    memcpy(captured + got, chunk, keep);
    got += keep;
  }
  captured[got] = '\0';
  close(pipe_fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      free(captured);
      return kl_status_create(KL_ERR_IO, "waitpid: %s", strerror(errno));
    }
  }
  kl_status s = NULL;
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    char command[2048];
    format_command(argv, command, sizeof command);
    while (got > 0 && (captured[got - 1] == '\n' || captured[got - 1] == ' '))
      captured[--got] = '\0';
    if (WIFEXITED(wstatus))
      s = kl_status_create(KL_ERR_IO, "%s exited with status %d: %s%s%s", argv[0],
                           WEXITSTATUS(wstatus), command, got ? "\n" : "", captured);
    else
      s = kl_status_create(KL_ERR_IO, "%s was killed by signal %d: %s%s%s", argv[0],
                           WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0, command,
                           got ? "\n" : "", captured);
  }
  free(captured);
  return s;
}

/* path, or "./path" when path starts with '-'; malloc'd. */
static char *dash_safe(const char *path) {
  size_t n = strlen(path) + 3;
  char *s = malloc(n);
  if (!s)
    kl_fatal_oom();
  snprintf(s, n, "%s%s", path[0] == '-' ? "./" : "", path);
  return s;
}

/* Writes the version script that exports only the model's symbols. */
static kl_status write_version_script(const char *name, char **out_path) {
  int fd;
  KL_RETURN_IF_ERROR(kl_codegen_temp_file("kiln-link", ".ver", out_path, &fd));
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(*out_path);
    free(*out_path);
    return kl_status_create(KL_ERR_IO, "link: cannot write the version script");
  }
  fprintf(f, "{\n  global:\n    %s_*;\n    %s%s;\n  local:\n    *;\n};\n", name,
          KL_ARTIFACT_SYMBOL_PREFIX, name);
  if (fclose(f) != 0) {
    unlink(*out_path);
    free(*out_path);
    return kl_status_create(KL_ERR_IO, "link: cannot write the version script");
  }
  return NULL;
}

kl_status kl_codegen_link_shared(const char *obj_path, const kl_compile_options *o,
                                 const char *so_path) {
  const char *name = o && o->name ? o->name : "net";
  if (!kl_codegen_valid_model_name(name))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "link: '%s' is not a valid model name",
                            name);
  if (!is_regular_file(obj_path))
    return kl_status_create(KL_ERR_NOT_FOUND, "link: object file %s does not exist", obj_path);
  const char *triple = o ? o->triple : NULL;
  bool host = kl_codegen_triple_is_host(triple);

  /* The compiler: $CC split at spaces ("ccache gcc"), or the cross linker. */
  char *cc_words = NULL;
  char *cross = NULL;
  const char *archive;
  if (host) {
    const char *cc = getenv("CC");
    cc_words = strdup(cc && *cc ? cc : "cc");
    archive = kl_codegen_runtime_archive();
  } else {
    const char *env = getenv("KILN_CROSS_CC");
    if (env && *env) {
      cross = strdup(env);
    } else {
      char program[256];
      snprintf(program, sizeof program, "%s-gcc", triple);
      cross = find_in_path(program);
    }
    if (!cross)
      return kl_status_create(KL_ERR_UNSUPPORTED,
                              "the object for %s was written to %s, but linking it needs a cross "
                              "linker: set KILN_CROSS_CC or install %s-gcc",
                              triple, obj_path, triple);
    const char *env_archive = getenv("KILN_RUNTIME_ARCHIVE");
    if (!env_archive || !*env_archive) {
      free(cross);
      return kl_status_create(KL_ERR_UNSUPPORTED,
                              "the object for %s was written to %s, but linking it needs the "
                              "artifact runtime built for %s: set KILN_RUNTIME_ARCHIVE",
                              triple, obj_path, triple);
    }
    cc_words = cross;
    archive = env_archive;
  }
  if (!cc_words)
    kl_fatal_oom();
  if (!is_regular_file(archive)) {
    free(cc_words);
    return kl_status_create(KL_ERR_NOT_FOUND,
                            "link: the artifact runtime archive %s does not exist (build kiln, "
                            "install it, or set KILN_RUNTIME_ARCHIVE)",
                            archive);
  }

  char *script = NULL;
  kl_status s = write_version_script(name, &script);
  if (s) {
    free(cc_words);
    return s;
  }
  /* -Xlinker passes its argument whole (-Wl, would split a path at its commas). */
  size_t opt_len = strlen(script) + 32;
  char *script_opt = malloc(opt_len);
  if (!script_opt)
    kl_fatal_oom();
  snprintf(script_opt, opt_len, "--version-script=%s", script);
  /* A file name that starts with '-' would read as an option. */
  char *obj_arg = dash_safe(obj_path), *archive_arg = dash_safe(archive);

  const char *argv[MAX_ARGS + 1];
  int argc = 0;
  argv[0] = NULL;
  for (char *save = NULL, *w = strtok_r(cc_words, " \t", &save); w && !s;
       w = strtok_r(NULL, " \t", &save))
    s = push(argv, &argc, w);
  if (!s && argc == 0)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "link: $CC is empty");
  const char *const rest[] = {"-shared", "-Wl,--as-needed", "-Wl,-z,noexecstack",
                              "-Wl,--no-undefined", "-o", so_path, obj_arg, archive_arg,
                              "-lm", "-lpthread", "-Xlinker", script_opt};
  for (size_t i = 0; i < sizeof rest / sizeof rest[0] && !s; i++)
    s = push(argv, &argc, rest[i]);
  if (!s)
    s = kl_status_annotate(kl_codegen_run_program(argv), "link failed");
  unlink(script);
  free(script);
  free(script_opt);
  free(obj_arg);
  free(archive_arg);
  free(cc_words);
  return s;
}
