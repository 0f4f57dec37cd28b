"""Who sees what, who may do what, and where passwords must never go: through AppTest, on SQLite and PostgreSQL.

AppTest's ``switch_page`` runs a page file by itself (Streamlit treats the
``pages/`` folder as a multipage app of its own), without ``streamlit_app.py``:
each page's own ``login.require(...)`` is all that protects it here, as it is
for a freshly started server before its first ``st.navigation`` call.
"""

from __future__ import annotations

import enum
import logging

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from superintendent import auth, queue, sessions
from superintendent.app import login, session_cookie, state
from superintendent.config import Settings
from superintendent.store import ModelRun, Project, User, session_scope, utcnow
from superintendent.store.models import AuditEntry, UserSession
from superintendent.validation import ValidationError
from test_app import APP, PASSWORD, add_project, add_user, errors, logged_in, refusal  # noqa: F401

STALE = "your account may not do this any more"
SIGNED_OUT = f"You were signed out. {auth.DEACTIVATED_MESSAGE}"
LOGIN_FORM = {"User name", "Password", "Log in"}  # the labels of the login form's widgets
LOGIN_HEADING = "subheader: Log in to superintendent"
WIDGETS = ("button", "text_input", "text_area", "selectbox", "multiselect", "checkbox", "radio", "slider", "number_input",
           "file_uploader", "download_button")
TEXTS = ("title", "header", "subheader", "markdown", "caption", "metric", "info", "success", "warning", "dataframe", "tabs")
PAGE_TITLES = {"pages/label.py": "Label", "pages/progress.py": "Progress", "pages/model.py": "Model", "pages/admin.py": "Admin"}
ADMIN_TABS = ["Projects", "Upload data", "Users", "Export labels", "Webhooks", "Audit log"]


class Shown(enum.Enum):
    NOTHING = "nothing of the page, and nobody logged in"
    REFUSED = "only the refusal 'The <page> page is not open to labellers; ask an admin if you need it.'"
    PAGE = "the page"
    PAGE_NO_RETRAIN = "the page, without 'Retrain now'"
    PAGE_RETRAIN = "the page, with 'Retrain now'"
    ADMIN_TABS = "the page with its six tabs, 'Webhooks' and 'Audit log' included"


def _key(widget) -> str:
    return getattr(widget, "key", None) or ""


def page_content(at: AppTest) -> list[str]:
    """Everything drawn (main area and sidebar) except the login form and error messages."""
    shown = []
    for kind in TEXTS:
        shown += [f"{kind}: {getattr(el, 'value', getattr(el, 'label', ''))!s:.60}" for el in at.get(kind)]
    for kind in WIDGETS:
        shown += [f"{kind}: {w.label}" for w in at.get(kind) if w.label not in LOGIN_FORM]
    return [text for text in shown if text != LOGIN_HEADING]


def logged_in_now(at: AppTest) -> bool:
    return state.USER in at.session_state or (
        "authentication_status" in at.session_state and at.session_state["authentication_status"] is True)


def classify(at: AppTest, page: str) -> Shown | str:
    """What one run of ``page`` showed, as a :class:`Shown`; anything else comes back as a description."""
    content, errs = page_content(at), errors(at)
    titles = [t.value for t in at.title]
    keys = {_key(w) for kind in WIDGETS for w in at.get(kind)}
    if titles == [PAGE_TITLES[page]] and errs == []:
        if page == "pages/model.py":
            return Shown.PAGE_RETRAIN if "model-retrain" in keys else Shown.PAGE_NO_RETRAIN
        if page == "pages/admin.py" and [t.label for t in at.tabs] == ADMIN_TABS:
            return Shown.ADMIN_TABS
        if not any(k.startswith("admin-") for k in keys):
            return Shown.PAGE
    if content == [] and errs == [refusal(PAGE_TITLES[page])]:
        return Shown.REFUSED
    if content == [] and errs in ([], [auth.FAILED_LOGIN_MESSAGE], [SIGNED_OUT]) and not logged_in_now(at):
        return Shown.NOTHING
    return f"unexpected: content {content}, errors {errs}, logged in: {logged_in_now(at)}"


# The access matrix -----------------------------------------------------------------------------------------------------

N, R, P = Shown.NOTHING, Shown.REFUSED, Shown.PAGE
ROLES = ("nobody", "labeller", "admin", "deactivated admin")
MATRIX = {  # page               nobody  labeller                 admin                 deactivated admin
    "pages/label.py":    (N,      P,                       P,                    N),
    "pages/progress.py": (N,      P,                       P,                    N),
    "pages/model.py":    (N,      Shown.PAGE_NO_RETRAIN,   Shown.PAGE_RETRAIN,   N),
    "pages/admin.py":    (N,      R,                       Shown.ADMIN_TABS,     N),
}


def _seed(engine) -> None:
    add_user(engine, "boss", role="admin")
    add_user(engine, "root", role="admin")  # so boss may be demoted or deactivated
    add_user(engine, "alice")
    add_project(engine, n=3)


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(app_env, role):
    _seed(app_env)
    expected = {page: row[ROLES.index(role)] for page, row in MATRIX.items()}
    actual = {}
    if role == "nobody":
        for page in MATRIX:  # each page's URL opened in a new browser session
            actual[page] = classify(AppTest.from_file(APP, default_timeout=60).switch_page(page).run(), page)
    else:
        at = logged_in({"labeller": "alice", "admin": "boss", "deactivated admin": "boss"}[role])
        assert errors(at) == [] and at.title[0].value == "Label"
        if role == "deactivated admin":
            with session_scope(app_env) as s:
                auth.set_active(s, "boss", False)
        for page in MATRIX:
            actual[page] = classify(at.switch_page(page).run(), page)
    assert actual == expected


def test_logged_out_the_app_shows_only_the_login_form(app_env):
    _seed(app_env)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert page_content(at) == [] and errors(at) == []
    assert [w.label for w in at.text_input] == ["User name", "Password"]
    assert [b.label for b in at.button] == ["Log in"]


@pytest.mark.parametrize("page", list(MATRIX), ids=[p.split("/")[1].removesuffix(".py") for p in MATRIX])
def test_a_page_url_opened_logged_out_shows_the_login_form(app_env, page):
    at = AppTest.from_file(APP, default_timeout=60).switch_page(page).run()
    assert page_content(at) == []
    assert [w.label for w in at.text_input] == ["User name", "Password"]


# Actions re-checked on the server when they happen ---------------------------------------------------------------------

def _snapshot(engine) -> dict:
    with session_scope(engine, write=False) as s:
        return {
            "projects": s.execute(sa.select(Project.name, Project.options).order_by(Project.name)).all(),
            "users": s.execute(sa.select(User.username, User.role, User.active, User.password_hash).order_by(User.username)).all(),
            "model runs": s.execute(sa.select(sa.func.count()).select_from(ModelRun)).scalar_one(),
            "audit entries": s.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar_one(),
        }


def _create_project(at):
    at.text_input(key="admin-project-name").input("birds")
    at.text_area(key="admin-project-options").input("robin, wren")
    return next(b for b in at.button if b.label == "Create project")


def _create_user(at):
    at.text_input(key="admin-new-username").input("carol")
    at.text_input(key="admin-new-password").input(PASSWORD)
    return next(b for b in at.button if b.label == "Create user")


def _change_user(at):
    at.selectbox(key="admin-edit-user").set_value("alice").run()
    at.selectbox(key="admin-edit-field-role-alice").set_value("admin")  # the form's keys name the user it edits
    at.text_input(key="admin-edit-field-password-alice").input("a new password for alice")
    return next(b for b in at.button if b.label == "Apply")


def _prepare_export(at):
    return at.button(key="admin-export-prepare")


def _retrain(at):
    return at.button(key="model-retrain")


ACTIONS = {  # action: (page, fill the form and return the button to click)
    "create project": ("pages/admin.py", _create_project),
    "create user": ("pages/admin.py", _create_user),
    "change role and password": ("pages/admin.py", _change_user),
    "prepare export": ("pages/admin.py", _prepare_export),
    "retrain now": ("pages/model.py", _retrain),
}
CHANGES = {
    "demoted": (lambda s: auth.set_role(s, "boss", "labeller"), lambda s: auth.set_role(s, "boss", "admin")),
    "deactivated": (lambda s: auth.set_active(s, "boss", False), lambda s: auth.set_active(s, "boss", True)),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_admin_action_is_refused_when_the_account_changed_after_the_page_was_drawn(app_env, change):
    """For every admin action: page drawn while admin, account changed in the database, then the click."""
    _seed(app_env)
    with session_scope(app_env) as s:
        queue.update_project(s, queue.get_project(s, "pets"), model_preset="logistic_regression")
    make, undo = CHANGES[change]
    at = logged_in("boss")
    outcome = {}
    for action, (page, prepare) in ACTIONS.items():
        at.switch_page(page).run()
        assert errors(at) == [], action
        button = prepare(at)
        with session_scope(app_env) as s:
            make(s)
        before = _snapshot(app_env)
        button.click().run()
        login_form = [w.label for w in at.text_input] == ["User name", "Password"]
        button_gone = button.key is not None and button.key not in [b.key for b in at.button]
        refused = login_form or button_gone or STALE in errors(at) or any(" page is not open to " in e for e in errors(at))
        outcome[action] = {"changed": _snapshot(app_env) != before, "refused": refused,
                           "export ready": "admin-export-bytes" in at.session_state or bool(at.get("download_button"))}
        with session_scope(app_env) as s:
            undo(s)
        if login_form:
            at = logged_in("boss")
    # Refused by the page's own check when it reruns (it re-reads the account: the page, or the button, is gone)
    # or by the action's own check.
    assert outcome == {action: {"changed": False, "refused": True, "export ready": False} for action in ACTIONS}


# Secrets hygiene -------------------------------------------------------------------------------------------------------

SECRETS = {  # every password typed below; none may show up anywhere but a bcrypt hash
    "wrong": "Wr0ng-Battery-Staple!",
    "short": "Sh0rt!",
    "too long": "T00-long-" + "q" * 70,
    "new user": "N3w-User-Passphrase",
}


@pytest.fixture
def all_logs(caplog):
    """caplog at DEBUG, also fed by the loggers that do not propagate to the root (Streamlit's)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy sets its own loggers to WARNING
    quiet = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger) and not lg.propagate]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.addHandler(caplog.handler)
        lg.setLevel(logging.DEBUG)
    yield caplog
    for lg, level in zip(quiet, levels):
        lg.removeHandler(caplog.handler)
        lg.setLevel(level)


def test_passwords_never_reach_logs_errors_or_urls(app_env, all_logs, capsys):
    add_user(app_env, "boss", role="admin")
    add_user(app_env, "alice")
    seen: list[str] = []  # error texts, page messages and URLs met on the way

    # The Python API: refusals say what is wrong without echoing the password.
    with session_scope(app_env) as s:
        for password in (SECRETS["short"], SECRETS["too long"]):
            for call in (lambda: auth.create_user(s, "carol", password), lambda: auth.reset_password(s, "alice", password),
                         lambda: auth.hash_password(password)):
                with pytest.raises(ValidationError) as err:
                    call()
                seen += [str(err.value), repr(err.value)]
    for name in ("alice", "nobody-here", "_import", " "):
        result = auth.authenticate(app_env, name, SECRETS["wrong"])
        assert not result.ok
        seen.append(repr(result))
    assert auth.authenticate(app_env, "alice", PASSWORD).ok

    # The web app: failed logins, then an admin creating users and resetting a password, right and wrong.
    for name in ("alice", "nobody-here"):
        at = logged_in(name, SECRETS["wrong"])
        assert errors(at) == [auth.FAILED_LOGIN_MESSAGE]
        seen += errors(at) + [repr(at.query_params)]
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    for password in (SECRETS["short"], SECRETS["new user"]):
        at.text_input(key="admin-new-username").input("carol")
        at.text_input(key="admin-new-password").input(password)
        next(b for b in at.button if b.label == "Create user").click().run()
        seen += errors(at) + [s.value for s in at.success] + [repr(at.query_params)]
    assert "User 'carol' created." in seen
    at.selectbox(key="admin-edit-user").set_value("alice").run()
    at.text_input(key="admin-edit-field-password-alice").input(SECRETS["too long"])
    next(b for b in at.button if b.label == "Apply").click().run()
    assert any("at most 72 bytes" in e for e in errors(at))
    seen += errors(at) + [repr(at.query_params)] + [c.value for c in at.caption]
    assert logged_in("carol", SECRETS["new user"]).title[0].value == "Label"

    records = all_logs.records
    assert any(r.name.startswith("sqlalchemy") for r in records), "SQL was not logged at DEBUG: the check would prove little"
    logged = "\n".join([all_logs.text] + [r.getMessage() + repr(r.args) + (r.exc_text or "") for r in records])
    out = capsys.readouterr()
    for what, password in SECRETS.items():
        assert password not in logged, f"the {what!r} password is in the logs"
        assert password not in out.out + out.err, f"the {what!r} password was printed"
        assert not [text for text in seen if password in text], f"the {what!r} password is in an error, message or URL"
    with session_scope(app_env, write=False) as s:
        stored = [h for h in s.execute(sa.select(User.password_hash)).scalars() if h]
    assert not [h for h in stored if any(p in h for p in SECRETS.values())]
    assert any(h in logged for h in stored), "SQL parameters were not logged: the check would prove little"


@pytest.mark.parametrize("password", ["correct horse battery", "ünïcödé pässwörd ✓", "x" * 72, "$2b$12$looks-like-a-hash"],
                         ids=["ascii", "unicode", "72 bytes", "hash-like"])
def test_a_hash_never_contains_its_password(password):
    hashed = auth.hash_password(password)
    assert password not in hashed and hashed.startswith("$2b$")
    assert auth.verify_password(password, hashed) and not auth.verify_password(password + "!", hashed)


def test_the_session_state_holds_no_password_hash_and_no_cookie_token(app_env, monkeypatch):
    """The password check is auth.authenticate's; a sign-in is a server-side session (no streamlit-authenticator)."""
    add_user(app_env, "alice")
    browser = Browser(monkeypatch)
    at = logged_in("alice")
    assert at.title[0].value == "Label"
    browser.receive_cookie(app_env)
    at.run()
    kept = " ".join(repr(at.session_state[k]) for k in at.session_state)
    with session_scope(app_env, write=False) as s:
        secrets = [auth.get_user(s, "alice").password_hash, *s.execute(sa.select(UserSession.token_hash)).scalars()]
    assert browser.token and not [x for x in [*secrets, browser.token] if x in kept]


class Browser:
    """The browser side of a sign-in, as AppTest cannot be: the cookie its requests carry (``token``), and the
    components the page draws to set (``handoffs``) and clear (``clears``) the HttpOnly cookie."""

    def __init__(self, monkeypatch, token=None):
        self.token, self.handoffs, self.clears = token, [], []
        monkeypatch.setattr(session_cookie, "browser_token", lambda: self.token)
        monkeypatch.setattr(session_cookie, "hand_over", lambda handoff, key: self.handoffs.append(handoff))
        monkeypatch.setattr(session_cookie, "clear", lambda nonce, ended, key: self.clears.append(nonce))

    def receive_cookie(self, engine) -> None:
        """What the page's component does with the last handoff drawn: trade it for the cookie (as the route does)."""
        with session_scope(engine) as s:
            self.token = sessions.issue_cookie(s, self.handoffs[-1], sessions.Rules.of(Settings())).token


def _cookie_of_a_sign_in(engine, name: str) -> str:
    with session_scope(engine) as s:
        started = sessions.start(s, auth.get_user(s, name).id, sessions.Rules.of(Settings()))
    with session_scope(engine) as s:
        return sessions.issue_cookie(s, started.handoff, sessions.Rules.of(Settings())).token


def test_a_login_by_the_form_hands_over_the_cookie_until_the_browser_has_it(app_env, monkeypatch):
    add_user(app_env, "alice")
    browser = Browser(monkeypatch)
    at = logged_in("alice", SECRETS["wrong"])
    assert errors(at) == [auth.FAILED_LOGIN_MESSAGE] and browser.handoffs == []
    assert at.session_state["login-password"] == ""  # a typed password is not kept in the session
    with session_scope(app_env, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(UserSession)).scalar_one() == 0
    at = logged_in("alice")
    assert at.title[0].value == "Label" and len(set(browser.handoffs)) == 1
    browser.receive_cookie(app_env)
    drawn = len(browser.handoffs)
    at.run()
    assert len(browser.handoffs) == drawn  # the browser has its cookie: no more hand-over
    with session_scope(app_env, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(UserSession)).scalar_one() == 1


@pytest.mark.parametrize("account", ["active", "deactivated", "locked", "unknown", "logged out"])
def test_a_sign_in_cookie_signs_in_only_a_live_session_of_an_account_that_may_sign_in_now(app_env, monkeypatch, account):
    add_user(app_env, "boss", role="admin")
    add_user(app_env, "alice")
    token = _cookie_of_a_sign_in(app_env, "alice")
    with session_scope(app_env) as s:
        if account == "deactivated":
            auth.set_active(s, "alice", False)
        elif account == "locked":
            auth.get_user(s, "alice").locked_until = utcnow() + auth.LOCKOUT
        elif account == "logged out":
            sessions.end_by_token(s, token, sessions.EndReason.logged_out)
    browser = Browser(monkeypatch, "not a token of anyone" if account == "unknown" else token)
    at = AppTest.from_file(APP, default_timeout=60).run()
    if account == "active":
        assert errors(at) == [] and at.title[0].value == "Label" and at.session_state[state.USER].username == "alice"
        assert browser.clears == [] and browser.handoffs == []  # signed in by its cookie: nothing to hand over
    else:
        assert [w.label for w in at.text_input] == ["User name", "Password"] and not logged_in_now(at)
        # the form says why, in one line (issue 12, item 3: a traceback before), and a lockout says how long
        assert errors(at) == [{"locked": auth.locked_message(utcnow() + auth.LOCKOUT), "deactivated": auth.DEACTIVATED_MESSAGE,
                               "unknown": login.ENDED_COOKIE_MESSAGE,
                               "logged out": "Your sign-in on this browser has ended: you logged out. Log in again."}[account]]
        assert len(set(browser.clears)) == 1  # the browser drops the cookie, and this session ignores it from now on
        at.run()
        assert len(set(browser.clears)) == 1 and not logged_in_now(at)
        if account == "locked":  # the sign-in ended: once the lockout is over, the copy of the cookie is worth nothing
            with session_scope(app_env, write=False) as s:
                found = sessions.find(s, sessions.Rules.of(Settings()), token=token)
            assert found.ended is sessions.EndReason.refused


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
def test_through_the_router_the_next_run_logs_out_or_demotes_at_once(app_env, change):
    """What a browser gets once the server runs streamlit_app.py first: the account is re-read on every run."""
    _seed(app_env)
    at = logged_in("boss")
    with session_scope(app_env) as s:
        (auth.set_active(s, "boss", False) if change == "deactivated" else auth.set_role(s, "boss", "labeller"))
    at.switch_page("streamlit_app.py").run()
    if change == "deactivated":
        assert errors(at) == [SIGNED_OUT] and page_content(at) == [] and not logged_in_now(at)
    else:
        assert errors(at) == [] and at.title[0].value == "Label"
        assert at.session_state[state.USER].role == "labeller"
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("pages/admin.py")  # the Admin page has left this session's navigation
