"""An I2C bus worker's calls: the whitelist's SMBus calls run on an smbus2-shaped bus.

The bus is smbus2's ``SMBus`` over ``/dev/i2c-N`` (:class:`KernelI2CBus`,
imported in the bus worker only) or the simulated one
(:class:`~.simdevices.SimI2CBus`); both answer the same calls, and an
``OSError`` of either becomes a :exc:`~remoteio.errors.BusError` naming the
bus, the address and the errno.
"""
from __future__ import annotations

import errno
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import BadArgument, BusError
from ..protocol.buses import I2C_CALLS

Message = Tuple[int, int, List[int]]
#: id(bus) -> (bus, its whitelisted methods), made once per bus a worker opens
_CALLS: Dict[int, Tuple[Any, Dict[str, Callable[..., Any]]]] = {}


class KernelI2CBus:
    """smbus2's ``SMBus`` on ``/dev/i2c-<number>``, with ``rdwr`` in plain data."""

    def __init__(self, number: int):
        import smbus2  # the bus worker's import only: the server needs none of it
        self._smbus2 = smbus2
        self.bus = smbus2.SMBus(number)

    def __getattr__(self, name: str) -> Any:
        if name in I2C_CALLS:   # only the whitelist's calls reach smbus2
            return getattr(self.bus, name)
        raise AttributeError(name)

    def rdwr(self, messages: Sequence[Message]) -> List[Optional[List[int]]]:
        i2c_msg = self._smbus2.i2c_msg
        msgs = [i2c_msg.read(addr, length) if length >= 0 else i2c_msg.write(addr, data)
                for addr, length, data in messages]
        self.bus.i2c_rdwr(*msgs)
        return [list(msg) if length >= 0 else None
                for msg, (_, length, _) in zip(msgs, messages)]

    def close(self) -> None:
        self.bus.close()


def _args(call: str, args: Dict[str, Any]) -> List[Any]:
    return [args["addr"]] + [args[name] for name, _ in I2C_CALLS[call][0]]


def _fail(bus: int, addr: Optional[int], exc: OSError) -> BusError:
    name = errno.errorcode.get(exc.errno or 0, "EIO")
    where = f"I2C bus {bus}" + (f", address 0x{addr:02x}" if addr is not None else "")
    return BusError(f"{where}: {exc.strerror or exc} ({name})", detail=name)


def bound_calls(bus: Any) -> Dict[str, Callable[..., Any]]:
    """*bus*'s method for each call of the whitelist: the names come from
    I2C_CALLS, never from a request, which only picks one of these."""
    return {name: getattr(bus, name) for name in I2C_CALLS}


def run_call(bus: Any, number: int, call: str, args: Dict[str, Any]) -> Any:
    """One SMBus *call* on *bus*; its value (None for a write)."""
    calls = _CALLS.get(id(bus))
    if calls is None or calls[0] is not bus:
        calls = _CALLS[id(bus)] = (bus, bound_calls(bus))
    method = calls[1].get(call)
    if method is None:  # validation lets only the whitelist through; never a lookup by name
        raise BadArgument(f"I2C bus {number}: no call {call!r}")
    try:
        value = method(*_args(call, args))
    except OSError as exc:
        raise _fail(number, args["addr"], exc) from None
    return list(value) if isinstance(value, (list, bytes, bytearray)) else value


def perform(bus: Any, number: int, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """The reply's fields for a validated ``i2c_*`` request."""
    if op == "i2c_transaction":
        # back to back; the first failure ends it, naming the part
        values = []
        for n, (call, part) in enumerate(args["calls"]):
            try:
                values.append(run_call(bus, number, call, part))
            except BusError as exc:
                raise BusError(f"part {n} ({call}): {exc.message}", detail=exc.detail) from None
        return {"values": values}
    if op == "i2c_rdwr":
        messages = args["msgs"]
        try:
            return {"values": bus.rdwr(messages)}
        except OSError as exc:
            raise _fail(number, messages[0][0] if len(messages) == 1 else None, exc) from None
    value = run_call(bus, number, op[4:], args)
    return {} if value is None else {"value": value}
