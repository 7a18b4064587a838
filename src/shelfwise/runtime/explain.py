"""Why an item was listed: reasons read off the models that scored it, never made up.

`Explainer` is built with the engine and used only for requests with `explain: true`,
after the list is final, so an answer without it costs nothing. Each listed item gets
an `Explanation`: reasons in a stable machine-readable form, plus one short sentence.

======================  ==================================================================
kind                    where it comes from
======================  ==================================================================
similar_to_history      the recommender: the history items whose removal lowers the
                        item's score most (leave-one-out over at most
                        `MAX_HISTORY_ITEMS` history items, one batched `score` call). For
                        item-based linear models (item kNN, EASE, RP3beta) this is
                        exactly each history item's additive contribution.
similar_to_recent       the similar-items model: the item is a neighbour of these items
                        the shopper just interacted with (realtime personalisation)
popular_in              the popularity fallback (or fill) listed it; `category` when the
                        request was a category page
click_model             the click model re-ranked it: LightGBM's own per-feature
                        contributions (`pred_contrib=True`, SHAP values in log-odds)
matched_terms           BM25: the query's analysed terms found in a field, each term's
                        own BM25 share (BM25 is a sum over terms)
dense_similarity        the dense index: cosine of the query and item vectors
ranking_features        the search re-ranker (LambdaMART) contributions
rule                    a merchandising rule pinned, boosted or buried it
======================  ==================================================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import FloatArray
from shelfwise.contracts import IntArray as IndexArray
from shelfwise.ranking import ClickModel
from shelfwise.ranking.model import LightGBMScorer
from shelfwise.retrieval import BM25Search, Recommender, SearchIndex
from shelfwise.retrieval.base import UserHistories
from shelfwise.runtime.catalog import Catalog, ScoredItem
from shelfwise.runtime.histories import Histories
from shelfwise.runtime.similar_items import SimilarJob

MAX_HISTORY_ITEMS: Final = 50  # leave-one-out rows per request (the most recent items)
MAX_REASON_ITEMS: Final = 3  # history items, terms or features named per reason
MAX_TITLE_CHARS: Final = 40
_ACTION_WORDS: Final = {"pin": "pinned", "boost": "boosted", "bury": "buried", "hide": "hidden"}
Reason = dict[str, Any]


@dataclass(frozen=True)
class Explanation:
    """An item's reasons (machine-readable, best first) and a short sentence."""

    reasons: list[Reason] = field(default_factory=list)
    text: str = ""


class Explainer:
    """Reasons for listed items, from the engine's own models.

    Args:
        catalog: the served catalog.
        histories: the bundle's users.
        recommender: the served recommender (None: none).
        reranker: the click model when it re-ranks the recommender's lists.
        search_index: the bundle's search index (None: none).
        similar: the similar-items job (realtime neighbours).
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        histories: Histories,
        recommender: Recommender | None,
        reranker: ClickModel | None,
        search_index: SearchIndex | None,
        similar: SimilarJob,
    ) -> None:
        """Hold the parts; nothing is computed before a request asks."""
        self._catalog = catalog
        self._histories = histories
        self._recommender = recommender
        self._reranker = reranker
        self._similar = similar
        self._bm25: BM25Search | None = _part(search_index, "lexical", ("field_scores",))
        # duck-typed: importing `DenseSearch` would load the text encoder's libraries
        self._dense: Any = _part(search_index, "dense", ("vectors", "encode_query"))

    @property
    def item_vectors(self) -> FloatArray | None:
        """(n_items, dim) unit item vectors of the dense search index, when there is one."""
        return self._dense.vectors if self._dense is not None else None

    def recommendation(
        self,
        items: Sequence[ScoredItem],
        *,
        raw_user_id: str | None,
        session: Sequence[tuple[str, float]] = (),
        recent: Sequence[str] = (),
        popular: bool = False,
        category_page: str | None = None,
        rule_reasons: dict[str, list[tuple[str, str]]] | None = None,
    ) -> list[Explanation]:
        """One explanation per item of a recommendation list, in list order.

        Args:
            items: the answered list.
            raw_user_id: the shopper (a bundle user's history is what was scored).
            session: (raw item id, weight) of the session the list was scored from when
                the bundle does not know the user ("session" personalisation).
            recent: raw ids of the items just interacted with ("realtime").
            popular: the popularity fallback or fill listed items.
            category_page: the request's single category filter, if any.
            rule_reasons: raw item id -> (rule id, action), from steering.
        """
        listed = self._indices(items)
        history, order, user = self._history(raw_user_id, session)
        contributions = self._history_contributions(history, order, listed, user)
        near = self._recent_neighbours(recent, len(items))
        explained = []
        for n, item in enumerate(items):
            reasons: list[Reason] = []
            if contributions is not None and contributions[0][n]:
                named, values = contributions[0][n], contributions[1][n]
                reasons.append(
                    {"kind": "similar_to_history", "items": named, "contributions": values}
                )
                if contributions[2] is not None and contributions[2][n]:
                    reasons.append({"kind": "click_model", "top_features": contributions[2][n]})
            if item.raw_item_id in near:  # blended in as a neighbour of a recent item
                reasons.append({"kind": "similar_to_recent", "items": near[item.raw_item_id]})
            if not reasons and popular:
                reasons.append({"kind": "popular_in", "category": category_page})
            reasons += _rule_reasons(rule_reasons, item.raw_item_id)
            explained.append(Explanation(reasons, self._text(reasons)))
        return explained

    def search(
        self,
        query: str,
        items: Sequence[ScoredItem],
        *,
        rule_reasons: dict[str, list[tuple[str, str]]] | None = None,
    ) -> list[Explanation]:
        """One explanation per item of a search list, in list order."""
        listed = self._indices(items)
        terms = self._term_contributions(query, listed)
        cosines = None
        if self._dense is not None and listed.size:
            cosines = self._dense.vectors[listed] @ self._dense.encode_query(query)
            cosines[listed < 0] = 0.0
        explained = []
        for n, item in enumerate(items):
            reasons: list[Reason] = []
            for field_name, matched, score in terms[n]:
                reasons.append(
                    {"kind": "matched_terms", "field": field_name, "terms": matched, "score": score}
                )
            if cosines is not None and float(cosines[n]) > 0:
                reasons.append({"kind": "dense_similarity", "score": round(float(cosines[n]), 4)})
            if item.explanation:
                top = [
                    {"feature": name, "contribution": round(value, 4)}
                    for name, value in item.explanation
                ]
                reasons.append({"kind": "ranking_features", "top_features": top})
            reasons += _rule_reasons(rule_reasons, item.raw_item_id)
            explained.append(Explanation(reasons, self._text(reasons)))
        return explained

    # --- recommendations -------------------------------------------------------------

    def _indices(self, items: Sequence[ScoredItem]) -> IndexArray:
        """item_index of each listed item; -1 for one added online (no model scored it
        from the bundle, so it gets no model reason)."""
        index = self._catalog.index
        return np.asarray([index.get(item.raw_item_id, -1) for item in items], dtype=np.int64)

    def _history(
        self, raw_user_id: str | None, session: Sequence[tuple[str, float]]
    ) -> tuple[sp.csr_matrix | None, IndexArray | None, int]:
        """The history the list was scored from: the session's, else the bundle user's."""
        catalog, histories = self._catalog, self._histories
        user = histories.user(raw_user_id)
        if session:
            known = [(catalog.index[raw], w) for raw, w in session if raw in catalog.index]
            items = np.asarray([i for i, _ in known], dtype=np.int64)
            weights = np.asarray([w for _, w in known], dtype=np.float32)
            row = sp.csr_matrix(
                (weights, (np.zeros(items.size, dtype=np.int64), items)), shape=(1, len(catalog))
            )
            row.sum_duplicates()
            return row, items, -1 if user is None else user
        if user is None:
            return None, None, -1
        return histories.row(user), histories.order(user), user

    def _history_contributions(
        self,
        history: sp.csr_matrix | None,
        order: IndexArray | None,
        listed: IndexArray,
        user: int,
    ) -> tuple[list[list[str]], list[list[float]], list[list[dict[str, Any]]] | None] | None:
        """Per listed item: the history items with the largest positive leave-one-out
        contributions, their values, and the click model's top features."""
        recommender = self._recommender
        if recommender is None or history is None or history.nnz == 0 or listed.size == 0:
            return None
        history = sp.csr_matrix(history, dtype=np.float32)
        seen = history.indices[history.data > 0]
        if order is not None and order.size:  # the most recent ones first
            recent = [int(i) for i in order[::-1] if history[0, int(i)] > 0]
            seen = np.asarray(list(dict.fromkeys(recent)), dtype=np.int64)
        seen = seen[:MAX_HISTORY_ITEMS]
        rows = sp.vstack([history] * (seen.size + 1), format="lil")
        for j, item in enumerate(seen):
            rows[j + 1, int(item)] = 0.0
        batch = sp.csr_matrix(rows, dtype=np.float32)
        batch.eliminate_zeros()
        sequences = None
        if order is not None:
            full = np.asarray(order, dtype=np.int64)
            sequences = self._histories.ordered([full] + [full[full != i] for i in seen])
        scores = np.asarray(recommender.score(UserHistories(batch, sequences)), dtype=np.float32)
        drop = scores[0][listed][None, :] - scores[1:, listed]  # (history items, listed)
        raw = self._catalog.raw_item_ids
        names: list[list[str]] = []
        values: list[list[float]] = []
        for n in range(listed.size):
            # the recommender lists only items it scores above 0; others came from a fill
            scored = listed[n] >= 0 and scores[0][listed[n]] > 0
            column = drop[:, n] if scored else np.zeros(seen.size, dtype=np.float32)
            tolerance = 1e-6 * max(abs(float(scores[0][listed[n]])), 1e-12)
            best = [int(j) for j in np.argsort(-column, kind="stable") if column[j] > tolerance]
            best = best[:MAX_REASON_ITEMS]
            names.append([raw[int(seen[j])] for j in best])
            values.append([round(float(column[j]), 4) for j in best])
        return names, values, self._click_features(history, scores[0], listed, user)

    def _click_features(
        self, history: sp.csr_matrix, scores: FloatArray, listed: IndexArray, user: int
    ) -> list[list[dict[str, Any]]] | None:
        """LightGBM's per-feature contributions for each listed item (as `predict` builds
        the rows); None without a LightGBM re-ranker."""
        model = self._reranker
        if model is None or not isinstance(model.scorer, LightGBMScorer):
            return None
        everything = listed
        contributions = click_contributions(
            model, history, scores, everything[everything >= 0], user
        )
        names = list(model.feature_names)  # an older model reads fewer columns
        found: list[list[dict[str, Any]]] = []
        rows_of = iter(contributions[:, :-1])  # the last column is the bias
        for item in everything:
            if item < 0:
                found.append([])
                continue
            row = next(rows_of)
            top = np.argsort(-np.abs(row), kind="stable")[:MAX_REASON_ITEMS]
            found.append(
                [{"feature": names[int(f)], "contribution": round(float(row[f]), 4)} for f in top]
            )
        return found

    def _recent_neighbours(self, recent: Sequence[str], depth: int) -> dict[str, list[str]]:
        """Listed-item candidates from the similar-items model: item -> its seeds."""
        near: dict[str, list[str]] = {}
        for seed in recent:
            count = max(1, min(len(self._catalog) - 1, depth * 3))
            for item in self._similar.neighbours(seed, count):
                near.setdefault(item.raw_item_id, []).append(seed)
        return near

    # --- search ----------------------------------------------------------------------

    def _term_contributions(
        self, query: str, listed: IndexArray
    ) -> list[list[tuple[str, list[str], float]]]:
        """Per listed item: (field, matched terms best first, field's BM25) per field.

        BM25 is a sum over the query's analysed terms, so scoring each term alone
        (`BM25Search.term_scores`, a repeated term as often as it repeats) splits an
        item's field score exactly.
        """
        found: list[list[tuple[str, list[str], float]]] = [[] for _ in range(listed.size)]
        bm25 = self._bm25
        if bm25 is None or listed.size == 0:
            return found
        per_field: dict[str, list[tuple[str, FloatArray]]] = {}
        for term, repeats in Counter(bm25.query_tokens(query)).items():
            for field_name, scores in bm25.term_scores(term).items():
                per_field.setdefault(field_name, []).append((term, repeats * scores[listed]))
        for field_name, scored in per_field.items():
            for n in np.flatnonzero(listed >= 0):
                hits = sorted(((float(s[n]), term) for term, s in scored if s[n] > 0), reverse=True)
                if hits:
                    terms = [term for _, term in hits]
                    found[n].append((field_name, terms, round(sum(v for v, _ in hits), 4)))
        for reasons in found:
            reasons.sort(key=lambda reason: -reason[2])
        return found

    # --- text ------------------------------------------------------------------------

    def _text(self, reasons: list[Reason]) -> str:
        """One short sentence from the first reasons."""
        parts: list[str] = []
        for reason in reasons:
            kind = reason["kind"]
            if kind == "similar_to_history":
                parts.append(f"because you viewed {self._titles(reason['items'])}")
            elif kind == "similar_to_recent":
                parts.append(f"similar to {self._titles(reason['items'])}, which you just viewed")
            elif kind == "popular_in":
                category = reason["category"]
                parts.append(f"popular in {category}" if category else "popular with shoppers")
            elif kind == "matched_terms" and not any(p.startswith("matched") for p in parts):
                quoted = ", ".join(f"'{term}'" for term in reason["terms"][:MAX_REASON_ITEMS])
                parts.append(f"matched {quoted} in {reason['field']}")
            elif kind == "dense_similarity":
                parts.append("close in meaning to the query")
            elif kind == "rule":
                parts.append(f"{_ACTION_WORDS[reason['action']]} by rule {reason['rule_id']}")
        return "; ".join(parts)

    def _titles(self, raw_item_ids: list[str]) -> str:
        catalog = self._catalog
        names = []
        for raw in raw_item_ids[:2]:
            title = catalog.titles[catalog.index[raw]] if raw in catalog.index else None
            text = title or raw
            names.append(text if len(text) <= MAX_TITLE_CHARS else text[:MAX_TITLE_CHARS] + "…")
        return " and ".join(names)


def _rule_reasons(
    rule_reasons: dict[str, list[tuple[str, str]]] | None, raw_item_id: str
) -> list[Reason]:
    found = rule_reasons.get(raw_item_id, []) if rule_reasons else []
    return [{"kind": "rule", "rule_id": rule_id, "action": action} for rule_id, action in found]


def _part(index: SearchIndex | None, attribute: str, methods: tuple[str, ...]) -> Any:
    """The index itself when it has `methods`, else its part `attribute` when that has
    them (a hybrid index's `lexical` / `dense`), else None."""
    for candidate in (index, getattr(index, attribute, None)):
        if candidate is not None and all(hasattr(candidate, name) for name in methods):
            return candidate
    return None


def click_contributions(
    model: ClickModel, history: sp.csr_matrix, scores: FloatArray, listed: IndexArray, user: int
) -> FloatArray:
    """LightGBM's SHAP contributions (items, features + 1 bias column, log-odds) of a
    LightGBM click model for one history's items, from the rows `ClickModel.predict`
    builds: each row sums to the logit of the probability it re-ranked by.

    Raises:
        TypeError: the click model is not a LightGBM one.
    """
    if not isinstance(model.scorer, LightGBMScorer):
        raise TypeError(f"{model.kind} click models have no pred_contrib; LightGBM only")
    features = model.grid_features(
        history,
        np.asarray(listed, dtype=np.int64).reshape(1, -1),
        scores.reshape(1, -1),
        np.array([user], dtype=np.int64),
    )
    found = model.scorer.booster.predict(features, pred_contrib=True, num_threads=1)
    return np.asarray(found, dtype=np.float32).reshape(listed.size, -1)
