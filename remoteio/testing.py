"""Helpers for testing code that uses remoteio: bounded waits, a raw protocol
client, a relay that cuts links, a server process.

They are what remoteio's own tests, benchmarks and VM suite use (as gpiozero
ships its mock pin factory). Every wait is bounded, every server listens on
127.0.0.1 on a port the kernel picks, and every process started here is
stopped by its pid:

>>> wait_until(lambda: 42, timeout=0.1)
42
>>> wait_until(lambda: 0, timeout=0.01) is None
True
>>> pulses([(0, 0), (1_000_000, 1), (3_000_000, 0), (4_000_000, 1)])
[(1000000, 2.0)]
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from .server.app import Server

#: the folder holding the ``remoteio`` package this process imported: a child
#: server gets it first on its path, so it runs the same code as its test
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

History = Sequence[Tuple[int, float]]


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.002) -> Any:
    """Poll *predicate* until it is truthy (returned) or *timeout* passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def worker_pid(server: "Server", board: int, timeout: float = 5.0) -> int:
    """The pid of *board*'s worker in an in-process *server*, once the server
    knows it: the zygote's word of a new worker's pid can come just after the
    worker's first reply (AssertionError if it does not within *timeout*)."""
    pid = wait_until(lambda: server.worker_pids().get(board), timeout)
    assert pid, f"no worker for pin {board} within {timeout} s"
    return pid


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for a server that must be told its port)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# ---- a pin's history: ``[(t_ns, value), ...]`` as ``sim.history()`` gives it ------------
def high_periods(history: History) -> List[Tuple[int, int]]:
    """``(rise_ns, fall_ns)`` of every high period (one still high at the end is left out)."""
    out, rose = [], None
    for t_ns, value in history:
        if value >= 0.5 and rose is None:
            rose = t_ns
        elif value < 0.5 and rose is not None:
            out.append((rose, t_ns))
            rose = None
    return out


def pulses(history: History) -> List[Tuple[int, float]]:
    """High periods as ``(start_ns, width_ms)``."""
    return [(rise, (fall - rise) / 1e6) for rise, fall in high_periods(history)]


def levels(history: History) -> List[float]:
    """The values of a history, without their times."""
    return [value for _, value in history]


# ---- the protocol without the client library ---------------------------------------------
def frame(request_id: Any, op: str, **fields: Any) -> bytes:
    """One request as the bytes on the wire."""
    return (json.dumps({"id": request_id, "op": op, **fields}, separators=(",", ":")) + "\n").encode()


class RawClient:
    """A bare protocol connection: frames out, replies in, events kept aside
    in ``events`` (unless *keep_events* is false: a long benchmark's events
    would pile up); no reader thread, and no JSON on :meth:`call_line`'s path."""

    def __init__(self, address: Tuple[str, int], timeout: float = 5.0, keep_events: bool = True):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.events: List[Dict[str, Any]] = []
        self.keep_events = keep_events
        self._ids = 1000

    def send(self, message: Any) -> None:
        """Send bytes as they are, anything else as one JSON frame."""
        self.sock.sendall(message if isinstance(message, bytes) else (json.dumps(message) + "\n").encode())

    def read_line(self) -> bytes:
        """The next line from the server, reply or event."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def read_reply(self) -> bytes:
        """The next line that is a reply (events go to ``events``)."""
        while True:
            line = self.read_line()
            if not line.startswith(b'{"event"'):
                return line
            if self.keep_events:
                self.events.append(json.loads(line))

    def recv(self) -> Dict[str, Any]:
        """The next reply, decoded."""
        return json.loads(self.read_reply())

    def call(self, message: Any) -> Dict[str, Any]:
        """Send one frame; its reply, decoded (refusals are returned, not raised)."""
        self.send(message)
        return self.recv()

    def call_line(self, message: bytes) -> bytes:
        """Send prepared bytes; the next line as it came (a timed loop's round trip)."""
        self.sock.sendall(message)
        return self.read_line()

    def request(self, op: str, **fields: Any) -> Dict[str, Any]:
        """One request; its reply (raises RuntimeError if it was refused)."""
        self._ids += 1
        self.sock.sendall(frame(self._ids, op, **fields))
        reply = self.recv()
        if not reply.get("ok") or reply.get("id") != self._ids:
            raise RuntimeError(f"{op} {fields} refused: {reply}")
        return reply

    def pipeline(self, requests: Sequence[Tuple[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
        """Several requests in one write; all replies (any order), each checked."""
        first = self._ids + 1
        self._ids += len(requests)
        self.sock.sendall(b"".join(frame(first + n, op, **f) for n, (op, f) in enumerate(requests)))
        replies = [self.recv() for _ in requests]
        bad = [r for r in replies if not r.get("ok")]
        if bad:
            raise RuntimeError(f"refused: {bad[:3]}")
        return replies

    def hello(self, **fields: Any) -> Dict[str, Any]:
        """Open the session (the first request of every connection)."""
        return self.request("hello", **fields)

    def history(self, pin: int, since_ns: int = 0) -> List[Tuple[int, float]]:
        """The simulated board's record of the pin's output changes."""
        return [tuple(e) for e in self.request("sim", action="history", pin=pin,
                                               since_ns=since_ns)["history"]]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class MuteClient:
    """A client that sends hello and *payload* from a thread, and never reads
    (a slow or stuck reader, as the server's output bounds see it)."""

    def __init__(self, address: Tuple[str, int], payload: bytes, timeout: float = 20.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.thread = threading.Thread(target=self._send, daemon=True,
                                       args=(frame(0, "hello") + payload,))
        self.thread.start()

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # closed by the server (its output cap) or by close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked sendall
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


class Relay:
    """A TCP relay on 127.0.0.1 in front of *target* that does on command what
    a network can do to a link: :meth:`cut` resets the clients' sides while
    their server-side connections stay open and silent (a half-open
    partition, as the Pi sees it); :attr:`delay` holds each client-to-server
    chunk that many seconds (a slow link). Connect clients to :attr:`address`."""

    def __init__(self, target: Tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address: Tuple[str, int] = self.listener.getsockname()[:2]
        self.port = self.address[1]
        self.delay = 0.0
        self.pairs: List[Tuple[socket.socket, socket.socket]] = []
        self.stuck: List[socket.socket] = []  # server sides kept open, silent
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the server is not there: neither is this link
                continue
            self.pairs.append((client, server))
            for a, b, slow in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(a, b, slow), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket, slow: bool) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    return
                if slow and self.delay:
                    time.sleep(self.delay)  # the slow link itself, not a wait for a condition
                b.sendall(data)
        except OSError:
            return

    def cut(self) -> None:
        """The clients' sides die (reset); the server's sides stay, silent."""
        pairs, self.pairs = self.pairs, []
        for client, server in pairs:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            self.stuck.append(server)

    def close(self) -> None:
        self.listener.close()
        for client, server in self.pairs:
            client.close()
            server.close()
        for server in self.stuck:
            server.close()

    def __enter__(self) -> "Relay":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- a server in its own process -------------------------------------------------------------
class ServerProcess:
    """``python -m remoteio serve ARGS`` in a child process on 127.0.0.1 and a
    free port, its log in a file (never an unread pipe), stopped by pid with
    every worker it had. Pass ``--sim`` (or a backend) in *args*."""

    def __init__(self, *args: str, workdir: Optional[Path] = None, start_timeout: float = 30.0,
                 python: str = sys.executable, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[Path] = None):
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="remoteio-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"server-{time.monotonic_ns()}.log"
        self.argv = [python, "-m", "remoteio", "serve", "--host", "127.0.0.1", "--port", "0", *args]
        env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
        self.known_children: set = set()
        level = args[args.index("--log-level") + 1] if "--log-level" in args[:-1] else "info"
        self._quiet = level in ("warning", "error")
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            # cwd: by default the work folder, where lgpio leaves its .lgd-nfy* FIFOs
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=cwd or self.workdir, env=env)
        port = wait_until(self._port_or_exit, timeout=start_timeout, interval=0.01)
        if not isinstance(port, int) or port is True:
            self.kill()
            raise RuntimeError(f"the server did not start ({' '.join(self.argv)}):\n{self.output()}")
        self.port = port
        self.address = ("127.0.0.1", port)
        self.start_s = round(time.monotonic() - started, 3)

    def _port_or_exit(self) -> Any:
        """The port, once the server says it serves (its log's "serving on ...
        port N", written when it is ready); True if it died; None while starting.
        A server told to log only warnings says nothing: then the port is the
        one it listens on (it may still be finishing its start)."""
        import psutil
        if self.proc.poll() is not None:
            return True
        if not self._quiet:
            found = re.search(rb"serving on \S+ port (\d+)", self.log_path.read_bytes())
            return int(found.group(1)) if found else None
        try:
            for conn in psutil.Process(self.proc.pid).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.ip == "127.0.0.1":
                    return conn.laddr.port
        except psutil.NoSuchProcess:
            return True
        return None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def processes(self) -> List[Any]:
        """The server and its workers as ``psutil.Process`` objects."""
        import psutil
        main = psutil.Process(self.proc.pid)
        return [main] + main.children(recursive=True)

    def children(self) -> List[int]:
        """Pids of the server's worker processes now (remembered for cleanup)."""
        import psutil
        try:
            pids = [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pids = []
        self.known_children.update(pids)
        return pids

    def alive_children(self) -> List[int]:
        """Workers seen earlier that still run (not zombies)."""
        import psutil
        alive = []
        for pid in self.known_children:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        self.children()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Stop the server and every worker it had, by pid (cleanup; idempotent)."""
        if self.proc.poll() is None:
            self.children()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in self.alive_children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
