"""Live Jupyter widgets of pins and of the header, following change events (ipywidgets: the jupyter extra).

An output is a toggle button (or a slider for PWM) that drives the pin; an
input is an LED-like indicator. Both follow the pin's change events (the
watch is started for them), never a poll. Widgets of the asyncio client
send their requests as tasks on the running loop.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Union

from .pinlogic import PinEvent
from ..pins import BOARD_TO_BCM, POWER_AND_GROUND

if TYPE_CHECKING:
    from ..aio import AsyncRemoteServer
    from .client import RemoteServer

log = logging.getLogger(__name__)


def _widgets() -> Any:
    try:
        import ipywidgets
    except ImportError:
        raise ImportError("widgets need ipywidgets: pip install 'remoteio[jupyter]'") from None
    return ipywidgets


def _is_pwm(state: Mapping[str, Any]) -> bool:
    value = state.get("value")
    return bool(state.get("frequency")) or (isinstance(value, float) and value not in (0.0, 1.0))


class _Follower:
    """Sets a widget's value from change events without echoing it back."""

    def __init__(self, widget: Any, convert: Callable[[Any], Any]):
        self.widget, self.convert = widget, convert
        self.echo = False

    def __call__(self, event: PinEvent) -> None:  # the client's reader thread / the loop
        self.echo = True
        try:
            self.widget.value = self.convert(event.value)
        finally:
            self.echo = False


def _build(pin: Any, state: Mapping[str, Any], send: Callable[[str, Dict[str, Any]], None],
           pwm: Any) -> Any:
    w = _widgets()
    name = f"BOARD{pin.board} (GPIO{pin.gpio})"
    level = state.get("value") or 0
    if state.get("mode") == "input":
        widget = w.Valid(value=bool(level), description=name, readout="high / low",
                         style={"description_width": "initial"})
        follower = _Follower(widget, bool)
    elif _is_pwm(state) if pwm is None else pwm:
        widget = w.FloatSlider(value=float(level), min=0.0, max=1.0, step=0.01,
                               description=name, continuous_update=False,
                               style={"description_width": "initial"})
        follower = _Follower(widget, float)
        widget.observe(lambda change: follower.echo or send("value", {"level": change["new"]}),
                       names="value")
    else:
        widget = w.ToggleButton(value=bool(level), description=name, icon="lightbulb-o")
        follower = _Follower(widget, bool)
        widget.observe(lambda change: follower.echo or send("on" if change["new"] else "off", {}),
                       names="value")
    pin.subscribe(follower)
    widget.follower = follower  # kept alive with the widget
    return widget


def pin_widget(pin: Any, pwm: Any = None) -> Any:
    """The widget of a sync client's pin (``pin.widget()``)."""
    pin.watch()
    methods = {"on": pin.on, "off": pin.off, "value": pin.value}
    return _build(pin, pin.state(), lambda op, fields: methods[op](**fields), pwm)


async def pin_widget_async(pin: Any, pwm: Any = None) -> Any:
    """The widget of an asyncio client's pin (``await pin.widget()``)."""
    await pin.watch()
    loop = asyncio.get_running_loop()

    def send(op: str, fields: Dict[str, Any]) -> None:
        method = {"on": pin.on, "off": pin.off, "value": pin.value}[op]
        task = loop.create_task(method(**fields))
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or
                               log.warning("the widget's %s failed: %s", op, t.exception()))
    return _build(pin, await pin.state(), send, pwm)


def dashboard(server: Union["RemoteServer", "AsyncRemoteServer"]) -> Any:
    """The 40-pin header as a grid, the pins in use (``info``) with live levels."""
    w = _widgets()
    in_use = {entry["pin"]: entry for entry in server.info().get("pins", [])}
    cells, levels = [], {}
    for board in range(1, 41):
        if board in BOARD_TO_BCM:
            entry = in_use.get(board)
            label = f"{board} GPIO{BOARD_TO_BCM[board]}"
            if entry is None:
                cells.append(w.HTML(f"<span style='color:#bbb'>○ {label}</span>"))
                continue
            cell = w.Valid(value=bool(entry.get("value")), description=label,
                           readout=entry.get("mode", ""), style={"description_width": "initial"})
            pin = server.pin(board, claim=False)
            pin.subscribe(_Follower(cell, bool))
            pin.watch()
            levels[board] = cell
            cells.append(cell)
        else:
            cells.append(w.HTML(f"<span style='color:#888'>■ {board} {POWER_AND_GROUND[board]}</span>"))
    grid = w.GridBox(cells, layout=w.Layout(grid_template_columns="repeat(2, 260px)"))
    title = w.HTML(f"<b>{server.host}:{server.port}</b> "
                   f"{(server.board or {}).get('description', '')}")
    box = w.VBox([title, grid])
    box.levels = levels  # board -> its indicator, for whoever wants to look
    return box
