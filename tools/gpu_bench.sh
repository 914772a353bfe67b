#!/usr/bin/env bash
# The GPU benchmark of issue 13: every case of its table at the GPU sizes it
# names, on jax (jax.jit) and torch (eager), each against the native torch
# reference in the same process, in one run of under five minutes.
#
# It runs on a machine whose Python has CUDA builds of torch and jax but no
# Keras. Prepare the wheels here, in the repository root:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 tools/build_wheels.py --dist .whl
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 \
#       --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       keras==3.15.1 namex==0.1.0 optree==0.20.0 ultralytics==8.4.190
#
# (These four resolved for that platform on 2026-12-05; what Ultralytics' loss
# module imports besides them, opencv, psutil, pyyaml, tqdm and torchvision, is
# in the device machine's image.) Then run `bash tools/gpu_bench.sh` there with
# .whl carried along. Tables go to standard output and, one file per backend,
# to $OUT when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
out="${OUT:-/tmp}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

for backend in jax torch; do
    log="$out/gpu-$backend.txt"
    run() { KERAS_BACKEND=$backend python3 tools/bench.py "$@" 2>&1 | tee -a "$log"; }
    : > "$log"
    run forecasting --set batch=65536 --repetitions 20
    run classification --set batch=65536 --repetitions 50
    run language-model --set length=2048 --repetitions 5
    run contrastive --set batch=4096 --set dim=768 --set chunk_size=1024 --repetitions 20
    run dino --set batch=128 --set out_dim=65536 --repetitions 10
    run segmentation --set batch=8 --set size=512 --repetitions 10
    run yolo --set configs=16x50 --repetitions 5
done
