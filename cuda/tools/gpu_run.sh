#!/bin/bash
# One session on the GPU machine (see ../shared/GPU.md): unpack node, build the addon for sm_90a,
# run the cuda check, the benchmarks and the torch peers, write everything under $OUT.
# Usage (device tool, carry .gpu): bash cuda/tools/gpu_run.sh [check|bench|peers|all] [peer flags]
set -u
OUT=${OUT:-/tmp/sa_out}; mkdir -p "$OUT"
what=${1:-all}; shift || true
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
tar -xJf .gpu/node_modules.tar.xz
{ nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv; time node node_modules/cmake-js/bin/cmake-js compile --CDCMAKE_CUDA_ARCHITECTURES=90a ; } > "$OUT/build.log" 2>&1 \
  || { tail -60 "$OUT/build.log"; exit 1; }
grep -E "^real" "$OUT/build.log"
if [[ $what == all || $what == check || $what == checkbench ]]; then
  timeout 420 node cuda/tools/check.mjs 2>&1 | tee "$OUT/check.log" | grep -E "FAIL|cuda check" | head -80
fi
if [[ $what == ncu ]]; then
  timeout 240 ncu --clock-control none -k regex:"attn_|quest_" --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats \
    node cuda/tools/bench.mjs /tmp/ncu.json --only=ncu > "$OUT/ncu.txt" 2>&1; echo "ncu rc $?"
  grep -E "^  [a-z_ ]*void|DRAM Throughput|Duration|Achieved Occupancy|Issued Warp|No Eligible|Compute \(SM\) Th" "$OUT/ncu.txt" | cut -c1-150 | head -80
fi
if [[ $what == diag ]]; then
  SA_BENCH_LAYOUT=HND timeout 200 node cuda/tools/bench.mjs "$OUT/hnd.json" --only=decode --quick 2>&1 | tee "$OUT/bench_hnd.log" | grep -v wrote
  timeout 200 node cuda/tools/bench.mjs "$OUT/sel.json" --only=sparse 2>&1 | tee "$OUT/bench_sel.log" | grep -v wrote
  timeout 240 ncu --clock-control none -k regex:"attn_tc|quest_select" --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats \
    node cuda/tools/bench.mjs /tmp/ncu.json --only=ncu > "$OUT/ncu.txt" 2>&1; echo "ncu rc $?"
  grep -E "attn_tc_kernel|quest_select_kernel|DRAM Throughput|Memory Throughput|Duration|Achieved Occupancy|Registers Per|Dynamic Shared|Block Limit|Issued Warp|No Eligible|Stall" "$OUT/ncu.txt" | cut -c1-150 | head -80
fi
if [[ $what == all || $what == bench || $what == checkbench ]]; then
  timeout 300 node cuda/tools/bench.mjs "$OUT/bench_ours.json" 2>&1 | tee "$OUT/bench.log"
fi
if [[ $what == all || $what == peers ]]; then
  PYTHONUNBUFFERED=1 timeout 400 python3 experiments/peers/peers.py "$OUT/bench_ours.json" "$OUT/bench_peers.json" "$@" > "$OUT/peers.log" 2>&1
  tail -5 "$OUT/peers.log"
  node cuda/tools/report.mjs "$OUT/bench_ours.json" "$OUT/bench_peers.json" | tee "$OUT/report.md"
fi
