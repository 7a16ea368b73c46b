"""Augmentation ablation: paired runs that differ only in augmentation, and the per-transform figures."""
from __future__ import annotations

import pytest

from core.analysis import ablation, charts
from core.data.augment_presets import get_preset
from core.runs import store


def test_ablation_specs_differ_only_in_augmentation_and_remove_each_enabled_transform(tiny_data, home):
    cfg = get_preset("lecture")
    group, planned = ablation.ablation_specs(cfg, {"data": str(tiny_data), "image_size": 48, "epochs": 1,
                                                   "weights": "none", "backbone": "mobilenet_v2"}, seeds=(0, 1))
    variants = [v for v, seed, _ in planned if seed == 0]
    assert variants == ["all", "without rotation", "without shift", "without shear", "without zoom",
                        "without horizontal flip", "none"]
    by = {(v, seed): spec for v, seed, spec in planned}
    assert by[("without shift", 0)].augment.width_shift_range == 0 == by[("without shift", 0)].augment.height_shift_range
    assert by[("without shift", 0)].augment.rotation_range == 40
    assert by[("none", 1)].augment.is_identity()
    for (v, seed), spec in by.items():
        other = by[("all", seed)].to_dict()
        diff = {k for k, val in spec.to_dict().items() if other[k] != val}
        assert diff <= {"augment", "name"}, (v, diff)
        assert spec.recipe == "feature_extraction_aug" and spec.seed == seed


def test_ablation_refuses_a_recipe_that_never_augments_and_a_config_without_transforms(tiny_data, home):
    with pytest.raises(ValueError, match="never augments"):
        ablation.ablation_specs(get_preset("lecture"), {"data": str(tiny_data)}, recipe="feature_extraction")
    with pytest.raises(ValueError, match="no transform"):
        ablation.ablation_specs(get_preset("none"), {"data": str(tiny_data)})


def _fake_run(group, variant, seed, acc, loss):
    run_id = store.create_run({}, f"ablation {group} · {variant} · seed {seed}", "feature_extraction_aug",
                              "mobilenet_v2", 1)
    store.record_epoch(run_id, 1, "head", {"loss": 0.5, "accuracy": 0.8, "val_loss": loss, "val_accuracy": acc})
    store.set_status(run_id, "finished")
    store.set_tags(run_id, [ablation.TAG, f"{ablation.TAG}:{group}", f"variant:{variant}", f"seed:{seed}"])
    return run_id


def test_ablation_results_pair_each_variant_with_all_of_the_same_seed(home):
    ids = {}
    for seed, (a, r, n) in enumerate([(0.90, 0.86, 0.80), (0.92, 0.90, 0.84)]):
        ids[("all", seed)] = _fake_run("g1", "all", seed, a, 0.30)
        ids[("without rotation", seed)] = _fake_run("g1", "without rotation", seed, r, 0.35)
        ids[("none", seed)] = _fake_run("g1", "none", seed, n, 0.45)
    _fake_run("other", "all", 0, 0.5, 0.9)
    res = ablation.results("g1", store.list_runs())
    bars = {b["variant"]: b for b in res["bars"]}
    assert bars["without rotation"]["delta_acc"] == pytest.approx(-0.03)
    assert bars["without rotation"]["delta_acc_sd"] == pytest.approx(0.01414, abs=1e-4)
    assert bars["none"]["delta_loss"] == pytest.approx(0.15)
    assert set(bars["none"]["run_ids"]) == {ids[("none", 0)], ids[("none", 1)], ids[("all", 0)], ids[("all", 1)]}
    assert res["all"]["val_accuracy"] == pytest.approx(0.91) and res["pending"] == 0
    assert ablation.groups(store.list_runs())[0] in ("g1", "other")
    fig = charts.ablation_figure(res)
    assert list(fig.data[0].x) == ["without rotation", "none"]
    assert ids[("all", 0)] in fig.data[0].customdata[0]
    assert "-0.030" in ablation.text_table(res)


def test_augmentation_page_queues_an_ablation_and_lists_its_runs(home, tmp_path, monkeypatch):
    from core import settings
    from tests.test_pages import run_page
    from tests.conftest import make_folder
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(tmp_path))
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)  # store the runs, start no worker
    settings.update(data=str(make_folder(tmp_path / "data", {"train": 4, "validation": 2})))
    at = run_page("pages/1_Augmentation.py")
    at.text_input(key="abl_weights").set_value("none")
    at.number_input(key="abl_seeds").set_value(2)
    submit = next(b for b in at.button if b.label.startswith("Queue "))
    assert submit.label == "Queue 21 runs (rotation, shift, shear, zoom, horizontal flip)"  # 3 seeds by default
    submit.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    runs = store.list_runs()
    assert len(runs) == 14 and all("ablation" in r["tags"] for r in runs)
    assert "14 runs still queued" in " ".join(i.value for i in at.info)
