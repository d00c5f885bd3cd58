"""install.sh, tested into ``--root`` staging roots.

Nothing here touches the machine's own /etc, /opt, /var or systemd: every run
of the installer gets ``--root <tmp dir>``, a skeleton of a fresh system
(passwd, group, shadow, gshadow, the usual directories), and the installer
writes users and groups there with ``useradd --root``. The package is this
checkout, installed with ``--from`` into a venv inside the staging root (pip
fetches its dependencies from the package index): once per scenario, and the
tests of one scenario run in the order written, each on the state the one
before left. The installer must run as root (it chowns files to the service
user's numeric ids), so without root only the tests of the script itself
(shellcheck, usage errors, --help) run; CI runs as root.

Two scenarios:

- a fresh Debian: no ``gpio`` group, a login.defs with USERGROUPS_ENAB (as
  Debian's); the installer creates the group and a udev rule for it, and
  ``--uninstall`` removes both;
- a Raspberry Pi OS: ``gpio`` exists (with the user ``pi``), no login.defs;
  the installer only joins it, and ``--uninstall`` leaves it as it was.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11: the project depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "install.sh"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="install.sh targets Linux")

# what runs the installer past its root check
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("groupadd") is None,
    reason="install.sh runs as root (it chowns into the staging root) with useradd/groupadd; "
           "CI runs as root")

# Shadow-utils' own side files: backups of the previous version (passwd- ...)
# and the lock file. Every real system has them; they say nothing about what
# the installer left behind, so the before/after comparisons leave them out
# (passwd, group, shadow and gshadow themselves are compared byte for byte).
SHADOW_SIDE_FILES = {"etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/.pwd.lock"}

DEBIAN_PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
DEBIAN_GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
dialout:x:20:
shadow:x:42:
nogroup:x:65534:
"""
DEBIAN_LOGIN_DEFS = """\
# the lines of Debian's /etc/login.defs that useradd/userdel use here
SYS_UID_MIN 100
SYS_UID_MAX 999
SYS_GID_MIN 100
SYS_GID_MAX 999
USERGROUPS_ENAB yes
ENCRYPT_METHOD SHA512
"""

EXPECTED_CONFIG = """\
# remoteio server configuration (see docs/install.md and docs/security.md)
[server]
host = "{host}"
port = {port}
mode = {mode:<19}# "wait" or "nowait"
backend = "auto"          # "auto", "lgpio", "rpigpio" or "sim"
token_file = "/etc/remoteio/token"
on_disconnect = "finish"  # "finish" or "safe"
# tls_cert = "/etc/remoteio/tls/cert.pem"
# tls_key = "/etc/remoteio/tls/key.pem"

# Pin rules, by board number (all pins may be used when none are listed):
# [pins.7]
# access = "write"        # "none", "read" or "write"
# max_hold_ms = 60000
"""


def expected_config(host: str = "0.0.0.0", port: int = 8509, mode: str = "wait",
                    realtime: int = 0) -> str:
    text = EXPECTED_CONFIG.format(host=host, port=port, mode=f'"{mode}"')
    if realtime:  # install.sh --realtime=N: one more line
        text = text.replace('"safe"\n', f'"safe"\nrealtime_priority = {realtime:<6} '
                            '# SCHED_FIFO for the pin workers (docs/install.md)\n')
    return text


REALTIME_DROPIN = "etc/systemd/system/remoteio.service.d/realtime.conf"


# ---- helpers ---------------------------------------------------------------------------
def run_installer(*args: str, expect: Optional[int] = 0, user: Optional[int] = None,
                  timeout: float = 600) -> subprocess.CompletedProcess:
    """Run install.sh with *args*; check its exit code is *expect* (None: any)."""
    cmd = ["bash", str(INSTALL), *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *cmd]
    proc = subprocess.run(cmd, cwd="/", stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, (
            f"install.sh {' '.join(args)}: exit {proc.returncode}, expected {expect}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


Entry = Tuple[str, int, int, int, str]  # kind, mode, uid, gid, sha256 / link target


def snapshot(root: Path, skip: Iterable[str] = ()) -> Dict[str, Entry]:
    """Every path under *root*: kind, permission bits, owner, group, content hash."""
    skip = set(skip)
    out: Dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if rel in skip:
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                kind, content = "link", os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                kind, content = "dir", ""
            elif stat.S_ISREG(st.st_mode):
                kind, content = "file", hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                kind, content = "other", ""
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content)
    return out


def diff(before: Dict[str, Entry], after: Dict[str, Entry]) -> str:
    lines = []
    for rel in sorted(set(before) | set(after)):
        if before.get(rel) != after.get(rel):
            lines.append(f"{rel}: {before.get(rel)} -> {after.get(rel)}")
    return "\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else "")


def outside_venv(snap: Dict[str, Entry]) -> Dict[str, Entry]:
    return {k: v for k, v in snap.items() if not k.startswith("opt/remoteio/venv/")}


def entries(root: Path, db: str) -> Dict[str, list]:
    return {line.split(":")[0]: line.split(":")
            for line in (root / "etc" / db).read_text().splitlines() if line}


def ids(root: Path) -> Tuple[int, int, int]:
    """(uid of remoteio, gid of remoteio, gid of gpio) from the staging root's files."""
    passwd, group = entries(root, "passwd"), entries(root, "group")
    return int(passwd["remoteio"][2]), int(group["remoteio"][2]), int(group["gpio"][2])


def make_root(path: Path, passwd: str = DEBIAN_PASSWD, group: str = DEBIAN_GROUP,
              login_defs: Optional[str] = DEBIAN_LOGIN_DEFS) -> Path:
    """A skeleton of a freshly installed system, as far as the installer looks."""
    for d in ("etc/systemd/system", "etc/udev/rules.d", "opt", "var/lib", "usr/sbin"):
        (path / d).mkdir(parents=True, exist_ok=True)
    etc = path / "etc"
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(group)
    (etc / "shadow").write_text("".join(f"{line.split(':')[0]}:*:19000:0:99999:7:::\n"
                                        for line in passwd.splitlines()))
    (etc / "gshadow").write_text("".join(f"{line.split(':')[0]}:*::{line.split(':')[3]}\n"
                                         for line in group.splitlines()))
    os.chmod(etc / "shadow", 0o640)
    os.chmod(etc / "gshadow", 0o640)
    if login_defs is not None:
        (etc / "login.defs").write_text(login_defs)
    nologin = path / "usr/sbin/nologin"
    nologin.write_text("#!/bin/sh\necho 'This account is currently not available.'\nexit 1\n")
    nologin.chmod(0o755)
    return path


def python_args() -> list:
    """The installer's default Python is /usr/bin/python3. Where that one cannot
    make venvs (no python3-venv) use the interpreter running the tests."""
    system = Path("/usr/bin/python3")
    if system.exists() and subprocess.run(
            [str(system), "-I", "-c", "import venv, ensurepip"], capture_output=True).returncode == 0:
        return []
    base = getattr(sys, "_base_executable", None) or sys.executable
    return ["--python", base]


def staging_source(dest: Path) -> Path:
    """This checkout's package, copied: pip builds a project in its own tree
    (build/, *.egg-info), and the checkout must stay as it is (it may also hold
    lgpio's FIFOs, which a copy must not open)."""
    dest.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in",
                 "install.sh"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, dest / name)

    def ignore(directory: str, names: list) -> list:
        return [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo")) or
                not (Path(directory, n).is_dir() or Path(directory, n).is_file()) or
                Path(directory, n).is_symlink()]
    shutil.copytree(REPO / "remoteio", dest / "remoteio", ignore=ignore)
    for folder in ("docs", "examples"):          # the wheel's `remoteio docs`
        shutil.copytree(REPO / folder, dest / folder, ignore=ignore)
    return dest


class Scenario:
    def __init__(self, root: Path, args: list, before: Dict[str, Entry]):
        self.root = root
        self.args = args  # the options of the install, repeated by later runs
        self.before = before  # the staging root before the install
        self.after: Dict[str, Entry] = {}  # ... and right after it
        self.output = ""

    def p(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def run(self, *extra: str, expect: Optional[int] = 0) -> subprocess.CompletedProcess:
        return run_installer("--root", str(self.root), *self.args, *extra, expect=expect)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return staging_source(tmp_path_factory.mktemp("src") / "remoteio-src")


@pytest.fixture(scope="module")
def root_ok() -> None:
    if os.geteuid() != 0:
        pytest.skip("install.sh runs as root (it chowns into the staging root); CI runs as root")
    if shutil.which("useradd") is None or shutil.which("groupadd") is None:
        pytest.skip("needs useradd/groupadd (Debian package passwd)")


@pytest.fixture(scope="module")
def debian(root_ok, tmp_path_factory, source) -> Scenario:
    """A fresh Debian with remoteio installed by ``install.sh --root DIR --from SRC``."""
    root = make_root(tmp_path_factory.mktemp("debian") / "root")
    sc = Scenario(root, ["--from", str(source), *python_args()], snapshot(root))
    proc = sc.run()
    sc.output = proc.stdout + proc.stderr
    sc.after = snapshot(root)
    return sc


@pytest.fixture(scope="module")
def pi_os(root_ok, tmp_path_factory, source) -> Scenario:
    """A Raspberry Pi OS (gpio group exists, with pi in it), with other options."""
    root = make_root(tmp_path_factory.mktemp("pios") / "root",
                     passwd=DEBIAN_PASSWD + "pi:x:1000:1000:,,,:/home/pi:/bin/bash\n",
                     group=DEBIAN_GROUP + "gpio:x:997:pi\npi:x:1000:\n", login_defs=None)
    sc = Scenario(root, ["--from", str(source), *python_args(),
                         "--port", "9000", "--mode", "nowait", "--host", "127.0.0.1"], snapshot(root))
    proc = sc.run()
    sc.output = proc.stdout + proc.stderr
    sc.after = snapshot(root)
    return sc


# ---- the script itself -----------------------------------------------------------------
def test_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (CI: apt-get install shellcheck)")
    proc = subprocess.run(["shellcheck", str(INSTALL), str(REPO / "tests/install/real_mode_sandbox.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rm_is_guarded():
    """Every recursive rm is of a variable guarded against being empty, and the
    script runs with set -euo pipefail, all inside main() (a cut-off download runs nothing)."""
    text = INSTALL.read_text()
    assert re.search(r"^set -E?euo pipefail$", text, re.M)
    assert text.rstrip().endswith('main "$@"')
    rms = [line for line in text.splitlines() if re.search(r"\brm\s+-\w*r", line)]
    assert rms
    for line in rms:
        assert re.search(r'"\$\{\w+:\?\}"', line), f"unguarded rm: {line.strip()}"


def test_help():
    proc = run_installer("--help")
    for option in ("--version", "--from", "--port", "--mode", "--host", "--update", "--uninstall",
                   "--keep-config", "--dry-run", "--root", "--no-start", "--reset-config", "--python",
                   "--realtime"):
        assert option in proc.stdout, option


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option"),
    (["--port", "70000"], "not a TCP port"),
    (["--port"], "needs a value"),
    (["--mode", "fast"], "wait or nowait"),
    (["--version", "2.1"], "before 3.0"),
    (["--version", "3.0.0", "--from", "."], "cannot be combined"),
    (["--update", "--uninstall"], "cannot be combined"),
    (["--keep-config"], "goes with --uninstall"),
    (["--uninstall", "--port", "9000"], "takes no package"),
    (["--host", 'a"b'], "not an address"),
    (["--realtime=100"], "a priority 1-99"),
    (["--realtime=high"], "a priority 1-99"),
    (["--uninstall", "--realtime"], "takes no package"),
    (["--from", "/nonexistent/remoteio"], "no such file"),
    (["--root", "/"], "leave --root out"),
])
def test_usage_errors(args, message):
    proc = run_installer(*args, expect=2)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@needs_root
def test_refuses_without_root(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    root = make_root(tmp_path / "root")
    before = snapshot(root)
    proc = run_installer("--root", str(root), "--from", str(REPO), user=65534, expect=3)
    assert "must be run as root" in proc.stderr
    assert snapshot(root) == before


@needs_root
def test_staging_root_must_look_like_one(tmp_path):
    proc = run_installer("--root", str(tmp_path), "--dry-run", expect=3)
    assert "etc/passwd" in proc.stderr


@needs_root
def test_it_stops_before_changing_anything_when_pip_cannot_get_the_package(tmp_path):
    root = make_root(tmp_path / "root")
    before = snapshot(root)
    proc = run_installer("--root", str(root), "--version", "99.0.0", *python_args(), expect=1)
    assert "pip cannot get remoteio==99.0.0 (nothing was changed)" in proc.stderr, proc.stderr
    assert "--from" in proc.stderr and "python -m build" in proc.stderr
    assert "installed remoteio" not in proc.stdout
    assert snapshot(root) == before, diff(before, snapshot(root))


@needs_root
def test_dry_run_changes_nothing(tmp_path, source):
    root = make_root(tmp_path / "root")
    before, src_before = snapshot(root), snapshot(source)
    proc = run_installer("--root", str(root), "--from", str(source), *python_args(), "--dry-run")
    assert snapshot(root) == before
    assert snapshot(source) == src_before
    out = proc.stdout
    for what in ("would create system group gpio", "would create system user remoteio",
                 "would create venv", "would install remoteio", "would generate token",
                 "would create unit", "nothing was changed"):
        assert what in out, what


@needs_root
def test_a_unit_it_did_not_write_is_left_alone(tmp_path, source):
    root = make_root(tmp_path / "root")
    unit = root / "etc/systemd/system/remoteio.service"
    unit.write_text("[Service]\nExecStart=/usr/local/bin/something-else\n")
    before = snapshot(root)
    proc = run_installer("--root", str(root), "--from", str(source), *python_args(), expect=1)
    assert "not written by this installer" in proc.stderr and "nothing was changed" in proc.stderr
    proc = run_installer("--root", str(root), "--uninstall")
    assert "left alone" in proc.stderr
    assert snapshot(root) == before, diff(before, snapshot(root))


# ---- a fresh Debian --------------------------------------------------------------------
def test_install_reports(debian):
    out = debian.output
    assert "created system group gpio" in out
    assert "created system user remoteio" in out
    assert "generated token /etc/remoteio/token" in out
    assert re.search(r"remoteio installed \(\d+\.\d+", out), out
    assert "How to connect" in out and "8509" in out


def test_a_project_directory_is_built_from_a_copy_and_left_as_it_was(debian, source):
    """pip builds a project in its own tree, as root here: a stale build/lib in
    the user's checkout would bring back modules it has since lost."""
    left = sorted(p.name for p in source.iterdir() if p.name == "build" or p.name.endswith(".egg-info"))
    assert left == [], left


def test_user_and_groups(debian):
    root = debian.root
    passwd, group = entries(root, "passwd"), entries(root, "group")
    user = passwd["remoteio"]
    assert int(user[2]) < 1000, "a system user"
    assert user[5] == "/var/lib/remoteio"
    assert user[6] == "/usr/sbin/nologin"
    assert group["remoteio"][2] == user[3], "primary group remoteio"
    assert "remoteio" in group["gpio"][3].split(","), "member of gpio"
    assert int(group["gpio"][2]) < 1000, "a system group"
    for db in ("passwd", "group", "shadow", "gshadow"):
        names = [line.split(":")[0] for line in (root / "etc" / db).read_text().splitlines()]
        assert len(names) == len(set(names)), f"duplicate lines in etc/{db}"
    assert not any(m for m in group.get("dialout", ["", "", "", ""])[3].split(",") if m == "remoteio")


def test_files_owners_and_modes(debian):
    uid, gid, _ = ids(debian.root)
    expected = {
        # path: (kind, mode, uid, gid)
        "opt/remoteio": ("dir", 0o755, 0, 0),
        "opt/remoteio/venv": ("dir", 0o755, 0, 0),
        "opt/remoteio/install-record": ("file", 0o644, 0, 0),
        "etc/remoteio": ("dir", 0o750, 0, gid),
        "etc/remoteio/remoteio.toml": ("file", 0o640, 0, gid),
        "etc/remoteio/token": ("file", 0o600, uid, gid),
        "var/lib/remoteio": ("dir", 0o750, uid, gid),
        "etc/systemd/system/remoteio.service": ("file", 0o644, 0, 0),
        "etc/udev/rules.d/60-remoteio-gpio.rules": ("file", 0o644, 0, 0),
    }
    for rel, want in expected.items():
        got = debian.after.get(rel)
        assert got is not None, f"{rel} missing"
        assert got[:4] == want, f"{rel}: {got[:4]} != {want}"
    assert sorted(p.name for p in debian.p("etc/remoteio").iterdir()) == ["remoteio.toml", "token"]
    assert list(debian.p("var/lib/remoteio").iterdir()) == []
    # nothing else appeared outside the installer's paths, but shadow-utils' files
    new = set(debian.after) - set(debian.before) - SHADOW_SIDE_FILES
    ours = ("opt/remoteio", "etc/remoteio", "var/lib/remoteio", "etc/systemd/system/remoteio.service",
            "etc/udev/rules.d/60-remoteio-gpio.rules")
    assert [p for p in new if not p.startswith(ours)] == []
    # the venv belongs to root, and no file in it is writable by the service
    for rel, (kind, mode, fuid, _, _) in debian.after.items():
        if rel.startswith("opt/") and kind != "link":
            assert fuid == 0 and not mode & 0o022, f"{rel}: uid {fuid} mode {oct(mode)}"


def test_token(debian):
    token = debian.p("etc/remoteio/token").read_text()
    assert token.endswith("\n") and token.count("\n") == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token.strip()), "secrets.token_urlsafe(32)"


def test_venv_runs_remoteio(debian):
    venv = debian.p("opt/remoteio/venv")
    proc = subprocess.run([str(venv / "bin/remoteio"), "--version"], capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert proc.returncode == 0, proc.stderr
    version = re.search(r'__version__ = "([^"]+)"', (REPO / "remoteio/_version.py").read_text()).group(1)
    assert proc.stdout.strip() == f"remoteio {version}"
    proc = subprocess.run([str(venv / "bin/python"), "-I", "-c", "import gpiozero, remoteio.server"],
                          capture_output=True, text=True, cwd="/", timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_config(debian):
    text = debian.p("etc/remoteio/remoteio.toml").read_text()
    assert text == expected_config()
    config = tomllib.loads(text)
    assert config == {"server": {"host": "0.0.0.0", "port": 8509, "mode": "wait", "backend": "auto",
                                 "token_file": "/etc/remoteio/token", "on_disconnect": "finish"}}
    # and the installed server itself accepts it, as its unit will ask it to
    venv = debian.p("opt/remoteio/venv")
    proc = subprocess.run([str(venv / "bin/remoteio"), "check-config",
                           str(debian.p("etc/remoteio/remoteio.toml"))],
                          capture_output=True, text=True, cwd="/", timeout=60)
    assert proc.returncode == 0, proc.stderr


UNIT_MUST_HAVE = {
    "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "User": "remoteio", "Group": "remoteio", "SupplementaryGroups": "gpio",
    "ExecStart": "/opt/remoteio/venv/bin/remoteio serve --config /etc/remoteio/remoteio.toml",
    "WorkingDirectory": "/var/lib/remoteio", "StateDirectory": "remoteio",
    "Restart": "on-failure", "RestartSec": "2", "NoNewPrivileges": "yes",
    "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "DevicePolicy": "closed",
}


def unit_directives(text: str) -> Dict[str, list]:
    out: Dict[str, list] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_directives(debian):
    text = debian.p("etc/systemd/system/remoteio.service").read_text()
    directives = unit_directives(text)
    for key, value in UNIT_MUST_HAVE.items():
        assert directives.get(key) == [value], f"{key}: {directives.get(key)}"
    assert "char-gpiochip rw" in directives["DeviceAllow"]
    assert "/dev/gpiomem rw" in directives["DeviceAllow"]
    assert directives["WantedBy"] == ["multi-user.target"]
    assert "LG_WD=/var/lib/remoteio" in " ".join(directives["Environment"]).split()
    # the unit is the package's own (package data), as `remoteio systemd-unit` prints it
    venv = debian.p("opt/remoteio/venv")
    printed = subprocess.run([str(venv / "bin/remoteio"), "systemd-unit"], capture_output=True,
                             text=True, cwd="/", timeout=60)
    assert printed.stdout == text
    # the staging root never leaks into what the unit or the config say
    assert str(debian.root) not in text
    assert str(debian.root) not in debian.p("etc/remoteio/remoteio.toml").read_text()


def verify_root(sc: Scenario, dest: Path) -> Path:
    """A root for ``systemd-analyze verify --root``: the unit as installed, the
    command it starts (as installed), and this machine's own system units."""
    system_units = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                         if (p / "multi-user.target").exists()), None)
    if system_units is None:
        pytest.skip("no systemd unit directory on this machine (CI: apt-get install systemd)")
    (dest / "etc/systemd/system").mkdir(parents=True)
    shutil.copy2(sc.p("etc/systemd/system/remoteio.service"), dest / "etc/systemd/system")
    (dest / "opt/remoteio/venv/bin").mkdir(parents=True)
    shutil.copy2(sc.p("opt/remoteio/venv/bin/remoteio"), dest / "opt/remoteio/venv/bin")
    (dest / "usr/bin").mkdir(parents=True)                  # ExecReload's /bin/kill
    shutil.copy2(shutil.which("kill") or "/bin/kill", dest / "usr/bin/kill")
    (dest / "bin").symlink_to("usr/bin")
    (dest / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(system_units, dest / "usr/lib/systemd/system", symlinks=True)
    return dest


def test_unit_passes_systemd_analyze_verify(debian, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (CI: apt-get install systemd)")
    root = verify_root(debian, tmp_path / "verify")
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}",
                           "/etc/systemd/system/remoteio.service"],
                          capture_output=True, text=True, timeout=120)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if "remoteio" in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_unit_security_exposure(debian, tmp_path):
    """systemd's own rating of the sandbox (offline: nothing is started)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (CI: apt-get install systemd)")
    root = verify_root(debian, tmp_path / "verify")
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}",
                           "/etc/systemd/system/remoteio.service"],
                          capture_output=True, text=True, timeout=120)
    if "--offline" in proc.stderr and proc.returncode != 0:
        pytest.skip("systemd-analyze security --offline needs systemd >= 250")
    found = re.search(r"Overall exposure level for remoteio\.service: ([0-9.]+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) <= 3.0, proc.stdout


def test_second_run_changes_nothing(debian):
    proc = debian.run()
    assert "Nothing changed" in proc.stdout, proc.stdout
    assert "installed remoteio" not in proc.stdout and "created venv" not in proc.stdout
    assert snapshot(debian.root) == debian.after, diff(debian.after, snapshot(debian.root))


def test_dry_run_on_an_install_changes_nothing(debian):
    proc = debian.run("--dry-run")
    assert "Nothing would change" in proc.stdout, proc.stdout
    proc = debian.run("--dry-run", "--port", "9000")
    assert "would update config" in proc.stdout and "+port = 9000" in proc.stdout, proc.stdout
    proc = run_installer("--root", str(debian.root), "--uninstall", "--dry-run")
    assert "would remove user remoteio" in proc.stdout
    assert snapshot(debian.root) == debian.after, diff(debian.after, snapshot(debian.root))


def test_changed_option_updates_an_untouched_config(debian):
    token = debian.p("etc/remoteio/token").read_bytes()
    proc = debian.run("--port", "9000", "--mode", "nowait")
    assert "port 8509 -> 9000" in proc.stdout and "mode wait -> nowait" in proc.stdout
    assert debian.p("etc/remoteio/remoteio.toml").read_text() == expected_config(port=9000, mode="nowait")
    assert debian.p("etc/remoteio/token").read_bytes() == token
    # a later run without options keeps them (recorded), and going back restores everything
    proc = debian.run()
    assert "Nothing changed" in proc.stdout
    debian.run("--port", "8509", "--mode", "wait")
    assert snapshot(debian.root) == debian.after, diff(debian.after, snapshot(debian.root))


def test_realtime_grants_the_pin_workers_a_real_time_priority(debian):
    config, dropin = debian.p("etc/remoteio/remoteio.toml"), debian.p(REALTIME_DROPIN)
    proc = debian.run("--realtime")
    assert "realtime_priority 0 -> 50" in proc.stdout, proc.stdout
    assert config.read_text() == expected_config(realtime=50)
    assert tomllib.loads(config.read_text())["server"]["realtime_priority"] == 50
    text = dropin.read_text()
    assert "installed by remoteio install.sh" in text
    assert text.endswith("[Service]\nRestrictRealtime=no\nLimitRTPRIO=50\n"), text
    st = dropin.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o644)
    # the installed remoteio reads the setting
    checked = subprocess.run([str(debian.p("opt/remoteio/venv/bin/remoteio")), "check-config",
                              "--json", str(config)], capture_output=True, text=True, cwd="/",
                             timeout=60)
    assert '"realtime_priority": 50' in checked.stdout, checked.stdout + checked.stderr
    # it is recorded: a run without the option keeps it
    assert "Nothing changed" in debian.run().stdout
    # another priority changes both files
    debian.run("--realtime=20")
    assert config.read_text() == expected_config(realtime=20)
    assert dropin.read_text().endswith("LimitRTPRIO=20\n")
    # --realtime=0: the drop-in and its directory go, the config is as before
    proc = debian.run("--realtime=0")
    assert "removed unit drop-in" in proc.stdout, proc.stdout
    assert not dropin.parent.exists()
    assert snapshot(debian.root) == debian.after, diff(debian.after, snapshot(debian.root))


def test_realtime_never_rewrites_an_edited_config(debian):
    config, dropin = debian.p("etc/remoteio/remoteio.toml"), debian.p(REALTIME_DROPIN)
    edited = config.read_text() + "# mine\n"
    config.write_text(edited)
    edited_snap = snapshot(debian.root)
    proc = debian.run("--realtime", expect=4)
    assert "realtime_priority 0 -> 50" in proc.stderr and "Nothing was changed" in proc.stderr
    assert snapshot(debian.root) == edited_snap, diff(edited_snap, snapshot(debian.root))
    # a priority set by hand is granted by the drop-in, and the file stays as it is
    edited = edited.replace('"safe"\n', '"safe"\nrealtime_priority = 30\n')
    config.write_text(edited)
    proc = debian.run("--realtime=30")
    assert config.read_text() == edited
    assert dropin.read_text().endswith("LimitRTPRIO=30\n")
    # a drop-in of the user's own in the same directory is never touched
    own = dropin.parent / "override.conf"
    own.write_text("[Service]\nNice=-5\n")
    config.write_text(edited.replace("realtime_priority = 30\n", ""))
    proc = debian.run()
    assert not dropin.exists() and own.read_text() == "[Service]\nNice=-5\n"
    own.unlink()
    dropin.parent.rmdir()
    debian.run("--reset-config")
    debian.p("etc/remoteio/remoteio.toml.old").unlink()
    assert snapshot(debian.root) == debian.after, diff(debian.after, snapshot(debian.root))


def test_edited_config_is_never_overwritten(debian):
    config = debian.p("etc/remoteio/remoteio.toml")
    edited = config.read_text().replace('backend = "auto"', 'backend = "sim"') + "# mine\n"
    config.write_text(edited)
    edited_snap = snapshot(debian.root)
    # a plain run leaves it alone
    proc = debian.run()
    assert "edited by hand" in proc.stdout and "Nothing changed" in proc.stdout
    assert config.read_text() == edited
    # an option that would change it: refused, nothing changed, exit 4
    proc = debian.run("--port", "9000", expect=4)
    assert "port 8509 -> 9000" in proc.stderr and "Nothing was changed" in proc.stderr
    assert snapshot(debian.root) == edited_snap, diff(edited_snap, snapshot(debian.root))
    # an option that agrees with the edited file is fine
    debian.run("--port", "8509")
    assert config.read_text() == edited
    # --reset-config replaces it, keeping the edited one aside
    proc = debian.run("--reset-config")
    assert config.read_text() == expected_config()
    old = debian.p("etc/remoteio/remoteio.toml.old")
    assert old.read_text() == edited
    old.unlink()
    assert snapshot(debian.root) == debian.after, diff(debian.after, snapshot(debian.root))


def test_update_keeps_config_and_token(debian):
    token = debian.p("etc/remoteio/token").read_bytes()
    proc = debian.run("--update")
    assert "upgraded remoteio" in proc.stdout and "remoteio updated" in proc.stdout, proc.stdout
    assert debian.p("etc/remoteio/token").read_bytes() == token
    now = snapshot(debian.root)
    assert outside_venv(now) == outside_venv(debian.after), (
        diff(outside_venv(debian.after), outside_venv(now)))
    proc = subprocess.run([str(debian.p("opt/remoteio/venv/bin/remoteio")), "--version"],
                          capture_output=True, text=True, cwd="/", timeout=60)
    assert proc.returncode == 0, proc.stderr
    debian.after = now  # the venv's files are new (same package)


def broken_source(source: Path, dest: Path, version: str, breakage: str) -> Path:
    """A copy of *source* as remoteio *version*, with *breakage* appended to a module."""
    shutil.copytree(source, dest)
    (dest / "remoteio/_version.py").write_text(f'__version__ = "{version}"\n')
    module, code = breakage.split(":", 1)
    with open(dest / module, "a") as f:
        f.write("\n" + code + "\n")
    return dest


def test_a_failed_update_puts_the_previous_version_back(debian, tmp_path, source):
    """A new version whose command does not run fails its health check: the
    previous venv (kept until then) comes back, byte for byte."""
    broken = broken_source(source, tmp_path / "broken", "3.0.1",
                           "remoteio/cli/__init__.py:raise SystemExit('broken on purpose')")
    before = snapshot(debian.root)
    proc = run_installer("--root", str(debian.root), "--update", "--from", str(broken),
                         *python_args(), expect=1)
    assert "going back to remoteio 3.0.0" in proc.stderr, proc.stderr
    assert "remoteio 3.0.0 is back" in proc.stderr
    assert "kept remoteio 3.0.0 as /opt/remoteio/venv.previous" in proc.stdout
    assert snapshot(debian.root) == before, diff(before, snapshot(debian.root))
    version = subprocess.run([str(debian.p("opt/remoteio/venv/bin/remoteio")), "--version"],
                             capture_output=True, text=True, cwd="/", timeout=60)
    assert version.stdout.strip() == "remoteio 3.0.0"


def test_uninstall_keep_config_then_reinstall(debian):
    token = debian.p("etc/remoteio/token").read_bytes()
    uid = ids(debian.root)[0]
    run_installer("--root", str(debian.root), "--uninstall", "--keep-config")
    assert sorted(p.name for p in debian.p("etc/remoteio").iterdir()) == ["remoteio.toml", "token"]
    assert not debian.p("opt/remoteio").exists() and not debian.p("var/lib/remoteio").exists()
    assert "remoteio" not in entries(debian.root, "passwd")
    # a new install finds them, keeps both and gives the token to the new user
    proc = debian.run()
    assert "token /etc/remoteio/token exists: kept" in proc.stdout
    assert debian.p("etc/remoteio/token").read_bytes() == token
    new_uid, gid, _ = ids(debian.root)
    st = debian.p("etc/remoteio/token").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (new_uid, gid, 0o600)
    assert new_uid == uid  # the same free system uid, here
    now = snapshot(debian.root)
    assert outside_venv(now) == outside_venv(debian.after), (
        diff(outside_venv(debian.after), outside_venv(now)))
    assert debian.run().stdout.count("Nothing changed") == 1


def test_uninstall_leaves_nothing(debian):
    before = {k: v for k, v in debian.before.items() if k not in SHADOW_SIDE_FILES}
    debian.run("--realtime")  # its drop-in goes too
    proc = run_installer("--root", str(debian.root), "--uninstall")
    for what in ("removed user remoteio", "removed group gpio", "removed unit", "removed udev rule",
                 "removed unit drop-in"):
        assert what in proc.stdout, proc.stdout
    now = snapshot(debian.root, skip=SHADOW_SIDE_FILES)
    assert now == before, diff(before, now)
    proc = run_installer("--root", str(debian.root), "--uninstall")
    assert "Nothing changed" in proc.stdout


# ---- a Raspberry Pi OS -----------------------------------------------------------------
def test_pi_os_joins_the_existing_gpio_group(pi_os):
    group = entries(pi_os.root, "group")
    assert group["gpio"][2] == "997" and group["gpio"][3] == "pi,remoteio"
    assert "created system group gpio" not in pi_os.output
    assert not pi_os.p("etc/udev/rules.d/60-remoteio-gpio.rules").exists()
    assert "created_group_gpio=no" in pi_os.p("opt/remoteio/install-record").read_text()
    assert pi_os.p("etc/remoteio/remoteio.toml").read_text() == expected_config(
        host="127.0.0.1", port=9000, mode="nowait")
    proc = pi_os.run()
    assert "Nothing changed" in proc.stdout
    assert snapshot(pi_os.root) == pi_os.after, diff(pi_os.after, snapshot(pi_os.root))


def test_pi_os_uninstall_keeps_gpio(pi_os):
    before = {k: v for k, v in pi_os.before.items() if k not in SHADOW_SIDE_FILES}
    proc = run_installer("--root", str(pi_os.root), "--uninstall")
    assert "group gpio existed before the install: kept" in proc.stdout
    assert entries(pi_os.root, "group")["gpio"] == ["gpio", "x", "997", "pi"]
    now = snapshot(pi_os.root, skip=SHADOW_SIDE_FILES)
    assert now == before, diff(before, now)
