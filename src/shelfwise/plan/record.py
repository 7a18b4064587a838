"""The plan as written to `plan.json`, and the config it turns a run's config into.

A plan is plain data: what was measured (`shape`, `resources`), one `Choice` per stage
and per part (model families, dense search), and `settings`, the config keys it sets
(dotted key -> value). Later stages read the plan back with `load_plan` and run on
`apply_plan(config, plan)`: the run's config with those keys set. Only keys the
config leaves at their defaults are ever in `settings` (see `shelfwise.plan.choose`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise._internal.stage import StageContext
from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.plan.costs import Estimate
from shelfwise.plan.shape import DataShape, Resources

PLAN_FILE: Final = "plan.json"
PLAN_VERSION: Final = 1
Where = Literal["local"]  # the Ray engine adds "ray" (issue 13, point 3)


@dataclass(frozen=True)
class Choice:
    """One row of the plan: a stage or a part of one, on or off, why, and its cost.

    Attributes:
        name: the stage (`tune`) or part (`bpr`, `dense`).
        kind: "stage", "family" (a recommender) or "search" (a search index).
        enabled: whether it runs.
        reason: why it runs as it does, or why not, in a sentence with the numbers.
        where: where it runs (`local` for now).
        seconds: estimated wall seconds (measured for stages already done).
        memory_mb: estimated peak MB beyond the process's base.
        measured: True when `seconds` and `memory_mb` were measured (finished stages).
    """

    name: str
    kind: str
    enabled: bool
    reason: str
    where: Where = "local"
    seconds: float = 0.0
    memory_mb: float = 0.0
    measured: bool = False

    @classmethod
    def estimated(
        cls, name: str, kind: str, enabled: bool, reason: str, cost: Estimate | None
    ) -> Choice:
        """A choice with an estimated cost (none when left out)."""
        if cost is None or not enabled:
            return cls(name, kind, enabled, reason)
        return cls(
            name,
            kind,
            enabled,
            reason,
            seconds=round(cost.seconds, 1),
            memory_mb=round(cost.memory_bytes / 2**20, 1),
        )


@dataclass(frozen=True)
class Plan:
    """What the plan step chose (see the module docstring)."""

    shape: DataShape
    resources: Resources
    stages: list[Choice]
    parts: list[Choice]
    settings: dict[str, Any] = field(default_factory=dict)
    tune_trial_seconds: dict[str, float] = field(default_factory=dict)
    enabled: bool = True
    encoder_rates: dict[str, float] = field(default_factory=dict)  # tokens/s measured
    budget: list[str] = field(default_factory=list)  # what plan.max_run_minutes changed

    def part(self, name: str) -> Choice | None:
        """The choice about part `name` (a family, `dense`), if the plan made one."""
        return next((choice for choice in self.parts if choice.name == name), None)

    def left_out(self) -> dict[str, str]:
        """Parts left out, with their reasons."""
        return {choice.name: choice.reason for choice in self.parts if not choice.enabled}

    def decisions(self) -> dict[str, Any]:
        """What later stages' outputs depend on: the settings, which parts run, and the
        tune trial estimates (the order baselines run in). Measured times, reasons and
        encoder rates are left out, so a plan recomputed to the same choices keeps the
        later stages' cache keys."""
        return {
            "settings": self.settings,
            "parts": {choice.name: choice.enabled for choice in self.parts},
            "tune_trial_seconds": self.tune_trial_seconds,
        }

    def to_json(self) -> dict[str, Any]:
        """The `plan.json` document."""
        return {
            "version": PLAN_VERSION,
            "enabled": self.enabled,
            "shape": self.shape.to_json(),
            "resources": self.resources.to_json(),
            "stages": [asdict(choice) for choice in self.stages],
            "parts": [asdict(choice) for choice in self.parts],
            "settings": self.settings,
            "tune_trial_seconds": self.tune_trial_seconds,
            "encoder_rates": self.encoder_rates,
            "budget": self.budget,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Plan:
        """Read a `plan.json` document.

        Raises:
            ArtifactError: another version, or a missing key.
        """
        if value.get("version") != PLAN_VERSION:
            raise ArtifactError(
                f"plan.json has version {value.get('version')!r}, this shelfwise reads "
                f"{PLAN_VERSION}; rerun the plan stage (`shelfwise run --from-stage plan`)"
            )
        try:
            resources = value["resources"]
            return cls(
                shape=DataShape.from_json(value["shape"]),
                resources=Resources(int(resources["memory_bytes"]), int(resources["cores"])),
                stages=[Choice(**choice) for choice in value["stages"]],
                parts=[Choice(**choice) for choice in value["parts"]],
                settings=dict(value["settings"]),
                tune_trial_seconds=dict(value.get("tune_trial_seconds", {})),
                enabled=bool(value["enabled"]),
                encoder_rates=dict(value.get("encoder_rates", {})),
                budget=list(value.get("budget", [])),
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"plan.json is malformed ({exc}); rerun the plan stage") from None

    def save(self, folder: Path) -> None:
        """Write `plan.json` into `folder`."""
        atomic_write_json(folder / PLAN_FILE, self.to_json())


def load_plan(folder: Path) -> Plan:
    """The plan in a plan stage folder.

    Raises:
        ArtifactError: no readable `plan.json`.
    """
    path = folder / PLAN_FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read {path} ({exc}); rerun the plan stage") from None
    return Plan.from_json(value)


def apply_plan(config: ShelfwiseConfig, plan: Plan) -> ShelfwiseConfig:
    """`config` with the plan's settings set (the config later stages run on).

    Each changed section is validated again; the others (`serve` with its secrets among
    them) are kept as they are.

    Raises:
        ConfigError: a setting the config model refuses (a bug in the plan).
    """
    result = config
    for dotted, value in plan.settings.items():
        result = _with_value(result, dotted.split("."), value)
    try:
        for section in {dotted.split(".")[0] for dotted in plan.settings}:
            current = getattr(result, section)
            if isinstance(current, BaseModel):
                checked = type(current).model_validate(current.model_dump())
                result = result.model_copy(update={section: checked})
    except ValueError as exc:
        raise ConfigError(f"the plan's settings do not make a valid config: {exc}") from None
    return result


def _with_value(node: Any, parts: list[str], value: Any) -> Any:
    """A copy of `node` (a config section or a dict) with the value at `parts` replaced."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, BaseModel):
        child = getattr(node, head)
        return node.model_copy(update={head: _with_value(child, rest, value) if rest else value})
    if isinstance(node, dict):
        return {**node, head: _with_value(node.get(head, {}), rest, value) if rest else value}
    raise ConfigError(f"the plan sets {'.'.join(parts)!r} inside a value that is not a section")


def planned_config(ctx: StageContext) -> ShelfwiseConfig:
    """The config a stage runs on: the run's config with the plan applied, when there is one.

    Stages that need the plan list it among their inputs; a stage run without it (a
    test calling it directly) gets the config as written.
    """
    folder = ctx.inputs.get("plan")
    if folder is None or not (folder / PLAN_FILE).is_file():
        return ctx.config
    return apply_plan(ctx.config, load_plan(folder))


__all__ = [
    "PLAN_FILE",
    "Choice",
    "Plan",
    "Where",
    "apply_plan",
    "load_plan",
    "planned_config",
]
