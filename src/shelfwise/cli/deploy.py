"""`shelfwise deploy render`: the deployment tree, filled from the config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shelfwise.cli.app import (
    ConfigOption,
    SetOption,
    console,
    guard,
    has_config,
    load_cli_config,
)
from shelfwise.errors import ConfigError

deploy_app = typer.Typer(
    help="Deployment files: container image, Kubernetes (Kustomize), docker-compose, CI/CD.",
    no_args_is_help=True,
)


@deploy_app.command("render")
def deploy_render(
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            help="k8s: Dockerfile + Kustomize base and overlays dev/prod/canary/ray (ray: "
            "run and retrain as KubeRay RayJobs) (docker/, k8s/). compose: Dockerfile + "
            "docker-compose with Redis, Prometheus, Grafana "
            "(docker/, compose/). ci: GitHub Actions, GitLab CI, Jenkinsfile (ci/). all.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Deploy root; each target writes its folders.")
    ],
    config: ConfigOption = None,
    sets: SetOption = None,
    image: Annotated[
        str | None,
        typer.Option(help="Image repository of the serving image (batch: IMAGE-batch)."),
    ] = None,
    tag: Annotated[
        str | None, typer.Option(help="Image tag (default: the package version).")
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Any other DeploySpec field, e.g. --param prod_replicas=5 --param "
            "retrain_schedule='0 2 * * *' (repeatable; see shelfwise.deploy.DeploySpec).",
        ),
    ] = None,
) -> None:
    """Write the deployment tree under OUT, filled from the config (project, port).

    Build the images from the repository root with the rendered Dockerfile, then apply an
    overlay: `kubectl apply -k OUT/k8s/overlays/dev` (or `docker compose -f
    OUT/compose/compose.yaml up`). Files are overwritten; others are left alone.
    """
    from shelfwise.deploy import TARGETS, render, spec_from_config

    def body() -> None:
        if target not in TARGETS:
            raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
        cfg = load_cli_config(config, sets) if has_config(config, sets) else None
        overrides: dict[str, Any] = {}
        for item in params or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--param expects NAME=VALUE, got {item!r}")
            overrides[key.strip()] = value  # text: the spec's types convert it
        overrides.update({k: v for k, v in (("image", image), ("tag", tag)) if v is not None})
        spec = spec_from_config(cfg, overrides)
        written = render(target, out, spec)  # type: ignore[arg-type]  # checked above
        for path in written:
            console.print(f"  {path}", highlight=False)
        console.print(f"wrote {len(written)} files under {out}/ ({spec.image}:{spec.tag})")

    guard(body)
