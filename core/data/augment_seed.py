"""The seed rule that training and the previews share: one deterministic seed per (run seed, epoch, image).

Training (`core.data.pipeline`) and both previews (`core.data.preview`, `core.data.layer_preview`) draw an
image's augmentation with :func:`image_seed`, so the picture a student previews for epoch k is the picture
the network gets in epoch k. Imports neither Streamlit nor TensorFlow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["image_seed"]


def image_seed(base_seed: int, epoch: int, index: int) -> int:
    """Deterministic, well-mixed seed in [0, 2**32 - 1) for one image.

    ``index`` is the image's position in the epoch's order or its file index
    (the caller decides).  Arguments must be non-negative integers.
    """
    vals = []
    for name, v in (("base_seed", base_seed), ("epoch", epoch), ("index", index)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        vals.append(int(v))
    state = np.random.SeedSequence(vals).generate_state(1, dtype=np.uint32)[0]
    return int(state) % (2**32 - 1)
