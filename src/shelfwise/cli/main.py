"""The `shelfwise` command line: thin commands over the pipeline, the store and the server."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from shelfwise._internal import progress
from shelfwise.config import ShelfwiseConfig, load_config, parse_overrides
from shelfwise.errors import ConfigError, ShelfwiseError, exit_code_for

if TYPE_CHECKING:
    from shelfwise.pipeline import RunOutcome
    from shelfwise.registry import ModelRegistry

app = typer.Typer(
    name="shelfwise",
    help="From a shop's raw data (catalog, events, queries) to served search and "
    "recommendation models: ingest → validate → features → retrieval → evaluate → "
    "package → serve. Start with `shelfwise demo`, or `shelfwise init` for your own data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path to shelfwise.yaml (default: ./shelfwise.yaml)."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a config key, e.g. --set evaluate.k_values=[5,10] (repeatable; "
        "wins over the file and SHELFWISE_* variables).",
    ),
]


def _guard(action: Callable[[], T]) -> T:
    """Run a command body; print ShelfwiseErrors as `error[code]: message` and exit."""
    try:
        return action()
    except ShelfwiseError as exc:
        err_console.print(
            f"[bold red]error\\[{exc.code}][/bold red]: {escape(exc.message)}", highlight=False
        )
        raise typer.Exit(exit_code_for(exc)) from None


def _load(config_path: Path | None, sets: list[str] | None = None) -> ShelfwiseConfig:
    path = config_path
    if path is None and Path("shelfwise.yaml").is_file():
        path = Path("shelfwise.yaml")
    return load_config(path, overrides=parse_overrides(sets))


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for shelfwise.yaml.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented shelfwise.yaml that lists every key with its default."""
    from shelfwise.config_template import render_template

    def body() -> None:
        target = directory / "shelfwise.yaml"
        if target.exists() and not force:
            raise ConfigError(f"{target} exists; pass --force to overwrite it")
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(render_template(), encoding="utf-8")
        console.print(f"wrote {target}: edit data.* to point at your files, then `shelfwise run`")

    _guard(body)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    users: Annotated[int, typer.Option(min=1, help="Number of shoppers.")] = 2000,
    items: Annotated[int, typer.Option(min=10, help="Number of products.")] = 1000,
    events: Annotated[int, typer.Option(min=100, help="Approximate number of events.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same shop.")] = 42,
    file_format: Annotated[
        str, typer.Option("--format", help="parquet, csv or jsonl.")
    ] = "parquet",
) -> None:
    """Generate the built-in bilingual (Chinese/English) sample shop."""
    from shelfwise.sample import generate_shop

    if file_format not in ("parquet", "csv", "jsonl"):
        err_console.print(f"error: --format must be parquet, csv or jsonl, not {file_format!r}")
        raise typer.Exit(2)
    with console.status("generating the sample shop…"):
        summary = generate_shop(
            out,
            users=users,
            items=items,
            events=events,
            seed=seed,
            file_format=file_format,  # type: ignore[arg-type]
        )
    console.print(
        f"wrote {summary.n_items:,} products, {summary.n_users:,} shoppers, "
        f"{summary.n_events:,} events, {summary.n_queries:,} labelled queries to {out}/"
    )


@app.command()
def validate(config: ConfigOption = None, sets: SetOption = None) -> None:
    """Check the input data only: read, validate, print the report and the quarantine path."""
    from shelfwise.pipeline import run_pipeline
    from shelfwise.validate import report_table

    def body() -> None:
        cfg = _load(config, sets)
        progress.enable(console.is_terminal)
        outcome = run_pipeline(cfg, until="validate", on_event=_stage_printer())
        folder = outcome.run_dir / "validate"
        report = json.loads((folder / "report.json").read_text())
        console.print(report_table(report))
        console.print(f"quarantined rows: {folder / 'quarantine.parquet'}")

    _guard(body)


@app.command()
def run(
    config: ConfigOption = None,
    sets: SetOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the latest (or --run-id) killed run.")
    ] = False,
    run_id: Annotated[str | None, typer.Option(help="The run to --resume.")] = None,
    from_stage: Annotated[
        str | None,
        typer.Option(help="Recompute this stage and all later ones (earlier ones reused)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute every stage.")] = False,
) -> None:
    """Run the whole pipeline and publish the bundle as a new model version."""

    def body() -> None:
        cfg = _load(config, sets)
        outcome = _run_and_report(
            cfg,
            resume=(run_id or "latest") if resume else None,
            from_stage=from_stage,
            use_cache=not no_cache,
        )
        if outcome.gate is not None and not outcome.gate.passed:
            from shelfwise.errors import GateRefusedError

            failed = "; ".join(rule.message for rule in outcome.gate.failures())
            raise GateRefusedError(
                f"version {outcome.bundle_version} was refused by the promotion gate ({failed}); "
                "the champion is unchanged. `shelfwise models` compares them; "
                f"`shelfwise promote {outcome.bundle_version}` overrides the gate"
            )

    _guard(body)


class _StagePrinter:
    """A spinner while a stage runs (on a terminal), then one line when it ends."""

    def __init__(self) -> None:
        self._status: Any = None

    def __call__(self, event: Any) -> None:
        from shelfwise.cli.render import stage_line

        if self._status is not None:
            self._status.stop()
            self._status = None
        if event.status == "started":
            if console.is_terminal:
                self._status = console.status(f"{event.stage}…")
                self._status.start()
            return
        stage_line(console, event)


def _stage_printer() -> Callable[[Any], None]:
    return _StagePrinter()


def _run_and_report(
    cfg: ShelfwiseConfig, *, resume: str | None, from_stage: str | None, use_cache: bool
) -> RunOutcome:
    from shelfwise.cli.render import gate_table, metrics_table, search_table
    from shelfwise.pipeline import run_pipeline

    progress.enable(console.is_terminal)
    console.print(f"[bold]shelfwise run[/bold] · project {cfg.project} · state {cfg.state_dir()}")
    outcome = run_pipeline(
        cfg,
        resume=resume,
        from_stage=from_stage,
        use_cache=use_cache,
        on_event=_stage_printer(),
    )
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    recommendation = metrics.get("recommendation", {})
    if recommendation.get("test") and not recommendation.get("users", {}).get("test"):
        console.print(
            "[yellow]no user has events in the test split, so there are no recommendation "
            "metrics: add data or change split.*[/yellow]"
        )
    for table in (
        metrics_table(metrics, cfg.evaluate.k_values),
        search_table(metrics, cfg.evaluate.k_values),
    ):
        if table is not None:
            console.print(table)
    console.print(f"run {outcome.run_id}: {outcome.run_dir}")
    console.print(
        f"[bold green]model version {outcome.bundle_version}[/bold green] → {outcome.bundle_path}"
    )
    if outcome.gate is not None:
        console.print(gate_table(outcome.gate))
        colour = "green" if outcome.gate.passed else "red"
        console.print(
            f"[bold {colour}]gate: {outcome.gate.decision}[/bold {colour}]"
            + "".join(f" · {note}" for note in outcome.gate.notes)
        )
    if outcome.report_path is not None:
        console.print(f"report: {outcome.report_path}")
    return outcome


@app.command()
def models(config: ConfigOption = None, sets: SetOption = None) -> None:
    """List the model versions: aliases, metrics, data fingerprint, gate decision."""
    from shelfwise.cli.render import alias_log_table, registry_table, versions_table
    from shelfwise.registry.local import BundleStore

    def body() -> None:
        cfg = _load(config, sets)
        if cfg.registry.enabled:
            registry = _registry(cfg)
            versions = registry.versions()
            if not versions:
                console.print(
                    f"model {registry.model_name!r} has no versions in {registry.tracking_uri}; "
                    "run `shelfwise run` first"
                )
                return
            console.print(registry_table(registry.model_name, versions))
            log = registry.alias_log()
            if log:
                console.print(alias_log_table(log[-10:]))
            return
        infos = BundleStore(cfg.state_dir()).list()
        if not infos:
            console.print(f"no model versions under {cfg.state_dir()}; run `shelfwise run` first")
            return
        rows = [
            {
                "version": info.version,
                "created": info.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                "components": info.components,
                "headline": {
                    key.removeprefix("headline."): value
                    for key, value in info.metrics.items()
                    if key.startswith("headline.")
                },
                "path": str(info.path),
            }
            for info in infos
        ]
        console.print(versions_table(rows))

    _guard(body)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to make champion, e.g. 3.")],
    config: ConfigOption = None,
    sets: SetOption = None,
    reason: Annotated[str, typer.Option(help="Why, for the alias history.")] = "manual promote",
) -> None:
    """Make VERSION the champion (served by `shelfwise serve`); the old one stays listed."""

    def body() -> None:
        cfg = _load(config, sets)
        move = _registry(cfg).promote(version, reason)
        console.print(f"champion: {move.old or 'none'} → [bold]{move.new}[/bold] ({move.reason})")

    _guard(body)


@app.command()
def rollback(
    config: ConfigOption = None,
    sets: SetOption = None,
    reason: Annotated[str, typer.Option(help="Why, for the alias history.")] = "manual rollback",
) -> None:
    """Move the champion back to the previous champion (the history is kept)."""

    def body() -> None:
        cfg = _load(config, sets)
        move = _registry(cfg).rollback(reason)
        console.print(
            f"champion: {move.old} → [bold]{move.new}[/bold] ({move.reason}); restart or "
            "reload `shelfwise serve` to serve it"
        )

    _guard(body)


def _registry(cfg: ShelfwiseConfig) -> ModelRegistry:
    from shelfwise.registry import ModelRegistry

    if not cfg.registry.enabled:
        raise ConfigError("the model registry is off (registry.enabled: false); turn it on")
    return ModelRegistry.from_config(cfg)


@app.command()
def serve(
    config: ConfigOption = None,
    bundle: Annotated[Path | None, typer.Option(help="Serve this bundle folder.")] = None,
    model_version: Annotated[
        str | None,
        typer.Option(help="Serve this registered version (default: the champion)."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Serve /v1/recommend, /v1/search, /v1/items/{id}/similar, /metrics and /docs."""

    def body() -> None:
        cfg = _load(config)
        path = _resolve_bundle(cfg, bundle, model_version)
        _serve(cfg, path, host=host, port=port)

    _guard(body)


def _resolve_bundle(cfg: ShelfwiseConfig, bundle: Path | None, version: str | None) -> Path:
    """--bundle, else --model-version, else the champion (or the latest local version)."""
    from shelfwise.errors import BundleNotFoundError
    from shelfwise.registry.local import BundleStore

    if bundle is not None and version is not None:
        raise ConfigError("pass either --bundle or --model-version, not both")
    if bundle is not None:
        return bundle
    if cfg.registry.enabled:
        from shelfwise.registry import CHAMPION, check_version

        registry = _registry(cfg)
        if version is not None:
            return registry.local_path(check_version(version))
        champion = registry.by_alias(CHAMPION)
        if champion is None:
            raise BundleNotFoundError(
                f"model {registry.model_name!r} has no champion; run `shelfwise run`, "
                "`shelfwise promote VERSION`, or pass --bundle"
            )
        err_console.print(f"champion: version {champion.version}")
        return registry.local_path(champion.version)
    store = BundleStore(cfg.state_dir())
    if version is not None:
        from shelfwise.registry import check_version

        return store.get(int(check_version(version))).path
    latest = store.latest()
    if latest is None:
        raise BundleNotFoundError(
            f"no model version under {cfg.state_dir()}; run `shelfwise run` or pass --bundle"
        )
    return latest.path


def _serve(cfg: ShelfwiseConfig, path: Path, *, host: str | None, port: int | None) -> None:
    from shelfwise.serve import ServeSettings, run_server

    settings = ServeSettings(
        bundle_path=path,
        host=host or cfg.serve.host,
        port=port or cfg.serve.port,
        max_k=cfg.serve.max_k,
        default_k=cfg.serve.default_k,
        exclude_seen=cfg.serve.exclude_seen,
    )
    console.print(f"serving {path} on http://{settings.host}:{settings.port} (docs at /docs)")
    run_server(settings)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Working folder.")] = Path("demo"),
    users: Annotated[int, typer.Option(min=1)] = 3000,
    items: Annotated[int, typer.Option(min=10)] = 1500,
    events: Annotated[int, typer.Option(min=100)] = 200_000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after the run.")] = False,
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Generate the sample shop, run the whole pipeline, print curls, and serve the API."""
    from shelfwise.config_template import render_template
    from shelfwise.sample import generate_shop

    def body() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with console.status("generating the sample shop…"):
            shop = generate_shop(directory / "data", users=users, items=items, events=events)
        console.print(
            f"sample shop: {shop.n_items:,} products, {shop.n_users:,} shoppers, "
            f"{shop.n_events:,} events, {shop.n_queries:,} labelled queries"
        )
        config_path = directory / "shelfwise.yaml"
        if not config_path.exists():
            config_path.write_text(render_template(), encoding="utf-8")
        cfg = load_config(
            config_path,
            overrides={"project": "demo-shop", "home": ".shelfwise", "tune.budget_seconds": 20},
        )
        outcome = _run_and_report(cfg, resume=None, from_stage=None, use_cache=True)
        bundle_path = _resolve_bundle(cfg, None, None) if outcome.gate else outcome.bundle_path
        assert bundle_path is not None  # set by a completed run
        base = f"http://127.0.0.1:{port}"
        console.print("\n[bold]Try it[/bold] (in another terminal):")
        for line in (
            f"curl -s -X POST {base}/v1/recommend -H 'content-type: application/json' "
            f'-d \'{{"user_id": "{shop.example_user_id}", "k": 5}}\'',
            f"curl -s -X POST {base}/v1/search -H 'content-type: application/json' "
            f'-d \'{{"query": "{shop.example_query_en}", "k": 5}}\'',
            f"curl -s -X POST {base}/v1/search -H 'content-type: application/json' "
            f'-d \'{{"query": "{shop.example_query_zh}", "k": 5}}\'',
        ):
            console.print(line, highlight=False, soft_wrap=True)
        console.print(f"API docs: {base}/docs · metrics: {base}/metrics · Ctrl-C stops\n")
        if not no_serve:
            _serve(cfg, bundle_path, host="127.0.0.1", port=port)

    _guard(body)


@app.command()
def retrain(
    config: ConfigOption = None,
    sets: SetOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain even without new events in the log.")
    ] = False,
) -> None:
    """Retrain on the original data plus the server's event log, gate the result, and hand
    a passing version to the canary (the `challenger` alias; see `retrain.promote_to`)."""
    from shelfwise.loop.retrain import event_log_dir
    from shelfwise.loop.retrain import retrain as run_retrain

    def body() -> None:
        cfg = _load(config, sets)
        progress.enable(console.is_terminal)
        result = run_retrain(cfg, force=force, on_event=_stage_printer())
        cutoff = "none" if result.cutoff is None else str(result.cutoff)
        console.print(
            f"event log {event_log_dir(cfg)}: {result.log_events:,} events, "
            f"{result.new_events:,} newer than the champion's data (cutoff {cutoff})"
        )
        if result.run is None:
            console.print(
                f"nothing to retrain on (retrain.min_new_events = {cfg.retrain.min_new_events}); "
                "--force retrains anyway"
            )
            return
        outcome = result.run
        console.print(f"run {outcome.run_id}: model version {outcome.bundle_version}")
        if outcome.gate is not None:
            from shelfwise.cli.render import gate_table

            console.print(gate_table(outcome.gate))
            console.print(f"gate: {outcome.gate.decision}")
            if not outcome.gate.passed:
                from shelfwise.errors import GateRefusedError

                raise GateRefusedError(
                    f"retrained version {outcome.bundle_version} was refused by the gate; "
                    "the champion is unchanged"
                )
        if outcome.report_path is not None:
            console.print(f"report: {outcome.report_path}")

    _guard(body)


canary_app = typer.Typer(
    help="Judge the challenger against the champion on live KPIs.", no_args_is_help=True
)
app.add_typer(canary_app, name="canary")


@canary_app.command("judge")
def canary_judge(
    config: ConfigOption = None,
    sets: SetOption = None,
    metrics_url: Annotated[
        str | None,
        typer.Option(help="One server's /metrics (default: canary.prometheus_url)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say the verdict, move no alias.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Compare challenger and champion on CTR, conversion, error rate and p99 latency;
    promote the challenger, roll it back, or wait for more traffic."""
    from shelfwise.loop.canary import judge_canary

    def body() -> None:
        cfg = _load(config, sets)
        verdict = judge_canary(cfg, metrics_url=metrics_url, apply=not dry_run)
        if as_json:
            console.print_json(json.dumps(verdict.to_json()))
            return
        colour = {"promote": "green", "rollback": "red"}.get(verdict.decision, "yellow")
        console.print(
            f"[bold {colour}]{verdict.decision}[/bold {colour}] challenger {verdict.challenger} "
            f"vs champion {verdict.champion}" + (" (dry run)" if dry_run else "")
        )
        for side, numbers in verdict.kpis.items():
            shown = ", ".join(
                f"{k} {v:.4g}" for k, v in numbers.items() if isinstance(v, int | float)
            )
            console.print(f"  {side}: {shown}")
        for reason in verdict.reasons:
            console.print(f"  · {reason}")

    _guard(body)


monitor_app = typer.Typer(
    help="Watch the served models: drift between training data and recent events.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")


def _duration_seconds(text: str) -> int:
    """'90s', '15m', '1h', '2d' (or plain seconds) as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(float(value))
    except ValueError:
        raise ConfigError(f"--since {text!r}: use a duration like 30m, 1h or 2d") from None


@monitor_app.command("drift")
def drift(
    config: ConfigOption = None,
    sets: SetOption = None,
    since: Annotated[
        str, typer.Option(help="Window: events newer than this (30m, 1h, 2d).")
    ] = "1h",
    events: Annotated[
        Path | None,
        typer.Option(help="The server's event log folder (default: <home>/events)."),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Reference bundle (default: the registry's champion).")
    ] = None,
    scores: Annotated[
        bool, typer.Option(help="Also measure the shift of recommendation scores.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for machines.")] = False,
    retrain_on_drift: Annotated[
        bool,
        typer.Option(
            "--retrain",
            help="When the status is `drift`, run `shelfwise retrain` right away (a drift "
            "trigger for setups without Prometheus/Alertmanager, e.g. from cron).",
        ),
    ] = False,
) -> None:
    """Drift of recent events from the champion's training data: item popularity PSI,
    unseen users and items, query out-of-vocabulary rate, score shift, catalog changes.
    Exit code 0 whatever the drift; read `status` (ok, warn, drift) in the output."""
    import time as _time

    from shelfwise.cli.render import drift_table
    from shelfwise.monitor import Reference, measure, read_event_log

    def body() -> None:
        cfg = _load(config, sets)
        reference_path = bundle if bundle is not None else _resolve_bundle(cfg, None, None)
        now = int(_time.time())
        window = (now - _duration_seconds(since), now)
        log_dir = events if events is not None else cfg.state_dir() / "events"
        recent = read_event_log(log_dir, since=window[0], until=window[1] + 1)
        engine = None
        if scores and recent.height:
            from shelfwise.runtime.engine import load_engine

            engine = load_engine(reference_path, verify=False)
        catalog_ids = _catalog_ids(cfg)
        report = measure(
            Reference.from_bundle(reference_path),
            recent,
            window=window,
            engine=engine,
            catalog_ids=catalog_ids,
        )
        if as_json:
            console.print_json(json.dumps(report.to_json()))
        else:
            console.print(drift_table(report, log_dir))
        if retrain_on_drift and report.status == "drift":
            from shelfwise.loop.retrain import retrain as run_retrain

            err_console.print("drift: starting `shelfwise retrain`")
            result = run_retrain(cfg, force=True, on_event=_stage_printer())
            decision = result.run.gate.decision if result.run and result.run.gate else "none"
            err_console.print(f"retrain: {result.status}, gate {decision}")

    _guard(body)


def _catalog_ids(cfg: ShelfwiseConfig) -> list[str] | None:
    """The current catalog's raw item ids, when the config names a readable catalog."""
    if cfg.data.catalog is None or not cfg.data.catalog.path.exists():
        return None
    from shelfwise.contracts import RAW_ITEM_ID
    from shelfwise.ingest import read_source

    try:
        data, _ = read_source(cfg.data.catalog, "catalog")
    except ShelfwiseError:
        return None
    return [str(v) for v in data[RAW_ITEM_ID].drop_nulls().to_list()]


deploy_app = typer.Typer(
    help="Deployment files: container image, Kubernetes (Kustomize), docker-compose, CI/CD.",
    no_args_is_help=True,
)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("render")
def deploy_render(
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            help="k8s: Dockerfile + Kustomize base and overlays dev/prod/canary (docker/, "
            "k8s/). compose: Dockerfile + docker-compose with Redis, Prometheus, Grafana "
            "(docker/, compose/). ci: GitHub Actions, GitLab CI, Jenkinsfile (ci/). all.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Deploy root; each target writes its folders.")
    ],
    config: ConfigOption = None,
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
        cfg = _load(config) if config is not None or Path("shelfwise.yaml").is_file() else None
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

    _guard(body)


def main() -> None:
    """Console-script entry point."""
    if shutil.get_terminal_size().columns < 100:
        console.width = 120
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
