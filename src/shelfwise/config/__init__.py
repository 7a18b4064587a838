"""The `shelfwise.yaml` configuration: typed sections, defaults in code, one loader.

Precedence, lowest first: defaults in the models < the YAML file < environment variables
(`SHELFWISE_SERVE_<KEY>` for `serve.*`, `SHELFWISE_<SECTION>__<KEY>` for the rest; see
`loader`) < CLI flags. Unknown keys and wrong types are errors that name the key path.

Modules, in the order the file reads:

- `data`: input files and the split (`data:`, `split:`)
- `models`: recommenders, search models, AutoML (`models:`, `tune:`)
- `evaluation`: metrics, click model, search ranking, compression
- `serve`: the online role's settings (`serve:`, `ServeSettings`)
- `lifecycle`: registry, promotion gate, retraining, canary
- `compute`: where the batch role's work runs, in-process or on Ray (`compute:`)
- `privacy`: pseudonymous user ids and query logging (`privacy:`)
- `root`: `ShelfwiseConfig`, the whole file
- `loader`: `load_config`, `parse_overrides`, the environment
- `template`: the commented file `shelfwise init` writes
"""

from __future__ import annotations

from shelfwise.config._base import hash_jsonable
from shelfwise.config.compute import ComputeConfig
from shelfwise.config.data import DataConfig, EventsConfig, FileFormat, SourceConfig, SplitConfig
from shelfwise.config.evaluation import (
    COMPRESS_VARIANTS,
    CompressConfig,
    CompressVariant,
    EvaluateConfig,
    RankingConfig,
    SearchRankingConfig,
)
from shelfwise.config.lifecycle import (
    GATE_METRIC,
    CanaryConfig,
    GateConfig,
    GateRule,
    RegistryConfig,
    RetrainConfig,
)
from shelfwise.config.loader import (
    ENV_PREFIX,
    PROCESS_VARIABLES,
    config_key_of,
    load_config,
    parse_overrides,
)
from shelfwise.config.models import (
    BlendConfig,
    BM25Config,
    DenseConfig,
    ModelConfig,
    ModelsConfig,
    PlanConfig,
    TuneConfig,
)
from shelfwise.config.privacy import PrivacyConfig
from shelfwise.config.root import ShelfwiseConfig
from shelfwise.config.serve import SERVE_ENV_PREFIX, ServeConfig, ServeSettings

__all__ = [
    "BM25Config",
    "BlendConfig",
    "COMPRESS_VARIANTS",
    "CanaryConfig",
    "CompressConfig",
    "CompressVariant",
    "ComputeConfig",
    "DataConfig",
    "DenseConfig",
    "ENV_PREFIX",
    "EvaluateConfig",
    "EventsConfig",
    "FileFormat",
    "GATE_METRIC",
    "GateConfig",
    "GateRule",
    "ModelConfig",
    "ModelsConfig",
    "PROCESS_VARIABLES",
    "PlanConfig",
    "PrivacyConfig",
    "RankingConfig",
    "RegistryConfig",
    "RetrainConfig",
    "SERVE_ENV_PREFIX",
    "SearchRankingConfig",
    "ServeConfig",
    "ServeSettings",
    "ShelfwiseConfig",
    "SourceConfig",
    "SplitConfig",
    "TuneConfig",
    "config_key_of",
    "hash_jsonable",
    "load_config",
    "parse_overrides",
]
