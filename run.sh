#!/usr/bin/env bash
# anomaly_inspection: set everything up (idempotent) and run the main job or the tests.
#
#   ./run.sh mission [ARGS...]   set up, then run the simulated UAV pipeline inspection -> report
#   ./run.sh test [PYTEST ARGS]  set up, then run the test suite
#   ./run.sh setup               set up only
#
# Setup = Debian/Ubuntu system packages (apt-get), a Python 3.11 virtual environment in .venv/,
# the pinned Python stack (requirements.txt) and our ROS 2 package built into the venv.
# Each step is skipped when what it produced is already up to date, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
log() { printf '\033[1m[run.sh]\033[0m %s\n' "$*"; }

APT_PACKAGES=(libosmesa6 libusb-1.0-0 libgl1 libglib2.0-0 libgomp1 build-essential cmake python3-dev python3-venv git)

system_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing system packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

find_python() {
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$c"; return 0
    fi
  done
  echo "error: Python 3.11 is required (python3.11 not found)" >&2
  return 1
}

python_env() {
  if [ ! -x "$PY" ]; then
    local base; base=$(find_python)
    log "creating $VENV with $($base --version)"
    "$base" -m venv "$VENV"
  fi
  local want; want=$(sha256sum requirements.txt | cut -c1-16)
  if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the Python stack (first time: a few minutes, torch is large)"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -r requirements.txt 2>&1 | grep -v "is ignored" || true
    "$PY" -m pip check >/dev/null 2>&1 || true
    "$PY" -c "import torch, cv2, open3d, mujoco, rclpy, safetensors" \
      || { echo "error: the Python stack did not install correctly" >&2; exit 1; }
    echo "$want" > "$VENV/.requirements-stamp"
  fi
}

build_package() {
  local want
  want=$(git ls-files -z -- msg src scripts config launch CMakeLists.txt package.xml pyproject.toml 2>/dev/null \
           | xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat "$VENV/.package-stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/anomaly-inspection" ]; then
    log "building and installing the anomaly_inspection ROS 2 package into the venv"
    # a failed build must fail here: with an older build still in the venv the import check
    # below would pass and the stamp would mark the old build as up to date
    local built=0
    "$PY" -m pip install -q --no-build-isolation --no-deps . > "$VENV/.package-build.log" 2>&1 || built=$?
    grep -v "is ignored" "$VENV/.package-build.log" || true
    if [ "$built" -ne 0 ] || ! "$PY" -c "from anomaly_inspection.msg import AnomalyResult, DefectArray"; then
      echo "error: building the package failed (log: $VENV/.package-build.log; rerun: $PY -m pip install -v --no-build-isolation --no-deps .)" >&2
      exit 1
    fi
    echo "$want" > "$VENV/.package-stamp"
  fi
}

setup() {
  system_packages
  python_env
  build_package
  export MUJOCO_GL="${MUJOCO_GL:-osmesa}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-osmesa}"
  export YOLO_OFFLINE=1 HF_HUB_OFFLINE=1
}

cmd="${1:-mission}"
shift || true
case "$cmd" in
  setup) setup; log "ready: source $VENV/bin/activate" ;;
  mission)
    setup
    exec "$VENV/bin/anomaly-inspection" mission uav "$@" ;;
  test)
    setup
    exec "$PY" -m pytest "$@" ;;
  *) echo "usage: $0 {mission|test|setup} [ARGS...]" >&2; exit 2 ;;
esac
