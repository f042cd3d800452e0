# Installs the build into a temporary DESTDIR with `meson install --destdir`, checks what was
# installed, then builds tests/install/consumer.c outside the tree against it with pkg-config,
# linked statically (libkiln.a) and dynamically (libkiln.so), runs both and checks their output.
# Called as: sh install.sh BUILD_DIR MESON PKG_CONFIG "CC" SANITIZE CONSUMER.c
BUILD=$1
MESON=$2
PKG_CONFIG=$3
CC=$4
SANITIZE=$5
CONSUMER=$6
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-install.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0

fail() {
  failures=$((failures + 1))
  echo "FAIL: $1" >&2
  [ -z "$2" ] || head -c 3000 "$2" >&2
}

DEST="$TMP/dest"
if ! "$MESON" install -C "$BUILD" --destdir "$DEST" --no-rebuild >"$TMP/install.log" 2>&1; then
  fail "meson install --destdir failed" "$TMP/install.log"
  exit 1
fi

# kiln.pc, with its prefix moved into DEST as a relocated install would have it (a copy: other
# packages' .pc files, protobuf-c's, must keep their own prefix)
pc=$(find "$DEST" -name kiln.pc | head -n 1)
if [ -z "$pc" ]; then
  fail "no kiln.pc was installed"
  exit 1
fi
case "$pc" in
*/lib/pkgconfig/kiln.pc | */lib/*/pkgconfig/kiln.pc | */share/pkgconfig/kiln.pc) ;;
*) fail "kiln.pc is not in a pkgconfig folder: ${pc#"$DEST"}" ;;
esac
prefix=$(sed -n 's/^prefix=//p' "$pc")
[ -n "$prefix" ] || fail "kiln.pc sets no prefix" "$pc"
mkdir "$TMP/pc"
sed "s|^prefix=.*|prefix=$DEST$prefix|" "$pc" >"$TMP/pc/kiln.pc"
PKG_CONFIG_PATH="$TMP/pc"
export PKG_CONFIG_PATH
pc_flags=""
libdir=$("$PKG_CONFIG" $pc_flags --variable=libdir kiln)
includedir=$("$PKG_CONFIG" $pc_flags --variable=includedir kiln)
cflags=$("$PKG_CONFIG" $pc_flags --cflags kiln | sed 's/ *$//')
[ "$cflags" = "-I$includedir/kiln" ] || fail "pkg-config --cflags kiln: '$cflags'"

# what must be there
for f in "$DEST$prefix/bin/kiln" "$libdir/libkiln.a" "$libdir/libkiln.so" \
  "$includedir/kiln/kiln.h" "$includedir/kiln/frontend/kiln.h" \
  "$includedir/kiln/frontend/onnx/onnx.h" "$includedir/kiln/ir/ir.h" "$includedir/kiln/ir/ops.def" \
  "$includedir/kiln/runtime/status.h" "$includedir/kiln/runtime/tensor.h" \
  "$includedir/kiln/runtime/dtype.h" "$includedir/kiln/runtime/npy.h" \
  "$includedir/kiln/runtime/interp.h" "$includedir/kiln/runtime/artifact.h"; do
  [ -e "$f" ] || fail "not installed: ${f#"$DEST"}"
done
# the artifact runtime archive, once the build makes one
if [ -n "$(find "$BUILD" -name libkilnrt.a | head -n 1)" ]; then
  [ -e "$libdir/kiln/libkilnrt.a" ] || fail "not installed: ${libdir#"$DEST"}/kiln/libkilnrt.a"
fi
# every installed header compiles on its own
for h in $(cd "$includedir/kiln" && find . -name '*.h' | sed 's|^\./||' | sort); do
  printf '#include <%s>\n' "$h" >"$TMP/one.c"
  # shellcheck disable=SC2086
  $CC -std=c11 -Wall -Wextra -Werror -fsyntax-only $cflags "$TMP/one.c" >"$TMP/one.log" 2>&1 ||
    fail "the installed header $h does not compile alone" "$TMP/one.log"
done
"$DEST$prefix/bin/kiln" --version >"$TMP/version" 2>&1 || fail "installed kiln --version" "$TMP/version"
grep -q "^kiln [0-9]" "$TMP/version" || fail "installed kiln --version" "$TMP/version"
# Requires.private and Libs.private carry what the static library needs
"$PKG_CONFIG" $pc_flags --print-requires-private kiln | grep -q "libprotobuf-c" ||
  fail "kiln.pc lacks Requires.private: libprotobuf-c"

# the consumer, built outside the tree (sanitized like the library when the build is)
mkdir "$TMP/src"
cp "$CONSUMER" "$TMP/src/consumer.c"
san=""
[ "$SANITIZE" = "none" ] || [ -z "$SANITIZE" ] || san="-fsanitize=$SANITIZE"
static_libs=$("$PKG_CONFIG" $pc_flags --static --libs kiln | sed 's/-lkiln\( \|$\)/-l:libkiln.a\1/')
cd "$TMP/src" || exit 1
# shellcheck disable=SC2086 # the flags are lists of words
if ! $CC -std=c11 -Wall -Wextra -Werror $san consumer.c $cflags $static_libs -o consumer_static \
  >"$TMP/cc_static.log" 2>&1; then
  fail "static build: $CC consumer.c $cflags $static_libs" "$TMP/cc_static.log"
fi
# shellcheck disable=SC2086
if ! $CC -std=c11 -Wall -Wextra -Werror $san consumer.c $("$PKG_CONFIG" $pc_flags --cflags --libs kiln) \
  -o consumer_shared >"$TMP/cc_shared.log" 2>&1; then
  fail "shared build" "$TMP/cc_shared.log"
fi

check_run() { # NAME: runs ./NAME and checks its output
  if [ ! -x "./$1" ]; then
    return
  fi
  if ! ./"$1" >"$TMP/$1.out" 2>"$TMP/$1.err"; then
    fail "$1 exited with an error" "$TMP/$1.err"
    return
  fi
  for line in "eager sum 2.5" "interp sum 2.5" "shape=(2, 2)" "aten::relu(" "aten::add(" \
    "graph(%a : Float(2, 2), %b : Float(2, 2)):"; do
    grep -qF -- "$line" "$TMP/$1.out" || fail "$1 output lacks: $line" "$TMP/$1.out"
  done
}
check_run consumer_static
# the static program needs no libkiln.so at run time
if [ -x consumer_static ] && command -v ldd >/dev/null 2>&1; then
  ! ldd consumer_static | grep -q "libkiln" || fail "consumer_static loads libkiln.so"
fi
# the shared program finds the installed libkiln.so (only there: the test runner points
# LD_LIBRARY_PATH at the build folder)
LD_LIBRARY_PATH="$libdir"
export LD_LIBRARY_PATH
if [ -x consumer_shared ] && command -v ldd >/dev/null 2>&1; then
  ldd consumer_shared | grep -q "libkiln\.so.* => $libdir/" ||
    fail "consumer_shared does not load the installed libkiln.so"
fi
check_run consumer_shared

if [ "$failures" -ne 0 ]; then
  echo "$failures checks failed" >&2
  exit 1
fi
echo "installed into $DEST$prefix; static and shared consumers built and ran"
