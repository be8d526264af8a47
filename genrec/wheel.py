"""A wheel of the installed genrec, shipped with every registered model so that its requirements
can be installed where no package index has genrec."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import os
import zipfile
from pathlib import Path

PACKAGES = ("genrec", "flows")


def _distribution() -> importlib.metadata.Distribution:
    """The installed distribution (a source tree's `genrec.egg-info` may also be on the path: the
    installed one, with a METADATA file, comes first)."""
    found = list(importlib.metadata.distributions(name="genrec"))
    return next((d for d in found if d.read_text("METADATA")), found[0])


def version() -> str:
    return _distribution().version


def wheel_name() -> str:
    return f"genrec-{version()}-py3-none-any.whl"


def build_wheel(directory: Path) -> Path:
    """Write the installed genrec (its packages as they are on disk, its metadata as installed)
    as a pure-Python wheel into `directory`."""
    dist = _distribution()
    info = f"genrec-{dist.version}.dist-info"
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        found = [Path(d) / f for d, _, names in os.walk(root, followlinks=True) for f in names]  # links: expectations/
        for path in sorted(found):
            if "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[f"{package}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    files[f"{info}/METADATA"] = (dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "").encode()
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: genrec\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / wheel_name()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
