"""Where the package's shipped files (config/, scenarios, RViz configs) live.

In a source checkout they are at the repository root; after ``pip install .`` or
``colcon build`` they are installed under ``<prefix>/share/anomaly_inspection/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_NAME = "anomaly_inspection"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    out = [here.parents[2] / "config"]  # source checkout: <repo>/src/anomaly_inspection_core/
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            out.append(Path(prefix) / "share" / PACKAGE_NAME / "config")
    out.append(Path(sys.prefix) / "share" / PACKAGE_NAME / "config")
    return out


def config_dir() -> Path:
    """The first existing config directory (source checkout first, then installed share)."""
    for candidate in _candidates():
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "cannot find the anomaly_inspection config directory; looked in: "
        + ", ".join(str(c) for c in _candidates())
    )


def scenarios_dir() -> Path:
    return config_dir() / "scenarios"


def resolve_config_file(name_or_path: str | os.PathLike, subdir: str = "", suffix: str = ".yaml") -> Path:
    """A path that exists as given, or ``config/<subdir>/<name><suffix>``; clear error otherwise."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    base = config_dir() / subdir if subdir else config_dir()
    for candidate in (base / path, base / f"{path}{suffix}"):
        if candidate.is_file():
            return candidate
    available = sorted(p.stem for p in base.glob(f"*{suffix}")) if base.is_dir() else []
    raise FileNotFoundError(
        f"no such file or shipped {subdir or 'config'} name: {name_or_path!s}"
        + (f" (available: {', '.join(available)})" if available else "")
    )
