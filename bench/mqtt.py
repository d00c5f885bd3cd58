"""``python -m bench.mqtt``: the MQTT bridge's latencies, beside the broker's own.

Everything runs on this machine, each in its own process: Mosquitto (a
generated configuration with a password, 127.0.0.1, a free port), a server
on the simulated board (``remoteio serve --sim``), the bridge (``remoteio
mqtt``), and this process as the MQTT client. Measured in the same run:

  broker      publish -> deliver round trip through the broker alone (QoS 1,
              one client subscribed to its own topic): the floor
  set->pin    a ``.../set`` publish -> the pin changing on the board (the
              board's own timestamp of the change)
  set->state  a ``.../set`` publish -> its ``.../state`` message arriving
  edge->state an input edge (the board's timestamp, carried in the event)
              -> its ``.../state`` message arriving

All clocks are CLOCK_MONOTONIC of this machine. Prints a Markdown table and
writes bench/results/mqtt.json. ``--smoke`` uses tiny counts (the test suite
runs it so this code never rots). Every wait is bounded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .harness import ROOT, ServerProcess, percentiles

USER, PASSWORD = "bench", "a bench password"
OUTPUT, INPUT = 7, 11
NODE = "bench"


class Broker:
    """Mosquitto with a password, on 127.0.0.1, stopped by its pid."""

    def __init__(self, folder: Path, nodelay: bool):
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        passwords = folder / "passwords"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD],
                       check=True, capture_output=True, timeout=30)
        config = folder / "mosquitto.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
                          f"password_file {passwords}\npersistence false\nuser root\n"
                          + ("set_tcp_nodelay true\n" if nodelay else ""))
        self.proc = subprocess.Popen([mosquitto, "-c", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mosquitto did not start")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


class Client:
    """A paho client that keeps, per topic, the arrival times and payloads."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt
        self.arrivals: Dict[str, List[Tuple[int, bytes]]] = {}
        self.cond = threading.Condition()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-client")
        self.client.username_pw_set(USER, PASSWORD)
        self.client.on_connect = lambda c, u, f, reason, p: c.subscribe(
            [("bench/echo", 1), (f"remoteio/{NODE}/#", 1)])
        self.client.on_subscribe = lambda *args: ready.set()
        self.client.on_message = self._message
        self.client.on_socket_open = lambda c, u, sock: sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("the bench client could not subscribe")

    def _message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.monotonic_ns()
        with self.cond:
            self.arrivals.setdefault(message.topic, []).append((now, bytes(message.payload)))
            self.cond.notify_all()

    def count(self, topic: str) -> int:
        with self.cond:
            return len(self.arrivals.get(topic, []))

    def wait_count(self, topic: str, count: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.arrivals.get(topic, [])) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    def wait_payload(self, topic: str, payload: bytes, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(p == payload for _, p in self.arrivals.get(topic, [])):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    def publish(self, topic: str, payload: str) -> int:
        sent = time.monotonic_ns()
        self.client.publish(topic, payload, qos=1)
        return sent

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def broker_round_trip(client: Client, count: int) -> Dict[str, Any]:
    samples = []
    for n in range(count + 20):
        before = client.count("bench/echo")
        sent = client.publish("bench/echo", str(n))
        if not client.wait_count("bench/echo", before + 1):
            continue
        if n >= 20:
            samples.append(client.arrivals["bench/echo"][before][0] - sent)
    return percentiles(samples)


def set_to_pin(client: Client, server: ServerProcess, count: int) -> Dict[str, Any]:
    from remoteio import RemoteServer
    topic, state = f"remoteio/{NODE}/pin{OUTPUT}/set", f"remoteio/{NODE}/pin{OUTPUT}/state"
    with RemoteServer(*server.address, heartbeat=0, reconnect=False) as look:
        since = time.monotonic_ns()
        sent, to_state = [], []
        for n in range(count):
            before = client.count(state)
            sent.append(client.publish(topic, "ON" if n % 2 == 0 else "OFF"))
            if client.wait_count(state, before + 1):
                to_state.append(client.arrivals[state][before][0] - sent[-1])
        changes = [t for t, value in look.sim.history(OUTPUT, since_ns=since)]
    pin = [change - publish for publish, change in zip(sent, changes)]
    return {"set_to_pin": percentiles(pin), "set_to_state": percentiles(to_state),
            "changes": len(changes), "publishes": len(sent)}


def edge_to_state(client: Client, server: ServerProcess, count: int) -> Dict[str, Any]:
    from remoteio import RemoteServer
    state, event = f"remoteio/{NODE}/pin{INPUT}/state", f"remoteio/{NODE}/pin{INPUT}/event"
    samples = []
    with RemoteServer(*server.address, heartbeat=0, reconnect=False) as driver:
        for n in range(count + 10):
            states, events = client.count(state), client.count(event)
            driver.sim.drive(INPUT, 1 if n % 2 == 0 else 0)
            if not (client.wait_count(state, states + 1) and client.wait_count(event, events + 1)):
                continue
            arrived = client.arrivals[state][states][0]
            stamp = json.loads(client.arrivals[event][events][1])["ts_ns"]
            if n >= 10:
                samples.append(arrived - stamp)
        driver.sim.release(INPUT)
    return percentiles(samples)


def run(count: int, nodelay: bool) -> Dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="remoteio-bench-mqtt-"))
    broker = Broker(folder, nodelay)
    server = bridge = client = None
    try:
        server = ServerProcess()
        (folder / "pw").write_text(PASSWORD)
        bridge = subprocess.Popen(
            [sys.executable, "-m", "remoteio", "mqtt", "--port", str(server.port),
             "--broker", "127.0.0.1", "--broker-port", str(broker.port), "--username", USER,
             "--password-file", str(folder / "pw"), "--node", NODE, "--switch", str(OUTPUT),
             "--binary-sensor", str(INPUT), "--log-level", "warning"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Client(broker.port)
        if not client.wait_payload(f"remoteio/{NODE}/status", b"online"):
            raise RuntimeError("the bridge did not come online")
        results = {"broker_round_trip": broker_round_trip(client, count)}
        results.update(set_to_pin(client, server, count))
        results["edge_to_state"] = edge_to_state(client, server, count)
        results["broker_round_trip_after"] = broker_round_trip(client, count)
        return results
    finally:
        if client is not None:
            client.close()
        if bridge is not None and bridge.poll() is None:
            bridge.send_signal(signal.SIGTERM)
            bridge.wait(15)
        if server is not None:
            server.stop()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


ROWS = (("broker_round_trip", "broker alone: publish → deliver (QoS 1), before"),
        ("set_to_pin", "`…/set` publish → the pin changed (board's timestamp)"),
        ("set_to_state", "`…/set` publish → its `…/state` arrives"),
        ("edge_to_state", "input edge (board's timestamp) → its `…/state` arrives"),
        ("broker_round_trip_after", "broker alone: publish → deliver (QoS 1), after"))
CONFIGS = (("default", "Mosquitto as installed"), ("nodelay", "with `set_tcp_nodelay true`"))


def table(results: Dict[str, Any]) -> str:
    head = "| measurement | " + " | ".join(f"{title}: p50 / p90 / p99" for _, title in CONFIGS) + " |"
    lines = [head, "|---|" + "---|" * len(CONFIGS)]
    for key, name in ROWS:
        cells = []
        for config, _ in CONFIGS:
            stats = results[config][key]
            floor = results[config]["broker_round_trip"]["p50_us"] or 1.0
            cells.append("–" if not stats.get("n") else
                         f"{stats['p50_us']:,.0f} / {stats['p90_us']:,.0f} / {stats['p99_us']:,.0f} µs"
                         + ("" if key.startswith("broker") else f" ({stats['p50_us'] / floor:.1f}×)"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mqtt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="samples per row (default 1000)")
    parser.add_argument("--smoke", action="store_true", help="20 samples per row")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "mqtt.json"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    count = 20 if args.smoke else args.count
    results: Dict[str, Any] = {config: run(count, config == "nodelay") for config, _ in CONFIGS}
    results["machine"] = {"cpu": platform.processor() or platform.machine(),
                          "cores": os.cpu_count(), "python": platform.python_version(),
                          "load_end": round(os.getloadavg()[0], 2)}
    results["date"] = time.strftime("%Y-%m-%d %H:%M")
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True))
    print(table(results))
    for config, title in CONFIGS:
        print(f"{title}: {results[config]['publishes']} publishes, "
              f"{results[config]['changes']} changes on the board")
    print(f"{results['elapsed_s']} s; load {results['machine']['load_end']}; "
          f"{count} samples per row; (×: p50 over the broker's own p50, before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
