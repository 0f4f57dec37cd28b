"""The text-embeddings preset (issue 14, item 5): WordLlama's weights from its own wheel, never a download, and a message
that says what to install when the extra ``superintendent[embeddings]`` is missing.

The tests of the model itself skip, with the reason, where wordllama is not installed; under CI=true they fail instead
(``.ci/run`` installs the extra). The tests of the missing extra run everywhere: they make ``import wordllama`` fail.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sqlalchemy as sa
from pyjokes.jokes_en import jokes_en
from sklearn.base import clone

from conftest import IN_CI
from test_first_labels import _first_labels
from superintendent import cli, queue
from superintendent.app import render
from superintendent.learning import embeddings, make_preset, run_retrain
from superintendent.learning.embeddings import EMBEDDING_DIM, MISSING_EXTRA, TextEmbeddings
from superintendent.learning.presets import EMBEDDINGS_PRESET, MODEL_PRESETS, PRESET_LABEL_MODES, preset_description
from superintendent.retrain_requests import request_retrain
from superintendent.store import Item, RunStatus, session_scope
from superintendent.validation import ValidationError
from test_app import add_user, errors, logged_in

SEEDS = range(10)
INSTALL = 'pip install "superintendent[embeddings]"'


@pytest.fixture
def wordllama():
    """wordllama is installed; else skip with the reason (fail under CI=true, where .ci/run installs it)."""
    if importlib.util.find_spec("wordllama") is None:
        reason = f"wordllama is not installed (the optional extra: {INSTALL})"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true: .ci/run installs the extra, so the embeddings tests must run, not skip")
        pytest.skip(reason)


@pytest.fixture
def without_wordllama(monkeypatch):
    """``import wordllama`` fails (as where the extra is not installed), and no model is loaded yet in this process."""
    monkeypatch.setitem(sys.modules, "wordllama", None)
    monkeypatch.setattr(embeddings, "_model", None)


def _jokes():
    texts = jokes_en["neutral"] + jokes_en["chuck"]
    return texts, np.array(["neutral"] * len(jokes_en["neutral"]) + ["chuck"] * len(jokes_en["chuck"]))


# --------------------------------------------------------------------------- the transformer


def test_texts_become_256_numbers_each_in_batches_of_any_size(wordllama):
    texts, _ = _jokes()
    one_batch = TextEmbeddings(batch_chars=10**9).fit(texts).transform(texts)
    assert one_batch.shape == (len(texts), EMBEDDING_DIM) and np.isfinite(one_batch).all()
    assert np.array_equal(TextEmbeddings(batch_chars=1).fit(texts).transform(texts), one_batch)  # one text per batch
    assert np.array_equal(TextEmbeddings(batch_chars=500).fit(texts).transform(texts), one_batch)  # batches by length, order kept
    odd = TextEmbeddings().fit([]).transform(["", 42, "x" * 50_000, texts[0]])
    assert not odd[0].any() and odd[1].any() and np.array_equal(odd[3], one_batch[0])  # empty: zeros; 42 as "42"
    assert TextEmbeddings().fit([]).transform([]).shape == (0, EMBEDDING_DIM)


def test_the_transformer_clones_with_no_model_inside(wordllama):
    fitted = TextEmbeddings(max_chars=100).fit(["a text"])
    assert clone(fitted).get_params() == {"max_chars": 100, "batch_chars": 100_000}
    assert vars(fitted) == {"max_chars": 100, "batch_chars": 100_000, "n_features_out_": EMBEDDING_DIM}  # the 32 MB model is
    # shared by the process, not held by each transformer (a fitted pipeline stays small wherever it is copied)
    with pytest.raises(ValidationError, match="max_chars must be a whole number of at least 1"):
        TextEmbeddings(max_chars=0).fit(["a text"])


def test_the_model_loads_with_no_network_and_writes_no_cache(wordllama, tmp_path):
    """In a fresh process whose sockets cannot connect, behind an unreachable proxy, with an empty home folder."""
    code = textwrap.dedent("""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("no network in this test")
        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        from superintendent.learning.embeddings import TextEmbeddings
        print(TextEmbeddings().fit(["a"]).transform(["offline, for sure", "yes"]).shape)
    """)
    env = {**os.environ, "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"(2, {EMBEDDING_DIM})"
    assert list(tmp_path.iterdir()) == []  # nothing cached under the home folder (~/.cache/wordllama)


# --------------------------------------------------------------------------- the preset


def test_the_preset_is_listed_for_classification():
    assert EMBEDDINGS_PRESET in MODEL_PRESETS
    assert PRESET_LABEL_MODES[EMBEDDINGS_PRESET] == ("single", "multi")


def test_without_the_extra_the_preset_description_names_it(without_wordllama):
    assert preset_description(EMBEDDINGS_PRESET) == f"{MODEL_PRESETS[EMBEDDINGS_PRESET]}; needs {INSTALL}"


def test_with_the_extra_the_preset_description_asks_for_no_install(wordllama):
    assert INSTALL not in preset_description(EMBEDDINGS_PRESET)  # it is installed: no stale advice on the Admin or Model page
    assert preset_description(EMBEDDINGS_PRESET) == MODEL_PRESETS[EMBEDDINGS_PRESET]


def test_the_preset_beats_the_majority_class_at_20_labels(wordllama):
    x, y = _jokes()
    passed = []
    for seed in SEEDS:
        labelled, rest = _first_labels(y, 20, seed)
        predicted = make_preset(EMBEDDINGS_PRESET).fit([x[i] for i in labelled], y[labelled]).predict([x[i] for i in rest])
        values, counts = np.unique(y[labelled], return_counts=True)
        majority = float(np.mean(y[rest] == values[counts.argmax()]))
        passed.append(len(set(predicted)) > 1 and float(np.mean(predicted == y[rest])) > majority)
    assert all(passed), f"seeds passing: {sum(passed)} of {len(passed)}"


def _jokes_project(engine, name="jokes", n_labels=20, **settings):
    x, y = _jokes()
    labelled, _ = _first_labels(y, n_labels, 0)
    chosen = set(labelled.tolist())
    with session_scope(engine) as s:
        project = queue.create_project(s, name, options=["neutral", "chuck"], data_type="text", model_preset=EMBEDDINGS_PRESET,
                                       **settings)
        queue.add_items(s, project, x, labels=[y[i] if i in chosen else None for i in range(len(y))])
    return project


def _hints(engine, project):
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(Item.hint).where(Item.project_id == project.id, sa.not_(Item.done))).scalars().all()


@pytest.mark.parametrize("acquisition", ["margin", "margin_diverse"])
def test_a_retrain_with_the_preset_ranks_and_writes_hints(wordllama, engine, acquisition):
    project = _jokes_project(engine, acquisition_function=acquisition)
    run = run_retrain(engine, project)
    assert run.status == RunStatus.succeeded.value, run.message
    assert run.n_labels == 20 and run.n_ranked == len(_jokes()[1]) - 20
    hints = _hints(engine, project)
    assert len(hints) == run.n_ranked and {"neutral", "chuck"} <= {str(h).strip('"') for h in hints}


def test_a_multi_label_retrain_with_the_preset(wordllama, engine):
    """Options joke (every labelled item), chuck (some) and pun (none yet): 40 labelled jokes in a random order."""
    x, y = _jokes()
    order = np.random.default_rng(0).permutation(len(y))
    labels = [(["joke", "chuck"] if y[i] == "chuck" else ["joke"]) if k < 40 else None for k, i in enumerate(order)]
    with session_scope(engine) as s:
        project = queue.create_project(s, "tags", options=["joke", "chuck", "pun"], label_mode="multi", model_preset=EMBEDDINGS_PRESET)
        queue.add_items(s, project, [x[i] for i in order], labels=labels)
    run = run_retrain(engine, project)
    assert run.status == RunStatus.succeeded.value, run.message
    assert run.n_labels == 40 and run.n_ranked == len(y) - 40


# --------------------------------------------------------------------------- the extra missing: what a person sees


def test_without_the_extra_the_preset_says_what_to_install(without_wordllama):
    with pytest.raises(ValidationError) as raised:
        make_preset(EMBEDDINGS_PRESET)
    assert str(raised.value) == MISSING_EXTRA and INSTALL in MISSING_EXTRA
    with pytest.raises(ValidationError, match="superintendent\\[embeddings\\]"):
        TextEmbeddings().fit(["a text"])  # the transformer used on its own says the same


def test_without_the_extra_a_retrain_is_skipped_with_the_message(without_wordllama, engine):
    project = _jokes_project(engine)
    with session_scope(engine, write=False) as s:
        before = s.execute(sa.select(Item.id, Item.priority).where(Item.project_id == project.id).order_by(Item.id)).all()
    run = run_retrain(engine, project)
    assert run.status == RunStatus.skipped.value and run.message == MISSING_EXTRA
    with pytest.raises(ValidationError, match="superintendent\\[embeddings\\]"):  # "Retrain now": refused before it starts
        request_retrain(engine, project, requested_by="boss")
    with session_scope(engine, write=False) as s:
        after = s.execute(sa.select(Item.id, Item.priority).where(Item.project_id == project.id).order_by(Item.id)).all()
    assert after == before and set(_hints(engine, project)) == {None}


def test_without_the_extra_retrain_now_on_the_model_page_shows_the_message(without_wordllama, app_env):
    add_user(app_env, "boss", role="admin")
    _jokes_project(app_env)
    at = logged_in("boss")
    at.switch_page("pages/model.py").run()
    at.button(key="model-retrain").click().run()
    assert errors(at) == [render.text(MISSING_EXTRA)]  # the message as Markdown shows it: escaped, read as written


def test_with_the_extra_the_model_page_names_the_model_without_install_advice(wordllama, app_env):
    add_user(app_env, "boss", role="admin")
    _jokes_project(app_env)
    at = logged_in("boss")
    at.switch_page("pages/model.py").run()
    shown = " ".join(m.value for m in at.markdown)
    assert render.text(MODEL_PRESETS[EMBEDDINGS_PRESET]) in shown and "pip install" not in shown


def test_without_the_extra_the_admin_page_refuses_the_preset_with_the_message(without_wordllama, app_env):
    add_user(app_env, "boss", role="admin")
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    at.text_input(key="admin-project-name").input("jokes")
    at.selectbox(key="admin-project-data_type").set_value("text")
    at.text_area(key="admin-project-options").input("neutral, chuck")
    assert INSTALL in at.selectbox(key="admin-project-model").format_func(EMBEDDINGS_PRESET)  # said as it is picked
    at.selectbox(key="admin-project-model").set_value(EMBEDDINGS_PRESET)
    next(b for b in at.button if b.label == "Create project").click().run()
    assert errors(at) == [render.text(MISSING_EXTRA)]
    with session_scope(app_env, write=False) as s:
        assert queue.list_projects(s) == []


def test_without_the_extra_the_cli_refuses_the_preset_with_the_message(without_wordllama, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["init"]) == 0
    code = cli.main(["create-project", "jokes", "--options", "neutral,chuck", "--data-type", "text", "--model-preset", EMBEDDINGS_PRESET])
    out, err = capsys.readouterr()
    assert code != 0 and INSTALL in err and "Traceback" not in out + err
