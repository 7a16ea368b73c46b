"""The benchmark runs end to end in quick mode and reports sane figures (never how fast it is)."""
import json

import pytest

from tests.conftest import cli


@pytest.mark.nightly  # about 75 s on AMX, minutes on AVX2-only; the ceiling's measurement runs by default below
@pytest.mark.slow
def test_quick_benchmark_reports_every_figure(home, tmp_path):
    doc = tmp_path / "benchmarks.md"
    result = json.loads(cli("bench", "--quick", "--json", "--markdown", doc, home=home, timeout=900).stdout)
    fe = result["feature_extraction"]
    for key in ("reference_images_per_s", "engine_images_per_s", "ceiling_images_per_s"):
        assert fe[key] > 0
    assert 0 < fe["engine_fraction_of_ceiling"] <= 1.5
    assert result["repeat_extraction"]["repeat_s"] < result["repeat_extraction"]["first_s"]
    ft = result["fine_tune_epoch"]
    assert ft["reference_s_per_epoch"] > 0 and ft["engine_s_per_epoch"] > 0
    accuracies = {k: result["precision_cost"][k] for k in ("float32", "auto")}
    assert all(0 <= v <= 1 for v in accuracies.values())
    # every ceiling it quotes is computed in this run: TensorFlow float32 always, bfloat16 where native
    ceilings = result["ceilings"]
    assert ceilings["tensorflow float32"] > 0 and fe["ceiling_images_per_s"] == max(ceilings.values())
    assert ("tensorflow bfloat16" in ceilings) == (result["machine"]["kind"] in ("AMX", "AVX512-BF16"))
    aug = result["augmented_epoch"]
    assert all(aug[k] > 0 for k in ("fe_aug_reference_s", "fe_aug_engine_s", "ft_aug_reference_s_per_epoch",
                                     "ft_aug_engine_s_per_epoch"))
    assert len(result["goals"]) == 5 and all(isinstance(g["met"], bool) for g in result["goals"])
    assert result["preview_ms_9_copies"] > 0
    assert all(v > 0 for v in result["peak_memory_mb"].values()) and len(result["peak_memory_mb"]) == 2
    assert not (home / "cache").exists()  # the benchmark works in its own temporary home
    # the Markdown page is written from this result: its host and its figures
    text = doc.read_text()
    machine = result["machine"]
    assert machine["kind"] in ("AMX", "AVX512-BF16", "AVX-512", "AVX2-only", "other") and machine["cores"] > 0
    assert f"**{machine['kind']}**" in text and machine["cpu"] in text and "--markdown" in text
    for figure in (fe["reference_images_per_s"], fe["engine_images_per_s"], fe["ceiling_images_per_s"],
                   ft["reference_s_per_epoch"], ft["engine_s_per_epoch"], result["preview_ms_9_copies"],
                   aug["fe_aug_reference_s"], aug["fe_aug_engine_s"], *ceilings.values(),
                   *accuracies.values(), *result["peak_memory_mb"].values()):
        assert f"{figure}" in text, figure
    assert all(g["figure"] in text for g in result["goals"]) and "Host:" in text


def test_the_ceiling_runs_every_batch_shape_untimed_then_keeps_the_best_timed_pass():
    """bench.bare_forward: the engine's batches of 32 (a remainder batch included), each shape warmed up once,
    then the best of CEILING_PASSES timed passes over all the images."""
    import numpy as np
    from core.tools import bench
    calls = []
    rate = bench.bare_forward(lambda batch: calls.append(len(batch)), np.zeros((40, 8, 8, 3), "uint8"))
    assert calls == [32, 8] * (1 + bench.CEILING_PASSES)  # one untimed pass, then the timed ones
    assert rate > 0
