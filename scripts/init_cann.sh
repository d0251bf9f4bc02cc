#!/usr/bin/env bash
# Sets up the CANN toolkit for building and running the `ascend` backend (source it):
#   source scripts/init_cann.sh Ascend910B4
# Exports ASCEND_HOME_PATH (via CANN's set_env.sh), SOC_VERSION and SA_ASCEND_CORES (vector cores:
# 2 per AI core on Atlas A2), and the driver library path.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "init_cann.sh: source it (source scripts/init_cann.sh <SOC>), do not run it" >&2
  exit 1
fi
_sa_soc="${1:-}"
if [ -z "$_sa_soc" ]; then
  echo "usage: source scripts/init_cann.sh <SOC> (e.g. Ascend910B1..B4; npu-smi info shows the name)" >&2
  return 1
fi
# AI cores per SoC (the seed's num_cores_map); each has two vector cores the kernels use.
case "$_sa_soc" in
  Ascend910B1) _sa_aic=25 ;;
  Ascend910B2) _sa_aic=24 ;;
  Ascend910B3|Ascend910B4) _sa_aic=20 ;;
  *) echo "init_cann.sh: unknown SoC '$_sa_soc' (supported: Ascend910B1..B4)" >&2; return 1 ;;
esac
_sa_toolkit="${ASCEND_TOOLKIT_HOME:-/usr/local/Ascend/ascend-toolkit/latest}"
if [ ! -f "$_sa_toolkit/../set_env.sh" ] && [ ! -f "$_sa_toolkit/set_env.sh" ]; then
  echo "init_cann.sh: no CANN toolkit at $_sa_toolkit (set ASCEND_TOOLKIT_HOME)" >&2
  return 1
fi
if [ -f "$_sa_toolkit/set_env.sh" ]; then source "$_sa_toolkit/set_env.sh"; else source "$_sa_toolkit/../set_env.sh"; fi
export ASCEND_HOME_PATH="${ASCEND_HOME_PATH:-$_sa_toolkit}"
export LD_LIBRARY_PATH="/usr/local/Ascend/driver/lib64:/usr/local/Ascend/driver/lib64/driver:${LD_LIBRARY_PATH:-}"
export SOC_VERSION="$_sa_soc"
export SA_ASCEND_CORES=$((2 * _sa_aic))
echo "CANN: ASCEND_HOME_PATH=$ASCEND_HOME_PATH SOC_VERSION=$SOC_VERSION SA_ASCEND_CORES=$SA_ASCEND_CORES"
unset _sa_soc _sa_aic _sa_toolkit
