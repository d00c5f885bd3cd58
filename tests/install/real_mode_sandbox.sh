#!/usr/bin/env bash
# Run install.sh WITHOUT --root -- the path a Raspberry Pi takes -- in a private
# mount namespace, so that the machine is not touched:
#   /etc  a private copy (users and groups are created in it, with the real useradd)
#   /opt  an overlay whose writes go to a tmpfs
#   /var  an empty tmpfs
#   /run  a tmpfs with /run/systemd/system (so the installer sees "systemd")
# systemctl, journalctl and udevadm are fakes that log their calls and keep a
# little state (enabled/active); nothing is started (unless SANDBOX_SYSTEMCTL
# names a stand-in that runs the service: tests/install/notify_systemctl.py). Everything vanishes with the
# namespace. It refuses to run the command unless every one of those mounts is
# in place (a marker file that exists only in the private copies).
#
# Not part of pytest (the tests go through --root only); a manual check:
#   sudo bash tests/install/real_mode_sandbox.sh bash install.sh --from /path/to/src
#   sudo bash tests/install/real_mode_sandbox.sh --script FILE   (a bash script run inside)
# Needs root, unshare (util-linux), tmpfs and overlayfs mounts.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "real_mode_sandbox.sh: needs root" >&2
	exit 77
fi

if [[ ${1:-} != --inside ]]; then
	work=$(mktemp -d /tmp/remoteio-sandbox.XXXXXX)
	status=0
	unshare --mount --propagation private -- bash "$0" --inside "$work" "$@" || status=$?
	rmdir -- "$work" 2>/dev/null || true
	exit "$status"
fi
shift
work=$1
shift

mount -t tmpfs tmpfs "$work"
mkdir "$work/etc" "$work/opt-upper" "$work/opt-work" "$work/bin" "$work/state"
cp -a /etc/. "$work/etc/"
: >"$work/etc/.remoteio-sandbox"
mount --bind "$work/etc" /etc
mount -t overlay overlay -o "lowerdir=/opt,upperdir=$work/opt-upper,workdir=$work/opt-work" /opt
: >/opt/.remoteio-sandbox
mount -t tmpfs tmpfs /var
mkdir -p /var/lib /var/log /var/tmp /var/cache
: >/var/.remoteio-sandbox
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
: >/run/.remoteio-sandbox
for m in /etc /opt /var /run; do
	[[ -e $m/.remoteio-sandbox ]] || {
		echo "real_mode_sandbox.sh: $m is not the private copy: refusing to go on" >&2
		exit 1
	}
done

export SANDBOX_LOG=$work/calls SANDBOX_STATE=$work/state
: >"$SANDBOX_LOG"
cat >"$work/bin/systemctl" <<'EOF'
#!/usr/bin/env bash
# fake systemctl: logs, keeps enabled/active as files
echo "systemctl $*" >>"$SANDBOX_LOG"
args=" $* "
case $args in
*" is-enabled "*) [[ -e $SANDBOX_STATE/enabled ]] ;;
*" is-active "*) [[ -e $SANDBOX_STATE/active ]] ;;
*" disable "*)
	rm -f "$SANDBOX_STATE/enabled"
	[[ $args != *" --now "* ]] || rm -f "$SANDBOX_STATE/active"
	;;
*" enable "*)
	touch "$SANDBOX_STATE/enabled"
	[[ $args != *" --now "* ]] || touch "$SANDBOX_STATE/active"
	;;
*" start "* | *" restart "*)
	# SANDBOX_FAIL_START=1: a service that dies at once
	[[ ${SANDBOX_FAIL_START:-0} == 1 ]] || touch "$SANDBOX_STATE/active"
	;;
*" stop "*) rm -f "$SANDBOX_STATE/active" ;;
*" show "*) echo 0 ;;
*" list-unit-files "*) [[ -e /etc/systemd/system/remoteio.service ]] && echo "remoteio.service enabled" ;;
*) : ;;
esac
EOF
# SANDBOX_SYSTEMCTL=FILE: a Python stand-in that really runs the service instead
# (tests/install/notify_systemctl.py: start waits for READY=1, as Type=notify does)
if [[ -n ${SANDBOX_SYSTEMCTL:-} ]]; then
	printf '#!/bin/sh\nexec %q %q "$@"\n' "${SANDBOX_PYTHON:-python3}" "$(realpath -- "$SANDBOX_SYSTEMCTL")" >"$work/bin/systemctl"
fi
# shellcheck disable=SC2016  # $* and $SANDBOX_LOG expand in the fakes, not here
printf '#!/bin/sh\necho "journalctl $*" >>"$SANDBOX_LOG"\n' >"$work/bin/journalctl"
# shellcheck disable=SC2016
printf '#!/bin/sh\necho "udevadm $*" >>"$SANDBOX_LOG"\n' >"$work/bin/udevadm"
# shellcheck disable=SC2016
printf '#!/bin/sh\necho "sleep $*" >>"$SANDBOX_LOG"\n' >"$work/bin/sleep"
chmod 755 "$work/bin/"*
export PATH="$work/bin:$PATH"

if [[ ${1:-} == --script ]]; then
	bash "$2"
else
	"$@"
fi
