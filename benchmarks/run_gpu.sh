#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md ("Feature extraction on a GPU"): `bench extract` for ResNet-50 and
# EfficientNet-Lite0, 1 and 16 views, random weights, sized for a GPU (thousands of images; the naive loop on a few
# hundred). Usage: bash benchmarks/run_gpu.sh [LOG_FOLDER [NAME ...]]: NAMEs pick some of the runs below (default:
# all). PYTHON=... picks the interpreter (default python3); BENCH_TIMEOUT the seconds each run may take (default 240).
set -u
PY=${PYTHON:-python3}
LOGS=${1:-bench-gpu-logs}
shift $(( $# > 0 ? 1 : 0 ))
ONLY=" $* "
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1 COURSE_CACHE_DIR=${COURSE_CACHE_DIR:-$LOGS/cache}

run() {
  local name=$1
  shift
  [[ "$ONLY" == "  " || "$ONLY" == *" $name "* ]] || return 0
  echo "=== $name $(date +%T)"
  timeout "${BENCH_TIMEOUT:-240}" "$PY" -m course_utils bench extract --device cuda --rounds 2 "$@" 2>&1 \
    | grep -v '^\s*$' | tee "$LOGS/$name.log"
}

run resnet50_1view --backbone resnet50 --views 1 --images 32768 --naive-images 384 --batch-sizes 64,128,256
run resnet50_16views --backbone resnet50 --views 16 --images 1024 --naive-images 32 --batch-sizes 128,256
run lite0_1view --backbone efficientnet_lite0 --views 1 --images 32768 --naive-images 384 --batch-sizes 64,128,256
run lite0_16views --backbone efficientnet_lite0 --views 16 --images 1024 --naive-images 32 --batch-sizes 128,256
echo "=== done $(date +%T)"
