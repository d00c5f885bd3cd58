"""The server as a whole: wires the zygote, the listener, the router and the
backend together.

>>> from remoteio.server import Server
>>> with Server(host="127.0.0.1", port=0, backend="sim") as server:
...     server.port > 0
True
"""
from __future__ import annotations

import functools
import gc
import ipaddress
import logging
import selectors
import signal
import socket
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple, Union

from .._version import __version__
from ..errors import Forbidden
from ..settings import DEFAULT_PORT, DISCONNECT_POLICIES, MODES
from .busconfig import bus_rules
from .config import PinRule, ServerConfig
from ..pins import BOARD_TO_BCM, pin_key
from ..protocol.auth import Authenticator, channel_binding
from ..tokens import check_token, read_token_file
from ..protocol.framing import MAX_FRAME
from ..protocol.ops import operation_names
from ..protocol.session import Session
from .backends import Backend, parse_revision, select_backend
from . import memory
from .listener import Listener
from .pool import WorkerPool
from .router import Router
from .rules import Rules
from .backends.simboard import SimHeader
from .busgate import BusGate
from .i2cworker import run_i2c_worker
from .spiworker import run_spi_worker
from .serialworker import run_serial_worker
from .expanderconfig import expanders_from_program
from .expanderroute import Expanders
from .expanderworker import run_expander_worker
from .spawn import run_pin_worker
from .status import StatusTable
from .transport import certificate_der, server_context
from .rehearsal import rehearse
from .zygote import Zygote

log = logging.getLogger("remoteio.server")


class Server:
    """A remoteio server: one I/O thread (listener and router), a process per
    pin, forked by a zygote.

    ``port=0`` picks a free port (see :attr:`port`). ``backend`` is
    ``"auto"``, ``"sim"``, ``"gpiod"``, ``"lgpio"``, ``"rpigpio"`` or a
    :class:`~remoteio.server.backends.Backend`.
    """

    def __init__(self, host: Union[str, ServerConfig] = "0.0.0.0", port: int = DEFAULT_PORT,
                 mode: str = "wait",
                 backend: Any = "auto", *, revision: Optional[int] = None,
                 chip: Optional[int] = None, token: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 tls_client_ca: Optional[str] = None, show_peers: Optional[bool] = None,
                 pins: Optional[Dict[Any, Any]] = None, default_access: str = "write",
                 disconnect_policy: str = "finish", max_connections: int = 256,
                 heartbeat_timeout: float = 120.0, hang_timeout: float = 10.0,
                 max_frame: int = MAX_FRAME, backlog: int = 1024,
                 event_buffer: int = 1 << 20, max_buffer: int = 16 << 20, max_output: int = 64 << 20,
                 on_housekeeping: Optional[Callable[[float], None]] = None,
                 advertise: bool = False, realtime_priority: int = 0,
                 buses: Optional[Dict[Any, Any]] = None, bus_default_access: str = "write",
                 expanders: Optional[Dict[str, Any]] = None, declare_expanders: bool = False):
        if isinstance(host, ServerConfig):  # Server(config): what the file and options say
            self.__init__(**config_settings(host))  # type: ignore[misc]
            return
        if mode not in MODES:
            raise ValueError(f"mode must be 'wait' or 'nowait', not {mode!r}")
        if disconnect_policy not in DISCONNECT_POLICIES:
            raise ValueError(f"disconnect_policy must be 'finish' or 'safe', not {disconnect_policy!r}")
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("TLS needs both tls_cert and tls_key")
        self.host = host
        self.requested_port = port
        self.mode = mode
        self.token = check_token(token) if token is not None else None
        self.tls_cert, self.tls_key = tls_cert, tls_key
        if tls_client_ca and not tls_cert:
            raise ValueError("tls_client_ca (client certificates) needs TLS: give tls_cert and tls_key")
        self.tls_client_ca = tls_client_ca
        #: may clients see each other's addresses (pin_busy, info)? By default
        #: only when they had to authenticate, or all are on this machine
        self.show_peers = bool(token) or _loopback(host) if show_peers is None else show_peers
        self.rules = Rules(ServerConfig(default_access=default_access, pins={
            pin_key(spec): rule if isinstance(rule, PinRule) else PinRule(**rule)
            for spec, rule in (pins or {}).items()}))
        #: [buses]: ("i2c", 1) -> BusRule (docs/buses.md)
        self.buses = BusGate(bus_default_access, bus_rules(buses or {}))
        #: [expanders]: name -> ExpanderSpec (docs/expanders.md)
        self.expanders = expanders_from_program(expanders)
        for spec in self.expanders.values():   # an expander is a device of its bus: its rule binds it
            try:
                self.buses.check_expander(spec.name, spec.bus, spec.address)
            except Forbidden as exc:
                raise ValueError(f"[expanders.{spec.name}]: {exc.message} ([buses])") from None
        self.declare_expanders = declare_expanders   # clients may add expanders at run time
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.disconnect_policy = disconnect_policy
        self.heartbeat_timeout = heartbeat_timeout
        self.hang_timeout = hang_timeout
        if not 0 <= realtime_priority <= 99:
            raise ValueError(f"realtime_priority must be 0 (off) or 1..99, not {realtime_priority}")
        #: SCHED_FIFO priority of the pin workers (0: the normal scheduler)
        self.realtime_priority = realtime_priority
        self.backlog = backlog
        self.event_buffer = event_buffer
        self.max_buffer = max_buffer      # one connection's output waiting
        self.max_output = max_output      # all of theirs together
        self.on_housekeeping = on_housekeeping  # once a second on the I/O thread (a watchdog)
        self._own_backend = not isinstance(backend, Backend)
        self.backend: Backend = (
            backend if isinstance(backend, Backend)
            else select_backend(backend, revision=revision, chip=chip))
        self._threads: Tuple[threading.Thread, ...] = ()
        self._zygote: Optional[Zygote] = None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._sim_header: Optional[SimHeader] = None
        #: advertise _remoteio._tcp on the LAN (mDNS; docs/discovery.md) once started
        self.advertise = advertise
        self._advertiser: Any = None

    @classmethod
    def from_config(cls, config: ServerConfig, **overrides: Any) -> "Server":
        """A server set up by a configuration file (see remoteio.server.config),
        with *overrides* (those not None) over it; ``Server(config)`` is the
        same without overrides."""
        settings = config_settings(config)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**settings)

    # ---- life cycle ------------------------------------------------------------
    def start(self) -> "Server":
        if self._threads:
            return self  # started already (the daemon's bridge needs it before the loop)
        memory.keep_big_blocks_mapped()  # an abusive connection's buffers go back when it goes
        # the zygote first: it must be forked before this server has any thread
        # (and before its listening socket exists, which it must not hold)
        self.status = StatusTable(pin for spec in self.expanders.values()
                                  for pin in Expanders.pins(spec))
        chips = self.backend.sim.chips if self.backend.sim is not None else None
        for spec in self.expanders.values():  # the simulated chips, shared before the fork
            if chips is not None:
                chips.declare(spec.name, spec.bus, spec.address, spec.chip, None if
                              spec.interrupt is None else BOARD_TO_BCM[spec.interrupt])
        if chips is not None:   # the buses' own MCP230xx chips: a slot on first use
            chips.bus_devices = self.buses.devices
        kinds = {"pin": functools.partial(run_pin_worker, mode=self.mode, backend=self.backend,
                                          status=self.status,
                                          realtime_priority=self.realtime_priority),
                 "i2c": functools.partial(run_i2c_worker, chips=chips),
                 "spi": run_spi_worker, "serial": run_serial_worker,
                 "expander": functools.partial(run_expander_worker, mode=self.mode,
                                               chips=chips, backend=self.backend,
                                               status=self.status)}
        # what a worker writes first, written once here, where the zygote
        # and every worker share it (rehearsal.py); then what exists is
        # kept from the collector, whose writes would copy it
        self.backend.share_before_fork()
        rehearse(self.mode)
        gc.freeze()
        self._zygote = Zygote(kinds).start()
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self._sock = socket.create_server((self.host, self.requested_port), family=family,
                                              backlog=self.backlog)
        except BaseException:
            self._zygote.stop()
            raise
        self._sock.set_inheritable(False)
        welcome = {"server": __version__, "board": self.backend.board_info(),
                   "mode": self.mode, "ops": list(operation_names())}
        tls = (server_context(self.tls_cert, self.tls_key, self.tls_client_ca)
               if self.tls_cert else None)
        self._binding = channel_binding(certificate_der(self.tls_cert)) if tls else ""
        authenticator = Authenticator(self.token, self._binding) if self.token else None
        self._authenticator = authenticator  # read by new sessions, on the I/O thread
        selector = selectors.DefaultSelector()
        self.listener = Listener(
            self._sock, selector=selector,
            new_session=lambda: Session(welcome, self._authenticator),
            max_frame=self.max_frame, max_connections=self.max_connections,
            event_buffer=self.event_buffer, max_buffer=self.max_buffer, max_output=self.max_output, tls=tls,
            heartbeat_timeout=self.heartbeat_timeout, on_housekeeping=self.on_housekeeping)
        self.pool = WorkerPool(self._zygote, selector, hang_timeout=self.hang_timeout)
        self.router = Router(
            backend=self.backend, mode=self.mode, status=self.status, rules=self.rules,
            pool=self.pool, outlet=self.listener, selector=selector, version=__version__,
            started=time.monotonic(), disconnect_policy=self.disconnect_policy,
            show_peers=self.show_peers, buses=self.buses,
            expanders=Expanders(self.expanders, self.declare_expanders))
        self._threads = (threading.Thread(target=self.listener.serve, args=(self.router,),
                                          name="remoteio-listener", daemon=True),)
        for thread in self._threads:
            thread.start()
        log.info("remoteio %s serving on %s port %d (mode %s, backend %s, %s; %s, %s)",
                 __version__, self.host, self.port, self.mode, self.backend.name,
                 welcome["board"]["description"], "TLS" if tls else "plain TCP",
                 "token required" if authenticator else "no authentication")
        if authenticator is None:
            self._warn_unauthenticated()
        if self.advertise:  # its own thread; None when it cannot (docs/discovery.md)
            from ..bridges.discovery import advertise_server
            self._advertiser = advertise_server(self)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Make every pin safe, join every worker, free the port."""
        with self._stop_lock:
            if not self._stopped.is_set() and self._threads:
                self._stop(timeout)
            self._stopped.set()

    def _stop(self, timeout: float) -> None:
        (listener_thread,) = self._threads
        if self._advertiser is not None:
            self._advertiser.stop()
        self.listener.stop()
        listener_thread.join(timeout)
        if listener_thread.is_alive():
            log.error("the listener did not stop within %g s", timeout)
        if self._zygote is not None:
            self._zygote.stop()  # already done by the pool, unless the loop failed
        if self._own_backend:
            self.backend.close()
        log.info("remoteio stopped; every pin safe")

    @property
    def started(self) -> bool:
        """True once :meth:`start` has run (a stopped server stays started: it is not restarted)."""
        return bool(self._threads)

    def serve_forever(self) -> None:
        """Block until :meth:`stop` is called (from another thread or a signal)."""
        while not self._stopped.wait(3600):
            pass

    def __enter__(self) -> "Server":
        return self.start() if not self._threads else self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # ---- what tests and users look at -----------------------------------------------
    @property
    def port(self) -> int:
        return self._sock.getsockname()[1] if self._sock else self.requested_port

    @property
    def address(self) -> Tuple[str, int]:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else ("::1" if self.host == "::" else self.host)
        return host, self.port

    @property
    def sim(self) -> Optional[SimHeader]:
        """The simulated board by board pin numbers (sim backend only; see
        :class:`~remoteio.server.backends.simboard.SimHeader`)."""
        if self.backend.sim is None:
            return None
        if self._sim_header is None:
            self._sim_header = SimHeader(self.backend.sim)
        return self._sim_header

    @property
    def zygote_pid(self) -> Optional[int]:
        """The pid of the process that forks the workers (None when stopped)."""
        return self._zygote.pid if self._zygote else None

    def reload_rules(self, pins: Optional[Dict[Any, Any]] = None,
                     default_access: str = "write") -> None:
        """Replace the pin rules while serving (SIGHUP of the daemon): the
        next request and every running worker's next change are judged by
        them. Connections, pins held and tasks running are kept."""
        rules = Rules(ServerConfig(default_access=default_access, pins={
            pin_key(spec): rule if isinstance(rule, PinRule) else PinRule(**rule)
            for spec, rule in (pins or {}).items()}))
        self.rules = rules
        if self._threads:
            self.listener.call_soon(lambda: self.router.reload_rules(rules))

    def reload_token(self, token: Optional[str]) -> None:
        """Require *token* (None: none) from connections made from now on
        (SIGHUP of the daemon); connections already made keep their session."""
        had_token = self.token is not None
        self.token = check_token(token) if token is not None else None
        if self.token is None and had_token:
            self._warn_unauthenticated("after the reload, ")
        if self._threads:
            authenticator = Authenticator(self.token, self._binding) if self.token else None

            def swap() -> None:
                self._authenticator = authenticator
            self.listener.call_soon(swap)

    def _warn_unauthenticated(self, when: str = "") -> None:
        """The loud warning of a server that anyone on its network may drive."""
        if not _loopback(self.host):
            log.warning("*** %sremoteio serves %s port %d WITHOUT AUTHENTICATION: anyone who "
                        "can reach it can drive the pins. Set a token (remoteio docs "
                        "security). ***", when, self.host, self.port)

    def worker_pids(self) -> dict:
        """board pin -> pid of its worker process."""
        return {h.key: h.pid for h in self.pool if h.pid is not None and isinstance(h.key, int)}

    def bus_worker_pids(self) -> dict:
        """bus (``("i2c", 1)``, ``("spi", 0, 0)``, ``("serial", "serial0")``) -> pid of its
        worker process."""
        return {h.key: h.pid for h in self.pool
                if h.pid is not None and h.kind in ("i2c", "spi", "serial")}

    def expander_worker_pids(self) -> dict:
        """expander name (``"mcp0"``) -> pid of its worker process."""
        return {h.key[1]: h.pid for h in self.pool if h.pid is not None and h.kind == "expander"}


def config_settings(config: ServerConfig) -> Dict[str, Any]:
    """:class:`Server`'s arguments for a :class:`ServerConfig` (the token file read)."""
    token = config.token
    if config.token_file:
        token = check_token(read_token_file(config.token_file),
                            f"the token in {config.token_file}")
    return dict(
        host=config.host, port=config.port, mode=config.mode, backend=config.backend,
        revision=parse_revision(config.revision), chip=config.chip, token=token,
        tls_cert=config.tls_cert, tls_key=config.tls_key,
        tls_client_ca=config.tls_client_ca, pins=config.pins,
        default_access=config.default_access, disconnect_policy=config.on_disconnect,
        max_connections=config.max_connections,
        heartbeat_timeout=config.heartbeat_timeout_s, advertise=config.advertise,
        realtime_priority=config.realtime_priority, buses=config.buses,
        bus_default_access=config.bus_default_access, expanders=config.expanders,
        declare_expanders=config.declare_expanders)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_server(port: int = DEFAULT_PORT, mode: str = "wait", host: str = "0.0.0.0",
               backend: Any = "auto", *, server: Optional[Server] = None, **options: Any) -> None:
    """Serve until SIGTERM or Ctrl-C, then make every pin safe and return.

    As in the original remoteio::

        from remoteio import run_server

        if __name__ == "__main__":
            run_server(port=1234)
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = server or Server(host, port, mode, backend, **options)
    if not server.started:  # a server already started is served as it is
        server.start()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: threading.Thread(
                target=server.stop, name="remoteio-stop", daemon=True).start())
    try:
        server.serve_forever()
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
