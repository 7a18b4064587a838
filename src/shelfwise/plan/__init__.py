"""plan: choose what fits the data and the machine before anything trains.

Stage inputs: `ingest`, `validate`, `features`. Output: `plan.json`. It looks at the
data's shape (users, items, events, density, co-occurring item pairs, sequence
lengths, catalog text in bytes and tokens) and at the memory and cores the run may
use, and chooses:

- which recommender families run, with their size limits (user_knn's users, EASE's
  dense Gram matrix) and the parameters that scale (ALS and BPR iterations, SASRec's
  time budget); a default family that does not fit is left out with the reason;
- whether dense search is built (text to search, queries to choose it with, an
  encoding that fits `plan.max_encode_seconds`), with which encoder, title vectors or
  not, and which ANN index (exact, HNSW, IVF-PQ by catalog size);
- evaluation, tuning and click-model sample sizes, and a tune budget that covers a
  baseline trial of every tunable family;
- an estimated time and memory for every stage (`shelfwise plan` prints the table).

Only settings still at their defaults are changed: what the user wrote wins, and a
family the user asked for that cannot fit stops the run with the limit it hit. The
cost models are in `costs`, the rules in `choose`, the record in `record`.
"""

from __future__ import annotations

from shelfwise.plan.choose import is_user_setting, make_plan
from shelfwise.plan.costs import Estimate, fit_estimate
from shelfwise.plan.record import Choice, Plan, apply_plan, load_plan, planned_config
from shelfwise.plan.shape import DataShape, Resources, detect_resources, measure_shape
from shelfwise.plan.stage import run

__all__ = [
    "Choice",
    "DataShape",
    "Estimate",
    "Plan",
    "Resources",
    "apply_plan",
    "detect_resources",
    "fit_estimate",
    "is_user_setting",
    "load_plan",
    "make_plan",
    "measure_shape",
    "planned_config",
    "run",
]
