#!/bin/bash
# The quest_select GPU-machine run (see ../shared/GPU.md and cuda/README.md):
#   iter:  build, the quest_select vitest sweep, check.mjs --select (fused and two-kernel paths),
#          bench_select.mjs over the A/B switches in SEL_VARIANTS (below), the select + sparse
#          benchmarks of bench.mjs
#   final: build, tsc, the full vitest suite with SA_REQUIRE_CUDA=1, verify --backend cuda,
#          compute-sanitizer memcheck over check.mjs --select, the select + sparse benchmarks of this
#          tree and of the baseline quest_select.cu in
#          .gpu/base_quest_select.cu (c99a6cb, built beside it), then this tree again
# Usage (device tool, carry .gpu): bash cuda/tools/gpu_select.sh iter|final
set -u
OUT=${OUT:-/tmp/sa_out}; mkdir -p "$OUT"
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
tar -xJf .gpu/node_modules.tar.xz
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv; date -u;
  time node node_modules/cmake-js/bin/cmake-js compile --CDCMAKE_CUDA_ARCHITECTURES=90a ; } > "$OUT/build.log" 2>&1 \
  || { tail -60 "$OUT/build.log"; exit 1; }
grep -E "^real" "$OUT/build.log"
export NO_COLOR=1
# A/B settings of the quest_select switches (bench_select.mjs 'name:ENV=v ...'): blocks per SM of the
# fused kernel, metadata blocks per team in flight, the two-kernel path.
SEL_VARIANTS=("plain:" "acq:SA_CUDA_QS_X=2" "range:SA_CUDA_QS_X=4" "acqrange:SA_CUDA_QS_X=6" "bps2:SA_CUDA_QS_BPS=2"
  "dbg0:SA_CUDA_QS_X=1 SA_CUDA_QS_DBG=0" "notopk:SA_CUDA_QS_X=1 SA_CUDA_QS_DBG=1" "prologue:SA_CUDA_QS_X=1 SA_CUDA_QS_DBG=16"
  "retfirst:SA_CUDA_QS_X=1 SA_CUDA_QS_DBG=4" "twokernel:SA_CUDA_QS_FUSED=0")
if [[ $1 == iter ]]; then
  for x in 0 6; do
    SA_CUDA_QS_X=$x SA_REQUIRE_CUDA=1 timeout 100 node node_modules/vitest/vitest.mjs run experiments/3_quest_select > "$OUT/vitest_sel$x.log" 2>&1
    echo "vitest quest_select (SA_CUDA_QS_X=$x) rc $?: $(grep -E 'Tests  ' "$OUT/vitest_sel$x.log")"; grep -E "FAIL|AssertionError" "$OUT/vitest_sel$x.log" | head -8
  done
  for v in "fused:" "twokernel:SA_CUDA_QS_FUSED=0" "acq:SA_CUDA_QS_X=2" "range:SA_CUDA_QS_X=4" "acqrange:SA_CUDA_QS_X=6"; do
    env ${v#*:} timeout 60 node cuda/tools/check.mjs --select 2>&1 | grep -E "FAIL|cuda check \(" | head -5 | sed "s/^/${v%%:*}: /"
  done
  timeout 120 node cuda/tools/bench_select.mjs "${SEL_VARIANTS[@]}" 2>&1 | tee "$OUT/bench_select.log"
  timeout 60 node cuda/tools/bench.mjs /tmp/b.json --only=sparse --quick 2>&1 | grep -E "ceiling|quest_select|sparse"
fi
if [[ $1 == final ]]; then
  node node_modules/typescript/bin/tsc -p tsconfig.json >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
  SA_REQUIRE_CUDA=1 timeout 420 node node_modules/vitest/vitest.mjs run > "$OUT/vitest.log" 2>&1; echo "vitest rc $?"
  grep -E "Test Files|Tests  |Duration" "$OUT/vitest.log"; grep -E "FAIL" "$OUT/vitest.log" | head -10
  timeout 100 node dist/src/cli/main.js verify --backend cuda > "$OUT/verify.log" 2>&1; echo "verify rc $?"
  grep -E "^FAIL|passed|skipped" "$OUT/verify.log" | head -10
  timeout 150 compute-sanitizer --tool memcheck --print-limit 20 node cuda/tools/check.mjs --select > "$OUT/sanitizer.log" 2>&1; echo "sanitizer rc $?"
  grep -E "ERROR SUMMARY|cuda check|Invalid|FAIL" "$OUT/sanitizer.log" | head -10
  timeout 90 node cuda/tools/bench.mjs "$OUT/bench_new.json" --only=sparse --quick 2>&1 | grep -E "ceiling:|quest_select|sparse" | sed "s/^/new: /"
  mkdir -p /tmp/base && cp -r CMakeLists.txt include bindings cpu cuda ascendc metal src package.json /tmp/base/ 2>/dev/null
  ln -sf "$PWD/node_modules" /tmp/base/node_modules && cp .gpu/base_quest_select.cu /tmp/base/cuda/quest_select.cu
  (cd /tmp/base && node node_modules/cmake-js/bin/cmake-js compile --CDCMAKE_CUDA_ARCHITECTURES=90a > "$OUT/build_base.log" 2>&1) || tail -20 "$OUT/build_base.log"
  SA_ADDON=/tmp/base/build/Release/select_attn.node timeout 90 node cuda/tools/bench.mjs "$OUT/bench_base.json" --only=sparse --quick 2>&1 \
    | grep -E "ceiling:|quest_select|sparse" | sed "s/^/base c99a6cb: /"
  timeout 90 node cuda/tools/bench.mjs /tmp/bench_new2.json --only=sparse --quick 2>&1 | grep -E "quest_select|sparse" | sed "s/^/new (again): /"
fi
