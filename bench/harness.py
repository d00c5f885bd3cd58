"""Starting servers and measuring round trips, CPU and memory."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import psutil

ROOT = Path(__file__).resolve().parent.parent


def percentiles(samples_ns: Sequence[int]) -> Dict[str, float]:
    """Median and 99th percentile, in microseconds."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {"p50_us": round(ordered[n // 2] / 1000, 1),
            "p99_us": round(ordered[min(n - 1, int(n * 0.99))] / 1000, 1), "n": n}


class RawClient:
    """The thinnest client: one socket, one frame out, one reply in."""

    def __init__(self, address: Tuple[str, int], timeout: float = 10.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def call(self, frame: bytes) -> bytes:
        self.sock.sendall(frame)
        return self.read_line()

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def request(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        reply = json.loads(self.call((json.dumps(obj) + "\n").encode()))
        if not reply.get("ok"):
            raise RuntimeError(f"refused: {reply}")
        return reply

    def close(self) -> None:
        self.sock.close()


def round_trips(client: RawClient, frames: Sequence[bytes], count: int, warmup: int = 200) -> List[int]:
    """Time *count* request/reply round trips, cycling through *frames*."""
    for n in range(warmup):
        client.call(frames[n % len(frames)])
    samples = []
    clock = time.perf_counter_ns
    for n in range(count):
        frame = frames[n % len(frames)]
        start = clock()
        client.call(frame)
        samples.append(clock() - start)
    return samples


class ServerProcess:
    """``python -m remoteio serve --sim`` in its own process (its own GIL)."""

    def __init__(self, *args: str):
        self.log = tempfile.NamedTemporaryFile(prefix="remoteio-bench-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "remoteio", "serve", "--sim", "--host", "127.0.0.1", "--port", "0",
             "--log-level", "warning", *args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.port = self._port()
        self.address = ("127.0.0.1", self.port)

    def _port(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for conn in psutil.Process(self.proc.pid).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    return conn.laddr.port
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"server did not start: {Path(self.log.name).read_text()}")

    def processes(self) -> List[psutil.Process]:
        main = psutil.Process(self.proc.pid)
        return [main] + main.children(recursive=True)

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def pss_mib(self) -> float:
        total = 0
        for proc in self.processes():
            try:
                total += proc.memory_full_info().pss
            except (psutil.NoSuchProcess, AttributeError):
                pass
        return round(total / 2**20, 1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        os.unlink(self.log.name)


def hello(address: Tuple[str, int]) -> RawClient:
    client = RawClient(address)
    client.request({"id": 0, "op": "hello", "client": "bench"})
    return client
