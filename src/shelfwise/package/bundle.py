"""The bundle: one self-describing folder per model version, read by the online role.

Layout::

    manifest.json      BundleManifest (written last: a folder without it is incomplete)
    items.parquet      catalog in item_index order: raw_item_id, title, category, brand,
                       price, in_stock (+ any other columns)
    users.parquet      raw_user_id in user_index order
    histories.npz      CSR (n_users, n_items) of weighted interactions from every
                       accepted event: the serving-time history of each known user
    sequences.npz      every user's items in time order (read by sequential models)
    event_weights.json event type -> weight the histories were built with (config
                       `models.event_weights`); the online role weighs live events
                       with it. Bundles written before it existed lack the file.
    repeat_policy.json {"policy": "exclude" | "allow"}: whether lists may hold items
                       the user already has (config `models.repeat_policy`, resolved by
                       evaluation); serving applies it. Absent in older bundles:
                       "exclude", what they always did.
    audience/          text vectors, user profiles and last-activity times for
                       audiences of a product (`package.audience`); absent in older
                       bundles, which then rank by co-occurrence alone
    models/<name>/     one saved model per registered model name; a model used by two
                       roles (item_knn as recommender and similar) is stored once. Roles:
                       recommender, popular, similar, search, ranker, and session (the
                       session model that answers inline histories; session split only)
    signature          HMAC-SHA256 of manifest.json, when SHELFWISE_BUNDLE_SIGNING_KEY
                       is set (see `package.integrity`)

No file is pickled. `manifest.files` holds the sha256 of every other file and
`manifest.fields` the sha256 of every manifest field (schema 2); `manifest.fingerprint`
hashes both, so an edited file or manifest field fails `verify_bundle`, which names it.
Two bundles with the same content have the same fingerprint whenever they were written:
`created_at` and `lineage.run_id` are recorded but left out (`package.integrity`).

This module belongs to the online role too: it imports no training code.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal

import polars as pl
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shelfwise._internal.artifacts import (
    MANIFEST,
    atomic_write_json,
    atomic_write_text,
    hash_tree,
    sha256_file,
    write_csr,
    write_parquet,
)
from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import (
    BRAND,
    CATEGORY,
    IN_STOCK,
    PRICE,
    RAW_ITEM_ID,
    RAW_USER_ID,
    TITLE,
    EventType,
)
from shelfwise.errors import ArtifactError, BundleNotFoundError, IntegrityError, ManifestError
from shelfwise.package.integrity import (
    SIGNATURE_FILE,
    check_arrays,
    check_fields,
    check_signature,
    field_digests,
    fingerprint_v1,
    fingerprint_v2,
    signature_document,
    signing_key,
)

BUNDLE_FORMAT: Final = "shelfwise-bundle"
# 2: `fields` and a fingerprint over the manifest's fields; 1: files and components only
BUNDLE_SCHEMA_VERSION: Final = 2
READABLE_SCHEMA_VERSIONS: Final = (1, 2)

ITEMS_FILE: Final = "items.parquet"
USERS_FILE: Final = "users.parquet"
HISTORIES_FILE: Final = "histories.npz"
SEQUENCES_FILE: Final = "sequences.npz"
EVENT_WEIGHTS_FILE: Final = "event_weights.json"
REPEAT_POLICY_FILE: Final = "repeat_policy.json"
# What a bundle's lists do with the user's own items; resolved (never "learn").
SERVED_REPEAT_POLICIES: Final = ("exclude", "allow")
MODELS_DIR: Final = "models"

ROLE_RECOMMENDER: Final = "recommender"
ROLE_POPULAR: Final = "popular"
ROLE_SIMILAR: Final = "similar"
ROLE_SEARCH: Final = "search"
ROLE_RANKER: Final = "ranker"  # the click model (shelfwise.ranking.ClickModel folder)
# the session model (SKNN / V-SKNN / STAN over training sessions) that scores inline
# histories and session ids; present when the run used the session split
ROLE_SESSION: Final = "session"
REQUIRED_ROLES: Final = (ROLE_RECOMMENDER, ROLE_POPULAR)
KNOWN_ROLES: Final = (
    ROLE_RECOMMENDER,
    ROLE_POPULAR,
    ROLE_SIMILAR,
    ROLE_SEARCH,
    ROLE_RANKER,
    ROLE_SESSION,
)

# Display columns the engine relies on; missing ones are written as nulls.
ITEM_COLUMNS: Final[dict[str, pl.DataType]] = {
    RAW_ITEM_ID: pl.String(),
    TITLE: pl.String(),
    CATEGORY: pl.String(),
    BRAND: pl.String(),
    PRICE: pl.Float64(),
    IN_STOCK: pl.Boolean(),
}


class BundleManifest(BaseModel):
    """The `manifest.json` of a bundle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["shelfwise-bundle"] = BUNDLE_FORMAT
    schema_version: int = BUNDLE_SCHEMA_VERSION
    project: str
    created_at: datetime = Field(description="UTC time the bundle was written.")
    fingerprint: str = Field(description="sha256 of the content; see `package.integrity`.")
    files: dict[str, str] = Field(description="relative posix path -> sha256")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="manifest field (lineage keys one by one) -> sha256 of its JSON; "
        "empty in schema 1",
    )
    components: dict[str, str] = Field(description="role -> registered model name")
    metrics: dict[str, Any] = Field(default_factory=dict)
    data_fingerprint: str
    lineage: dict[str, Any] = Field(
        default_factory=dict,
        description="run_id, config_hash, code_version, library_versions, data cutoff, ...",
    )
    n_items: int = Field(ge=0)
    n_users: int = Field(ge=0)

    @field_validator("schema_version")
    @classmethod
    def _readable_schema(cls, value: int) -> int:
        if value not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(
                f"bundle schema {value} is not one this shelfwise reads "
                f"({', '.join(map(str, READABLE_SCHEMA_VERSIONS))}); load it with the "
                "shelfwise version that wrote it"
            )
        return value

    @field_validator("components")
    @classmethod
    def _plain_model_names(cls, value: dict[str, str]) -> dict[str, str]:
        # a model name becomes a folder under models/: no separators, no "..", no "~"
        for role, name in value.items():
            if not _MODEL_NAME.fullmatch(name) or ".." in name:
                raise ValueError(f"component {role!r} names model {name[:60]!r}: not a plain name")
        return value

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for rel in value:
            parts = PurePosixPath(rel).parts
            if not parts or rel.startswith("/") or "\\" in rel or ".." in parts or ":" in rel:
                raise ValueError(f"file path {rel[:80]!r} leaves the bundle folder")
        return value


_MODEL_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


@dataclass(frozen=True)
class BundleSpec:
    """Everything a bundle is made of, handed over by the batch pipeline.

    Attributes:
        items: the catalog in item_index order; `raw_item_id` required, `title`,
            `category`, `brand`, `price`, `in_stock` filled with nulls when missing.
        users: `raw_user_id` in user_index order.
        histories: CSR (n_users, n_items) of weighted interactions from all accepted
            events (not only the train split): what serving treats as a user's history.
        components: role -> (registered model name, fitted model folder). Roles
            "recommender" and "popular" are required unless "search" is present (a
            shop without events); "similar", "ranker" (the click model) and "session"
            (the session model for inline histories) are optional.
        metrics: evaluation metrics to show next to the version.
        data_fingerprint: hash of the input data.
        lineage: run_id, config_hash, code_version, library_versions, data cutoff time.
        project: the project name from the config.
        sequences: every user's items in time order (read by sequential models).
        event_weights: the weight of each event type in `histories` (config
            `models.event_weights`), so that serving weighs live events as training
            weighed past ones; None writes no file (serving then uses the defaults).
        repeat_policy: "exclude" or "allow" (the evaluate stage's resolved policy);
            None writes no file (serving then excludes seen items).
        audience: a folder written by `package.audience.write_audience`, copied in as
            `audience/` (audiences for a product); None writes none.
    """

    items: pl.DataFrame
    users: pl.DataFrame
    histories: sp.csr_matrix
    components: dict[str, tuple[str, Path]]
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    lineage: dict[str, Any] = field(default_factory=dict)
    project: str = "shop"
    sequences: Sequences | None = None
    event_weights: Mapping[EventType, float] | None = None
    repeat_policy: str | None = None
    audience: Path | None = None


def write_bundle(spec: BundleSpec, out: Path, *, key: bytes | None = None) -> BundleManifest:
    """Write a bundle into `out`, an empty (or missing) folder.

    The caller makes the folder appear atomically (e.g. with `staged_folder`);
    `manifest.json` is written last, after its `signature` when signed.

    Args:
        spec: the bundle's content.
        out: destination folder; created when missing, must be empty otherwise.
        key: an HMAC key (`package.integrity.signing_key`) to sign the bundle with;
            None writes no signature.

    Returns:
        The manifest that was written.

    Raises:
        ArtifactError: `out` is not empty, or the spec is inconsistent (missing roles,
            duplicate ids, history shape not matching the id tables, a model folder
            missing, one model name bound to two different folders, an event weight
            of an unknown type or not a finite number).
    """
    if out.exists() and any(out.iterdir()):
        raise ArtifactError(f"bundle folder {out} is not empty; write bundles into a new folder")
    items = _checked_items(spec.items)
    users = _checked_users(spec.users)
    histories = sp.csr_matrix(spec.histories)
    if histories.shape != (users.height, items.height):
        raise ArtifactError(
            f"histories has shape {histories.shape} but the bundle has {users.height} users "
            f"and {items.height} items; build it from the same id maps"
        )
    models = _checked_components(spec.components)
    event_weights = (
        None if spec.event_weights is None else _checked_event_weights(spec.event_weights)
    )

    if spec.repeat_policy is not None and spec.repeat_policy not in SERVED_REPEAT_POLICIES:
        raise ArtifactError(
            f"repeat policy {spec.repeat_policy!r} is not one a bundle serves "
            f"({', '.join(SERVED_REPEAT_POLICIES)}); resolve `learn` before packaging"
        )

    out.mkdir(parents=True, exist_ok=True)
    write_parquet(items, out / ITEMS_FILE)
    write_parquet(users, out / USERS_FILE)
    write_csr(out / HISTORIES_FILE, histories)
    if spec.sequences is not None:
        spec.sequences.save(out / SEQUENCES_FILE)
    if event_weights is not None:
        weights = {kind.value: weight for kind, weight in event_weights.items()}
        atomic_write_json(out / EVENT_WEIGHTS_FILE, weights)
    if spec.repeat_policy is not None:
        atomic_write_json(out / REPEAT_POLICY_FILE, {"policy": spec.repeat_policy})
    for name, folder in sorted(models.items()):
        shutil.copytree(folder, out / MODELS_DIR / name)
    if spec.audience is not None:
        shutil.copytree(spec.audience, out / "audience")  # package.audience.AUDIENCE_DIR

    files = bundle_files(out)
    manifest = BundleManifest(
        project=spec.project,
        created_at=datetime.now(UTC),
        fingerprint="",
        files=files,
        components={role: name for role, (name, _) in spec.components.items()},
        metrics=spec.metrics,
        data_fingerprint=spec.data_fingerprint,
        lineage=spec.lineage,
        n_items=items.height,
        n_users=users.height,
    )
    # the digests are taken from the JSON that is written, so reading it back matches
    document = manifest.model_dump(mode="json")
    document["fields"] = field_digests(document)
    document["fingerprint"] = fingerprint_v2(files, document["fields"])
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if key is not None:
        signature = signature_document(text.encode("utf-8"), key)
        atomic_write_json(out / SIGNATURE_FILE, signature)
    atomic_write_text(out / MANIFEST, text)
    return BundleManifest.model_validate(document)


def bundle_files(folder: Path) -> dict[str, str]:
    """sha256 of every file of a bundle but its own `manifest.json` and `signature`."""
    return {
        file.relative_to(folder).as_posix(): sha256_file(file)
        for file in sorted(folder.rglob("*"))
        if file.is_file() and file.relative_to(folder).as_posix() not in _UNLISTED
    }


_UNLISTED: Final = frozenset({MANIFEST, SIGNATURE_FILE})


def read_bundle_manifest(path: Path) -> BundleManifest:
    """Read a bundle's manifest without checking file hashes.

    Raises:
        BundleNotFoundError: `path` is not a folder.
        ManifestError: the manifest is missing, unreadable or not a bundle manifest.
    """
    return _read_manifest(path)[0]


def _read_manifest(path: Path) -> tuple[BundleManifest, bytes]:
    """The manifest, and the exact bytes it was read from (what a signature covers)."""
    if not path.is_dir():
        raise BundleNotFoundError(f"no bundle folder at {path}; run `shelfwise run` first")
    manifest_path = path / MANIFEST
    try:
        data = manifest_path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            f"{path} has no {MANIFEST}: not a bundle, or its writer was interrupted"
        ) from None
    try:
        return BundleManifest.model_validate_json(data), data
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ManifestError(f"{manifest_path} is not a valid bundle manifest: {problems}") from None


def verify_bundle(
    path: Path, *, key: bytes | None | Literal["environment"] = "environment"
) -> BundleManifest:
    """Check a bundle before anything in it is loaded (see `package.integrity`).

    Re-hashes every file and compares with the manifest; checks that no manifest field
    was edited (schema 2) and the fingerprint over both; checks the signature when a
    key is configured; reads every `.npy` header and refuses object arrays and pickle
    files. Nothing of the bundle is unpickled or executed on the way.

    Args:
        path: the bundle folder.
        key: the HMAC key signatures must match; "environment" (the default) reads
            `SHELFWISE_BUNDLE_SIGNING_KEY`, None accepts unsigned bundles.

    Returns:
        The manifest, when every check passes.

    Raises:
        IntegrityError: a file is missing, changed, not listed, a pickle or an object
            array; a manifest field was edited (names it); the fingerprint does not
            match; the signature is missing, another key's or wrong.
        BundleNotFoundError, ManifestError: as for `read_bundle_manifest`.
        ConfigError: the configured signing key is too weak.
    """
    manifest, data = _read_manifest(path)
    secret = signing_key() if key == "environment" else key
    old_scheme = manifest.schema_version == 1
    # schema 1 listed files as `hash_tree` does; schema 2 lists nested manifest.json too
    actual = hash_tree(path) if old_scheme else bundle_files(path)
    missing = sorted(set(manifest.files) - set(actual))
    if missing:
        raise IntegrityError(f"bundle {path} is missing {_names(missing)}; rebuild the bundle")
    extra = sorted(set(actual) - set(manifest.files))
    if extra:
        raise IntegrityError(
            f"bundle {path} holds files not in its manifest: {_names(extra)}; remove them "
            "or rebuild the bundle"
        )
    changed = sorted(rel for rel, digest in manifest.files.items() if actual[rel] != digest)
    if changed:
        raise IntegrityError(
            f"bundle {path}: sha256 of {_names(changed)} does not match the manifest; the "
            "file was modified or damaged, rebuild or re-publish the bundle"
        )
    if old_scheme:
        expected = fingerprint_v1(manifest.files, manifest.components)
    else:
        check_fields(path, json.loads(data), manifest.fields)
        expected = fingerprint_v2(manifest.files, manifest.fields)
    if expected != manifest.fingerprint:
        raise IntegrityError(
            f"bundle {path}: manifest fingerprint {manifest.fingerprint[:12]} does not match "
            f"its files and fields ({expected[:12]}); the manifest was edited, rebuild or "
            "re-publish the bundle"
        )
    if secret is not None:
        check_signature(path, data, secret)
    check_arrays(path, manifest.files)
    return manifest


def check_unhashed_bundle(
    path: Path, *, key: bytes | None | Literal["environment"] = "environment"
) -> BundleManifest:
    """The checks that stay on when file hashing is off (`serve.verify_bundle: false`).

    Re-hashing a large bundle costs seconds at every load, so a server may skip it; it
    still refuses what could run code or was not signed: the signature is checked when a
    key is configured, and every `.npy` header is read to refuse object arrays and
    pickles (headers only: milliseconds).

    Raises:
        IntegrityError: a wrong or missing signature (with a key), a pickle or an object
            array.
        BundleNotFoundError, ManifestError: as for `read_bundle_manifest`.
        ConfigError: the configured signing key is too weak.
    """
    manifest, data = _read_manifest(path)
    secret = signing_key() if key == "environment" else key
    if secret is not None:
        check_signature(path, data, secret)
    check_arrays(path, manifest.files)
    return manifest


def read_event_weights(path: Path) -> dict[EventType, float] | None:
    """The event weights a bundle's histories were built with; None when it has none.

    Raises:
        ArtifactError: the file is not a JSON object of known event types to numbers.
    """
    file = path / EVENT_WEIGHTS_FILE
    if not file.is_file():
        return None
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{file} is not readable JSON ({exc}); rebuild the bundle") from None
    if not isinstance(raw, dict):
        raise ArtifactError(f"{file} holds no object of event type -> weight; rebuild the bundle")
    return _checked_event_weights(raw, source=str(file))


def read_repeat_policy(path: Path) -> str:
    """The bundle's repeat policy: "allow" or "exclude" ("exclude" without the file).

    Raises:
        ArtifactError: the file holds no known policy.
    """
    file = path / REPEAT_POLICY_FILE
    if not file.is_file():
        return "exclude"
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{file} is not readable JSON ({exc}); rebuild the bundle") from None
    policy = raw.get("policy") if isinstance(raw, dict) else None
    if policy not in SERVED_REPEAT_POLICIES:
        raise ArtifactError(
            f"{file} names repeat policy {policy!r}, not one of "
            f"{', '.join(SERVED_REPEAT_POLICIES)}; rebuild the bundle"
        )
    return str(policy)


def model_folder(bundle: Path, manifest: BundleManifest, role: str) -> tuple[str, Path] | None:
    """(model name, folder) of the model serving `role`, or None when the role is absent."""
    name = manifest.components.get(role)
    if name is None:
        return None
    return name, bundle / MODELS_DIR / name


# --- checks --------------------------------------------------------------------------


def _names(paths: list[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    more = len(paths) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown


def _checked_items(items: pl.DataFrame) -> pl.DataFrame:
    if RAW_ITEM_ID not in items.columns:
        raise ArtifactError(f"items has no {RAW_ITEM_ID!r} column (columns: {items.columns})")
    if items.height == 0:
        raise ArtifactError("items is empty; a bundle needs at least one item")
    if items[RAW_ITEM_ID].null_count() or items[RAW_ITEM_ID].n_unique() != items.height:
        raise ArtifactError(f"items.{RAW_ITEM_ID} has nulls or duplicates; ids must be unique")
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in ITEM_COLUMNS.items()
        if name not in items.columns
    ]
    frame = items.with_columns(missing) if missing else items
    casts = [pl.col(name).cast(dtype) for name, dtype in ITEM_COLUMNS.items()]
    rest = [name for name in frame.columns if name not in ITEM_COLUMNS]
    try:
        return frame.with_columns(casts).select([*ITEM_COLUMNS, *rest])
    except pl.exceptions.PolarsError as exc:
        raise ArtifactError(f"items columns have unexpected types: {exc}") from None


def _checked_users(users: pl.DataFrame) -> pl.DataFrame:
    if RAW_USER_ID not in users.columns:
        raise ArtifactError(f"users has no {RAW_USER_ID!r} column (columns: {users.columns})")
    column = users[RAW_USER_ID].cast(pl.String())
    if column.null_count() or column.n_unique() != users.height:
        raise ArtifactError(f"users.{RAW_USER_ID} has nulls or duplicates; ids must be unique")
    return users.with_columns(column)


def _checked_event_weights(
    weights: Mapping[Any, Any], *, source: str = "event_weights"
) -> dict[EventType, float]:
    known = {kind.value: kind for kind in EventType}
    checked: dict[EventType, float] = {}
    for name, weight in weights.items():
        kind = known.get(str(name))
        if kind is None:
            raise ArtifactError(
                f"{source}: unknown event type {str(name)[:40]!r}; known: {sorted(known)}"
            )
        # bool is an int to Python, never a weight
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ArtifactError(f"{source}: weight of {kind.value!r} is not a number")
        if not math.isfinite(weight):
            raise ArtifactError(f"{source}: weight of {kind.value!r} is {weight}, not finite")
        checked[kind] = float(weight)
    return checked


def _checked_components(components: dict[str, tuple[str, Path]]) -> dict[str, Path]:
    unknown = sorted(set(components) - set(KNOWN_ROLES))
    if unknown:
        raise ArtifactError(f"unknown bundle roles {unknown}; known: {list(KNOWN_ROLES)}")
    missing = [role for role in REQUIRED_ROLES if role not in components]
    if missing and ROLE_SEARCH not in components:
        raise ArtifactError(
            f"a bundle needs models for roles {missing}, or a search index (search-only shop)"
        )
    models: dict[str, Path] = {}
    for role, (name, folder) in sorted(components.items()):
        if not name or "/" in name or name.startswith("."):
            raise ArtifactError(f"role {role!r}: {name!r} is not a valid model name")
        if not folder.is_dir():
            raise ArtifactError(f"role {role!r}: model folder {folder} does not exist")
        previous = models.setdefault(name, folder)
        if previous.resolve() != folder.resolve():
            raise ArtifactError(
                f"model {name!r} comes from two folders ({previous} and {folder}); a model "
                "name must name one fitted model per bundle"
            )
    return models
