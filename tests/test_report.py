"""Teaching aids: the one-page run report, presentation mode, PNG-downloadable charts, the pages' explanations."""
import ast
import json
from html.parser import HTMLParser

import pytest
from streamlit.testing.v1 import AppTest

from core.analysis import report
from core.runs import store
from core.config import RunSpec
from tests.conftest import ROOT

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class Checker(HTMLParser):
    """Fails on a closing tag that does not match the innermost open one; records what is left open."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.scripts_with_src = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "script" and dict(attrs).get("src"):
            self.scripts_with_src.append(dict(attrs)["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def check_html(text: str) -> Checker:
    assert text.lstrip().lower().startswith("<!doctype html>")
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker


@pytest.fixture
def hostile_run(lab_home, trained_lab):
    run_id = trained_lab["runs"][0]
    store.rename_run(run_id, "<script>alert('x')</script> & co | pipes")
    return run_id


def test_html_report_is_valid_self_contained_and_escaped(hostile_run):
    evaluation = {"split": "test", "n": 8, "accuracy": 0.625, "loss": 0.6931, "classes": ["cats", "dogs"],
                  "confusion_matrix": [[3, 1], [2, 2]]}
    text = report.html_report(hostile_run, evaluation)
    checker = check_html(text)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in text and "<script>alert" not in text
    assert checker.scripts_with_src == []  # plotly.js is embedded: the report opens offline
    assert "Plotly.newPlot" in text and len(text) > 1_000_000
    for piece in ("best validation accuracy", "final validation loss", "random initialisation", hostile_run,
                  "Evaluation on the test split", "0.6250", "image_size", "Learning curves"):
        assert piece in text, piece
    rows = store.epochs(hostile_run)
    assert f"{max(r['val_accuracy'] for r in rows):.4f}" in text


def test_markdown_report(hostile_run):
    text = report.markdown_report(hostile_run)
    assert text.startswith("# <script>alert('x')</script> & co \\| pipes")
    assert "| best validation accuracy |" in text and "| epoch | phase |" in text
    assert text.count("\n| 1 | train |") == 1 and "| 2 | train |" in text
    assert "Evaluation" not in text


def test_report_of_a_run_without_epochs(home):
    run_id = store.create_run(RunSpec.from_recipe("scratch").to_dict(), "empty", "scratch", None, 30)
    check_html(report.html_report(run_id))
    assert "No finished epoch yet" in report.html_report(run_id)
    with pytest.raises(ValueError, match="no run"):
        report.html_report("nope")


def test_every_chart_goes_through_the_shared_helper_with_a_png_button():
    """Only pages/ui calls st.plotly_chart, always with `config=`: PNG download enabled, no plotly logo."""
    from pages.ui import plotly_config
    calls = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "plotly_chart":
                calls.append((path.relative_to(ROOT).as_posix(), {k.arg for k in node.keywords}))
    assert calls == [("pages/ui/__init__.py", {"key", "config"})]
    config = plotly_config("x")
    assert config["displaylogo"] is False and config["toImageButtonOptions"]["format"] == "png"


def test_compare_page_offers_the_report(lab_home, trained_lab):
    at = AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [b.label for b in at.get("download_button")]
    assert "Download the run's report (HTML, opens offline)" in labels
    assert "Download the run's report (Markdown)" in labels
    for chart in at.get("plotly_chart"):
        assert json.loads(chart.proto.config)["toImageButtonOptions"]["format"] == "png"


def test_presentation_mode_is_shared_and_kept_in_the_url(lab_home):
    at = AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=60)
    at.run()
    toggle = at.toggle(key="presentation_toggle")
    assert toggle.value is False and "present" not in at.query_params
    normal = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"].get("height")
    toggle.set_value(True).run()
    assert at.session_state["presentation"] is True and at.query_params["present"] in ("1", ["1"])
    assert any("font-size: 20px" in m.value for m in at.markdown)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["height"] > (normal or 450)
    at.toggle(key="presentation_toggle").set_value(False).run()
    assert "present" not in at.query_params and at.session_state["presentation"] is False
    # a reload (a new session) with ?present=1 starts in presentation mode, on any page
    again = AppTest.from_file(str(ROOT / "pages/1_Augmentation.py"), default_timeout=60)
    again.query_params["present"] = "1"
    again.run()
    assert again.toggle(key="presentation_toggle").value is True


def test_presentation_mode_follows_the_user_across_pages(lab_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.toggle(key="presentation_toggle").set_value(True).run()
    at.switch_page("pages/6_Ladder.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="presentation_toggle").value is True
    assert any("font-size: 20px" in m.value for m in at.markdown)


def test_teaching_expanders_are_closed_by_default(lab_home, trained_lab, monkeypatch):
    aug = AppTest.from_file(str(ROOT / "pages/1_Augmentation.py"), default_timeout=60)
    aug.run()
    assert {e.label: e.proto.expanded for e in aug.expander}["Why augment only the training data?"] is False
    train = AppTest.from_file(str(ROOT / "pages/3_Train.py"), default_timeout=60)
    train.run()
    labels = {e.label: e.proto.expanded for e in train.expander}
    assert labels["Why can the validation loss worsen while the accuracy improves?"] is False
    assert not any("BatchNorm" in label for label in labels)
    train.selectbox(key="train_recipe").set_value("scratch_bn").run()
    labels = {e.label: e.proto.expanded for e in train.expander}
    assert labels["Why BatchNorm before ReLU, and why no bias in the convolution?"] is False
