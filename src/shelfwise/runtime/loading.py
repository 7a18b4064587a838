"""Reading a bundle folder into the loaded parts an `Engine` is assembled from.

`read_bundle` verifies the bundle (sha256 of every file), reads the id maps, histories
and event weights, and loads each role's model by its registered name; a model this
shelfwise cannot load becomes an `ArtifactError` that says which version to serve it
with. `resolve_bundle_path` turns a state folder or store root into its latest bundle.
`shelfwise.runtime.load_engine` wraps both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise._internal.sequences import Sequences
from shelfwise.compress import load_recommender
from shelfwise.config import ModelsConfig
from shelfwise.contracts import RAW_USER_ID, EventType
from shelfwise.errors import ArtifactError
from shelfwise.package.bundle import (
    HISTORIES_FILE,
    ITEMS_FILE,
    ROLE_POPULAR,
    ROLE_RANKER,
    ROLE_RECOMMENDER,
    ROLE_SEARCH,
    ROLE_SESSION,
    ROLE_SIMILAR,
    SEQUENCES_FILE,
    USERS_FILE,
    BundleManifest,
    check_unhashed_bundle,
    model_folder,
    read_event_weights,
    read_repeat_policy,
    verify_bundle,
)
from shelfwise.ranking import ClickModel
from shelfwise.registry.base import CHAMPION
from shelfwise.registry.local import BUNDLES_DIR, LocalRegistry
from shelfwise.retrieval import Recommender, SearchIndex, SimilarItems
from shelfwise.runtime.catalog import Catalog
from shelfwise.search import load_search_index

_T = TypeVar("_T")


@dataclass(frozen=True)
class LoadedBundle:
    """Everything an `Engine` serves, read from one bundle folder.

    Attributes:
        path: the bundle folder.
        manifest: its manifest.
        version: the version label responses carry.
        catalog: the items, in item_index order.
        user_index: raw user id -> user_index.
        histories: CSR (n_users, n_items) of weighted interactions, float32.
        sequences: each user's items oldest first, when the bundle has them.
        recommender: the "recommender" role's model.
        popular: the "popular" role's model.
        similar_items: the "similar" role's model (the recommender when it is the same).
        search_index: the "search" role's index.
        ranker: the "ranker" role's click model.
        event_weights: the event weights `histories` was built with; None for a
            bundle written before bundles kept them (see `serving_event_weights`).
        repeat_policy: "allow" when lists may hold the user's own items, else
            "exclude" (`repeat_policy.json`; older bundles: "exclude").
        session: the "session" role's model (scores inline histories and session
            ids); None in bundles of runs without the session split.
    """

    path: Path
    manifest: BundleManifest
    version: str
    catalog: Catalog
    user_index: dict[str, int]
    histories: sp.csr_matrix
    sequences: Sequences | None
    recommender: Recommender | None
    popular: Recommender | None
    similar_items: SimilarItems | None
    search_index: SearchIndex | None
    ranker: ClickModel | None
    event_weights: dict[EventType, float] | None
    repeat_policy: str = "exclude"
    session: Recommender | None = None


def read_bundle(path: Path, *, verify: bool = True, version: str | None = None) -> LoadedBundle:
    """Load a bundle (verifying every file's hash by default); see `load_engine`.

    Raises:
        BundleNotFoundError: nothing at `path`, or an empty store.
        IntegrityError, ManifestError, ArtifactError: a damaged bundle.
    """
    path = resolve_bundle_path(path)
    manifest = verify_bundle(path) if verify else check_unhashed_bundle(path)
    _one_thread_per_request()
    if version is None:
        stored = path.name.isdigit() and path.parent.name == BUNDLES_DIR
        version = path.name if stored else manifest.fingerprint[:12]
    catalog = Catalog(pl.read_parquet(path / ITEMS_FILE))
    users = pl.read_parquet(path / USERS_FILE)[RAW_USER_ID].cast(pl.String()).to_list()
    histories = read_csr(path / HISTORIES_FILE).astype(np.float32)
    if histories.shape != (len(users), len(catalog)):
        raise ArtifactError(
            f"{path / HISTORIES_FILE} has shape {histories.shape}, expected "
            f"({len(users)}, {len(catalog)}); rebuild the bundle"
        )
    components = manifest.components
    recommender = (
        _load_recommender(path, manifest, ROLE_RECOMMENDER)
        if ROLE_RECOMMENDER in components
        else None
    )
    popular: Recommender | None = None
    if ROLE_POPULAR in components:
        loaded = _load_recommender(path, manifest, ROLE_POPULAR)
        if not isinstance(loaded, Recommender):
            raise ArtifactError(f"the popular role needs a matrix recommender, not {loaded.name}")
        popular = loaded
    similar_items: SimilarItems | None = None
    if ROLE_SIMILAR in components:
        model = (
            recommender
            if recommender is not None
            and components[ROLE_SIMILAR] == components.get(ROLE_RECOMMENDER)
            else _load_recommender(path, manifest, ROLE_SIMILAR)
        )
        if not isinstance(model, SimilarItems):
            raise ArtifactError(
                f"model {manifest.components[ROLE_SIMILAR]!r} cannot list similar items; "
                "rebuild the bundle with a similar-items model (e.g. item_knn)"
            )
        similar_items = model
    search_index: SearchIndex | None = None
    located = model_folder(path, manifest, ROLE_SEARCH)
    if located is not None:
        search_index = _guarded(lambda: load_search_index(*located), located[0])
    return LoadedBundle(
        path=path,
        manifest=manifest,
        version=version,
        catalog=catalog,
        user_index={raw: index for index, raw in enumerate(users)},
        histories=histories,
        sequences=(
            Sequences.load(path / SEQUENCES_FILE) if (path / SEQUENCES_FILE).is_file() else None
        ),
        recommender=recommender,
        popular=popular,
        similar_items=similar_items,
        search_index=search_index,
        ranker=_load_ranker(path, manifest, len(catalog)),
        event_weights=read_event_weights(path),
        repeat_policy=read_repeat_policy(path),
        session=(
            _load_recommender(path, manifest, ROLE_SESSION) if ROLE_SESSION in components else None
        ),
    )


def serving_event_weights(weights: Mapping[EventType, float] | None) -> dict[EventType, float]:
    """The weight of every event type, as the bundle's histories were built.

    Args:
        weights: the bundle's `event_weights.json`; None for a bundle written before
            bundles kept them, which gets the config defaults (`ModelsConfig`).

    Returns:
        A weight for each `EventType`; a type the weights leave out gets 0.0, as in
        `features` (an event of that type never entered training).
    """
    chosen = ModelsConfig().event_weights if weights is None else weights
    return {kind: float(chosen.get(kind, 0.0)) for kind in EventType}


def resolve_bundle_path(path: Path) -> Path:
    """`path` itself when it is a bundle, else the champion of the local store there.

    Accepts a bundle folder, a state folder holding `bundles/`, or a `bundles/` folder.
    A store written before it kept aliases reads its latest version as the champion.
    """
    if (path / "manifest.json").is_file() or not path.is_dir():
        return path
    home = path.parent if path.name == BUNDLES_DIR else path
    if (home / BUNDLES_DIR).is_dir():
        registry = LocalRegistry(home)
        champion = registry.by_alias(CHAMPION)
        if champion is not None:
            return registry.local_path(champion.version)
    return path


def _one_thread_per_request() -> None:
    """Run FAISS searches on one thread: a request is one query, and OpenMP threads
    that wait for each other made one exact search 8x slower on a busy 2-core machine
    (38 ms vs 4.9 ms, benchmarks/RESULTS.md). Concurrency comes from requests and
    server workers instead. A no-op when FAISS is not installed.
    """
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(1)


def _load_recommender(path: Path, manifest: BundleManifest, role: str) -> Recommender:
    located = model_folder(path, manifest, role)
    if located is None:
        raise ArtifactError(f"bundle {path} has no {role!r} model; rebuild the bundle")
    return _guarded(lambda: load_recommender(*located), located[0])


def _load_ranker(path: Path, manifest: BundleManifest, n_items: int) -> ClickModel | None:
    located = model_folder(path, manifest, ROLE_RANKER)
    if located is None:
        return None
    ranker = ClickModel.load(located[1])
    if ranker.n_items != n_items:
        raise ArtifactError(
            f"click model {located[0]!r} knows {ranker.n_items} items but the bundle has "
            f"{n_items}; rebuild the bundle"
        )
    return ranker


def _guarded(load: Callable[[], _T], name: str) -> _T:
    try:
        return load()
    except LookupError as exc:
        raise ArtifactError(
            f"the bundle needs model {name!r}, which this shelfwise cannot load ({exc}); "
            "serve it with the shelfwise version that built it"
        ) from None
