"""Bundle size per component, measured on disk from the run's `package/bundle/`.

A component is a folder under `models/` (e.g. `models/blend/`); the files at the top
of the bundle (item and user tables, histories, the manifest) are grouped as
`shared tables`. The bundle manifest's `components` (role -> model) names the roles
each model serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shelfwise.report._collect import NotRun, read_json

BUNDLE_DIR: Final = Path("package") / "bundle"
SHARED: Final = "shared tables"


@dataclass(frozen=True)
class ComponentSize:
    """Bytes and file count of one bundle component."""

    name: str
    roles: list[str]
    files: int
    size_bytes: int


@dataclass(frozen=True)
class BundleSizes:
    """Every component of the run's bundle, largest first."""

    path: str
    components: list[ComponentSize]

    @property
    def total_bytes(self) -> int:
        """Size of the whole bundle."""
        return sum(component.size_bytes for component in self.components)


def collect_bundle(run_dir: Path) -> BundleSizes:
    """Sizes per component of `package/bundle/` (symlinks followed, as served)."""
    bundle = run_dir / BUNDLE_DIR
    if not bundle.is_dir():
        raise NotRun(f"{BUNDLE_DIR.as_posix()}/ not found (package stage not run)")
    roles: dict[str, list[str]] = {}
    try:
        manifest = read_json(bundle / "manifest.json", run_dir)
    except NotRun:
        manifest = {}
    for role, model in sorted((manifest.get("components") or {}).items()):
        roles.setdefault(str(model), []).append(str(role))
    sizes: dict[str, list[int]] = {}
    for path in sorted(bundle.rglob("*")):
        if not path.is_file():
            continue
        parts = path.relative_to(bundle).parts
        name = parts[1] if len(parts) > 2 and parts[0] == "models" else SHARED
        entry = sizes.setdefault(name, [0, 0])
        entry[0] += 1
        entry[1] += path.stat().st_size
    components = [
        ComponentSize(name=name, roles=roles.get(name, []), files=files, size_bytes=size)
        for name, (files, size) in sizes.items()
    ]
    components.sort(key=lambda component: (-component.size_bytes, component.name))
    return BundleSizes(path=BUNDLE_DIR.as_posix(), components=components)


__all__ = ["BUNDLE_DIR", "SHARED", "BundleSizes", "ComponentSize", "collect_bundle"]
