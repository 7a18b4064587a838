"""Pipeline commands: `init`, `generate`, `validate`, `run` and `demo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.markup import escape

from shelfwise._internal import progress
from shelfwise.cli.app import (
    ConfigOption,
    SetOption,
    console,
    err_console,
    guard,
    load_cli_config,
    stage_printer,
)
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from shelfwise.pipeline import RunOutcome
    from shelfwise.search.selection import ServedSearch

# What the demo writes into its shelfwise.yaml beside every default: its own project (so
# `shelfwise serve` / `models` in the demo folder find what it registered), its state
# next to the file, and a tuning budget that keeps it to a couple of minutes.
DEMO_SETTINGS: Final[dict[str, Any]] = {
    "project": "demo-shop",
    "home": ".shelfwise",
    "tune": {"budget_seconds": 20},
}


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for shelfwise.yaml.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented shelfwise.yaml that lists every key with its default."""
    from shelfwise.config.template import render_template

    def body() -> None:
        target = directory / "shelfwise.yaml"
        if target.exists() and not force:
            raise ConfigError(f"{target} exists; pass --force to overwrite it")
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(render_template(), encoding="utf-8")
        console.print(f"wrote {target}: edit data.* to point at your files, then `shelfwise run`")

    guard(body)


def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    users: Annotated[int, typer.Option(min=1, help="Number of shoppers.")] = 2000,
    items: Annotated[int, typer.Option(min=10, help="Number of products.")] = 1000,
    events: Annotated[int, typer.Option(min=100, help="Approximate number of events.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same shop.")] = 42,
    file_format: Annotated[
        str, typer.Option("--format", help="parquet, csv or jsonl.")
    ] = "parquet",
    bots: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9,
            help="Share of fake events to add (scrapers, click farms, fake-order rings), "
            "labelled in bots.<format>.",
        ),
    ] = 0.0,
    domain: Annotated[
        str,
        typer.Option(
            help="general (the default shop) or grocery (orders of staples bought again "
            "on item-specific cycles; --events is then set by --users).",
        ),
    ] = "general",
) -> None:
    """Generate the built-in bilingual (Chinese/English) sample shop."""
    from shelfwise.sample import generate_shop

    if file_format not in ("parquet", "csv", "jsonl"):
        err_console.print(f"error: --format must be parquet, csv or jsonl, not {file_format!r}")
        raise typer.Exit(2)
    if domain not in ("general", "grocery"):
        err_console.print(f"error: --domain must be general or grocery, not {domain!r}")
        raise typer.Exit(2)
    if domain == "grocery":
        from shelfwise.sample.grocery import generate_grocery

        with console.status("generating the grocery shop…"):
            shop = generate_grocery(
                out,
                users=users,
                items=items,
                seed=seed,
                file_format=file_format,  # type: ignore[arg-type]
            )
        console.print(
            f"wrote {shop.n_items:,} products, {shop.n_users:,} shoppers, {shop.n_events:,} "
            f"purchases in orders to {out}/ (try split.method: last_basket)"
        )
        return
    with console.status("generating the sample shop…"):
        summary = generate_shop(
            out,
            users=users,
            items=items,
            events=events,
            seed=seed,
            file_format=file_format,  # type: ignore[arg-type]
            bots=bots,
        )
    console.print(
        f"wrote {summary.n_items:,} products, {summary.n_users:,} shoppers, "
        f"{summary.n_events:,} events, {summary.n_queries:,} labelled queries to {out}/"
    )
    if summary.bots_path is not None:
        console.print(
            f"{summary.n_bot_users:,} of the shoppers are fake (scrapers, click farms, "
            f"fake-order rings): the truth is in {summary.bots_path}"
        )


def validate(config: ConfigOption = None, sets: SetOption = None) -> None:
    """Check the input data only: read, validate, print the report and the quarantine path."""
    from shelfwise.pipeline import run_pipeline
    from shelfwise.validate import report_table

    def body() -> None:
        cfg = load_cli_config(config, sets)
        progress.enable(console.is_terminal)
        outcome = run_pipeline(cfg, until="validate", on_event=stage_printer())
        folder = outcome.run_dir / "validate"
        report = json.loads((folder / "report.json").read_text())
        console.print(report_table(report))
        print_data_notes(report.get("partial_files", []), report.get("notes", []))
        console.print(f"quarantined rows: {folder / 'quarantine.parquet'}")

    guard(body)


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
        cfg = load_cli_config(config, sets)
        outcome = run_and_report(
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

    guard(body)


def run_and_report(
    cfg: ShelfwiseConfig, *, resume: str | None, from_stage: str | None, use_cache: bool
) -> RunOutcome:
    """Run the pipeline with progress lines, then print its metrics, version and gate."""
    from shelfwise.cli.render import gate_table, metrics_table, search_table
    from shelfwise.pipeline import run_pipeline
    from shelfwise.search.selection import served_record

    progress.enable(console.is_terminal)
    console.print(f"[bold]shelfwise run[/bold] · project {cfg.project} · state {cfg.state_dir()}")
    outcome = run_pipeline(
        cfg,
        resume=resume,
        from_stage=from_stage,
        use_cache=use_cache,
        on_event=stage_printer(),
    )
    ingest, checked = outcome.manifests.get("ingest"), outcome.manifests.get("validate")
    print_data_notes(
        ingest.extra.get("partial_files", []) if ingest else [],
        checked.extra.get("notes", []) if checked else [],
    )
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    recommendation = metrics.get("recommendation", {})
    if recommendation.get("test") and not recommendation.get("users", {}).get("test"):
        console.print(
            "[yellow]no user has events in the test split, so there are no recommendation "
            "metrics: add data or change split.*[/yellow]"
        )
    searched = served_record(outcome.run_dir / "search")
    for table in (
        metrics_table(metrics, cfg.evaluate.k_values),
        search_variants_table(outcome.run_dir / "search")
        or search_table(metrics, cfg.evaluate.k_values),
    ):
        if table is not None:
            console.print(table)
    for line in served_lines(metrics, outcome.manifests, searched):
        console.print(line, highlight=False)
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
    for warning in outcome.warnings:
        console.print(f"[yellow]{escape(warning)}[/yellow]", highlight=False)
    return outcome


def served_lines(
    metrics: dict[str, Any], manifests: dict[str, Any], searched: ServedSearch | None
) -> list[str]:
    """What the bundle serves, one line per job, from the one record of each choice.

    Recommendations: the package stage's components (the evaluate stage's pick and the
    click model when kept); search: the search stage's `search.json` (`served_record`),
    which the search stage's line, the package line and the report print as well.
    """
    package = manifests.get("package")
    components: dict[str, str] = dict(package.extra.get("components", {})) if package else {}
    recommender = components.get("recommender") or metrics.get("selected", {}).get("recommender")
    lines = ["[bold]served[/bold]"]
    if recommender:
        ranker = " + click model" if components.get("ranker") else ""
        lines.append(f"  recommendations: {escape(str(recommender))}{ranker}")
    else:
        lines.append("  recommendations: none (no events to learn from)")
    if components.get("session"):  # a session-split run: visits get the session model
        chosen = metrics.get("sessions", {}).get("chosen") or components["session"]
        lines.append(f"  visits (history, session_id): {escape(str(chosen))}")
    if searched is not None:
        lines.append(f"  search: {escape(searched.line())}")
    elif components.get("search"):
        lines.append(f"  search: {escape(components['search'])}")
    return lines


def search_variants_table(search_dir: Path) -> Table | None:
    """The search stage's variants (full-catalog and rerank NDCG@10, ms/query), served starred."""
    from rich.table import Table

    path = search_dir / "search.json"
    if not path.is_file():
        return None
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    variants: dict[str, Any] = report.get("variants") or {}
    if report.get("status") != "evaluated" or not variants:
        return None
    latency: dict[str, float] = report.get("latency_p50_ms") or {}
    what = "queries" if report.get("labels") == "labelled_queries" else "query groups"
    table = Table(
        title=f"Search · {report.get('groups', 0):,} {what}, picked by "
        f"{report.get('select_metric')}",
        title_justify="left",
    )
    for column in ("variant", "full ndcg@10", "full recall@10", "rerank ndcg@10", "ms/query"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, values in variants.items():
        full, rerank = values.get("full", {}), values.get("rerank", {})
        table.add_row(
            f"★ {name}" if name == report.get("served") else name,
            f"{full.get('ndcg@10', float('nan')):.4f}",
            f"{full.get('recall@10', float('nan')):.4f}",
            f"{rerank.get('ndcg@10', float('nan')):.4f}",
            f"{latency[name]:.1f}" if name in latency else "–",
        )
    return table


def print_data_notes(partial_files: list[dict[str, Any]], notes: list[str]) -> None:
    """Damaged files kept partially (a yellow warning each) and how time was read."""
    for damaged in partial_files:
        console.print(
            f"[bold yellow]warning: {escape(str(damaged['file']))} is damaged at byte "
            f"{damaged['offset']:,} ({escape(str(damaged['problem']))}); only the "
            f"{damaged['rows_kept']:,} rows before it were used "
            "(data.allow_partial_files: true) and the run is marked partial[/bold yellow]",
            highlight=False,
        )
    for note in notes:
        console.print(escape(note), style="dim", highlight=False)


def write_demo_config(directory: Path) -> Path:
    """`<directory>/shelfwise.yaml`: the commented template with `DEMO_SETTINGS` in it.

    An existing file is kept (it may hold the user's edits) and is what the demo runs.
    """
    from shelfwise.config.template import render_template

    path = directory / "shelfwise.yaml"
    if not path.exists():
        settings = ShelfwiseConfig.model_validate(DEMO_SETTINGS)
        path.write_text(render_template(settings), encoding="utf-8")
    return path


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Working folder.")] = Path("demo"),
    users: Annotated[int, typer.Option(min=1)] = 3000,
    items: Annotated[int, typer.Option(min=10)] = 1500,
    events: Annotated[int, typer.Option(min=100)] = 200_000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after the run.")] = False,
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Generate the sample shop, run the whole pipeline, print curls, and serve the API."""
    from shelfwise.cli.models import resolve_bundle
    from shelfwise.cli.serve import serve_bundle
    from shelfwise.sample import generate_shop

    def body() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with console.status("generating the sample shop…"):
            shop = generate_shop(directory / "data", users=users, items=items, events=events)
        console.print(
            f"sample shop: {shop.n_items:,} products, {shop.n_users:,} shoppers, "
            f"{shop.n_events:,} events, {shop.n_queries:,} labelled queries"
        )
        cfg = load_config(
            write_demo_config(directory),
            overrides={"serve.host": "127.0.0.1", "serve.port": port},
        )
        outcome = run_and_report(cfg, resume=None, from_stage=None, use_cache=True)
        bundle_path = resolve_bundle(cfg, None, None) if outcome.gate else outcome.bundle_path
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
            serve_bundle(cfg, bundle_path)

    guard(body)
