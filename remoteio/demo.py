"""``remoteio demo``: a server on the simulated board, driven by a client.

It starts a real server (listener, router, one process per pin) on the
simulated board, connects the real client to it over loopback, runs a few
tasks and draws what the board's pins really did, from the board's own
timestamps.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Sequence, TextIO, Tuple

from .client.client import RemoteServer
from .server import Server
from .testing import pulses

_BARS_UNICODE = " ▁▂▃▄▅▆▇█"
_BARS_ASCII = " ..-=+*##"


def waveform(history: Sequence[Tuple[int, float]], start_ns: int, end_ns: int,
             columns: int = 60, ascii_only: bool = False) -> str:
    """Draw a pin's history between two instants, one character per slice."""
    bars = _BARS_ASCII if ascii_only else _BARS_UNICODE
    out = []
    step = max(1, (end_ns - start_ns) // columns)
    for col in range(columns):
        t = start_ns + col * step
        value = 0.0
        for t_change, v in history:
            if t_change <= t:
                value = v
            else:
                break
        out.append(bars[min(len(bars) - 1, int(round(value * (len(bars) - 1))))] if value else "_")
    return "".join(out)


def run_demo(out: TextIO = sys.stdout, *, mode: str = "wait") -> int:
    ascii_only = (getattr(out, "encoding", None) or "").lower().replace("-", "") != "utf8"

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    with Server(host="127.0.0.1", port=0, backend="sim", mode=mode) as server:
        sim = server.sim
        say(f"remoteio demo: a server on the simulated board at 127.0.0.1:{server.port} "
            f"({server.backend.board_info()['description']}, mode {mode})")
        say("Each pin is driven by its own worker process; the waveforms below are the")
        say("simulated board's own record of what happened on the pins.\n")

        with RemoteServer("127.0.0.1", server.port, token=False) as remote:  # our own server
            def show(pin: int, t0: int, t1: int, note: str = "") -> None:
                wave = waveform(sim.history(pin), t0, t1, ascii_only=ascii_only)
                say(f"   BOARD{pin:<3}|{wave}| {note}")

            say('1. led = server.pin(7, "b")            # BOARD7 = GPIO4')
            say("   led.on(time_ms=300, wait=True)       # timed on the Pi, then off")
            led = remote.pin(7, "b")
            t0 = time.monotonic_ns()
            led.on(time_ms=300, wait=True)
            widths = [width for _, width in pulses(sim.history(7, t0))]
            show(7, t0, t0 + 400_000_000, f"on for {widths[0]:.2f} ms" if widths else "")

            say("\n2. led.blink(time_ms=800, on_time=0.1, off_time=0.1, wait=True)")
            t0 = time.monotonic_ns()
            led.blink(time_ms=800, on_time=0.1, off_time=0.1, wait=True)
            widths = [width for _, width in pulses(sim.history(7, t0))]
            show(7, t0, t0 + 900_000_000,
                 f"{len(widths)} blinks of {sum(widths) / max(1, len(widths)):.2f} ms")

            say("\n3. glow = server.pin(12); glow.pulse(time_ms=1000, fade_in_time=0.25, fade_out_time=0.25)")
            glow = remote.pin(12)
            t0 = time.monotonic_ns()
            glow.pulse(time_ms=1000, fade_in_time=0.25, fade_out_time=0.25, wait=True)
            show(12, t0, t0 + 1_050_000_000, "PWM, 50 steps a second")

            say('\n4. button = server.pin(11).as_input(pull="up")')
            say("   button.when_low = lambda: led.on(time_ms=200)   # a callback that calls the server")
            button = remote.pin(11).as_input(pull="up")
            pressed = threading.Event()

            def on_press() -> None:
                led.on(time_ms=200)
                pressed.set()
            button.when_low = on_press
            t0 = time.monotonic_ns()
            time.sleep(0.05)
            sim.drive(11, 0)            # a finger on the button...
            pressed.wait(2.0)
            time.sleep(0.1)
            sim.drive(11, None)         # ...and off again: the pull-up wins
            led.sync(2.0)
            say("   (the demo presses the button on the simulated board for 100 ms)")
            presses = [(t0, 1.0), (t0 + 50_000_000, 0.0), (t0 + 150_000_000, 1.0)]
            say(f"   BOARD11 |{waveform(presses, t0, t0 + 400_000_000, ascii_only=ascii_only)}| "
                "button (pulled up)")
            show(7, t0, t0 + 400_000_000, "LED switched by the callback")

            say("\n5. server.write({13: 1, 15: 1, 16: 0.5}); server.read_pins([13, 15, 16, 11])")
            remote.write({13: 1, 15: 1, 16: 0.5})
            say(f"   -> {remote.read_pins([13, 15, 16, 11])}")

            info = remote.info()
            memory_mib = info["memory"]["pss_kib"] / 1024
            say(f"\n6. server.info(): {len(info['pins'])} pins in use, "
                f"{info['memory']['processes']} processes, {memory_mib:.0f} MiB (PSS), "
                f"round trip {remote.ping() * 1e6:.0f} us")
        say("\nDone: every pin was made safe when the client closed. "
            "Next: `remoteio docs` (every page, and the examples).")
    return 0
