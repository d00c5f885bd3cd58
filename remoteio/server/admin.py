"""The ``sim`` operation: drive and watch the simulated board (the router
answers it, after the pin rules' access check; ``info`` is info.py)."""
from __future__ import annotations

from typing import Any, Callable, Dict

from ..errors import BadArgument, NotSupported
from ..pins import BOARD_TO_BCM, board_pin, is_expander_spec
from .backends import Backend


def sim_operation(backend: Backend, args: Dict[str, Any],
                  served: Callable[[int], bool] = lambda board: True) -> Dict[str, Any]:
    """One ``sim`` action on the simulated board (refused on real hardware);
    ``levels`` lists only the pins *served* (the rules' access)."""
    sim = backend.sim
    if sim is None:
        raise NotSupported(f"sim needs the simulated board; this server runs {backend.name}")
    action = args["action"]
    if action == "levels":
        lines = {b: g for b, g in BOARD_TO_BCM.items() if served(b)}
        return {"levels": {str(b): sim.level(g) for b, g in lines.items()},
                "values": {str(b): sim.value(g) for b, g in lines.items()}}
    if args["pin"] is None:
        raise BadArgument(f"sim {action} needs a pin")
    if is_expander_spec(args["pin"]):
        return _expander_pin(sim, action, args)
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


def _expander_pin(sim: Any, action: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """``sim`` on an expander's pin (``"mcp0:A3"``): its chip in the board's shared memory."""
    chip, bit = sim.chips.pin(args["pin"])
    if action in ("drive", "release"):
        if action == "drive" and args["level"] is None:
            raise BadArgument("sim drive needs a level (0 or 1)")
        chip.drive_input(bit // 8, bit % 8, args["level"] if action == "drive" else None)
    elif action == "history":
        return {"history": [list(e) for e in sim.chips.history(args["pin"], args["since_ns"])]}
    elif action != "levels":
        raise NotSupported(f"sim {action} is for header pins; an expander's pin can be driven, "
                           "released and watched (history)")
    return {"level": chip.pin_levels()[bit]}
