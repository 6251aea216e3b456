#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (CI does not run it).
# Runs the backend tests with WebGPU on Dawn's default adapter (Vulkan on NVIDIA), requiring
# every backend, then reports matmul GFLOP/s on webgpu (and cuda when @tensorflow/tfjs-node-gpu
# is installed). Run from the repo root after `pnpm install && pnpm build`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "nvidia-smi not found"
export MIDTRAIN_WEBGPU_ADAPTER=gpu
export MIDTRAIN_REQUIRE_BACKENDS=webgpu,wasm,cpu
pnpm exec vitest run --project backend
backends="webgpu wasm"
if node -e "require.resolve('@tensorflow/tfjs-node-gpu')" 2>/dev/null; then backends="cuda $backends"; fi
node scripts/matmul-bench.mjs $backends
