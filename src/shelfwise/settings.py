"""Every environment variable shelfwise reads, in one table.

| variable | type | default | meaning |
|---|---|---|---|
| `SHELFWISE_HOME` | path | `./.shelfwise` | state folder: runs, bundles (unless `home:` is set in the config) |
| `SHELFWISE_<SECTION>__<KEY>` | YAML scalar | – | any config key, e.g. `SHELFWISE_EVALUATE__K_VALUES="[5, 10]"`; beats the file, loses to `--set` |
| `SHELFWISE_<KEY>` | YAML scalar | – | a top-level config key, e.g. `SHELFWISE_PROJECT=my-shop` |
| `SHELFWISE_SERVE_BUNDLE_PATH` | path | – | bundle (or state folder) the server loads |
| `SHELFWISE_SERVE_HOST`, `SHELFWISE_SERVE_PORT` | str, int | `127.0.0.1`, `8000` | bind address |
| `SHELFWISE_SERVE_MAX_K`, `SHELFWISE_SERVE_DEFAULT_K` | int | 100, 10 | bounds on `k` |
| `SHELFWISE_SERVE_EXCLUDE_SEEN` | bool | true | never recommend items a user has |
| `SHELFWISE_SERVE_MAX_BODY_BYTES` | int | see `serve/settings.py` | request body limit (413 above) |

The server's variables (single underscore after `SERVE`) are read by
`shelfwise.serve.ServeSettings`; the config loader ignores them.
"""

from __future__ import annotations

from shelfwise.config import ENV_PREFIX

__all__ = ["ENV_PREFIX"]
