"""The `compute:` section: engine and address, local-only sizes, and no effect on results."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import ComputeConfig, load_config
from shelfwise.config.template import render_template
from shelfwise.errors import ConfigError


def test_default_is_the_local_engine() -> None:
    compute = load_config(None, environ={}).compute
    assert compute == ComputeConfig()
    assert (compute.engine, compute.address, compute.num_cpus) == ("local", "local", None)


@pytest.mark.parametrize(
    "address", ["local", "auto", "127.0.0.1:6379", "ray-head.shop.svc:6379", "ray://head:10001"]
)
def test_addresses_ray_understands(address: str) -> None:
    assert ComputeConfig(engine="ray", address=address).address == address


def test_a_bad_address_says_what_an_address_looks_like(tmp_path: Path) -> None:
    path = tmp_path / "shelfwise.yaml"
    path.write_text("compute:\n  engine: ray\n  address: my-cluster\n")
    with pytest.raises(ConfigError, match=r"compute\.address.*'my-cluster' is not a Ray address"):
        load_config(path, environ={})


def test_sizes_of_a_local_ray_are_refused_for_a_cluster() -> None:
    with pytest.raises(ConfigError, match=r"num_cpus size a Ray started here.*not 'auto'"):
        load_config(None, environ={}, overrides={"compute.address": "auto", "compute.num_cpus": 4})


def test_engine_from_the_environment_and_flags() -> None:
    config = load_config(
        None,
        environ={"SHELFWISE_COMPUTE__ENGINE": "ray"},
        overrides={"compute.address": "10.0.0.5:6379"},
    )
    assert (config.compute.engine, config.compute.address) == ("ray", "10.0.0.5:6379")


def test_the_engine_changes_no_fingerprint() -> None:
    """Both engines give the same results: a run resumes on the other engine."""
    local = load_config(None, environ={})
    on_ray = load_config(
        None, environ={}, overrides={"compute.engine": "ray", "compute.address": "auto"}
    )
    assert on_ray.fingerprint() == local.fingerprint()


def test_init_template_lists_the_section() -> None:
    template = render_template()
    assert "\ncompute:\n" in template
    assert "  engine: local\n" in template
    assert "  max_retries: 3\n" in template
