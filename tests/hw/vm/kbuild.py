"""Kernel-side pieces of the VM setup: vmlinux, guest modules, gpio-sim.ko.

Works only on files extracted from Debian's packages into the cache folder.
"""

import gzip
import logging
import lzma
import os
import re
import subprocess
import tarfile
import zlib
from pathlib import Path

log = logging.getLogger("remoteio-vm")

GPIO_SIM_SOURCES = {
    "drivers/gpio/gpio-sim.c": "gpio-sim-core.c",
    "kernel/irq/irq_sim.c": "irq_sim.c",
}

# irq_to_desc() is not exported to modules; generic_handle_irq() does the same
# lookup and is exported. This is the one change irq_sim.c needs out of tree.
IRQ_SIM_PATCH = ("handle_simple_irq(irq_to_desc(irqnum))", "generic_handle_irq(irqnum)")


class BuildError(RuntimeError):
    pass


def _mod_name(path):
    name = Path(path).name
    name = re.sub(r"\.ko(\.xz|\.zst|\.gz)?$", "", name)
    return name.replace("-", "_")


def read_ko(path):
    data = Path(path).read_bytes()
    name = str(path)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".zst"):
        return subprocess.run(["zstd", "-dcq"], input=data, stdout=subprocess.PIPE, check=True).stdout
    if name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def modinfo_depends(ko_bytes):
    """The `depends=` field of a module's .modinfo section (names, '_' form)."""
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", ko_bytes)
    if not m or not m.group(1):
        return []
    return [d.decode().replace("-", "_") for d in m.group(1).split(b",") if d]


def builtin_modules(moddir):
    try:
        lines = (moddir / "modules.builtin").read_text().split()
    except OSError:
        return set()
    return {_mod_name(line) for line in lines}


def pick_modules(image_root, abi, wanted, dest):
    """Copy `wanted` modules and their dependencies, decompressed, to `dest`.

    The image package ships no modules.dep (depmod makes it on install), so the
    dependencies come from each module's own modinfo. Returns (file names in
    a valid load order, names of every module the guest will have); built-in
    modules are not copied.
    """
    moddir = image_root / "lib" / "modules" / abi
    builtin = builtin_modules(moddir)
    index = {}
    for p in moddir.rglob("*.ko*"):
        index[_mod_name(p)] = p
    dest.mkdir(parents=True, exist_ok=True)
    order, seen = [], set()

    def visit(name, chain):
        if name in seen or name in builtin:
            return
        if name in chain:
            raise BuildError(f"module dependency cycle: {' -> '.join(chain + [name])}")
        if name not in index:
            raise BuildError(f"module {name} is neither built in nor in {moddir}")
        data = read_ko(index[name])
        for dep in modinfo_depends(data):
            visit(dep, chain + [name])
        seen.add(name)
        out = dest / (name + ".ko")
        out.write_bytes(data)
        order.append(out.name)

    for name in wanted:
        visit(name.replace("-", "_"), [])
    return order, builtin | seen


def extract_vmlinux(bzimage, dest):
    """Uncompressed ELF vmlinux from a bzImage, like scripts/extract-vmlinux.

    QEMU boots it directly through the PVH entry point, which skips the
    in-guest decompression (slow under TCG emulation).
    """
    data = Path(bzimage).read_bytes()
    codecs = [(b"\x28\xb5\x2f\xfd", "zstd"), (b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gzip")]
    for magic, codec in codecs:
        pos = data.find(magic)
        while pos != -1:
            elf = _try_decompress(data[pos:], codec)
            if elf and _complete_elf(elf):
                tmp = Path(str(dest) + ".tmp")
                tmp.write_bytes(elf)
                tmp.replace(dest)
                return
            pos = data.find(magic, pos + 1)
    raise BuildError(f"no compressed ELF kernel found in {bzimage}")


def _try_decompress(blob, codec):
    try:
        if codec == "xz":
            return lzma.LZMADecompressor().decompress(blob)
        if codec == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(blob)
        # zstd complains about the bytes after the frame; the output is whole.
        r = subprocess.run(["zstd", "-dcq"], input=blob, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return r.stdout
    except (lzma.LZMAError, zlib.error, OSError, EOFError, ValueError):  # a false magic match
        return None


def _complete_elf(b):
    if len(b) < 64 or b[:4] != b"\x7fELF" or b[4] != 2:
        return False
    shoff = int.from_bytes(b[0x28:0x30], "little")
    shentsize = int.from_bytes(b[0x3A:0x3C], "little")
    shnum = int.from_bytes(b[0x3C:0x3E], "little")
    return len(b) >= shoff + shentsize * shnum


def extract_gpio_sim_sources(source_deb, dest):
    """Pull the two C files out of linux-source's 150 MB tarball, streaming.

    Nothing of the ~1.5 GB tree is written to disk; reading stops as soon as
    both files are found.
    """
    dest.mkdir(parents=True, exist_ok=True)
    want = dict(GPIO_SIM_SOURCES)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(source_deb)], stdout=subprocess.PIPE)
    try:
        outer = tarfile.open(fileobj=proc.stdout, mode="r|")
        for member in outer:
            if not re.fullmatch(r"\./usr/src/linux-source-[\d.]+\.tar\.(xz|bz2|gz)", member.name):
                continue
            kind = member.name.rsplit(".", 1)[1]
            inner = tarfile.open(fileobj=outer.extractfile(member), mode="r|" + kind)
            for m in inner:
                rel = m.name.split("/", 1)[-1]
                if rel in want:
                    (dest / want.pop(rel)).write_bytes(inner.extractfile(m).read())
                    if not want:
                        break
            break
    finally:
        proc.kill()
        proc.wait()
    if want:
        raise BuildError(f"not found in {source_deb.name}: {', '.join(want)}")
    irq_sim = dest / "irq_sim.c"
    text = irq_sim.read_text()
    old, new = IRQ_SIM_PATCH
    if old not in text:
        raise BuildError(f"irq_sim.c changed upstream: '{old}' not found; update IRQ_SIM_PATCH")
    irq_sim.write_text(text.replace(old, new))
    (dest / "Kbuild").write_text(
        "# gpio-sim plus the irq_sim helper it needs (IRQ_SIM is not built into Debian's kernel)\n"
        "obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-core.o irq_sim.o\n")


def extract_headers(debs, abi, dest):
    """Extract headers + kbuild debs and make the result usable where it lies."""
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    src = dest / "usr" / "src"
    headers = src / f"linux-headers-{abi}-amd64"
    makefile = headers / "Makefile"
    # The arch Makefile includes the common one by absolute /usr/src path.
    text = makefile.read_text()
    fixed = re.sub(r"(?m)^include /usr/src/", f"include {src}/", text)
    if fixed == text:
        raise BuildError(f"unexpected {makefile}: {text[:200]!r}")
    makefile.write_text(fixed)
    for link in ("scripts", "tools"):
        p = headers / link
        if p.is_symlink() and os.readlink(p).startswith("/"):
            raise BuildError(f"{p} is an absolute symlink; cannot use it out of place")
    return headers


def build_gpio_sim(headers, srcdir, known_modules):
    """make gpio-sim.ko; check that the guest will have everything it needs."""
    cmd = ["make", "-C", str(headers), f"M={srcdir}", f"-j{os.cpu_count() or 2}",
           # No BTF for the module: that would need pahole, and nothing here uses it.
           "CONFIG_DEBUG_INFO_BTF_MODULES=", "modules"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BuildError(f"gpio-sim build failed:\n{r.stdout[-4000:]}")
    ko = srcdir / "gpio-sim.ko"
    missing = [d for d in modinfo_depends(ko.read_bytes()) if d not in known_modules]
    if missing:
        raise BuildError(f"gpio-sim.ko needs modules the initramfs lacks: {missing}")
    keep = {"Kbuild", "gpio-sim.ko", *GPIO_SIM_SOURCES.values()}
    for junk in srcdir.iterdir():
        if junk.name not in keep and junk.is_file():
            junk.unlink()
    return ko
