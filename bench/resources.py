"""What the server costs: start-up of 26 pins, memory, idle CPU.

* ready: on a fresh server, 26 ``open`` requests in one write; the time from
  sending them to the last reply (each reply comes from the pin's new worker,
  so then all 26 are ready);
  beside its floor: 26 forks as the zygote makes them, by a process of its
  size, one after the other (floors.fork_floor_s, in a process of its own);
* memory: PSS of the server and all its workers (psutil), with 1 and 26 pins;
  each pin worker's private memory (USS) beside its floor: a child forked
  as the zygote forks its workers, by a process that has imported the
  server, idle in ``select`` (what a forked Python child costs before it
  runs any of our code);
* idle CPU: user + system time of all server processes over a window with
  26 pins open and nothing to do.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

import psutil

from .harness import PINS_26, ROOT, RawClient, ServerProcess, frame, hello, row
from .plan import Plan


def _ready(server: ServerProcess) -> Tuple[float, RawClient]:
    """Seconds from sending 26 pipelined opens to the last (checked) reply;
    and the client, which still holds the 26 pins."""
    client = hello(server.address)
    frames = b"".join(frame(n + 1, "open", pin=p) for n, p in enumerate(PINS_26))
    start = time.perf_counter()
    client.sock.sendall(frames)
    replies = [client.read_line() for _ in PINS_26]
    elapsed = time.perf_counter() - start
    refused = [r for r in replies if b'"ok":true' not in r]
    if refused:
        raise RuntimeError(f"open refused: {refused[:3]}")
    return elapsed, client


# A process of the zygote's kind (single-threaded, the server imported) forks one
# child the way the zygote does (spawn.fork_function: the C library's fork
# where it can) and then only waits: the child's private pages are then what a
# worker costs before any of our code runs in it. Measured from here, so that
# the parent touches nothing after its fork (each page it wrote would become
# the child's own copy).
_FLOOR_CHILD = """
import os, select, sys
import remoteio.server.app
from remoteio.server.spawn import fork_function
fork = fork_function()
read_end, write_end = os.pipe()
pid = fork()
if pid == 0:
    try:
        select.select([read_end], [], [], 30.0)
    finally:
        os._exit(0)
sys.stdout.write(f"{pid} {getattr(fork, '__name__', 'fork')}\\n")
sys.stdout.flush()
sys.stdin.read()
os.close(write_end)
os.waitpid(pid, 0)
"""


def fork_floor_mib() -> Tuple[float, str]:
    """Private memory (USS, MiB) of a child forked as the zygote forks, idle
    in ``select``; and which fork made it (``bare_fork``: the C library's)."""
    proc = subprocess.Popen([sys.executable, "-c", _FLOOR_CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)
        if not ready:
            raise RuntimeError("the fork floor's process did not start within 60 s")
        pid, how = proc.stdout.readline().split()
        time.sleep(0.3)  # the child is in its select: what it owns now is what a fork costs
        return round(psutil.Process(int(pid)).memory_full_info().uss / 2**20, 2), how
    finally:
        proc.communicate("", timeout=30)


def fork_floor_s() -> float:
    """floors.fork_floor_s in a fresh process (one thread, nothing else run)."""
    done = subprocess.run([sys.executable, "-c", "from bench.floors import fork_floor_s; "
                           "print(fork_floor_s())"], capture_output=True, text=True,
                          cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the fork floor failed: {done.stderr[-500:]}")
    return float(done.stdout.split()[-1])


def worker_private_mib(server: ServerProcess) -> Tuple[float, float, int]:
    """Mean and largest private memory (USS, MiB) of the pin workers (the
    zygote's children), and how many."""
    sizes = []
    for proc in server.processes():
        try:
            if proc.pid != server.pid and proc.ppid() != server.pid:  # not the server, not the zygote
                sizes.append(proc.memory_full_info().uss / 2**20)
        except (psutil.NoSuchProcess, AttributeError):
            pass
    if not sizes:
        return 0.0, 0.0, 0
    return round(sum(sizes) / len(sizes), 2), round(max(sizes), 2), len(sizes)


def resources(plan: Plan) -> List[Dict[str, Any]]:
    with ServerProcess() as server:
        base_mib, _ = server.pss_mib()
        client = hello(server.address)
        client.request("open", pin=PINS_26[0])
        time.sleep(0.3)
        one_mib, one_procs = server.pss_mib()
        client.close()

    ready_s = []
    for round_ in range(plan.ready_rounds):
        with ServerProcess() as server:
            elapsed, client = _ready(server)
            ready_s.append(elapsed)
            if round_ < plan.ready_rounds - 1:
                client.close()
                continue
            time.sleep(0.5)  # every worker settles into its blocking wait
            all_mib, all_procs = server.pss_mib()
            worker_mean, worker_max, workers = worker_private_mib(server)
            before = server.cpu_seconds()
            started = time.monotonic()
            time.sleep(plan.idle_seconds)
            used = server.cpu_seconds() - before
            idle_elapsed = time.monotonic() - started
            client.close()
    idle_percent = 100 * used / idle_elapsed
    floor_mib, floor_fork = fork_floor_mib()
    forks_s = fork_floor_s()
    ready_sorted = sorted(ready_s)
    ready_median, ready_max = ready_sorted[len(ready_sorted) // 2], ready_sorted[-1]
    return [
        row("resources.ready", "26 new pins all ready (26 pipelined opens)",
            figure=f"{ready_median:.3f} s", target="≤ 0.1 s, every server", met=ready_max <= 0.1,
            notes=f"{len(ready_s)} fresh server{'s' if len(ready_s) > 1 else ''}, "
                  f"worst {ready_max:.3f} s; floor: 26 forks as the zygote forks, by a "
                  f"process of its size, {forks_s:.3f} s",
            seconds=[round(s, 4) for s in ready_s], fork_floor_s=forks_s),
        row("resources.pss.1", "memory (PSS, all processes), 1 pin open", figure=f"{one_mib} MiB",
            notes=f"{one_procs} processes; {base_mib} MiB with no pin", pss_mib=one_mib,
            processes=one_procs, pss_mib_no_pin=base_mib),
        row("resources.pss.26", "memory (PSS, all processes), 26 pins open", figure=f"{all_mib} MiB",
            target="≤ 60 MiB", met=all_mib <= 60, notes=f"{all_procs} processes",
            pss_mib=all_mib, processes=all_procs),
        row("resources.worker_private", "memory: a pin worker's own (USS), 26 pins open",
            figure=f"{worker_mean} MiB (largest {worker_max})", target="≤ 1.5 MiB, every worker",
            met=worker_max <= 1.5,
            notes=f"mean of {workers} workers, largest {worker_max} MiB; floor: a child forked "
                  f"as the zygote forks ({floor_fork}) by a process that imported the server, "
                  f"idle, owns {floor_mib} MiB",
            mean_mib=worker_mean, max_mib=worker_max, workers=workers, fork_floor_mib=floor_mib,
            fork_floor_how=floor_fork),
        row("resources.idle_cpu", "idle CPU, all server processes, 26 pins open",
            figure=f"{idle_percent:.2f} % of a core", target="≤ 0.5 %", met=idle_percent <= 0.5,
            notes=f"over {idle_elapsed:.1f} s", percent_of_one_core=round(idle_percent, 3),
            seconds=round(idle_elapsed, 1)),
    ]
