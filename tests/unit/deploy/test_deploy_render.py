"""The renderer: targets, placeholders, parameters, the CLI, and the committed copy."""

from __future__ import annotations

import filecmp
import glob
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.config import load_config
from shelfwise.deploy import DeploySpec, render, spec_from_config
from shelfwise.deploy.render import TARGET_FOLDERS, placeholders, substitute
from shelfwise.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMITTED = REPO_ROOT / "deploy"
LEFTOVER = re.compile(r"<<[a-z_0-9]+>>")


def _files(root: Path, folders: tuple[str, ...]) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for folder in folders
        for path in (root / folder).rglob("*")
        if path.is_file()
    }


@pytest.mark.parametrize("target", ["k8s", "compose", "ci"])
def test_each_target_writes_its_folders_only(tmp_path: Path, target: str) -> None:
    written = render(target, tmp_path)  # type: ignore[arg-type]
    folders = {path.relative_to(tmp_path).parts[0] for path in written}
    assert folders == set(TARGET_FOLDERS[target])
    assert all(not LEFTOVER.search(path.read_text()) for path in written)


def test_all_target_has_every_file(rendered: Path) -> None:
    names = _files(rendered, TARGET_FOLDERS["all"])
    for expected in (
        "docker/Dockerfile",
        "docker/Dockerfile.dockerignore",
        "k8s/base/kustomization.yaml",
        "k8s/overlays/dev/kustomization.yaml",
        "k8s/overlays/prod/kustomization.yaml",
        "k8s/overlays/canary/kustomization.yaml",
        "k8s/overlays/ray/kustomization.yaml",
        "k8s/overlays/ray/rayjob-run.yaml",
        "k8s/overlays/ray/rayjob-retrain.yaml",
        "compose/compose.yaml",
        "compose/env.example",
        "ci/github-actions.yml",
        "ci/.gitlab-ci.yml",
        "ci/Jenkinsfile",
    ):
        assert expected in names
    assert not any(name.startswith("helm") or "Chart.yaml" in name for name in names)


def test_templates_and_spec_agree() -> None:
    values = DeploySpec().values()
    used = placeholders()
    assert used <= set(values), f"placeholders without a value: {sorted(used - set(values))}"
    unused = set(DeploySpec.model_fields) - used
    assert not unused, f"DeploySpec fields no template uses: {sorted(unused)}"


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(ConfigError, match="x.yaml uses unknown placeholder.*nope"):
        substitute("a: <<nope>>", {"app": "shelfwise"}, name="x.yaml")


def test_spec_takes_project_and_port_from_the_config(tmp_path: Path) -> None:
    config = load_config(None, environ={}, overrides={"project": "tiny-shop", "serve.port": 9100})
    render("all", tmp_path, spec_from_config(config))
    assert "EXPOSE 9100" in (tmp_path / "docker/Dockerfile").read_text()
    assert "containerPort: 9100" in (tmp_path / "k8s/base/deployment.yaml").read_text()
    serve_env = (tmp_path / "k8s/base/serve.env").read_text()
    assert "SHELFWISE_SERVE_REGISTRY_MODEL=tiny-shop" in serve_env
    assert "127.0.0.1:9100:9100" in (tmp_path / "compose/compose.yaml").read_text()


def test_bad_parameters_are_refused_with_their_names() -> None:
    with pytest.raises(ConfigError, match="unknown deploy parameter.*replica_count"):
        spec_from_config(None, {"replica_count": "3"})
    with pytest.raises(ConfigError, match="cpu_limit"):
        spec_from_config(None, {"cpu_limit": "two cores"})
    with pytest.raises(ConfigError, match="retrain_schedule"):
        spec_from_config(None, {"retrain_schedule": "every night"})
    with pytest.raises(ConfigError, match="python_image"):
        spec_from_config(None, {"python_image": "python"})  # unpinned


def test_cli_renders_with_image_tag_and_params(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "deploy", "render", "--target", "k8s", "--out", str(tmp_path),
            "--image", "registry.example.com:5000/shop/shelfwise", "--tag", "1.2.3",
            "--param", "prod_replicas=5", "--param", "retrain_schedule=30 1 * * 0",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    kustomization = (tmp_path / "k8s/base/kustomization.yaml").read_text()
    assert "newName: registry.example.com:5000/shop/shelfwise-batch" in kustomization
    assert 'newTag: "1.2.3"' in kustomization
    assert "value: 5" in (tmp_path / "k8s/overlays/prod/kustomization.yaml").read_text()
    assert 'schedule: "30 1 * * 0"' in (tmp_path / "k8s/base/cronjob.yaml").read_text()
    assert not (tmp_path / "compose").exists()


def test_cli_refuses_an_unknown_target(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["deploy", "render", "--target", "helm", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "--target must be one of" in result.output
    assert not any(tmp_path.iterdir())


def test_rendered_pipeline_config_is_a_valid_config(rendered: Path) -> None:
    config = load_config(rendered / "k8s/base/shelfwise.yaml", environ={})
    assert config.project == DeploySpec().project
    assert config.state_dir() == Path("/state")


def test_templates_are_package_data() -> None:
    """setuptools ships only files matching `package-data`; every template must match."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["shelfwise"]
    package = REPO_ROOT / "src" / "shelfwise"
    shipped = {
        Path(match).resolve()
        for pattern in patterns
        for match in glob.glob(str(package / pattern), recursive=True)
    }
    templates = {p.resolve() for p in (package / "deploy" / "templates").rglob("*") if p.is_file()}
    assert templates, "no templates found"
    assert templates <= shipped, sorted(str(p) for p in templates - shipped)


def test_committed_copy_is_a_fresh_render(rendered: Path) -> None:
    """deploy/{ci,compose,docker,k8s} never drift from the templates.

    After changing a template or a default: `shelfwise deploy render --target all --out deploy`
    from the repository root (without a ./shelfwise.yaml there).
    """
    folders = TARGET_FOLDERS["all"]
    fresh, committed = _files(rendered, folders), _files(COMMITTED, folders)
    assert committed == fresh, "re-render: shelfwise deploy render --target all --out deploy"
    changed = [
        name
        for name in sorted(fresh)
        if not filecmp.cmp(rendered / name, COMMITTED / name, shallow=False)
    ]
    assert not changed, f"stale committed files {changed}; re-render (see docstring)"
