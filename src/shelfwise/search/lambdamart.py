"""LambdaMART re-ranker for search: LightGBM's `lambdarank` objective over query groups.

Rows are (query, candidate item) pairs with the features of
`shelfwise.search.features`; rows of one query form a group, and LightGBM
optimises NDCG within each group from graded labels (0 = irrelevant .. g_max). A grade
g counts `label_gain[g]` in the DCG (default 2^g - 1). Optional per-row weights scale
each row's gradient and hessian (LightGBM multiplies them row by row in the ranking
objectives), which is how inverse propensity weights of clicked rows enter training.

Training is seeded and deterministic (`deterministic`, `force_row_wise`, a fixed number
of rounds, no bagging); the number of threads is a parameter, used from
`SINGLE_THREAD_ROWS` rows on (smaller fits and predictions run on one thread). The
fitted booster goes through its text form, so a model predicts exactly what the same
model predicts after `save` and `load`.

Folder layout (no pickle)::

    model.txt        LightGBM text model
    reranker.json    format, schema version, feature names, label gains, parameters

Relations:
    `shelfwise.ranking.model.ClickModel` is a binary classifier of (user, item) pairs for
    recommendations; `SearchReranker` orders the candidates of one query and its
    scores are only comparable within a query. Both implement
    `shelfwise.ranking.base.Ranker` (candidates with features in, scores out).

References:
    Burges. "From RankNet to LambdaRank to LambdaMART: An Overview." MSR-TR-2010-82.
    Wang et al. "Position Bias Estimation for Unbiased Learning to Rank in Personal
    Search." WSDM 2018 (inverse propensity weights).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, DataError, NotReadyError
from shelfwise.ranking.base import Ranker
from shelfwise.search.features import SEARCH_FEATURE_NAMES

Float64Array = np.ndarray[Any, np.dtype[np.float64]]

RERANKER_FORMAT: Final = "shelfwise-search-reranker"
RERANKER_SCHEMA_VERSION: Final = 1
MODEL_FILE: Final = "model.txt"
SPEC_FILE: Final = "reranker.json"
DEFAULT_MAX_GRADE: Final = 3  # click 1, cart 2, purchase 3 (see search_labels)
# Below this many rows LightGBM runs on one thread whatever `num_threads` says, as the
# click model does: on a busy machine OpenMP threads spin-waiting on each other make a
# small fit 10x slower (measured: 8,000 rows, 200 rounds, 1.8 s on 1 thread, 19 s on 2).
SINGLE_THREAD_ROWS: Final = 50_000
LIGHTGBM_PARAMS: Final[Mapping[str, Any]] = {
    "objective": "lambdarank",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "lambdarank_truncation_level": 30,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
# Set by the constructor arguments: not overridable through `params`.
_RESERVED_PARAMS: Final = frozenset(
    {"objective", "label_gain", "seed", "num_threads", "num_iterations", "num_boost_round"}
)


def default_label_gain(max_grade: int = DEFAULT_MAX_GRADE) -> tuple[float, ...]:
    """The usual exponential gains 2^g - 1 of grades 0..max_grade."""
    if max_grade < 1:
        raise ConfigError(f"lambdamart: max_grade must be >= 1, got {max_grade}")
    return tuple(float(2**grade - 1) for grade in range(max_grade + 1))


class Reranker(Ranker, Protocol):
    """What `cross_validated_scores` trains: a `Ranker` fitted on rows grouped by query."""

    def fit(
        self,
        features: ArrayLike,
        labels: ArrayLike,
        groups: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> object:
        """Train on the rows."""
        ...


class SearchReranker:
    """LambdaMART over query groups (LightGBM `objective="lambdarank"`).

    Inputs:
        features: float (n_rows, n_features), columns named by `feature_names`;
            NaN is "missing" (LightGBM learns which side of a split it goes to).
        labels: int grades 0..len(label_gain) - 1 per row.
        groups: (n_rows,) the query of each row (any ids; rows of a query need not be
            contiguous).
        weights: (n_rows,) >= 0, e.g. inverse propensity weights; None = 1.

    Example:
        >>> reranker = SearchReranker(params={"min_data_in_leaf": 1})  # doctest: +SKIP
        >>> reranker.fit(features, grades, query_ids, weights=ipw)  # doctest: +SKIP
        >>> order = np.argsort(-reranker.predict(candidate_features))  # doctest: +SKIP
    """

    name: str = "lambdamart"

    def __init__(
        self,
        *,
        feature_names: Sequence[str] = SEARCH_FEATURE_NAMES,
        label_gain: Sequence[float] | None = None,
        num_boost_round: int = 200,
        num_threads: int = 1,
        seed: int = 42,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Configure an unfitted model.

        Args:
            feature_names: the feature columns, in order (distinct).
            label_gain: the DCG gain of each grade, non-decreasing, starting at 0;
                default `default_label_gain()` (grades 0..3 gain 0, 1, 3, 7).
            num_boost_round: boosting rounds (no early stopping: cross-validated
                predictions stay comparable between folds).
            num_threads: LightGBM threads for training and prediction of at least
                `SINGLE_THREAD_ROWS` rows (fewer rows: 1 thread).
            seed: the LightGBM seed.
            params: LightGBM parameters replacing `LIGHTGBM_PARAMS` entries (not
                objective, label_gain, seed, num_threads or rounds).

        Raises:
            ConfigError: an argument out of range or a reserved parameter in `params`.
        """
        names = tuple(feature_names)
        gains = tuple(float(g) for g in (label_gain or default_label_gain()))
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"lambdamart: feature names must be distinct and non-empty: {names}")
        if len(gains) < 2 or gains[0] != 0.0 or any(b < a for a, b in itertools.pairwise(gains)):
            raise ConfigError(
                f"lambdamart: label_gain must start at 0 and not decrease, got {list(gains)}"
            )
        if num_boost_round < 1 or num_threads < 1:
            raise ConfigError(
                f"lambdamart: num_boost_round and num_threads must be >= 1, got "
                f"{num_boost_round} and {num_threads}"
            )
        extra = dict(params or {})
        reserved = sorted(_RESERVED_PARAMS & set(extra))
        if reserved:
            raise ConfigError(
                f"lambdamart: set {reserved} through the constructor arguments, not params"
            )
        self.feature_names: tuple[str, ...] = names
        self.label_gain: tuple[float, ...] = gains
        self.num_boost_round = int(num_boost_round)
        self.num_threads = int(num_threads)
        self.seed = int(seed)
        self.params: dict[str, Any] = {**LIGHTGBM_PARAMS, **extra}
        self.booster: Any = None  # lightgbm.Booster once fitted
        # The columns callers pass: the model's own, unless `load` accepted a model
        # trained before features were added (then its columns are picked by name).
        self.input_names: tuple[str, ...] = names
        self._columns: IntArray | None = None

    @property
    def max_grade(self) -> int:
        """The highest grade a label may have."""
        return len(self.label_gain) - 1

    def threads(self, n_rows: int) -> int:
        """Threads LightGBM uses for `n_rows` rows."""
        return 1 if n_rows < SINGLE_THREAD_ROWS else self.num_threads

    def lightgbm_params(self, n_rows: int = SINGLE_THREAD_ROWS) -> dict[str, Any]:
        """The full parameter set handed to `lightgbm.train` for `n_rows` rows."""
        return {
            **self.params,
            "objective": "lambdarank",
            "label_gain": list(self.label_gain),
            "seed": self.seed,
            "num_threads": self.threads(n_rows),
        }

    def _matrix(self, features: ArrayLike, *, fitting: bool = False) -> FloatArray:
        matrix = np.asarray(features, dtype=np.float32)
        names = self.feature_names if fitting else self.input_names
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise DataError(
                f"lambdamart: features must be (rows, {len(names)}) for the "
                f"columns {names[:3]}...; got shape {matrix.shape}"
            )
        if self._columns is not None and not fitting:
            return matrix[:, self._columns]
        return matrix

    def fit(
        self,
        features: ArrayLike,
        labels: ArrayLike,
        groups: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Train on rows grouped by query (see the class docstring for the inputs).

        Raises:
            DataError: mismatched lengths, no rows, a grade outside 0..max_grade or not
                an integer, or a negative / non-finite weight.
        """
        import lightgbm

        matrix = self._matrix(features, fitting=True)
        n_rows = matrix.shape[0]
        grades = np.asarray(labels, dtype=np.float64).reshape(-1)
        query = np.asarray(groups).reshape(-1)
        if n_rows == 0 or grades.shape != (n_rows,) or query.shape != (n_rows,):
            raise DataError(
                f"lambdamart: need one label and one group per row and at least one row; "
                f"got {n_rows} rows, {grades.size} labels, {query.size} groups"
            )
        if not np.all(np.isfinite(grades) & (grades == np.round(grades))) or not (
            0 <= grades.min() and grades.max() <= self.max_grade
        ):
            raise DataError(
                f"lambdamart: labels must be integer grades 0..{self.max_grade} (label_gain "
                f"has {len(self.label_gain)} entries); got {grades.min()}..{grades.max()}"
            )
        row_weights = None
        if weights is not None:
            row_weights = np.asarray(weights, dtype=np.float64).reshape(-1)
            if row_weights.shape != (n_rows,) or not np.all(
                np.isfinite(row_weights) & (row_weights >= 0)
            ):
                raise DataError(
                    f"lambdamart: weights must be {n_rows} finite values >= 0, got shape "
                    f"{row_weights.shape}"
                )
        # LightGBM wants each query's rows contiguous and the group sizes in order.
        _, codes = np.unique(query, return_inverse=True)
        order = np.argsort(codes.reshape(-1), kind="stable")
        sizes = np.bincount(codes.reshape(-1))
        dataset = lightgbm.Dataset(
            matrix[order],
            label=grades[order],
            group=sizes[sizes > 0],
            weight=None if row_weights is None else row_weights[order],
            feature_name=list(self.feature_names),
            params={"verbose": -1},
            free_raw_data=True,
        )
        booster = lightgbm.train(
            self.lightgbm_params(n_rows), dataset, num_boost_round=self.num_boost_round
        )
        self.booster = lightgbm.Booster(model_str=booster.model_to_string())
        self.input_names, self._columns = self.feature_names, None
        return self

    def _fitted(self) -> Any:
        if self.booster is None:
            raise NotReadyError("lambdamart: the re-ranker is not fitted; call fit() or load()")
        return self.booster

    def score_candidates(self, features: ArrayLike) -> Float64Array:
        """One score per candidate row (the `Ranker` protocol): see `predict`."""
        return self.predict(features)

    def predict(self, features: ArrayLike) -> Float64Array:
        """One score per row (higher = better); comparable only within a query."""
        booster = self._fitted()
        matrix = self._matrix(features)
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        threads = self.threads(matrix.shape[0])
        return np.asarray(booster.predict(matrix, num_threads=threads), np.float64)

    def explain(self, features: ArrayLike, top: int = 3) -> list[list[tuple[str, float]]]:
        """Per row, the `top` features that moved its score most (SHAP values).

        Contributions come from LightGBM's `pred_contrib=True` (TreeSHAP); with the
        expected value they add up to the row's score.

        Returns:
            For each row, (feature name, contribution) pairs by decreasing magnitude
            (ties in column order), at most `top` of them.
        """
        if top < 0:
            raise ConfigError(f"lambdamart: top must be >= 0, got {top}")
        booster = self._fitted()
        matrix = self._matrix(features)
        if matrix.shape[0] == 0:
            return []
        contributions = np.asarray(
            booster.predict(matrix, pred_contrib=True, num_threads=self.threads(matrix.shape[0])),
            dtype=np.float64,
        )[:, : len(self.feature_names)]
        explanations: list[list[tuple[str, float]]] = []
        for row in contributions:
            order = np.argsort(-np.abs(row), kind="stable")[:top]
            explanations.append([(self.feature_names[i], float(row[i])) for i in order])
        return explanations

    def feature_importance(self) -> dict[str, float]:
        """Share of the total split gain of each feature, largest first."""
        gains = np.asarray(self._fitted().feature_importance(importance_type="gain"), np.float64)
        total = float(gains.sum()) or 1.0
        shares = {name: float(g) / total for name, g in zip(self.feature_names, gains, strict=True)}
        return dict(sorted(shares.items(), key=lambda pair: -pair[1]))

    def save(self, folder: Path, *, info: Mapping[str, Any] | None = None) -> None:
        """Write `model.txt` and `reranker.json` into `folder` (created if missing).

        Args:
            folder: the model folder.
            info: JSON-serialisable notes kept in `reranker.json` (metrics, data).
        """
        booster = self._fitted()
        folder.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(folder / MODEL_FILE))
        atomic_write_json(
            folder / SPEC_FILE,
            {
                "format": RERANKER_FORMAT,
                "schema_version": RERANKER_SCHEMA_VERSION,
                "feature_names": list(self.feature_names),
                "label_gain": list(self.label_gain),
                "num_boost_round": self.num_boost_round,
                "num_threads": self.num_threads,
                "seed": self.seed,
                "params": self.params,
                "num_trees": int(booster.num_trees()),
                "info": dict(info or {}),
            },
        )

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        feature_names: Sequence[str] | None = SEARCH_FEATURE_NAMES,
        num_threads: int | None = None,
    ) -> Self:
        """Read a folder written by `save`.

        Args:
            folder: the model folder.
            feature_names: the columns the caller will pass. A model trained on some
                of them (before features were added) picks its own by name; one trained
                on a column not among them is refused. None accepts the saved ones.
            num_threads: prediction threads (default: as saved).

        Raises:
            ArtifactError: not a re-ranker folder, a missing file, or a feature the
                caller does not compute.
        """
        import lightgbm

        spec_path = folder / SPEC_FILE
        try:
            spec = json.loads(spec_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"{spec_path} is missing or unreadable ({exc}); retrain the re-ranker"
            ) from None
        if (
            not isinstance(spec, dict)
            or spec.get("format") != RERANKER_FORMAT
            or spec.get("schema_version") != RERANKER_SCHEMA_VERSION
        ):
            raise ArtifactError(
                f"{folder} is not a search re-ranker of schema {RERANKER_SCHEMA_VERSION}"
            )
        saved = tuple(spec["feature_names"])
        given = saved if feature_names is None else tuple(feature_names)
        missing = [name for name in saved if name not in given]
        if missing:
            raise ArtifactError(
                f"the re-ranker in {folder} was trained on features this shelfwise does "
                f"not compute ({', '.join(missing[:5])}); serve it with the version that "
                "built it, or retrain"
            )
        model = cls(
            feature_names=saved,
            label_gain=spec["label_gain"],
            num_boost_round=int(spec["num_boost_round"]),
            num_threads=int(num_threads or spec["num_threads"]),
            seed=int(spec["seed"]),
            params={k: v for k, v in spec["params"].items() if k not in _RESERVED_PARAMS},
        )
        model_path = folder / MODEL_FILE
        if not model_path.is_file():
            raise ArtifactError(f"{model_path} is missing; retrain the re-ranker")
        model.booster = lightgbm.Booster(model_file=str(model_path))
        if given != saved:  # trained before some features were added: pick its columns
            model.input_names = given
            model._columns = np.asarray([given.index(name) for name in saved], dtype=np.int64)
        return model


def query_folds(groups: ArrayLike, folds: int, *, seed: int) -> IntArray:
    """The fold (0..folds-1) of each row, by query: all rows of a query share a fold.

    Queries are shuffled with `seed` and dealt round-robin, so folds hold the same
    number of queries (give or take one), as in scikit-learn's GroupKFold with shuffling.

    Raises:
        DataError: fewer distinct queries than folds.
    """
    query = np.asarray(groups).reshape(-1)
    distinct, codes = np.unique(query, return_inverse=True)
    if folds < 2 or distinct.size < folds:
        raise DataError(
            f"lambdamart: {folds} folds need at least {max(folds, 2)} queries and folds >= 2; "
            f"got {distinct.size} queries"
        )
    dealt = np.empty(distinct.size, dtype=np.int64)
    dealt[np.random.default_rng(seed).permutation(distinct.size)] = np.arange(distinct.size) % folds
    fold_of_row: IntArray = dealt[codes.reshape(-1)]
    return fold_of_row


def cross_validated_scores(
    features: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    folds: int = 5,
    seed: int = 42,
    make_reranker: Callable[[], Reranker] | None = None,
) -> Float64Array:
    """Out-of-fold scores: each row scored by a model that never saw its query.

    Queries are split into `folds` by `query_folds`; for each fold a fresh model
    (`make_reranker()`, default `SearchReranker()`) is fitted on the other folds' rows
    and scores this fold's rows. Use the scores to evaluate re-ranking (NDCG per query)
    against the retrievers' own order without training-set optimism.

    Args:
        features, labels, groups, weights: as in `SearchReranker.fit`.
        folds: number of folds (config `search.folds`), >= 2.
        seed: the shuffling seed of the queries.
        make_reranker: builds an unfitted model per fold.

    Returns:
        float64 (n_rows,) scores, in the rows' order.

    Raises:
        DataError: fewer queries than folds, or inputs of different lengths.
    """
    matrix = np.asarray(features, dtype=np.float32)
    grades = np.asarray(labels).reshape(-1)
    query = np.asarray(groups).reshape(-1)
    row_weights = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    n_rows = matrix.shape[0] if matrix.ndim == 2 else -1
    if (
        n_rows < 0
        or grades.shape != (n_rows,)
        or query.shape != (n_rows,)
        or (row_weights is not None and row_weights.shape != (n_rows,))
    ):
        raise DataError(
            f"lambdamart: features (rows, columns) need one label, group (and weight) per "
            f"row; got features {matrix.shape}, {grades.size} labels, {query.size} groups"
        )
    fold_of_row = query_folds(query, folds, seed=seed)
    build = make_reranker or SearchReranker
    scores = np.full(n_rows, np.nan, dtype=np.float64)
    for fold in range(folds):
        held_out = fold_of_row == fold
        train = ~held_out
        model = build()
        model.fit(
            matrix[train],
            grades[train],
            query[train],
            None if row_weights is None else row_weights[train],
        )
        scores[held_out] = np.asarray(model.score_candidates(matrix[held_out]), dtype=np.float64)
    return scores


__all__ = [
    "LIGHTGBM_PARAMS",
    "SINGLE_THREAD_ROWS",
    "Reranker",
    "SearchReranker",
    "cross_validated_scores",
    "default_label_gain",
    "query_folds",
]
