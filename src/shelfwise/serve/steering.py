"""What the search and recommend routes share for steering and explanations.

The routes rank through `shelfwise.runtime.steering.steer_call` with the plan built
here (the rules in force that the request meets, its diversity options over the
server's defaults), count the applied rules in /metrics, and render explanations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shelfwise.config.rules import Endpoint
from shelfwise.runtime.catalog import Filters, ScoredItem
from shelfwise.runtime.diversity import DiversityOptions
from shelfwise.runtime.explain import Explanation
from shelfwise.runtime.steering import SteeringPlan, steering_plan
from shelfwise.serve.deps import Service
from shelfwise.serve.experiments_state import rules_in_force
from shelfwise.serve.schemas import DiversityIn, ItemOut


def plan_for(
    service: Service,
    endpoint: Endpoint,
    diversity: DiversityIn | None,
    *,
    query: str | None = None,
    filters: Filters | None = None,
    segment: str | None = None,
) -> SteeringPlan:
    """The request's steering plan: rules in force it meets, options over the defaults."""
    settings = service.settings
    options = DiversityOptions(
        max_per_brand=settings.max_per_brand,
        max_per_category=settings.max_per_category,
        mmr_lambda=settings.diversity_lambda,
        margin_weight=settings.margin_weight,
    )
    if diversity is not None:  # the request's options (same names) replace the defaults
        options = replace(options, **diversity.model_dump(exclude_none=True))
    rules = rules_in_force(service.rules)  # an experiment's rule-set variant, or the book's
    return steering_plan(
        rules, options, endpoint=endpoint, query=query, filters=filters, segment=segment
    )


def items_out(
    items: Sequence[ScoredItem], explanations: Sequence[Explanation] | None
) -> list[dict[str, Any]]:
    """The response's items, with their explanations when asked for."""
    out = [ItemOut.fields_of(item) for item in items]
    if explanations is not None:
        for fields, explanation in zip(out, explanations, strict=True):
            fields["explanation"] = {"reasons": explanation.reasons, "text": explanation.text}
    return out
