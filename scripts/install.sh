#!/usr/bin/env bash
# Install the project's pinned dependencies into the active Python environment.
# medmnist is installed without its dependencies: only its metadata table (INFO) is used,
# and its declared dependencies would pull in torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -r requirements.txt
python -m pip install --no-deps -r requirements-nodeps.txt
python -m pip install --no-deps -e .   # the bloodcells package and its console command
