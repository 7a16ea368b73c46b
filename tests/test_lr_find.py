"""The learning-rate range test (issue 14): the rules, the chart, and `python -m core lr-find --json` (run by
`core.cli.main` in this process: the test reads what it prints, not how a new interpreter starts)."""
import json

import numpy as np

from core.analysis.charts import lr_find_figure
from core.runs.lr_find import smooth, suggest
from tests.conftest import cli_here

LRS = list(np.logspace(-7, 0, 80))


def _curve(lr):
    """Flat at 0.7 below 1e-4, falling to 0.2 by 1e-2, exploding above."""
    x = np.log10(lr)
    if x < -4:
        return 0.7
    if x < -2:
        return 0.7 - 0.25 * (x + 4)
    return 0.2 + 3 * (x + 2) ** 2


def test_the_suggestions_fall_where_the_loss_falls_not_in_the_flat_start_or_the_explosion():
    picks = suggest(LRS, smooth([_curve(lr) for lr in LRS], beta=0.5))
    assert 1e-4 <= picks["valley"] <= 2e-2 and 1e-4 <= picks["steepest"] <= 2e-2
    assert picks["clear"] and picks["descent"] > 0.5


def test_a_flat_sweep_says_its_suggestion_is_not_clear():
    rng = np.random.default_rng(0)
    picks = suggest(LRS, smooth(list(0.69 + 0.01 * rng.standard_normal(len(LRS)))))
    assert not picks["clear"]


def test_the_chart_has_a_log_rate_axis_and_names_the_suggested_rule():
    smoothed = smooth([_curve(lr) for lr in LRS], beta=0.5)
    result = {"points": [{"lr": a, "loss": b, "smoothed": b} for a, b in zip(LRS, smoothed)],
              "suggestions": suggest(LRS, smoothed), "rule": "valley"}
    fig = lr_find_figure(result)
    assert fig.layout.xaxis.type == "log"
    assert any(a.text.startswith("valley (suggested)") for a in fig.layout.annotations)


def test_lr_find_json_carries_rising_rates_their_losses_and_a_suggested_rate(home, tiny_data):
    import keras
    try:
        out = cli_here("lr-find", "--recipe", "scratch", "--data", tiny_data, "--image-size", 48, "--batch-size", 4,
                       "--batches", 15, "--json", home=home)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # the sweep applied the recipe's precision here
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout[out.stdout.index("{"):])
    lrs = [p["lr"] for p in result["points"]]
    assert len(lrs) >= 10 and lrs == sorted(lrs) and lrs[0] == 1e-7
    assert all(np.isfinite(p["smoothed"]) for p in result["points"])
    assert result["suggested_lr"] == float(f"{result['suggestions']['valley']:.2g}") and result["rule"] == "valley"
    assert result["suggestions"]["valley"] in lrs
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())  # a sweep stores no run
