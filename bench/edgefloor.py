"""The edge floor of the VM: remoteio's edge path with none of remoteio in it.

``python -m bench.edgefloor --chip /dev/gpiochipN --line L`` (in the VM of
tests/hw, run by bench/kernel.py): a process watches the line with gpiod and
waits in ``select`` on the request's descriptor, as a pin worker does; for
each edge it writes one line to a pipe; its parent, another Python process
waiting in ``select`` as the listener does, sends that line to a TCP client.
The client (bench/kernel.py) reads it on a thread of its own and calls back,
as the client library does. So it costs what three wake-ups from idle and two
process hops cost here, with nothing of ours on the way: the least remoteio's
own topology (a worker per pin, the listener, the client's reader) can do.
Prints the port it listens on, then serves one client until it leaves.
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import sys
from typing import List, Optional


def _watch(chip: str, line: int, out: int) -> None:
    """The worker's part: edges of *line*, one text line each, to *out*."""
    import gpiod
    from gpiod.line import Bias, Edge
    settings = gpiod.LineSettings(edge_detection=Edge.BOTH, bias=Bias.PULL_DOWN)
    with gpiod.request_lines(chip, consumer="edge-floor", config={line: settings}) as request:
        os.write(out, b"ready\n")
        while True:
            select.select([request.fd], [], [], 60.0)
            for event in request.read_edge_events():
                os.write(out, b"%d %d\n" % (event.line_offset, event.timestamp_ns))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edgefloor", description=__doc__)
    parser.add_argument("--chip", required=True, help="the gpiochip's path")
    parser.add_argument("--line", type=int, required=True, help="the line to watch")
    args = parser.parse_args(argv)
    server = socket.create_server(("127.0.0.1", 0))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            server.close()
            _watch(args.chip, args.line, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        if os.read(read_end, 64) != b"ready\n":
            raise RuntimeError("the watching process did not start")
        print(server.getsockname()[1], flush=True)
        server.settimeout(60.0)
        client, _ = server.accept()
        with client:
            while True:
                readable, _, _ = select.select([read_end, client], [], [], 60.0)
                if not readable:
                    return 1   # no edge and no word from the client for a minute
                if client in readable and not client.recv(64):
                    return 0   # the client left
                if read_end in readable:
                    client.sendall(os.read(read_end, 4096))
    finally:
        os.kill(pid, 15)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    sys.exit(main())
