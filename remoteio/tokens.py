"""Where authentication tokens come from, and how they are made.

A client looks, in order, at: the ``token=`` argument; ``$REMOTEIO_TOKEN``;
the file named by ``$REMOTEIO_TOKEN_FILE``; ``~/.config/remoteio/token``;
``/etc/remoteio/token`` (readable only by its owner: on the Pi itself).
A token file holds the token on its first line. remoteio warns when a token
file can be read by its group or by everyone.

>>> len(generate_token()) >= 43
True
"""
from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

USER_TOKEN_FILE = "~/.config/remoteio/token"
SYSTEM_TOKEN_FILE = "/etc/remoteio/token"
#: the shortest token a server accepts (``remoteio token`` makes 43 characters)
MIN_TOKEN_LENGTH = 16


def check_token(token: str, source: str = "the token") -> str:
    """*token* stripped, or ValueError if it is too weak to protect anything
    (empty, blank, or shorter than :data:`MIN_TOKEN_LENGTH`).

    >>> check_token("   ")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    ValueError: the token is empty: an empty token would turn authentication off;
    make one with `remoteio token`
    """
    token = token.strip()
    if not token:
        raise ValueError(f"{source} is empty: an empty token would turn authentication off; "
                         "make one with `remoteio token`")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{source} has {len(token)} characters; a token needs at least "
                         f"{MIN_TOKEN_LENGTH} (make a strong one with `remoteio token`)")
    return token


def generate_token() -> str:
    """A new random token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def read_token_file(path: str) -> str:
    """The token in *path* (first line); warns if others may read the file."""
    path = os.path.expanduser(path)
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token file %s can be read by others (mode %o): chmod 600 it",
                    path, stat.S_IMODE(mode))
    with open(path, encoding="utf-8") as f:
        token = f.readline().strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


def write_token_file(path: str, token: Optional[str] = None) -> str:
    """Write *token* (or a new one) to *path*, readable only by its owner."""
    token = token or generate_token()
    path = os.path.expanduser(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(token + "\n")
    return token


def find_token(explicit: Optional[str] = None) -> Optional[str]:
    """The token a client should use, from the standard places (or None);
    ValueError for a token that is set but blank."""
    if explicit:
        if not explicit.strip():
            raise ValueError("the token given is blank")
        return explicit.strip()
    if os.environ.get("REMOTEIO_TOKEN") is not None:
        if not os.environ["REMOTEIO_TOKEN"].strip():
            raise ValueError("REMOTEIO_TOKEN is set but blank: unset it, or give a token")
        return os.environ["REMOTEIO_TOKEN"].strip()
    if os.environ.get("REMOTEIO_TOKEN_FILE"):
        return read_token_file(os.environ["REMOTEIO_TOKEN_FILE"])
    for candidate in (USER_TOKEN_FILE, SYSTEM_TOKEN_FILE):
        path = os.path.expanduser(candidate)
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return read_token_file(path)
    return None
