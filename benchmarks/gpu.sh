#!/usr/bin/env bash
# The GPU check in one call: the test suite on cupy, torch-cuda and jax-gpu, then the benchmarks on the GPU
# (time, torch.cuda.max_memory_allocated, JAX memory_analysis), written to benchmarks/results/<gpu>.md.
#
#   benchmarks/gpu.sh --fetch-wheels   here, with network: fill benchmarks/wheels/ (git-ignored) with the pure-Python
#                                      wheels the device machine lacks (array-api-compat/extra/strict)
#   benchmarks/gpu.sh                  on the device machine (device tool: carry ["benchmarks/wheels"],
#                                      timeout_s 600); with $OUT set, logs and the results file land there too
#   benchmarks/gpu.sh --cpu            the same steps on CPU: POLYLOSS_BACKENDS numpy then torch, benchmarks --quick
#
# Every step has its own time limit (the whole run stays under 8 minutes); a step that fails or times out is
# reported and the next one still runs. Environment: PYTHON (default python3), POLYLOSS_GPU_TESTS (the pytest
# arguments, default "tests --ignore=tests/parity"), POLYLOSS_GPU_WORKERS (pytest-xdist workers, default 8).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=benchmarks/wheels
PURE=(array-api-compat array-api-extra array-api-strict)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation py \
        --platform any -d "$WHEELS" "${PURE[@]}"
fi
MODE=gpu
[[ "${1:-}" == "--cpu" ]] && MODE=cpu

SITE=$(mktemp -d /tmp/polyloss-site.XXXXXX)
LOGS=${OUT:-$(mktemp -d /tmp/polyloss-gpu-logs.XXXXXX)}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl \
        || { echo "gpu.sh: installing $WHEELS/*.whl failed"; exit 1; }
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX would take 75% of the GPU in every pytest worker
"$PY" -c "import array_api_compat, array_api_extra, polyloss; print('polyloss imports with array-api-compat',
array_api_compat.__version__)" || { echo "gpu.sh: polyloss does not import (carry $WHEELS?)"; exit 1; }

SUMMARY=()
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $LOGS/NAME.log, record the exit status
    local name=$1 limit=$2 rc
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout -k 10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    tail -n 15 "$LOGS/$name.log"
    [[ $rc == 124 || $rc == 137 ]] && rc="$rc (timed out)"
    SUMMARY+=("$name: exit $rc in $((SECONDS - t0)) s")
}

read -r -a TESTS <<<"${POLYLOSS_GPU_TESTS:-tests --ignore=tests/parity}"
WORKERS=${POLYLOSS_GPU_WORKERS:-8}
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && [[ $WORKERS -gt 1 ]] && XDIST=(-n "$WORKERS")
if [[ $MODE == gpu ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | tr 'A-Z ' 'a-z-')
    NAME=${NAME:-gpu}
    step tests-cupy 90 env POLYLOSS_BACKENDS=cupy "$PY" -m pytest "${TESTS[@]}" -q -p no:cacheprovider "${XDIST[@]}"
    step tests-torch-cuda 110 env POLYLOSS_BACKENDS=torch-cuda "$PY" -m pytest "${TESTS[@]}" -q -p no:cacheprovider \
        "${XDIST[@]}"
    step tests-jax-gpu 130 env POLYLOSS_BACKENDS=jax-gpu "$PY" -m pytest "${TESTS[@]}" -q -p no:cacheprovider \
        "${XDIST[@]}"
    step bench 150 "$PY" benchmarks/run.py --name "$NAME" --device cuda --runs 2 --only pixelwise,region,lovasz,volume
else
    NAME=cpu-quick
    step tests-numpy 240 env POLYLOSS_BACKENDS=numpy "$PY" -m pytest "${TESTS[@]}" -q -p no:cacheprovider \
        "${XDIST[@]}"
    step tests-torch 240 env POLYLOSS_BACKENDS=torch "$PY" -m pytest "${TESTS[@]}" -q -p no:cacheprovider "${XDIST[@]}"
    step bench 240 "$PY" benchmarks/run.py --name "$NAME" --quick --runs 2 --only volume
fi
[[ -n "${OUT:-}" && -f benchmarks/results/$NAME.md ]] && cp "benchmarks/results/$NAME.md" "$OUT/"
echo "=== summary ($MODE; logs in $LOGS)"
printf '%s\n' "${SUMMARY[@]}"
rm -rf "$SITE"
