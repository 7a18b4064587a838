"""Shared by the runtime, serve, stores and monitor tests: a tiny bilingual bundle built
once per session, a live Redis, and a click model with known probabilities.

Catalog (item_index: raw id, title, category, price, in stock):

    0 sku-laptop      Lenovo ThinkPad 笔记本电脑        electronics  5999  yes
    1 sku-phone       Apple iPhone 15 智能手机           electronics  6999  yes
    2 sku-mouse       Logitech Wireless Mouse 无线鼠标   electronics    99  yes
    3 sku-tea         West Lake Longjing Green Tea 龙井绿茶 grocery    128  yes
    4 sku-coffee      Arabica Coffee Beans 咖啡豆        grocery        89  no
    5 sku-book        Python Programming Book 编程书     books          59  yes
    6 sku-headphones  Sony Noise Cancelling Headphones 降噪耳机 electronics 1999 yes
    7 sku-lamp        IKEA Desk Lamp 台灯                home          199  (unknown)

Histories (weights): u1 laptop 5, mouse 3, headphones 1; u2 laptop 1, mouse 5, phone 3;
u3 tea 5, coffee 3; u4 tea 1, coffee 1, book 5; u5 phone 5, headphones 3, laptop 1;
u-empty nothing. Popularity: phone 8, mouse 8, laptop 7, tea 6, book 5, coffee 4,
headphones 4, lamp 0 -> order phone, mouse, laptop, tea, book, coffee, headphones, lamp.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.ranking import FEATURE_NAMES, ClickModel
from shelfwise.ranking.features import build_tables
from shelfwise.ranking.model import MLPScorer
from shelfwise.retrieval import BM25Search, ItemKNNRecommender, PopularityRecommender
from shelfwise.runtime import Engine, load_engine

ITEMS = pl.DataFrame(
    {
        "raw_item_id": [
            "sku-laptop",
            "sku-phone",
            "sku-mouse",
            "sku-tea",
            "sku-coffee",
            "sku-book",
            "sku-headphones",
            "sku-lamp",
        ],
        "title": [
            "Lenovo ThinkPad 笔记本电脑",
            "Apple iPhone 15 智能手机",
            "Logitech Wireless Mouse 无线鼠标",
            "West Lake Longjing Green Tea 龙井绿茶",
            "Arabica Coffee Beans 咖啡豆",
            "Python Programming Book 编程书",
            "Sony Noise Cancelling Headphones 降噪耳机",
            "IKEA Desk Lamp 台灯",
        ],
        "category": [
            "electronics",
            "electronics",
            "electronics",
            "grocery",
            "grocery",
            "books",
            "electronics",
            "home",
        ],
        "brand": ["Lenovo", "Apple", "Logitech", "Xihu", "Lavazza", "OReilly", "Sony", "IKEA"],
        "price": [5999.0, 6999.0, 99.0, 128.0, 89.0, 59.0, 1999.0, 199.0],
        "in_stock": [True, True, True, True, False, True, True, None],
    }
)
USERS = ["u1", "u2", "u3", "u4", "u5", "u-empty"]
HISTORY = {
    "u1": {"sku-laptop": 5.0, "sku-mouse": 3.0, "sku-headphones": 1.0},
    "u2": {"sku-laptop": 1.0, "sku-mouse": 5.0, "sku-phone": 3.0},
    "u3": {"sku-tea": 5.0, "sku-coffee": 3.0},
    "u4": {"sku-tea": 1.0, "sku-coffee": 1.0, "sku-book": 5.0},
    "u5": {"sku-phone": 5.0, "sku-headphones": 3.0, "sku-laptop": 1.0},
}
POPULAR_ORDER = [
    "sku-phone",
    "sku-mouse",
    "sku-laptop",
    "sku-tea",
    "sku-book",
    "sku-coffee",
    "sku-headphones",
    "sku-lamp",
]


def history_matrix() -> sp.csr_matrix:
    """The (users, items) weights of HISTORY."""
    item_index = {raw: i for i, raw in enumerate(ITEMS["raw_item_id"].to_list())}
    dense = np.zeros((len(USERS), ITEMS.height), dtype=np.float32)
    for u, user in enumerate(USERS):
        for raw, weight in HISTORY.get(user, {}).items():
            dense[u, item_index[raw]] = weight
    return sp.csr_matrix(dense)


def build_bundle(root: Path, *, with_similar: bool = True, with_search: bool = True) -> Path:
    """Fit the three models on the tiny shop and write a bundle under `root/bundle`."""
    histories = history_matrix()
    models = root / "models"
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(models / "popularity")
    knn = ItemKNNRecommender(neighbours=10, num_threads=1)
    knn.fit(histories)
    knn.save(models / "item_knn")
    components: dict[str, tuple[str, Path]] = {
        "recommender": ("item_knn", models / "item_knn"),
        "popular": ("popularity", models / "popularity"),
    }
    if with_similar:
        components["similar"] = ("item_knn", models / "item_knn")
    if with_search:
        bm25 = BM25Search(field_weights={"title": 2.0, "brand": 1.0, "category": 1.0})
        bm25.fit(
            {
                "title": ITEMS["title"].to_list(),
                "brand": ITEMS["brand"].to_list(),
                "category": ITEMS["category"].to_list(),
            }
        )
        bm25.save(models / "bm25")
        components["search"] = ("bm25", models / "bm25")
    spec = BundleSpec(
        items=ITEMS,
        users=pl.DataFrame({"raw_user_id": USERS}),
        histories=histories,
        components=components,
        metrics={"item_knn": {"ndcg@10": 0.5}, "popularity": {"ndcg@10": 0.25}},
        data_fingerprint="data-fp",
        lineage={"run_id": "test-run"},
        project="tiny",
    )
    out = root / "bundle"
    write_bundle(spec, out)
    return out


@dataclass(frozen=True)
class ShopFacts:
    """The fixture's known answers, for tests (conftest modules are not importable)."""

    history: dict[str, dict[str, float]]
    popular_order: list[str]
    build_bundle: Callable[..., Path]


@pytest.fixture(scope="session")
def facts() -> ShopFacts:
    """Histories, the popularity order and the bundle builder of the tiny shop."""
    return ShopFacts(history=HISTORY, popular_order=POPULAR_ORDER, build_bundle=build_bundle)


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny bundle (read-only: copy it before changing anything)."""
    return build_bundle(tmp_path_factory.mktemp("serve-bundle"))


@pytest.fixture(scope="session")
def engine(bundle_path: Path) -> Engine:
    """An engine over the tiny bundle (engines are read-only, so one is shared)."""
    return load_engine(bundle_path)


# --- Redis for the online-store tests -------------------------------------------------

_SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services.sh"


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """A live redis-server: $SHELFWISE_TEST_REDIS_URL, else the one scripts/services.sh
    starts (installing redis-server when missing). Skips only when none can be started.
    """
    url = os.environ.get("SHELFWISE_TEST_REDIS_URL")
    if url:
        return url
    try:
        started = subprocess.run(
            [str(_SERVICES), "start"], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"redis-server could not be started by {_SERVICES.name}: {exc}")
    if started.returncode != 0 or not started.stdout.strip():
        reason = (started.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"redis-server could not be started by scripts/services.sh: {reason}")
    return started.stdout.strip().splitlines()[-1]


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """The live server's URL with a key prefix of this test's own; its keys are removed."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield f"{redis_server_url}?prefix={prefix}"
    client = redis.Redis.from_url(redis_server_url)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def free_port() -> int:
    """A loopback TCP port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def closed_redis_url() -> str:
    """A redis:// URL where nothing listens: every call is refused."""
    return f"redis://127.0.0.1:{free_port()}/0"


def hand_set_click_model(
    items: pl.DataFrame,
    histories: sp.csr_matrix,
    first: np.ndarray,
    *,
    rerank: bool,
    candidates: int,
    retriever: str,
) -> ClickModel:
    """A click model with known probabilities: p = sigmoid(sum_h relu(first[h] . z) - 3).

    `first` is the hidden layer's (h, n_features) weights over the standardised
    features z (item_log_price centred at 5, scaled by 2; the rest as they are); the
    item and user tables come from `histories` (all events at one timestamp).
    """
    coo = histories.tocoo()
    interactions = pl.DataFrame(
        {
            "user_index": coo.row.astype(np.int64),
            "item_index": coo.col.astype(np.int64),
            "timestamp": np.full(coo.nnz, 1_700_000_000, dtype=np.int64),
            "weight": coo.data.astype(np.float64),
        }
    )
    item_table, user_table = build_tables(items, interactions, n_users=histories.shape[0])
    price = FEATURE_NAMES.index("item_log_price")
    mean = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    std = np.ones(len(FEATURE_NAMES), dtype=np.float32)
    mean[price], std[price] = 5.0, 2.0
    hidden = first.shape[0]
    weights = (
        (first.astype(np.float32), np.zeros(hidden, dtype=np.float32)),
        (np.ones((1, hidden), dtype=np.float32), np.array([-3.0], dtype=np.float32)),
    )
    return ClickModel(
        scorer=MLPScorer(weights=weights, mean=mean, std=std),
        items=item_table,
        users=user_table,
        mean=mean,
        std=std,
        rerank=rerank,
        candidates=candidates,
        retriever=retriever,
    )


# --- audiences (issue 15): the tiny shop plus a tea with no events -------------------

COLD_TEA = "sku-tea-gift"


def build_audience_bundle(root: Path) -> Path:
    """The tiny shop with one more product, a green tea no one has touched yet, and the
    bundle's `audience/` files (text vectors, user profiles, last activity)."""
    from shelfwise.package.audience import write_audience

    items = pl.concat(
        [
            ITEMS,
            pl.DataFrame(
                {
                    "raw_item_id": [COLD_TEA],
                    "title": ["Longjing Green Tea Gift Box 龙井绿茶礼盒"],
                    "category": ["grocery"],
                    "brand": ["Xihu"],
                    "price": [168.0],
                    "in_stock": [True],
                }
            ),
        ]
    )
    histories = sp.hstack([history_matrix(), sp.csr_matrix((len(USERS), 1))]).tocsr()
    models = root / "models"
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(models / "popularity")
    knn = ItemKNNRecommender(neighbours=10, num_threads=1)
    knn.fit(histories)
    knn.save(models / "item_knn")
    day = 86_400
    # u1 and u2 were active on the last day, the others two days before, u-empty never
    last = np.array([100 * day, 100 * day, 98 * day, 98 * day, 98 * day, np.iinfo(np.int64).min])
    spec = BundleSpec(
        items=items,
        users=pl.DataFrame({"raw_user_id": USERS}),
        histories=histories,
        components={
            "recommender": ("item_knn", models / "item_knn"),
            "popular": ("popularity", models / "popularity"),
            "similar": ("item_knn", models / "item_knn"),
        },
        project="tiny",
        audience=write_audience(
            root / "audience", items=items, histories=histories, last_event=last
        ),
    )
    out = root / "bundle"
    write_bundle(spec, out)
    return out


@pytest.fixture(scope="session")
def audience_bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny audience bundle (read-only)."""
    return build_audience_bundle(tmp_path_factory.mktemp("audience-bundle"))
