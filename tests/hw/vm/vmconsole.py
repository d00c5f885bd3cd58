"""Host side of the guest's serial console: where the command's output is."""


class Console:
    """Splits the serial stream into boot noise and the command's output.

    The guest prints a start marker before the command and an end marker
    (preceded by one newline of its own) after it; only the bytes in between
    are the command's. Bytes that might be the beginning of the end marker
    are held back until it is clear they are not.
    """

    def __init__(self, nonce, sink):
        self.start = f"@@remoteio-vm-start:{nonce}@@".encode()
        self.end = f"\n@@remoteio-vm-end:{nonce}:".encode()
        self.sink = sink
        self.boot = bytearray()
        self.pending = bytearray()
        self.output = bytearray()
        self.started = self.finished = False
        self.marker_rc = None

    def feed(self, data):
        if self.finished:
            return
        if not self.started:
            self.boot += data
            i = self.boot.find(self.start)
            nl = self.boot.find(b"\n", i + len(self.start)) if i >= 0 else -1
            if nl < 0:  # marker (or the end of its line) not here yet
                if i < 0:
                    del self.boot[:-65536]  # keep the tail for diagnostics
                return
            self.started = True
            data = bytes(self.boot[nl + 1:])
        self.pending += data
        i = self.pending.find(self.end)
        if i >= 0:
            tail = bytes(self.pending[i + len(self.end):])
            if b"@@" not in tail:
                self._emit(self.pending[:i])
                del self.pending[:i]
                return
            self._emit(self.pending[:i])
            rc = tail.split(b"@@", 1)[0]
            self.marker_rc = int(rc) if rc.isdigit() else None
            self.finished = True
            return
        nl = self.pending.rfind(b"\n")
        hold = nl if nl >= 0 and self.end.startswith(bytes(self.pending[nl:])) else len(self.pending)
        self._emit(self.pending[:hold])
        del self.pending[:hold]

    def _emit(self, chunk):
        if chunk:
            chunk = bytes(chunk)
            self.output += chunk
            if self.sink is not None:
                try:
                    self.sink.write(chunk)
                    self.sink.flush()
                except BrokenPipeError:  # e.g. `vm.py run ... | head`: keep running, stop echoing
                    self.sink = None

    def flush(self):
        """On a dead guest: hand out whatever was held back."""
        if self.started and not self.finished:
            self._emit(self.pending)
            self.pending.clear()
