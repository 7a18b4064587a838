"""`shelfwise experiment`: plan an experiment, then start, follow and stop it on a server.

`plan` needs no server: how many lists an experiment needs before it starts.
`start`, `status` and `stop` call the server's `/v1/admin/experiments` with the admin
token (`serve.admin_token`, i.e. `SHELFWISE_SERVE_ADMIN_TOKEN`, unless `--token`).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer
from rich.table import Table

from shelfwise.cli.app import ConfigOption, SetOption, console, guard, load_cli_config
from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import ConfigError, NotReadyError, ShelfwiseError

experiment_app = typer.Typer(
    help="Live experiments between model versions: plan sample sizes and duration for the "
    "sequential test (valid however often it looks), then start, follow and stop A/B or "
    "interleaving experiments on a running server.",
    no_args_is_help=True,
)


@experiment_app.command("plan")
def plan(
    baseline: Annotated[
        float, typer.Option(help="The champion's current rate, e.g. CTR 0.05 (clicks per list).")
    ],
    lists_per_day: Annotated[
        float | None,
        typer.Option(help="Lists the challenger's share will serve per day (for a duration)."),
    ] = None,
    power: Annotated[float, typer.Option(help="Chance of detecting a true lift of --mde.")] = 0.8,
    mde: Annotated[
        float | None,
        typer.Option(help="Smallest relative lift worth detecting (default: canary.mde)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Lists per side the experiment needs: the sequential test's (what `canary judge`
    uses), and a one-look z-test's for comparison; days at --lists-per-day."""
    from shelfwise.experiments import fixed_sample_size, sequential_sample_size

    def body() -> None:
        cfg = load_cli_config(config, sets)
        relative = mde if mde is not None else cfg.canary.mde
        absolute = baseline * relative
        alpha = cfg.canary.alpha
        rows = {
            "sequential": sequential_sample_size(baseline, absolute, alpha=alpha, power=power),
            "fixed_horizon": fixed_sample_size(baseline, absolute, alpha=alpha, power=power),
        }
        result = {
            "baseline": baseline,
            "mde_relative": relative,
            "alpha": alpha,
            "power": power,
            "lists_per_side": rows,
            "days": {
                name: math.ceil(n / lists_per_day) if lists_per_day else None
                for name, n in rows.items()
            },
        }
        if as_json:
            console.print_json(json.dumps(result))
            return
        table = Table(
            title=f"baseline {baseline:g}, lift ≥ {relative:.1%}, α {alpha:g}, power {power:g}"
        )
        for column in ("test", "lists per side", "days"):
            table.add_column(column)
        for name, n in rows.items():
            days = result["days"][name]  # type: ignore[index]
            label = "sequential (canary judge)" if name == "sequential" else "one look only"
            table.add_row(label, f"{n:,}", "" if days is None else str(days))
        console.print(table)

    guard(body)


UrlOption = Annotated[
    str | None,
    typer.Option(help="The server's base URL (default: http://<serve.host>:<serve.port>)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        help="The admin token (default: serve.admin_token, SHELFWISE_SERVE_ADMIN_TOKEN).",
        show_default=False,
    ),
]


@experiment_app.command("start")
def start(
    name: Annotated[str, typer.Argument(help="The experiment's name (lowercase, digits, - _).")],
    variant: Annotated[
        list[str],
        typer.Option(
            help="NAME=VERSION[:SHARE][@RULES], twice: control first, treatment second; "
            "RULES is none, current (default) or a rules version "
            "(e.g. --variant control=3:0.5 --variant treatment=4:0.5).",
        ),
    ],
    mode: Annotated[str, typer.Option(help="ab or interleaving.")] = "ab",
    metric: Annotated[str, typer.Option(help="ctr, conversion or revenue.")] = "ctr",
    endpoint: Annotated[
        list[str] | None, typer.Option(help="recommend and/or search (default: both).")
    ] = None,
    mde: Annotated[
        float | None, typer.Option(help="Relative lift to plan for (default: canary.mde).")
    ] = None,
    min_lists: Annotated[int, typer.Option(help="Lists per side before a verdict.")] = 100,
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Start an experiment on a running server (POST /v1/admin/experiments)."""

    def body() -> None:
        cfg = load_cli_config(config, sets)
        payload: dict[str, Any] = {
            "name": name,
            "mode": mode,
            "primary_metric": metric,
            "variants": [_variant(text) for text in variant],
            "alpha": cfg.canary.alpha,
            "mde": mde if mde is not None else cfg.canary.mde,
            "min_lists": min_lists,
        }
        if endpoint:
            payload["endpoints"] = endpoint
        _print(_call(cfg, url, token, "POST", "", payload))

    guard(body)


@experiment_app.command("status")
def status(
    name: Annotated[str | None, typer.Argument(help="One experiment (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Counts, verdict, lift and guardrails of the server's experiments."""

    def body() -> None:
        cfg = load_cli_config(config, sets)
        answer = _call(cfg, url, token, "GET", f"/{name}" if name else "", None)
        if as_json:
            console.print_json(json.dumps(answer))
            return
        for experiment in answer.get("experiments", [answer]):
            _print(experiment)

    guard(body)


@experiment_app.command("stop")
def stop(
    name: Annotated[str, typer.Argument(help="The experiment to stop.")],
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Stop an experiment (DELETE /v1/admin/experiments/NAME); its counts freeze."""

    def body() -> None:
        cfg = load_cli_config(config, sets)
        _print(_call(cfg, url, token, "DELETE", f"/{name}", None))

    guard(body)


def _variant(text: str) -> dict[str, Any]:
    """NAME=VERSION[:SHARE][@RULES] as the API's variant (RULES: none, current or N)."""
    spec, at, rules = text.partition("@")
    name, equals, rest = spec.partition("=")
    version, colon, share = rest.partition(":")
    if not equals or not name or not version or (at and not rules):
        raise ConfigError(
            f"--variant {text!r}: write NAME=VERSION, NAME=VERSION:SHARE, optionally "
            "followed by @RULES (none, current or a rules version number)"
        )
    out: dict[str, Any] = {"name": name, "version": version}
    if colon:
        try:
            out["share"] = float(share)
        except ValueError:
            raise ConfigError(f"--variant {text!r}: the share {share!r} is not a number") from None
    if at:
        out["rules"] = int(rules) if rules.isdigit() else rules
    return out


def _call(
    cfg: ShelfwiseConfig, url: str | None, token: str | None, method: str, path: str, payload: Any
) -> dict[str, Any]:
    """One admin request; the server's `{code, message}` becomes the same error here."""
    import urllib.error
    import urllib.request

    serve = cfg.serve
    host = "127.0.0.1" if serve.host in ("0.0.0.0", "::") else serve.host  # noqa: S104
    base = (url or f"http://{host}:{serve.port}").rstrip("/")
    secret = token or (serve.admin_token.get_secret_value() if serve.admin_token else "")
    if not secret:
        raise ConfigError(
            "no admin token: pass --token or set SHELFWISE_SERVE_ADMIN_TOKEN (the server's)"
        )
    request = urllib.request.Request(  # noqa: S310 - an operator-given http(s) URL
        f"{base}/v1/admin/experiments{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        method=method,
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
        except ValueError:
            error = {"code": "internal", "message": f"HTTP {exc.code} from {base}"}
        raise _server_error(error.get("code", "internal"), error.get("message", "")) from None
    except urllib.error.URLError as exc:
        raise NotReadyError(f"cannot reach the server at {base}: {exc.reason}") from None


def _server_error(code: str, message: str) -> ShelfwiseError:
    """The server's error as the same class here, so the CLI prints the same code."""
    pending: list[type[ShelfwiseError]] = [ShelfwiseError]
    while pending:
        kind = pending.pop()
        if kind.code == code:
            return kind(message)
        pending.extend(kind.__subclasses__())
    return ShelfwiseError(f"the server answered {code}: {message}")


def _print(experiment: dict[str, Any]) -> None:
    lift = experiment.get("lift") or {}
    estimate, low, high = lift.get("estimate"), lift.get("ci_low"), lift.get("ci_high")
    table = Table(
        title=f"{experiment['name']} ({experiment['mode']}, {experiment['status']}): "
        f"{experiment['verdict']}"
    )
    for column in ("variant", "version", "share", "lists", "clicks", "conversions", "rate"):
        table.add_column(column)
    for v in experiment["variants"]:
        rate = "" if v["rate"] is None else f"{v['rate']:.4f}"
        table.add_row(
            v["name"],
            v["version"],
            f"{v['share']:g}",
            f"{v['lists']:,}",
            f"{v['clicks']:,}",
            f"{v['conversions']:,}",
            rate,
        )
    console.print(table)
    interval = "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"
    if estimate is not None:
        console.print(f"lift {estimate:+.3f}{interval}, p = {experiment['p_value']:.3g}")
    console.print(experiment.get("reason", ""))
    for check in experiment.get("guardrails", []):
        if not check["ok"]:
            console.print(
                f"[red]guardrail[/red] {check['name']}: {check['value']} > {check['limit']}"
            )
