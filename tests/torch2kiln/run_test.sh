# One torch2kiln test (POSIX sh):  sh run_test.sh KILN CASE SOURCE_ROOT WORK_DIR
# Skips (exit 77) without Debian's /usr/bin/python3 with python3-torch and python3-torchvision;
# otherwise check_torch2kiln.py runs CASE (see there) and its exit code is the test's.
KILN=$1
CASE=$2
ROOT=$3
WORK=$4
if [ ! -x "$KILN" ] || [ -z "$CASE" ] || [ ! -d "$ROOT" ] || [ -z "$WORK" ]; then
  echo "usage: sh $0 KILN CASE SOURCE_ROOT WORK_DIR" >&2
  exit 2
fi
TORCH_PY=/usr/bin/python3
if [ ! -x "$TORCH_PY" ]; then
  echo "skipped: no $TORCH_PY (Debian's python3 with python3-torch and python3-torchvision)"
  exit 77
fi
if ! "$TORCH_PY" -c "import torch, torchvision, numpy" 2>/dev/null; then
  echo "skipped: $TORCH_PY cannot import torch, torchvision and numpy" \
    "(tools/setup.sh installs them)"
  exit 77
fi
exec "$TORCH_PY" "$ROOT/tests/torch2kiln/check_torch2kiln.py" "$KILN" "$CASE" "$ROOT" "$WORK"
