"""`shelfwise.config`'s namespace: an explicit sorted `__all__` that keeps every old name."""

from __future__ import annotations

import types

import shelfwise.config

# What `shelfwise.config` exported when it was one module; imports across the repo use them.
EXPORTED_BEFORE = {
    "BM25Config", "BlendConfig", "COMPRESS_VARIANTS", "CanaryConfig", "CompressConfig",
    "CompressVariant", "DataConfig", "DenseConfig", "ENV_PREFIX", "EvaluateConfig",
    "EventsConfig", "FileFormat", "GATE_METRIC", "GateConfig", "GateRule", "ModelConfig",
    "ModelsConfig", "RankingConfig", "RegistryConfig", "RetrainConfig",
    "SearchRankingConfig", "ServeConfig", "ShelfwiseConfig", "SourceConfig", "SplitConfig",
    "TuneConfig", "hash_jsonable", "load_config", "parse_overrides",
}  # fmt: skip


def test_all_matches_namespace() -> None:
    public = {
        name
        for name, value in vars(shelfwise.config).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(shelfwise.config.__all__)


def test_all_is_sorted_and_keeps_every_old_name() -> None:
    assert list(shelfwise.config.__all__) == sorted(shelfwise.config.__all__)
    assert set(shelfwise.config.__all__) >= EXPORTED_BEFORE
