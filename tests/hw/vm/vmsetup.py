"""Host-side preparation of the gpio-sim test VM (stdlib only, Python >= 3.9).

Everything lands in one cache folder; the host's /boot and /lib/modules are
never touched. Debian's kernels do not enable CONFIG_GPIO_SIM, so gpio-sim.ko
is built out of tree against the exact kernel we boot.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

try:
    from . import kbuild
except ImportError:  # run as a script or imported as a top-level module
    import kbuild

log = logging.getLogger("remoteio-vm")

HERE = Path(__file__).resolve().parent
GUEST_INIT = HERE / "guest_init.sh"

# Package -> a file it provides; the file is how we tell it is installed
# (cheaper and more robust than asking dpkg about every one).
APT_PACKAGES = {
    "qemu-system-x86": "/usr/bin/qemu-system-x86_64",
    "busybox-static": None,  # /bin/busybox may also come from the dynamic one
    "gcc-12": "/usr/bin/gcc-12",
    "libc6-dev": "/usr/include/stdio.h",
    "make": "/usr/bin/make",
    "xz-utils": "/usr/bin/xz",
    "zstd": "/usr/bin/zstd",
    "cpio": "/usr/bin/cpio",
    # Runtime libraries of the prebuilt kbuild tools (fixdep, modpost, objtool)
    # that we extract instead of installing.
    "libelf1": None,
    "libssl3": None,
    # The network-fault rig (tests/net): the guest chroots into the host's /,
    # so the host's ip, tc and nft are the guest's.
    "iproute2": "/usr/sbin/tc",
    "nftables": "/usr/sbin/nft",
}

# Modules the guest init needs; their dependencies come from each module's
# modinfo, and those built into the kernel are skipped.
GUEST_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "overlay", "configfs", "virtiofs",
                 # tests/net: a veth pair between namespaces, netem (loss, delay,
                 # reordering), tbf (bandwidth) and nftables (partitions). No
                 # modprobe in the guest, so what they load on demand is listed too:
                 # crc32c for libcrc32c (nf_tables)
                 "veth", "sch_netem", "sch_tbf", "crc32c_generic", "nf_tables",
                 # tests/hw/test_hw_i2c.py: /dev/i2c-N with i2c-stub's chips
                 "i2c_dev", "i2c_stub"]
#: module parameters: i2c-stub's register-file chips for tests/hw/test_hw_i2c.py
MODULE_PARAMS = {"i2c_stub.ko": "chip_addr=0x20,0x50,0x6b"}

# Bump when the way artifacts are built changes, so old caches get rebuilt.
BUILD_VERSION = 3  # 2: the network modules of tests/net; 3: and i2c-dev, i2c-stub
KERNEL_SERIES = "6.12"
# Wait for another apt/dpkg (e.g. unattended-upgrades) instead of failing.
APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=300"]
BACKPORTS_FILE = Path("/etc/apt/sources.list.d/remoteio-vm-backports.sources")


class SetupError(RuntimeError):
    pass


def cache_dir():
    return Path(os.environ.get("REMOTEIO_VM_CACHE") or Path.home() / ".cache" / "remoteio-vm")


def run(cmd, **kw):
    log.debug("$ %s", " ".join(map(str, cmd)))
    try:
        return subprocess.run(cmd, check=True, **kw)
    except subprocess.CalledProcessError as e:
        out = (e.stderr or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        raise SetupError(f"command failed ({e.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{out[-2000:]}") from None


def _dpkg_installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.returncode == 0 and r.stdout.endswith(" installed")


class Apt:
    """apt-get with one `update` per process, done lazily."""

    def __init__(self):
        self.updated = False

    def update(self):
        if not self.updated:
            t = time.monotonic()
            run(["apt-get", "update", "-q", *APT_LOCK_WAIT], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            log.info("apt-get update: %.1f s", time.monotonic() - t)
            self.updated = True

    def ensure_packages(self):
        missing = [p for p, f in APT_PACKAGES.items()
                   if not (f and os.path.exists(f)) and not _dpkg_installed(p)]
        if not missing:
            return
        if os.geteuid() != 0:
            raise SetupError(f"missing apt packages {missing}; run as root or install them")
        self.update()
        t = time.monotonic()
        log.info("apt-get install %s", " ".join(missing))
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_LOCK_WAIT, *missing],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log.info("apt-get install: %.1f s", time.monotonic() - t)

    def depends(self, pkg):
        r = subprocess.run(["apt-cache", "depends", pkg], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return r.stdout if r.returncode == 0 else ""

    def candidate(self, pkg):
        r = subprocess.run(["apt-cache", "policy", pkg], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        m = re.search(r"Candidate:\s*(\S+)", r.stdout)
        return m.group(1) if m and m.group(1) != "(none)" else None

    def versions(self, pkg):
        r = subprocess.run(["apt-cache", "madison", pkg], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return [line.split("|")[1].strip() for line in r.stdout.splitlines() if "|" in line]

    def download(self, specs, dest):
        # APT::Sandbox::User=root: the _apt user cannot write into root's home.
        run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *specs],
            cwd=dest, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def resolve_kernel(apt):
    """Find the current 6.12 ABI (e.g. 6.12.117+deb12) and its package version.

    Superseded kernel packages vanish from the mirror, so never pin one: ask
    apt which ABI the meta-package points at today.
    """
    meta = f"linux-image-{KERNEL_SERIES}-amd64"
    for attempt in range(2):
        m = re.search(rf"linux-image-({re.escape(KERNEL_SERIES)}\.\d+\+\S+?)-amd64\b", apt.depends(meta))
        if m:
            abi = m.group(1)
            version = apt.candidate(f"linux-image-{abi}-amd64")
            if version:
                return abi, version
        if attempt == 0:
            # Bookworm gets 6.12 through its security suite; older mirrors
            # only through backports, which we then enable in our own file.
            enable_backports(apt)
    raise SetupError(f"apt knows no {meta}; is this Debian 12 with its security or backports suite?")


def enable_backports(apt):
    if BACKPORTS_FILE.exists() or os.geteuid() != 0:
        return
    log.info("enabling bookworm-backports in %s", BACKPORTS_FILE)
    BACKPORTS_FILE.write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    apt.updated = False
    apt.update()


def init_hash():
    h = hashlib.sha256(GUEST_INIT.read_bytes())
    h.update(str(BUILD_VERSION).encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def cache_lock(cache):
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def load_state(cache):
    try:
        state = json.loads((cache / "current.json").read_text())
    except (OSError, ValueError):
        return None
    d = cache / state.get("dir", "-")
    need = [d / "vmlinux", d / "initramfs.cpio", d / "gpio-sim" / "gpio-sim.ko"]
    if state.get("build") != BUILD_VERSION or not all(p.exists() for p in need):
        return None
    state["path"] = d
    return state


def _save_state(cache, state):
    tmp = cache / "current.json.tmp"
    tmp.write_text(json.dumps({k: v for k, v in state.items() if k != "path"}, indent=1))
    tmp.replace(cache / "current.json")


def artifacts(refresh=False):
    """Return {vmlinux, initramfs, ...} paths, building whatever is missing."""
    cache = cache_dir()
    state = None if refresh else load_state(cache)
    if state and state.get("init") == init_hash():
        return _paths(state)
    return setup(refresh=refresh)


def _paths(state):
    d = state["path"]
    return {"vmlinux": d / "vmlinux", "initramfs": d / "initramfs.cpio", "abi": state["abi"]}


def setup(refresh=False):
    t0 = time.monotonic()
    cache = cache_dir()
    apt = Apt()
    with cache_lock(cache):  # also keeps parallel setups from racing apt
        t = time.monotonic()
        apt.ensure_packages()
        log.info("apt packages ok: %.1f s", time.monotonic() - t)
        state = None if refresh else load_state(cache)
        if state is None:
            try:
                state = build_kernel_artifacts(cache, apt)
            except (kbuild.BuildError, subprocess.CalledProcessError, OSError) as e:
                raise SetupError(str(e)) from e
        if state.get("init") != init_hash():
            t = time.monotonic()
            build_initramfs(state["path"], state["modules"])
            state["init"] = init_hash()
            _save_state(cache, state)
            log.info("initramfs: %.1f s", time.monotonic() - t)
    log.info("setup done in %.1f s (kernel %s, cache %s)", time.monotonic() - t0, state["abi"], cache)
    return _paths(state)


def build_kernel_artifacts(cache, apt):
    apt.update()  # always: the mirror only keeps the newest kernel debs
    abi, version = resolve_kernel(apt)
    log.info("kernel %s (package version %s)", abi, version)
    final = cache / f"{abi}-amd64"
    work = cache / f"{abi}-amd64.build"
    shutil.rmtree(work, ignore_errors=True)
    debs = work / "debs"
    debs.mkdir(parents=True)

    t = time.monotonic()
    src_version = version if version in apt.versions(f"linux-source-{KERNEL_SERIES}") else None
    pkgs = [f"linux-image-{abi}-amd64={version}", f"linux-headers-{abi}-amd64={version}",
            f"linux-headers-{abi}-common={version}", f"linux-kbuild-{abi}={version}",
            f"linux-source-{KERNEL_SERIES}" + (f"={src_version}" if src_version else "")]
    apt.download(pkgs, debs)
    log.info("download kernel packages: %.1f s", time.monotonic() - t)

    def deb(prefix):
        found = sorted(debs.glob(prefix + "_*.deb"))
        if not found:
            raise SetupError(f"apt-get download gave no {prefix}")
        return found[0]

    t = time.monotonic()
    image = work / "image"
    run(["dpkg-deb", "-x", str(deb(f"linux-image-{abi}-amd64")), str(image)])
    kbuild.extract_vmlinux(image / "boot" / f"vmlinuz-{abi}-amd64", work / "vmlinux")
    modules, known = kbuild.pick_modules(image, f"{abi}-amd64", GUEST_MODULES, work / "modules")
    log.info("vmlinux + modules: %.1f s", time.monotonic() - t)

    t = time.monotonic()
    kbuild.extract_gpio_sim_sources(deb(f"linux-source-{KERNEL_SERIES}"), work / "gpio-sim")
    log.info("gpio-sim sources: %.1f s", time.monotonic() - t)

    t = time.monotonic()
    headers = kbuild.extract_headers(
        [deb(f"linux-headers-{abi}-amd64"), deb(f"linux-headers-{abi}-common"), deb(f"linux-kbuild-{abi}")],
        f"{abi}", work / "headers")
    kbuild.build_gpio_sim(headers, work / "gpio-sim", known)
    log.info("build gpio-sim.ko: %.1f s", time.monotonic() - t)

    # Keep only what booting needs: the debs and extracted trees are ~500 MB.
    for sub in ("debs", "headers", "image"):
        shutil.rmtree(work / sub)
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)
    for old in cache.iterdir():  # a previous kernel's artifacts
        if old != final and old.is_dir() and (old / "vmlinux").exists():
            log.info("removing old kernel artifacts %s", old)
            shutil.rmtree(old, ignore_errors=True)
    state = {"abi": f"{abi}-amd64", "version": version, "dir": final.name, "build": BUILD_VERSION,
             "modules": [f"modules/{m}" for m in modules] + ["gpio-sim/gpio-sim.ko"],
             "init": None, "path": final}
    _save_state(cache, state)
    return state


def build_initramfs(d, modules):
    """An uncompressed newc cpio: busybox as /init's shell plus the modules.

    Uncompressed because decompressing under TCG emulation costs boot time.
    """
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise SetupError("/bin/busybox missing (apt-get install busybox-static)")
    if b"ld-linux" in busybox.read_bytes()[:65536]:
        raise SetupError("/bin/busybox is dynamically linked; install busybox-static")
    root = d / "initramfs.root"
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("bin", "dev", "proc", "sys", "ctl", "lib/modules", "mnt/lower", "mnt/rw", "mnt/root"):
        (root / sub).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    shutil.copy2(GUEST_INIT, root / "init")
    os.chmod(root / "init", 0o755)
    names = []
    for rel in modules:
        src = d / rel
        shutil.copy2(src, root / "lib" / "modules" / src.name)
        names.append(f"{src.name} {MODULE_PARAMS.get(src.name, '')}".rstrip())
    (root / "modules.list").write_text("\n".join(names) + "\n")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    out = d / "initramfs.cpio.tmp"
    with open(out, "wb") as f:
        run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=root,
            input="\n".join(files).encode(), stdout=f, stderr=subprocess.PIPE)
    out.replace(d / "initramfs.cpio")
    shutil.rmtree(root)
