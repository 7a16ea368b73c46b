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
    assert ceilings["tensorflow float32"] > 0 and fe["ceiling"] == max(ceilings, key=ceilings.get)
    assert fe["ceiling_images_per_s"] > 0  # the fastest of them, again over all the engine's images
    kind = result["machine"]["kind"].split(" (")[0]  # an ONEDNN_MAX_CPU_ISA cap is named after the kind
    assert ("tensorflow bfloat16" in ceilings) == (kind in ("AMX", "AVX512-BF16"))
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
    assert kind in ("AMX", "AVX512-BF16", "AVX-512", "AVX2-only", "other") and machine["cores"] > 0
    assert f"**{machine['kind']}**" in text and machine["cpu"] in text and "--markdown" in text
    for figure in (fe["reference_images_per_s"], fe["engine_images_per_s"], fe["ceiling_images_per_s"],
                   ft["reference_s_per_epoch"], ft["engine_s_per_epoch"], result["preview_ms_9_copies"],
                   aug["fe_aug_reference_s"], aug["fe_aug_engine_s"], *ceilings.values(),
                   *accuracies.values(), *result["peak_memory_mb"].values()):
        assert f"{figure}" in text, figure
    assert all(g["figure"] in text for g in result["goals"]) and "## Host" in text


def test_the_ceiling_runs_every_batch_shape_untimed_then_keeps_the_best_timed_pass():
    """bench_ceiling.bare_forward: the engine's batches of 32 (a remainder batch included), one batch of each shape
    warmed up, then the best of CEILING_PASSES timed passes over all the images."""
    import numpy as np
    from core.tools import bench_ceiling
    calls = []
    rate = bench_ceiling.bare_forward(lambda batch: calls.append(len(batch)), np.zeros((72, 8, 8, 3), "uint8"))
    # one batch of each shape untimed, then the passes
    assert calls == [32, 8] + [32, 32, 8] * bench_ceiling.CEILING_PASSES
    assert rate > 0


def test_the_page_keeps_one_result_per_cpu_kind_and_lists_every_kinds_goals(tmp_path):
    """bench_doc.record keeps each run as bench-results/<kind>.json beside the page (the newest of a kind
    replacing the last); the goals table then has every kind's rows, each naming its host. The result is a real
    `python -m core bench --quick --json` output (tests/data), so the page writer sees every field a run gives."""
    import copy
    from pathlib import Path
    from core.tools import bench_doc
    amx = json.loads((Path(__file__).parent / "data" / "bench_quick_result.json").read_text())
    avx2 = copy.deepcopy(amx)
    avx2["machine"].update(kind="AVX2-only (an AMX CPU capped by ONEDNN_MAX_CPU_ISA=AVX2)", isa=["avx2"])
    avx2["goals"][0]["value"] = "2.01x"
    page = tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir()
    assert bench_doc.record(avx2, "python -m core bench --quick --markdown docs/benchmarks.md", page) == []
    others = bench_doc.record(amx, "python -m core bench --quick --markdown docs/benchmarks.md", page)
    assert [o["machine"]["kind"] for o in others] == [avx2["machine"]["kind"]]
    assert sorted(p.name for p in (page.parent / "bench-results").iterdir()) == [
        "amx.json", "avx2-only-an-amx-cpu-capped-by-onednn-max-cpu-isa-avx2.json"]
    text = bench_doc.markdown(amx, "python -m core bench --quick --markdown docs/benchmarks.md", 60, others)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "**" in line.split("|")[1]]
    assert len(rows) == 2 * len(amx["goals"])
    assert sum("**AMX**" in r for r in rows) == len(amx["goals"]) and "| 2.01x |" in text
    # a newer run of a kind replaces the kept one
    bench_doc.record(dict(avx2, goals=amx["goals"]), "again", page)
    assert len(list((page.parent / "bench-results").iterdir())) == 2


def test_the_page_says_how_much_the_fastest_bare_pass_gains_over_tensorflow_float32():
    """The headroom sentence: the fastest bare pass over TensorFlow float32's, computed from the run's ceilings;
    nothing where TensorFlow float32 is itself the fastest."""
    from core.tools.bench_doc import _headroom
    said = _headroom({"tensorflow float32": 17.1, "openvino float32": 17.1, "openvino int8": 31.2})
    assert "openvino int8, is 1.82x TensorFlow float32's" in said
    assert _headroom({"tensorflow float32": 20.0, "openvino float32": 18.0}) == ""
