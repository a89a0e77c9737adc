#!/usr/bin/env bash
# Prepare, on this machine (where PyPI is reachable), the Python packages that `speechprune
# train/evaluate/export` import and that the GPU machine's image lacks (it has torch,
# torchaudio, numba, scipy, tensorboard, tqdm, PyYAML; no hydra, omegaconf, jiwer, soundfile,
# num2words), as wheels for its Python 3.12 in .whl/ (ignored by git). Then, on that machine:
#
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD && python3 scripts/check_gpu.py
#
# with `.whl` and `data/tiny` (53 MB, built by `make data`) carried along. Versions are the ones
# this project's environment runs.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PYTHON=.venv/bin/python
version() { "$PYTHON" -c "import importlib.metadata as m; print(m.version('$1'))"; }
rm -rf .whl && mkdir .whl
binary=()
for package in hydra-core omegaconf jiwer rapidfuzz num2words soundfile cffi pycparser; do
    binary+=("$package==$(version "$package")")
done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${binary[@]}"
# Pure-Python packages published only as source archives: build their wheels here.
"$PYTHON" -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==$(version antlr4-python3-runtime)" \
    "docopt==$(version docopt)"
ls .whl
