"""The online role's web layer: a FastAPI service over `shelfwise.runtime`.

`create_app` builds the app (settings from the environment unless given),
`run_server` runs uvicorn. Inference over a bundle (`Engine`, `load_engine`) lives in
`shelfwise.runtime`; nothing here imports training, validation or evaluation code.
"""

from __future__ import annotations

from shelfwise.serve.app import create_app, run_server
from shelfwise.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "run_server"]
