"""Client: an I2C bus of a remote Pi with smbus2's ``SMBus`` methods, and transactions.

A script moves from a local bus to a remote one by changing the line that
opens it: ``bus = SMBus(1)`` becomes ``bus = server.i2c(1)``. Every call is
one round trip; :meth:`RemoteI2C.transaction` runs many back to back on the
Pi in one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Sequence, Tuple, Union

from ..protocol.buses import I2C_CALLS

if TYPE_CHECKING:
    from .client import RemoteServer

Part = Tuple[Any, ...]


class i2c_msg:  # noqa: N801 - smbus2's name, so code written for it reads the same
    """A message of :meth:`RemoteI2C.i2c_rdwr`, as smbus2's ``i2c_msg``:
    ``i2c_msg.write(addr, data)`` or ``i2c_msg.read(addr, length)``; after the
    call a read's bytes are in it (``list(msg)``, ``bytes(msg)``)."""

    def __init__(self, addr: int, length: int, data: Optional[List[int]], read: bool):
        self.addr = addr
        self.len = length
        self.flags = 1 if read else 0   # I2C_M_RD
        self.buf: List[int] = list(data or [0] * length)

    @classmethod
    def read(cls, address: int, length: int) -> "i2c_msg":
        return cls(address, length, None, True)

    @classmethod
    def write(cls, address: int, buf: Union[bytes, str, Sequence[int]]) -> "i2c_msg":
        data = list(buf.encode() if isinstance(buf, str) else buf)
        return cls(address, len(data), data, False)

    def __iter__(self) -> Iterator[int]:
        return iter(self.buf[:self.len])

    def __bytes__(self) -> bytes:
        return bytes(self.buf[:self.len])

    def __len__(self) -> int:
        return self.len

    def __repr__(self) -> str:
        return f"i2c_msg({self.addr:#04x}, {'read' if self.flags & 1 else 'write'}, {bytes(self)!r})"


def _wire_message(msg: Any) -> dict:
    """A message (ours or smbus2's) as the wire carries it."""
    if msg.flags & 1:
        return {"addr": msg.addr, "read": msg.len}
    return {"addr": msg.addr, "write": list(bytes(msg))}


def _fill(msg: Any, data: List[int]) -> None:
    if isinstance(msg, i2c_msg):
        msg.buf = list(data)
    else:   # smbus2's own i2c_msg: its ctypes buffer
        for n, value in enumerate(data):
            msg.buf[n] = bytes((value,))


class RemoteI2C:
    """I2C bus *bus* of a remote Pi (``RemoteServer.i2c``); smbus2's method names,
    arguments and results. Failures raise :exc:`~remoteio.errors.BusError`
    (``detail`` is the errno name: ``ENXIO`` for no device at the address),
    :exc:`~remoteio.errors.BadArgument` or :exc:`~remoteio.errors.Forbidden`."""

    def __init__(self, server: "RemoteServer", bus: int = 1):
        self.server = server
        self.bus = bus
        self.pec = 0

    def _call(self, call: str, args: Sequence[Any]) -> Any:
        fields = {"bus": self.bus, **_named(call, args)}
        return self.server.request("i2c_" + call, **fields).get("value")

    # smbus2's SMBus methods (force= is accepted and ignored: the server opens the device)
    def write_quick(self, i2c_addr: int, force: Any = None) -> None:
        self._call("write_quick", (i2c_addr,))

    def read_byte(self, i2c_addr: int, force: Any = None) -> int:
        return self._call("read_byte", (i2c_addr,))

    def write_byte(self, i2c_addr: int, value: int, force: Any = None) -> None:
        self._call("write_byte", (i2c_addr, value))

    def read_byte_data(self, i2c_addr: int, register: int, force: Any = None) -> int:
        return self._call("read_byte_data", (i2c_addr, register))

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: Any = None) -> None:
        self._call("write_byte_data", (i2c_addr, register, value))

    def read_word_data(self, i2c_addr: int, register: int, force: Any = None) -> int:
        return self._call("read_word_data", (i2c_addr, register))

    def write_word_data(self, i2c_addr: int, register: int, value: int, force: Any = None) -> None:
        self._call("write_word_data", (i2c_addr, register, value))

    def process_call(self, i2c_addr: int, register: int, value: int, force: Any = None) -> int:
        return self._call("process_call", (i2c_addr, register, value))

    def read_block_data(self, i2c_addr: int, register: int, force: Any = None) -> List[int]:
        return self._call("read_block_data", (i2c_addr, register))

    def write_block_data(self, i2c_addr: int, register: int, data: Sequence[int],
                         force: Any = None) -> None:
        self._call("write_block_data", (i2c_addr, register, list(data)))

    def block_process_call(self, i2c_addr: int, register: int, data: Sequence[int],
                           force: Any = None) -> List[int]:
        return self._call("block_process_call", (i2c_addr, register, list(data)))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: Any = None) -> List[int]:
        return self._call("read_i2c_block_data", (i2c_addr, register, length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int],
                             force: Any = None) -> None:
        self._call("write_i2c_block_data", (i2c_addr, register, list(data)))

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Combined read/write messages in one transfer (repeated starts); a
        read message holds its bytes afterwards."""
        reply = self.server.request("i2c_rdwr", bus=self.bus,
                                    msgs=[_wire_message(m) for m in i2c_msgs])
        for msg, data in zip(i2c_msgs, reply["values"]):
            if data is not None:
                _fill(msg, data)

    def transaction(self, calls: Sequence[Part]) -> List[Any]:
        """Many calls in one round trip, run on the Pi back to back:
        ``[("write_byte_data", 0x20, 0x00, 0x00), ("read_byte_data", 0x20, 0x12)]``
        -> each call's result (None for a write). The first failure ends it."""
        parts = []
        for part in calls:
            call, *args = part
            if call not in I2C_CALLS:
                raise ValueError(f"{call!r} is not an SMBus call ({', '.join(I2C_CALLS)})")
            parts.append({"call": call, **_named(call, args)})
        return self.server.request("i2c_transaction", bus=self.bus, calls=parts)["values"]

    # smbus2's life cycle
    def open(self, bus: int) -> None:
        self.bus = bus

    def close(self) -> None:
        """Nothing to let go of here (the server's worker owns the device)."""

    def __enter__(self) -> "RemoteI2C":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteI2C bus {self.bus} of {self.server!r}>"


def _named(call: str, args: Sequence[Any]) -> dict:
    names = ("addr",) + tuple(name for name, _ in I2C_CALLS[call][0])
    if len(args) != len(names):
        raise TypeError(f"{call} takes {', '.join(names)} ({len(names)} arguments), "
                        f"not {len(args)}")
    return {name: list(value) if isinstance(value, (bytes, bytearray, tuple)) else value
            for name, value in zip(names, args)}
