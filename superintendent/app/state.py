"""Session-state keys, in one place (never string literals spread across pages)."""

USER = "sp_current_user"  # CurrentUser of this browser session, re-read from the database every run
PROJECT = "sp_project_id"  # project picked on the Label page
TASK = "sp_task"  # the Task this session holds, per project: {project_id: Task | None}
FLASH = "sp_flash"  # a one-shot message for the Label page
OWN_CHANGES = "sp_own_changes"  # {project_id: [(time, +1 submit / -1 undo)]}: keeps the cached progress count exact
SIGNED_IN_RUNS = "sp_signed_in_runs"  # full script runs since this session signed in (see label_view.render_page)
FIRST_ADMIN_DONE = "sp_first_admin_done"
RETRAINS = "sp_retrains"  # Model page: {project_id: RetrainJob} this session started, until its result is shown
# The sign-in (login.py; the rules are superintendent.sessions', the cookie superintendent.app.session_cookie's).
SESSION = "sp_session_id"  # the sp_user_session row of this tab's sign-in
HANDOFF = "sp_session_handoff"  # the one-time token the page trades for the HttpOnly cookie, until the browser has it
IGNORED_COOKIE = "sp_ignored_cookie"  # fingerprint of the cookie this tab's request carried once it is known dead (logged out)
CLEAR_COOKIE = "sp_clear_cookie"  # (nonce, ended session id): have the browser drop its sign-in cookie
AUTH_STATUS = "authentication_status"  # True signed in, False the last login failed, None neither
AUTH_USERNAME = "username"
