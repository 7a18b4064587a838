"""Deployment files for the three roles: container image, Kubernetes, compose, CI/CD.

`render(target, out, spec)` writes the templates shipped in `templates/` (package data),
filled from a `DeploySpec`; `spec_from_config` builds one from a shop's config.
`shelfwise deploy render` is the command line over them.
"""

from __future__ import annotations

from shelfwise.deploy.render import TARGETS, Target, render
from shelfwise.deploy.spec import DeploySpec, spec_from_config

__all__ = [
    "DeploySpec",
    "TARGETS",
    "Target",
    "render",
    "spec_from_config",
]
