"""The ``superintendent`` command: init, create-user, create-project, import, export, orchestrate, demo, and API tokens.

Every command takes ``--database-url`` (default: ``$SUPERINTENDENT_DATABASE_URL``,
else the SQLite file the web app uses; ``--help`` shows which). Commands that
need data already there (import, export, orchestrate) never create a
database: a missing SQLite file is an error that names it. Errors are one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import math
import sys
import time
from pathlib import Path

from superintendent.al.acquisition import ACQUISITION_NAMES, DEFAULT_ACQUISITION
from superintendent.config import default_data_dir, get_settings
from superintendent.validation import NotFoundError, SuperintendentError, ValidationError


def shown_url(url: str) -> str:
    """A database URL as it may be printed: the password hidden (``***``)."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "an unreadable URL"  # it may hold a password: never echo it


def default_database() -> tuple[str, str]:
    """Which database a command uses without ``--database-url`` (its URL, password hidden), and why, for ``--help``."""
    settings = get_settings()
    if settings.database_url:
        return shown_url(settings.database_url), "from $SUPERINTENDENT_DATABASE_URL"
    where = "the home folder's default" if settings.data_dir == default_data_dir() else "$SUPERINTENDENT_DATA_DIR's"
    return shown_url(settings.resolved_database_url()), f"{where} SQLite file, as the web app uses"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases, in-memory ones, or a URL that does not parse)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).expanduser()


def _engine(args: argparse.Namespace, *, init: bool = True, create: bool = True):  # noqa: ANN202
    """The engine of the database the command uses; ``create=False``: the database must exist and hold the schema."""
    import sqlalchemy as sa

    from superintendent.store import DatabaseError, check_connection, init_db, make_engine

    settings = get_settings()
    url = args.database_url or settings.resolved_database_url()
    path = _sqlite_file(url)
    if not create and path is not None and not path.is_file():
        raise NotFoundError(f"no database: the SQLite file {str(path.resolve())!r} does not exist (database {shown_url(url)}). "
                            "Pass --database-url or set SUPERINTENDENT_DATABASE_URL to use another one, or create it with "
                            "`superintendent init` (or `demo`, `create-project`)")
    engine = make_engine(url, busy_timeout_seconds=settings.sqlite_busy_timeout_seconds)
    deadline = time.monotonic() + getattr(args, "wait", 0.0)
    while True:
        try:
            check_connection(engine)
            break
        except DatabaseError as exc:
            if time.monotonic() >= deadline:
                raise
            print(f"waiting for the database: {exc}", file=sys.stderr, flush=True)
            time.sleep(2)
    if not create and not sa.inspect(engine).has_table("sp_project"):
        raise NotFoundError(f"database {shown_url(url)} holds no superintendent tables; create them with `superintendent init`, "
                            "or pass --database-url to use another database")
    if init:
        init_db(engine)
    return engine


def _project(engine, name: str):  # noqa: ANN001, ANN202
    from superintendent import queue
    from superintendent.store import session_scope

    with session_scope(engine, write=False) as s:
        try:
            return queue.get_project(s, name)
        except NotFoundError as exc:
            raise NotFoundError(f"{exc} (database {engine.url.render_as_string(hide_password=True)})") from None


def cmd_init(args: argparse.Namespace) -> int:
    from superintendent.store import init_db

    engine = _engine(args, init=False)
    revision = init_db(engine)
    print(f"database {engine.url.render_as_string(hide_password=True)} is at schema revision {revision}")
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise ValidationError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def cmd_create_user(args: argparse.Namespace) -> int:
    from superintendent import auth
    from superintendent.store import session_scope

    engine = _engine(args)
    password = _read_password()
    with session_scope(engine) as s:
        user = auth.create_user(s, args.name, password, args.role, display_name=args.display_name or "")
    print(f"created {user.role} {user.username!r}")
    return 0


def _columns(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


def _user_map(pairs: list[str] | None) -> dict[str, str]:
    """``--map-user NAME=USER`` options as {annotator in the file: user here} (split at the last '=')."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, user = pair.rpartition("=")
        if not sep or not name or not user.strip():
            raise ValidationError(f"--map-user takes ANNOTATOR=USER (an annotator named in the file, a user here); got {pair!r}")
        if name in out:
            raise ValidationError(f"--map-user gives {name!r} twice; map each annotator once")
        out[name] = user.strip()
    return out


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from superintendent import importing, ingest

    user_map = _user_map(args.map_user)
    engine = _engine(args, create=False)
    project = _project(engine, args.project)
    path = Path(args.file)
    if not path.is_file():
        raise ValidationError(f"no file {str(path)!r}")
    settings = get_settings()
    limits = ingest.ImportLimits.from_settings(settings)
    if path.stat().st_size > limits.max_bytes:
        raise ValidationError(f"{path.name} is {path.stat().st_size / 2**20:.1f} MB; the limit is {settings.max_upload_mb} MB "
                              "(set SUPERINTENDENT_MAX_UPLOAD_MB to change it)")
    data = path.read_bytes()
    plan = None
    fmt = ingest.detect_format(path.name, data) if args.format is None else args.format
    if fmt in ingest.INTEROP_FORMATS:
        if any(v is not None for v in (args.display_columns, args.model_columns, args.label_column, args.id_column)):
            raise ValidationError(f"column options apply to tables; {path.name} is read as {fmt} (use --data-key / --from-name)")
    elif args.data_key is not None or args.from_name is not None:
        raise ValidationError(f"--data-key and --from-name apply to Label Studio tasks; {path.name} is read as {fmt}")
    if fmt in ("csv", "parquet", "json", "jsonl"):
        columns = list(ingest.read_table(data, fmt, limits, name=path.name).columns)
        skip = {args.label_column, args.id_column}
        display = _columns(args.display_columns) or [c for c in columns if c not in skip]
        model = _columns(args.model_columns) or display
        plan = ingest.TablePlan(display_columns=display, model_columns=model, label_column=args.label_column, id_column=args.id_column)
    elif any(v is not None for v in (args.display_columns, args.model_columns, args.label_column, args.id_column)):
        raise ValidationError(f"column options apply to tables (CSV, Parquet, JSON); {path.name} is {fmt}")
    prepared = ingest.prepare_upload(path.name, data, plan=plan, options=project.options, label_mode=project.label_mode,
                                        limits=limits, upload_dir=settings.upload_dir, fmt=fmt,
                                        allow_free_text=project.allow_free_text, data_key=args.data_key, from_name=args.from_name)
    with tqdm(total=prepared.n_rows, unit="item", desc=f"importing into {project.name}", file=sys.stderr) as bar:
        result = importing.import_prepared(engine, project, prepared, progress=lambda f: bar.update(round(f * prepared.n_rows) - bar.n),
                                           user_map=user_map)
    print(f"imported into {project.name!r}: {result.describe()}")
    kept = [a.identity for a in importing.annotators(prepared) if a.name not in user_map]
    parts = [f"{name} -> {user}" for name, user in user_map.items()]
    if kept:
        parts.append(f"{len(kept):,} as import-only accounts ({', '.join(kept[:5])}{', ...' if len(kept) > 5 else ''})")
    if parts:
        print("annotators: " + "; ".join(parts))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from superintendent import export

    engine = _engine(args, create=False)
    project = _project(engine, args.project)
    data = export.export_labels(engine, project, args.format, individual=args.individual, from_name=args.from_name,
                                   to_name=args.to_name, image_value=args.image_value, raw_csv=args.raw_csv)
    Path(args.output).write_bytes(data)
    print(f"wrote {len(data):,} bytes of {project.name!r} labels to {args.output}")
    return 0


def cmd_orchestrate(args: argparse.Namespace) -> int:
    from superintendent.orchestration import orchestrate, orchestrate_all

    from superintendent import queue
    from superintendent.store import session_scope

    engine = _engine(args, create=False)
    max_runs = math.inf if args.max_runs is None else args.max_runs
    names: dict[int, str] = {}

    def report(run) -> None:  # noqa: ANN001
        if run.project_id not in names:  # a project created while this runs: read the names again
            with session_scope(engine, write=False) as s:
                names.update((p.id, p.name) for p in queue.list_projects(s))
        score = "" if run.score_mean is None else f" score={run.score_mean:.3f}"
        reason = (run.message or "").strip().splitlines()
        why = f": {reason[0]}" if reason and run.status != "succeeded" else ""
        print(f"{names.get(run.project_id, f'project {run.project_id}')!r}: {run.status}{score} labels={run.n_labels}{why}", flush=True)

    if args.all:
        runs = orchestrate_all(engine, tick_seconds=args.interval_seconds or get_settings().scheduler_tick_seconds,
                               interval_n_labels=args.interval_n_labels, max_runs=max_runs, on_run=report)
    else:
        project = _project(engine, args.project)
        from superintendent.learning import RetrainOptions, model_for_project

        if model_for_project(project) is None:
            raise ValidationError(f"project {project.name!r} has no model preset or factory; set one on the Admin page")
        runs = orchestrate(engine, project, RetrainOptions(worker="cli"), interval_seconds=args.interval_seconds,
                           interval_n_labels=args.interval_n_labels or 0, max_runs=max_runs, on_run=report)
    print(f"{len(runs)} run(s) done")
    return 0


def cmd_create_project(args: argparse.Namespace) -> int:
    from superintendent import queue
    from superintendent.learning import load_factory, make_preset
    from superintendent.store import session_scope

    engine = _engine(args)
    if args.model_preset:
        make_preset(args.model_preset)  # an unknown preset fails here, before anything is written
    if args.model_factory:
        load_factory(args.model_factory)
    options = [int(o) if o.strip().lstrip("-").isdigit() else o.strip() for o in (args.options or "").split(",") if o.strip()]
    data_type = args.data_type or {"spans": "text", "boxes": "image"}.get(args.label_mode, "any")
    with session_scope(engine) as s:
        project = queue.create_project(
            s, args.name, options=options, label_mode=args.label_mode, data_type=data_type, allow_free_text=args.allow_free_text,
            model_preset=args.model_preset, model_factory=args.model_factory, acquisition_function=args.acquisition_function,
            shuffle_prop=args.shuffle_prop, annotations_per_item=args.annotations_per_item,
            lease_seconds=args.lease_seconds or get_settings().default_lease_seconds,
            retrain_interval_seconds=args.retrain_interval_seconds, retrain_interval_n_labels=args.retrain_interval_n_labels)
    kind = {"spans": "text spans", "boxes": "image boxes"}.get(project.label_mode)
    print(f"created project {project.name!r} ({kind + ', ' if kind else ''}options: {', '.join(map(str, project.options)) or 'any label'})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from superintendent.demo import load_demo

    created = load_demo(_engine(args))
    print("created: " + ", ".join(created) if created else "the demo projects exist already")
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    from superintendent import auth, tokens
    from superintendent.store import session_scope

    engine = _engine(args, create=False)
    with session_scope(engine) as s:
        user = auth.get_user(s, args.user)
        created = tokens.create(s, user.id, args.name, expires_days=args.expires_days)
    until = f"until {created.expires_at:%Y-%m-%d %H:%M} UTC" if created.expires_at else "until revoked"
    print(f"token {created.token_id} ({args.name!r}) for {user.username!r}, {until}; it is shown only now, keep it safe:",
          file=sys.stderr)
    print(created.token)
    return 0


def cmd_list_tokens(args: argparse.Namespace) -> int:
    from superintendent import auth, tokens
    from superintendent.store import session_scope

    engine = _engine(args, create=False)
    with session_scope(engine, write=False) as s:
        listed = tokens.list_tokens(s, auth.get_user(s, args.user).id)
    if not listed:
        print(f"{args.user!r} has no API tokens")

    def when(moment) -> str:  # noqa: ANN001
        return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M}"

    for t in listed:
        print(f"{t.token_id}\t{t.prefix}...\t{t.state()}\tcreated {when(t.created_at)}\texpires {when(t.expires_at)}"
              f"\tlast used {when(t.last_used_at)}\t{t.name}")
    return 0


def cmd_revoke_token(args: argparse.Namespace) -> int:
    from superintendent import auth, tokens
    from superintendent.store import session_scope

    engine = _engine(args, create=False)
    with session_scope(engine) as s:
        done = tokens.revoke(s, auth.get_user(s, args.user).id, args.token_id)
    print(f"token {args.token_id} revoked" if done else f"token {args.token_id} was revoked already")
    return 0


def build_parser() -> argparse.ArgumentParser:
    url, why = default_database()
    # Shown as written (a URL is never broken across lines): the database every command uses unless told another.
    epilog = f"database: {url}\n  ({why}; --database-url URL uses another)".replace("%", "%%")
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="superintendent", description="Labelling server with active learning.", epilog=epilog,
                                     formatter_class=raw)
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db_help = "SQLAlchemy URL of the database (default: shown below)"

    def command(name: str, help_: str, func) -> argparse.ArgumentParser:  # noqa: ANN001
        p = sub.add_parser(name, help=help_, description=help_, epilog=epilog, formatter_class=raw)
        p.add_argument("--database-url", help=db_help)
        p.set_defaults(func=func)
        return p

    p = command("init", "create or upgrade the database schema", cmd_init)
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="retry until the database answers, for up to this long")

    p = command("create-user", "create a user (password from a prompt, or stdin when piped)", cmd_create_user)
    p.add_argument("name")
    p.add_argument("--role", choices=["admin", "reviewer", "labeller"], required=True)  # auth.HUMAN_ROLES (imported lazily)
    p.add_argument("--display-name")

    p = command("create-project", "create a project (the model factory is code: only people with database access set it)",
                cmd_create_project)
    p.add_argument("name")
    p.add_argument("--options", help="comma-separated label options (default: any label)")
    p.add_argument("--kind", "--label-mode", dest="label_mode", choices=["single", "multi", "spans", "boxes"], default="single",
                   help="single / multi: classification, one label or several per item; spans: mark parts of texts; "
                        "boxes: draw boxes on images (spans and boxes need --options: what a mark can be)")
    p.add_argument("--data-type", choices=["image", "text", "tabular", "any"], default=None,
                   help="default: text for --kind spans, image for --kind boxes, else any")
    p.add_argument("--allow-free-text", action="store_true")
    p.add_argument("--model-preset", help="logistic_regression, tfidf_logistic_regression or gradient_boosting")
    p.add_argument("--model-factory", help="package.module:function returning a scikit-learn estimator")
    p.add_argument("--acquisition-function", choices=ACQUISITION_NAMES, default=DEFAULT_ACQUISITION,
                   help="how the model ranks items (the *_diverse ones also spread each batch out)")
    p.add_argument("--shuffle-prop", type=float, default=0.1)
    p.add_argument("--annotations-per-item", type=int, default=1)
    p.add_argument("--lease-seconds", type=int, default=None, help="default: the default_lease_seconds setting")
    p.add_argument("--retrain-interval-seconds", type=float, default=None)
    p.add_argument("--retrain-interval-n-labels", type=int, default=0)

    p = command("import", "import a data file into a project (CSV, Parquet, JSON, JSON Lines, .npy, .npz, ZIP of images)", cmd_import)
    p.add_argument("project")
    p.add_argument("file")
    p.add_argument("--display-columns", help="comma-separated columns to show (tables; default: all but label and id)")
    p.add_argument("--model-columns", help="comma-separated columns for the model (default: the displayed ones)")
    p.add_argument("--label-column", help="column of existing labels")
    p.add_argument("--id-column", help="column of item ids")
    p.add_argument("--format", choices=["csv", "parquet", "json", "jsonl", "npy", "npz", "zip", "label-studio", "items-jsonl"],
                   help="read the file as this format (default: from its extension and content; Label Studio tasks are recognised)")
    p.add_argument("--data-key", help="Label Studio: the key of each task's data that holds the item (default: the only one)")
    p.add_argument("--from-name", help="Label Studio: the control whose results are the labels (Choices; Labels for spans, "
                                       "RectangleLabels for boxes; default: the only one)")
    p.add_argument("--map-user", action="append", metavar="ANNOTATOR=USER",
                   help="Label Studio / items JSON Lines: give this annotator's labels (and reviews) to this existing user; "
                        "repeat for several. Unmapped annotators get import-only accounts _import:<name> (they cannot sign in)")

    p = command("export", "write a project's labels to a file", cmd_export)
    p.add_argument("project")
    p.add_argument("--format", choices=["csv", "json", "parquet", "jsonl", "label-studio", "conll", "spacy", "coco", "yolo"],
                   required=True, help="csv/json/parquet: a table of labels; jsonl: one object per item; label-studio: Label Studio "
                                       "tasks; spans projects: conll (CoNLL-2003 BIO), spacy (JSON Lines); boxes projects: coco, "
                                       "yolo (ZIPs with the images)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--individual", action="store_true", help="tables: one row per annotation (who, what, when) beside the consensus")
    p.add_argument("--raw-csv", action="store_true",
                   help="csv: write cells as they are; by default a cell starting with = + - @ (a spreadsheet formula) gets a ' in front")
    p.add_argument("--from-name", default="label",
                   help="label-studio: name of the Choices (Labels, RectangleLabels) control (default: label)")
    p.add_argument("--to-name", help="label-studio: name of the object the choices label (default: the data key, e.g. text)")
    p.add_argument("--image-value", choices=["path", "name"], default="path",
                   help="label-studio: images as their file path on this server (default) or their original file name")

    p = command("orchestrate", "retrain models on a schedule until stopped (SIGTERM / Ctrl-C stop it cleanly)", cmd_orchestrate)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--project", help="one project, retrained every --interval-seconds")
    which.add_argument("--all", action="store_true", help="every project on its own schedule (set on the Admin page)")
    p.add_argument("--interval-seconds", type=float, default=None,
                   help="--project: seconds between retrains (omit to retrain once); --all: how often schedules are checked")
    p.add_argument("--interval-n-labels", type=int, default=None, help="new labels needed before a retrain (--all: overrides projects)")
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many retrains")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="retry until the database answers, for up to this long")

    command("demo", "load the demo projects (handwritten digits, word sentiment)", cmd_demo)

    p = command("create-token", "create a personal access token for the HTTP API (printed once, on stdout)", cmd_create_token)
    p.add_argument("user")
    p.add_argument("--name", default="command line", help="what the token is for (default: command line)")
    p.add_argument("--expires-days", type=int, default=None, help="days until it expires (default: never; revoke it to end it)")

    p = command("list-tokens", "list a user's API tokens (never the tokens themselves: their first characters)", cmd_list_tokens)
    p.add_argument("user")

    p = command("revoke-token", "revoke one of a user's API tokens (its id from list-tokens)", cmd_revoke_token)
    p.add_argument("user")
    p.add_argument("token_id", type=int)
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
