#!/usr/bin/env bash
# Installs what kiln needs to build and test on Debian 12, skipping what is already there:
# Debian packages with apt, and Python packages (onnx, onnxruntime, numpy: test data and
# cross-checks only; kiln itself never needs Python) into a virtual environment at .venv.
# Safe to run again; needs root or sudo only when a Debian package is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# python3-torch and python3-torchvision are for /usr/bin/python3, not the venv: the models
# suite (tests/models/torch) exports real models with them; without them those tests skip.
packages=(build-essential meson ninja-build pkg-config python3 python3-venv
          libprotobuf-c-dev protobuf-c-compiler libonnx-dev
          llvm-19-dev llvm-19 clang-14 graphviz binutils
          python3-torch python3-torchvision)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "kiln setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "kiln setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Python packages in .venv, pinned so test data and cross-checks do not drift. Debian's own
# python3 is used (not whatever python3 is first on PATH) so the venv works on a plain system.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
venv="$root/.venv"
want="onnx==1.17.0 onnxruntime==1.23.2 numpy==2.2.6"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.kiln-packages" 2>/dev/null)" != "$want" ]; then
  echo "kiln setup: installing Python packages into .venv ($want)"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check $want
  echo "$want" > "$venv/.kiln-packages"
fi
