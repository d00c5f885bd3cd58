#!/usr/bin/env bash
# remoteio daemon installer: not written yet (see issue "The remoteio command
# and a one-line daemon install"). Until then it changes nothing and says so.
set -euo pipefail
echo "install.sh: the daemon installer is not available yet." >&2
echo "For now: pip install 'remoteio[pi]' and run 'remoteio serve' (see README.md)." >&2
exit 1
