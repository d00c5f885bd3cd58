#!/usr/bin/env bash
# The network-fault suite: partitions, loss, delay, bandwidth, restarts, in
# network namespaces inside the VM of tests/hw (tests/net/README.md; this
# machine's kernel has no sch_netem, the VM's has). CI runs it as its own step:
#
#     bash tests/net/run.sh                      # Python: $VIRTUAL_ENV, else ./.venv
#     bash tests/net/run.sh /path/to/python -- -k partition -x
#     REMOTEIO_CHAOS_S=600 REMOTEIO_CHAOS_SEED=42 bash tests/net/run.sh -- -k chaos
#
# Exit codes as tests/hw/run.sh: 125 VM failed, 124 timeout, else pytest's.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=tests/hw/vm/pick_python.sh
source tests/hw/vm/pick_python.sh   # PY, and the arguments after it
"$PY" -c 'import remoteio, pytest, pytest_timeout' || {
    echo "run.sh: $PY lacks the test dependencies (pip install -e '.[test]')" >&2; exit 2; }
TIMEOUT=${REMOTEIO_NET_TIMEOUT:-$((780 + ${REMOTEIO_CHAOS_S:-120}))}

printf '\n--- net: VM setup (cached after the first run; iproute2, nftables and the net modules) ---\n'
python3 tests/hw/vm/vm.py setup
printf '\n--- net: the suite inside the VM (timeout %s s) ---\n' "$TIMEOUT"
set +e
python3 tests/hw/vm/vm.py run --timeout "$TIMEOUT" --env REMOTEIO_NET_REQUIRE=1 \
    --env REMOTEIO_CHAOS_S="${REMOTEIO_CHAOS_S:-}" --env REMOTEIO_CHAOS_SEED="${REMOTEIO_CHAOS_SEED:-}" -- \
    "$PY" -m pytest -c tests/net/pytest.ini tests/net -s --durations=15 \
    --timeout "$((300 + ${REMOTEIO_CHAOS_S:-120}))" "$@"
rc=$?
set -e
case $rc in
    0) ;;
    124) echo "net: FAILED: the VM run timed out" >&2 ;;
    125) echo "net: FAILED: the VM could not run the suite" >&2 ;;
    *) echo "net: FAILED: the network-fault suite failed (exit $rc)" >&2 ;;
esac
exit $rc
