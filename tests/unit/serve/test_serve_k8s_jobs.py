"""Retraining Jobs created from the CronJob through the Kubernetes API.

No cluster runs here: a small HTTP server on loopback answers the three API calls the
way the API server does (list Jobs, get the CronJob, create a Job), and the Job we send
is validated against the real Kubernetes schema in tests/unit/deploy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shelfwise.errors import KubernetesApiError
from shelfwise.serve.k8s_jobs import InClusterApi, job_from_cronjob, start_retrain_job

CRONJOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "shop-retrain", "namespace": "shop", "uid": "1234-abcd"},
    "spec": {
        "schedule": "0 3 * * *",
        "jobTemplate": {
            "spec": {
                "backoffLimit": 1,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "retrain", "image": "shop-batch:1", "args": ["retrain"]}
                        ],
                    }
                },
            }
        },
    },
}


class FakeApiServer:
    """Records requests; answers like the API server for jobs and cronjobs."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = jobs
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                outer.requests.append(("GET", self.path, dict(self.headers), None))
                if self.headers.get("Authorization") != "Bearer sa-token":
                    self._answer(401, {"message": "Unauthorized"})
                elif self.path == "/apis/batch/v1/namespaces/shop/jobs":
                    self._answer(200, {"items": outer.jobs})
                elif self.path == "/apis/batch/v1/namespaces/shop/cronjobs/shop-retrain":
                    self._answer(200, CRONJOB)
                else:
                    self._answer(404, {"message": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(("POST", self.path, dict(self.headers), body))
                created = {**body, "metadata": {**body["metadata"], "name": "shop-retrain-x1"}}
                self._answer(201, created)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def api(self) -> InClusterApi:
        host, port = self.server.server_address[:2]
        return InClusterApi(f"http://{host}:{port}", "sa-token", "shop", None)


@pytest.fixture
def make_server() -> Iterator[Any]:
    servers: list[FakeApiServer] = []

    def make(jobs: list[dict[str, Any]]) -> FakeApiServer:
        server = FakeApiServer(jobs)
        server.thread.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.server.shutdown()


def test_job_mirrors_the_cronjob_template_and_is_owned_by_it() -> None:
    job = job_from_cronjob(CRONJOB, trigger="alertmanager", alerts=["ShelfwiseDrift"])
    assert job["spec"] == CRONJOB["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "1234-abcd"
    assert job["metadata"]["labels"]["shelfwise.io/retrain-trigger"] == "alertmanager"
    assert job["metadata"]["annotations"]["shelfwise.io/alerts"] == "ShelfwiseDrift"
    assert job["metadata"]["generateName"].startswith("shop-retrain-")


def test_start_creates_one_job_with_the_token(make_server: Any) -> None:
    server = make_server([])
    assert start_retrain_job(
        "shop-retrain", trigger="alertmanager", alerts=["D"], api=server.api()
    ) == ("started", "shop-retrain-x1")
    method, path, headers, body = server.requests[-1]
    assert (method, path) == ("POST", "/apis/batch/v1/namespaces/shop/jobs")
    assert headers["Authorization"] == "Bearer sa-token"
    assert body["kind"] == "Job"


def test_a_running_job_of_the_cronjob_means_already_running(make_server: Any) -> None:
    owner = {"kind": "CronJob", "name": "shop-retrain"}
    active = {
        "metadata": {"name": "shop-retrain-28900", "ownerReferences": [owner]},
        "status": {"active": 1},
    }
    server = make_server([active])
    assert start_retrain_job("shop-retrain", trigger="manual", alerts=[], api=server.api()) == (
        "already-running",
        "shop-retrain-28900",
    )
    assert all(method == "GET" for method, *_ in server.requests)


def test_rbac_refusal_is_a_clear_error(make_server: Any) -> None:
    server = make_server([])
    api = InClusterApi(server.api().base_url, "wrong-token", "shop", None)
    with pytest.raises(KubernetesApiError, match="HTTP 401.*Role of the serving service account"):
        start_retrain_job("shop-retrain", trigger="manual", alerts=[], api=api)
