"""Session-state keys, in one place (never string literals spread across pages)."""

USER = "sp_current_user"  # CurrentUser of this browser session, re-read from the database every run
PROJECT = "sp_project_id"  # project picked on the Label page
TASK = "sp_task"  # the Task this session holds, per project: {project_id: Task | None}
FLASH = "sp_flash"  # a one-shot message for the Label page
OWN_CHANGES = "sp_own_changes"  # {project_id: [(time, +1 submit / -1 undo)]}: keeps the cached progress count exact
SIGNED_IN_RUNS = "sp_signed_in_runs"  # full script runs since this session signed in (see label_view.render_page)
FIRST_ADMIN_DONE = "sp_first_admin_done"
SET_COOKIE = "sp_set_cookie"  # the login form just succeeded: set the remember-me cookie in this run (login.current_user)

# streamlit-authenticator's own keys (0.4.x): it reads them to sign the cookie and to log out; login.py sets them.
AUTH_STATUS = "authentication_status"  # True signed in, False the last login failed, None neither
AUTH_USERNAME = "username"
AUTH_NAME = "name"
AUTH_ROLES = "roles"
AUTH_LOGGED_OUT = "logout"  # True: ignore the remember-me cookie this session's request carried
