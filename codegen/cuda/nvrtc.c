/* NVRTC through dlopen: the kiln binary has no link-time dependency on CUDA, and only
 * `--target cuda` needs libnvrtc.so. It is looked for in $KILN_CUDA_HOME/lib64 and /lib, then in
 * the cudahome the build was configured with (KL_CUDA_HOME), then on the default search path.
 * NVRTC runs in a child process (fork): its threads and allocations never enter kiln's process,
 * and a crash inside it is an error, not a crash of kiln. The child sends back a status byte
 * and the PTX, cubin or message through a pipe.
 * The few NVRTC entry points used are declared here with nvrtc.h's ABI (nvrtcResult is an int,
 * nvrtcProgram a pointer). */
#include "cuda.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include("codegen/cuda_paths.h")
#include "codegen/cuda_paths.h" /* written by codegen/meson.build: KL_CUDA_HOME */
#endif
#endif

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct nvrtc_api {
  void *lib;
  char path[512];
  const char *(*GetErrorString)(nvrtcResult);
  nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int,
                               const char *const *, const char *const *);
  nvrtcResult (*DestroyProgram)(nvrtcProgram *);
  nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
  nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
  nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
  nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
  nvrtcResult (*GetPTX)(nvrtcProgram, char *);
  nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
  nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
} nvrtc_api;

static nvrtc_api api;
static char load_error[1024];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void *try_open(const char *dir) {
  static const char *const names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    int n = dir ? snprintf(api.path, sizeof api.path, "%s/%s", dir, names[i])
                : snprintf(api.path, sizeof api.path, "%s", names[i]);
    if (n < 0 || (size_t)n >= sizeof api.path)
      continue; /* a folder too long to name: not there */
    void *h = dlopen(api.path, RTLD_NOW | RTLD_LOCAL);
    if (h)
      return h;
  }
  return NULL;
}

static void load(void) {
  char dir[512];
  const char *home = getenv("KILN_CUDA_HOME");
  if (home && *home) {
    snprintf(dir, sizeof dir, "%s/lib64", home);
    api.lib = try_open(dir);
    if (!api.lib) {
      snprintf(dir, sizeof dir, "%s/lib", home);
      api.lib = try_open(dir);
    }
  }
#ifdef KL_CUDA_HOME
  if (!api.lib) {
    snprintf(dir, sizeof dir, "%s/lib64", KL_CUDA_HOME);
    api.lib = try_open(dir);
  }
  if (!api.lib) {
    snprintf(dir, sizeof dir, "%s/lib", KL_CUDA_HOME);
    api.lib = try_open(dir);
  }
#endif
  if (!api.lib)
    api.lib = try_open(NULL);
  if (!api.lib) {
    const char *e = dlerror();
    snprintf(load_error, sizeof load_error,
             "--target cuda needs NVRTC (libnvrtc.so), which was not found in "
             "$KILN_CUDA_HOME/lib64, the configured CUDA home or the library path (%s); install "
             "the CUDA toolkit or set KILN_CUDA_HOME",
             e ? e : "not found");
    return;
  }
#define SYM(field, name)                                                                     \
  if (!(*(void **)&api.field = dlsym(api.lib, name))) {                                      \
    snprintf(load_error, sizeof load_error, "%s lacks %s", api.path, name);                  \
    dlclose(api.lib);                                                                        \
    api.lib = NULL;                                                                          \
    return;                                                                                  \
  }
  SYM(GetErrorString, "nvrtcGetErrorString")
  SYM(CreateProgram, "nvrtcCreateProgram")
  SYM(DestroyProgram, "nvrtcDestroyProgram")
  SYM(CompileProgram, "nvrtcCompileProgram")
  SYM(GetProgramLogSize, "nvrtcGetProgramLogSize")
  SYM(GetProgramLog, "nvrtcGetProgramLog")
  SYM(GetPTXSize, "nvrtcGetPTXSize")
  SYM(GetPTX, "nvrtcGetPTX")
  SYM(GetCUBINSize, "nvrtcGetCUBINSize")
  SYM(GetCUBIN, "nvrtcGetCUBIN")
#undef SYM
}

int kl_cuda_arch_number(const char *arch) {
  if (!arch || strncmp(arch, "sm_", 3) != 0)
    return -1;
  const char *p = arch + 3;
  int v = 0, digits = 0;
  for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
    v = v * 10 + (*p - '0');
  if (digits < 2 || (*p != '\0' && !((*p == 'a' || *p == 'f') && p[1] == '\0')))
    return -1;
  return v;
}

/* One compile for gpu-architecture `gpu`; on success the program is returned for reading. */
static kl_status compile_one(const char *source, const char *gpu, nvrtcProgram *out) {
  nvrtcProgram prog = NULL;
  nvrtcResult r = api.CreateProgram(&prog, source, "kiln_model.cu", 0, NULL, NULL);
  if (r)
    return kl_status_create(KL_ERR_INTERNAL, "nvrtcCreateProgram: %s", api.GetErrorString(r));
  char arch_opt[64];
  snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", gpu);
  /* Strict FP32: no fast math, no fused contraction beyond what IEEE allows the reference. */
  const char *opts[] = {arch_opt, "--std=c++17", "--fmad=false", "-default-device"};
  r = api.CompileProgram(prog, (int)(sizeof opts / sizeof opts[0]), opts);
  if (r) {
    size_t n = 0;
    char *log = NULL;
    if (!api.GetProgramLogSize(prog, &n) && n && (log = malloc(n + 1))) {
      if (api.GetProgramLog(prog, log))
        log[0] = '\0';
      log[n] = '\0';
    }
    kl_status s = kl_status_create(KL_ERR_INTERNAL, "NVRTC could not compile the kernels for %s "
                                   "(%s):\n%.6000s", gpu, api.GetErrorString(r), log ? log : "");
    free(log);
    api.DestroyProgram(&prog);
    return s;
  }
  *out = prog;
  return NULL;
}

static kl_status compile_here(const char *source, const char *arch, char **out_ptx,
                              unsigned char **out_cubin, size_t *out_cubin_size) {
  *out_ptx = NULL;
  *out_cubin = NULL;
  *out_cubin_size = 0;
  pthread_once(&load_once, load);
  if (!api.lib)
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s", load_error);
  int num = kl_cuda_arch_number(arch);
  if (num < 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "'%s' is not a CUDA architecture (sm_80, sm_90, ...)", arch);
  char gpu[32];
  snprintf(gpu, sizeof gpu, "compute_%s", arch + 3);
  nvrtcProgram prog;
  KL_RETURN_IF_ERROR(compile_one(source, gpu, &prog));
  size_t n = 0;
  nvrtcResult r = api.GetPTXSize(prog, &n);
  char *ptx = r ? NULL : malloc(n + 1);
  if (!r && !ptx)
    kl_fatal_oom();
  if (!r && (r = api.GetPTX(prog, ptx)) == 0)
    ptx[n] = '\0';
  api.DestroyProgram(&prog);
  if (r) {
    free(ptx);
    return kl_status_create(KL_ERR_INTERNAL, "nvrtcGetPTX: %s", api.GetErrorString(r));
  }
  kl_status s = compile_one(source, arch, &prog);
  if (s) {
    free(ptx);
    return s;
  }
  unsigned char *cubin = NULL;
  r = api.GetCUBINSize(prog, &n);
  if (!r && !(cubin = malloc(n ? n : 1)))
    kl_fatal_oom();
  if (!r)
    r = api.GetCUBIN(prog, (char *)cubin);
  api.DestroyProgram(&prog);
  if (r) {
    free(ptx);
    free(cubin);
    return kl_status_create(KL_ERR_INTERNAL, "nvrtcGetCUBIN: %s", api.GetErrorString(r));
  }
  *out_ptx = ptx;
  *out_cubin = cubin;
  *out_cubin_size = n;
  return NULL;
}

/* ---- the child process ---- */

static bool write_all(int fd, const void *data, size_t size) {
  const unsigned char *p = data;
  while (size > 0) {
    ssize_t w = write(fd, p, size);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    size -= (size_t)w;
  }
  return true;
}

static bool read_all(int fd, void *data, size_t size) {
  unsigned char *p = data;
  while (size > 0) {
    ssize_t r = read(fd, p, size);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    p += r;
    size -= (size_t)r;
  }
  return true;
}

/* The record a child writes: u8 ok, u64 n1, bytes, u64 n2, bytes (ok: PTX and cubin; else the
 * status code as n1 and the message as the first bytes, n2 0). */
static void child(int fd, const char *source, const char *arch) {
  char *ptx = NULL;
  unsigned char *cubin = NULL;
  size_t cubin_size = 0;
  kl_status s = compile_here(source, arch, &ptx, &cubin, &cubin_size);
  unsigned char ok = s == NULL;
  uint64_t n1, n2;
  bool good = write_all(fd, &ok, 1);
  if (ok) {
    n1 = strlen(ptx);
    n2 = cubin_size;
    good = good && write_all(fd, &n1, 8) && write_all(fd, ptx, n1) && write_all(fd, &n2, 8) &&
           write_all(fd, cubin, n2);
  } else {
    const char *msg = kl_status_message(s);
    uint64_t code = (uint64_t)kl_status_code_of(s);
    n1 = strlen(msg);
    n2 = 0;
    good = good && write_all(fd, &code, 8) && write_all(fd, &n1, 8) && write_all(fd, msg, n1) &&
           write_all(fd, &n2, 8);
  }
  _exit(good ? 0 : 1);
}

static unsigned char *read_blob(int fd, uint64_t *out_n) {
  uint64_t n;
  if (!read_all(fd, &n, 8) || n > ((uint64_t)1 << 34))
    return NULL;
  unsigned char *b = malloc((size_t)n + 1);
  if (!b)
    kl_fatal_oom();
  if (!read_all(fd, b, (size_t)n)) {
    free(b);
    return NULL;
  }
  b[n] = '\0';
  *out_n = n;
  return b;
}

kl_status kl_cuda_nvrtc_compile(const char *source, const char *arch, char **out_ptx,
                                unsigned char **out_cubin, size_t *out_cubin_size) {
  *out_ptx = NULL;
  *out_cubin = NULL;
  *out_cubin_size = 0;
  if (kl_cuda_arch_number(arch) < 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "'%s' is not a CUDA architecture (sm_80, sm_90, ...)", arch);
  int fds[2];
  if (pipe(fds) != 0)
    return kl_status_create(KL_ERR_IO, "NVRTC: cannot create a pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return kl_status_create(KL_ERR_IO, "NVRTC: cannot fork: %s", strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    child(fds[1], source, arch);
  }
  close(fds[1]);
  kl_status s = NULL;
  unsigned char ok = 0;
  if (!read_all(fds[0], &ok, 1)) {
    s = kl_status_create(KL_ERR_INTERNAL, "NVRTC's process ended without an answer");
  } else if (ok) {
    uint64_t n1 = 0, n2 = 0;
    unsigned char *ptx = read_blob(fds[0], &n1);
    unsigned char *cubin = ptx ? read_blob(fds[0], &n2) : NULL;
    if (!ptx || !cubin) {
      free(ptx);
      free(cubin);
      s = kl_status_create(KL_ERR_INTERNAL, "NVRTC's process sent a truncated answer");
    } else {
      *out_ptx = (char *)ptx;
      *out_cubin = cubin;
      *out_cubin_size = (size_t)n2;
    }
  } else {
    uint64_t code = 0, n = 0;
    unsigned char *msg = NULL;
    if (read_all(fds[0], &code, 8))
      msg = read_blob(fds[0], &n);
    s = kl_status_create(msg ? (kl_status_code)code : KL_ERR_INTERNAL, "%s",
                         msg ? (const char *)msg : "NVRTC failed");
    free(msg);
  }
  close(fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!s && !(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) {
    free(*out_ptx);
    free(*out_cubin);
    *out_ptx = NULL;
    *out_cubin = NULL;
    *out_cubin_size = 0;
    s = kl_status_create(KL_ERR_INTERNAL, "NVRTC's process failed (status %d)", wstatus);
  } else if (s && WIFSIGNALED(wstatus)) {
    kl_status_destroy(s);
    s = kl_status_create(KL_ERR_INTERNAL, "NVRTC crashed (signal %d) compiling the kernels",
                         WTERMSIG(wstatus));
  }
  return s;
}
