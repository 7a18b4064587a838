"""The click model: P(click or purchase) of a (user, item) pair, and a re-ranker.

Stage inputs: `features`, `retrieval`, `evaluate` (its `metrics.json` names the served
recommender in `selected.recommender`: the retriever whose candidates are re-ranked).

Design
------
* **Candidates.** For each user, the retriever's top-N unseen items from their history
  (N = `ranking.candidates`, default 100), exactly the list evaluation ranks; when the
  evaluate stage's repeat policy resolved to `allow`, the top N *with* the user's own
  items, as such lists are served.
* **Labels.** 1 when the candidate is among the user's targets of that split, else 0
  (under `allow`, the targets that keep repeat purchases, `<split>_targets_all.npz`).
* **Training data.** Users of the *valid* split (seeded sample of at most
  `ranking.max_users`): history `train.npz`, candidates from the retriever fitted on
  train, labels `valid_targets.npz`, features from tables built from train events. A
  seeded 20% of those users is held out: early stopping, model choice, the decision
  threshold and the "keep only if better" decision use them alone. Test events never
  enter training.
* **Test.** Users of the *test* split: history `train_valid.npz`, labels
  `test_targets.npz`, tables from train + valid events.
* **Features** (see `shelfwise.ranking.features`): retriever score, rank and gap to the
  best score; item popularity, popularity share (the popularity retriever's co-score)
  and last-7-days events; price and price relative to the user's mean; share of the
  user's history in the item's category and brand; user history size and weight;
  days since the item's and the user's last event; days since the user last bought
  the item and that over the item's typical repurchase gap (`ranking.repurchase`;
  `ranking.repurchase_features: false` leaves these two out). All vectorised.
* **Models.** LightGBM (binary objective, seeded, 2 threads, early stopping on the
  held-out users) and a small PyTorch MLP (2 hidden ReLU layers, sigmoid output, BCE,
  standardised features, seeded). Both are trained and reported; the better held-out
  AUC is "the click model" (`ranking.model` forces one).
* **Classifier metrics** on test users: AUC, log loss, precision / recall / F1 at the
  threshold that maximises F1 on the held-out users, plus ROC and PR curve points.
* **Re-ranker.** NDCG@K / Recall@K of the candidates re-ordered by probability vs the
  retriever's own order, on held-out users (the decision) and test users (reported).
  `rerank` is true only when re-ranking improves held-out NDCG@10; the model is saved
  either way, for `/v1/predict`.

Output folder::

    model/          the served click model (`ClickModel.load`): features.json,
                    model.txt (LightGBM) or mlp.safetensors, item_*.npy, user_last_seen.npy,
                    user_purchase_keys.npy / user_purchase_times.npy
                    — its tables are built from every event, like the bundle's histories
    ranking.json    status, retriever, selected_model, rerank, threshold, test metrics,
                    every model's held-out / test metrics, re-ranking metrics, row counts
    curves.json     ROC and PR points on test users, per model and for the retriever order
    roc.png pr.png  the curves
    users.npz       user indices used: fit, holdout (valid users), test

When the stage cannot train (disabled, no valid split, no recommender, no target among
the candidates), `ranking.json` says `{"status": "skipped", "reason": ...}` and there is
no `model/` folder.

`ClickModel` implements `Ranker` (`shelfwise.ranking.base`), the protocol the search
re-ranker shares: candidates with features in, scores out.

The inference side (`ClickModel`, `features`) imports no training code: the online
role loads `model/` with `ClickModel.load`; the stage (`ranking.stage.run`) is batch-only.
"""

from __future__ import annotations

from shelfwise.ranking.base import Ranker
from shelfwise.ranking.features import FEATURE_NAMES, ItemTable, UserTable, pair_features
from shelfwise.ranking.model import ClickModel

__all__ = ["ClickModel", "FEATURE_NAMES", "ItemTable", "Ranker", "UserTable", "pair_features"]
