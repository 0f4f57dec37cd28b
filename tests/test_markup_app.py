"""The one rule that shows user strings as text where Streamlit reads Markdown (issue 13, item 2), without a browser.

``render.text`` (``superintendent.markdown_text.literal``) must lose nothing (undoing CommonMark's backslash
escapes and taking out the invisible word joiners gives the string back) and leave no Markdown active; guidelines
keep their Markdown but no image. Through Streamlit's AppTest: the helper's output is what the elements get, and the
real Label and Review pages hand options, labels, ids and user names to Streamlit escaped. What a browser then shows
(and that it fetches nothing) is tests/test_markup_browser.py's.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from superintendent import auth, queue
from superintendent.markdown_text import WORD_JOINER, literal, without_images
from superintendent.store import session_scope
from tests.test_app import PASSWORD, add_user, errors, logged_in

NASTY = [
    "![x](http://127.0.0.1:9/leak.png)", "[click](http://127.0.0.1:9/link)", "<img src=http://127.0.0.1:9/i.png>", ":red[spoof]",
    "**bold**", "__under__ *it* _it_ ~~gone~~ `code`", ":smile: :material/home: :streamlit: ::leaf :::box",
    "a -> b <- c <-> d -- e >= f <= g ~= h",
    "$x^2$ $$y$$", "# head", "- item", "+ item", "1. one", "2) two", "> quote", "a | b\n--|--\nc | d", "&amp; &#60; &copy;",
    "back\\slash\\",
    "line one\n===", "***", "www.example.com x@example.com https://example.com", "[^1] [ref] {#id} (round)", "<http://127.0.0.1:9/a>",
    "plain words, nothing special", "", "ünïcödé — “quotes” ½",
]
_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: a backslash before ASCII punctuation is the character itself


@pytest.mark.parametrize("value", NASTY, ids=range(len(NASTY)))
def test_literal_loses_nothing_and_leaves_no_markdown_active(value):
    shown = literal(value)
    assert _UNESCAPE.sub(r"\1", shown).replace(WORD_JOINER, "") == value
    bare = re.sub(r"\\.", "", shown)  # what is left once every escaped character is taken out
    assert not set("\\`*_{}[]()#+-.!|<>~$&=") & set(bare), shown
    assert not re.search(r":[\w+\-/]|@\w|->|<-|--|>=|<=|~=", shown.replace("\\", "")), shown  # shortcodes, e-mail, arrows broken
    assert not re.search(r"(^|\s)www\.", shown.replace("\\", "")), shown


def test_literal_takes_any_value():
    assert literal(3) == "3" and literal(-3.5) == "\\-3\\.5" and literal(None) == "None"
    assert literal(ValueError("label '*x*' is not an option")) == "label '\\*x\\*' is not an option"


def test_guidelines_keep_markdown_but_no_image():
    md = ("# Rules\n\n**Cats** go left. ![x](http://h/x.png) [docs](http://h/docs) ![r][ref]\n\n[ref]: http://h/r.png\n\n"
          "\\![kept](http://h/k.png)")
    out = without_images(md)
    assert "![" not in out.replace("!\\[", "")
    assert out.startswith("# Rules\n\n**Cats** go left. !\\[x](http://h/x.png) [docs](http://h/docs) !\\[r][ref]")
    assert without_images("no images here") == "no images here"


def _helper_page():
    import pandas as pd
    import streamlit as st

    from superintendent.app import render

    value = st.session_state.get("value", "")
    st.button(render.text(value), key="b")
    st.caption(f"by {render.text(value)}")
    render.guidelines(f"Read **this**. {value}")
    render.show_item({"comment": value, value: 1})
    st.dataframe(pd.DataFrame({"v": [value]}))


@pytest.mark.parametrize("value", NASTY[:8], ids=range(8))
def test_the_helper_hands_streamlit_escaped_markdown(value):
    at = AppTest.from_function(_helper_page)
    at.session_state["value"] = value
    at.run()
    assert not at.exception
    assert at.button(key="b").label == literal(value)
    assert at.caption[0].value == f"by {literal(value)}"
    assert at.markdown[0].value == without_images(f"Read **this**. {value}")
    table = at.table[0].value
    assert list(table["value"]) == [literal(value), "1"] and list(table.index) == ["comment", literal(value)]
    assert at.dataframe[0].value["v"].tolist() == [value]  # a data frame shows plain text: left as it is


def _image_page():
    import streamlit as st

    from superintendent.app import render

    render.show_item({"image_path": st.session_state["path"], "name": st.session_state["name"]}, "image")


def test_an_image_file_name_is_its_caption_as_text(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))  # settings follow the environment
    from superintendent.config import get_settings

    folder = get_settings().upload_dir
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(folder / "cat.png")
    at = AppTest.from_function(_image_page, default_timeout=30)  # the first run loads PIL and the image code
    at.session_state["path"] = str(folder / "cat.png")
    at.session_state["name"] = name = "![x](http://127.0.0.1:9/name.png).png"
    at.run()
    assert not at.exception
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert captions == [literal(name), literal(name)]  # the image and its zoomed copy


def test_the_label_and_review_pages_hand_user_strings_to_streamlit_escaped(app_env):
    options = NASTY[:5]
    free = "![l](http://127.0.0.1:9/free.png)"
    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        auth.create_user(s, "![u](http://127.0.0.1:9/u.png)", PASSWORD, "labeller")
        auth.create_user(s, "**sam**", PASSWORD, "labeller")
        auth.create_user(s, ":red[rex]", PASSWORD, "reviewer", display_name="Rex *the* [reviewer](http://127.0.0.1:9/r)")
        project = queue.create_project(s, "pets", options=options, allow_free_text=True, annotations_per_item=2,
                                       option_descriptions={options[0]: "see ![d](http://127.0.0.1:9/d.png)"})
        queue.add_items(s, project, ["a text", "another text"], external_ids=["**id**", "id2"])
        users = {u.username: u.id for u in auth.list_users(s)}
        item = queue.claim_next(s, project, users["![u](http://127.0.0.1:9/u.png)"]).item_id
        queue.submit(s, project, users["![u](http://127.0.0.1:9/u.png)"], item, free)
        queue.submit(s, project, users["**sam**"], item, options[1])
        queue.set_review(s, project, users[":red[rex]"], item, options[3])

    at = logged_in("boss")
    assert errors(at) == []
    assert [b.label for b in at.button if (b.key or "").startswith("label-opt")] == [literal(o) for o in options]
    assert at.button(key="label-opt-0").help == literal("see ![d](http://127.0.0.1:9/d.png)")

    at = logged_in(":red[rex]")  # (AppTest does not keep the sidebar's "Signed in as": tests/test_markup_browser.py reads it)
    at.switch_page("pages/review.py").run()
    assert errors(at) == []
    assert at.subheader[0].value == "a text"
    assert f"id {literal('**id**')}" in [c.value for c in at.caption]
    details = next(m.value for m in at.markdown if "**Consensus:**" in m.value)
    assert f"**Consensus:** {literal(free)} — a tie" in details
    assert f"**Corrected label:** {literal(options[3])} (by {literal(':red[rex]')}," in details
    assert isinstance(at.dataframe[0].value, pd.DataFrame)
