"""The fine-tuning plan: which blocks of the base train in each epoch of phase 2, and at which learning rate.

Pure functions over a base's layer names (no TensorFlow here), shared by the worker, which trains by the plan,
and the Model page, which draws it. The rules (the help of `RunSpec.lr_block_ratio` and `unfreeze_every`):

- Blocks are `core.models.layer_table.block_of` groups. The unfrozen blocks are those holding a layer at or
  after the freeze point (the lowest may be partly unfrozen, from the freeze point on); every block below it
  stays frozen throughout.
- Discriminative rates: the classifier head trains at the fine-tuning rate `lr`; the base's top block at
  lr / ratio, the next block down at lr / ratio², ...: the block at depth k (1 = top) at lr / ratio^k. A ratio
  of 1 gives every layer the same rate (the lecture's plain fine-tuning). A block's rate never changes.
- Gradual unfreezing (`every` = K > 0): fine-tuning epoch e (1 = the first of phase 2) trains the head and the
  top min(n, 1 + (e - 1) // K) unfrozen blocks; so the block at depth k unfreezes at fine-tuning epoch
  1 + (k - 1) * K, and never when that is past the phase's last epoch. K = 0: every unfrozen block from the
  first epoch on.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.models.layer_table import block_of

HEAD = "head"  # the classifier's entry in a plan (it always trains in phase 2, at the fine-tuning rate)


@dataclass(frozen=True)
class Segment:
    """A stretch of phase 2 with one trainable set: run epochs `first`..`last` (1-based, inclusive) train the
    head and `blocks` ({block: learning rate}, top block first)."""
    first: int
    last: int
    blocks: dict

    def trains(self, lr: float) -> dict:
        """{"head": lr, block: rate, ...}: what trains in this segment, top down (recorded with each epoch)."""
        return {HEAD: lr, **self.blocks}

    def describe(self, lr: float) -> str:
        return ", ".join(f"{name} {rate:.3g}" for name, rate in self.trains(lr).items())


def unfrozen_blocks(names: list[str], first_trainable: str) -> list[tuple[str, list[str]]]:
    """[(block, its layers at or after `first_trainable`)], top block first."""
    if first_trainable not in names:
        raise ValueError(f"Layer {first_trainable!r} is not in the base; valid freeze points are its layer names, "
                         f"for example {', '.join(names[-6:])}.")
    groups: dict[str, list[str]] = {}
    for name in names[names.index(first_trainable):]:
        groups.setdefault(block_of(name), []).append(name)
    return list(reversed(groups.items()))


def block_rates(names: list[str], first_trainable: str, lr: float, ratio: float) -> dict[str, float]:
    """{block: learning rate} of the unfrozen blocks, top block first: lr / ratio^depth (depth 1 = top)."""
    return {block: lr / ratio ** depth for depth, (block, _) in enumerate(unfrozen_blocks(names, first_trainable), 1)}


def trainable_count(n_blocks: int, epoch_in_phase: int, every: int) -> int:
    """How many of the `n_blocks` unfrozen blocks (from the top) train in fine-tuning epoch `epoch_in_phase`
    (1-based) when one more unfreezes every `every` epochs (0: all of them)."""
    if every <= 0:
        return n_blocks
    return min(n_blocks, 1 + (epoch_in_phase - 1) // every)


def segments(names: list[str], first_trainable: str, lr: float, ratio: float, every: int, head_epochs: int,
             fine_tune_epochs: int) -> list[Segment]:
    """Phase 2 cut into stretches of one trainable set (run epochs head_epochs + 1 .. + fine_tune_epochs)."""
    rates = block_rates(names, first_trainable, lr, ratio)
    order = list(rates)
    out: list[Segment] = []
    for e in range(1, fine_tune_epochs + 1):
        count = trainable_count(len(order), e, every)
        if out and len(out[-1].blocks) == count:
            out[-1] = Segment(out[-1].first, head_epochs + e, out[-1].blocks)
        else:
            out.append(Segment(head_epochs + e, head_epochs + e, {b: rates[b] for b in order[:count]}))
    return out


def layer_factors(names: list[str], first_trainable: str, ratio: float) -> dict[str, float]:
    """{layer name: its block's rate / the fine-tuning rate} for every layer at or after the freeze point (what
    `core.models.discriminative.DiscriminativeRMSprop` multiplies the rate by; layers not listed: 1)."""
    return {layer: 1.0 / ratio ** depth
            for depth, (_, layers) in enumerate(unfrozen_blocks(names, first_trainable), 1) for layer in layers}


def trainable_layers(names: list[str], first_trainable: str, blocks: dict | list) -> set[str]:
    """The layers of `blocks` at or after the freeze point (BatchNorm layers are left frozen by the caller)."""
    wanted = set(blocks)
    return {layer for block, layers in unfrozen_blocks(names, first_trainable) if block in wanted for layer in layers}


def plan(names: list[str], first_trainable: str | None, lr: float, ratio: float, every: int, head_epochs: int,
         fine_tune_epochs: int) -> list[dict]:
    """One row per block of the base, bottom first, then the head: {"block", "first_layer", "rate" (None:
    frozen), "unfreezes" (the run epoch it starts training at; None: frozen, or not within the phase),
    "phase_epoch" (the same counted within phase 2)}; the head trains from epoch 1 (phase 1 at its own rate).
    What the Model page draws."""
    starts = {}
    for seg in (segments(names, first_trainable, lr, ratio, every, head_epochs, fine_tune_epochs)
                if first_trainable else []):
        for block in seg.blocks:
            starts.setdefault(block, seg.first)
    rates = block_rates(names, first_trainable, lr, ratio) if first_trainable else {}
    rows, seen = [], set()
    for name in names:
        block = block_of(name)
        if block in seen:
            continue
        seen.add(block)
        start = starts.get(block)
        rows.append({"block": block, "first_layer": name, "rate": rates.get(block),
                     "unfreezes": start, "phase_epoch": None if start is None else start - head_epochs})
    if first_trainable:
        rows.append({"block": HEAD, "first_layer": HEAD, "rate": lr, "unfreezes": 1, "phase_epoch": 1})
    return rows


def preview(names: list[str], first_trainable: str | None, lr: float, ratio: float, every: int) -> list[dict]:
    """The plan the Model page draws before a run exists: fine-tuning epochs counted from 1 ("unfreezes" =
    "phase_epoch"), over a phase long enough for every block from the freeze point to unfreeze."""
    n = len(unfrozen_blocks(names, first_trainable)) if first_trainable else 0
    return plan(names, first_trainable, lr, ratio, every, 0, max(1, n * max(every, 1)))
