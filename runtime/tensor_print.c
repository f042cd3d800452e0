/* Prints a tensor the way PyTorch's print(tensor) lays it out, so a user comparing `kiln run`
 * with a PyTorch session reads the same picture: nested brackets aligned under "tensor(", all
 * elements padded to one width, 4 digits after the point (scientific notation when magnitudes
 * span more than 1000x or leave [1e-4, 1e8]), "1." for whole floats, and large tensors
 * summarized with "..." keeping 3 items at each end of every dim.
 *
 * The layout is computed in two passes over the displayed elements: one to choose the number
 * format and the column width, one to print. kl_print (frontend/) asks for kiln's ending,
 * ", shape=(1, 2), dtype=Float)", since C code has no other way to see a tensor's type. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor_print.h"

typedef enum float_mode { MODE_WHOLE, MODE_FIXED, MODE_SCI } float_mode;

typedef struct printer {
  const kl_tensor *t;
  kl_tensor_print_options opts;
  int64_t strides[KL_MAX_RANK];
  bool summarize;
  float_mode mode;
  int width;
  FILE *f;
  /* first pass: what the displayed float values look like */
  bool any_finite_nonzero;
  bool all_whole;
  double abs_min, abs_max;
} printer;

kl_tensor_print_options kl_tensor_print_defaults(void) {
  kl_tensor_print_options o = {.threshold = 1000, .edge_items = 3, .line_width = 80, .precision = 4,
                               .shape_and_dtype = false};
  return o;
}

static bool is_int_dtype(kl_dtype dt) { return !kl_dtype_is_float(dt) && dt != KL_BOOL; }

static int format_element(const printer *p, int64_t offset, char *buf, size_t size) {
  kl_dtype dt = p->t->dtype;
  if (dt == KL_BOOL)
    return snprintf(buf, size, "%s", kl_dtype_load_i64(dt, p->t->data, (size_t)offset) ? "True" : "False");
  if (is_int_dtype(dt))
    return snprintf(buf, size, "%" PRId64, kl_dtype_load_i64(dt, p->t->data, (size_t)offset));
  double v = kl_dtype_load_f64(dt, p->t->data, (size_t)offset);
  if (isnan(v))
    return snprintf(buf, size, "nan");
  if (isinf(v))
    return snprintf(buf, size, "%sinf", v < 0 ? "-" : "");
  switch (p->mode) {
  case MODE_WHOLE:
    return snprintf(buf, size, "%.0f.", v);
  case MODE_SCI:
    return snprintf(buf, size, "%.*e", p->opts.precision, v);
  default:
    return snprintf(buf, size, "%.*f", p->opts.precision, v);
  }
}

/* Calls visit(p, offset) for every element that will be displayed, in order. */
static void walk(printer *p, int dim, int64_t base, void (*visit)(printer *, int64_t)) {
  int64_t n = p->t->shape[dim];
  int64_t edge = p->opts.edge_items;
  for (int64_t i = 0; i < n; i++) {
    if (p->summarize && n > 2 * edge && i == edge)
      i = n - edge; /* skip the middle */
    int64_t off = base + i * p->strides[dim];
    if (dim == p->t->rank - 1)
      visit(p, off);
    else
      walk(p, dim + 1, off, visit);
  }
}

static void scan_value(printer *p, int64_t offset) {
  double v = kl_dtype_load_f64(p->t->dtype, p->t->data, (size_t)offset);
  if (!isfinite(v))
    return;
  if (v != floor(v))
    p->all_whole = false;
  double a = fabs(v);
  if (a == 0)
    return;
  if (!p->any_finite_nonzero || a < p->abs_min)
    p->abs_min = a;
  if (!p->any_finite_nonzero || a > p->abs_max)
    p->abs_max = a;
  p->any_finite_nonzero = true;
}

static void measure_width(printer *p, int64_t offset) {
  char buf[64];
  int len = format_element(p, offset, buf, sizeof buf);
  if (len > p->width)
    p->width = len;
}

static void choose_format(printer *p) {
  p->mode = MODE_FIXED;
  if (kl_dtype_is_float(p->t->dtype) && p->t->rank > 0) {
    p->all_whole = true;
    walk(p, 0, 0, scan_value);
  } else if (kl_dtype_is_float(p->t->dtype)) {
    p->all_whole = true;
    scan_value(p, 0);
  }
  if (kl_dtype_is_float(p->t->dtype)) {
    bool wide = p->any_finite_nonzero &&
                (p->abs_max / p->abs_min > 1000.0 || p->abs_max > 1e8);
    if (p->all_whole)
      p->mode = wide ? MODE_SCI : MODE_WHOLE;
    else
      p->mode = wide || (p->any_finite_nonzero && p->abs_min < 1e-4) ? MODE_SCI : MODE_FIXED;
  }
  p->width = 1;
  if (p->t->rank > 0)
    walk(p, 0, 0, measure_width);
  else
    measure_width(p, 0);
}

static void put_indent(FILE *f, int n) {
  for (int i = 0; i < n; i++)
    fputc(' ', f);
}

static void print_padded(printer *p, const char *s) { fprintf(p->f, "%*s", p->width, s); }

/* One innermost row "[a, b, c]", wrapped at the line width under its opening bracket. */
static void print_row(printer *p, int64_t base, int indent) {
  int64_t n = p->t->shape[p->t->rank - 1];
  int64_t edge = p->opts.edge_items;
  bool cut = p->summarize && n > 2 * edge;
  int per_line = (p->opts.line_width - indent) / (p->width + 2);
  if (per_line < 1)
    per_line = 1;
  int64_t shown = cut ? 2 * edge + 1 : n; /* "..." takes a slot */
  fputc('[', p->f);
  for (int64_t k = 0; k < shown; k++) {
    if (k > 0) {
      fputc(',', p->f);
      if (k % per_line == 0) {
        fputc('\n', p->f);
        put_indent(p->f, indent + 1);
      } else {
        fputc(' ', p->f);
      }
    }
    char buf[64];
    if (cut && k == edge) {
      print_padded(p, "...");
      continue;
    }
    int64_t i = cut && k > edge ? n - (shown - k) : k;
    format_element(p, base + i * p->strides[p->t->rank - 1], buf, sizeof buf);
    print_padded(p, buf);
  }
  fputc(']', p->f);
}

static void print_dim(printer *p, int dim, int64_t base, int indent) {
  if (dim == p->t->rank - 1) {
    print_row(p, base, indent);
    return;
  }
  int64_t n = p->t->shape[dim];
  int64_t edge = p->opts.edge_items;
  int newlines = p->t->rank - dim - 1; /* blank lines grow with the depth of what they separate */
  fputc('[', p->f);
  for (int64_t i = 0; i < n; i++) {
    if (i > 0) {
      fputc(',', p->f);
      for (int k = 0; k < newlines; k++)
        fputc('\n', p->f);
      put_indent(p->f, indent + 1);
    }
    if (p->summarize && n > 2 * edge && i == edge) {
      fputs("...", p->f);
      i = n - edge - 1;
      continue;
    }
    print_dim(p, dim + 1, base + i * p->strides[dim], indent + 1);
  }
  fputc(']', p->f);
}

/* PyTorch names a dtype only when it is not the default one for its kind. */
static const char *torch_dtype_suffix(kl_dtype dt) {
  switch (dt) {
  case KL_F16: return "float16";
  case KL_BF16: return "bfloat16";
  case KL_F64: return "float64";
  case KL_I8: return "int8";
  case KL_U8: return "uint8";
  case KL_I32: return "int32";
  default: return NULL;
  }
}

/* A Python tuple of the dims: "()", "(5,)", "(2, 3)". */
static void print_shape_tuple(const kl_tensor *t, FILE *f) {
  fputc('(', f);
  for (int d = 0; d < t->rank; d++)
    fprintf(f, "%s%" PRId64, d ? ", " : "", t->shape[d]);
  fputs(t->rank == 1 ? ",)" : ")", f);
}

kl_status kl_tensor_print(const kl_tensor *t, const kl_tensor_print_options *opts, FILE *f) {
  if (!t || t->rank < 0 || t->rank > KL_MAX_RANK || !kl_dtype_is_valid((int)t->dtype))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "cannot print: not a valid tensor");
  printer p = {.t = t, .opts = opts ? *opts : kl_tensor_print_defaults(), .f = f};
  if (p.opts.edge_items < 1)
    p.opts.edge_items = 1;
  const char *suffix = torch_dtype_suffix(t->dtype);
  fputs("tensor(", f);
  if (t->numel == 0) {
    fputs("[]", f);
    if (t->rank != 1 && !p.opts.shape_and_dtype) {
      fputs(", size=", f);
      print_shape_tuple(t, f);
    }
  } else {
    int64_t stride = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
      p.strides[d] = stride;
      stride *= t->shape[d];
    }
    p.summarize = p.opts.threshold >= 0 && t->numel > p.opts.threshold;
    choose_format(&p);
    if (t->rank == 0) {
      char buf[64];
      format_element(&p, 0, buf, sizeof buf);
      fputs(buf, f);
    } else {
      print_dim(&p, 0, 0, (int)strlen("tensor("));
    }
  }
  if (p.opts.shape_and_dtype) {
    fputs(", shape=", f);
    print_shape_tuple(t, f);
    fprintf(f, ", dtype=%s", kl_dtype_ir_name(t->dtype));
  } else if (suffix) {
    fprintf(f, ", dtype=torch.%s", suffix);
  }
  fputs(")\n", f);
  return NULL;
}
