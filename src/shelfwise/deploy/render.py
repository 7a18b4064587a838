"""Render the deployment templates (package data) into a folder.

Templates are plain files under `templates/<folder>/` with `<<name>>` placeholders
(a syntax that collides with none of Dockerfile, YAML, GitHub's `${{ }}`, GitLab's
`$VAR` or Groovy). A placeholder without a value, or a value nobody asked for, is an
error, so a template and `DeploySpec` cannot drift apart silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Final, Literal, get_args

from shelfwise.deploy.spec import DeploySpec
from shelfwise.errors import ConfigError

Target = Literal["k8s", "compose", "ci", "all"]
TARGETS: Final[tuple[str, ...]] = get_args(Target)
# Which template folders each target writes (the Dockerfile goes with k8s and compose).
TARGET_FOLDERS: Final[dict[str, tuple[str, ...]]] = {
    "k8s": ("docker", "k8s"),
    "compose": ("docker", "compose"),
    "ci": ("ci",),
    "all": ("ci", "compose", "docker", "k8s"),
}
# Template names that cannot be package data as they are (setuptools' globs skip
# dotfiles), renamed on the way out.
_RENAMES: Final = {"gitlab-ci.yml": ".gitlab-ci.yml"}
_PLACEHOLDER: Final = re.compile(r"<<([a-z_][a-z0-9_]*)>>")


def render(target: Target, out: Path, spec: DeploySpec | None = None) -> list[Path]:
    """Write the files of `target` under `out` (folders created, files overwritten).

    Args:
        target: k8s (Dockerfile + Kustomize base and overlays), compose (Dockerfile +
            docker-compose + env example), ci (GitHub Actions, GitLab CI, Jenkinsfile)
            or all.
        out: the deploy root; each folder lands in `out/<folder>/`.
        spec: the parameters (default: `DeploySpec()`).

    Returns:
        The written files, sorted.

    Raises:
        ConfigError: unknown target, or a template that uses an unknown placeholder.
    """
    if target not in TARGET_FOLDERS:
        raise ConfigError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    values = (spec or DeploySpec()).values()
    written: list[Path] = []
    for relative, text in rendered_files(target, values):
        path = out.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return sorted(written)


def rendered_files(
    target: Target, values: Mapping[str, str]
) -> Iterator[tuple[PurePosixPath, str]]:
    """(path relative to the deploy root, rendered text) for every file of `target`."""
    root = files("shelfwise.deploy").joinpath("templates")
    for folder in TARGET_FOLDERS[target]:
        for relative, template in _walk(root.joinpath(folder), PurePosixPath(folder)):
            text = template.read_text(encoding="utf-8")
            yield relative, substitute(text, values, name=str(relative))


def substitute(text: str, values: Mapping[str, str], *, name: str) -> str:
    """Replace every `<<key>>` in `text` with `values[key]`.

    Raises:
        ConfigError: `text` names a key that `values` lacks.
    """
    missing = sorted({key for key in _PLACEHOLDER.findall(text) if key not in values})
    if missing:
        raise ConfigError(
            f"template {name} uses unknown placeholder(s) {', '.join(missing)}; add them "
            "to DeploySpec or fix the template"
        )
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def placeholders() -> set[str]:
    """Every placeholder name any template uses (for the test that no field is unused)."""
    root = files("shelfwise.deploy").joinpath("templates")
    found: set[str] = set()
    for folder in TARGET_FOLDERS["all"]:
        for _, template in _walk(root.joinpath(folder), PurePosixPath(folder)):
            found.update(_PLACEHOLDER.findall(template.read_text(encoding="utf-8")))
    return found


def _walk(
    node: Traversable, relative: PurePosixPath
) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda entry: entry.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            yield from _walk(child, relative / child.name)
        else:
            yield relative / _RENAMES.get(child.name, child.name), child
