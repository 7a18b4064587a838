"""The session protocol: predict a session's next item from its earlier items.

Cases come from held-out sessions (`shelfwise.features.sessions.session_split`): with
targets "last", one case per session (its earlier items -> its last item); with
"every", one case per position after the first (the items so far -> the next one).
Metrics over cases, at each K:

    HR@K  = share of cases whose target is in the top K
    MRR@K = mean of 1 / rank of the target (0 when it is not in the top K)

A target that repeats an item of its own session (29% of Taobao's last items) is a
*repeat target*. Nothing is dropped silently: every case counts, `repeat_targets` says
how many repeat, and HR/MRR are reported for repeat and new targets apart. With
`exclude_seen` (a repeat policy that hides the session's items) repeat targets cannot
be hit; the metrics still count them, so that policy's cost shows.

Baselines of the protocol (`shared/data/README.md`): global popularity; the items that
followed the session's last item in training sessions; and the session's own items
again (most recent first), then the items that followed them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ConfigError
from shelfwise.features.sessions import read_session_files
from shelfwise.retrieval.base import Recommender, UserHistories, top_k_unseen

TARGET_MODES: Final = ("last", "every")
BASELINES: Final = ("popularity", "followers", "session_items")
_BATCH: Final = 512  # cases scored at once: a (512, n_items) float32 block
# the evaluate stage's folder of the chosen session model (the bundle's "session" role)
SESSION_MODEL_DIR: Final = "session_model"


@dataclass(frozen=True)
class SessionCases:
    """Prefixes (the session so far, oldest first) and the item each should predict."""

    prefixes: Sequences
    targets: IntArray
    repeats: np.ndarray  # bool: the target is an item of its own prefix

    @property
    def n_cases(self) -> int:
        """Number of cases."""
        return int(self.targets.size)


def session_cases(sessions: Sequences, *, targets: str = "last") -> SessionCases:
    """The cases of held-out sessions; sessions with fewer than two items give none.

    Raises:
        ConfigError: `targets` is not "last" or "every".
    """
    if targets not in TARGET_MODES:
        raise ConfigError(f"session targets must be one of {TARGET_MODES}, got {targets!r}")
    prefixes: list[IntArray] = []
    answers: list[int] = []
    for row in range(sessions.n_users):
        items = sessions.row(row)
        if items.size < 2:
            continue
        cuts = range(items.size - 1, items.size) if targets == "last" else range(1, items.size)
        for cut in cuts:
            prefixes.append(items[:cut])
            answers.append(int(items[cut]))
    repeats = np.array(
        [answer in set(prefix.tolist()) for prefix, answer in zip(prefixes, answers, strict=True)],
        dtype=np.bool_,
    )
    return SessionCases(Sequences.from_rows(prefixes), np.array(answers, np.int64), repeats)


def as_histories(prefixes: Sequences, n_items: int) -> UserHistories:
    """Prefixes as `UserHistories`: count rows (an item's weight = its occurrences)."""
    rows = np.repeat(np.arange(prefixes.n_users), prefixes.lengths())
    matrix = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, prefixes.items)),
        shape=(prefixes.n_users, n_items),
    )
    matrix.sum_duplicates()
    return UserHistories(matrix, prefixes)


Scorer = Callable[[UserHistories], FloatArray]


def rank_cases(
    score: Scorer, cases: SessionCases, n_items: int, k: int, *, exclude_seen: bool = False
) -> IntArray:
    """(n_cases, k) item indices, best first (-1 padding), by `score` over the prefixes.

    Args:
        score: (batch, n_items) scores of a batch of prefixes (a model's `score`).
        cases: the cases.
        n_items: size of the item space.
        k: list length.
        exclude_seen: leave each prefix's items out (repeats then cannot be hit).
    """
    ranked = np.full((cases.n_cases, k), -1, dtype=np.int64)
    for start in range(0, cases.n_cases, _BATCH):
        users = np.arange(start, min(start + _BATCH, cases.n_cases))
        batch = as_histories(cases.prefixes.take(users), n_items)
        scores = np.asarray(score(batch), dtype=np.float32)
        scores[scores <= 0] = -np.inf  # no evidence: not listed (as the engine does)
        seen = batch.rows if exclude_seen else None
        ranked[users] = top_k_unseen(scores, k, seen=seen)[0]
    return ranked


def session_metrics(ranked: IntArray, cases: SessionCases, k_values: list[int]) -> dict[str, float]:
    """HR@K and MRR@K over every case, and apart for repeat and new targets.

    Also `cases`, `repeat_targets` (count) and `repeat_share`, so a report shows how
    many targets repeat an item of their session (none is dropped).
    """
    hits = ranked == cases.targets[:, None]
    found = hits.any(axis=1)
    rank = np.where(found, hits.argmax(axis=1) + 1, 0)
    metrics: dict[str, float] = {
        "cases": float(cases.n_cases),
        "repeat_targets": float(cases.repeats.sum()),
        "repeat_share": float(cases.repeats.mean()) if cases.n_cases else 0.0,
    }
    for k in k_values:
        within = found & (rank <= k)
        reciprocal = np.where(within, 1.0 / np.maximum(rank, 1), 0.0)
        for label, mask in (
            ("", np.ones(cases.n_cases, bool)),
            ("_repeat", cases.repeats),
            ("_new", ~cases.repeats),
        ):
            count = int(mask.sum())
            metrics[f"hr{label}@{k}"] = float(within[mask].mean()) if count else 0.0
            metrics[f"mrr{label}@{k}"] = float(reciprocal[mask].mean()) if count else 0.0
    return metrics


def evaluate_sessions(
    model: Recommender | Scorer,
    cases: SessionCases,
    n_items: int,
    k_values: list[int],
    *,
    exclude_seen: bool = False,
) -> dict[str, float]:
    """`session_metrics` of a fitted model (or any scorer) on the cases."""
    score: Scorer = model.score if isinstance(model, Recommender) else model
    ranked = rank_cases(score, cases, n_items, max(k_values), exclude_seen=exclude_seen)
    return session_metrics(ranked, cases, k_values)


class SessionBaselines:
    """The protocol's three baselines, fitted on training sessions.

    Scores (higher first; popularity / 1e6 breaks ties and fills short lists, so every
    baseline lists K items):

    - popularity: occurrences of the item in training sessions.
    - followers: how often the item directly followed the prefix's last item.
    - session_items: the prefix's items, most recent first, above everything; then
      the items that followed any prefix item, the followers of recent items weighing
      more (1 / distance from the end).
    """

    def __init__(self, train: Sequences, n_items: int) -> None:
        """Count item occurrences and item -> next item transitions."""
        self.n_items = n_items
        self.popularity = np.bincount(train.items, minlength=n_items).astype(np.float64)
        lengths = train.lengths()
        starts = train.indptr[:-1]
        has_next = np.ones(train.items.size, dtype=bool)
        has_next[(starts + lengths - 1)[lengths > 0]] = False
        sources = np.flatnonzero(has_next)
        transitions = sp.csr_matrix(
            (
                np.ones(sources.size, dtype=np.float64),
                (train.items[sources], train.items[sources + 1]),
            ),
            shape=(n_items, n_items),
        )
        transitions.sum_duplicates()
        self.transitions = transitions
        self._fill = self.popularity / (self.popularity.max() * 1e6 + 1.0)

    def scorer(self, name: str) -> Scorer:
        """The baseline `name` (one of `BASELINES`) as a scorer.

        Raises:
            ConfigError: an unknown baseline.
        """
        methods: Mapping[str, Scorer] = {
            "popularity": self._popularity,
            "followers": self._followers,
            "session_items": self._session_items,
        }
        if name not in methods:
            raise ConfigError(f"unknown session baseline {name!r}; choose one of {BASELINES}")
        return methods[name]

    def _popularity(self, batch: UserHistories) -> FloatArray:
        return np.tile(self._fill * 1e6, (batch.n_users, 1)).astype(np.float32)

    def _followers(self, batch: UserHistories) -> FloatArray:
        prefixes = batch.ordered(model="followers")
        lengths = prefixes.lengths()
        rows = np.flatnonzero(lengths > 0)
        last = sp.csr_matrix(
            (np.ones(rows.size), (rows, prefixes.items[prefixes.indptr[rows + 1] - 1])),
            shape=(prefixes.n_users, self.n_items),
        )
        scores: FloatArray = np.asarray(
            (last @ self.transitions).toarray() + self._fill, np.float32
        )
        return scores

    def _session_items(self, batch: UserHistories) -> FloatArray:
        prefixes = batch.ordered(model="session_items")
        lengths = prefixes.lengths()
        rows = np.repeat(np.arange(prefixes.n_users), lengths)
        # 1-based distance from the prefix's end: 1 for the last item
        distance = np.repeat(prefixes.indptr[1:], lengths) - np.arange(prefixes.items.size)
        recent = sp.csr_matrix(
            (1.0 / distance, (rows, prefixes.items)), shape=(prefixes.n_users, self.n_items)
        )
        followers = (recent @ self.transitions).toarray()
        top = followers.max(axis=1, keepdims=True)
        followers = np.divide(followers, 2.0 * top, out=np.zeros_like(followers), where=top > 0)
        scores = followers + self._fill  # below every session item (>= 2)
        # own items above everything, the most recent first (a later occurrence wins)
        own = np.zeros_like(scores)
        np.maximum.at(own, (rows, prefixes.items), 2.0 + 1.0 / distance)
        ranked: FloatArray = np.asarray(np.where(own > 0, own, scores), dtype=np.float32)
        return ranked


def select_model(
    candidates: Mapping[str, Callable[[], Recommender]],
    train: UserHistories,
    valid: SessionCases,
    *,
    k: int = 20,
    metric: str = "mrr",
    exclude_seen: bool = False,
) -> tuple[str, dict[str, dict[str, float]]]:
    """Fit each candidate on the training sessions; the best `metric`@k on `valid` wins.

    The session protocol's model choice (a small grid per family, as the literature
    tunes these models); ties go to the first candidate.

    Returns:
        The winner's name, and every candidate's validation metrics.
    """
    scores: dict[str, dict[str, float]] = {}
    best, best_value = "", -1.0
    for name, build in candidates.items():
        model = build()
        model.fit(train)
        found = evaluate_sessions(model, valid, train.n_items, [k], exclude_seen=exclude_seen)
        scores[name] = found
        if found[f"{metric}@{k}"] > best_value:
            best, best_value = name, found[f"{metric}@{k}"]
    return best, scores


def session_models() -> dict[str, Callable[[], Recommender]]:
    """The session-model candidates AutoML chooses among on the session split.

    SKNN, V-SKNN and a small STAN grid (λ₁, λ₃ in {1, 4}), each with reminders of the
    session's items (weight 1; `benchmarks/sessions.py` tries 2 as well), V-SKNN and
    STAN also with the followers of the session's last item. Defaults of the
    references otherwise (100 neighbours among the 500 most recent candidates).
    """
    from shelfwise.retrieval.session_knn import (
        SKNNRecommender,
        STANRecommender,
        VSKNNRecommender,
    )

    grid: dict[str, Callable[[], Recommender]] = {
        "sknn": SKNNRecommender,
        "vsknn": VSKNNRecommender,
        "vsknn(f=1)": partial(VSKNNRecommender, followers=1.0),
    }
    for position in (1.0, 4.0):
        for neighbour in (1.0, 4.0):
            grid[f"stan(l1={position:g},l3={neighbour:g})"] = partial(
                STANRecommender, lambda_position=position, lambda_neighbour=neighbour
            )
        grid[f"stan(l1={position:g},l3={position:g},f=1)"] = partial(
            STANRecommender,
            lambda_position=position,
            lambda_neighbour=position,
            followers=1.0,
        )
    return grid


def session_protocol(
    sessions: Mapping[str, Sequences],
    n_items: int,
    k_values: list[int],
    *,
    targets: str = "last",
    others: Mapping[str, Recommender] | None = None,
    candidates: Mapping[str, Callable[[], Recommender]] | None = None,
    save_to: Path | None = None,
) -> dict[str, object]:
    """The whole session protocol over a split's sessions (the evaluate stage's report).

    Baselines and the chosen session model are scored on the test cases, with repeat
    targets counted (and, within a session, the session's items allowed in lists, as
    serving allows them by default). The session model is chosen on the valid
    sessions by MRR at the largest K (fitted on train sessions), then refitted on train
    + valid. `others` (the run's user-level recommenders) are scored on the same cases.

    Args:
        sessions: "train", "valid", "test" sessions (`read_session_files`).
        n_items: size of the item space.
        k_values: cut-offs.
        targets: "last" or "every" (see `session_cases`).
        others: further fitted models to score on the test cases.
        candidates: the session models to choose among (default `session_models()`).
        save_to: where to save the chosen model, refitted on train + valid (the model
            the test rows score is the one the bundle serves, role "session"); its
            family is the report's "model". None saves nothing.
    """
    k = max(k_values)
    test = session_cases(sessions["test"], targets=targets)
    train = sessions["train"]
    both = Sequences.from_rows(
        [train.row(i) for i in range(train.n_users)]
        + [sessions["valid"].row(i) for i in range(sessions["valid"].n_users)]
    )
    report: dict[str, object] = {"targets": targets, "cases": test.n_cases}
    results: dict[str, dict[str, float]] = {}
    baselines = SessionBaselines(both, n_items)
    for name in BASELINES:
        results[f"baseline:{name}"] = evaluate_sessions(
            baselines.scorer(name), test, n_items, k_values
        )
    valid = session_cases(sessions["valid"], targets=targets)
    if train.items.size and valid.n_cases and test.n_cases:
        candidates = candidates if candidates is not None else session_models()
        chosen, scores = select_model(candidates, as_histories(train, n_items), valid, k=k)
        model = candidates[chosen]()
        model.fit(as_histories(both, n_items))
        results[f"session:{chosen}"] = evaluate_sessions(model, test, n_items, k_values)
        report["chosen"] = chosen
        report["model"] = model.name
        report["valid"] = {name: found[f"mrr@{k}"] for name, found in scores.items()}
        if save_to is not None:
            model.save(save_to)
    skipped: dict[str, str] = {}
    for name, other in (others or {}).items():
        try:
            results[name] = evaluate_sessions(other, test, n_items, k_values)
        except ValueError as exc:  # e.g. a model reading features sessions lack
            skipped[name] = str(exc)
    report["results"] = results
    if skipped:
        report["skipped"] = skipped
    return report


def features_session_report(
    features: Path,
    k_values: list[int],
    *,
    targets: str = "last",
    others: Callable[[], Mapping[str, Recommender]] | None = None,
    candidates: Mapping[str, Callable[[], Recommender]] | None = None,
    save_to: Path | None = None,
) -> dict[str, object] | None:
    """`session_protocol` over a features folder's sessions; None without any
    (`split.method` other than "session"). `others` loads the further models to score
    (called only when there are sessions); `save_to` keeps the chosen session model.
    """
    sessions = read_session_files(features)
    if sessions is None:
        return None
    n_items = int(pl.scan_parquet(features / "items.parquet").select(pl.len()).collect().item())
    loaded = others() if others is not None else None
    return session_protocol(
        sessions,
        n_items,
        k_values,
        targets=targets,
        others=loaded,
        candidates=candidates,
        save_to=save_to,
    )


__all__ = [
    "BASELINES",
    "SESSION_MODEL_DIR",
    "SessionBaselines",
    "SessionCases",
    "TARGET_MODES",
    "as_histories",
    "evaluate_sessions",
    "features_session_report",
    "rank_cases",
    "select_model",
    "session_cases",
    "session_metrics",
    "session_models",
    "session_protocol",
]
