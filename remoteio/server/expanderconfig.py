"""The ``[expanders]`` configuration: I/O expander chips whose pins the server serves.

::

    [expanders.mcp0]
    chip = "mcp23017"      # or "mcp23008", "pcf8574" (0x20-0x27), "pcf8574a" (0x38-0x3F)
    bus = 1                # /dev/i2c-1
    address = 0x20
    poll_ms = 10           # how often watched inputs are read (change events)
    interrupt = 11         # optional: the header pin (board number) wired to INTA/INTB;
                           # watched inputs are then read on its falling edge, not polled

>>> spec = parse_expander("mcp0", {"chip": "mcp23017", "address": 0x21}, lambda k, m: ValueError(m))
>>> spec.bus, hex(spec.address), spec.pins[:3], len(spec.pins)
(1, '0x21', ('A0', 'A1', 'A2'), 16)
>>> spec = parse_expander("pcf0", {"chip": "pcf8574a"}, lambda k, m: ValueError(m))
>>> hex(spec.address), spec.pins[-1], spec.ports
('0x38', 'P7', 1)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from ..pins import BOARD_TO_BCM, EXPANDER_NAME, expander_pin_name
from ..protocol.buses import BUS_PINS

#: chip -> its ports (8 pins each); the register map is the same shape for all
#: (MCP23017 with IOCON.BANK = 0: register = base * 2 + port; MCP23008: base)
CHIPS: Dict[str, int] = {"mcp23017": 2, "mcp23008": 1, "pcf8574": 1, "pcf8574a": 1}
#: the addresses a chip can be strapped to (A2..A0), the first the default
ADDRESSES: Dict[str, range] = {"pcf8574": range(0x20, 0x28), "pcf8574a": range(0x38, 0x40)}
#: the fastest poll a configuration may ask for
MIN_POLL_MS, DEFAULT_POLL_MS = 1.0, 10.0


@dataclass(frozen=True)
class ExpanderSpec:
    name: str                  # "mcp0": its pins are "mcp0:A0" ...
    chip: str                  # a key of CHIPS
    bus: int = 1
    address: int = 0x20
    poll_ms: float = DEFAULT_POLL_MS
    interrupt: Optional[int] = None   # the header pin (board number) its INT line is wired to

    @property
    def ports(self) -> int:
        return CHIPS[self.chip]

    @property
    def pins(self) -> Tuple[str, ...]:
        """The pins' spellings after the colon, A0 (a PCF8574's: P0) first."""
        return tuple(expander_pin_name("", bit, self.chip)[1:] for bit in range(8 * self.ports))

    @property
    def key(self) -> Tuple[str, str]:
        """Its worker's key in the pool."""
        return ("expander", self.name)

    def settings(self) -> Dict[str, Any]:
        """What its worker is told (plain data, for marshal)."""
        return {"name": self.name, "chip": self.chip, "bus": self.bus,
                "address": self.address, "poll_ms": self.poll_ms, "interrupt": self.interrupt}


_KEYS = ("chip", "bus", "address", "poll_ms", "interrupt")


def parse_expander(name: str, table: Dict[str, Any],
                   fail: Callable[[Optional[str], str], Exception]) -> ExpanderSpec:
    """One ``[expanders.NAME]`` table; *fail(key, message)* makes the error to raise."""
    if not isinstance(name, str) or not EXPANDER_NAME.match(name):
        raise fail(None, f"{name!r} is not an expander name (a lower-case letter, then up to "
                         "15 lower-case letters, digits or _: mcp0)")
    for key in table:
        if key not in _KEYS:
            raise fail(key, f"unknown setting {key!r} (known: {', '.join(_KEYS)})")
    chip = table.get("chip")
    if chip not in CHIPS:
        raise fail("chip", f"chip must be one of {', '.join(CHIPS)}, not {chip!r}")
    bus = table.get("bus", 1)
    if isinstance(bus, bool) or not isinstance(bus, int) or not 0 <= bus <= 255:
        raise fail("bus", f"bus must be an I2C bus number 0..255, not {bus!r}")
    strapped = ADDRESSES.get(chip, range(0x03, 0x78))
    address = table.get("address", strapped[0] if chip in ADDRESSES else 0x20)
    if isinstance(address, bool) or not isinstance(address, int) or address not in strapped:
        which = f" (a {chip.upper()}'s)" if chip in ADDRESSES else ""
        raise fail("address", f"address must be an I2C address{which} "
                              f"0x{strapped[0]:02x}..0x{strapped[-1]:02x}, not {address!r}")
    poll_ms = table.get("poll_ms", DEFAULT_POLL_MS)
    if isinstance(poll_ms, bool) or not isinstance(poll_ms, (int, float)) or \
            not MIN_POLL_MS <= poll_ms <= 60_000:
        raise fail("poll_ms", f"poll_ms must be {MIN_POLL_MS:g} to 60000 ms, not {poll_ms!r}")
    interrupt = table.get("interrupt")
    if interrupt is not None:
        if isinstance(interrupt, bool) or not isinstance(interrupt, int) or \
                interrupt not in BOARD_TO_BCM:
            raise fail("interrupt", f"interrupt must be a header GPIO pin's board number "
                                    f"(11 for GPIO17), not {interrupt!r}")
        if interrupt in BUS_PINS.get(("i2c", bus), ()):
            raise fail("interrupt", f"pin {interrupt} is a pin of I2C bus {bus} itself")
    return ExpanderSpec(name, chip, bus, address, float(poll_ms), interrupt)


def parse_expanders(data: Any, fail: Callable[[str, Optional[str], str], Exception]
                    ) -> Dict[str, ExpanderSpec]:
    """The ``[expanders]`` section (or ``Server(expanders=...)``) -> spec by name."""
    if not isinstance(data, dict):
        raise fail("expanders", None, "expanders must be a table of expander tables")
    specs: Dict[str, ExpanderSpec] = {}
    where: Dict[Tuple[int, int], str] = {}
    for name, table in data.items():
        if isinstance(table, ExpanderSpec):
            spec = table
        else:
            if not isinstance(table, dict):
                raise fail("expanders", name, f"{name} is not an expander table "
                                              "([expanders.mcp0])")
            spec = parse_expander(name, table,
                                  lambda k, m, t=f"expanders.{name}": fail(t, k, m))
        if (spec.bus, spec.address) in where:
            raise fail(f"expanders.{name}", "address",
                       f"I2C bus {spec.bus}, address 0x{spec.address:02x} is "
                       f"{where[(spec.bus, spec.address)]} already")
        where[(spec.bus, spec.address)] = name
        if spec.interrupt is not None:   # a line per chip: whose INT pulled it low is unknown
            other = next((s.name for s in specs.values() if s.interrupt == spec.interrupt), None)
            if other is not None:
                raise fail(f"expanders.{name}", "interrupt",
                           f"pin {spec.interrupt} is the interrupt line of {other} already")
        specs[name] = spec
    return specs


def expanders_from_program(expanders: Optional[Dict[str, Any]]) -> Dict[str, ExpanderSpec]:
    """``Server(expanders={"mcp0": {"chip": "mcp23017", ...}})`` -> specs (ValueError)."""
    return parse_expanders(expanders or {}, lambda table, key, message: ValueError(
        f"[{table}]{' ' + key if key else ''}: {message}"))
