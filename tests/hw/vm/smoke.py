"""Guest-side smoke test for `vm.py check`: a real gpio-sim chip end to end.

Runs inside the VM. The chardev check needs only the stdlib; the lgpio and
gpiod checks run when those packages import (else they are reported as
skipped). Exit status 0 = every check that ran passed (with SMOKE_STRICT=1:
and none was skipped).
"""

import fcntl
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpiosim import GpioSimChip  # noqa: E402

RESULTS = []


def check(name):
    def wrap(fn):
        def run(*a):
            t = time.monotonic()
            try:
                note = fn(*a) or ""
                RESULTS.append((name, "ok", note))
            except ImportError as e:
                RESULTS.append((name, "SKIP", f"{e}"))
            except Exception as e:  # noqa: BLE001 - report every failure, keep going
                RESULTS.append((name, "FAIL", f"{type(e).__name__}: {e}"))
            print(f"  {RESULTS[-1][1]:4} {name} ({(time.monotonic() - t) * 1000:.0f} ms) {RESULTS[-1][2]}",
                  flush=True)
        return run
    return wrap


@check("chardev GPIO_GET_CHIPINFO_IOCTL")
def chardev(chip):
    info = bytearray(68)  # struct gpiochip_info: name[32], label[32], u32 lines
    with open(chip.chip_path, "rb") as f:
        fcntl.ioctl(f, 0x8044B401, info)
    name, label, lines = struct.unpack("32s32sI", info)
    assert name.rstrip(b"\0").decode() == chip.chip_name, name
    assert lines == chip.num_lines, lines
    label = label.rstrip(b"\0").decode()
    return f"{chip.chip_path}: {lines} lines, label {label!r}"


@check("lgpio output -> sysfs value")
def lgpio_output(chip):
    import lgpio
    h = lgpio.gpiochip_open(chip.chip_number)
    try:
        lgpio.gpio_claim_output(h, 4, 0)
        assert chip.wait_value(4, 0)
        lgpio.gpio_write(h, 4, 1)
        assert chip.wait_value(4, 1), "line 4 did not go high"
        n = 2000
        t = time.perf_counter()
        for i in range(n):
            lgpio.gpio_write(h, 4, i & 1)
        per = (time.perf_counter() - t) / n * 1e6
        lgpio.gpio_free(h, 4)
    finally:
        lgpio.gpiochip_close(h)
    return f"gpio_write {per:.1f} us"


@check("lgpio input <- sysfs pull")
def lgpio_input(chip):
    import lgpio
    h = lgpio.gpiochip_open(chip.chip_number)
    try:
        lgpio.gpio_claim_input(h, 17)
        seen = []
        for pull in ("pull-up", "pull-down", "pull-up"):
            chip.pull(17, pull)
            seen.append(lgpio.gpio_read(h, 17))
        assert seen == [1, 0, 1], seen
        lgpio.gpio_free(h, 17)
        # The claim's bias flag reaches the simulator too.
        lgpio.gpio_claim_input(h, 18, lgpio.SET_PULL_UP)
        assert chip.value(18) == 1 and lgpio.gpio_read(h, 18) == 1
    finally:
        lgpio.gpiochip_close(h)


@check("lgpio edge callback")
def lgpio_callback(chip):
    import lgpio
    h = lgpio.gpiochip_open(chip.chip_number)
    events, got = [], threading.Event()

    def on_edge(_chip, gpio, level, tick):
        events.append((gpio, level, time.monotonic()))
        if len(events) >= 4:
            got.set()
    try:
        chip.pull(22, "pull-down")
        lgpio.gpio_claim_alert(h, 22, lgpio.BOTH_EDGES)
        cb = lgpio.callback(h, 22, lgpio.BOTH_EDGES, on_edge)
        t_sent = []
        for pull in ("pull-up", "pull-down", "pull-up", "pull-down"):
            t_sent.append(time.monotonic())
            chip.pull(22, pull)
            time.sleep(0.05)
        assert got.wait(5), f"only {len(events)} of 4 callbacks fired: {events}"
        cb.cancel()
        levels = [lvl for _, lvl, _ in events[:4]]
        assert levels == [1, 0, 1, 0], levels
        lat = max(e[2] - s for e, s in zip(events, t_sent)) * 1e6
    finally:
        lgpio.gpiochip_close(h)
    return f"4 callbacks, worst sysfs->callback {lat:.0f} us"


HOLDER = """
import lgpio, sys, time
h = lgpio.gpiochip_open(int(sys.argv[1]))
lgpio.gpio_claim_output(h, 5, 1)
print("held", flush=True)
time.sleep(60)
"""


@check("lgpio line released after SIGKILL of its holder")
def lgpio_sigkill(chip):
    import lgpio
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(chip.chip_number)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", "holder did not start"
        assert chip.wait_value(5, 1), "holder's output not visible"
        h = lgpio.gpiochip_open(chip.chip_number)
        try:
            busy = lgpio.gpio_claim_output(h, 5, 0)
            raise AssertionError(f"claimed a held line (returned {busy})")
        except lgpio.error as e:
            busy = str(e)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        t = time.monotonic()
        attempts = 0
        while True:  # the kernel frees the line as the fd closes; bounded
            attempts += 1
            try:
                lgpio.gpio_claim_output(h, 5, 0)
                freed_ms = (time.monotonic() - t) * 1000
                break
            except lgpio.error:
                if time.monotonic() - t > 5:
                    raise
                time.sleep(0.01)
        assert chip.wait_value(5, 0)
        lgpio.gpiochip_close(h)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    return f"while held: {busy!r}; claimed at attempt {attempts}, {freed_ms:.1f} ms after the kill"


@check("gpiod v2 output + edge events")
def gpiod_check(chip):
    import gpiod
    from gpiod.line import Direction, Edge, Value
    out = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.ACTIVE)
    with gpiod.request_lines(chip.chip_path, consumer="smoke", config={6: out}) as req:
        assert chip.wait_value(6, 1)
        req.set_value(6, Value.INACTIVE)
        assert chip.wait_value(6, 0)
    chip.pull(7, "pull-down")
    edge = gpiod.LineSettings(edge_detection=Edge.BOTH)
    with gpiod.request_lines(chip.chip_path, consumer="smoke", config={7: edge}) as req:
        t = time.monotonic()
        chip.pull(7, "pull-up")
        assert req.wait_edge_events(5), "no edge event"
        lat = (time.monotonic() - t) * 1e6
        ev = req.read_edge_events()
        assert ev[0].event_type == ev[0].Type.RISING_EDGE, ev
    return f"rising edge after {lat:.0f} us"


@check("FIFO in the shared folder (virtiofs)")
def shared_fifo(_chip):
    # lgpio makes a FIFO in its cwd; QEMU's 9p would refuse it.
    path = f".smoke-fifo-{os.getpid()}"
    os.mkfifo(path)
    os.unlink(path)


def main():
    print(f"smoke: python {sys.version.split()[0]} at {sys.executable}, cwd {os.getcwd()}", flush=True)
    shared_fifo(None)
    # lgpio leaves its notify FIFO (.lgd-nfy0) in the cwd; keep it out of the
    # checkout by working in the guest's throwaway /tmp.
    os.chdir(tempfile.mkdtemp(prefix="smoke-"))
    with GpioSimChip(num_lines=28, label="smoke") as chip:
        print(f"smoke: {chip.chip_path} ({chip.dev_name})", flush=True)
        for fn in (chardev, lgpio_output, lgpio_input, lgpio_callback, lgpio_sigkill, gpiod_check):
            fn(chip)
    failed = [r for r in RESULTS if r[1] == "FAIL"]
    skipped = [r for r in RESULTS if r[1] == "SKIP"]
    # Worded so that CI log readers do not take it for a test runner's summary.
    print(f"smoke: {len(failed)} of {len(RESULTS)} checks failed, {len(skipped)} skipped", flush=True)
    strict = os.environ.get("SMOKE_STRICT") == "1"  # vm.py check --strict: a skip is a failure
    return 1 if failed or (strict and skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
