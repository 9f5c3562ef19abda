#!/usr/bin/env bash
# Install the project's pinned dependencies into the active Python environment.
#   ./scripts/install.sh          CPU builds (requirements.txt)
#   ./scripts/install.sh --gpu    the same pins with the CUDA builds of TensorFlow and JAX (requirements-gpu.txt)
# medmnist is installed without its dependencies: only its metadata table (INFO) is used, and its
# declared dependencies would pull in torch.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    "") python -m pip install -r requirements.txt ;;
    --gpu)
        cpu_builds='^(tensorflow-cpu|jax|jaxlib)=='
        python -m pip install -r <(grep -vE "$cpu_builds" requirements.txt) -r requirements-gpu.txt ;;
    *) echo "usage: $0 [--gpu]" >&2; exit 2 ;;
esac
python -m pip install --no-deps -r requirements-nodeps.txt
python -m pip install --no-deps -e .   # the bloodcells package and its console command
