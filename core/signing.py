"""Files that are unpickled carry a signature of this installation, so a file someone else supplies is refused
before anything in it runs.

Pickles execute code when loaded. The project pickles what it trains (descriptor ensembles, composition
baselines) and its processed data cache; a model document in the store only names the folder, and the embedded
store has no authentication, so a document pointing at a crafted file must not be enough to run code. Each such
file gets an HMAC-SHA256 next to it (``<file>.sig``) under a random key kept in the data home (``signing.key``,
readable by its owner only); :func:`read_signed` returns the bytes only when the signature matches. Copying
models to another machine: copy ``signing.key`` too (or retrain there). This module imports nothing of the
project but its errors and paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from core import paths
from core.errors import DiscoveryError

KEY_FILE = "signing.key"
SUFFIX = ".sig"


class UntrustedFileError(DiscoveryError):
    """A file that would be unpickled has no valid signature of this installation."""


def _key() -> bytes:
    path = paths.data_home() / KEY_FILE
    if not path.is_file():
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # first writer wins when two processes race
            os.link(path.with_suffix(".tmp"), path)
        path.with_suffix(".tmp").unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def signature(data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under this installation's key (hex)."""
    return hmac.new(_key(), data, hashlib.sha256).hexdigest()


def write_signed(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` and its signature to ``path + '.sig'`` (signature last: a crash in between leaves
    a file that is refused, never a signed partial one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sig = Path(str(path) + SUFFIX)
    sig.unlink(missing_ok=True)
    path.write_bytes(data)
    sig.write_text(signature(data) + "\n")
    return path


def _problem(path: Path, data: bytes) -> str:
    sig = Path(str(path) + SUFFIX)
    if not sig.is_file():
        return (
            f"{path} has no signature ({sig.name}): refusing to unpickle a file this installation did not write "
            "(retrain the model, or copy signing.key from the data home that trained it)"
        )
    if not hmac.compare_digest(sig.read_text().strip(), signature(data)):
        return f"{path}: signature does not match its content: refusing to unpickle it"
    return ""


def signed_problem(path: Path) -> str:
    """Why ``path`` would be refused by :func:`read_signed` ('' when it is signed and intact); nothing is loaded."""
    path = Path(path)
    try:
        return _problem(path, path.read_bytes())
    except OSError as exc:
        return f"{path} cannot be read: {exc}"


def read_signed(path: Path) -> bytes:
    """The bytes of ``path`` if its signature matches; UntrustedFileError (naming the file) otherwise."""
    path = Path(path)
    data = path.read_bytes()
    problem = _problem(path, data)
    if problem:
        raise UntrustedFileError(problem)
    return data
