"""Redraw the screenshots README.md and docs/ show, into docs/images/.

    python tools/screenshots.py                  # all of them
    python tools/screenshots.py --only review    # one tour
    python tools/screenshots.py --out /tmp/shots # somewhere else

Needs the package with its test extras (``pip install -e ".[test]"``: the
playwright package) and Debian's Chromium at /usr/bin/chromium
(``SUPERINTENDENT_CHROMIUM`` names another). For each tour it starts the app
(``streamlit run streamlit_app.py``) on a fresh SQLite database in a temporary
folder, on a free port of 127.0.0.1, and drives headless Chromium through the
tour of tests/browser_helpers.py that the browser tests run too (they keep
their screenshots in their temporary folders):

* first-run (tests/test_browser.py): label-digits, admin-projects,
  admin-upload, label-text, model, progress
* review (tests/test_review_browser.py): review
* agreement (tests/test_agreement_app.py): progress-agreement
* team (tests/test_walkthrough_browser.py, tour in tests/team_tour.py): an admin
  and a labeller in two browser contexts: admin-members, admin-upload-ids,
  admin-users, admin-export, label-guidelines, signed-out
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/browser_helpers.py: the tours, shared with the tests

import browser_helpers as bh  # noqa: E402
import team_tour  # noqa: E402


def first_run(browser: Browser, folder: Path, shoot: bh.Shoot) -> None:
    with bh.running_app(folder) as (base, _):
        bh.first_run_tour(browser.new_page(viewport=bh.VIEWPORT), base, folder, shoot)


def review(browser: Browser, folder: Path, shoot: bh.Shoot) -> None:
    with bh.running_app(folder) as (base, db_url):
        items, _ = bh.seed_review(db_url)
        bh.review_tour(browser.new_page(viewport=bh.REVIEW_VIEWPORT), base, items["r2"], shoot)


def agreement(browser: Browser, folder: Path, shoot: bh.Shoot) -> None:
    with bh.running_app(folder) as (base, db_url):
        bh.seed_agreement(db_url)
        page = browser.new_page(viewport=bh.VIEWPORT)
        bh.open_agreement(page, base)
        bh.shoot_agreement(page, shoot)


def team(browser: Browser, folder: Path, shoot: bh.Shoot) -> None:
    db_url = f"sqlite:///{folder / 'app.db'}"
    team_tour.seed_team(db_url)
    with bh.running_app(folder, db_url=db_url) as (base, _):
        team_tour.team_tour(browser, base, folder, lambda page, name, **options: name in team_tour.DOC_SHOTS and shoot(page, name, **options))


TOURS: dict[str, Callable[[Browser, Path, bh.Shoot], None]] = {"first-run": first_run, "review": review, "agreement": agreement,
                                                               "team": team}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the PNGs go (default: docs/images)")
    parser.add_argument("--only", nargs="+", choices=sorted(TOURS), default=list(TOURS), help="the tours to run (default: all)")
    args = parser.parse_args(argv)
    if not Path(bh.CHROMIUM).exists():
        parser.error(f"no Chromium at {bh.CHROMIUM} (Debian package 'chromium', or set SUPERINTENDENT_CHROMIUM)")
    write = bh.screenshots_into(args.out)

    def shoot(page, name: str, **options) -> None:  # noqa: ANN001 - a playwright Page
        write(page, name, **options)
        print(f"  {args.out / f'{name}.png'}", flush=True)

    with bh.chromium() as browser:
        for name in args.only:
            print(f"{name}:", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"sp-screenshots-{name}-") as tmp:
                TOURS[name](browser, Path(tmp), shoot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
