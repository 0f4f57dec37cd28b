"""The ``superintendent`` command.

``superintendent init`` creates or upgrades the schema;
``superintendent orchestrate`` runs the retrain loop as a long-running process.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys

from superintendent.config import get_settings
from superintendent.validation import SuperintendentError


def _database_url(args: argparse.Namespace) -> str:
    return args.database_url or get_settings().resolved_database_url()


def cmd_init(args: argparse.Namespace) -> int:
    from superintendent.store import init_db, make_engine

    engine = make_engine(_database_url(args))
    revision = init_db(engine)
    print(f"database {engine.url.render_as_string(hide_password=True)} is at schema revision {revision}")
    return 0


def cmd_orchestrate(args: argparse.Namespace) -> int:
    from superintendent import queue
    from superintendent.orchestration import orchestrate
    from superintendent.store import init_db, make_engine, session_scope

    engine = make_engine(_database_url(args))
    init_db(engine)
    with session_scope(engine, write=False) as s:
        projects = queue.list_projects(s) if args.all else [queue.get_project(s, args.project)]
    if len(projects) != 1:
        raise SuperintendentError("orchestrate one project at a time for now: pass --project NAME")
    runs = orchestrate(engine, projects[0], interval_seconds=args.interval_seconds, interval_n_labels=args.interval_n_labels,
                       max_runs=args.max_runs if args.max_runs is not None else math.inf,
                       on_run=lambda run: print(f"{projects[0].name}: {run.status} score={run.score_mean} labels={run.n_labels}", flush=True))
    print(f"{len(runs)} run(s) done")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="superintendent", description="Labelling server with active learning.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    db_help = "SQLAlchemy URL (default: $SUPERINTENDENT_DATABASE_URL, else the local SQLite file)"

    p = sub.add_parser("init", help="create or upgrade the database schema")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("orchestrate", help="retrain a project's model on a schedule")
    p.add_argument("--database-url", help=db_help)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--project", help="project name")
    which.add_argument("--all", action="store_true", help="every project")
    p.add_argument("--interval-seconds", type=float, default=None, help="seconds between retrains; omit to retrain once")
    p.add_argument("--interval-n-labels", type=int, default=0, help="new labels needed before a retrain")
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many retrains")
    p.set_defaults(func=cmd_orchestrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except SuperintendentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
