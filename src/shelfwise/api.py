"""The Python API: what `shelfwise run` and `shelfwise serve` do, as two functions.

    import shelfwise

    outcome = shelfwise.run("my-shop/shelfwise.yaml")      # the whole pipeline → version N
    engine = shelfwise.load_bundle(outcome.bundle_path)    # or a version: load_bundle(3)
    engine.recommend("U000042", k=5).items                 # ScoredItem(raw_item_id, score, …)
    engine.search("laptop", k=5).items
    engine.similar("SKU00017", k=5).items
    engine.predict("U000042", ["SKU00017", "SKU00018"]).predictions

Heavy modules (the pipeline's stages, the models) are imported on call, so
`import shelfwise` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from shelfwise.config import ShelfwiseConfig, load_config

if TYPE_CHECKING:
    from shelfwise.pipeline import RunOutcome, StageEvent
    from shelfwise.runtime import Engine

ConfigSource = ShelfwiseConfig | str | os.PathLike[str] | None
DEFAULT_CONFIG_FILE: Final = "shelfwise.yaml"
_ALIASES: Final = ("champion", "challenger")


def run(
    config: ConfigSource = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    resume: str | None = None,
    from_stage: str | None = None,
    until: str | None = None,
    use_cache: bool = True,
    on_event: Callable[[StageEvent], None] | None = None,
) -> RunOutcome:
    """Run the pipeline, as `shelfwise run` does, and return what it produced.

    Args:
        config: a loaded `ShelfwiseConfig`, the path of a `shelfwise.yaml`, or None for
            `./shelfwise.yaml` when it exists (defaults and `SHELFWISE_*` variables else).
        overrides: dotted keys, as `--set` gives them, e.g. `{"tune.budget_seconds": 30}`;
            only with a path or None.
        resume: a run id (or "latest") to continue.
        from_stage: recompute this stage and the later ones.
        until: stop after this stage; nothing is published.
        use_cache: reuse finished stages of earlier runs with the same inputs.
        on_event: called as stages start and finish.

    Returns:
        The run's id and folder, every stage's manifest, the version it registered
        (`bundle_version`, `bundle_path`), the gate's decision and the report's path.

    Raises:
        ShelfwiseError: a stage's error (bad data, bad config), with a stable `code`.
    """
    from shelfwise.pipeline import run_pipeline

    return run_pipeline(
        _config(config, overrides),
        resume=resume,
        from_stage=from_stage,
        until=until,
        use_cache=use_cache,
        on_event=on_event,
    )


def load_bundle(
    bundle: str | os.PathLike[str] | int,
    *,
    config: ConfigSource = None,
    verify: bool = True,
) -> Engine:
    """Load a model version for inference: `recommend`, `search`, `similar`, `predict`.

    Args:
        bundle: a bundle folder (or a state folder, whose champion loads); a version
            number (`3`, `"3"`); or an alias (`"champion"`, `"challenger"`) looked up in
            the registry the config names.
        config: where versions and aliases are looked up (as in `run`); unused for a
            folder.
        verify: re-hash every file of the bundle before loading (refuses a damaged one).

    Raises:
        BundleNotFoundError: no such folder, version or alias.
        IntegrityError: a file of the bundle does not match its manifest.
    """
    from shelfwise.runtime import load_engine

    label = str(bundle)
    if isinstance(bundle, int) or label.isdigit() or label in _ALIASES:
        return load_engine(_version_path(label, _config(config, None)), verify=verify)
    return load_engine(Path(bundle), verify=verify)


def _version_path(label: str, config: ShelfwiseConfig) -> Path:
    from shelfwise.errors import BundleNotFoundError
    from shelfwise.registry import open_registry

    registry = open_registry(config)
    if label in _ALIASES:
        found = registry.by_alias(label)
        if found is None:
            raise BundleNotFoundError(
                f"model {registry.model_name!r} has no {label} in {registry.location}; "
                "run `shelfwise run` or `shelfwise promote VERSION`"
            )
        label = found.version
    return registry.local_path(label)


def _config(config: ConfigSource, overrides: Mapping[str, Any] | None) -> ShelfwiseConfig:
    if isinstance(config, ShelfwiseConfig):
        if overrides:
            from shelfwise.errors import ConfigError

            raise ConfigError("overrides apply to a config file; change a loaded config instead")
        return config
    path = Path(config) if config is not None else None
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    return load_config(path, overrides=overrides)
