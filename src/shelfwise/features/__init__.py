"""features: id maps, the frozen split, interaction matrices, labelled queries.

Stage input: the `validate` folder. Outputs:

| file | content |
|---|---|
| `items.parquet` | ITEM_INDEX (row order) + every catalog column |
| `users.parquet` | USER_INDEX (row order) + RAW_USER_ID |
| `interactions.parquet` | USER_INDEX, ITEM_INDEX, EVENT_TYPE, TIMESTAMP, WEIGHT, SPLIT |
| `train.npz` | weighted CSR of train events (what models fit on) |
| `train_valid.npz` | train + valid (the history when scoring test users) |
| `full.npz` | every event (serving-time history) |
| `*_seq.npz` | train, train_valid, full: the same events as time-ordered sequences |
| `valid_targets.npz`, `test_targets.npz` | binary targets, minus already-seen items |
| `valid_targets_all.npz`, `test_targets_all.npz` | the same with repeats kept (repeat policy) |
| `queries.parquet` | QUERY, ITEM_INDEX, RELEVANCE |
| `search_events.parquet` | events with a QUERY (user, item, type, query, position, split) |
| `split.json` | the split protocol, cutoffs and counts |

This is the one place raw ids become indices.
"""

from __future__ import annotations

from shelfwise._internal.matrices import sequences, target_matrix, weighted_matrix
from shelfwise.features.split import SplitInfo, assign_split
from shelfwise.features.stage import run

__all__ = ["SplitInfo", "assign_split", "run", "sequences", "target_matrix", "weighted_matrix"]
