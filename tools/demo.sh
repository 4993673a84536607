#!/usr/bin/env bash
# Install (tools/install.sh all), then open napari with every torchscope widget docked and sample
# data loaded. Arguments go to torchscope-demo, e.g.
#
#   bash tools/demo.sh                          # a napari window
#   bash tools/demo.sh --screenshot demo.png    # render to a file and exit (works without a screen)
#
# Without a display ($DISPLAY / $WAYLAND_DISPLAY unset) it runs under xvfb-run, a virtual X server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/tools/install.sh" all

DEMO="$ROOT/.venv/bin/torchscope-demo"
[[ -x "$DEMO" ]] || {
    echo "[demo] ERROR: $DEMO not found after install" >&2
    exit 1
}

if [[ -n "${DISPLAY:-}" || -n "${WAYLAND_DISPLAY:-}" ]]; then
    exec "$DEMO" "$@"
fi

if ! command -v xvfb-run >/dev/null 2>&1; then
    echo "[demo] ERROR: no display and no xvfb-run. Install Xvfb (as root: bash tools/install.sh," >&2
    echo "[demo]        or apt-get install -y xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0)" >&2
    exit 1
fi
case " $* " in
*" --screenshot"*) ;;
*) echo "[demo] no display: running under Xvfb, so the window is invisible. Use" \
    "'bash tools/demo.sh --screenshot out.png' to render to a file and exit." >&2 ;;
esac
echo "[demo] no display: running under xvfb-run" >&2
exec xvfb-run -a -s "-screen 0 1920x1080x24 -nolisten tcp" "$DEMO" "$@"
