/* `kiln viz MODEL -o graph.svg|graph.png|graph.dot [-O0..-O3 | --passes=A,B,C] [--no-params]`:
 * draws a model as a Graphviz graph.
 *
 * The picture is written as dot text first: one box per op (named by its op, colored by its
 * fusion category, with the names of the values it defines), one edge per use labeled with
 * the value's dtype and shape, the graph inputs and outputs as ellipses, each
 * prim::FusionGroup as a cluster holding its body's nodes, and all weights and constants
 * collapsed into one "params" node (or, with --no-params, left out and counted in the title).
 * For .svg and .png the text is piped into Graphviz's `dot` (fork and execvp, no shell); .dot
 * output needs no Graphviz at all. Every name taken from the model is escaped for dot, and dot
 * identifiers are made up from node numbers, never from model names. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln_internal.h"
#include "passes/pass.h"

static const kl_cli_option viz_options[] = {
    {"output", 'o', "FILE",
     "where to draw: FILE.svg or FILE.png (runs Graphviz's dot), FILE.dot (dot text, no "
     "Graphviz needed) or - (dot text on stdout); required"},
    {"level", 'O', "N", "optimize with the -O0..-O3 pass list first (default -O0: as loaded)"},
    {"passes", 'p', "A,B,C", "optimize with exactly these passes first, instead of a level"},
    {"no-params", 0, NULL, "leave weights and constants out of the picture (their count goes "
                           "in the title) instead of drawing one params node"},
};

typedef enum viz_format { VIZ_DOT, VIZ_SVG, VIZ_PNG } viz_format;

/* ---- escaping ------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at p (1 to 4), or 0 when p starts no valid one. */
static int utf8_length(const unsigned char *p) {
  if (p[0] < 0x80)
    return 1;
  int n;
  unsigned min;
  unsigned cp;
  if ((p[0] & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = p[0] & 0x1F;
  } else if ((p[0] & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = p[0] & 0x0F;
  } else if ((p[0] & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = p[0] & 0x07;
  } else {
    return 0;
  }
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
      return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

/* Writes s for use inside a double-quoted dot string: quotes and backslashes escaped (so dot's
 * \N, \l and friends cannot be smuggled in), '&' as an entity (dot reads entities in every
 * string), control characters and bytes that are not UTF-8 as '?'. */
static void put_escaped(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    if (*p == '"' || *p == '\\') {
      fputc('\\', f);
      fputc(*p++, f);
    } else if (*p == '&') {
      fputs("&amp;", f);
      p++;
    } else if (*p < 0x20 || *p == 0x7F) {
      fputc('?', f);
      p++;
    } else {
      int n = utf8_length(p);
      if (n == 0) {
        fputc('?', f);
        p++;
      } else {
        fwrite(p, 1, (size_t)n, f);
        p += n;
      }
    }
  }
}

/* ---- the dot text --------------------------------------------------------------------- */

typedef struct viz {
  const kl_ir_graph *g;
  FILE *f;
  bool draw_params;
  int n_weights, n_constants; /* collapsed top-level prim::Param and prim::Constant nodes */
  int64_t param_elements;     /* their element count, where static */
  int n_fusion_groups;
} viz;

/* Where an edge into a use of a value starts. */
typedef enum endpoint_kind { END_NONE, END_INPUT, END_NODE, END_PARAMS } endpoint_kind;
typedef struct endpoint {
  endpoint_kind kind;
  int id; /* input index for END_INPUT, node id for END_NODE */
} endpoint;

static bool is_collapsed(const viz *v, const kl_ir_node *n) {
  return n->owner == v->g->top && (n->op == KL_OP_PARAM || n->op == KL_OP_CONSTANT);
}

/* The drawn node that computes value: fusion groups are seen through (an output of a group
 * comes from the body node that returns it, a body parameter from what feeds the group), and
 * weights come from the params node. */
static endpoint resolve(const viz *v, const kl_ir_value *value, int depth) {
  endpoint none = {END_NONE, 0};
  if (!value || depth > 64)
    return none;
  const kl_ir_node *n = value->node;
  if (!n) {
    const kl_ir_block *b = value->block;
    if (b == v->g->top)
      return (endpoint){END_INPUT, value->index};
    if (b && b->owner && b->owner->op == KL_OP_FUSION_GROUP && value->index >= 0 &&
        value->index < b->owner->n_inputs)
      return resolve(v, b->owner->inputs[value->index], depth + 1);
    return none; /* a parameter of an If or Loop body; those bodies are not drawn */
  }
  if (is_collapsed(v, n))
    return v->draw_params ? (endpoint){END_PARAMS, 0} : none;
  if (n->op == KL_OP_FUSION_GROUP && n->n_blocks == 1 && value->index >= 0 &&
      value->index < n->blocks[0]->n_returns)
    return resolve(v, n->blocks[0]->returns[value->index], depth + 1);
  return (endpoint){END_NODE, n->id};
}

static void put_endpoint(FILE *f, endpoint e) {
  switch (e.kind) {
  case END_INPUT:
    fprintf(f, "in%d", e.id);
    break;
  case END_NODE:
    fprintf(f, "n%d", e.id);
    break;
  case END_PARAMS:
    fputs("params", f);
    break;
  case END_NONE:
    break;
  }
}

static const char *category_color(kl_fuse_category c) {
  switch (c) {
  case KL_FUSE_ELEMENTWISE:
  case KL_FUSE_BROADCAST:
  case KL_FUSE_INJECTIVE:
    return "#e2f0d9"; /* fuses with anything: green */
  case KL_FUSE_REDUCTION:
    return "#fce4c4"; /* ends a group: orange */
  case KL_FUSE_OUT_ELEMENTWISE:
    return "#d6e4f5"; /* matmul, conv, pooling: blue */
  case KL_FUSE_OPAQUE:
    break;
  }
  return "#eeeeee";
}

static void put_type(const viz *v, const kl_ir_type *t) {
  char buf[256];
  kl_ir_type_format(v->g, t, buf, sizeof buf);
  put_escaped(v->f, buf);
}

/* One op box: the op's name, then the values it defines (at most three named). */
static void put_node(const viz *v, const kl_ir_node *n, int indent) {
  FILE *f = v->f;
  fprintf(f, "%*sn%d [label=\"", indent, "", n->id);
  put_escaped(f, kl_ir_node_op_name(n));
  for (int i = 0; i < n->n_outputs && i < 3; i++) {
    fputs(i == 0 ? "\\n%" : ", %", f);
    put_escaped(f, n->outputs[i]->name);
  }
  if (n->n_outputs > 3)
    fprintf(f, ", ... (%d outputs)", n->n_outputs);
  if (n->n_blocks > 0 && n->op != KL_OP_FUSION_GROUP)
    fprintf(f, "\\n(%d sub-block%s not drawn)", n->n_blocks, n->n_blocks == 1 ? "" : "s");
  fprintf(f, "\", fillcolor=\"%s\"];\n", category_color(kl_op_get(n->op)->category));
}

/* The edges into n, one per input, each labeled with the type of the value it carries. */
static void put_in_edges(const viz *v, const kl_ir_node *n) {
  FILE *f = v->f;
  for (int i = 0; i < n->n_inputs; i++) {
    endpoint from = resolve(v, n->inputs[i], 0);
    if (from.kind == END_NONE)
      continue;
    fputs("  ", f);
    put_endpoint(f, from);
    fprintf(f, " -> n%d [label=\"", n->id);
    put_type(v, &n->inputs[i]->type);
    fprintf(f, "\"%s];\n", from.kind == END_PARAMS ? ", style=dashed, color=\"#999999\"" : "");
  }
}

/* The nodes of a fusion group's body, inside a cluster, and the edges into them. */
static void put_fusion_group(viz *v, const kl_ir_node *group) {
  FILE *f = v->f;
  int index = v->n_fusion_groups++;
  fprintf(f, "  subgraph cluster_%d {\n", group->id);
  fprintf(f, "    label=\"prim::FusionGroup_%d\";\n", index);
  fputs("    style=\"rounded,filled\"; fillcolor=\"#fafafa\"; color=\"#888888\";\n", f);
  const kl_ir_block *body = group->n_blocks == 1 ? group->blocks[0] : NULL;
  if (!body || !body->first) {
    /* An empty body still shows that the group is there. */
    fprintf(f, "    n%d [label=\"prim::FusionGroup_%d\\n(empty)\"];\n", group->id, index);
  } else {
    for (const kl_ir_node *n = body->first; n; n = n->next)
      put_node(v, n, 4);
  }
  fputs("  }\n", f);
  if (body)
    for (const kl_ir_node *n = body->first; n; n = n->next)
      put_in_edges(v, n);
}

static void put_title(viz *v, const char *model_path, const char *optimized) {
  FILE *f = v->f;
  const char *base = strrchr(model_path, '/');
  base = base ? base + 1 : model_path;
  fputs("  label=\"", f);
  put_escaped(f, base);
  if (optimized)
    fprintf(f, " (%s)", optimized);
  if (!v->draw_params && v->n_weights)
    fprintf(f, "\\n%d weight%s not drawn", v->n_weights, v->n_weights == 1 ? "" : "s");
  if (!v->draw_params && v->n_constants)
    fprintf(f, "\\n%d constant%s not drawn", v->n_constants, v->n_constants == 1 ? "" : "s");
  fputs("\";\n", f);
}

/* Writes the whole graph as dot text to f. optimized names the passes run (NULL: none). */
static void write_dot(const kl_ir_graph *g, const char *model_path, const char *optimized,
                      bool draw_params, FILE *f) {
  viz v = {.g = g, .f = f, .draw_params = draw_params};
  const kl_ir_block *top = g->top;
  for (const kl_ir_node *n = top->first; n; n = n->next) {
    if (!is_collapsed(&v, n))
      continue;
    if (n->op == KL_OP_PARAM)
      v.n_weights++;
    else
      v.n_constants++;
    int64_t numel;
    if (n->n_outputs == 1 && kl_ir_type_numel(&n->outputs[0]->type, &numel) &&
        numel <= INT64_MAX - v.param_elements)
      v.param_elements += numel;
  }

  fputs("digraph kiln {\n", f);
  fputs("  graph [rankdir=TB, labelloc=t, fontname=\"Helvetica\", fontsize=12];\n", f);
  fputs("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n", f);
  fputs("  edge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\"];\n", f);
  put_title(&v, model_path, optimized);

  for (int i = 0; i < top->n_params; i++) {
    const kl_ir_value *in = top->params[i];
    fprintf(f, "  in%d [shape=ellipse, fillcolor=\"#fff7c2\", label=\"input %%", i);
    put_escaped(f, in->name);
    fputs("\\n", f);
    put_type(&v, &in->type);
    fputs("\"];\n", f);
  }
  if (draw_params && (v.n_weights || v.n_constants)) {
    fputs("  params [shape=folder, fillcolor=\"#f5f5f5\", label=\"params", f);
    if (v.n_weights)
      fprintf(f, "\\n%d weight%s", v.n_weights, v.n_weights == 1 ? "" : "s");
    if (v.n_constants)
      fprintf(f, "\\n%d constant%s", v.n_constants, v.n_constants == 1 ? "" : "s");
    fprintf(f, "\\n%" PRId64 " elements\"];\n", v.param_elements);
  }
  for (const kl_ir_node *n = top->first; n; n = n->next) {
    if (is_collapsed(&v, n))
      continue;
    if (n->op == KL_OP_FUSION_GROUP) {
      put_fusion_group(&v, n);
      continue;
    }
    put_node(&v, n, 2);
    put_in_edges(&v, n);
  }
  for (int i = 0; i < top->n_returns; i++) {
    const kl_ir_value *out = top->returns[i];
    fprintf(f, "  out%d [shape=ellipse, fillcolor=\"#f8d7da\", label=\"output %%", i);
    put_escaped(f, out->name);
    fputs("\"];\n", f);
    endpoint from = resolve(&v, out, 0);
    if (from.kind == END_NONE)
      continue;
    fputs("  ", f);
    put_endpoint(f, from);
    fprintf(f, " -> out%d [label=\"", i);
    put_type(&v, &out->type);
    fputs("\"];\n", f);
  }
  fputs("}\n", f);
}

/* ---- running dot ---------------------------------------------------------------------- */

/* Pipes text into `dot -T<format> -o<out>`. The child reports a failed exec through a
 * close-on-exec pipe, so "dot is not installed" is told apart from "dot failed". */
static kl_status run_dot(const char *format, const char *out, const char *text, size_t len) {
  size_t arg_len = strlen(out) + 3;
  char *out_arg = malloc(arg_len);
  if (!out_arg)
    kl_fatal_oom();
  snprintf(out_arg, arg_len, "-o%s", out);
  char format_arg[16];
  snprintf(format_arg, sizeof format_arg, "-T%s", format);
  char *const argv[] = {"dot", format_arg, out_arg, NULL};

  int data[2], report[2];
  if (pipe(data) != 0) {
    free(out_arg);
    return kl_status_create(KL_ERR_IO, "cannot create a pipe to Graphviz's dot: %s",
                            strerror(errno));
  }
  if (pipe(report) != 0) {
    int e = errno;
    close(data[0]);
    close(data[1]);
    free(out_arg);
    return kl_status_create(KL_ERR_IO, "cannot create a pipe to Graphviz's dot: %s", strerror(e));
  }
  fcntl(report[1], F_SETFD, FD_CLOEXEC);
  fcntl(data[1], F_SETFD, FD_CLOEXEC);
  fflush(NULL); /* nothing buffered may be written twice by the child */
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(data[0]);
    close(data[1]);
    close(report[0]);
    close(report[1]);
    free(out_arg);
    return kl_status_create(KL_ERR_IO, "cannot start Graphviz's dot: %s", strerror(e));
  }
  if (pid == 0) {
    close(report[0]);
    if (dup2(data[0], STDIN_FILENO) >= 0) {
      close(data[0]);
      execvp(argv[0], argv);
    }
    int e = errno;
    ssize_t ignored = write(report[1], &e, sizeof e);
    (void)ignored;
    _exit(127);
  }
  free(out_arg);
  close(data[0]);
  close(report[1]);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(report[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  close(report[0]);
  bool exec_failed = got == (ssize_t)sizeof exec_errno;

  int write_errno = 0;
  for (size_t done = 0; !exec_failed && done < len;) {
    ssize_t n = write(data[1], text + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      write_errno = n < 0 ? errno : EIO; /* EPIPE: dot stopped reading; its status says why */
      break;
    }
    done += (size_t)n;
  }
  close(data[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return kl_status_create(KL_ERR_IO, "waiting for Graphviz's dot: %s", strerror(errno));
  }

  if (exec_failed) {
    if (exec_errno == ENOENT)
      return kl_status_create(KL_ERR_NOT_FOUND,
                              "Graphviz's dot was not found; install graphviz (e.g. apt install "
                              "graphviz) or write .dot (-o graph.dot)");
    return kl_status_create(KL_ERR_IO, "cannot run Graphviz's dot: %s", strerror(exec_errno));
  }
  if (WIFSIGNALED(status))
    return kl_status_create(KL_ERR_IO, "Graphviz's dot was killed by signal %d writing %s",
                            WTERMSIG(status), out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return kl_status_create(KL_ERR_IO, "Graphviz's dot failed (exit status %d) writing %s",
                            WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  if (write_errno)
    return kl_status_create(KL_ERR_IO, "cannot write to Graphviz's dot: %s",
                            strerror(write_errno));
  return NULL;
}

/* ---- the command ---------------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* The format of the output, from its name; false when the name says none kiln writes. */
static bool output_format(const char *out, viz_format *out_format) {
  if (strcmp(out, "-") == 0 || has_suffix(out, ".dot") || has_suffix(out, ".gv"))
    *out_format = VIZ_DOT;
  else if (has_suffix(out, ".svg"))
    *out_format = VIZ_SVG;
  else if (has_suffix(out, ".png"))
    *out_format = VIZ_PNG;
  else
    return false;
  return true;
}


/* Draws g into out in the given format. */
static kl_status draw(const kl_ir_graph *g, const char *model_path, const char *optimized,
                      bool draw_params, const char *out, viz_format format) {
  if (format == VIZ_DOT && strcmp(out, "-") == 0) {
    write_dot(g, model_path, optimized, draw_params, stdout);
    return NULL; /* a failed write to stdout is reported by main */
  }
  if (format == VIZ_DOT) {
    FILE *f = fopen(out, "w");
    if (!f)
      return kl_status_create(KL_ERR_IO, "%s: cannot open for writing: %s", out, strerror(errno));
    write_dot(g, model_path, optimized, draw_params, f);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed)
      return kl_status_create(KL_ERR_IO, "%s: cannot write", out);
    return NULL;
  }
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem)
    kl_fatal_oom();
  write_dot(g, model_path, optimized, draw_params, mem);
  if (fclose(mem) != 0) {
    free(text);
    kl_fatal_oom();
  }
  kl_status s = run_dot(format == VIZ_SVG ? "svg" : "png", out, text, len);
  free(text);
  return s;
}

static int viz_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  const kl_pass_info **passes = NULL;
  int n_passes = 0;
  kl_ir_graph *g = NULL;
  viz_format format = VIZ_DOT;
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    rc = KL_EXIT_USAGE;
    goto done;
  }
  if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
    goto done;
  }
  const char *out = kl_cli_value(cmd, &args, "output");
  const char *level = kl_cli_value(cmd, &args, "level");
  const char *list = kl_cli_value(cmd, &args, "passes");
  if (args.n_positionals == 0)
    rc = kl_cli_usage_error(cmd, "no model file given");
  else if (args.n_positionals > 1)
    rc = kl_cli_usage_error(cmd, "expected one model file, got %d", args.n_positionals);
  else if (!out)
    rc = kl_cli_usage_error(cmd, "no output given (-o graph.svg, graph.png, graph.dot or -)");
  else if (!output_format(out, &format))
    rc = kl_cli_usage_error(cmd, "cannot tell the format of '%s': name it .svg, .png or .dot",
                            out);
  else if (level && list)
    rc = kl_cli_usage_error(cmd, "give either -O%s or --passes, not both", level);
  else
    rc = kl_cli_choose_passes(cmd, level, list, 0, &passes, &n_passes);
  if (rc != KL_EXIT_OK)
    goto done;

  const char *path = args.positionals[0];
  kl_status s = kl_cli_load_graph(path, &g);
  if (s) {
    rc = kl_cli_fail(s, path);
    goto done;
  }
  if (n_passes > 0) {
    kl_pass_options opts;
    kl_pass_options_init(&opts);
    s = kl_pass_run(g, passes, n_passes, &opts);
    if (s) {
      rc = kl_cli_fail(s, path);
      goto done;
    }
  }
  char optimized[32] = "";
  if (list)
    snprintf(optimized, sizeof optimized, "%d pass%s", n_passes, n_passes == 1 ? "" : "es");
  else if (level && level[0] != '0')
    snprintf(optimized, sizeof optimized, "-O%s", level);
  s = draw(g, path, optimized[0] ? optimized : NULL, !kl_cli_flag(cmd, &args, "no-params"), out,
           format);
  if (s)
    rc = kl_cli_fail(s, NULL);
done:
  free(passes);
  kl_ir_graph_destroy(g);
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_viz = {
    .name = "viz",
    .summary = "draw a model as a Graphviz picture (.svg, .png or .dot)",
    .synopsis = "MODEL -o graph.svg|graph.png|graph.dot [-O0..-O3 | --passes=A,B,C] "
                "[--no-params]",
    .description =
        "Loads MODEL (a .kir, .onnx or text IR file), optionally optimizes it, and draws it:\n"
        "one box per op, named by the op and the values it defines and colored by its fusion\n"
        "category (green elementwise, blue matmul/conv/pool, orange reduction, grey opaque);\n"
        "one edge per use, labeled with the value's dtype and shape; the graph inputs and\n"
        "outputs as ellipses; every prim::FusionGroup as a cluster holding the nodes of its\n"
        "body. Weights and constants are collapsed into one 'params' node (dashed edges), or\n"
        "left out with --no-params and counted in the title. The bodies of prim::If and\n"
        "prim::Loop are not drawn.\n"
        "\n"
        "The output's name picks the format: .dot (or .gv, or - for stdout) writes the dot\n"
        "text and needs nothing else; .svg and .png run Graphviz's dot, which must be on\n"
        "PATH (apt install graphviz).\n"
        "\n"
        "Without -O or --passes the model is drawn as loaded; -O3 shows the fusion groups.\n"
        "\n"
        "Exit status: 0 on success, 1 when the model cannot be loaded or optimized or dot\n"
        "fails, 2 on a usage error.",
    .options = viz_options,
    .n_options = (int)(sizeof viz_options / sizeof viz_options[0]),
    .examples = "  kiln viz net.kir -o net.svg\n"
                "  kiln viz net.kir -O3 -o net.fused.png        (fusion groups as clusters)\n"
                "  kiln viz model.onnx --no-params -o model.dot\n"
                "  kiln viz net.kir -o - | dot -Tpdf -o net.pdf\n",
    .run = viz_run,
};
