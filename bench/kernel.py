"""The kernel backends beside rgpiod, on a real gpiochip (gpio-sim, in the VM of tests/hw).

``python -m bench --only kernel`` (root, QEMU: what tests/hw/run.sh needs)
builds rgpiod from the lgpio sdist on PyPI (one ``cc`` command), boots the VM,
and runs :func:`measure_inside` there, in one boot: for remoteio on the gpiod
and the lgpio backends, and for rgpiod (the lg project's C daemon, client
``rgpio``), on the same 28-line chip:

* ready: from the first request to the reply of the 26th line claimed (each
  remoteio pin then has its worker);
* idle CPU of the whole process tree with 26 outputs claimed and driven;
* an acknowledged write on the raw socket, on 1 line and round-robin on 26;
* the same through the client library;
* an edge made in sysfs (the line's pull) to the client's callback;
* the same edges through bench/edgefloor.py: a gpiod watcher, a relay and a
  client thread, three Python processes as remoteio's path has, none of its code;

beside the relayed Python floor measured in the same boot.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .floors import Floor, fork_floor_s
from .harness import OK, PINS_26, ROOT, frame, hello, percentiles, round_trips, row, tree_cpu_seconds
from .plan import Plan

GPIOS_26 = list(range(2, 28))            # BCM lines 2..27: PINS_26 on the header
EDGE_GPIO = 27                           # an input for the edge row (not among the 26 outputs)
REVISION = "d04170"
CACHE = Path(os.environ.get("REMOTEIO_BENCH_CACHE") or Path.home() / ".cache" / "remoteio-bench")
VM = ROOT / "tests" / "hw" / "vm" / "vm.py"


# ---- on the host ---------------------------------------------------------------------
def build_rgpiod() -> Path:
    """rgpiod built from the sources in lgpio's sdist (cached)."""
    binary = CACHE / "rgpiod"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rgpiod-", dir=CACHE))
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "lgpio==0.2.2.0", "-d", str(work)],
                       check=True, timeout=300)
        sdist = next(work.glob("lgpio-*.tar.gz"))
        shutil.unpack_archive(str(sdist), str(work))
        src = next(work.glob("lgpio-*/src"))
        sources = [str(p) for p in sorted(src.glob("lg*.c"))] + [str(src / "rgpiod.c")]
        subprocess.run(["cc", "-O2", "-I", str(src), "-o", str(binary), *sources,
                        "-lpthread", "-lrt"], check=True, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return binary


def _ensure(module: str, requirement: str) -> None:
    import importlib.util
    if importlib.util.find_spec(module) is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                       check=True, timeout=600)


def kernel(plan: Plan) -> List[Dict[str, Any]]:
    """The section: everything measured inside one VM boot."""
    if os.geteuid() != 0 or not shutil.which("cc"):
        return [row("kernel.skipped", "kernel backends beside rgpiod (VM)",
                    figure="not run", notes="needs root and cc; then QEMU (as tests/hw/run.sh)")]
    for module, requirement in (("gpiod", "gpiod>=2.1"), ("lgpio", "lgpio>=0.2"),
                                ("rgpio", "rgpio==0.2.2.0")):
        _ensure(module, requirement)
    rgpiod = build_rgpiod()
    out = ROOT / "bench" / "results" / "kernel-inside.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    subprocess.run([sys.executable, str(VM), "setup"], check=True, timeout=900)
    subprocess.run([sys.executable, str(VM), "run", "--timeout", "1200", "--",
                    sys.executable, "-m", "bench.kernel", "--plan", plan.name,
                    "--rgpiod", str(rgpiod), "--out", str(out)], check=True, timeout=1300)
    return json.loads(out.read_text())


# ---- inside the VM -------------------------------------------------------------------
def _writes(call: Callable[[int], Any], count: int) -> Dict[str, Any]:
    return percentiles(round_trips(call, count, warmup=min(200, count)))


def _tree_cpu(pid: int, seconds: float) -> float:
    """Percent of one CPU used by *pid* and its descendants over *seconds*."""
    before, start = tree_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return round(100 * (tree_cpu_seconds(pid) - before) / (time.monotonic() - start), 2)


def _edge_latency(chip, make_watch: Callable[[Callable[[], None]], None], count: int) -> Dict[str, Any]:
    """sysfs pull change -> the client's callback, *count* edges."""
    seen = threading.Event()
    make_watch(seen.set)
    samples = []
    for n in range(count):
        seen.clear()
        started = time.monotonic_ns()
        chip.pull(EDGE_GPIO, "pull-up" if n % 2 == 0 else "pull-down")
        if not seen.wait(5.0):
            raise RuntimeError(f"edge {n}: no callback within 5 s")
        samples.append(time.monotonic_ns() - started)
        time.sleep(0.02)  # each edge on a quiet line
    return percentiles(samples)


def _edge_floor(chip, counts: Dict[str, int]) -> Dict[str, Any]:
    """The same edges through bench/edgefloor.py: our topology, none of our code."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.edgefloor", "--chip", chip.chip_path,
                             "--line", str(EDGE_GPIO)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    stop = threading.Event()
    sock: Optional[socket.socket] = None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)
        if not ready:
            raise RuntimeError("the edge floor did not start within 60 s")
        sock = socket.create_connection(("127.0.0.1", int(proc.stdout.readline())), timeout=1.0)

        def watch(done: Callable[[], None]) -> None:
            def read() -> None:   # the client library's reader, reduced to its wake-up
                while not stop.is_set():
                    try:
                        if not sock.recv(4096):
                            return
                    except socket.timeout:
                        continue
                    except OSError:
                        return
                    done()
            threading.Thread(target=read, name="edge-floor-reader", daemon=True).start()
        chip.pull(EDGE_GPIO, "pull-down")
        return _edge_latency(chip, watch, counts["edges"])
    finally:
        stop.set()
        if sock is not None:
            sock.close()
        _reap(proc)   # it ends when its client leaves


def _remoteio(backend: str, chip, plan: Plan, counts: Dict[str, int]) -> Dict[str, Any]:
    from remoteio import RemoteServer
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log = open(workdir / "server.log", "wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "remoteio", "serve", "--backend", backend, "--chip",
         str(chip.chip_number), "--revision", REVISION, "--host", "127.0.0.1", "--port", "0",
         "--log-level", "warning", "--no-advertise"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        port = _listening_port(proc.pid, timeout=120)
        start_s = time.monotonic() - started
        client = hello(("127.0.0.1", port))
        t0 = time.perf_counter()
        client.sock.sendall(b"".join(frame(n, "on", pin=p) for n, p in enumerate(PINS_26)))
        replies = [client.read_line() for _ in PINS_26]
        ready_s = time.perf_counter() - t0
        if not all(OK in r for r in replies):
            raise RuntimeError(f"{backend}: {replies[:3]}")
        idle = _tree_cpu(proc.pid, plan.idle_seconds)
        pin = PINS_26[0]
        one = [frame(1, "off", pin=pin), frame(2, "on", pin=pin)]
        many = [frame(n, "off" if (n // 26) % 2 == 0 else "on", pin=PINS_26[n % 26])
                for n in range(52)]
        raw1 = _writes(lambda n: client.call_line(one[n & 1]), counts["raw"])
        raw26 = _writes(lambda n: client.call_line(many[n % 52]), counts["raw"])
        client.close()
        remote = RemoteServer("127.0.0.1", port, timeout=20)
        led = remote.pin(pin)
        lib1 = _writes(lambda n: led.on() if n & 1 else led.off(), counts["lib"])
        button = remote.pin(EDGE_GPIO, "g").as_input(pull="down")

        def watch(done: Callable[[], None]) -> None:
            button.when_changed = lambda event: done()
        chip.pull(EDGE_GPIO, "pull-down")
        edge = _edge_latency(chip, watch, counts["edges"])
        remote.close()
        return {"start_s": round(start_s, 3), "ready_s": round(ready_s, 3), "idle_cpu": idle,
                "raw1": raw1, "raw26": raw26, "lib1": lib1, "edge": edge}
    finally:
        _stop(proc, log, workdir)


def _rgpiod(binary: str, chip, plan: Plan, counts: Dict[str, int]) -> Dict[str, Any]:
    import rgpio
    workdir = Path(tempfile.mkdtemp(prefix="bench-rgpiod-"))
    port = _free_port()
    started = time.monotonic()
    log = open(workdir / "rgpiod.log", "wb")
    # -n: only clients from 127.0.0.1 (-l would listen on ::1 only)
    proc = subprocess.Popen([binary, "-n", "127.0.0.1", "-p", str(port), "-w", str(workdir)],
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_listening(port, timeout=60)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {(workdir / 'rgpiod.log').read_text()[-2000:]}") from None
        start_s = time.monotonic() - started
        sbc = rgpio.sbc("127.0.0.1", port)
        t0 = time.perf_counter()
        handle = sbc.gpiochip_open(chip.chip_number)
        for gpio in GPIOS_26:
            if sbc.gpio_claim_output(handle, gpio, 1) < 0:
                raise RuntimeError(f"rgpiod: cannot claim line {gpio}")
        ready_s = time.perf_counter() - t0
        idle = _tree_cpu(proc.pid, plan.idle_seconds)
        sock = sbc.sl.s   # the library's own connection: the raw rows skip only its Python

        def raw(gpio: int, level: int) -> None:
            sock.sendall(struct.pack("IIHHHH", rgpio.MAGIC, 12, rgpio._CMD_GW, 0, 3, 0)
                         + struct.pack("III", handle, gpio, level))
            status = sock.recv(16)
            if len(status) != 16 or struct.unpack("i12s", status)[0] != 0:
                raise RuntimeError(f"rgpiod write failed: {status!r}")
        raw1 = _writes(lambda n: raw(GPIOS_26[0], n & 1), counts["raw"])
        raw26 = _writes(lambda n: raw(GPIOS_26[n % 26], (n // 26) & 1), counts["raw"])
        lib1 = _writes(lambda n: sbc.gpio_write(handle, GPIOS_26[0], n & 1), counts["lib"])
        sbc.gpio_free(handle, EDGE_GPIO)
        sbc.gpio_claim_alert(handle, EDGE_GPIO, rgpio.BOTH_EDGES, rgpio.SET_PULL_DOWN)
        callbacks = []

        def watch(done: Callable[[], None]) -> None:
            callbacks.append(sbc.callback(handle, EDGE_GPIO, rgpio.BOTH_EDGES,
                                          lambda chip_, gpio, level, tick: done()))
        chip.pull(EDGE_GPIO, "pull-down")
        edge = _edge_latency(chip, watch, counts["edges"])
        for cb in callbacks:
            cb.cancel()
        sbc.gpiochip_close(handle)
        sbc.stop()
        return {"start_s": round(start_s, 3), "ready_s": round(ready_s, 3), "idle_cpu": idle,
                "raw1": raw1, "raw26": raw26, "lib1": lib1, "edge": edge}
    finally:
        _stop(proc, log, workdir)


def _reap(proc: subprocess.Popen) -> None:
    """Wait for a process this section started to end; killed (by its pid) after 30 s."""
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _stop(proc: subprocess.Popen, log: Any, workdir: Path) -> None:
    """Stop a server this section started (by its pid), and clean up after it."""
    proc.terminate()
    _reap(proc)
    log.close()
    shutil.rmtree(workdir, ignore_errors=True)


def _free_port(low: int = 18889, high: int = 19889) -> int:
    """A free port rgpiod accepts (it refuses ports above 32000)."""
    for port in range(low, high):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}..{high}")


def _wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _listening_port(pid: int, timeout: float) -> int:
    import psutil
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                return conn.laddr.port
        time.sleep(0.02)
    raise RuntimeError(f"the server did not listen within {timeout} s")


def measure_inside(plan: Plan, rgpiod: str) -> List[Dict[str, Any]]:
    sys.path.insert(0, str(ROOT / "tests" / "hw" / "vm"))
    from gpiosim import GpioSimChip
    counts = {"raw": max(50, plan.latency // 20), "lib": max(50, plan.lib_latency // 20),
              "edges": max(10, plan.edges // 50)}
    floor = Floor("relayed")
    try:
        floor_stats = floor.measure(counts["raw"])
    finally:
        floor.close()
    fork_s = fork_floor_s()
    figures: Dict[str, Dict[str, Any]] = {}
    for name in ("edge_floor", "rgpiod", "gpiod", "lgpio"):
        with GpioSimChip(num_lines=28, label="pinctrl-rp1",
                         line_names=[f"GPIO{n}" for n in range(28)]) as chip:
            if name == "edge_floor":
                edge_floor = _edge_floor(chip, counts)
                continue
            figures[name] = (_rgpiod(rgpiod, chip, plan, counts) if name == "rgpiod"
                             else _remoteio(name, chip, plan, counts))
    return _rows(figures, floor_stats, fork_s, edge_floor)


def _rows(figures: Dict[str, Dict[str, Any]], floor: Dict[str, Any],
          fork_s: float, edge_floor: Dict[str, Any]) -> List[Dict[str, Any]]:
    rg = figures["rgpiod"]
    rows = [row("kernel.floor", "VM: relayed Python floor (same boot)", stats=floor),
            row("kernel.edge_floor", "VM: edge floor: sysfs edge → gpiod in one Python process → "
                "a second → a client's thread (same boot)", stats=edge_floor,
                notes="remoteio's edge topology with none of remoteio (bench/edgefloor.py)"),
            row("kernel.fork_floor", f"VM: {len(GPIOS_26)} bare forks of a process of the "
                "zygote's size, one after the other (same boot)", figure=f"{fork_s} s",
                notes="the least a process per pin costs here before any of our code runs",
                fork_floor_s=fork_s)]

    def ratio(a: Optional[float], b: Optional[float]) -> str:
        return f"{a / b:.2f}×" if a and b else "–"
    for name in ("gpiod", "lgpio"):
        f = figures[name]
        rows += [
            row(f"kernel.{name}.idle", f"VM {name}: idle CPU, 26 outputs (tree)",
                figure=f"{f['idle_cpu']} % (rgpiod {rg['idle_cpu']} %)",
                target="≤ rgpiod's (or 0.05 %)", met=f["idle_cpu"] <= max(rg["idle_cpu"], 0.05),
                idle_cpu=f["idle_cpu"], rgpiod_idle_cpu=rg["idle_cpu"]),
            row(f"kernel.{name}.raw1", f"VM {name}: raw write, 1 line", stats=f["raw1"],
                target="≤ 2× relayed floor", met=f["raw1"]["p50_us"] <= 2 * floor["p50_us"],
                notes=f"{ratio(f['raw1']['p50_us'], floor['p50_us'])} floor; rgpiod "
                      f"{rg['raw1']['p50_us']} µs"),
            row(f"kernel.{name}.raw26", f"VM {name}: raw write, 26 lines round-robin",
                stats=f["raw26"], target="≤ 1.1× one line",
                met=f["raw26"]["p50_us"] <= 1.1 * f["raw1"]["p50_us"],
                notes=f"{ratio(f['raw26']['p50_us'], f['raw1']['p50_us'])} one line; rgpiod "
                      f"{rg['raw26']['p50_us']} µs"),
            row(f"kernel.{name}.lib1", f"VM {name}: client-library write, 1 line",
                stats=f["lib1"], notes=f"rgpio {rg['lib1']['p50_us']} µs"),
            row(f"kernel.{name}.edge", f"VM {name}: sysfs edge → client callback",
                stats=f["edge"], target="≤ rgpiod's",
                met=f["edge"]["p50_us"] <= rg["edge"]["p50_us"],
                notes=f"rgpiod {rg['edge']['p50_us']} µs p50, {rg['edge']['p99_us']} µs p99; "
                      f"edge floor {edge_floor['p50_us']} µs p50 "
                      f"({ratio(f['edge']['p50_us'], edge_floor['p50_us'])} that)"),
            row(f"kernel.{name}.ready", f"VM {name}: 26 pins ready",
                figure=f"{f['ready_s']} s (start {f['start_s']} s)", target="≤ 0.5 s",
                met=f["ready_s"] <= 0.5,
                notes=f"rgpiod {rg['ready_s']} s (start {rg['start_s']} s); "
                      f"floor: {len(GPIOS_26)} bare forks {fork_s} s"),
        ]
    rows.append(row("kernel.rgpiod", "VM rgpiod 0.2.2 (same boot)",
                    figure=f"raw {rg['raw1']['p50_us']} µs, idle {rg['idle_cpu']} %",
                    rgpiod=rg))
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    import argparse
    from .plan import FULL, QUICK, SMOKE
    parser = argparse.ArgumentParser(prog="python -m bench.kernel", description=__doc__)
    parser.add_argument("--plan", default="full", choices=("smoke", "quick", "full"))
    parser.add_argument("--rgpiod", required=True, help="the rgpiod binary (inside the VM)")
    parser.add_argument("--out", required=True, help="where to write the rows (JSON)")
    args = parser.parse_args(argv)
    plan = {"smoke": SMOKE, "quick": QUICK, "full": FULL}[args.plan]
    rows = measure_inside(plan, args.rgpiod)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
