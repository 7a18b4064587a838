"""Response bodies of `explain: true`: an item's reasons, one model per kind.

`Reason` is a union discriminated by `kind`, so the OpenAPI document names every kind
with its fields (`shelfwise.runtime.explain` tables where each comes from).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

_KIND = "The reason's kind (the union's discriminator)."


class FeatureContribution(BaseModel):
    """How much one ranking feature added to an item's score."""

    feature: str = Field(description='Feature name, e.g. "bm25_title" or "dense_cosine".')
    contribution: float = Field(description="Additive contribution to the score (SHAP value).")


class SimilarToHistory(BaseModel):
    """The recommender scored the item from these history items (largest share first)."""

    kind: Literal["similar_to_history"] = Field(description=_KIND)
    items: list[str] = Field(description="History item ids, largest contribution first.")
    contributions: list[float] = Field(
        description="How much the item's score drops without each (leave-one-out)."
    )


class SimilarToRecent(BaseModel):
    """A neighbour (similar-items model) of items the shopper just interacted with."""

    kind: Literal["similar_to_recent"] = Field(description=_KIND)
    items: list[str] = Field(description="The recent items it is a neighbour of.")


class PopularIn(BaseModel):
    """Listed by the popularity fallback or fill."""

    kind: Literal["popular_in"] = Field(description=_KIND)
    category: str | None = Field(description="The category page's category; null: overall.")


class ClickModelReason(BaseModel):
    """The click model re-ranked the item; its largest feature contributions."""

    kind: Literal["click_model"] = Field(description=_KIND)
    top_features: list[FeatureContribution] = Field(
        description="The click model's largest contributions (LightGBM pred_contrib)."
    )


class MatchedTerms(BaseModel):
    """BM25: the query's analysed terms found in one field."""

    kind: Literal["matched_terms"] = Field(description=_KIND)
    field: str = Field(description='The field, e.g. "title".')
    terms: list[str] = Field(description="Matched terms (as analysed), largest share first.")
    score: float = Field(description="Their BM25 score in that field.")


class DenseSimilarity(BaseModel):
    """The dense index: cosine of the query's and the item's vectors."""

    kind: Literal["dense_similarity"] = Field(description=_KIND)
    score: float = Field(description="Cosine of the query's and the item's vectors.")


class RankingFeatures(BaseModel):
    """The search re-ranker (LambdaMART): its largest feature contributions."""

    kind: Literal["ranking_features"] = Field(description=_KIND)
    top_features: list[FeatureContribution] = Field(
        description="The re-ranker's largest contributions (LightGBM pred_contrib)."
    )


class RuleReason(BaseModel):
    """A merchandising rule placed or moved the item."""

    kind: Literal["rule"] = Field(description=_KIND)
    rule_id: str = Field(description="The rule's id (`/v1/admin/rules`).")
    action: Literal["pin", "boost", "bury"] = Field(description="What the rule did.")


Reason = Annotated[
    SimilarToHistory
    | SimilarToRecent
    | PopularIn
    | ClickModelReason
    | MatchedTerms
    | DenseSimilarity
    | RankingFeatures
    | RuleReason,
    Field(discriminator="kind"),
]


class ExplanationOut(BaseModel):
    """Why an item was listed: reasons from the models that scored it, and a sentence."""

    reasons: list[Reason] = Field(description="Machine-readable reasons, most telling first.")
    text: str = Field(description='A short sentence, e.g. "because you viewed X and Y".')
