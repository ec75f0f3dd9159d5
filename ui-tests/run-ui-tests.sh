#!/usr/bin/env bash
# Browser tests: start `jupyter lab` on 127.0.0.1 (random free port, random token), run the
# Galata tests against it in Debian's headless chromium, then stop the server.
#   ui-tests/run-ui-tests.sh [playwright test args...]
# PYTHON: the Python that has jupyterlab and viscoder_jupyter (default: the repo's .venv).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
PY="${PYTHON:-$REPO/.venv/bin/python}"

export VISCODER_LAB_PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export VISCODER_LAB_TOKEN="$("$PY" -c 'import secrets; print(secrets.token_hex(24))')"
export VISCODER_LAB_ROOT="$(mktemp -d -t viscoder-ui-XXXXXX)"
# Every kernel the server starts uses the replay backend: deterministic replies, no model.
export VISCODER_BACKEND=replay
export VISCODER_REPLAY="$HERE/replies/fix.jsonl"
export VISCODER_UI_REPLIES="$HERE/replies"
export JUPYTER_CONFIG_DIR="$VISCODER_LAB_ROOT/.jupyter-config"  # no user config leaks in
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
LOG="$VISCODER_LAB_ROOT/jupyter-lab.log"

# tests/real-engine.spec.ts runs the offline GGUF (Qwen2.5-Coder-0.5B, Q4_K_M) on llama.cpp. Its path,
# once, when llama-cpp-python and the model's PyPI parts are installed (the first time this joins the
# ~490 MB file from the parts; later it is at hand). Without it that test is skipped, or fails when
# VISCODER_REQUIRE_OFFLINE_MODEL=1.
if [ -z "${VISCODER_OFFLINE_GGUF:-}" ]; then
  if ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llama_cpp") is None)' 2>/dev/null; then
    echo "no offline GGUF for the real-engine test: llama_cpp is not installed (pip install llama-cpp-python)"
  elif VISCODER_OFFLINE_GGUF="$("$PY" -m viscoder_jupyter.tools.offline_model --gguf --print-path 2>"$VISCODER_LAB_ROOT/offline-model.log")"; then
    echo "offline GGUF for the real-engine test: $VISCODER_OFFLINE_GGUF"
  else
    VISCODER_OFFLINE_GGUF=""
    echo "no offline GGUF for the real-engine test: $(tail -n 3 "$VISCODER_LAB_ROOT/offline-model.log" | tr '\n' ' ')"
  fi
fi
export VISCODER_OFFLINE_GGUF

"$PY" -m jupyterlab --config "$HERE/jupyter_server_test_config.py" >"$LOG" 2>&1 &
LAB_PID=$!
cleanup() {
  status=$?
  kill -TERM "$LAB_PID" 2>/dev/null || true
  wait "$LAB_PID" 2>/dev/null || true
  mkdir -p "$HERE/test-results"
  cp "$LOG" "$HERE/test-results/jupyter-lab.log" 2>/dev/null || true
  rm -rf "$VISCODER_LAB_ROOT"
  exit $status
}
trap cleanup EXIT INT TERM

"$PY" - <<'PYEOF'
import os, sys, time, urllib.request
url = f"http://127.0.0.1:{os.environ['VISCODER_LAB_PORT']}/api/status"
request = urllib.request.Request(url, headers={"Authorization": f"token {os.environ['VISCODER_LAB_TOKEN']}"})
for _ in range(240):
    try:
        urllib.request.urlopen(request, timeout=2).read()
        sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit("jupyter lab did not start within 2 minutes")
PYEOF
echo "jupyter lab is up on 127.0.0.1:$VISCODER_LAB_PORT (pid $LAB_PID)"

cd "$HERE"
npx playwright test "$@"
