"""The server-wide operations: ``info`` (what the server is doing) and
``sim`` (drive and watch the simulated board). The router answers them."""
from __future__ import annotations

import os
import time
from typing import Any, Dict

from .._version import __version__
from ..errors import BadArgument, NotSupported
from ..pins import BOARD_TO_BCM, board_pin


def server_info(router: Any) -> Dict[str, Any]:
    """Uptime, pins in use and what they do, load and memory (``info``)."""
    pins = []
    for board in sorted(router.workers):
        status = router.status.read(board) or {}
        owner = router.owners.get(board)
        pins.append({"pin": board, "gpio": BOARD_TO_BCM[board],
                     "owner": router.peers.get(owner) if owner else None, **status})
    pids = [os.getpid()] + [h.process.pid for h in router.workers.values()]
    return {
        "server": __version__, "uptime_s": round(time.monotonic() - router.started, 3),
        "mode": router.mode, "backend": router.backend.name, "connections": len(router.peers),
        "pins": pins, "load": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "memory": {"pss_kib": sum(_pss_kib(pid) for pid in pids), "processes": len(pids)},
    }


def sim_operation(backend: Any, args: Dict[str, Any]) -> Dict[str, Any]:
    """One ``sim`` action on the simulated board (refused on real hardware)."""
    sim = backend.sim
    if sim is None:
        raise NotSupported(f"sim needs the simulated board; this server runs {backend.name}")
    action = args["action"]
    if action == "levels":
        return {"levels": {str(b): sim.level(g) for b, g in BOARD_TO_BCM.items()},
                "values": {str(b): sim.value(g) for b, g in BOARD_TO_BCM.items()}}
    if args["pin"] is None:
        raise BadArgument(f"sim {action} needs a pin")
    line = BOARD_TO_BCM[board_pin(args["pin"])]
    if action == "drive":
        if args["level"] is None:
            raise BadArgument("sim drive needs a level (0 or 1)")
        sim.drive(line, args["level"])
    elif action == "release":
        sim.drive(line, None)
    elif action == "wire":
        if args["to"] is None:
            raise BadArgument("sim wire needs 'to', the other pin")
        sim.wire([line, BOARD_TO_BCM[board_pin(args["to"])]])
    elif action == "unwire":
        sim.unwire(line)
    elif action == "echo":
        if args["to"] is None or args["width_us"] is None:
            raise BadArgument("sim echo needs 'to' (the echo pin) and 'width_us'")
        sim.echo(line, BOARD_TO_BCM[board_pin(args["to"])], int(args["width_us"] * 1000))
    elif action == "history":
        return {"history": [list(e) for e in sim.history(line, args["since_ns"])]}
    return {"level": sim.level(line)}


def _pss_kib(pid: int) -> int:
    """Proportional set size of a process (shared pages divided among their
    sharers), so the sum over the server's processes is its real footprint."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
