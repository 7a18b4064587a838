"""Regenerate the operator console's screenshots under docs/console/.

    .venv/bin/python scripts/console_screenshots.py [--out docs/console]

Runs the console's browser tests (tests/unit/serve/console/test_console_browser.py:
a live server over the tiny test bundle, with a registry, traffic, a catalog update, a
rules version, an experiment, a gate and a canary decision), which save one PNG per page
where $SHELFWISE_CONSOLE_SCREENSHOTS points. The screenshots are therefore exactly what
the tests checked. Needs Chromium (scripts/install_chromium.sh).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = "tests/unit/serve/console/test_console_browser.py"
PAGES = ("login", "versions", "kpis", "drift", "audit", "playground")


def main() -> int:
    """Run the browser tests with the screenshot folder set; check every page was saved."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    env = {**os.environ, "SHELFWISE_CONSOLE_SCREENSHOTS": str(out)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", TESTS]
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        return result.returncode
    missing = [
        page
        for page in PAGES
        if not (out / f"{page}.png").is_file() or (out / f"{page}.png").stat().st_mtime < started
    ]
    if missing:  # the tests skipped (no Chromium): say so, the old pictures are stale
        print(f"no screenshot of {', '.join(missing)}; is Chromium installed?", file=sys.stderr)  # noqa: T201
        return 1
    print("\n".join(str(out / f"{page}.png") for page in PAGES))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
