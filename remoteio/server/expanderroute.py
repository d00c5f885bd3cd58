"""The router's view of the declared I/O expanders: their pins, their workers' keys, their addresses.

A pure class: which expander a pin name belongs to (``BadPin`` for one the
server does not have), the message its worker gets for one of its pins,
and the refusal of a raw I2C call to an address an expander holds (its
worker owns that chip: another writer would fight its register image).

>>> from remoteio.server.expanderconfig import ExpanderSpec
>>> ex = Expanders({"mcp0": ExpanderSpec("mcp0", "mcp23008", 1, 0x20)})
>>> ex.spec_of("mcp0:A7").key
('expander', 'mcp0')
>>> Expanders({"pcf0": ExpanderSpec("pcf0", "pcf8574", 1, 0x21)}).spec_of(
...     "pcf0:A3")  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
remoteio.errors.BadPin: pcf0:A3: pcf0 is a PCF8574, with pins pcf0:P0 .. pcf0:P7
(bit numbers and A/B names are an MCP chip's)
>>> ex.check_address(("i2c", 1), "i2c_read_byte_data",
...                  {"addr": 0x20, "register": 0})  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
remoteio.errors.PinBusy: I2C bus 1, address 0x20 is held by expander mcp0 (an MCP23008):
use its pins, mcp0:A0 .. mcp0:A7
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, Dict, Iterable, Tuple

from ..errors import BadArgument, BadPin, PinBusy
from ..pins import PCF_CHIPS, expander_pin, expander_pin_name
from .config import PinRule
from .expanderconfig import ExpanderSpec
from .messages import ForPin, ToWorker, encode


class Expanders:
    def __init__(self, specs: Dict[str, ExpanderSpec], declarable: bool = False):
        self.specs = dict(specs)
        self._by_address = {(s.bus, s.address): s for s in self.specs.values()}
        #: may a client declare an expander at run time ([server] declare_expanders)?
        self.declarable = declarable

    def add(self, spec: ExpanderSpec) -> None:
        """An expander declared at run time; BadArgument/PinBusy if it clashes."""
        if spec.name in self.specs:
            raise BadArgument(f"expander {spec.name} is declared already")
        other = self._by_address.get((spec.bus, spec.address))
        if other is not None:
            raise PinBusy(f"I2C bus {spec.bus}, address 0x{spec.address:02x} is expander "
                          f"{other.name} already")
        for other in self.specs.values():
            if spec.interrupt is not None and other.interrupt == spec.interrupt:
                raise PinBusy(f"pin {spec.interrupt} is the interrupt line of {other.name} "
                              "already")
        self.specs[spec.name] = spec
        self._by_address[(spec.bus, spec.address)] = spec

    def __bool__(self) -> bool:
        return bool(self.specs)

    def spec_of(self, pin: str) -> ExpanderSpec:
        """The expander of *pin* (a canonical name); BadPin if there is none, or
        if the name is not one of its chip's (``"pcf0:A3"``, ``"mcp0:P1"``)."""
        name, _ = expander_pin(pin)
        spec = self.specs.get(name)
        if spec is None:
            have = ", ".join(sorted(self.specs)) or "none"
            raise BadPin(f"{pin}: this server has no expander {name!r} (its expanders: {have})")
        if pin not in self.pins(spec):
            hint = " (bit numbers and A/B names are an MCP chip's)" \
                if spec.chip in PCF_CHIPS and not pin.startswith(f"{name}:P") else ""
            raise BadPin(f"{pin}: {name} is {chip_name(spec)}, with pins {pin_range(spec)}{hint}")
        return spec

    @staticmethod
    def pins(spec: ExpanderSpec) -> Tuple[str, ...]:
        return tuple(expander_pin_name(spec.name, bit, spec.chip)
                     for bit in range(8 * spec.ports))

    @staticmethod
    def wrap(pin: str, message: ToWorker) -> ForPin:
        """*message* for the expander worker's pin *pin*."""
        return ForPin(pin, encode(message))

    def settings(self, spec: ExpanderSpec, rule: Callable[[str], PinRule]) -> Dict[str, Any]:
        """What the expander's worker is told when it starts: the chip, each pin's rule."""
        return {"expander": spec.settings(),
                "rules": {pin: asdict(rule(pin)) for pin in self.pins(spec)}}

    def check_address(self, key: Tuple[str, Any], op: str, args: Dict[str, Any]) -> None:
        """PinBusy if a raw I2C request reaches an address an expander holds."""
        if not self._by_address:
            return
        for addr in _addresses(op, args):
            spec = self._by_address.get((key[1], addr))
            if spec is not None:
                raise PinBusy(f"I2C bus {spec.bus}, address 0x{addr:02x} is held by expander "
                              f"{spec.name} ({chip_name(spec)}): use its pins, {pin_range(spec)}")


def chip_name(spec: ExpanderSpec) -> str:
    """``"an MCP23017"``, ``"a PCF8574"``: the chip, for a message."""
    return f"{'an' if spec.chip.startswith('mcp') else 'a'} {spec.chip.upper()}"


def pin_range(spec: ExpanderSpec) -> str:
    """``"mcp0:A0 .. mcp0:B7"``: the pins of *spec*'s chip, for a message."""
    pins = Expanders.pins(spec)
    return f"{pins[0]} .. {pins[-1]}"


def _addresses(op: str, args: Dict[str, Any]) -> Iterable[int]:
    if op == "i2c_transaction":
        return [part["addr"] for _, part in args["calls"]]
    if op == "i2c_rdwr":
        return [addr for addr, _, _ in args["msgs"]]
    return [args["addr"]]
