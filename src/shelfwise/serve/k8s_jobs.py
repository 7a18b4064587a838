"""Start the retraining CronJob's Job now, from inside the cluster (no kubectl needed).

In Kubernetes the serving image has no training stack, so `POST /v1/admin/retrain`
does what `kubectl create job --from=cronjob/<name>` does: read the CronJob, and create
a Job from its `jobTemplate` (owned by the CronJob, labelled with the trigger) through
the API server, with the pod's service-account token. It needs a Role allowing `get`
on that CronJob and `create` / `list` on Jobs (rendered by `shelfwise deploy render`).
One retrain at a time: a Job of the CronJob still running answers "already-running".

Only the Python standard library is used (urllib + ssl), so the online role stays light.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shelfwise.errors import KubernetesApiError

SERVICE_ACCOUNT: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TRIGGER_LABEL: Final = "shelfwise.io/retrain-trigger"
CRONJOB_LABEL: Final = "shelfwise.io/from-cronjob"


@dataclass(frozen=True)
class InClusterApi:
    """The API server as seen from a pod: address, token, CA bundle and namespace."""

    base_url: str
    token: str
    namespace: str
    ca_file: Path | None

    @classmethod
    def from_pod(cls, account: Path = SERVICE_ACCOUNT) -> InClusterApi:
        """Read the mounted service account (needs automountServiceAccountToken: true)."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        try:
            token = (account / "token").read_text().strip()
            namespace = (account / "namespace").read_text().strip()
        except OSError:
            raise KubernetesApiError(
                f"no service-account token under {account}: the pod needs "
                "automountServiceAccountToken: true to start retraining Jobs"
            ) from None
        if not host:
            raise KubernetesApiError("KUBERNETES_SERVICE_HOST is not set: not in a pod?")
        ca = account / "ca.crt"
        return cls(f"https://{host}:{port}", token, namespace, ca if ca.is_file() else None)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One JSON request; errors carry the API server's message."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        context = None
        if self.base_url.startswith("https://"):
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise KubernetesApiError(
                f"{method} {path}: HTTP {exc.code} {detail} (check the Role of the serving "
                "service account)"
            ) from None
        except OSError as exc:
            raise KubernetesApiError(f"{method} {path}: {exc}") from None


def job_from_cronjob(cronjob: dict[str, Any], *, trigger: str, alerts: list[str]) -> dict[str, Any]:
    """The Job `kubectl create job --from=cronjob/NAME` would make, labelled with the trigger."""
    meta = cronjob["metadata"]
    template = cronjob["spec"]["jobTemplate"]
    labels = {
        **(template.get("metadata", {}).get("labels") or {}),
        TRIGGER_LABEL: trigger,
        CRONJOB_LABEL: meta["name"],
    }
    annotations = {
        **(template.get("metadata", {}).get("annotations") or {}),
        "cronjob.kubernetes.io/instantiate": "manual",
        "shelfwise.io/alerts": ",".join(alerts)[:250],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"{meta['name'][:40]}-{trigger[:10]}-",
            "namespace": meta.get("namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }


def start_retrain_job(
    cronjob: str, *, trigger: str, alerts: list[str], api: InClusterApi | None = None
) -> tuple[str, str]:
    """("started" | "already-running", Job name) for the CronJob's retraining Job.

    Raises:
        KubernetesApiError: not in a pod, RBAC refused, or the API is unreachable.
    """
    client = api or InClusterApi.from_pod()
    base = f"/apis/batch/v1/namespaces/{client.namespace}"
    for job in client.request("GET", f"{base}/jobs").get("items", []):
        owners = job["metadata"].get("ownerReferences") or []
        mine = any(o.get("kind") == "CronJob" and o.get("name") == cronjob for o in owners)
        if mine and (job.get("status") or {}).get("active"):  # scheduled or triggered
            return "already-running", str(job["metadata"]["name"])
    definition = client.request("GET", f"{base}/cronjobs/{cronjob}")
    created = client.request(
        "POST", f"{base}/jobs", job_from_cronjob(definition, trigger=trigger, alerts=alerts)
    )
    return "started", str(created["metadata"]["name"])
