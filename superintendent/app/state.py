"""Session-state keys, in one place (never string literals spread across pages)."""

USER = "sp_current_user"  # CurrentUser of this browser session, re-read from the database every run
PROJECT = "sp_project_id"  # project picked on the Label page
TASK = "sp_task"  # the Task this session holds, per project: {project_id: Task | None}
FLASH = "sp_flash"  # a one-shot message for the Label page
OWN_CHANGES = "sp_own_changes"  # {project_id: [(time, +1 submit / -1 undo)]}: keeps the cached progress count exact
SIGNED_IN_RUNS = "sp_signed_in_runs"  # full script runs since this session signed in (see label_view.render_page)
FIRST_ADMIN_DONE = "sp_first_admin_done"
