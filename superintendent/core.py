"""The Python API: ``Superintendent``, as in the original library's documentation, on the database queue.

Several ``Superintendent`` objects (in scripts, notebooks, the web app's
processes, an orchestrator) that name the same database and project share
one queue: a data scientist can add data and orchestrate active learning
from one machine while others label.
"""

from __future__ import annotations

import getpass
import math
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlmodel import Session

from superintendent import queue as q
from superintendent.acquisition_functions import get_acquisition_function
from superintendent.auth import ensure_user
from superintendent.config import get_settings
from superintendent.learning import EvalMethod, Preprocess, RetrainOptions
from superintendent.orchestration import orchestrate as _orchestrate
from superintendent.orchestration import retrain_project
from superintendent.learning.runs import latest_runs
from superintendent.store import DatabaseError, ModelRun, Project, Role, init_db, make_engine, session_scope
from superintendent.validation import ValidationError, split_features

MEMORY_URL = "sqlite://"


class ProjectQueue:
    """One worker's handle on a project's queue (``Superintendent.queue``).

    ``pop`` leases the next item, ``submit`` stores a label, ``skip`` and
    ``undo`` do what they say; every call is one transaction. Each call reads
    the project afresh (one key lookup): settings changed elsewhere (options,
    overlap, lease) count at once, and a project deleted meanwhile raises
    :class:`NotFoundError` naming it.
    """

    def __init__(self, engine: Any, project: Project, user_id: int) -> None:
        self.engine = engine
        self.project = project
        self.user_id = user_id

    def _current(self, session: Session) -> Project:
        self.project = q.reload_project(session, self.project)
        return self.project

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A database session (committed on exit) for inspecting the tables directly."""
        with session_scope(self.engine) as s:
            yield s

    def __len__(self) -> int:
        return self.progress_report().total

    def pop(self) -> tuple[int, Any]:
        """Lease the next item: ``(item_id, data)``. Raises IndexError when nothing is left to label."""
        with session_scope(self.engine) as s:
            task = q.claim_next(s, self._current(s), self.user_id)
        if task is None:
            raise IndexError("nothing left to label in this project")
        return task.item_id, task.data

    def submit(self, item_id: int, label: Any) -> None:
        with session_scope(self.engine) as s:
            q.submit(s, self._current(s), self.user_id, item_id, label)

    def skip(self, item_id: int) -> None:
        with session_scope(self.engine) as s:
            q.skip(s, self._current(s), self.user_id, item_id)

    def undo(self) -> tuple[int, Any] | None:
        """Take back this worker's last label; returns the item, leased again, or None."""
        with session_scope(self.engine) as s:
            task = q.undo(s, self._current(s), self.user_id)
        return None if task is None else (task.item_id, task.data)

    def reprioritise(self, item_ids: Any, priorities: Any) -> int:
        return q.reprioritise(self.engine, self.project, item_ids, priorities)

    def progress_report(self) -> q.Progress:
        with session_scope(self.engine, write=False) as s:
            return q.progress(s, self._current(s))

    @property
    def progress(self) -> float:
        return self.progress_report().fraction

    def list_labels(self) -> list[Any]:
        with session_scope(self.engine, write=False) as s:
            return q.all_labels(s, self._current(s))

    def labelled_data(self) -> q.LabelledData:
        with session_scope(self.engine, write=False) as s:
            return q.labelled_data(s, self._current(s))


def _worker_name(worker_id: bool | str) -> str:
    if isinstance(worker_id, str):
        if not worker_id.strip():
            raise ValidationError("worker_id must be a non-empty string, True or False")
        return worker_id
    if worker_id is True:
        return os.environ.get("SUPERINTENDENT_WORKER_ID") or getpass.getuser()
    return f"worker-{uuid.uuid4().hex[:12]}"


class Superintendent:
    """Data point labelling, with active learning, on a database queue.

    Parameters
    ----------
    features : numpy array, pandas DataFrame or sequence, optional
        Data to label (one item per row / element). Can be added later with
        :meth:`add_features`; adding the same data again adds nothing.
    labels : sequence, optional
        Labels you already have, one per feature (None for unlabelled).
    database_url, connection_string : str, optional
        SQLAlchemy URL of the database holding the queue (the two names are
        the same argument). Without one, the queue lives in memory.
    project : str
        The project's name; one database holds many projects.
    options : sequence, optional
        The labels to choose from (used when the project is created). With no
        options, any label is accepted.
    label_mode : "single", "multi", "spans" or "boxes"
        The project's kind. Multi-label projects take a list of labels per
        item; the model is then wrapped in ``MultiOutputClassifier``. A
        ``"spans"`` project marks parts of texts (a label is a list of
        ``{"start", "end", "label"}``), a ``"boxes"`` project draws boxes on
        images (``{"x", "y", "width", "height", "label"}`` in pixels); both
        need ``options`` (what a mark can be). See docs/spans-and-boxes.md.
    model : sklearn estimator, optional
        A model with ``fit`` and ``predict_proba``, retrained on the labels.
    eval_method : callable, optional
        ``eval_method(model, x, y) -> scores``; default: 3-fold cross-validated accuracy.
    acquisition_function : str or callable, optional
        ``"entropy"``, ``"margin"``, ``"certainty"`` or a function from class
        probabilities to a visiting order. Default: the project's (``"margin"``).
    shuffle_prop : float
        Proportion of randomly placed items after each re-ordering.
    model_preprocess : callable, optional
        ``model_preprocess(x, y) -> (x, y)``, applied before fitting and
        predicting (``y`` is None for unlabelled data).
    worker_id : bool or str
        Name of this worker in the queue: a string, True (``$SUPERINTENDENT_WORKER_ID``
        or the login name) or False (a random id).
    labelling_widget : optional
        An input widget with ``display(data)`` and ``on_submit(callback)``
        (ipyannotations' widgets, as in the original library), used by the
        notebook widget in place of its own buttons.

    Shown in a Jupyter cell, the object displays :attr:`widget`, a labelling
    widget on this queue (``pip install superintendent[notebook]``).
    """

    def __init__(
        self,
        *,
        features: Any = None,
        labels: Any = None,
        database_url: str | None = None,
        connection_string: str | None = None,
        project: str = "default",
        options: Any = None,
        label_mode: str = "single",
        model: Any = None,
        eval_method: EvalMethod | None = None,
        acquisition_function: str | Callable[[np.ndarray], np.ndarray] | None = None,
        shuffle_prop: float = 0.1,
        model_preprocess: Preprocess | None = None,
        worker_id: bool | str = False,
        labelling_widget: Any = None,
    ) -> None:
        if database_url and connection_string and database_url != connection_string:
            raise ValidationError("database_url and connection_string name the same thing; give one of them")
        if acquisition_function is not None:
            get_acquisition_function(acquisition_function)  # an unknown name fails here, before any work
        if not 0.0 <= float(shuffle_prop) <= 1.0:
            raise ValidationError(f"shuffle_prop must be between 0 and 1; got {shuffle_prop!r}")
        if labelling_widget is not None and not all(callable(getattr(labelling_widget, m, None)) for m in ("display", "on_submit")):
            raise ValidationError("labelling_widget must have display(data) and on_submit(callback) methods, like ipyannotations' "
                                  f"ClassLabeller; got {type(labelling_widget).__name__}")
        if model is not None and not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
            raise ValidationError(f"model must have fit and predict_proba methods (scikit-learn interface); got {type(model).__name__}")
        self.database_url = database_url or connection_string or MEMORY_URL
        self.engine = make_engine(self.database_url)
        try:
            init_db(self.engine)
        except DatabaseError:
            self.engine.dispose()
            raise
        self.model = model
        self.eval_method = eval_method
        self.acquisition_function = acquisition_function
        self.shuffle_prop = float(shuffle_prop)
        self.model_preprocess = model_preprocess
        self.labelling_widget = labelling_widget
        self._widget: Any = None
        self.worker_id = _worker_name(worker_id)
        settings: dict[str, Any] = {"options": options, "label_mode": label_mode, "shuffle_prop": self.shuffle_prop,
                                    "lease_seconds": get_settings().default_lease_seconds}
        if isinstance(acquisition_function, str):
            settings["acquisition_function"] = acquisition_function.lower()
        with session_scope(self.engine) as s:
            # Race-free: several processes starting on one new project at once all get the one project.
            found, _ = q.get_or_create_project(s, project, **settings)
            user_id = ensure_user(s, self.worker_id, role=Role.system)
        self.queue = ProjectQueue(self.engine, found, user_id)
        if features is not None:
            self.add_features(features, labels)

    @property
    def project(self) -> Project:
        """The project, as last read from the database (each queue call reads it afresh)."""
        return self.queue.project

    def __repr__(self) -> str:
        p = self.queue.progress_report()
        where = "memory" if self.database_url == MEMORY_URL else self.engine.url.render_as_string(hide_password=True)
        return f"<Superintendent project={self.project.name!r} items={p.total} labelled={p.labelled} database={where}>"

    @property
    def widget(self) -> Any:
        """The notebook labelling widget on this queue (built on first use; needs ``superintendent[notebook]``)."""
        if self._widget is None:
            from superintendent.notebook import SuperintendentWidget  # the only module importing ipywidgets

            self._widget = SuperintendentWidget(self.engine, self.project, self.queue.user_id,
                                                retrain=None if self.model is None else self.retrain,
                                                labelling_widget=self.labelling_widget)
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        # Jupyter shows the widget; a missing ipywidgets raises an ImportError naming the install command.
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        return {**bundle, "text/plain": repr(self)}  # where widgets cannot be drawn, the summary

    def add_features(self, features: Any, labels: Any = None) -> q.AddResult:
        """Add data to the queue (and the labels you have for it). Adding data already there adds nothing."""
        items = split_features(features)
        with session_scope(self.engine) as s:
            result = q.add_items(s, self.queue._current(s), items, labels=labels)
        if self._widget is not None:
            self._widget.refresh()  # new data: a widget showing "nothing left" gets an item
        return result

    def _options(self, shuffle_prop: float | None = None) -> RetrainOptions:
        return RetrainOptions(model=self.model, eval_method=self.eval_method, model_preprocess=self.model_preprocess,
                              acquisition_function=self.acquisition_function,
                              shuffle_prop=self.shuffle_prop if shuffle_prop is None else shuffle_prop, worker=self.worker_id)

    def retrain(self, button: Any = None) -> ModelRun | None:
        """Fit the model on the labels so far, score it, and re-order the queue.

        Returns the recorded run (its ``status``, ``score_mean``, ``message``),
        or None when another process is retraining this project right now.
        ``button`` is accepted and ignored, as in the original.
        """
        if self.model is None:
            raise ValidationError("no model to retrain: pass model=... to Superintendent")
        return retrain_project(self.engine, self.project, self._options())

    def orchestrate(self, interval_seconds: float | None = None, interval_n_labels: int = 0, shuffle_prop: float | None = None,
                    max_runs: float = math.inf) -> list[ModelRun]:
        """Retrain once (``interval_seconds=None``), or every ``interval_seconds`` while at least
        ``interval_n_labels`` new labels came in, at most ``max_runs`` times; stops on Ctrl-C / SIGTERM.
        ``shuffle_prop`` overrides the one given to the constructor for these runs."""
        if self.model is None:
            raise ValidationError("no model to orchestrate: pass model=... to Superintendent")
        return _orchestrate(self.engine, self.project, self._options(shuffle_prop), interval_seconds=interval_seconds,
                            interval_n_labels=interval_n_labels, max_runs=max_runs, on_run=_print_run)

    @property
    def new_labels(self) -> list[Any]:
        """One entry per item, in the order added: its label, or None while unlabelled."""
        return self.queue.list_labels()

    @property
    def progress(self) -> float:
        """Fraction of items labelled (read fresh from the database)."""
        return self.queue.progress

    @property
    def model_runs(self) -> list[ModelRun]:
        return latest_runs(self.engine, self.project)


def _print_run(run: ModelRun) -> None:
    if run.status == "succeeded" and run.score_mean is not None:
        print(f"Score: {run.score_mean:.3f}")
    else:
        print(f"Retrain {run.status}: {(run.message or '').splitlines()[0] if run.message else ''}".rstrip(": "))
