#!/bin/bash
# The closing GPU-machine runs of issue 4 (see cuda/README.md): 
#   tests: build, tsc, the full vitest suite with SA_REQUIRE_CUDA=1, `select-attn verify --backend cuda`
#   perf:  compute-sanitizer memcheck over cuda/tools/check.mjs --quick, benchmarks with the torch peers
# Usage (device tool, carry .gpu): bash cuda/tools/gpu_final.sh tests|perf
set -u
OUT=${OUT:-/tmp/sa_out}; mkdir -p "$OUT"
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
tar -xJf .gpu/node_modules.tar.xz
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv; date -u;
  time node node_modules/cmake-js/bin/cmake-js compile --CDCMAKE_CUDA_ARCHITECTURES=90a ; } > "$OUT/build.log" 2>&1 \
  || { tail -60 "$OUT/build.log"; exit 1; }
node node_modules/typescript/bin/tsc -p tsconfig.json >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
export NO_COLOR=1
if [[ $1 == tests ]]; then
  SA_REQUIRE_CUDA=1 timeout 450 node node_modules/vitest/vitest.mjs run > "$OUT/vitest.log" 2>&1; echo "vitest rc $?"
  cp build/vitest-report.json "$OUT/" 2>/dev/null
  node -e 'const r=require(process.argv[1]);console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
    for (const f of r.testResults) for (const t of f.assertionResults) if (t.status==="failed") console.log("FAIL", t.fullName.slice(0,200), (t.failureMessages[0]||"").split("\n")[0].slice(0,300));' "$OUT/vitest-report.json" 2>&1 | head -60
  grep -E "Test Files|Tests  " "$OUT/vitest.log"
  timeout 100 node dist/src/cli/main.js verify --backend cuda > "$OUT/verify.log" 2>&1; echo "verify rc $?"
  grep -E "^FAIL|passed|skipped" "$OUT/verify.log" | head -30
fi
if [[ $1 == perf ]]; then
  timeout 200 compute-sanitizer --tool memcheck --print-limit 20 node cuda/tools/check.mjs --quick > "$OUT/sanitizer.log" 2>&1; echo "sanitizer rc $?"
  grep -E "ERROR SUMMARY|cuda check|Invalid|FAIL" "$OUT/sanitizer.log" | head -20
  timeout 200 node cuda/tools/bench.mjs "$OUT/bench_ours.json" > "$OUT/bench.log" 2>&1; echo "bench rc $?"
  PYTHONUNBUFFERED=1 timeout 330 python3 experiments/peers/peers.py "$OUT/bench_ours.json" "$OUT/bench_peers.json" > "$OUT/peers.log" 2>&1
  echo "peers rc $?"; grep -iE "error|Traceback" "$OUT/peers.log" | head -5
  node cuda/tools/report.mjs "$OUT/bench_ours.json" "$OUT/bench_peers.json" | tee "$OUT/report.md"
fi
