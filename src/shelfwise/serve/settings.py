"""Settings of the online role: the config's `serve:` section, under its process name.

`ServeSettings` is `shelfwise.config.ServeSettings` (defined in `shelfwise.config.serve`),
read by the one config loader: defaults < file < `SHELFWISE_SERVE_<KEY>` variables <
`--set serve.<key>=...` flags. Every variable is listed, with its type, default and
meaning, in `shelfwise.settings`.

Nothing is read at import time: `create_app` loads the settings when it is not given
them, and routes receive them from the app's state.
"""

from __future__ import annotations

from shelfwise.config.serve import ServeSettings

__all__ = ["ServeSettings"]
