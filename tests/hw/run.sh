#!/usr/bin/env bash
# The hardware suite: remoteio's gpiod and lgpio backends against the kernel's gpio-sim
# driver, inside a QEMU VM (tests/hw/README.md). CI runs it as its own step
# after the main suite, with the venv of .ci/run active:
#
#     bash tests/hw/run.sh                       # Python: $VIRTUAL_ENV, else ./.venv
#     bash tests/hw/run.sh /path/to/venv/bin/python -- -k blink -x
#
# Fails (non-zero) if the VM cannot be set up or boot (125), times out (124),
# or any test fails. Needs root and apt (see tests/hw/vm/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=tests/hw/vm/pick_python.sh
source tests/hw/vm/pick_python.sh   # PY, and the arguments after it
TIMEOUT=${REMOTEIO_HW_TIMEOUT:-600}

elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$EPOCHREALTIME"; }
step() { printf '\n--- hw: %s ---\n' "$*"; }

step "python $PY"
"$PY" -c 'import remoteio, gpiozero, pytest, psutil, pytest_timeout' || {
    echo "run.sh: $PY lacks the test dependencies (pip install -e '.[test]')" >&2; exit 2; }
# find_spec, not import: `import lgpio` leaves its FIFO .lgd-nfy0 in the cwd
if ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("lgpio") is None)'; then
    echo "lgpio is not installed in this environment: installing it (the 'lgpio' extra)"
    "$PY" -m pip install --quiet 'lgpio>=0.2'
fi
if ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("gpiod") is None)'; then
    echo "gpiod is not installed in this environment: installing it (the 'gpiod' extra)"
    "$PY" -m pip install --quiet 'gpiod>=2.1'
fi
"$PY" -c 'import sys; from importlib.metadata import version as v
print("python", sys.version.split()[0], "lgpio", v("lgpio"), "gpiod", v("gpiod"), "gpiozero", v("gpiozero"))'

step "unit tests of the VM harness (host)"
"$PY" -m pytest -c tests/hw/pytest.ini -q tests/hw/vm/test_vmconsole.py

step "VM setup (cached after the first run)"
t0=$EPOCHREALTIME
python3 tests/hw/vm/vm.py setup
echo "hw: setup took $(elapsed "$t0")"

step "hardware suite inside the VM (timeout ${TIMEOUT} s)"
t0=$EPOCHREALTIME
set +e
python3 tests/hw/vm/vm.py run --timeout "$TIMEOUT" --env REMOTEIO_HW_REQUIRE_LGPIO=1 -- \
    "$PY" -m pytest -c tests/hw/pytest.ini tests/hw --durations=10 "$@"
rc=$?
set -e
echo "hw: VM run took $(elapsed "$t0") (boot and total as reported by vm.py above), exit $rc"
case $rc in
    0) ;;
    124) echo "hw: FAILED: the VM run timed out" >&2 ;;
    125) echo "hw: FAILED: the VM could not run the suite (setup, boot or guest failure)" >&2 ;;
    *) echo "hw: FAILED: the hardware suite failed (exit $rc)" >&2 ;;
esac
exit $rc
