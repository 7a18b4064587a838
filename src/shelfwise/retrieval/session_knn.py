"""Session-based kNN: SKNN, V-SKNN and STAN over the training sessions.

Each training row is one *session* (a visit's items, oldest first), and the rows are in
the order the sessions started (features' session split writes them that way), so a
row's position is its age. A session being scored is compared with the training
sessions that share an item with it; the most similar `neighbours` of them vote for
their items. Items of the session itself are voted for too (neighbours contain them),
so whether they may be recommended again is the caller's rule (`exclude_seen`).

Three variants, one scoring routine (`score_session`) with the weights each one uses:

=======  ==============================================================================
model    weights
=======  ==============================================================================
SKNN     sim(s, n) = |s ∩ n| / √(|s| · |n|) over distinct items (cosine of binary
         vectors); score(i) = Σ_{n ∈ N(s)} sim(s, n) · 1[i ∈ n]
V-SKNN   item at position p of the session (1-based, L items) weighs p / L (the
         reference implementation's "div"; the latest occurrence counts);
         sim(s, n) = Σ_{i ∈ s ∩ n} w(i) / |s|; scores as SKNN
STAN     w₁(i) = exp((p - L) / λ₁) for the session's item at position p (sequence);
         sim(s, n) = Σ_{i ∈ s ∩ n} w₁(i) / √(|s| · |n|), times the neighbour's recency
         w₂(n) = exp(-age(n) / (λ₂ · N)) (age: training sessions started after n; N:
         training sessions); score(i) = Σ_n sim · w₂ · w₃(i, n), where
         w₃(i, n) = exp(-|q(i) - q(r)| / λ₃): q are positions in n and r is the item
         of s ∩ n that is most recent in s (neighbour position decay)
=======  ==============================================================================

Candidate neighbours are, as in the reference implementation, the `sample_size` most
recent training sessions that share an item with the session (0: all of them); the
`neighbours` most similar (after w₂ for STAN) vote. On top of the votes (scaled to
[0, 1]) every variant adds `reminders` x the session's own items (weighted as it weighs
positions) and V-SKNN and STAN `followers` x the items that directly followed the
session's last item in training sessions (`_session_scoring.combine` says why).

Written here rather than taken from a library: the reference implementations
(session-rec) are research scripts over pandas frames, not installable packages, and
they keep per-item dicts of sets; these are numpy/scipy over the saved CSR arrays, so a
model saves as plain files like every other recommender.

References:
    Jannach, Ludewig. "When recurrent neural networks meet the neighborhood for
    session-based recommendation." RecSys 2017 (SKNN).
    Ludewig, Jannach. "Evaluation of session-based recommendation algorithms." UMUAI
    2018 (V-SKNN).
    Garg, Gupta, Kumar, Shrivastava, Perisic. "Sequence and time aware neighborhood for
    session-based recommendations: STAN." SIGIR 2019.
    Latifi, Mauro, Jannach. "Session-aware recommendation: a surprising quest for the
    state of the art." Information Sciences 2021 (reminders).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Self

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr, write_csr
from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, EmptyDataError, NotReadyError
from shelfwise.retrieval._session_scoring import (
    FittedSessions,
    Weights,
    follower_counts,
    score_session,
)
from shelfwise.retrieval.base import Histories, as_user_histories
from shelfwise.retrieval.shared import (
    check_histories,
    check_ordered,
    check_train,
    read_params,
    write_params,
)

_SESSIONS_FILE: Final = "sessions.npz"
_SEQUENCES_FILE: Final = "sequences.npz"
_FOLLOWERS_FILE: Final = "followers.npz"


class _SessionKNN:
    """The shared fit / score / save of the three variants (composition, not a ladder).

    Subclasses only name themselves and their weights; see the module docstring.
    """

    name: str = "sknn"
    _sequential: bool = False

    def __init__(self, neighbours: int, sample_size: int, weights: Weights) -> None:
        if neighbours < 1:
            raise ConfigError(f"{self.name}: neighbours must be >= 1, got {neighbours}")
        if sample_size < 0:
            raise ConfigError(f"{self.name}: sample_size must be >= 0, got {sample_size}")
        for label, value in (
            ("lambda_position", weights.lambda_position),
            ("lambda_neighbour", weights.lambda_neighbour),
        ):
            if not value > 0:
                raise ConfigError(f"{self.name}: {label} must be > 0, got {value}")
        if not weights.followers >= 0:
            raise ConfigError(
                f"{self.name}: followers must be >= 0 (0: off), got {weights.followers}"
            )
        if not weights.reminders >= 0:
            raise ConfigError(
                f"{self.name}: reminders must be >= 0 (0: off), got {weights.reminders}"
            )
        if not weights.lambda_recency >= 0:
            raise ConfigError(
                f"{self.name}: lambda_recency must be >= 0 (0: off), got {weights.lambda_recency}"
            )
        self.neighbours = neighbours
        self.sample_size = sample_size
        self._weights = weights
        self._fitted_state: FittedSessions | None = None

    def fit(self, train: Histories) -> None:
        """Keep the training sessions (rows in session start order).

        Raises:
            EmptyDataError: no sessions, items or interactions.
            DataError: negative or non-finite weights; for V-SKNN and STAN, no order.
        """
        rows = check_train(train, model=self.name)
        order = as_user_histories(train).ordered(model=self.name) if self._sequential else None
        self._fitted_state = self._build(rows, order)

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores; an empty session scores 0 everywhere.

        Raises:
            NotReadyError: the model is not fitted.
            DataError: rows of another item count; V-SKNN and STAN without an order.
        """
        fitted = self._fitted()
        if self._sequential:
            ordered = check_ordered(histories, fitted.n_items, model=self.name)
            return self._score_all([ordered.row(u) for u in range(ordered.n_users)])
        rows = check_histories(histories, fitted.n_items, model=self.name)
        sessions = [rows.indices[rows.indptr[u] : rows.indptr[u + 1]] for u in range(rows.shape[0])]
        positive = [
            items[rows.data[rows.indptr[u] : rows.indptr[u + 1]] > 0]
            for u, items in enumerate(sessions)
        ]
        return self._score_all([np.asarray(items, dtype=np.int64) for items in positive])

    def _fit_ordered(self, sequences: Sequences, n_items: int) -> None:
        """`fit` on bare sequences (one training session a row, oldest item first).

        Raises:
            EmptyDataError: no session holds an item.
        """
        if sequences.items.size == 0 or n_items < 1:
            raise EmptyDataError(f"{self.name}: the training sessions are empty")
        users = np.repeat(np.arange(sequences.n_users), sequences.lengths())
        rows = sp.csr_matrix(
            (np.ones(users.size, dtype=np.float32), (users, sequences.items)),
            shape=(sequences.n_users, n_items),
        )
        self._fitted_state = self._build(rows, sequences)

    def save(self, folder: Path) -> None:
        """Write the training sessions (`sessions.npz`, STAN also `sequences.npz`)."""
        fitted = self._fitted()
        folder.mkdir(parents=True, exist_ok=True)
        write_csr(folder / _SESSIONS_FILE, fitted.rows)
        if fitted.order is not None:
            fitted.order.save(folder / _SEQUENCES_FILE)
        if fitted.transitions is not None:
            write_csr(folder / _FOLLOWERS_FILE, fitted.transitions)
        weights = self._weights
        write_params(
            folder,
            self.name,
            {
                "neighbours": self.neighbours,
                "sample_size": self.sample_size,
                "lambda_position": weights.lambda_position,
                "lambda_recency": weights.lambda_recency,
                "lambda_neighbour": weights.lambda_neighbour,
                "reminders": weights.reminders,
                "followers": weights.followers,
                "n_items": fitted.n_items,
            },
        )

    def _restore(self, folder: Path, params: dict[str, object]) -> None:
        try:
            rows = read_csr(folder / _SESSIONS_FILE)
            order = (
                Sequences.load(folder / _SEQUENCES_FILE)
                if self._weights.variant == "stan"
                else None
            )
            transitions = (
                read_csr(folder / _FOLLOWERS_FILE) if (folder / _FOLLOWERS_FILE).exists() else None
            )
        except FileNotFoundError as exc:
            raise ArtifactError(f"{exc.filename} is missing; retrain the model") from None
        if rows.shape[1] != params.get("n_items"):
            raise ArtifactError(
                f"{folder / _SESSIONS_FILE} has {rows.shape[1]} items, params.json says "
                f"{params.get('n_items')}: the folder is damaged, retrain the model"
            )
        self._fitted_state = FittedSessions(rows, order, transitions)

    def _build(self, rows: sp.csr_matrix, order: Sequences | None) -> FittedSessions:
        """The fitted state: STAN keeps the order, sequential variants the followers."""
        transitions = follower_counts(order, rows.shape[1]) if order is not None else None
        return FittedSessions(rows, order if self._weights.variant == "stan" else None, transitions)

    def _score_all(self, sessions: list[IntArray]) -> FloatArray:
        fitted = self._fitted()
        scores = np.zeros((len(sessions), fitted.n_items), dtype=np.float32)
        for row, session in enumerate(sessions):
            known = session[(session >= 0) & (session < fitted.n_items)]
            scores[row] = score_session(
                fitted,
                known,
                self._weights,
                neighbours=self.neighbours,
                sample_size=self.sample_size,
            )
        return scores

    def _fitted(self) -> FittedSessions:
        if self._fitted_state is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self._fitted_state


class SKNNRecommender(_SessionKNN):
    """Session-kNN (SKNN): neighbours by cosine over the session's distinct items.

    Inputs:
        train: one row per training session (binary use of the weights), rows in
            session start order. histories: the sessions to score.

    Relations:
        A matrix model (order unused). `VSKNNRecommender` weighs recent items more;
        `STANRecommender` adds recency of neighbours and position within them.

    Example:
        >>> import scipy.sparse as sp
        >>> model = SKNNRecommender(neighbours=2)
        >>> model.fit(sp.csr_matrix([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
        >>> model.score(sp.csr_matrix([[0.0, 1.0, 0.0]])).round(3).tolist()
        [[0.707, 1.414, 0.707]]
    """

    name = "sknn"

    def __init__(
        self, neighbours: int = 100, sample_size: int = 500, reminders: float = 1.0
    ) -> None:
        """Create an unfitted model (`neighbours` voters among `sample_size` candidates).

        `reminders` weighs the session's own items (see `combine`; 0: off).

        Raises:
            ConfigError: `neighbours` < 1, `sample_size` < 0 or `reminders` < 0.
        """
        super().__init__(neighbours, sample_size, Weights("sknn", reminders=reminders))

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files or another model's folder.
        """
        params = read_params(folder, cls.name)
        model = cls(
            int(params["neighbours"]), int(params["sample_size"]), float(params["reminders"])
        )
        model._restore(folder, params)
        return model


class VSKNNRecommender(_SessionKNN):
    """Vector multiplication session-kNN (V-SKNN): recent items of a session weigh more.

    Inputs:
        train / histories: `UserHistories` with sequences (one training session a
            row, oldest item first; rows in session start order).

    Relations:
        `SKNNRecommender` with position weights p / L; sequential (reads the order).
    """

    name = "vsknn"
    _sequential = True

    def __init__(
        self,
        neighbours: int = 100,
        sample_size: int = 500,
        reminders: float = 1.0,
        followers: float = 0.0,
    ) -> None:
        """Create an unfitted model (`neighbours` voters among `sample_size` candidates).

        `reminders` weighs the session's own items, `followers` the items that followed
        its last item in training sessions (see `combine`; 0: off).

        Raises:
            ConfigError: `neighbours` < 1, `sample_size` < 0, `reminders` or
                `followers` < 0.
        """
        super().__init__(
            neighbours,
            sample_size,
            Weights("vsknn", reminders=reminders, followers=followers),
        )

    def fit_sequences(self, sequences: Sequences, n_items: int) -> None:
        """`fit` on bare sequences (one training session a row, oldest item first).

        Raises:
            EmptyDataError: no session holds an item.
        """
        self._fit_ordered(sequences, n_items)

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) scores of the items following each session."""
        return self._score_all([sequences.row(u) for u in range(sequences.n_users)])

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files or another model's folder.
        """
        params = read_params(folder, cls.name)
        model = cls(
            int(params["neighbours"]),
            int(params["sample_size"]),
            float(params["reminders"]),
            float(params["followers"]),
        )
        model._restore(folder, params)
        return model


class STANRecommender(_SessionKNN):
    """Sequence and time aware neighbourhood (STAN), Garg et al. SIGIR 2019.

    Inputs:
        train / histories: `UserHistories` with sequences (one training session a
            row, oldest item first; rows in session start order).

    Relations:
        V-SKNN's idea with exponential decays: λ₁ over the session's positions, λ₂ over
        the neighbours' age (a share of training sessions; 0 turns it off), λ₃ over
        positions within a neighbour around the shared item. Sequential.
    """

    name = "stan"
    _sequential = True

    def __init__(
        self,
        neighbours: int = 100,
        sample_size: int = 500,
        lambda_position: float = 2.0,
        lambda_recency: float = 0.0,
        lambda_neighbour: float = 2.0,
        reminders: float = 1.0,
        followers: float = 0.0,
    ) -> None:
        """Create an unfitted model; see the module docstring for the λs, and `combine`
        for `reminders` and `followers`.

        Raises:
            ConfigError: `neighbours` < 1, `sample_size` < 0, a λ₁ or λ₃ <= 0, λ₂ < 0,
                `reminders` or `followers` < 0.
        """
        super().__init__(
            neighbours,
            sample_size,
            Weights(
                "stan", lambda_position, lambda_recency, lambda_neighbour, reminders, followers
            ),
        )

    def fit_sequences(self, sequences: Sequences, n_items: int) -> None:
        """`fit` on bare sequences (one training session a row, oldest item first).

        Raises:
            EmptyDataError: no session holds an item.
        """
        self._fit_ordered(sequences, n_items)

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) scores of the items following each session."""
        return self._score_all([sequences.row(u) for u in range(sequences.n_users)])

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files or another model's folder.
        """
        params = read_params(folder, cls.name)
        model = cls(
            int(params["neighbours"]),
            int(params["sample_size"]),
            float(params["lambda_position"]),
            float(params["lambda_recency"]),
            float(params["lambda_neighbour"]),
            float(params["reminders"]),
            float(params["followers"]),
        )
        model._restore(folder, params)
        return model


__all__ = ["STANRecommender", "SKNNRecommender", "VSKNNRecommender"]
