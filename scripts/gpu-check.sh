#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (CI does not run it).
# 1. Runs the backend tests with WebGPU on Dawn's default adapter (Vulkan on NVIDIA), requiring
#    every backend, and reports matmul GFLOP/s on webgpu (and cuda when @tensorflow/tfjs-node-gpu
#    is installed).
# 2. Takes the paper-shape training step (bench configs p70 / p160: Pythia-70m / -160m, one
#    sequence of 2,048 tokens, AdamW) through Dawn on the GPU's Vulkan adapter and reports
#    tokens/s and MFU against the GPU's fp32 peak, with the same step in PyTorch CUDA when
#    python3 has torch with CUDA (same run, so the ratio is meaningful).
# Run from the repo root after `pnpm install && pnpm build`.
#
#   scripts/gpu-check.sh [--peak-tflops X] [--configs p70,p160] [--steps N] [--skip-tests] [--dry-run]
#
# --peak-tflops: the GPU's fp32 peak in TFLOP/s (e.g. 67 for an H100 SXM, 19.5 for an A100);
#   without it MFU is left out. --dry-run prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."

peak=""
configs="p70,p160"
steps="5"
skip_tests=0
dry=0
usage() { sed -n '12,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --peak-tflops) [ $# -ge 2 ] || { echo "--peak-tflops needs a number" >&2; exit 2; }; peak="$2"; shift 2 ;;
    --configs) [ $# -ge 2 ] || { echo "--configs needs a list, e.g. p70,p160" >&2; exit 2; }; configs="$2"; shift 2 ;;
    --steps) [ $# -ge 2 ] || { echo "--steps needs a number" >&2; exit 2; }; steps="$2"; shift 2 ;;
    --skip-tests) skip_tests=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$peak" ] && ! [[ "$peak" =~ ^[0-9]+([.][0-9]+)?$ ]]; then echo "--peak-tflops must be a number of TFLOP/s, got '$peak'" >&2; exit 2; fi
if ! [[ "$steps" =~ ^[1-9][0-9]*$ ]]; then echo "--steps must be a positive integer, got '$steps'" >&2; exit 2; fi
for c in ${configs//,/ }; do
  case "$c" in p70|p160|a|b|tiny) ;; *) echo "unknown bench config '$c' (p70, p160, a, b, tiny)" >&2; exit 2 ;; esac
done

run() {
  if [ "$dry" = 1 ]; then echo "+ $*"; else "$@"; fi
}

command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "nvidia-smi not found"
export MIDTRAIN_WEBGPU_ADAPTER=gpu
export MIDTRAIN_REQUIRE_BACKENDS=webgpu,wasm,cpu
if [ "$skip_tests" = 0 ]; then
  run pnpm exec vitest run --project backend
  backends="webgpu wasm"
  if node -e "require.resolve('@tensorflow/tfjs-node-gpu')" 2>/dev/null; then backends="cuda $backends"; fi
  run node scripts/matmul-bench.mjs $backends
fi

# The paper-shape step on the GPU (WebGPU through Dawn; cuda too when tfjs-node-gpu is there),
# and PyTorch CUDA from the same command (pnpm bench adds it when torch.cuda.is_available()).
gpu_backends="webgpu"
if node -e "require.resolve('@tensorflow/tfjs-node-gpu')" 2>/dev/null; then gpu_backends="cuda,webgpu"; fi
bench=(node scripts/bench.mjs --configs "$configs" --backends "$gpu_backends" --steps "$steps" --warmup 1 --out bench/results/gpu-check.json)
if [ -n "$peak" ]; then bench+=(--peak-tflops "$peak"); fi
run "${bench[@]}"
