#!/usr/bin/env bash
# remoteio daemon installer: serves this Raspberry Pi's GPIO pins over the
# network as a hardened systemd service. See docs/install.md (remoteio docs install).
#
#   sudo bash install.sh --from .                             (this checkout)
#   sudo bash install.sh --from dist/remoteio-3.0.0-py3-none-any.whl   (a wheel built from one)
#   sudo bash install.sh --from . --port 9000
#   sudo bash install.sh                  (remoteio >= 3 from PyPI, once it is published there)
#   sudo bash install.sh --help
#
# The installed program does the work it can (remoteio check-config --json reads
# the configuration, remoteio token writes the token, remoteio systemd-unit is the
# unit); Python itself is asked only about itself (version, venv support).
#
# Everything runs inside main(), called on the last line, so a download cut
# short part-way through runs nothing at all.
set -Eeuo pipefail

readonly SELF="install.sh"
readonly MARKER="installed by remoteio install.sh"

# What it creates (every path is prefixed by --root DIR, if given).
readonly OPT_DIR=/opt/remoteio
readonly VENV_DIR=/opt/remoteio/venv
readonly PREVIOUS_VENV=/opt/remoteio/venv.previous # during an update, until the new one is healthy
readonly RECORD=/opt/remoteio/install-record
readonly CONF_DIR=/etc/remoteio
readonly CONFIG=/etc/remoteio/remoteio.toml
readonly TOKEN=/etc/remoteio/token
readonly STATE_DIR=/var/lib/remoteio
readonly UNIT_NAME=remoteio.service
readonly UNIT=/etc/systemd/system/remoteio.service
readonly DROPIN_DIR=/etc/systemd/system/remoteio.service.d
readonly RT_DROPIN=/etc/systemd/system/remoteio.service.d/realtime.conf
readonly UDEV_RULE=/etc/udev/rules.d/60-remoteio-gpio.rules
readonly SVC_USER=remoteio
readonly SVC_GROUP=remoteio
readonly GPIO_GROUP=gpio
readonly NOLOGIN=/usr/sbin/nologin

readonly DEFAULT_HOST=0.0.0.0
readonly DEFAULT_PORT=8509
readonly DEFAULT_MODE=wait
readonly DEFAULT_REALTIME=50 # --realtime without a value

# Exit codes.
readonly EXIT_OK=0        # done (or nothing to do)
readonly EXIT_FAILED=1    # a step failed; the message says which
readonly EXIT_USAGE=2     # bad option
readonly EXIT_ENV=3       # cannot run here: not root, no systemd, no usable python3, bad --root
readonly EXIT_CONFLICT=4  # an option asks to change a config file edited by hand: nothing changed

usage() {
	cat <<'EOF'
remoteio installer: serve this Raspberry Pi's GPIO pins over the network as a
systemd service (user remoteio, venv in /opt/remoteio, config in /etc/remoteio).

usage:
  sudo bash install.sh --from PATH [OPTIONS]
  sudo bash install.sh [OPTIONS]        (from PyPI: remoteio 3 is not published there yet)

what to install:
  --from PATH      a local checkout, or a wheel built from one (python -m build,
                   then --from dist/remoteio-*.whl); installed as PATH[pi]
  --version X      remoteio==X from PyPI (3.0 or later; not published yet)
  (neither)        the latest remoteio >= 3 from PyPI, once published; until then
                   the installer says so and stops before changing anything
  --python PATH    the Python >= 3.9 to build the venv with (default
                   /usr/bin/python3, else python3 on PATH)

server settings (written to /etc/remoteio/remoteio.toml on first install):
  --port N         TCP port (default 8509)
  --host ADDR      address to listen on (default 0.0.0.0: every interface)
  --mode MODE      wait: tasks on a pin run in order; nowait: a new task cuts
                   the running one short (default wait)
  --realtime[=N]   run the pin workers under SCHED_FIFO at priority N (1-99,
                   default 50): realtime_priority = N in the config, and a unit
                   drop-in remoteio.service.d/realtime.conf that allows it
                   (RestrictRealtime=no, LimitRTPRIO=N); --realtime=0 undoes it
  --reset-config   replace a config file edited by hand with one built from
                   the options (the old one is kept as remoteio.toml.old)

actions:
  (none)           install, or repair an install: a second run with the same
                   options changes nothing
  --update         upgrade the package; keeps the config and token, and the
                   previous version until the new one is healthy (else rolls back)
  --uninstall      remove everything the installer created, and nothing else
  --keep-config    with --uninstall: keep /etc/remoteio (config and token)

how:
  --dry-run        print what would be done; change nothing
  --no-start       do not enable or start the service
  --root DIR       install into a staging root DIR: every path is prefixed by
                   DIR, the user and groups go to DIR/etc/{passwd,group,...}
                   (useradd --root), systemctl/udevadm/apt-get are not run
  -h, --help       this help

exit codes: 0 done, 1 a step failed, 2 usage error, 3 cannot run here (not root,
no systemd, no python3 >= 3.9 with venv), 4 an option would change a config
file edited by hand (nothing changed; see --reset-config).

examples:
  sudo bash install.sh --from .                      install this checkout
  sudo bash install.sh --from remoteio-3.0.0-py3-none-any.whl --port 9000
  sudo bash install.sh --update --from .             upgrade, keep config and token;
                                                     back to the old version if the new one fails
  sudo bash install.sh --uninstall
EOF
}

# ---- messages ------------------------------------------------------------------------
say() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$SELF" "$*" >&2; }
die() {
	local code=$1
	shift
	printf '%s: error: %s\n' "$SELF" "$*" >&2
	exit "$code"
}

CHANGES=()
# A change made (or, with --dry-run, one that would be made): "VERBed what".
change() {
	local msg=$1 verb rest
	CHANGES+=("$msg")
	if ((DRY_RUN)); then
		verb=${msg%% *} rest=${msg#* }
		case $verb in
		created | updated | removed | generated | enabled | upgraded) verb=${verb%d} ;;
		fixed | installed | started | restarted | added) verb=${verb%ed} ;;
		stopped) verb=stop ;;
		kept) verb=keep ;;
		esac
		info "would $verb $rest"
	else
		info "$msg"
	fi
}

# Run a command that changes the system (printed instead with --dry-run).
run() {
	if ((DRY_RUN)); then
		printf '    would run:'
		printf ' %q' "$@"
		printf '\n'
		return 0
	fi
	"$@"
}

TMPFILES=()
# shellcheck disable=SC2317  # cleanup and on_error are called by traps
cleanup() {
	local f
	for f in ${TMPFILES[@]+"${TMPFILES[@]}"}; do
		[[ -e $f ]] && rm -f -- "$f"
	done
	for f in ${TMPDIRS[@]+"${TMPDIRS[@]}"}; do
		[[ $f == "${TMPDIR:-/tmp}"/remoteio-install.* && -d $f ]] && rm -rf -- "${f:?}"
	done
	return 0
}

# shellcheck disable=SC2317
on_error() {
	local status=$1 line=$2 cmd=$3
	trap - ERR
	printf '%s: error: step failed (exit %s) at line %s: %s\n' "$SELF" "$status" "$line" "$cmd" >&2
	if ((HAVE_PREVIOUS)); then
		rollback "a step failed during the update"
	fi
	printf '%s: nothing was rolled back; fix the cause and run it again (it resumes).\n' "$SELF" >&2
	exit "$EXIT_FAILED"
}

# ---- options -------------------------------------------------------------------------
ACTION=install
PKG_VERSION=""
FROM=""
PYTHON=""
PYTHON_GIVEN=""
OPT_HOST=""
OPT_PORT=""
OPT_MODE=""
OPT_REALTIME=""
RESET_CONFIG=0
KEEP_CONFIG=0
DRY_RUN=0
NO_START=0
ROOT=""

need_arg() {
	[[ $# -ge 2 && -n $2 ]] || die "$EXIT_USAGE" "$1 needs a value (see --help)"
}

parse_args() {
	local seen_action=""
	while [[ $# -gt 0 ]]; do
		case $1 in
		-h | --help)
			usage
			exit "$EXIT_OK"
			;;
		--version)
			need_arg "$@"
			PKG_VERSION=$2
			shift
			;;
		--from)
			need_arg "$@"
			FROM=$2
			shift
			;;
		--python)
			need_arg "$@"
			PYTHON=$2 PYTHON_GIVEN=1
			shift
			;;
		--port)
			need_arg "$@"
			OPT_PORT=$2
			shift
			;;
		--host)
			need_arg "$@"
			OPT_HOST=$2
			shift
			;;
		--mode)
			need_arg "$@"
			OPT_MODE=$2
			shift
			;;
		--root)
			need_arg "$@"
			ROOT=$2
			shift
			;;
		--update | --uninstall)
			[[ -z $seen_action || $seen_action == "$1" ]] ||
				die "$EXIT_USAGE" "$seen_action and $1 cannot be combined"
			seen_action=$1
			ACTION=${1#--}
			;;
		--keep-config) KEEP_CONFIG=1 ;;
		--reset-config) RESET_CONFIG=1 ;;
		--dry-run) DRY_RUN=1 ;;
		--no-start) NO_START=1 ;;
		--realtime) OPT_REALTIME=$DEFAULT_REALTIME ;;
		--realtime=*) OPT_REALTIME=${1#*=} ;; # its value is optional: only --realtime=N
		--version=* | --from=* | --python=* | --port=* | --host=* | --mode=* | --root=*)
			# --opt=value: split and go round again
			local opt=${1%%=*} val=${1#*=}
			shift
			set -- "$opt" "$val" "$@"
			continue
			;;
		*) die "$EXIT_USAGE" "unknown option: $1 (see --help)" ;;
		esac
		shift
	done

	if [[ -n $PKG_VERSION && -n $FROM ]]; then
		die "$EXIT_USAGE" "--version and --from cannot be combined"
	fi
	if [[ -n $PKG_VERSION ]]; then
		[[ $PKG_VERSION =~ ^[0-9]+(\.[0-9A-Za-z]+)*([.+-][0-9A-Za-z.+-]*)?$ ]] ||
			die "$EXIT_USAGE" "--version: not a version number: $PKG_VERSION"
		((10#${PKG_VERSION%%[!0-9]*} >= 3)) ||
			die "$EXIT_USAGE" "--version $PKG_VERSION: remoteio before 3.0 is a different program with no server command; use 3.0 or later"
	fi
	if [[ -n $OPT_PORT ]]; then
		if ! [[ $OPT_PORT =~ ^[0-9]{1,5}$ ]] || ((10#$OPT_PORT < 1 || 10#$OPT_PORT > 65535)); then
			die "$EXIT_USAGE" "--port: not a TCP port (1-65535): $OPT_PORT"
		fi
		OPT_PORT=$((10#$OPT_PORT))
		((OPT_PORT >= 1024)) ||
			warn "--port $OPT_PORT is below 1024: the service runs without privileges and cannot bind it"
	fi
	if [[ -n $OPT_MODE && $OPT_MODE != wait && $OPT_MODE != nowait ]]; then
		die "$EXIT_USAGE" "--mode: wait or nowait, not $OPT_MODE"
	fi
	if [[ -n $OPT_REALTIME ]]; then
		if ! [[ $OPT_REALTIME =~ ^[0-9]{1,2}$ ]]; then
			die "$EXIT_USAGE" "--realtime: a priority 1-99 (0: off), not $OPT_REALTIME"
		fi
		OPT_REALTIME=$((10#$OPT_REALTIME))
	fi
	if [[ -n $OPT_HOST ]]; then
		[[ $OPT_HOST =~ ^[A-Za-z0-9.:%_-]+$ ]] ||
			die "$EXIT_USAGE" "--host: not an address or host name: $OPT_HOST"
	fi
	if [[ -z $PYTHON ]]; then
		if [[ -x /usr/bin/python3 ]]; then
			PYTHON=/usr/bin/python3
		else
			PYTHON=$(command -v python3 || true)
			[[ -n $PYTHON ]] || PYTHON=python3
		fi
	fi
	if ((KEEP_CONFIG)) && [[ $ACTION != uninstall ]]; then
		die "$EXIT_USAGE" "--keep-config goes with --uninstall"
	fi
	if [[ $ACTION == uninstall ]]; then
		if [[ -n $PKG_VERSION || -n $FROM || -n $PYTHON_GIVEN || -n $OPT_HOST || -n $OPT_PORT || -n $OPT_MODE || -n $OPT_REALTIME ]] || ((RESET_CONFIG)); then
			die "$EXIT_USAGE" "--uninstall takes no package or server options"
		fi
	fi
}

# The paths given, checked (after the root check: they may be readable only by root).
check_paths() {
	if [[ -n $FROM ]]; then
		[[ -e $FROM ]] || die "$EXIT_USAGE" "--from: no such file or directory: $FROM"
		FROM=$(realpath -- "$FROM")
		if [[ -d $FROM ]]; then
			[[ -f $FROM/setup.py || -f $FROM/pyproject.toml || -f $FROM/setup.cfg ]] ||
				die "$EXIT_USAGE" "--from $FROM: not a Python project (no setup.py, setup.cfg or pyproject.toml)"
		elif [[ $FROM != *.whl ]]; then
			die "$EXIT_USAGE" "--from $FROM: give a project directory or a .whl file"
		fi
	fi
	if [[ $PYTHON == */* ]]; then
		[[ $PYTHON == /* ]] || PYTHON=$PWD/$PYTHON
	elif command -v -- "$PYTHON" >/dev/null; then
		PYTHON=$(command -v -- "$PYTHON")
	fi
	if [[ -n $ROOT ]]; then
		[[ -d $ROOT ]] || die "$EXIT_USAGE" "--root: no such directory: $ROOT"
		ROOT=$(realpath -- "$ROOT")
		[[ $ROOT != / ]] || die "$EXIT_USAGE" "--root /: leave --root out to install on this machine"
	fi
}

# ---- the system ----------------------------------------------------------------------
# An entry of passwd or group, from the staging root's files with --root.
ent() {
	local db=$1 name=$2
	if [[ -n $ROOT ]]; then
		[[ -f $ROOT/etc/$db ]] || return 1
		awk -F: -v n="$name" '$1 == n { print; found = 1; exit } END { exit !found }' "$ROOT/etc/$db"
	else
		getent "$db" "$name"
	fi
}
ent_field() { # db name field-number
	local line
	line=$(ent "$1" "$2") || return 1
	printf '%s\n' "$line" | cut -d: -f"$3"
}
in_group() { # user group
	local members
	members=$(ent_field group "$2" 4) || return 1
	[[ ,$members, == *,"$1",* ]]
}
shadow_root_args() {
	if [[ -n $ROOT ]]; then
		printf '%s\n' --root "$ROOT"
	fi
}

check_root() {
	[[ $(id -u) -eq 0 ]] ||
		die "$EXIT_ENV" "must be run as root: sudo bash $SELF $*"
}

check_systemd() {
	[[ -z $ROOT ]] || return 0
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
		return 0
	fi
	if ((DRY_RUN)); then
		warn "this machine does not run systemd: a real install would stop here"
		return 0
	fi
	die "$EXIT_ENV" "this machine does not run systemd (no /run/systemd/system): the installer sets up a systemd service. Run 'remoteio serve' by hand instead, or use --root DIR to stage an install."
}

check_staging_root() {
	[[ -n $ROOT ]] || return 0
	local f
	for f in passwd group; do
		[[ -f $ROOT/etc/$f ]] ||
			die "$EXIT_ENV" "--root $ROOT: no $ROOT/etc/$f (a staging root needs at least etc/passwd and etc/group)"
	done
}

# The version of a Python, from its --version ("Python 3.11.2" -> 3.11.2; "" if none).
python_version() {
	local out
	out=$("$1" --version 2>&1) || return 1
	[[ $out =~ ^Python\ ([0-9]+\.[0-9]+(\.[0-9]+)?) ]] || return 1
	printf '%s\n' "${BASH_REMATCH[1]}"
}

# Can this Python make virtual environments (the venv module, and ensurepip for pip)?
can_make_venvs() {
	"$1" -I -c 'import venv, ensurepip' 2>/dev/null
}

check_python() {
	local where version major minor
	if ! command -v "$PYTHON" >/dev/null; then
		die "$EXIT_ENV" "$PYTHON not found: install Python 3.9 or later (on Debian/Raspberry Pi OS: apt-get install python3 python3-venv)"
	fi
	version=$(python_version "$PYTHON") || die "$EXIT_ENV" "$PYTHON --version does not say which Python it is"
	IFS=. read -r major minor _ <<<"$version"
	((major > 3 || (major == 3 && minor >= 9))) ||
		die "$EXIT_ENV" "$PYTHON is Python $version: remoteio needs 3.9 or later"
	[[ $ACTION != uninstall ]] || return 0
	# the venv runs on this interpreter's files: the service must be able to read them
	where=$("$PYTHON" -I -c 'import sys; print(sys.base_prefix)')
	if [[ $where == /root || $where == /root/* || $where == /home/* ]]; then
		if [[ -n $ROOT ]] || ((DRY_RUN)); then
			warn "$PYTHON lives in $where: the service (ProtectHome=yes, user $SVC_USER) could not run it; a real install needs a system Python (--python /usr/bin/python3)"
		else
			die "$EXIT_ENV" "$PYTHON lives in $where, which the service (ProtectHome=yes, user $SVC_USER) cannot read: use a system Python, e.g. --python /usr/bin/python3"
		fi
	fi
	if can_make_venvs "$PYTHON"; then
		return 0
	fi
	if [[ -n $ROOT ]] || [[ $PYTHON != /usr/bin/python3* ]] || ! command -v apt-get >/dev/null; then
		if ((DRY_RUN)); then
			warn "$PYTHON cannot make virtual environments (no ensurepip): a real install would stop here"
			return 0
		fi
		die "$EXIT_ENV" "$PYTHON cannot make virtual environments (module ensurepip missing): install python3-venv (or your system's equivalent) and run again"
	fi
	say "$PYTHON has no venv support: installing python3-venv"
	if ((DRY_RUN)); then
		change "installed python3-venv (apt)"
		return 0
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; } ||
		die "$EXIT_ENV" "could not install python3-venv with apt-get"
	change "installed python3-venv (apt)"
	can_make_venvs "$PYTHON" ||
		die "$EXIT_ENV" "$PYTHON still cannot make virtual environments after installing python3-venv"
}

# ---- the record of what the installer created -------------------------------------------
REC_created_group_gpio=no
REC_created_user=no
REC_created_group_remoteio=no
REC_created_udev_rule=no
REC_host=""
REC_port=""
REC_mode=""
REC_realtime=""
REC_config_sha256=""
HAVE_RECORD=0

read_record() {
	local file=$ROOT$RECORD key value
	[[ -f $file ]] || return 0
	HAVE_RECORD=1
	while IFS='=' read -r key value; do
		case $key in
		created_group_gpio | created_user | created_group_remoteio | created_udev_rule)
			[[ $value == yes ]] && printf -v "REC_$key" '%s' yes
			;;
		host) [[ $value =~ ^[A-Za-z0-9.:%_-]+$ ]] && REC_host=$value ;;
		port) [[ $value =~ ^[0-9]{1,5}$ ]] && REC_port=$value ;;
		mode) [[ $value == wait || $value == nowait ]] && REC_mode=$value ;;
		realtime) [[ $value =~ ^[0-9]{1,2}$ ]] && REC_realtime=$value ;;
		config_sha256) [[ $value =~ ^[0-9a-f]{64}$ ]] && REC_config_sha256=$value ;;
		esac
	done <"$file"
	return 0
}

render_record() {
	cat <<EOF
# $MARKER: what it created, read by --uninstall
# (created_* = the installer made it, so --uninstall removes it). Do not edit.
created_group_gpio=$REC_created_group_gpio
created_user=$REC_created_user
created_group_remoteio=$REC_created_group_remoteio
created_udev_rule=$REC_created_udev_rule
host=$REC_host
port=$REC_port
mode=$REC_mode
realtime=$REC_realtime
config_sha256=$REC_config_sha256
EOF
}

# ---- files ---------------------------------------------------------------------------
# ensure_dir PATH MODE UID GID LABEL (UID/GID empty: the user does not exist yet, dry run)
declare -A PLANNED=() # directories a dry run has already said it would create
ensure_dir() {
	local path=$1 mode=$2 uid=$3 gid=$4 label=$5
	if [[ ! -d $path ]]; then
		[[ ! -e $path ]] || die "$EXIT_FAILED" "$path exists and is not a directory"
		[[ -z ${PLANNED[$path]:-} ]] || return 0
		((DRY_RUN)) && PLANNED[$path]=1
		change "created $label $path (mode $mode)"
		[[ -d $(dirname -- "$path") ]] || run mkdir -p -- "$(dirname -- "$path")"
		run mkdir -m "$mode" -- "$path"
		[[ -z $uid || -z $gid || $uid:$gid == 0:0 ]] || run chown "$uid:$gid" -- "$path"
		return 0
	fi
	fix_meta "$path" "$mode" "$uid" "$gid" "$label"
}

# fix_meta PATH MODE UID GID LABEL: owner and mode as they must be
fix_meta() {
	local path=$1 mode=$2 uid=$3 gid=$4 label=$5 cur
	cur=$(stat -c '%a %u %g' -- "$path")
	if [[ ${cur%% *} != "$mode" ]]; then
		change "fixed mode of $label $path: ${cur%% *} -> $mode"
		run chmod "$mode" -- "$path"
	fi
	if [[ -n $uid && -n $gid && ${cur#* } != "$uid $gid" ]]; then
		change "fixed owner of $label $path: ${cur#* } -> $uid $gid"
		run chown "$uid:$gid" -- "$path"
	fi
	return 0
}

same_content() { # PATH CONTENT
	[[ -f $1 ]] && printf '%s\n' "$2" | cmp -s - "$1"
}

# ensure_file PATH MODE UID GID LABEL CONTENT: the file as it must be, written
# atomically (temporary file + rename). Sets WROTE=1 if it was written (or would be).
# (Always returns 0: a function called as a condition runs without set -e.)
WROTE=0
ensure_file() {
	local path=$1 mode=$2 uid=$3 gid=$4 label=$5 content=$6 tmp
	WROTE=0
	if same_content "$path" "$content"; then
		fix_meta "$path" "$mode" "$uid" "$gid" "$label"
		return 0
	fi
	WROTE=1
	if [[ -e $path ]]; then
		change "updated $label $path"
		if ((DRY_RUN)); then
			printf '%s\n' "$content" | diff -u --label "$path (now)" --label "$path (new)" -- "$path" - | sed 's/^/      /' || true
			return 0
		fi
	else
		change "created $label $path (mode $mode)"
		((DRY_RUN)) && return 0
	fi
	mkdir -p -- "$(dirname -- "$path")"
	tmp=$(mktemp -- "$(dirname -- "$path")/.$(basename -- "$path").XXXXXX")
	TMPFILES+=("$tmp")
	printf '%s\n' "$content" >"$tmp"
	chmod "$mode" -- "$tmp"
	[[ -z $uid || -z $gid ]] || chown "$uid:$gid" -- "$tmp"
	mv -f -- "$tmp" "$path"
	return 0
}

# Remove one of the installer's own paths (and only those).
remove_path() {
	local path=${1:?} label=$2
	case $path in
	"$ROOT$OPT_DIR" | "$ROOT$PREVIOUS_VENV" | "$ROOT$STATE_DIR" | "$ROOT$CONF_DIR" | "$ROOT$UNIT" | "$ROOT$UDEV_RULE" | "$ROOT$RT_DROPIN") ;;
	*) die "$EXIT_FAILED" "internal error: refusing to remove $path (not one of the installer's paths)" ;;
	esac
	[[ $path == /* ]] || die "$EXIT_FAILED" "internal error: refusing to remove a relative path: $path"
	[[ -e $path || -L $path ]] || return 0
	change "removed $label $path"
	run rm -rf -- "${path:?}"
}

# ---- rendering -----------------------------------------------------------------------
render_config() { # host port mode realtime
	local mode_value realtime=""
	printf -v mode_value '%-19s' "\"$3\""
	# a line only when it is on: without it the file is what earlier installers wrote
	((${4:-0} == 0)) ||
		printf -v realtime '\nrealtime_priority = %-6s # SCHED_FIFO for the pin workers (docs/install.md)' "$4"
	cat <<EOF
# remoteio server configuration (see docs/install.md and docs/security.md)
[server]
host = "$1"
port = $2
mode = $mode_value# "wait" or "nowait"
backend = "auto"          # "auto", "lgpio", "rpigpio" or "sim"
token_file = "$TOKEN"
on_disconnect = "finish"  # "finish" or "safe"${realtime}
# tls_cert = "/etc/remoteio/tls/cert.pem"
# tls_key = "/etc/remoteio/tls/key.pem"

# Pin rules, by board number (all pins may be used when none are listed):
# [pins.7]
# access = "write"        # "none", "read" or "write"
# max_hold_ms = 60000
EOF
}

# The unit is the installed package's own (remoteio/data/remoteio.service).
render_unit() {
	PYTHONDONTWRITEBYTECODE=1 "$ROOT$VENV_DIR/bin/remoteio" systemd-unit
}

render_realtime_dropin() { # priority
	cat <<EOF
# $RT_DROPIN: $MARKER (--realtime=$1).
# Lets the pin workers run under SCHED_FIFO (realtime_priority = $1 in $CONFIG).
# install.sh --realtime=0 or --uninstall removes it.
[Service]
RestrictRealtime=no
LimitRTPRIO=$1
EOF
}

render_udev_rule() {
	cat <<EOF
# $UDEV_RULE: $MARKER.
# This system had no gpio group: give it the GPIO character devices, as
# Raspberry Pi OS does, so that the remoteio service (in group gpio) can use them.
SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"
KERNEL=="gpiomem*", GROUP="gpio", MODE="0660"
EOF
}

# ---- the config decision -----------------------------------------------------------
# Values of host, port, mode, realtime_priority in an existing config file, tab-separated ("" if
# unknown), as the installed remoteio reads it (remoteio check-config --json).
config_values() {
	local json field values=()
	if ! venv_python_works || ! json=$(PYTHONDONTWRITEBYTECODE=1 "$ROOT$VENV_DIR/bin/remoteio" check-config --json "$1" 2>&1); then
		[[ -z ${json:-} ]] || warn "$CONFIG: ${json#remoteio: } (the service cannot start until it is fixed)"
		printf '\t\t\t\n'
		return 0
	fi
	for field in host port mode realtime_priority; do
		values+=("$(printf '%s\n' "$json" | sed -n "s/.*\"$field\": \"\{0,1\}\([^\",}]*\).*/\1/p")")
	done
	printf '%s\t%s\t%s\t%s\n' "${values[@]}"
}

S_HOST=$DEFAULT_HOST
S_PORT=$DEFAULT_PORT
S_MODE=$DEFAULT_MODE
S_REALTIME=0
CONFIG_ACTION=""  # create, keep, update, keep-edited, replace
CONFIG_CONTENT=""
CONFIG_CHANGES=""

decide_config() {
	local file=$ROOT$CONFIG cur_sha="" pristine=0 c_host c_port c_mode c_realtime diffs=()
	[[ -n $REC_host ]] && S_HOST=$REC_host
	[[ -n $REC_port ]] && S_PORT=$REC_port
	[[ -n $REC_mode ]] && S_MODE=$REC_mode
	[[ -n $REC_realtime ]] && S_REALTIME=$REC_realtime
	if [[ -f $file ]]; then
		cur_sha=$(sha256sum -- "$file" | cut -d' ' -f1)
		[[ -n $REC_config_sha256 && $cur_sha == "$REC_config_sha256" ]] && pristine=1
		if ((!pristine)); then
			IFS=$'\t' read -r c_host c_port c_mode c_realtime < <(config_values "$file")
			[[ -n $c_host ]] && S_HOST=$c_host
			[[ -n $c_port ]] && S_PORT=$c_port
			[[ -n $c_mode ]] && S_MODE=$c_mode
			[[ $c_realtime =~ ^[0-9]{1,2}$ ]] && S_REALTIME=$c_realtime
		fi
	fi
	[[ -n $OPT_HOST && $OPT_HOST != "$S_HOST" ]] && diffs+=("host $S_HOST -> $OPT_HOST")
	[[ -n $OPT_PORT && $OPT_PORT != "$S_PORT" ]] && diffs+=("port $S_PORT -> $OPT_PORT")
	[[ -n $OPT_MODE && $OPT_MODE != "$S_MODE" ]] && diffs+=("mode $S_MODE -> $OPT_MODE")
	[[ -n $OPT_REALTIME && $OPT_REALTIME != "$S_REALTIME" ]] && diffs+=("realtime_priority $S_REALTIME -> $OPT_REALTIME")
	[[ -n $OPT_HOST ]] && S_HOST=$OPT_HOST
	[[ -n $OPT_PORT ]] && S_PORT=$OPT_PORT
	[[ -n $OPT_MODE ]] && S_MODE=$OPT_MODE
	[[ -n $OPT_REALTIME ]] && S_REALTIME=$OPT_REALTIME
	CONFIG_CONTENT=$(render_config "$S_HOST" "$S_PORT" "$S_MODE" "$S_REALTIME")

	if [[ ! -f $file ]]; then
		CONFIG_ACTION=create
	elif same_content "$file" "$CONFIG_CONTENT"; then
		CONFIG_ACTION=keep
	elif ((pristine)); then
		CONFIG_ACTION=update
		CONFIG_CHANGES=${diffs[*]+"${diffs[*]}"}
	elif ((RESET_CONFIG)); then
		CONFIG_ACTION=replace
	elif ((${#diffs[@]} == 0)); then
		CONFIG_ACTION=keep-edited
	else
		local d
		{
			printf '%s: error: %s was edited by hand (or kept from an earlier install), and the options ask to change it:\n' "$SELF" "$CONFIG"
			for d in "${diffs[@]}"; do printf '    %s\n' "$d"; done
			printf 'Nothing was changed. Either edit %s yourself (then: sudo systemctl restart remoteio),\n' "$CONFIG"
			printf 'or run again with --reset-config to replace it (your file is kept as remoteio.toml.old).\n'
		} >&2
		exit "$EXIT_CONFLICT"
	fi
}

# ---- install -------------------------------------------------------------------------
SVC_UID=""
SVC_GID=""
NEED_RESTART=0
UNIT_CHANGED=0
INSTALLED_VERSION=""

ensure_groups_and_user() {
	local args=() gid_args=()
	mapfile -t args < <(shadow_root_args)

	say "user and groups"
	if ent group "$GPIO_GROUP" >/dev/null; then
		info "group $GPIO_GROUP exists"
	else
		change "created system group $GPIO_GROUP"
		run groupadd ${args[@]+"${args[@]}"} --system "$GPIO_GROUP"
		REC_created_group_gpio=yes
	fi

	if ent passwd "$SVC_USER" >/dev/null; then
		info "user $SVC_USER exists"
		if ! in_group "$SVC_USER" "$GPIO_GROUP"; then
			change "added user $SVC_USER to group $GPIO_GROUP"
			run usermod ${args[@]+"${args[@]}"} --append --groups "$GPIO_GROUP" "$SVC_USER"
		fi
	else
		if ent group "$SVC_GROUP" >/dev/null; then
			gid_args=(--gid "$SVC_GROUP")
		else
			gid_args=(--user-group)
			REC_created_group_remoteio=yes
		fi
		change "created system user $SVC_USER (no login, home $STATE_DIR, groups $SVC_GROUP,$GPIO_GROUP)"
		run useradd ${args[@]+"${args[@]}"} --system "${gid_args[@]}" --groups "$GPIO_GROUP" \
			--home-dir "$STATE_DIR" --no-create-home --shell "$NOLOGIN" \
			--comment "remoteio GPIO server" "$SVC_USER"
		REC_created_user=yes
	fi
	if ! ent group "$SVC_GROUP" >/dev/null && ent passwd "$SVC_USER" >/dev/null; then
		die "$EXIT_FAILED" "user $SVC_USER exists but group $SVC_GROUP does not: fix or remove the user and run again"
	fi
	SVC_UID=$(ent_field passwd "$SVC_USER" 3 || true)
	SVC_GID=$(ent_field group "$SVC_GROUP" 3 || true)
	if [[ -z $SVC_UID || -z $SVC_GID ]]; then
		((DRY_RUN)) || die "$EXIT_FAILED" "user $SVC_USER or group $SVC_GROUP missing after creating them"
		SVC_UID="" SVC_GID=""
	fi
	return 0
}

pip_install() { # SPEC [pip options]
	local spec=$1 venv=$ROOT$VENV_DIR
	shift
	if PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -I -m pip install --no-input --quiet "$@" "$spec"; then
		return 0
	fi
	# a backend with no wheel for this machine must be compiled: on Debian, fetch the
	# compiler and Python headers once and try again
	if [[ -z $ROOT ]] && command -v apt-get >/dev/null &&
		! { command -v gcc >/dev/null && [[ -f $("$PYTHON" -I -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h ]]; }; then
		say "pip failed; installing a C compiler and Python headers (gcc python3-dev) and trying again"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc python3-dev ||
			{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc python3-dev; } ||
			die "$EXIT_FAILED" "could not install gcc python3-dev with apt-get"
		change "installed gcc python3-dev (apt), to build a GPIO backend"
		if PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -I -m pip install --no-input --quiet "$@" "$spec"; then
			return 0
		fi
	fi
	return 1
}

venv_python_works() {
	[[ -x $ROOT$VENV_DIR/bin/python ]] && python_version "$ROOT$VENV_DIR/bin/python" >/dev/null
}

# The version of remoteio in the venv, as its own command says ("" if it does not run).
installed_version() {
	local out
	venv_python_works && [[ -x $ROOT$VENV_DIR/bin/remoteio ]] || return 1
	out=$(PYTHONDONTWRITEBYTECODE=1 "$ROOT$VENV_DIR/bin/remoteio" --version 2>/dev/null) || return 1
	[[ $out == "remoteio "* ]] || return 1
	printf '%s\n' "${out#remoteio }"
}

# What pip installs: the --from path, or remoteio from PyPI (with the Pi backends).
package_spec() {
	if [[ -n $FROM ]]; then
		printf '%s[pi]\n' "$FROM"
	elif [[ -n $PKG_VERSION ]]; then
		printf 'remoteio[pi]==%s\n' "$PKG_VERSION"
	else
		printf 'remoteio[pi]>=3\n'
	fi
}

# A project directory is installed from a copy: pip builds a project in its own tree
# (build/, *.egg-info, as root here), and a stale build/lib would bring back modules
# the checkout has since lost. Sets SPEC_SOURCE to what pip is given.
SPEC_SOURCE=""
copy_source() {
	local tmp
	SPEC_SOURCE=$FROM
	[[ -d $FROM ]] || return 0
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/remoteio-install.XXXXXX")
	TMPDIRS+=("$tmp")
	mkdir -- "$tmp/src"
	tar -C "$FROM" --exclude=./.git --exclude=./build --exclude=./dist --exclude='./*.egg-info' \
		--exclude=./.venv --exclude=./.hypothesis --exclude=./.pytest_cache --exclude='__pycache__' -cf - . | tar -C "$tmp/src" -xf - ||
		die "$EXIT_FAILED" "could not copy $FROM to build it"
	SPEC_SOURCE=$tmp/src
}

# Will this run install or upgrade the package (rather than keep what is installed)?
WILL_INSTALL=0
plan_package() {
	INSTALLED_VERSION=$(installed_version || true)
	WILL_INSTALL=1
	if [[ -n $INSTALLED_VERSION && $ACTION != update && (-z $PKG_VERSION || $PKG_VERSION == "$INSTALLED_VERSION") ]]; then
		WILL_INSTALL=0
	fi
}

TMPDIRS=()
# Before anything is changed: can pip get the package? (--from was checked already.)
# pip download of remoteio alone, by a venv's pip: the installed one, else a scratch
# venv in a temporary directory.
check_package_available() {
	local want tmp pip_python out
	[[ -z $FROM ]] && ((WILL_INSTALL)) || return 0
	want="remoteio>=3"
	[[ -z $PKG_VERSION ]] || want="remoteio==$PKG_VERSION"
	say "checking that pip can get $want"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/remoteio-install.XXXXXX")
	TMPDIRS+=("$tmp")
	if venv_python_works && "$ROOT$VENV_DIR/bin/python" -I -m pip --version >/dev/null 2>&1; then
		pip_python=$ROOT$VENV_DIR/bin/python
	else
		"$PYTHON" -I -m venv -- "$tmp/venv" >/dev/null ||
			die "$EXIT_ENV" "$PYTHON could not make a scratch venv to ask pip (nothing was changed)"
		pip_python=$tmp/venv/bin/python
	fi
	if out=$(PIP_DISABLE_PIP_VERSION_CHECK=1 "$pip_python" -I -m pip download --no-input --quiet \
		--no-deps --dest "$tmp/download" "$want" 2>&1); then
		info "pip can get $want"
		return 0
	fi
	printf '%s\n' "$out" | tail -n 3 | sed 's/^/    pip: /' >&2
	die "$EXIT_FAILED" "pip cannot get $want (nothing was changed). remoteio 3 is not on PyPI yet (PyPI's remoteio is the old 2.1): install from a checkout, sudo bash $SELF --from /path/to/remoteio, or from a wheel built in one (python -m build, then sudo bash $SELF --from dist/remoteio-*.whl)"
}

# ---- the previous version, kept until the new one is healthy -------------------------------
HAVE_PREVIOUS=0
PREVIOUS_VERSION=""

keep_previous_venv() {
	local prev=$ROOT$PREVIOUS_VENV
	if [[ -e $prev ]]; then # left by an update that was cut short
		remove_path "$prev" "a previous venv left by an interrupted update"
	fi
	change "kept remoteio $INSTALLED_VERSION as $PREVIOUS_VENV (until the new version is healthy)"
	run cp -a -- "$ROOT$VENV_DIR" "$prev"
	((DRY_RUN)) || HAVE_PREVIOUS=1
	PREVIOUS_VERSION=$INSTALLED_VERSION
}

drop_previous_venv() {
	((HAVE_PREVIOUS)) || return 0
	remove_path "$ROOT$PREVIOUS_VENV" "the previous version (the new one is healthy)"
	HAVE_PREVIOUS=0
}

# The new version is not healthy: the previous venv (and its unit) back, then stop.
rollback() { # what failed
	local venv=$ROOT$VENV_DIR prev=$ROOT$PREVIOUS_VENV running=""
	((HAVE_PREVIOUS)) || die "$EXIT_FAILED" "$1"
	warn "$1: going back to remoteio $PREVIOUS_VERSION"
	rm -rf -- "${venv:?}"
	mv -- "$prev" "$venv"
	HAVE_PREVIOUS=0
	ensure_file "$ROOT$UNIT" 644 0 0 "unit" "$(render_unit)"
	if [[ -z $ROOT ]] && ((!NO_START)); then
		systemctl daemon-reload || true
		if systemctl restart "$UNIT_NAME" && systemctl is-active --quiet "$UNIT_NAME"; then
			running=" and running"
		else
			warn "remoteio $PREVIOUS_VERSION does not start either (journalctl -u remoteio)"
		fi
	fi
	die "$EXIT_FAILED" "the update failed ($1); remoteio $PREVIOUS_VERSION is back$running. Nothing else was changed by the update"
}

# A package problem: roll back an update, else stop.
package_failed() {
	if ((HAVE_PREVIOUS)); then
		rollback "$1"
	fi
	die "$EXIT_FAILED" "$1"
}

# What can be checked without starting the service: the command runs, has the
# `serve --config` the unit runs, and reads the configuration.
check_package_health() {
	local venv=$ROOT$VENV_DIR out
	out=$(PYTHONDONTWRITEBYTECODE=1 "$venv/bin/remoteio" --version 2>&1) ||
		package_failed "$VENV_DIR/bin/remoteio --version fails: $(printf '%s' "$out" | tail -n 1)"
	info "check: $VENV_DIR/bin/remoteio --version -> $out"
	if ! PYTHONDONTWRITEBYTECODE=1 "$venv/bin/remoteio" serve --help 2>/dev/null | grep -q -- '--config'; then
		if [[ -n $ROOT ]] || ((NO_START)); then
			warn "this remoteio ($out) has no 'serve --config': the service as written would not start"
		else
			package_failed "this remoteio ($out) has no 'serve --config', which the service runs: it would fail to start (install a remoteio that has it, or use --no-start)"
		fi
	fi
	if [[ -f $ROOT$CONFIG ]] && ! out=$(PYTHONDONTWRITEBYTECODE=1 "$venv/bin/remoteio" check-config "$ROOT$CONFIG" 2>&1); then
		package_failed "remoteio $INSTALLED_VERSION cannot read $CONFIG: ${out#remoteio: }"
	fi
	return 0
}

ensure_venv_and_package() {
	local venv=$ROOT$VENV_DIR spec pip_spec pip_args=() before
	say "Python environment $VENV_DIR"
	ensure_dir "$ROOT$OPT_DIR" 755 0 0 "directory"
	if venv_python_works; then
		info "venv exists (Python $(python_version "$venv/bin/python"))"
	else
		if [[ -e $venv ]]; then
			change "removed a venv whose python no longer runs (system Python upgraded?)"
			run rm -rf -- "${venv:?}"
		fi
		change "created venv $VENV_DIR with $PYTHON (Python $(python_version "$PYTHON"))"
		run "$PYTHON" -I -m venv -- "$venv"
		INSTALLED_VERSION=""
	fi

	spec=$(package_spec)
	if ((!WILL_INSTALL)); then
		info "remoteio $INSTALLED_VERSION is installed (--update upgrades it)"
	else
		before=$INSTALLED_VERSION
		if [[ -n $before ]]; then
			keep_previous_venv
			pip_args=(--upgrade)
		fi
		if ((DRY_RUN)); then
			if [[ -n $before ]]; then
				change "upgraded remoteio $before: pip install --upgrade '$spec'"
			else
				change "installed remoteio: pip install '$spec'"
			fi
		else
			info "pip install ${pip_args[*]+"${pip_args[*]} "}'$spec' (a few minutes on a small Pi: pip may have to build lgpio or RPi.GPIO)"
			pip_spec=$spec
			if [[ -n $FROM ]]; then
				copy_source
				pip_spec="${SPEC_SOURCE}[pi]"
			fi
			pip_install "$pip_spec" ${pip_args[@]+"${pip_args[@]}"} ||
				package_failed "pip could not install $spec (see pip's messages above)"
			if [[ $FROM == *.whl && -n $before ]]; then
				# pip skips a wheel of the version already installed: reinstall it
				PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -I -m pip install --no-input --quiet \
					--force-reinstall --no-deps "$FROM" || package_failed "pip could not reinstall $FROM"
			fi
			INSTALLED_VERSION=$(installed_version) ||
				package_failed "$VENV_DIR/bin/remoteio does not run after pip install"
			if [[ -n $before ]]; then
				change "upgraded remoteio $before -> $INSTALLED_VERSION ($spec)"
			else
				change "installed remoteio $INSTALLED_VERSION ($spec)"
			fi
		fi
		NEED_RESTART=1
	fi
	((DRY_RUN)) || check_package_health
}

ensure_files() {
	local gid_or_empty=$SVC_GID
	say "configuration $CONF_DIR and state $STATE_DIR"
	ensure_dir "$ROOT$CONF_DIR" 750 0 "$gid_or_empty" "directory"
	# with --dry-run and no user yet, directories are shown without their final owner
	case $CONFIG_ACTION in
	create | update | replace)
		if [[ $CONFIG_ACTION == replace ]]; then
			change "kept your edited config as $CONFIG.old"
			run cp -p -- "$ROOT$CONFIG" "$ROOT$CONFIG.old"
		fi
		ensure_file "$ROOT$CONFIG" 640 0 "$SVC_GID" "config" "$CONFIG_CONTENT"
		[[ -z $CONFIG_CHANGES ]] || info "config: $CONFIG_CHANGES"
		REC_config_sha256=$(printf '%s\n' "$CONFIG_CONTENT" | sha256sum | cut -d' ' -f1)
		REC_host=$S_HOST REC_port=$S_PORT REC_mode=$S_MODE REC_realtime=$S_REALTIME
		NEED_RESTART=1
		;;
	keep)
		fix_meta "$ROOT$CONFIG" 640 0 "$SVC_GID" "config"
		info "config $CONFIG is as requested"
		# it is exactly what the installer writes for these settings: treat it as ours
		REC_config_sha256=$(printf '%s\n' "$CONFIG_CONTENT" | sha256sum | cut -d' ' -f1)
		REC_host=$S_HOST REC_port=$S_PORT REC_mode=$S_MODE REC_realtime=$S_REALTIME
		;;
	keep-edited)
		fix_meta "$ROOT$CONFIG" 640 0 "$SVC_GID" "config"
		info "config $CONFIG was edited by hand (or kept from an earlier install): left as it is"
		;;
	esac

	if [[ -e $ROOT$TOKEN ]]; then
		info "token $TOKEN exists: kept"
		[[ -s $ROOT$TOKEN ]] || warn "token file $TOKEN is empty: clients cannot authenticate; remove it and run again to generate one"
		fix_meta "$ROOT$TOKEN" 600 "$SVC_UID" "$SVC_GID" "token"
	else
		change "generated token $TOKEN (mode 600, owner $SVC_USER)"
		if ((!DRY_RUN)); then
			local tmp
			tmp=$(mktemp -- "$ROOT$CONF_DIR/.token.XXXXXX")
			TMPFILES+=("$tmp")
			(
				umask 077
				PYTHONDONTWRITEBYTECODE=1 "$ROOT$VENV_DIR/bin/remoteio" token --file "$tmp" --force >/dev/null
			)
			chmod 600 -- "$tmp"
			chown "$SVC_UID:$SVC_GID" -- "$tmp"
			mv -f -- "$tmp" "$ROOT$TOKEN"
		fi
		NEED_RESTART=1
	fi

	ensure_dir "$ROOT$STATE_DIR" 750 "$SVC_UID" "$SVC_GID" "state directory"

	say "systemd unit $UNIT"
	local unit
	if ! unit=$(render_unit 2>/dev/null) || [[ -z $unit ]]; then
		((DRY_RUN)) || die "$EXIT_FAILED" "$VENV_DIR/bin/remoteio systemd-unit does not print the unit"
		change "created unit $UNIT (what the new venv's remoteio systemd-unit prints)"
		unit=""
		WROTE=1
	else
		ensure_file "$ROOT$UNIT" 644 0 0 "unit" "$unit"
	fi
	if ((WROTE)); then
		UNIT_CHANGED=1
		NEED_RESTART=1
	else
		info "unit is up to date"
	fi

	ensure_realtime_dropin

	if [[ $REC_created_group_gpio == yes || $REC_created_udev_rule == yes ]]; then
		say "udev rule $UDEV_RULE (group gpio on the GPIO devices)"
		ensure_file "$ROOT$UDEV_RULE" 644 0 0 "udev rule" "$(render_udev_rule)"
		if ((WROTE)); then
			if [[ -z $ROOT ]]; then
				run udevadm control --reload-rules || warn "udevadm control --reload-rules failed"
				run udevadm trigger --action=change --subsystem-match=gpio || warn "udevadm trigger failed"
				run udevadm trigger --action=change --sysname-match='gpiomem*' || warn "udevadm trigger failed"
			fi
		else
			info "udev rule is up to date"
		fi
		REC_created_udev_rule=yes
	fi

	save_record
}

# The unit's drop-in for real-time workers: there while realtime_priority (the
# config's, as far as the installer knows it) is on; never a file it did not write.
ensure_realtime_dropin() {
	local path=$ROOT$RT_DROPIN
	if [[ -f $path ]] && ! grep -qF "$MARKER" -- "$path"; then
		warn "$RT_DROPIN was not written by this installer: left as it is"
		return 0
	fi
	if ((S_REALTIME > 0)); then
		say "real-time priority $S_REALTIME for the pin workers: drop-in $RT_DROPIN"
		ensure_dir "$ROOT$DROPIN_DIR" 755 0 0 "drop-in directory"
		ensure_file "$path" 644 0 0 "unit drop-in" "$(render_realtime_dropin "$S_REALTIME")"
		if ((WROTE)); then
			UNIT_CHANGED=1
			NEED_RESTART=1
		else
			info "drop-in is up to date"
		fi
	elif [[ -f $path ]]; then
		say "real-time priority off"
		remove_realtime_dropin
		UNIT_CHANGED=1
		NEED_RESTART=1
	fi
	return 0
}

# Remove the installer's drop-in, and its directory if nothing else is in it.
remove_realtime_dropin() {
	local left
	remove_path "$ROOT$RT_DROPIN" "unit drop-in"
	[[ -d $ROOT$DROPIN_DIR ]] || return 0
	left=$(ls -A -- "$ROOT$DROPIN_DIR")
	if [[ -z $left ]] || { ((DRY_RUN)) && [[ $left == realtime.conf ]]; }; then
		change "removed empty drop-in directory $DROPIN_DIR"
		run rmdir -- "$ROOT$DROPIN_DIR"
	fi
	return 0
}

# The record is saved as soon as users/groups exist, so that an install that
# stops half-way still knows, when run again or uninstalled, what it created.
save_record() {
	ensure_dir "$ROOT$OPT_DIR" 755 0 0 "directory"
	ensure_file "$ROOT$RECORD" 644 0 0 "install record" "$(render_record)"
}

service_failed() {
	warn "the service is not running: its last log lines follow"
	journalctl -u "$UNIT_NAME" -n 30 --no-pager >&2 || true
	if ((HAVE_PREVIOUS)); then
		rollback "remoteio $INSTALLED_VERSION failed to start"
	fi
	die "$EXIT_FAILED" "remoteio.service failed to start (see: systemctl status remoteio; journalctl -u remoteio)"
}

ensure_service() {
	[[ -z $ROOT ]] || return 0
	say "service $UNIT_NAME"
	if ((DRY_RUN)) && [[ ! -d /run/systemd/system ]]; then
		info "would run: systemctl daemon-reload; systemctl enable --now $UNIT_NAME (this machine does not run systemd)"
		return 0
	fi
	if ((UNIT_CHANGED)); then
		run systemctl daemon-reload
	fi
	if ((NO_START)); then
		info "not enabled or started (--no-start); later: sudo systemctl enable --now remoteio"
		return 0
	fi
	if ! systemctl is-enabled --quiet "$UNIT_NAME" 2>/dev/null; then
		change "enabled $UNIT_NAME (starts at boot)"
		run systemctl enable --quiet "$UNIT_NAME"
	fi
	# Type=notify: start and restart return once the server listens (READY=1), or fail
	local restarts0 restarts1
	restarts0=$(systemctl show -p NRestarts --value "$UNIT_NAME" 2>/dev/null || echo 0)
	if systemctl is-active --quiet "$UNIT_NAME"; then
		if ((NEED_RESTART)); then
			change "restarted $UNIT_NAME"
			run systemctl restart "$UNIT_NAME" || { ((DRY_RUN)) || service_failed; }
		else
			info "running"
			return 0
		fi
	else
		change "started $UNIT_NAME"
		run systemctl start "$UNIT_NAME" || { ((DRY_RUN)) || service_failed; }
	fi
	((DRY_RUN)) && return 0
	restarts1=$(systemctl show -p NRestarts --value "$UNIT_NAME" 2>/dev/null || echo 0)
	if ! systemctl is-active --quiet "$UNIT_NAME" || [[ $restarts0 != "$restarts1" ]]; then
		service_failed
	fi
	info "running (it said READY=1: it listens)"
}

print_connect() {
	local addr
	if [[ -n $ROOT ]]; then
		addr="<this Pi's address>"
	else
		addr=$(hostname -I 2>/dev/null | awk '{ print $1 }') || true
		[[ -n $addr ]] || addr=$(hostname 2>/dev/null || echo "<this Pi's address>")
	fi
	cat <<EOF

How to connect
  host:    $addr   (listening on $S_HOST)
  port:    $S_PORT   (mode $S_MODE)
  token:   $TOKEN   (sudo cat $TOKEN; copy it to the client, see docs/security.md)
  config:  $CONFIG   (after editing: sudo systemctl restart remoteio)
  logs:    journalctl -u remoteio -f
  client:  remoteio $INSTALLED_VERSION on the client too (not on PyPI yet: python -m build in a checkout,
           then pip install dist/remoteio-*.whl), the token copied, then:
           remoteio --host $addr --port $S_PORT info
EOF
}

do_install() {
	if [[ -f $ROOT$UNIT ]] && ! grep -qF "$MARKER" -- "$ROOT$UNIT"; then
		die "$EXIT_FAILED" "$UNIT exists and was not written by this installer: move it away and run again (nothing was changed)"
	fi
	read_record
	plan_package
	check_package_available # before anything changes
	# an edited config is read by the installed remoteio: without a venv yet (after
	# --uninstall --keep-config), it is decided once the venv is there
	local deferred=0
	if [[ -f $ROOT$CONFIG ]] && ! venv_python_works; then
		deferred=1
	else
		decide_config
	fi
	ensure_groups_and_user
	((DRY_RUN)) || save_record
	ensure_venv_and_package
	((!deferred)) || decide_config
	ensure_files
	ensure_service
	drop_previous_venv
	summary
	((DRY_RUN)) || print_connect
}

# ---- uninstall -----------------------------------------------------------------------
do_uninstall() {
	local args=() members
	mapfile -t args < <(shadow_root_args)
	read_record

	local foreign_unit=0
	if [[ -f $ROOT$UNIT ]] && ! grep -qF "$MARKER" -- "$ROOT$UNIT"; then
		foreign_unit=1
	fi
	if [[ -z $ROOT && $foreign_unit -eq 0 ]]; then
		say "service $UNIT_NAME"
		if [[ -f $UNIT ]] || systemctl list-unit-files "$UNIT_NAME" 2>/dev/null | grep -q "^$UNIT_NAME"; then
			if systemctl is-active --quiet "$UNIT_NAME" || systemctl is-enabled --quiet "$UNIT_NAME" 2>/dev/null; then
				change "stopped and disabled $UNIT_NAME"
				run systemctl disable --now --quiet "$UNIT_NAME" || warn "systemctl disable --now failed"
			fi
		fi
	fi

	say "files"
	if ((foreign_unit)); then
		warn "$UNIT was not written by this installer: it and its service are left alone"
	else
		remove_path "$ROOT$UNIT" "unit"
	fi
	if [[ -f $ROOT$RT_DROPIN ]] && grep -qF "$MARKER" -- "$ROOT$RT_DROPIN"; then
		remove_realtime_dropin
	fi
	if [[ -d $ROOT$DROPIN_DIR ]] && ! { ((DRY_RUN)) && [[ $(ls -A -- "$ROOT$DROPIN_DIR") == realtime.conf ]]; }; then
		info "left your drop-ins in $DROPIN_DIR (not the installer's)"
	fi
	if [[ $REC_created_udev_rule == yes || -f $ROOT$UDEV_RULE ]]; then
		if [[ -f $ROOT$UDEV_RULE ]] && grep -qF "$MARKER" -- "$ROOT$UDEV_RULE"; then
			remove_path "$ROOT$UDEV_RULE" "udev rule"
			[[ -n $ROOT ]] || run udevadm control --reload-rules || true
		fi
	fi
	if [[ -z $ROOT ]]; then
		run systemctl daemon-reload || true
		run systemctl reset-failed "$UNIT_NAME" 2>/dev/null || true
	fi
	remove_path "$ROOT$OPT_DIR" "program directory (venv, record)"
	remove_path "$ROOT$STATE_DIR" "state directory"
	if ((KEEP_CONFIG)); then
		[[ -e $ROOT$CONF_DIR ]] && info "kept $CONF_DIR (--keep-config): config and token"
	else
		remove_path "$ROOT$CONF_DIR" "configuration and token"
	fi

	say "user and groups"
	if ((!HAVE_RECORD)); then
		info "no install record ($RECORD): users and groups are left alone"
	fi
	if [[ $REC_created_user == yes ]] && ent passwd "$SVC_USER" >/dev/null; then
		change "removed user $SVC_USER"
		run userdel ${args[@]+"${args[@]}"} "$SVC_USER"
	elif ent passwd "$SVC_USER" >/dev/null; then
		info "user $SVC_USER kept (the installer did not create it$( ((HAVE_RECORD)) || printf ', as far as it knows'); userdel $SVC_USER removes it)"
	fi
	# (userdel may have removed it already, with USERGROUPS_ENAB in login.defs)
	if [[ $REC_created_group_remoteio == yes ]] && ent group "$SVC_GROUP" >/dev/null; then
		change "removed group $SVC_GROUP"
		run groupdel ${args[@]+"${args[@]}"} "$SVC_GROUP"
	fi
	if [[ $REC_created_group_gpio == yes ]] && ent group "$GPIO_GROUP" >/dev/null; then
		members=$(ent_field group "$GPIO_GROUP" 4 || true)
		if ((DRY_RUN)); then
			members=$(printf '%s\n' "$members" | tr ',' '\n' | grep -vx "$SVC_USER" | paste -sd, - || true)
		fi
		if [[ -n $members ]]; then
			info "group $GPIO_GROUP has other members now ($members): kept"
		else
			change "removed group $GPIO_GROUP (the installer created it)"
			run groupdel ${args[@]+"${args[@]}"} "$GPIO_GROUP"
		fi
	elif ent group "$GPIO_GROUP" >/dev/null; then
		info "group $GPIO_GROUP existed before the install: kept"
	fi
	summary
}

summary() {
	local what
	case $ACTION in
	uninstall) what="removed" ;;
	update) what="updated" ;;
	*) what="installed" ;;
	esac
	echo
	if ((${#CHANGES[@]} == 0)); then
		if [[ $ACTION == uninstall ]]; then
			say "Nothing changed: nothing of remoteio's was installed$([[ -z $ROOT ]] || printf ' in %s' "$ROOT")."
		elif ((DRY_RUN)); then
			say "Nothing would change: remoteio is installed as requested."
		else
			say "Nothing changed: remoteio is installed as requested$([[ -z $INSTALLED_VERSION ]] || printf ' (%s)' "$INSTALLED_VERSION")."
		fi
	elif ((DRY_RUN)); then
		say "Dry run: ${#CHANGES[@]} change(s) would be made; nothing was changed."
	else
		say "remoteio ${what}$([[ -z $INSTALLED_VERSION || $ACTION == uninstall ]] || printf ' (%s)' "$INSTALLED_VERSION")$([[ -z $ROOT ]] || printf ' in staging root %s' "$ROOT"): ${#CHANGES[@]} change(s)."
	fi
}

main() {
	parse_args "$@"
	exec </dev/null # nothing below reads the terminal (or, with curl | bash, the script)
	umask 022
	trap cleanup EXIT
	trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
	check_root "$@"
	check_paths
	cd / # nothing below depends on the caller's directory (--from and --root are absolute now)
	unset PYTHONPATH PYTHONHOME # the venv's Python sees only the venv
	check_staging_root
	check_systemd
	[[ $ACTION == uninstall ]] || check_python
	if ((DRY_RUN)); then
		say "dry run: nothing will be changed"
	fi
	if [[ -n $ROOT ]]; then
		say "staging root $ROOT: no systemctl, udevadm or apt-get; users go to $ROOT/etc"
	fi
	case $ACTION in
	uninstall) do_uninstall ;;
	*) do_install ;;
	esac
	exit "$EXIT_OK"
}

main "$@"
