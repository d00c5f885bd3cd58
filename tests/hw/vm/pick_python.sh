# shellcheck shell=bash
# Sourced (with no arguments, from the repository root) by tests/hw/run.sh and
# tests/net/run.sh: takes the Python to use from their arguments ("$1" unless
# it is "--"), else $VIRTUAL_ENV's, else ./.venv's; drops a "--" after it; sets
# PY to its absolute path (the guest sees the same paths), the venv's symlink
# kept unresolved.
PY=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then PY=$1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
if [ -z "$PY" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then PY="$VIRTUAL_ENV/bin/python"
    elif [ -x .venv/bin/python ]; then PY="$(pwd)/.venv/bin/python"
    else echo "run.sh: give the Python to use (no \$VIRTUAL_ENV, no .venv)" >&2; exit 2
    fi
fi
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
