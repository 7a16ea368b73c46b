"""pages.ui helpers without a page: Markdown escaping of user text, charts kept clear of plotly's toolbar."""
import re

from core.analysis import charts
from pages.ui import MODEBAR_HEIGHT, clear_of_modebar, escape_md


def test_escaped_text_has_no_markdown_left_and_reads_the_same():
    text = "**big** [click](http://x.org) :red[alarm] `code` <b>x</b> $x$ # h _i_ ~s~ 1. a|b"
    escaped = escape_md(text)
    assert re.sub(r"\\(.)", r"\1", escaped).replace("\u200b", "") == text
    for unescaped in ("**", "[", "](", ":red", "`", "<b>", "$x", "_i"):
        assert unescaped not in escaped.replace("\\" + unescaped[0], ""), unescaped


def test_a_titled_chart_gets_room_above_its_titles_for_the_toolbar():
    rows = [{"epoch": i, "phase": "head", "loss": 1 / i, "accuracy": 0.5, "val_loss": 1 / i, "val_accuracy": 0.5,
             "seconds": 1.0} for i in range(1, 4)]
    fig = clear_of_modebar(charts.curves_figure(rows))  # subplot titles "Accuracy" and "Loss" above the plots
    assert fig.layout.margin.t >= MODEBAR_HEIGHT
    untitled = charts.overlay_figure({"a": rows})
    assert clear_of_modebar(untitled).layout.margin.t == 30  # no title: the margin is left alone


def test_escaped_urls_and_addresses_are_not_turned_into_links():
    escaped = escape_md("see http://x.org, www.y.com or me@z.org")
    assert "://" not in escaped and "www." not in escaped and "@z" not in escaped
