"""The buses' gate: a bus's access and its address allowlist, judged before its worker.

>>> from remoteio.server.busconfig import BusRule
>>> gate = BusGate("write", {("i2c", 1): BusRule("read", (0x20,))})
>>> gate.check(("i2c", 1), "i2c_write_byte_data", {"addr": 0x20, "register": 0, "value": 1})
Traceback (most recent call last):
...
remoteio.errors.Forbidden: I2C bus 1 is read-only: i2c_write_byte_data is refused
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from .busconfig import BusRule
from ..errors import Forbidden
from ..protocol.buses import bus_name
from ..protocol.spi import WRITE_OPS as SPI_WRITE_OPS
from ..server.simdevices import DEFAULT_I2C_DEVICES
from .spiconfig import spi_settings

Key = Tuple[Any, ...]
#: SMBus calls that only read (everything else may change a device)
READ_CALLS = frozenset(("read_byte", "read_byte_data", "read_word_data", "read_block_data",
                        "read_i2c_block_data"))


class BusGate:
    def __init__(self, default_access: str = "write",
                 rules: Optional[Dict[Key, BusRule]] = None):
        self.default = BusRule(default_access)
        self.rules = dict(rules or {})

    def rule(self, key: Key) -> BusRule:
        return self.rules.get(key, self.default)

    def check(self, key: Key, op: str, args: Dict[str, Any]) -> None:
        """Raise Forbidden unless the bus's rule lets *op* through."""
        rule, name = self.rule(key), bus_name(key)
        if rule.access == "none":
            raise Forbidden(f"{name} is not served (access none)")
        if key[0] == "spi":
            if rule.access == "read" and spi_writes(op, args):
                raise Forbidden(f"{name} is read-only: {op} is refused (readbytes only)")
            return
        for call, addr, reads in _parts(op, args):
            if rule.access == "read" and not reads:
                raise Forbidden(f"{name} is read-only: {call} is refused")
            if rule.addresses is not None and addr not in rule.addresses:
                raise Forbidden(f"{name}: address 0x{addr:02x} is not in its allowlist")

    def check_expander(self, name: str, number: int, address: int) -> None:
        """An I/O expander on I2C bus *number* at *address* is a device of
        that bus, and it writes its registers (direction, pulls, outputs):
        Forbidden unless the bus's rule lets writes to *address* through.

        >>> BusGate("write", {("i2c", 1): BusRule("read")}).check_expander("mcp0", 1, 0x20)
        Traceback (most recent call last):
        ...
        remoteio.errors.Forbidden: expander mcp0: I2C bus 1 is read-only (an expander writes its registers)
        """
        rule, bus = self.rule(("i2c", number)), bus_name(("i2c", number))
        if rule.access == "none":
            raise Forbidden(f"expander {name}: {bus} is not served (access none)")
        if rule.access == "read":
            raise Forbidden(f"expander {name}: {bus} is read-only (an expander writes its registers)")
        if rule.addresses is not None and address not in rule.addresses:
            raise Forbidden(f"expander {name}: {bus}: address 0x{address:02x} is not in its allowlist")

    def check_sim(self, number: int, address: int, action: str) -> None:
        """``sim`` on a pin of a bus's chip honours the bus's rule: nothing on a
        bus not served or an address not allowed; only history on a read-only bus."""
        rule, name = self.rule(("i2c", number)), bus_name(("i2c", number))
        if rule.access == "none":
            raise Forbidden(f"{name} is not served (access none)")
        if rule.addresses is not None and address not in rule.addresses:
            raise Forbidden(f"{name}: address 0x{address:02x} is not in its allowlist")
        if rule.access == "read" and action not in ("history", "levels"):
            raise Forbidden(f"{name} is read-only (sim {action} refused)")

    def devices(self, number: int) -> Tuple[Tuple[str, int], ...]:
        """The simulated devices of I2C bus *number* ((kind, address) pairs)."""
        devices = self.rule(("i2c", number)).devices
        return tuple(DEFAULT_I2C_DEVICES if devices is None else devices)

    def settings(self, key: Key, sim: bool) -> Dict[str, Any]:
        """What the bus's worker is told when it starts (plain data)."""
        if key[0] == "spi":
            return spi_settings(self.rule(key), key, sim)
        devices = self.rule(key).devices
        return {"sim": sim, "devices": [list(d) for d in (
            DEFAULT_I2C_DEVICES if devices is None else devices)]}


def spi_writes(op: str, args: Dict[str, Any]) -> bool:
    """Does an SPI request send data to the device (or drive its simulated inputs)?
    Full duplex, every transfer writes: a read-only device takes readbytes
    (which clocks out zeros), configure, close, and sim's readings."""
    return op in SPI_WRITE_OPS or (op == "spi_sim" and args["action"] == "set_voltage")


def _parts(op: str, args: Dict[str, Any]) -> Iterable[Tuple[str, int, bool]]:
    """(call, address, only reads?) for each thing the request does."""
    if op == "i2c_transaction":
        for call, part in args["calls"]:
            yield call, part["addr"], call in READ_CALLS
    elif op == "i2c_rdwr":
        for addr, length, _ in args["msgs"]:
            yield op, addr, length >= 0
    else:
        yield op, args["addr"], op[4:] in READ_CALLS
