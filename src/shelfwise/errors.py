"""The shelfwise exception tree and its stable error codes.

```
ShelfwiseError                              code                 HTTP
├── ConfigError(ValueError)                 config-invalid       500
│   └── PrivacyKeyError                     privacy-key          500
├── DataError(ValueError)
│   ├── InputFileError                      input-file           400
│   │   └── DamagedFileError                input-damaged        400
│   ├── SchemaError                         schema-mismatch      400
│   ├── RejectedShareError                  too-many-rejected    400
│   ├── EmptyDataError                      empty-data           400
│   └── RowDropError                        row-count-drop       400
├── PipelineError(RuntimeError)
│   ├── StageError                          stage-failed         500
│   └── ResumeError                         resume-impossible    400
├── ArtifactError(RuntimeError)
│   ├── ManifestError                       manifest-invalid     500
│   └── IntegrityError                      integrity-check      500
├── UnknownIdError(LookupError)
│   ├── UnknownUserError                    unknown-user         404
│   └── UnknownItemError                    unknown-item         404
├── BundleNotFoundError(LookupError)        bundle-not-found     404
├── ModelNotAvailableError(LookupError)     model-not-available  404
├── NotConfiguredError(LookupError)         not-configured       404
├── NotReadyError(RuntimeError)             not-ready            503
├── EventLogError(RuntimeError)             event-log-unavailable 503
├── ReloadInProgressError(RuntimeError)      reload-in-progress   409
├── UnauthorizedError(PermissionError)      unauthorized         401
├── MetricsUnavailableError(RuntimeError)   metrics-unavailable  503
├── KubernetesApiError(RuntimeError)        kubernetes-api       502
├── ComputeError(RuntimeError)              compute              500
│   ├── ComputeUnavailableError             compute-unavailable  503
│   └── ComputeTaskError                    compute-task-failed  500
├── RegistryError(RuntimeError)             registry             500
│   └── GateRefusedError                    gate-refused         500
├── ExperimentNotFoundError(LookupError)    experiment-not-found 404
├── ExperimentConflictError(RuntimeError)   experiment-conflict  409
└── RequestError(ValueError)                invalid-request      422
```

Every class has a stable kebab-case `code`; `ERROR_CODE_TO_HTTP_STATUS` maps codes to
HTTP statuses and the API answers with `{"code": ..., "message": ...}`. Messages say
what went wrong, with the values, and what to do about it. They must never carry
secrets or raw request payloads.
"""

from __future__ import annotations

from typing import ClassVar, Final


class ShelfwiseError(Exception):
    """Root of all errors raised on purpose by shelfwise."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ShelfwiseError, ValueError):
    """The configuration file, environment or flags are invalid."""

    code = "config-invalid"


class PrivacyKeyError(ConfigError):
    """User ids must be pseudonymised (or forgotten) but SHELFWISE_PRIVACY_KEY is unset or weak."""

    code = "privacy-key"


class DataError(ShelfwiseError, ValueError):
    """Input data cannot be used."""

    code = "data-invalid"


class InputFileError(DataError):
    """An input file is missing, unreadable, or in an unsupported format."""

    code = "input-file"


class DamagedFileError(InputFileError):
    """A compressed or Parquet file is cut off or corrupt (named with the byte offset)."""

    code = "input-damaged"


class SchemaError(DataError):
    """Required columns are missing after the column mapping."""

    code = "schema-mismatch"


class RejectedShareError(DataError):
    """Validation rejected more rows than the configured threshold allows."""

    code = "too-many-rejected"


class EmptyDataError(DataError):
    """Nothing is left to train or evaluate on."""

    code = "empty-data"


class RowDropError(DataError):
    """A source's accepted rows fell sharply against the previous complete run."""

    code = "row-count-drop"


class PipelineError(ShelfwiseError, RuntimeError):
    """The pipeline runner failed."""

    code = "pipeline-failed"


class StageError(PipelineError):
    """A stage failed; the message names the stage."""

    code = "stage-failed"


class ResumeError(PipelineError):
    """`--resume` or `--from-stage` cannot continue the requested run."""

    code = "resume-impossible"


class ArtifactError(ShelfwiseError, RuntimeError):
    """An artifact folder or bundle is damaged."""

    code = "artifact-invalid"


class ManifestError(ArtifactError):
    """A manifest.json is missing or unreadable."""

    code = "manifest-invalid"


class IntegrityError(ArtifactError):
    """A file's sha256 does not match its manifest."""

    code = "integrity-check"


class UnknownIdError(ShelfwiseError, LookupError):
    """An id is not known to the model."""

    code = "unknown-id"


class UnknownUserError(UnknownIdError):
    """A raw user id is not in the id map."""

    code = "unknown-user"


class UnknownItemError(UnknownIdError):
    """A raw item id is not in the catalog."""

    code = "unknown-item"


class BundleNotFoundError(ShelfwiseError, LookupError):
    """No bundle exists at the given path or version."""

    code = "bundle-not-found"


class ModelNotAvailableError(ShelfwiseError, LookupError):
    """The loaded bundle has no model for the request (e.g. no click model)."""

    code = "model-not-available"


class NotConfiguredError(ShelfwiseError, LookupError):
    """The server is not set up for the request (no registry, no retrain command)."""

    code = "not-configured"


class NotReadyError(ShelfwiseError, RuntimeError):
    """The service has no model loaded yet."""

    code = "not-ready"


class UnauthorizedError(ShelfwiseError, PermissionError):
    """An admin request without the right bearer token."""

    code = "unauthorized"


class EventLogError(ShelfwiseError, RuntimeError):
    """The durable event log cannot be written: events are refused, never half-accepted."""

    code = "event-log-unavailable"


class ReloadInProgressError(ShelfwiseError, RuntimeError):
    """A model bundle is being loaded: the server loads one at a time (retry later)."""

    code = "reload-in-progress"


class MetricsUnavailableError(ShelfwiseError, RuntimeError):
    """Live KPIs cannot be read (Prometheus, or a server's /metrics)."""

    code = "metrics-unavailable"


class KubernetesApiError(ShelfwiseError, RuntimeError):
    """The Kubernetes API refused or could not be reached (RBAC, network, not in a pod)."""

    code = "kubernetes-api"


class ComputeError(ShelfwiseError, RuntimeError):
    """The compute engine (`compute:`, e.g. Ray) failed."""

    code = "compute"


class ComputeUnavailableError(ComputeError):
    """The configured engine cannot be used: Ray is not installed or unreachable."""

    code = "compute-unavailable"


class ComputeTaskError(ComputeError):
    """A block of work was lost (its worker or node died) more often than retries allow."""

    code = "compute-task-failed"


class RegistryError(ShelfwiseError, RuntimeError):
    """The model registry (MLflow) cannot do what was asked: unknown version, no alias."""

    code = "registry"


class GateRefusedError(RegistryError):
    """The promotion gate refused a model version (the CLI exits with `EXIT_GATE`)."""

    code = "gate-refused"


class ExperimentNotFoundError(ShelfwiseError, LookupError):
    """No experiment of that name on this server."""

    code = "experiment-not-found"


class ExperimentConflictError(ShelfwiseError, RuntimeError):
    """An experiment cannot start: its name or its endpoints are taken, or a variant's
    version is not loaded."""

    code = "experiment-conflict"


class RequestError(ShelfwiseError, ValueError):
    """An API request is invalid."""

    code = "invalid-request"


ERROR_CODE_TO_HTTP_STATUS: Final[dict[str, int]] = {
    ShelfwiseError.code: 500,
    ConfigError.code: 500,
    PrivacyKeyError.code: 500,
    DataError.code: 400,
    InputFileError.code: 400,
    DamagedFileError.code: 400,
    SchemaError.code: 400,
    RejectedShareError.code: 400,
    EmptyDataError.code: 400,
    RowDropError.code: 400,
    PipelineError.code: 500,
    StageError.code: 500,
    ResumeError.code: 400,
    ArtifactError.code: 500,
    ManifestError.code: 500,
    IntegrityError.code: 500,
    UnknownIdError.code: 404,
    UnknownUserError.code: 404,
    UnknownItemError.code: 404,
    BundleNotFoundError.code: 404,
    ModelNotAvailableError.code: 404,
    NotConfiguredError.code: 404,
    NotReadyError.code: 503,
    EventLogError.code: 503,
    ReloadInProgressError.code: 409,
    UnauthorizedError.code: 401,
    MetricsUnavailableError.code: 503,
    KubernetesApiError.code: 502,
    ComputeError.code: 500,
    ComputeUnavailableError.code: 503,
    ComputeTaskError.code: 500,
    RegistryError.code: 500,
    GateRefusedError.code: 500,
    ExperimentNotFoundError.code: 404,
    ExperimentConflictError.code: 409,
    RequestError.code: 422,
    "not-found": 404,  # unknown route
    "payload-too-large": 413,  # request body over the server's limit
    "method-not-allowed": 405,
}

# Exit codes of the CLI, stable for scripts and CI.
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1  # any ShelfwiseError not listed below
EXIT_USAGE: Final = 2  # bad flags (Typer/Click)
EXIT_CONFIG: Final = 3
EXIT_DATA: Final = 4
EXIT_GATE: Final = 5  # the promotion gate refused the new model version


def exit_code_for(error: ShelfwiseError) -> int:
    """The CLI exit code for an error."""
    if isinstance(error, ConfigError):
        return EXIT_CONFIG
    if isinstance(error, DataError):
        return EXIT_DATA
    if isinstance(error, GateRefusedError):
        return EXIT_GATE
    return EXIT_ERROR
