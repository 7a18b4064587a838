"""What a bundle's integrity covers: its files, its manifest's meaning, and who wrote it.

Schema 2 (`BUNDLE_SCHEMA_VERSION`) of the manifest records, next to the sha256 of
every file (`files`), the sha256 of every manifest field (`fields`: `project`,
`n_items`, `metrics`, ..., and each lineage key on its own, `lineage.data_cutoff_timestamp`)
as canonical JSON. The fingerprint hashes both lists, so editing a field of
`manifest.json` is caught and named (`check_fields`), just as editing a file is.

Two fields stay out of the fingerprint, though `fields` still records them:
`created_at` and `lineage.run_id` say when and by which run a bundle was written, not
what it is. Leaving them out keeps the fingerprint a content identity: a run resumed
after a kill, a cached rerun and an uninterrupted run of the same inputs give the same
fingerprint, which is how the registry recognises a version it already holds.

Schema 1 bundles (the fingerprint over the files and components only) are still
verified their own way (`fingerprint_v1`): they cannot be re-fingerprinted without
trusting their manifest, which is what verification must not do.

Hashes alone stop accidents and naive edits, not someone who re-hashes consistently.
That needs a secret: when `SHELFWISE_BUNDLE_SIGNING_KEY` is set, the package stage
writes `signature`, an HMAC-SHA256 of the exact bytes of `manifest.json` (which pins
every file's hash and every field), and loading refuses a bundle whose signature is
missing, made with another key, or does not match. Without the variable nothing is
signed or required. HMAC rather than a key pair: the same operator holds the training
and the serving side, and the standard library does it (`hmac`, constant-time compare).

Object arrays only load through pickle, which runs code: `check_arrays` reads the
header of every `.npy` (alone or inside an `.npz`) without loading any data, and
refuses object dtypes and pickle files before any model code touches the bundle.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from shelfwise.errors import ConfigError, IntegrityError
from shelfwise.settings import BUNDLE_SIGNING_KEY as SIGNING_KEY_VARIABLE

SIGNATURE_FILE: Final = "signature"
SIGNATURE_SCHEME: Final = "hmac-sha256"
MIN_KEY_BYTES: Final = 32
# When and by which run a bundle was written: recorded, not part of its identity.
VOLATILE_FIELDS: Final = frozenset({"created_at", "lineage.run_id"})
# Manifest keys that are the integrity record itself, not fields it covers.
_RECORD_KEYS: Final = frozenset({"fingerprint", "fields", "files"})
_NESTED: Final = ("lineage",)
_PICKLE_SUFFIXES: Final = frozenset({".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt"})
_NPY_MAGIC: Final = b"\x93NUMPY"
_MAX_NPY_HEADER: Final = 1 << 16  # numpy's own reader stops at 10,000 bytes


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def field_digests(manifest: Mapping[str, Any]) -> dict[str, str]:
    """sha256 of every manifest field (lineage keys one by one), as written in JSON.

    Args:
        manifest: the manifest as a JSON document (`model_dump(mode="json")`, or the
            parsed `manifest.json`); `fingerprint`, `fields` and `files` are skipped.
    """
    digests: dict[str, str] = {}
    for key, value in manifest.items():
        if key in _RECORD_KEYS:
            continue
        if key in _NESTED and isinstance(value, Mapping):
            for inner, inner_value in value.items():
                digests[f"{key}.{inner}"] = _sha256(canonical_json(inner_value))
        else:
            digests[key] = _sha256(canonical_json(value))
    return digests


def fingerprint_v2(files: Mapping[str, str], fields: Mapping[str, str]) -> str:
    """Schema 2: sha256 over the (path, sha256) and (field, sha256) pairs, volatile out."""
    payload = {
        "files": sorted(files.items()),
        "fields": sorted((k, v) for k, v in fields.items() if k not in VOLATILE_FIELDS),
    }
    return _sha256(canonical_json(payload))


def fingerprint_v1(files: Mapping[str, str], components: Mapping[str, str]) -> str:
    """Schema 1: sha256 over the (path, sha256) and role -> model pairs only."""
    payload = {"files": sorted(files.items()), "components": sorted(components.items())}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return _sha256(text)


def check_fields(where: Path, document: Mapping[str, Any], recorded: Mapping[str, str]) -> None:
    """Compare the manifest's fields with the digests it recorded when written.

    Raises:
        IntegrityError: a field was changed, added or removed; the message names it.
    """
    actual = field_digests(document)
    changed = sorted(k for k in actual.keys() & recorded.keys() if actual[k] != recorded[k])
    added = sorted(actual.keys() - recorded.keys())
    removed = sorted(recorded.keys() - actual.keys())
    problems = [
        *(f"{name} was changed" for name in changed),
        *(f"{name} was added" for name in added),
        *(f"{name} was removed" for name in removed),
    ]
    if problems:
        raise IntegrityError(
            f"bundle {where}: manifest.json was edited after the bundle was written: "
            f"{'; '.join(problems[:5])}; rebuild or re-publish the bundle instead of "
            "editing its manifest"
        )


# --- signing -------------------------------------------------------------------------


def signing_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The bundle signing key from `SHELFWISE_BUNDLE_SIGNING_KEY`, or None when unset.

    Raises:
        ConfigError: the key is shorter than 32 bytes or one character repeated.
    """
    text = (os.environ if environ is None else environ).get(SIGNING_KEY_VARIABLE, "")
    if not text:
        return None
    key = text.encode("utf-8")
    if len(key) < MIN_KEY_BYTES or len(set(key)) == 1:
        raise ConfigError(
            f"{SIGNING_KEY_VARIABLE} holds {len(key)} bytes"
            f"{' of one repeated character' if len(set(key)) == 1 else ''}; an HMAC key "
            f"needs at least {MIN_KEY_BYTES} random bytes, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return key


def key_id(key: bytes) -> str:
    """A short name of a key for messages (8 hex digits of its sha256; reveals nothing)."""
    return hashlib.sha256(key).hexdigest()[:8]


def signature_document(manifest_bytes: bytes, key: bytes) -> dict[str, str]:
    """The `signature` file's content: the HMAC-SHA256 of the manifest's exact bytes."""
    return {
        "scheme": SIGNATURE_SCHEME,
        "key_id": key_id(key),
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "hmac": hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest(),
    }


def check_signature(where: Path, manifest_bytes: bytes, key: bytes) -> None:
    """Require a `signature` made with `key` over these manifest bytes.

    Raises:
        IntegrityError: no signature, an unreadable one, another key's, or a mismatch.
    """
    path = where / SIGNATURE_FILE
    expected = signature_document(manifest_bytes, key)
    if not path.is_file():
        raise IntegrityError(
            f"bundle {where} is not signed, and {SIGNING_KEY_VARIABLE} is set (key "
            f"{expected['key_id']}): only signed bundles load; build it with the key set, "
            "or unset the variable to accept unsigned bundles"
        )
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        scheme, mac, their_key = found["scheme"], found["hmac"], found["key_id"]
    except (OSError, ValueError, KeyError, TypeError):
        raise IntegrityError(
            f"bundle {where}: {SIGNATURE_FILE} is not a shelfwise signature; rebuild the "
            "bundle with the signing key set"
        ) from None
    if scheme != SIGNATURE_SCHEME:
        raise IntegrityError(
            f"bundle {where}: signature scheme {str(scheme)[:40]!r} is not {SIGNATURE_SCHEME}"
        )
    if their_key != expected["key_id"]:
        raise IntegrityError(
            f"bundle {where} was signed with key {str(their_key)[:16]}, not the configured "
            f"key {expected['key_id']}; sign it again with the serving key or set that key"
        )
    if not hmac.compare_digest(str(mac), expected["hmac"]):
        raise IntegrityError(
            f"bundle {where}: the signature does not match manifest.json; the manifest was "
            "changed after signing: rebuild or re-publish the bundle"
        )


# --- arrays without pickle -----------------------------------------------------------


def check_arrays(where: Path, files: Iterable[str]) -> None:
    """Refuse pickle files and object arrays, reading only `.npy` headers.

    Raises:
        IntegrityError: a listed file is a pickle, or a `.npy` (alone or in an `.npz`)
            holds an object dtype or an unreadable header.
    """
    for rel in sorted(files):
        suffix = Path(rel).suffix.lower()
        if suffix in _PICKLE_SUFFIXES:
            raise IntegrityError(
                f"bundle {where} holds {rel}, a pickle file; shelfwise never unpickles "
                "model files: rebuild the bundle"
            )
        if suffix == ".npy":
            with (where / rel).open("rb") as handle:
                _check_npy(where, rel, handle)
        elif suffix == ".npz":
            try:
                archive = zipfile.ZipFile(where / rel)
            except zipfile.BadZipFile:
                raise IntegrityError(f"bundle {where}: {rel} is not an .npz archive") from None
            with archive:
                for member in archive.namelist():
                    if member.endswith(".npy"):
                        with archive.open(member) as handle:
                            _check_npy(where, f"{rel}:{member}", handle)


def _check_npy(where: Path, name: str, handle: IO[bytes]) -> None:
    """Parse a `.npy` header as numpy does (a dict literal) and refuse object dtypes."""
    magic = handle.read(8)
    if len(magic) < 8 or not magic.startswith(_NPY_MAGIC):
        raise IntegrityError(f"bundle {where}: {name} is not a .npy array")
    width = 2 if magic[6] == 1 else 4  # format 1.0: uint16 length; 2.0 and 3.0: uint32
    length = int.from_bytes(handle.read(width), "little")
    if length > _MAX_NPY_HEADER:
        raise IntegrityError(f"bundle {where}: {name} has a {length}-byte header; refused")
    header = handle.read(length).decode("utf-8" if magic[6] >= 3 else "latin-1")
    try:
        # literal_eval reads literals only: it never runs code
        descr = ast.literal_eval(header)["descr"]
        dtype = np.lib.format.descr_to_dtype(descr)
    except (ValueError, SyntaxError, KeyError, TypeError):
        raise IntegrityError(f"bundle {where}: {name} has an unreadable .npy header") from None
    if dtype.hasobject:
        raise IntegrityError(
            f"bundle {where}: {name} holds an object array ({dtype}), which only pickle can "
            "load; refused without loading it: rebuild the bundle"
        )
