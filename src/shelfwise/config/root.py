"""`ShelfwiseConfig`: the whole `shelfwise.yaml`, one typed section per key."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from shelfwise.config._base import Section, hash_jsonable
from shelfwise.config.compute import ComputeConfig
from shelfwise.config.data import DataConfig, SplitConfig
from shelfwise.config.evaluation import (
    CompressConfig,
    EvaluateConfig,
    RankingConfig,
    SearchRankingConfig,
)
from shelfwise.config.lifecycle import CanaryConfig, GateConfig, RegistryConfig, RetrainConfig
from shelfwise.config.models import ModelsConfig, PlanConfig, TuneConfig
from shelfwise.config.privacy import PrivacyConfig
from shelfwise.config.serve import ServeSettings

# Sections that change how a bundle is served, or where a run's work runs, never what a
# run produces: left out of the fingerprint, so that a run resumes and its stages are
# reused whatever they say (a run that failed on Ray resumes locally, and back).
_NOT_FINGERPRINTED = frozenset({"serve", "compute"})


class ShelfwiseConfig(Section):
    """The whole configuration."""

    project: str = Field(default="shop", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    home: Path | None = Field(
        default=None,
        description="State folder (runs, bundles). Default: $SHELFWISE_HOME or ./.shelfwise",
    )
    seed: int = 42
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    models: ModelsConfig = ModelsConfig()
    tune: TuneConfig = TuneConfig()
    plan: PlanConfig = PlanConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    ranking: RankingConfig = RankingConfig()
    search: SearchRankingConfig = SearchRankingConfig()
    compress: CompressConfig = CompressConfig()
    serve: ServeSettings = ServeSettings()
    registry: RegistryConfig = RegistryConfig()
    gate: GateConfig = GateConfig()
    retrain: RetrainConfig = RetrainConfig()
    canary: CanaryConfig = CanaryConfig()
    compute: ComputeConfig = ComputeConfig()
    privacy: PrivacyConfig = PrivacyConfig()

    def state_dir(self) -> Path:
        """The state folder: `home`, else $SHELFWISE_HOME, else ./.shelfwise."""
        if self.home is not None:
            return self.home
        return Path(os.environ.get("SHELFWISE_HOME", ".shelfwise"))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON form, for manifests and caching.

        The `serve` and `compute` sections are left out: they do not change what a run
        produces.
        """
        return hash_jsonable(self.model_dump(mode="json", exclude=set(_NOT_FINGERPRINTED)))
