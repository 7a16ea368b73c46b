"""Input pipeline: the decoded-image cache, batches, and preview == training pixels."""
import numpy as np

from core.data.augment_presets import PRESETS
from core.data.augment_seed import image_seed
from core.data.augment_transform import augment_image
from core.data.folders import load_image, scan
from core.data.pipeline import ImageBatches, decoded_images


def test_decoded_images_are_cached_by_content(home, tiny_data):
    paths = [p for p, _ in scan(tiny_data).splits["train"]]
    first, key = decoded_images(paths, 24)
    assert first.shape == (len(paths), 24, 24, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first[3], load_image(paths[3], 24))
    cache_file = home / "cache" / "images" / f"{key}.npy"
    mtime = cache_file.stat().st_mtime_ns
    again, key2 = decoded_images(paths, 24)
    assert key2 == key and cache_file.stat().st_mtime_ns == mtime
    # Changing one image's content changes the key; a different size too.
    from PIL import Image
    Image.new("RGB", (40, 32), (1, 2, 3)).save(paths[0])
    assert decoded_images(paths, 24)[1] != key
    assert decoded_images(paths, 32)[1] != key


def test_batches_cover_every_image_once_per_epoch_in_a_seeded_order():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(3, axis=3)
    labels = np.arange(10)
    a = ImageBatches(images, labels, 4, shuffle=True, seed=3)
    seen = np.concatenate([a[i][1] for i in range(len(a))])
    assert len(a) == 3 and sorted(seen) == list(range(10))
    first = [a[i][1].tolist() for i in range(len(a))]
    a.on_epoch_end()  # an end without a beginning (Keras's fit resetting its iterator) is not an epoch
    assert [a[i][1].tolist() for i in range(len(a))] == first
    a.on_epoch_begin()
    a.on_epoch_end()
    second = [a[i][1].tolist() for i in range(len(a))]
    assert first != second
    b = ImageBatches(images, labels, 4, shuffle=True, seed=3, epoch=1)
    assert [b[i][1].tolist() for i in range(len(b))] == second  # a resumed run sees the same epoch
    x, y = a[0]
    assert np.array_equal(x[:, 0, 0, 0], y.astype(np.float32))  # images stay paired with their labels


def test_preview_equals_training_pixels(home, tiny_data):
    """What the augmentation preview shows is bit for bit what the training pipeline feeds."""
    ds = scan(tiny_data)
    paths = [p for p, _ in ds.splits["train"]]
    labels = np.array([y for _, y in ds.splits["train"]])
    images, _ = decoded_images(paths, 48)
    cfg = PRESETS["lecture"]
    batches = ImageBatches(images, labels, 5, shuffle=True, augment=cfg, seed=7, epoch=2)
    x, _ = batches[1]
    for j in range(5):
        position = 5 + j
        file_index = batches.order[position]
        preview, params = augment_image(load_image(paths[file_index], 48), cfg, image_seed(7, 2, position))
        np.testing.assert_array_equal(x[j], preview)
    assert not np.array_equal(x[0], images[batches.order[5]].astype(np.float32))  # it really augmented


def test_an_augmented_epoch_passes_each_batch_through_the_frozen_pass_once_in_the_same_order():
    """Keras probes the first batches for the dataset's signature: they are kept, not augmented and passed twice;
    the producer thread that augments ahead yields the very batches (and order) the sequential path does."""
    import keras
    from core.models import inference
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (18, 16, 16, 3)).astype(np.uint8)
    labels = np.arange(18) % 2
    passed = {True: [], False: []}

    def forward_for(overlap):
        def forward(x):
            passed[overlap].append(np.array(x))
            return x.mean(axis=(1, 2))
        return inference.FrozenPass(forward, "test", "float32")
    for overlap in (True, False):
        keras.utils.set_random_seed(0)  # Keras shuffles the batches' order too
        head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
        head.compile("sgd", "binary_crossentropy")
        data = ImageBatches(images, labels, 4, shuffle=True, augment=PRESETS["lecture"], seed=1)
        head.fit(inference.feature_batches(data, forward_for(overlap), overlap=overlap), epochs=2, verbose=0)
    assert len(passed[True]) == 2 * 5  # 5 batches a epoch, each once (7 a epoch before: 2 probed twice)
    for a, b in zip(passed[True], passed[False]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(passed[True][0], passed[True][5])  # the second epoch drew new transforms
