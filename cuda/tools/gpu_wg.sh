#!/bin/bash
# The GPU-machine run for the Hopper prefill kernel (attn_wg.cuh; see ../shared/GPU.md, cuda/README.md):
# build for sm_90a, the paged_attention sweep and check.mjs with the kernel forced on (SA_CUDA_WG=1)
# and by default, then the chunked-prefill benchmark with the kernel off (mma.sync) and on.
# Usage (device tool, carry .gpu): bash cuda/tools/gpu_wg.sh [abl|full|final|ncu]
#   abl: extra builds with compile-time switches (WG_BUILDS="name:-DX=1,-DY=2 ...", WG_SWEEP names) timed beside the default; full: + tsc, the whole suite with SA_REQUIRE_CUDA=1 and verify --backend cuda; final: full + compute-sanitizer
#   memcheck over check.mjs --quick with the Hopper kernel forced, and all benchmarks; ncu: profile one prefill call
set -u
OUT=${OUT:-/tmp/sa_out}; mkdir -p "$OUT"
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
tar -xJf .gpu/node_modules.tar.xz
# WG_PIN_QS=1: build the committed quest_select.cu (.gpu/qs_head.cu) when another change to it is in progress
[[ ${WG_PIN_QS:-0} == 1 ]] && cp .gpu/qs_head.cu cuda/quest_select.cu
rm -rf build  # a warm machine keeps build/ from the last call; its header dependencies proved unreliable
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv; date -u;
  time node node_modules/cmake-js/bin/cmake-js compile --CDCMAKE_CUDA_ARCHITECTURES=90a ; } > "$OUT/build.log" 2>&1 \
  || { tail -60 "$OUT/build.log"; exit 1; }
head -2 "$OUT/build.log"; grep -E "^real" "$OUT/build.log"
export NO_COLOR=1
if [[ ${WG_SASS:-0} == 1 ]]; then  # opcode histogram of the bf16 D=128 kernel (instruction mix of the loop)
  cuobjdump -sass -fun '_ZN11select_attn4cuda14attn_wg_kernelI13__nv_bfloat16Li128EEEvNS_20PagedAttentionParamsENS0_8AttnPlanEPNS0_8DevErrorE' \
    build/Release/select_attn.node > "$OUT/wg128.sass" 2>&1
  echo "sass lines: $(wc -l < "$OUT/wg128.sass")"
  grep -oE "^ +/\*[0-9a-f]{4}\*/ +[@!A-Z0-9_.]+( [A-Z0-9_.]+)?" "$OUT/wg128.sass" | awk '{o=$2; if (o ~ /^@/) o=$3; sub(/\..*/, "", o); print o}' \
    | sort | uniq -c | sort -rn | head -25 | tr '\n' ' '; echo
fi
if [[ ${1:-} == ncu ]]; then  # profile one chunk call of the prefill benchmark (bench.mjs --only=ncu: the 2048 queries over 8192 keys chunk)
  timeout 300 ncu --clock-control none -k regex:attn_wg --launch-count 1 --section SpeedOfLight \
    --section WarpStateStats --section SchedulerStats --section Occupancy --section MemoryWorkloadAnalysis \
    --section ComputeWorkloadAnalysis --section LaunchStats --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" node cuda/tools/bench.mjs /tmp/pf.json --only=ncu > "$OUT/ncu.txt" 2>&1
  echo "ncu rc $?"; grep -vE "^==PROF==|^\s*$|----" "$OUT/ncu.txt" | grep -E "  [A-Z]|stalled" | grep -vE "stalled.* 0(\.0+)?$" | cut -c1-130 | head -140
  exit 0
fi
if [[ ${1:-} == abl ]]; then  # builds with compile-time switches (WG_BUILDS="name:flags ..."), their sweeps (WG_SWEEP names) and prefill times
  for v in ${WG_BUILDS:-}; do
    name=${v%%:*}; flags=${v#*:}; flags=${flags//,/ }
    ( node node_modules/cmake-js/bin/cmake-js compile -O build_$name --CDCMAKE_CUDA_ARCHITECTURES=90a "--CDCMAKE_CUDA_FLAGS=$flags" > "$OUT/build_$name.log" 2>&1
      echo "build $name ($flags) rc $?" ) &
  done; wait
  for name in ${WG_SWEEP:-}; do
    a=$PWD/build_$name/Release/select_attn.node; [[ $name == default ]] && a=$PWD/build/Release/select_attn.node
    SA_ADDON=$a SA_CUDA_WG=1 SA_REQUIRE_CUDA=1 timeout 200 node node_modules/vitest/vitest.mjs run experiments/1_paged_attention > "$OUT/vitest_$name.log" 2>&1
    echo "vitest paged_attention ($name, SA_CUDA_WG=1) rc $?: $(grep -E 'Tests  ' "$OUT/vitest_$name.log")"; grep -E "FAIL|AssertionError" "$OUT/vitest_$name.log" | head -8
    SA_ADDON=$a SA_CUDA_WG=1 timeout 120 node cuda/tools/check.mjs --quick > "$OUT/check_$name.log" 2>&1
    echo "check.mjs ($name, SA_CUDA_WG=1): $(grep -E 'cuda check:' "$OUT/check_$name.log")"; grep FAIL "$OUT/check_$name.log" | head -8
    cuobjdump -sass $a 2>/dev/null | awk '/Function : .*attn_wg_kernel/{f=$0} /STL|LDL/{if(f!="") c[f]++} END{for(k in c) print "local-memory ops", c[k], k}' | cut -c1-160
  done
  for rep in 1 2; do for v in default ${WG_BUILDS:-}; do name=${v%%:*}
    a=$PWD/build/Release/select_attn.node; [[ $name != default ]] && a=$PWD/build_$name/Release/select_attn.node
    SA_ADDON=$a timeout 60 node cuda/tools/bench.mjs /tmp/pf.json --only=prefill 2>&1 | grep -E "prefill" | sed "s/^/$name: /"
  done; done
  exit 0
fi
if [[ ${1:-} == final ]]; then  # the forced sweep only; the full suite below runs the default path
  SA_CUDA_WG=1 SA_REQUIRE_CUDA=1 timeout 200 node node_modules/vitest/vitest.mjs run experiments/1_paged_attention > "$OUT/vitest_pa_1.log" 2>&1
  echo "vitest paged_attention (SA_CUDA_WG=1) rc $?: $(grep -E 'Tests  ' "$OUT/vitest_pa_1.log")"
else
  for wg in 1 default; do
    if [[ $wg == 1 ]]; then export SA_CUDA_WG=1; else unset SA_CUDA_WG; fi
    SA_REQUIRE_CUDA=1 timeout 200 node node_modules/vitest/vitest.mjs run experiments/1_paged_attention > "$OUT/vitest_pa_$wg.log" 2>&1
    echo "vitest paged_attention (SA_CUDA_WG=$wg) rc $?: $(grep -E 'Tests  ' "$OUT/vitest_pa_$wg.log")"
    grep -E "FAIL|AssertionError|expected" "$OUT/vitest_pa_$wg.log" | head -12
    timeout 120 node cuda/tools/check.mjs --quick > "$OUT/check_$wg.log" 2>&1
    echo "check.mjs (SA_CUDA_WG=$wg): $(grep -E 'cuda check' "$OUT/check_$wg.log")"; grep FAIL "$OUT/check_$wg.log" | head -8
  done
  unset SA_CUDA_WG
  for wg in 0 default 0 default; do
    if [[ $wg == 0 ]]; then export SA_CUDA_WG=0; else unset SA_CUDA_WG; fi
    timeout 60 node cuda/tools/bench.mjs /tmp/pf.json --only=prefill 2>&1 | grep -E "ceiling|prefill" | sed "s/^/SA_CUDA_WG=$wg: /"
  done
  unset SA_CUDA_WG
fi
if [[ ${1:-} == full || ${1:-} == final ]]; then
  node node_modules/typescript/bin/tsc -p tsconfig.json >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
  SA_REQUIRE_CUDA=1 timeout 300 node node_modules/vitest/vitest.mjs run > "$OUT/vitest.log" 2>&1; echo "full vitest rc $?"
  grep -E "Test Files|Tests  |Duration" "$OUT/vitest.log"; grep -E "FAIL" "$OUT/vitest.log" | head -10
  timeout 100 node dist/src/cli/main.js verify --backend cuda > "$OUT/verify.log" 2>&1; echo "verify rc $?"
  grep -E "^FAIL|passed|skipped" "$OUT/verify.log" | head -10
fi
if [[ ${1:-} == final ]]; then  # + memcheck with the Hopper kernel forced, and every benchmark
  SA_CUDA_WG=1 timeout 200 compute-sanitizer --tool memcheck --print-limit 20 node cuda/tools/check.mjs --quick > "$OUT/sanitizer.log" 2>&1
  echo "sanitizer (SA_CUDA_WG=1) rc $?"; grep -E "ERROR SUMMARY|cuda check|Invalid|FAIL" "$OUT/sanitizer.log" | head -6
  timeout 150 node cuda/tools/bench.mjs "$OUT/bench_final.json" 2>&1 | tee "$OUT/bench_final.log" | grep -v wrote | head -40
fi
