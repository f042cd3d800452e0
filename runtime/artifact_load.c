/* Loading compiled artifacts: finding the descriptor symbol in the ELF file, dlopen, and the
 * checks that make a foreign or damaged file an error instead of a crash.
 *
 * The descriptor's symbol name is not known in advance (it carries the model's --name), so the
 * file's own symbol table is read: .dynsym of a shared object, .symtab of a relocatable object.
 * The file is mapped read-only and every header, section, table entry and string read from it
 * is bounds-checked first; 32-bit ELF is refused (artifacts are 64-bit only). Fields are read
 * byte by byte in the file's own byte order so that a big-endian or foreign-machine file is
 * described correctly before dlopen would refuse it. */
#include "artifact_load.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checked.h"
#include "dtype.h"
#include "tensor.h"

/* The descriptor's fields as laid out on a 64-bit target (runtime/artifact.h). */
enum {
  DESC_MAGIC = 0,
  DESC_ABI = 4,
  DESC_TARGET = 24,
  DESC_N_INPUTS = 28,
  DESC_N_OUTPUTS = 32,
  DESC_WORKSPACE = 56,
  DESC_WEIGHTS = 64,
  DESC_SIZE_MIN = 72,
};
_Static_assert(sizeof(void *) != 8 || offsetof(kl_artifact_descriptor, workspace_size) == DESC_WORKSPACE,
               "descriptor layout");
_Static_assert(sizeof(void *) != 8 || offsetof(kl_artifact_descriptor, n_inputs) == DESC_N_INPUTS,
               "descriptor layout");

/* The most inputs or outputs a descriptor may claim; far above any real model. */
#define KL_ARTIFACT_MAX_TENSORS 65536

struct kl_artifact_handle {
  void *dl;
};

/* ---- reading the ELF file ------------------------------------------------------------- */

typedef struct elf_file {
  const char *path;
  const unsigned char *data;
  size_t size;
  bool big_endian;
} elf_file;

static uint64_t rd(const elf_file *f, uint64_t off, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) {
    int shift = f->big_endian ? 8 * (n - 1 - i) : 8 * i;
    v |= (uint64_t)f->data[off + (uint64_t)i] << shift;
  }
  return v;
}

/* True when [off, off + len) lies inside the file. */
static bool in_file(const elf_file *f, uint64_t off, uint64_t len) {
  uint64_t end;
  return !__builtin_add_overflow(off, len, &end) && end <= f->size;
}

static const char *machine_name(unsigned m) {
  switch (m) {
  case EM_X86_64: return "x86-64";
  case EM_AARCH64: return "aarch64";
  case EM_386: return "i386";
  case EM_ARM: return "arm";
  case EM_RISCV: return "riscv";
  case EM_PPC64: return "ppc64";
  case EM_S390: return "s390";
  default: return "an unknown machine";
  }
}

/* One section header's fields. */
typedef struct elf_section {
  uint32_t type, link;
  uint64_t addr, offset, size, entsize;
} elf_section;

static kl_status read_section(const elf_file *f, uint64_t shoff, uint64_t shentsize, uint64_t i,
                              elf_section *out) {
  uint64_t at = shoff + i * shentsize; /* the table was checked to lie in the file */
  out->type = (uint32_t)rd(f, at + 4, 4);
  out->addr = rd(f, at + 16, 8);
  out->offset = rd(f, at + 24, 8);
  out->size = rd(f, at + 32, 8);
  out->link = (uint32_t)rd(f, at + 40, 4);
  out->entsize = rd(f, at + 56, 8);
  if (out->type != SHT_NOBITS && !in_file(f, out->offset, out->size))
    return kl_status_create(KL_ERR_FORMAT,
                            "%s: section %llu lies outside the file (offset %llu, size %llu)",
                            f->path, (unsigned long long)i, (unsigned long long)out->offset,
                            (unsigned long long)out->size);
  return NULL;
}

static kl_status peek_mapped(const elf_file *f, kl_artifact_file_info *info) {
  const unsigned char *d = f->data;
  if (f->size < 4 || memcmp(d, ELFMAG, SELFMAG) != 0)
    return kl_status_create(KL_ERR_FORMAT, "%s: not an ELF file (no \\x7fELF magic)", f->path);
  if (f->size < sizeof(Elf64_Ehdr))
    return kl_status_create(KL_ERR_FORMAT, "%s: truncated ELF header (%zu bytes)", f->path,
                            f->size);
  if (d[EI_CLASS] != ELFCLASS64)
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "%s: a 32-bit ELF file; kiln artifacts are 64-bit only", f->path);
  if (d[EI_DATA] != ELFDATA2LSB && d[EI_DATA] != ELFDATA2MSB)
    return kl_status_create(KL_ERR_FORMAT, "%s: unknown ELF byte order %u", f->path, d[EI_DATA]);
  elf_file fe = *f;
  fe.big_endian = d[EI_DATA] == ELFDATA2MSB;
  f = &fe;
  info->type = (int)rd(f, 16, 2);
  info->machine = (uint16_t)rd(f, 18, 2);
  uint64_t shoff = rd(f, 40, 8);
  uint64_t shentsize = rd(f, 58, 2);
  uint64_t shnum = rd(f, 60, 2);
  if (info->type != ET_DYN && info->type != ET_REL)
    return kl_status_create(KL_ERR_FORMAT,
                            "%s: ELF type %d is neither a shared object nor an object file",
                            f->path, info->type);
  if (shnum == 0 || shentsize < sizeof(Elf64_Shdr) || !in_file(f, shoff, shnum * shentsize))
    return kl_status_create(KL_ERR_FORMAT, "%s: missing or truncated ELF section headers",
                            f->path);

  /* The symbol table: .dynsym of a shared object, .symtab of an object file. */
  uint32_t want = info->type == ET_DYN ? SHT_DYNSYM : SHT_SYMTAB;
  elf_section symtab = {0}, strtab = {0};
  bool found = false;
  for (uint64_t i = 0; i < shnum && !found; i++) {
    KL_RETURN_IF_ERROR(read_section(f, shoff, shentsize, i, &symtab));
    found = symtab.type == want;
  }
  if (!found)
    return kl_status_create(KL_ERR_NOT_FOUND, "%s: no %ssymbol table, so no kiln descriptor",
                            f->path, want == SHT_DYNSYM ? "dynamic " : "");
  if (symtab.link >= shnum || symtab.entsize < sizeof(Elf64_Sym))
    return kl_status_create(KL_ERR_FORMAT, "%s: malformed symbol table header", f->path);
  KL_RETURN_IF_ERROR(read_section(f, shoff, shentsize, symtab.link, &strtab));
  if (strtab.type == SHT_NOBITS || symtab.type == SHT_NOBITS)
    return kl_status_create(KL_ERR_FORMAT, "%s: symbol table without contents", f->path);

  const size_t prefix_len = strlen(KL_ARTIFACT_SYMBOL_PREFIX);
  uint64_t n_syms = symtab.size / symtab.entsize;
  uint64_t hit = 0, hits = 0;
  const char *first_name = NULL;
  for (uint64_t i = 0; i < n_syms; i++) {
    uint64_t at = symtab.offset + i * symtab.entsize;
    uint64_t name_off = rd(f, at, 4);
    unsigned st_info = d[at + 4];
    uint64_t shndx = rd(f, at + 6, 2);
    if (name_off >= strtab.size)
      continue; /* a broken name cannot be ours; keep looking */
    const char *name = (const char *)d + strtab.offset + name_off;
    size_t room = (size_t)(strtab.size - name_off);
    if (!memchr(name, '\0', room) || strncmp(name, KL_ARTIFACT_SYMBOL_PREFIX, prefix_len) != 0)
      continue;
    unsigned bind = ELF64_ST_BIND(st_info);
    if (shndx == SHN_UNDEF || shndx >= SHN_LORESERVE || (bind != STB_GLOBAL && bind != STB_WEAK))
      continue;
    if (hits++ == 0) {
      hit = i;
      first_name = name;
    } else {
      return kl_status_create(KL_ERR_FORMAT,
                              "%s: two kiln descriptors ('%s' and '%s'); an artifact exports one",
                              f->path, first_name, name);
    }
  }
  if (hits == 0)
    return kl_status_create(KL_ERR_NOT_FOUND,
                            "%s: no kiln descriptor (no exported symbol starting with '%s'); "
                            "is it a library written by `kiln compile`?",
                            f->path, KL_ARTIFACT_SYMBOL_PREFIX);
  if (strlen(first_name) >= sizeof info->symbol)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor symbol name too long", f->path);
  snprintf(info->symbol, sizeof info->symbol, "%s", first_name);

  /* The descriptor's bytes: in its section at st_value (an object) or st_value - sh_addr. */
  uint64_t at = symtab.offset + hit * symtab.entsize;
  uint64_t shndx = rd(f, at + 6, 2), value = rd(f, at + 8, 8);
  if (shndx >= shnum)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor in section %llu of %llu", f->path,
                            (unsigned long long)shndx, (unsigned long long)shnum);
  elf_section sec;
  KL_RETURN_IF_ERROR(read_section(f, shoff, shentsize, shndx, &sec));
  uint64_t rel = value;
  if (info->type == ET_DYN) {
    if (value < sec.addr)
      return kl_status_create(KL_ERR_FORMAT, "%s: descriptor address outside its section",
                              f->path);
    rel = value - sec.addr;
  }
  uint64_t end;
  if (sec.type == SHT_NOBITS || __builtin_add_overflow(rel, (uint64_t)DESC_SIZE_MIN, &end) ||
      end > sec.size)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor '%s' lies outside its section",
                            f->path, info->symbol);
  uint64_t base = sec.offset + rel;
  info->magic = (uint32_t)rd(f, base + DESC_MAGIC, 4);
  info->abi_version = (uint32_t)rd(f, base + DESC_ABI, 4);
  info->target = (int32_t)(uint32_t)rd(f, base + DESC_TARGET, 4);
  info->n_inputs = (int32_t)(uint32_t)rd(f, base + DESC_N_INPUTS, 4);
  info->n_outputs = (int32_t)(uint32_t)rd(f, base + DESC_N_OUTPUTS, 4);
  info->workspace_size = rd(f, base + DESC_WORKSPACE, 8);
  info->weights_size = rd(f, base + DESC_WEIGHTS, 8);
  return NULL;
}

kl_status kl_artifact_peek(const char *path, kl_artifact_file_info *out_info) {
  memset(out_info, 0, sizeof *out_info);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return kl_status_create(errno == ENOENT ? KL_ERR_NOT_FOUND : KL_ERR_IO, "%s: %s", path,
                            strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return kl_status_create(KL_ERR_FORMAT, "%s: not an ELF file (empty)", path);
  }
  if ((uint64_t)st.st_size > SIZE_MAX) {
    close(fd);
    return kl_status_create(KL_ERR_LIMIT, "%s: too large to map", path);
  }
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED)
    return kl_status_create(KL_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
  elf_file f = {path, map, (size_t)st.st_size, false};
  kl_status s = peek_mapped(&f, out_info);
  munmap(map, (size_t)st.st_size);
  return s;
}

/* ---- loading -------------------------------------------------------------------------- */

static unsigned host_machine(void) {
#if defined(__x86_64__)
  return EM_X86_64;
#elif defined(__aarch64__)
  return EM_AARCH64;
#else
  return EM_NONE;
#endif
}

static kl_status check_tensors(const char *path, const char *what,
                               const kl_artifact_tensor_info *t, int32_t n) {
  if (n > 0 && !t)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor has %d %s but no table", path, n, what);
  for (int32_t i = 0; i < n; i++) {
    if (!t[i].name || !t[i].c_name || !kl_dtype_is_valid(t[i].dtype) || t[i].rank < 0 ||
        t[i].rank > KL_MAX_RANK || (t[i].rank > 0 && !t[i].shape))
      return kl_status_create(KL_ERR_FORMAT, "%s: descriptor %s[%d] is malformed", path, what, i);
    int64_t numel;
    uint64_t nbytes;
    if (!kl_shape_numel(t[i].shape, t[i].rank, &numel) ||
        __builtin_mul_overflow((uint64_t)numel, (uint64_t)kl_dtype_size(t[i].dtype), &nbytes) ||
        nbytes != t[i].nbytes)
      return kl_status_create(KL_ERR_FORMAT,
                              "%s: descriptor %s[%d] ('%s'): nbytes %llu does not match its shape",
                              path, what, i, t[i].name, (unsigned long long)t[i].nbytes);
  }
  return NULL;
}

static kl_status check_descriptor(const char *path, const kl_artifact_descriptor *d) {
  if (d->magic != KL_ARTIFACT_MAGIC)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor has bad magic 0x%08x", path,
                            (unsigned)d->magic);
  if (d->abi_version != KL_ARTIFACT_ABI_VERSION)
    return kl_status_create(KL_ERR_VERSION,
                            "%s: artifact ABI version %u, this kiln reads version %u (recompile "
                            "the model with this kiln)",
                            path, (unsigned)d->abi_version, KL_ARTIFACT_ABI_VERSION);
  if (d->n_inputs < 0 || d->n_outputs < 0 || d->n_inputs > KL_ARTIFACT_MAX_TENSORS ||
      d->n_outputs > KL_ARTIFACT_MAX_TENSORS)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor has bad counts (%d inputs, %d outputs)",
                            path, d->n_inputs, d->n_outputs);
  if (!d->create || !d->run || !d->destroy || !d->set_threads || !d->error_message ||
      !d->status_message)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor lacks an entry point", path);
  KL_RETURN_IF_ERROR(check_tensors(path, "inputs", d->inputs, d->n_inputs));
  return check_tensors(path, "outputs", d->outputs, d->n_outputs);
}

kl_status kl_artifact_open(const char *path, kl_artifact_handle **out_handle,
                           const kl_artifact_descriptor **out_desc) {
  *out_handle = NULL;
  *out_desc = NULL;
  kl_artifact_file_info info;
  KL_RETURN_IF_ERROR(kl_artifact_peek(path, &info));
  if (info.type != ET_DYN)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: an object file, not a shared library (link it first)", path);
  if (host_machine() != EM_NONE && info.machine != host_machine())
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: built for %s, cannot run on this %s machine",
                            path, machine_name(info.machine), machine_name(host_machine()));
  /* Refuse a foreign descriptor before running any of the library's code. */
  if (info.magic != KL_ARTIFACT_MAGIC)
    return kl_status_create(KL_ERR_FORMAT, "%s: descriptor '%s' has bad magic 0x%08x", path,
                            info.symbol, (unsigned)info.magic);
  if (info.abi_version != KL_ARTIFACT_ABI_VERSION)
    return kl_status_create(KL_ERR_VERSION,
                            "%s: artifact ABI version %u, this kiln reads version %u (recompile "
                            "the model with this kiln)",
                            path, (unsigned)info.abi_version, KL_ARTIFACT_ABI_VERSION);

  /* dlopen searches the library path for a name without '/'; a file name is meant here. */
  char *full = NULL;
  if (!strchr(path, '/')) {
    size_t n = strlen(path) + 3;
    full = malloc(n);
    if (!full)
      kl_fatal_oom();
    snprintf(full, n, "./%s", path);
  }
  dlerror();
  void *dl = dlopen(full ? full : path, RTLD_NOW | RTLD_LOCAL);
  free(full);
  if (!dl) {
    const char *why = dlerror();
    return kl_status_create(KL_ERR_IO, "%s: cannot load: %s", path, why ? why : "dlopen failed");
  }
  const kl_artifact_descriptor *desc = dlsym(dl, info.symbol);
  kl_status s = NULL;
  if (!desc)
    s = kl_status_create(KL_ERR_NOT_FOUND, "%s: symbol '%s' not found by the loader", path,
                         info.symbol);
  else
    s = check_descriptor(path, desc);
  if (s) {
    dlclose(dl);
    return s;
  }
  kl_artifact_handle *h = malloc(sizeof *h);
  if (!h)
    kl_fatal_oom();
  h->dl = dl;
  *out_handle = h;
  *out_desc = desc;
  return NULL;
}

void kl_artifact_close(kl_artifact_handle *handle) {
  if (!handle)
    return;
  dlclose(handle->dl);
  free(handle);
}
