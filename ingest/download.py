"""Plain HTTP downloads into the raw cache, with a one-line error that says how to work offline."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ingest.records import DatasetError

TIMEOUT_S = 30.0


class DownloadError(DatasetError):
    """A download failed (offline, host unreachable, HTTP error)."""


def download(url: str, dest: Path, *, hint: str = "", progress: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` atomically (a partial file never appears under ``dest``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            if progress:
                from rich.progress import Progress

                with Progress(transient=True) as bar:
                    task = bar.add_task(f"downloading {dest.name}", total=total or None)
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                        bar.advance(task, len(chunk))
            else:
                shutil.copyfileobj(response, out)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"cannot download {url} ({reason}){'; ' + hint if hint else ''}") from None
    return dest
