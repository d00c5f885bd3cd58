"""What an output task does over time, as pure functions of the clock.

A :class:`Job` answers two questions for its worker: which level should the
pin have at time *t*, and when does that level next change. Levels are
computed from the job's start time, never accumulated, so a blink does not
drift however late its worker wakes. Times are ``time.monotonic()`` seconds.

A job with ``until`` set is *timed*: it ends at ``until`` (the pin then goes
off) and, in ``wait`` mode, holds the pin's queue until then.

>>> blink = Blink(start=10.0, until=None, on_time=0.5, off_time=0.25)
>>> blink.level_at(10.1), blink.level_at(10.6), blink.next_change(10.1)
(1.0, 0.0, 10.5)
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

#: PWM frequency used for value() and pulse() (gpiozero's PWMLED default)
PWM_FREQUENCY = 100
#: steps per second of a pulse's fade (gpiozero uses 25)
PULSE_FPS = 50


class Job:
    name = "job"
    pwm = False

    def __init__(self, start: float, until: Optional[float]):
        self.start = start
        self.until = until

    @property
    def timed(self) -> bool:
        return self.until is not None

    def level_at(self, now: float) -> float:
        raise NotImplementedError

    def next_change(self, now: float) -> Optional[float]:
        """When the level next changes after *now* (None: never)."""
        return None

    def wake_at(self, now: float) -> Optional[float]:
        """When the worker must next look at this job."""
        change = self.next_change(now)
        if self.until is None:
            return change
        return self.until if change is None else min(change, self.until)

    def moved_to(self, start: float) -> "Job":
        """The same job started at *start* instead (timed from the edge it made)."""
        if self.until is not None:
            self.until += start - self.start
        self.start = start
        return self


class Steady(Job):
    """on / off / value: one level, for a while or until replaced."""

    def __init__(self, start: float, until: Optional[float], level: float, name: str):
        super().__init__(start, until)
        self.level = level
        self.name = name
        self.pwm = 0.0 < level < 1.0

    def level_at(self, now: float) -> float:
        return self.level


class Blink(Job):
    name = "blink"

    def __init__(self, start: float, until: Optional[float], on_time: float, off_time: float):
        super().__init__(start, until)
        self.on_time = on_time
        self.period = on_time + off_time

    def _phase(self, now: float):
        cycles = math.floor((now - self.start) / self.period)
        return cycles, now - self.start - cycles * self.period

    def level_at(self, now: float) -> float:
        return 1.0 if self._phase(now)[1] < self.on_time else 0.0

    def next_change(self, now: float) -> Optional[float]:
        cycles, phase = self._phase(now)
        cycle_start = self.start + cycles * self.period
        return cycle_start + (self.on_time if phase < self.on_time else self.period)


class Pulse(Job):
    name = "pulse"
    pwm = True

    def __init__(self, start: float, until: Optional[float], fade_in: float, fade_out: float):
        super().__init__(start, until)
        self.fade_in = fade_in
        self.fade_out = fade_out
        self.period = fade_in + fade_out

    def level_at(self, now: float) -> float:
        phase = (now - self.start) % self.period
        if phase < self.fade_in:
            return phase / self.fade_in
        return max(0.0, 1.0 - (phase - self.fade_in) / self.fade_out)

    def next_change(self, now: float) -> Optional[float]:
        step = math.floor((now - self.start) * PULSE_FPS) + 1
        return self.start + step / PULSE_FPS


def make_job(op: str, args: Dict[str, Any], now: float) -> Job:
    """The job for a validated task request (op is from the whitelist)."""
    time_ms = args.get("time_ms") or 0.0
    until = now + time_ms / 1000.0 if time_ms else None
    if op == "on":
        return Steady(now, until, 1.0, "on")
    if op == "off":
        return Steady(now, until, 0.0, "off")
    if op == "value":
        return Steady(now, until, args["level"], "value")
    if op == "set":  # gpiozero's pin.state = x (the worker makes it digital without PWM)
        return Steady(now, until, args["state"], "set")
    if op == "blink":
        return Blink(now, until, args["on_time"], args["off_time"])
    if op == "pulse":
        return Pulse(now, until, args["fade_in_time"], args["fade_out_time"])
    raise ValueError(f"not a task: {op}")
