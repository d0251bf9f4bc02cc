#!/usr/bin/env bash
# Builds the addon with the `ascend` backend (the Ascend C kernels compiled by CANN, see
# ascendc/ascend.cmake) and checks that the backend is listed. Run after `source scripts/init_cann.sh <SOC>`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ASCEND_HOME_PATH:-}" ] || [ -z "${SOC_VERSION:-}" ]; then
  echo "build_kernels.sh: run 'source scripts/init_cann.sh <SOC>' first" >&2
  exit 1
fi
npx cmake-js compile
npx tsc -p tsconfig.json
node -e '
  const a = require("./build/Release/select_attn.node");
  const b = a.listBackends().find((x) => x.name === "ascend");
  console.log(JSON.stringify(b));
  if (!b || !b.compiled) { console.error("ascend backend not compiled"); process.exit(1); }
'
