"""Discriminative learning rates and gradual unfreezing: the plan, the optimizer, the worker's segments, resume."""
import numpy as np
import pytest

from core.config import RunSpec
from core.models import unfreezing
from core.models.layer_table import block_of

VGG = [f"block{b}_{kind}" for b in range(1, 6) for kind in ("conv1", "conv2", "conv3" if b > 2 else "", "pool")
       if kind]
MOBILENET_TOP = ["block_15_expand", "block_15_expand_BN", "block_15_add", "block_16_expand", "block_16_project_BN",
                 "Conv_1", "Conv_1_bn", "out_relu"]


def test_block_rates_grow_by_the_ratio_from_the_bottom_unfrozen_block_to_the_head():
    rates = unfreezing.block_rates(VGG, "block3_conv1", 1e-4, 2.0)
    assert list(rates) == ["block5", "block4", "block3"]  # top first
    assert [rates[b] for b in rates] == pytest.approx([5e-5, 2.5e-5, 1.25e-5])
    assert set(unfreezing.block_rates(VGG, "block3_conv1", 1e-4, 1.0).values()) == {1e-4}  # ratio 1: the lecture
    factors = unfreezing.layer_factors(VGG, "block4_conv2", 4.0)  # a freeze point inside block4
    assert factors["block5_conv1"] == 0.25 and factors["block4_conv2"] == 0.0625 and "block4_conv1" not in factors


def test_gradual_unfreezing_adds_one_block_every_k_epochs_never_below_the_freeze_point():
    segs = unfreezing.segments(VGG, "block3_conv1", 1e-5, 1.0, every=2, head_epochs=10, fine_tune_epochs=7)
    assert [(s.first, s.last, list(s.blocks)) for s in segs] == [
        (11, 12, ["block5"]), (13, 14, ["block5", "block4"]), (15, 17, ["block5", "block4", "block3"])]
    plain = unfreezing.segments(VGG, "block3_conv1", 1e-5, 1.0, every=0, head_epochs=10, fine_tune_epochs=7)
    assert [(s.first, s.last, len(s.blocks)) for s in plain] == [(11, 17, 3)]
    rows = {r["block"]: r for r in unfreezing.plan(VGG, "block3_conv1", 1e-5, 2.0, 3, 10, 5)}
    assert (rows["block5"]["unfreezes"], rows["block4"]["unfreezes"], rows["block3"]["unfreezes"]) == (11, 14, None)
    assert rows["block4"]["phase_epoch"] == 4 and rows["block3"]["rate"] == pytest.approx(1.25e-6)
    assert rows["block2"]["rate"] is None and rows["head"]["rate"] == 1e-5


def test_mobilenet_v2_layers_group_into_its_inverted_residual_blocks():
    assert [block_of(n) for n in MOBILENET_TOP] == ["block_15"] * 3 + ["block_16"] * 2 + ["Conv_1"] * 3
    assert block_of("expanded_conv_project_BN") == "expanded_conv" and block_of("bn_Conv1") == "Conv1"
    assert block_of("block5_conv1") == "block5" and block_of("conv5_block1_1_conv") == "conv5"
    assert list(unfreezing.block_rates(MOBILENET_TOP, "block_16_expand", 1e-5, 3.0)) == ["Conv_1", "block_16"]


def test_the_new_fields_are_refused_outside_fine_tuning_and_out_of_range():
    assert RunSpec.from_recipe("fine_tune", lr_block_ratio=2.6, unfreeze_every=2).unfreeze_every == 2
    with pytest.raises(ValueError, match="lr_block_ratio only applies to fine-tuning"):
        RunSpec.from_recipe("feature_extraction_aug", lr_block_ratio=2.0)
    with pytest.raises(ValueError, match="unfreeze_every only applies to fine-tuning"):
        RunSpec.from_recipe("scratch", unfreeze_every=1)
    with pytest.raises(ValueError, match="lr_block_ratio must be between 1 and 100"):
        RunSpec.from_recipe("fine_tune", lr_block_ratio=0.5)


def _two_layer_model():
    import keras
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="low")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="high")(hidden))


def test_discriminative_rmsprop_steps_each_layer_by_its_own_rate_and_keeps_it_when_loaded(tmp_path):
    """RMSprop divides by the gradient's magnitude, so its first step is lr x 1/sqrt(1 - rho) per weight whatever
    the gradient: a layer at a tenth of the rate moves exactly a tenth as far (scaled gradients would not)."""
    import keras
    from core.models.discriminative import DiscriminativeRMSprop
    model = _two_layer_model()
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.compile(optimizer=DiscriminativeRMSprop({"low": 0.1}, learning_rate=1e-2), loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, np.ones((8, 1), "float32"), epochs=1, batch_size=8, verbose=0)
    step = {v.path: float(np.abs(v.numpy() - b).max()) for v, b in zip(model.trainable_variables, before)}
    assert step["high/kernel"] == pytest.approx(1e-2 / np.sqrt(0.1), rel=1e-3)
    assert step["low/kernel"] == pytest.approx(step["high/kernel"] / 10, rel=1e-3)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.optimizer.layer_factors == {"low": 0.1}


class _Lease:
    def __init__(self):
        self.lines = []

    def log(self, message):
        self.lines.append(message)


def _job(spec, tmp_path):
    """A worker Job without a run store: only what `train_segment` reads."""
    from core.runs.phases import Job
    job = Job.__new__(Job)
    job.spec, job.lease, job.classes, job.done = spec, _Lease(), ["cats", "dogs"], spec.epochs
    return job


def _tiny_classifier():
    """A 'full' classifier shaped as the worker's: a nested base of blocks block1..block3, then a 'head'."""
    import keras
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for b in (1, 2, 3):
        x = keras.layers.Conv2D(2, 3, padding="same", name=f"block{b}_conv1")(x)
        x = keras.layers.BatchNormalization(name=f"block{b}_bn")(x)
    base = keras.Model(inputs, x, name="base")
    feats = keras.Input(base.output.shape[1:])
    head = keras.Model(feats, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(feats)),
                       name="head")
    image = keras.Input((8, 8, 3))
    return keras.Model(image, head(base(image))), base


def test_each_segment_trains_its_blocks_and_a_checkpoint_resumed_mid_segment_keeps_its_optimizer(tmp_path):
    """The cheap twin of the nightly resume test: the worker's segment step on a tiny nested classifier."""
    import keras
    from core.models import networks
    spec = RunSpec.from_recipe("fine_tune", freeze_from="block2_conv1", lr_block_ratio=2.0, unfreeze_every=2,
                               epochs=1, fine_tune_epochs=4)
    model, base = _tiny_classifier()
    names = networks.layer_names(base)
    first, second = unfreezing.segments(names, "block2_conv1", spec.fine_tune_lr, 2.0, 2, 1, 4)
    job = _job(spec, tmp_path)
    job.train_segment(model, names, first, compiled=False)
    assert networks.trainable_names(networks.base_part(model)) == {"block3_conv1"}  # BatchNorm stays frozen
    assert job.lease.lines[-1] == "fine-tuning epochs 2-3: training head 1e-05, block3 5e-06 (recompiled)"
    x = np.zeros((4, 8, 8, 3), "float32")
    model.fit(x, np.ones((4, 1), "float32"), epochs=1, verbose=0)
    model.save(tmp_path / "ckpt.keras")  # a checkpoint after epoch 2, inside the first segment

    resumed = keras.models.load_model(tmp_path / "ckpt.keras", safe_mode=True)
    kept = resumed.optimizer
    job.done = 2
    job.train_segment(resumed, names, first, compiled=True)
    assert resumed.optimizer is kept and "(recompiled)" not in job.lease.lines[-1]
    assert job.lease.lines[-1].startswith("fine-tuning epochs 3-3")
    job.train_segment(resumed, names, second, compiled=True)  # the next segment unfreezes block2, recompiled
    assert networks.trainable_names(networks.base_part(resumed)) == {"block3_conv1", "block2_conv1"}
    assert resumed.optimizer is not kept and resumed.optimizer.layer_factors == {
        "block3_conv1": 0.5, "block3_bn": 0.5, "block2_conv1": 0.25, "block2_bn": 0.25}
    assert job.lease.lines[-1].endswith("block3 5e-06, block2 2.5e-06 (recompiled)")


@pytest.mark.nightly
def test_a_fine_tune_stopped_mid_schedule_resumes_with_that_epochs_blocks_and_rates(home, tiny_data, monkeypatch):
    from core.runs import store
    from core.runs.callbacks import RunRecorder, StopRequested
    from core.runs.worker import run_worker
    original = RunRecorder.on_epoch_end

    def stop_after_two(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == 2:
            raise StopRequested()
    monkeypatch.setattr(RunRecorder, "on_epoch_end", stop_after_two)
    spec = RunSpec.from_recipe("fine_tune", data=str(tiny_data), backbone="mobilenet_v2", weights="none",
                               image_size=32, epochs=1, fine_tune_epochs=3, augment="none", batch_size=8,
                               precision="float32", freeze_from="block_16_expand", lr_block_ratio=3.0,
                               unfreeze_every=2)
    run_id = store.create_run(spec.to_dict(), "dlr", "fine_tune", "mobilenet_v2", spec.total_epochs)
    assert run_worker(run_id) == "stopped" and store.get_run(run_id)["epochs_done"] == 2
    monkeypatch.setattr(RunRecorder, "on_epoch_end", original)
    assert run_worker(run_id) == "finished"
    top = {"head": 1e-5, "Conv_1": pytest.approx(1e-5 / 3)}
    assert [r["trains"] for r in store.epochs(run_id)] == [
        None, top, top, {**top, "block_16": pytest.approx(1e-5 / 9)}]
    messages = [line["message"] for line in store.log_lines(run_id)]
    assert "resuming fine-tuning from ckpt-0002-top.keras" in messages
    resumed = messages[messages.index("resuming fine-tuning from ckpt-0002-top.keras"):]
    assert any(m.startswith("fine-tuning epochs 3-3: training head 1e-05, Conv_1 3.33e-06") and "recompiled" not in m
               for m in resumed)
    assert any(m.startswith("fine-tuning epochs 4-4") and m.endswith("block_16 1.11e-06 (recompiled)")
               for m in resumed)
