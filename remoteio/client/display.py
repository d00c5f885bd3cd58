"""Rich display for Jupyter and IPython: HTML tables and pretty text, no dependency.

The classes' ``_repr_html_`` and ``_repr_pretty_`` hand what they know to
these functions (plain dicts in, strings out), so the rendering is tested
without a notebook.

>>> print(info_text({"server": "3.0.0", "uptime_s": 2.5, "mode": "wait", "backend": "sim",
...                  "connections": 1, "pins": []}))
remoteio server 3.0.0 (sim, wait mode), up 2.5 s, 1 connection(s)
no pins in use
"""
from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Union

if TYPE_CHECKING:
    from ..aio import AsyncRemoteServer
    from .client import RemoteServer

#: the columns of the pin table: (heading, how to render one info() pin entry)
COLUMNS = (
    ("pin", lambda p: f"BOARD{p.get('pin')} (GPIO{p.get('gpio')})"),
    ("mode", lambda p: p.get("mode") or ""),
    ("value", lambda p: _level(p.get("value"))),
    ("task", lambda p: p.get("task") or ""),
    ("time left", lambda p: _ms(p.get("remaining_ms"))),
    ("lease", lambda p: _ms(p.get("lease_ms"))),
    ("holder", lambda p: p.get("owner") or ""),
    ("watchers", lambda p: str(p.get("watchers", ""))),
)

_STYLE = ("<style>.remoteio td,.remoteio th{padding:2px 8px;text-align:left}"
          ".remoteio .hi{color:#0a0;font-weight:bold}.remoteio .lo{color:#888}</style>")


def _ms(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def _level(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value not in (0.0, 1.0):
        return f"{value:.2f}"
    return str(int(value))


def _cell(heading: str, text: str) -> str:
    if heading == "value" and text in ("0", "1"):
        return f'<td class="{"hi" if text == "1" else "lo"}">{"●" if text == "1" else "○"} {text}</td>'
    return f"<td>{escape(text)}</td>"


def pin_table_html(pins: Iterable[Mapping[str, Any]]) -> str:
    rows = list(pins)
    if not rows:
        return "<p><i>no pins in use</i></p>"
    head = "".join(f"<th>{escape(h)}</th>" for h, _ in COLUMNS)
    body = "".join("<tr>" + "".join(_cell(h, render(p)) for h, render in COLUMNS) + "</tr>"
                   for p in rows)
    return f'<table class="remoteio"><tr>{head}</tr>{body}</table>'


def pin_table_text(pins: Iterable[Mapping[str, Any]]) -> str:
    rows = [[render(p) for _, render in COLUMNS] for p in pins]
    if not rows:
        return "no pins in use"
    table = [[h for h, _ in COLUMNS]] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in table)


def connection_facts(view: Mapping[str, Any]) -> List[tuple]:
    """(label, text) pairs of a server's header: board, connection, security."""
    board = view.get("board") or {}
    return [
        ("server", f"{view['host']}:{view['port']}"),
        ("board", board.get("description") or board.get("model") or "?"),
        ("backend", board.get("backend", "?")),
        ("mode", view.get("mode") or "?"),
        ("connection", "connected" if view.get("connected") else "not connected"),
        ("TLS", "on" if view.get("tls") else "off"),
        ("auth", view.get("auth") or "none"),
    ]


def server_html(view: Mapping[str, Any]) -> str:
    """A server: its header, then the table of the pins in use (``info``)."""
    facts = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                    for k, v in connection_facts(view))
    pins = view.get("pins")
    table = (pin_table_html(pins) if pins is not None
             else f"<p><i>pins unknown: {escape(str(view.get('error') or 'not connected'))}</i></p>")
    return (f'{_STYLE}<div class="remoteio"><b>{escape(view.get("title", "RemoteServer"))}</b>'
            f'<table class="remoteio">{facts}</table>{table}</div>')


def server_text(view: Mapping[str, Any]) -> str:
    facts = ", ".join(f"{k} {v}" for k, v in connection_facts(view))
    pins = view.get("pins")
    table = pin_table_text(pins) if pins is not None else f"pins unknown: {view.get('error')}"
    return f"{view.get('title', 'RemoteServer')}: {facts}\n{table}"


def info_text(info: Mapping[str, Any]) -> str:
    head = (f"remoteio server {info.get('server', '?')} ({info.get('backend', '?')}, "
            f"{info.get('mode', '?')} mode), up {info.get('uptime_s', 0):g} s, "
            f"{info.get('connections', '?')} connection(s)")
    return head + "\n" + pin_table_text(info.get("pins") or [])


def info_html(info: Mapping[str, Any]) -> str:
    head = escape(info_text({k: v for k, v in info.items() if k != "pins"}).splitlines()[0])
    memory = info.get("memory") or {}
    extra = f", {memory['pss_kib'] / 1024:.1f} MiB" if "pss_kib" in memory else ""
    return (f'{_STYLE}<div class="remoteio"><b>{head}{escape(extra)}</b>'
            f'{pin_table_html(info.get("pins") or [])}</div>')


def pin_facts(board: int, gpio: int, state: Optional[Mapping[str, Any]], error: str = "") -> List[tuple]:
    if state is None:
        return [("pin", f"BOARD{board} (GPIO{gpio})"), ("state", error or "closed")]
    lease = state.get("lease") or {}
    return [("pin", f"BOARD{board} (GPIO{gpio})"), ("mode", state.get("mode", "")),
            ("value", _level(state.get("value"))), ("task", state.get("task") or "idle"),
            ("time left", _ms(state.get("remaining_ms"))),
            ("lease", _ms(lease.get("in_ms")) if lease else ""),
            ("pull", state.get("pull") or ""), ("access", state.get("access", "")),
            ("watchers", str(state.get("watchers", "")))]


def pin_html(board: int, gpio: int, state: Optional[Mapping[str, Any]], error: str = "") -> str:
    cells = "".join(_cell(k, str(v)).replace("<td", f"<th>{escape(k)}</th><td", 1)
                    for k, v in pin_facts(board, gpio, state, error) if v != "")
    return f'{_STYLE}<table class="remoteio"><tr>{cells}</tr></table>'


def pin_text(board: int, gpio: int, state: Optional[Mapping[str, Any]], error: str = "") -> str:
    facts = pin_facts(board, gpio, state, error)
    return f"RemotePin {facts[0][1]}: " + ", ".join(f"{k} {v}" for k, v in facts[1:] if v != "")


def view_of(server: Union["RemoteServer", "AsyncRemoteServer"], info: Optional[Dict[str, Any]],
            error: str = "", title: str = "RemoteServer") -> Dict[str, Any]:
    """What a client (sync or async) shows of itself, with *info* if it has it."""
    welcome = server.welcome or {}
    return {"title": title, "host": server.host, "port": server.port,
            "connected": server.connected, "tls": server.tls,
            "auth": "none" if welcome.get("auth", "token") is None else "token (HMAC-SHA256)",
            "board": welcome.get("board"), "mode": welcome.get("mode"),
            "pins": None if info is None else info.get("pins", []), "error": error}


class Info(dict):
    """What ``info()`` returns: a dict, shown as a table in a notebook."""

    def _repr_html_(self) -> str:
        return info_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(info_text(self))
