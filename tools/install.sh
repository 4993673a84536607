#!/usr/bin/env bash
# Install napari-torchscope into .venv at the repository root. Safe to run again: every step
# checks what is already there and skips itself.
#
# Usage: bash tools/install.sh [all|test]
#   all   napari with PyQt6 and the package (default; what tools/demo.sh needs)
#   test  the above plus pytest, pytest-qt, pytest-xvfb, build (what tools/test.sh needs)
#
# Steps:
#   1. System packages for a headless X server (xvfb, xauth, libxcb-icccm4, libxcb-keysyms1,
#      libxcb-xinerama0): installed with apt-get when missing and running as root on
#      Debian/Ubuntu; otherwise a message says what to install. TORCHSCOPE_SKIP_APT=1 skips this.
#   2. .venv created with "${PYTHON:-python3} -m venv" when missing (Python >= 3.11).
#   3. torch at the version pinned in tools/constraints.txt, before anything else, so that
#      pip never pulls a newer CUDA build from PyPI. A torch of that version that is already
#      installed (e.g. a CUDA build you installed by hand) is kept.
#   4. pip install -c tools/constraints.txt -e ".[EXTRA]". Skipped when pyproject.toml and
#      tools/constraints.txt have not changed since the last successful run for this EXTRA;
#      TORCHSCOPE_REINSTALL=1 forces it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[install] %s\n' "$*"; }
warn() { printf '[install] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[install] ERROR: %s\n' "$*" >&2
    exit 1
}

EXTRA="${1:-all}"
case "$EXTRA" in
all | test) ;;
*) die "unknown extra '$EXTRA': use 'all' (napari + the package) or 'test' (also the test tools)" ;;
esac

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
CONSTRAINTS="$ROOT/tools/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
T0=$SECONDS

# --- 1. system packages -------------------------------------------------------------------
APT_PACKAGES=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0)
if [[ "${TORCHSCOPE_SKIP_APT:-0}" == 1 ]]; then
    log "TORCHSCOPE_SKIP_APT=1: not checking system packages"
elif ! command -v dpkg-query >/dev/null 2>&1; then
    log "not a Debian/Ubuntu system: skipping system packages. Without a screen, napari needs an"
    log "X server such as Xvfb (tests use pytest-xvfb; tools/demo.sh uses xvfb-run)."
else
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "system packages present: ${APT_PACKAGES[*]}"
    elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q || die "apt-get update failed (no network to the Debian mirrors?)"
        apt-get install -y -q "${missing[@]}" || die "apt-get install ${missing[*]} failed"
    else
        warn "missing system packages: ${missing[*]}"
        warn "not running as root, so not installing them. napari without a screen (the tests,"
        warn "tools/demo.sh --screenshot) needs them:  sudo apt-get install -y ${missing[*]}"
    fi
fi

# --- 2. virtual environment ---------------------------------------------------------------
if [[ -e "$VENV" ]]; then
    [[ -x "$VPY" ]] || die "$VENV exists but has no bin/python; remove it (rm -rf .venv) and run again"
    "$VPY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
        die "$VENV has Python $("$VPY" -V 2>&1) (or a broken one); napari-torchscope needs >= 3.11. Remove it (rm -rf .venv) and run again"
    log "using $VENV ($("$VPY" -V 2>&1))"
else
    command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python >= 3.11 or set PYTHON=/path/to/python3.11"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$PYTHON is $("$PYTHON" -V 2>&1); napari-torchscope needs Python >= 3.11 (set PYTHON=...)"
    log "creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV" ||
        die "'$PYTHON -m venv' failed; on Debian/Ubuntu system Python: apt-get install python3-venv"
fi

# --- 3. torch, pinned, first --------------------------------------------------------------
TORCH_REQ="$(grep -E '^torch==' "$CONSTRAINTS" | head -n 1 | tr -d '[:space:]')"
[[ -n "$TORCH_REQ" ]] || die "no 'torch==VERSION' line in $CONSTRAINTS"
TORCH_VERSION="${TORCH_REQ#torch==}"
have_torch="$("$VPY" -c 'import importlib.metadata as m
try:
    print(m.version("torch"))
except m.PackageNotFoundError:
    pass' 2>/dev/null || true)"
if [[ "${have_torch%%+*}" == "$TORCH_VERSION" ]]; then
    log "torch $have_torch already installed"
else
    [[ -z "$have_torch" ]] || warn "replacing torch $have_torch with $TORCH_REQ (pinned in tools/constraints.txt)"
    log "installing $TORCH_REQ first (the CPU wheel where one is provided locally)"
    t=$SECONDS
    "$VPY" -m pip install "$TORCH_REQ" || die "pip install $TORCH_REQ failed"
    log "torch installed in $((SECONDS - t)) s"
fi

# --- 4. the package, editable, with the extra ---------------------------------------------
STAMP="$VENV/.torchscope-install-$EXTRA"
want_stamp="$(cat "$ROOT/pyproject.toml" "$CONSTRAINTS" | sha256sum | cut -d ' ' -f 1)"
if [[ "${TORCHSCOPE_REINSTALL:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] &&
    "$VPY" -c 'import torchscope' 2>/dev/null; then
    log "napari-torchscope[$EXTRA] up to date (pyproject.toml unchanged; TORCHSCOPE_REINSTALL=1 forces)"
else
    rm -f "$STAMP"
    log "pip install -c tools/constraints.txt -e \".[$EXTRA]\""
    t=$SECONDS
    "$VPY" -m pip install -c "$CONSTRAINTS" -e ".[$EXTRA]" || die "pip install -e \".[$EXTRA]\" failed"
    log "package and dependencies installed in $((SECONDS - t)) s"
    printf '%s\n' "$want_stamp" >"$STAMP"
fi

"$VPY" -c 'import torch, torchscope
print(f"[install] torchscope {torchscope.__version__}, torch {torch.__version__}, "
      f"CUDA available: {torch.cuda.is_available()}")' || die "the installed package does not import"
log "done in $((SECONDS - T0)) s; environment: $VENV"
