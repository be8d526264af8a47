#!/usr/bin/env bash
# Install genrec from its wheel, every dependency pinned by deploy/constraints.txt, into the Python
# environment whose `python` comes first on PATH (the image's; tests/test_image_install.py runs it
# in a fresh venv), then check that the commands work.
#   deploy/install.sh dist/genrec-VERSION-py3-none-any.whl
# TORCH_INDEX (optional): a package index for PyTorch, e.g. https://download.pytorch.org/whl/cpu
# for the CPU build on a machine where PyPI's torch would be the CUDA one.
set -euo pipefail
wheel=$1
here=$(cd "$(dirname "$0")" && pwd)
python -m pip install --quiet --no-cache-dir ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} \
  --constraint "$here/constraints.txt" "$wheel[s3]"
genrec --help >/dev/null
cd /  # the installed genrec, not a checkout in the working folder
python - <<'PY'
from genrec.data_docs import ASSETS, CDN
from genrec.validation import SUITES_DIR, load_suite_spec
import flows.training, flows.batch  # the deployments' entrypoints import
assert load_suite_spec("raw_online_retail")["expectations"], SUITES_DIR
assert all((ASSETS / local).is_file() for local in CDN.values()), ASSETS  # Data Docs readable offline
print("genrec installed:", SUITES_DIR)
PY
