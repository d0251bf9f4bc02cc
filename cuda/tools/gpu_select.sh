#!/bin/bash
# The quest_select GPU-machine run (see ../shared/GPU.md and cuda/README.md):
#   iter:  build, the quest_select vitest sweep, check.mjs --select (fused and two-kernel paths),
#          bench_select.mjs over the A/B switches in SEL_VARIANTS (below), the select + sparse
#          benchmarks of bench.mjs
#   final: build, tsc, the quest_select + quest_decode vitest sweeps with SA_REQUIRE_CUDA=1, verify
#          --backend cuda for those families, the select + sparse benchmarks of this tree, of the
#          baseline quest_select.cu in .gpu/base_quest_select.cu (1a93577, built beside it) and of
#          this tree again, bench_select.mjs (fused vs two-kernel path), compute-sanitizer memcheck
#          over check.mjs --select
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
# A/B settings of the quest_select switches for iter (bench_select.mjs 'name:ENV=v ...'): blocks per
# SM of the fused kernel (0: one wave by occupancy, the default), the two-kernel path.
SEL_VARIANTS=("fused:" "bps2:SA_CUDA_QS_BPS=2" "twokernel:SA_CUDA_QS_FUSED=0")
if [[ $1 == iter ]]; then
  SA_REQUIRE_CUDA=1 timeout 100 node node_modules/vitest/vitest.mjs run experiments/3_quest_select > "$OUT/vitest_sel.log" 2>&1
  echo "vitest quest_select rc $?: $(grep -E 'Tests  ' "$OUT/vitest_sel.log")"; grep -E "FAIL|AssertionError" "$OUT/vitest_sel.log" | head -8
  for v in "fused:" "twokernel:SA_CUDA_QS_FUSED=0"; do
    env ${v#*:} timeout 60 node cuda/tools/check.mjs --select 2>&1 | grep -E "FAIL|cuda check \(" | head -5 | sed "s/^/${v%%:*}: /"
  done
  timeout 120 node cuda/tools/bench_select.mjs "${SEL_VARIANTS[@]}" 2>&1 | tee "$OUT/bench_select.log"
  timeout 60 node cuda/tools/bench.mjs /tmp/b.json --only=sparse --quick 2>&1 | grep -E "ceiling|quest_select|sparse"
fi
if [[ $1 == final ]]; then
  # the baseline (.gpu/base_quest_select.cu: 1a93577's two-kernel quest_select.cu) builds beside it
  mkdir -p /tmp/base && cp -r CMakeLists.txt include bindings cpu cuda ascendc metal src package.json /tmp/base/ 2>/dev/null
  ln -sf "$PWD/node_modules" /tmp/base/node_modules && cp .gpu/base_quest_select.cu /tmp/base/cuda/quest_select.cu
  (cd /tmp/base && node node_modules/cmake-js/bin/cmake-js compile --CDCMAKE_CUDA_ARCHITECTURES=90a > "$OUT/build_base.log" 2>&1) &
  node node_modules/typescript/bin/tsc -p tsconfig.json >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
  SA_REQUIRE_CUDA=1 timeout 120 node node_modules/vitest/vitest.mjs run experiments/3_quest_select experiments/5_quest_decode > "$OUT/vitest.log" 2>&1
  echo "vitest quest_select + quest_decode rc $?: $(grep -E 'Tests  ' "$OUT/vitest.log")"; grep -E "FAIL" "$OUT/vitest.log" | head -10
  timeout 60 node dist/src/cli/main.js verify --backend cuda --family quest_select,quest_decode > "$OUT/verify.log" 2>&1; echo "verify rc $?"
  grep -E "^FAIL|passed|skipped" "$OUT/verify.log" | head -10
  wait
  timeout 40 node cuda/tools/bench.mjs "$OUT/bench_new.json" --only=sparse --quick 2>&1 | grep -E "ceiling:|quest_select|sparse" | sed "s/^/new: /"
  SA_ADDON=/tmp/base/build/Release/select_attn.node timeout 40 node cuda/tools/bench.mjs "$OUT/bench_base.json" --only=sparse --quick 2>&1 \
    | grep -E "ceiling:|quest_select|sparse" | sed "s/^/base 1a93577: /"
  timeout 40 node cuda/tools/bench.mjs /tmp/bench_new2.json --only=sparse --quick 2>&1 | grep -E "quest_select|sparse" | sed "s/^/new (again): /"
  timeout 40 node cuda/tools/bench_select.mjs "fused:" "twokernel:SA_CUDA_QS_FUSED=0" 2>&1 | tee "$OUT/bench_select.log"
  timeout 90 compute-sanitizer --tool memcheck --print-limit 20 node cuda/tools/check.mjs --select > "$OUT/sanitizer.log" 2>&1; echo "sanitizer rc $?"
  grep -E "ERROR SUMMARY|cuda check|Invalid|FAIL" "$OUT/sanitizer.log" | head -10
fi
