#!/usr/bin/env bash
# Optional: a Python 3.6 environment with CNTK 2.7 (CPU build) to run the sample's CNTK path for real,
# as the Batch AI CNTK container did. CNTK wheels exist only for Python 3.5-3.7.
#
#   scripts/setup_cntk.sh [VENV_DIR]        (default: .cntk-venv)
#
# On success the last line printed is the `export ...` that tests/test_sample_cntk.py needs:
#   eval "$(scripts/setup_cntk.sh | tail -n 1)"
set -euo pipefail
venv=${1:-.cntk-venv}

python36=$(command -v python3.6 2>/dev/null || true)
if [ -z "$python36" ] || ! "$python36" -c "" 2>/dev/null; then
    python36=$(ls -d /root/.pyenv/versions/3.6*/bin/python 2>/dev/null | head -n 1 || true)
fi
if [ -z "$python36" ]; then
    echo "setup_cntk: no Python 3.6 found (CNTK 2.7 wheels exist only for Python 3.5-3.7)" >&2
    exit 1
fi
"$python36" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check cntk==2.7.post2

# CNTK 2.7 links against Open MPI 1.10's sonames (libmpi_cxx.so.1, libmpi.so.12). Debian 12 ships Open MPI 4.1
# (.so.40), which serves what CNTK uses outside distributed training; point the old names at it.
if ! ldconfig -p | grep -q 'libmpi_cxx.so.40'; then
    apt-get update -qq && apt-get install -y -qq libopenmpi3 >/dev/null
fi
compat="$(cd "$venv" && pwd)/mpi-compat"
mkdir -p "$compat"
ln -sf "$(ldconfig -p | awk '/libmpi_cxx.so.40 /{print $NF; exit}')" "$compat/libmpi_cxx.so.1"
ln -sf "$(ldconfig -p | awk '/libmpi.so.40 /{print $NF; exit}')" "$compat/libmpi.so.12"

LD_LIBRARY_PATH="$compat" "$venv/bin/python" -c "import cntk; print('CNTK', cntk.__version__)" 2>/dev/null
echo "export CNTK_PYTHON=$(cd "$venv" && pwd)/bin/python LD_LIBRARY_PATH=$compat"
