"""The dashboard's third-party stylesheets, fetched once from the npm registry into ``dashboard/assets/vendor``.

crystal-toolkit's components are styled with Bulma and Font Awesome, which it loads from a CDN by default; the
dashboard must render offline, so ``make setup`` runs ``python -m dashboard.vendor`` to download the two packages'
tarballs from the npm registry (checked against their SHA-256) and keep only the CSS and web fonts. Nothing is
committed: ``dashboard/assets/vendor`` is ignored by git. Without them the pages still work, less styled.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "assets" / "vendor"
REGISTRY = "https://registry.npmjs.org"

#: package -> (tarball path on the registry, sha256, {member in the tarball: file under VENDOR})
PACKAGES: dict[str, tuple[str, str, dict[str, str]]] = {
    "bulma 0.9.4 (MIT)": (
        "bulma/-/bulma-0.9.4.tgz",
        "f6c9a8615510fb0c93087908fd9a770fd3d3870456feeb88f2ff40958cdd1e95",
        {"package/css/bulma.min.css": "a-bulma.min.css"},
    ),
    "@fortawesome/fontawesome-free 6.4.2 (CSS MIT, fonts OFL-1.1)": (
        "@fortawesome/fontawesome-free/-/fontawesome-free-6.4.2.tgz",
        "a41c66ad259947764abd3aff8fcd4d49fbed5561601ad6744703ce7a9eeb90af",
        {
            "package/css/all.min.css": "b-fontawesome/css/all.min.css",
            "package/webfonts/fa-solid-900.woff2": "b-fontawesome/webfonts/fa-solid-900.woff2",
            "package/webfonts/fa-regular-400.woff2": "b-fontawesome/webfonts/fa-regular-400.woff2",
            "package/webfonts/fa-brands-400.woff2": "b-fontawesome/webfonts/fa-brands-400.woff2",
        },
    ),
}


def missing() -> list[str]:
    """Vendored files that are not in place."""
    return [name for _, _, files in PACKAGES.values() for name in files.values() if not (VENDOR / name).is_file()]


def fetch(registry: str = REGISTRY, timeout_s: float = 60.0) -> list[Path]:
    """Download what is missing; returns the files written. Raises OSError or ValueError (hash mismatch)."""
    written: list[Path] = []
    for label, (path, sha256, files) in PACKAGES.items():
        if all((VENDOR / name).is_file() for name in files.values()):
            continue
        with urllib.request.urlopen(f"{registry}/{path}", timeout=timeout_s) as response:
            data = response.read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise ValueError(f"{label}: sha256 {digest} is not the expected {sha256}")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member, name in files.items():
                target = VENDOR / name
                target.parent.mkdir(parents=True, exist_ok=True)
                extracted = archive.extractfile(member)
                if extracted is None:
                    raise ValueError(f"{label}: {member} is not a file in the tarball")
                target.write_bytes(extracted.read())
                written.append(target)
    return written


def main() -> int:
    """``python -m dashboard.vendor``: fetch the stylesheets (a warning, not a failure, when offline)."""
    if not missing():
        return 0
    try:
        for path in fetch():
            print(f"dashboard: vendored {path.relative_to(VENDOR.parent.parent)}")
    except (OSError, ValueError) as exc:
        print(f"dashboard: could not fetch its stylesheets ({exc}); pages will be less styled", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
