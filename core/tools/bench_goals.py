"""Issue 12's goal table, from a bench result: each figure, its value, the goal for the host's CPU kind (CPUs with
AVX512-BF16 or AMX, or the others) and whether it is met. It measures nothing; `core.tools.bench_doc` renders it."""
from __future__ import annotations


def goals(result: dict) -> list[dict]:
    """Issue 12's goal table from this result: each figure, its value, and the goal for this host's CPU kind."""
    fast = result["machine"]["kind"].split(" (")[0] in ("AMX", "AVX512-BF16")  # "(... capped by ...)" follows
    fe, aug, prec = result["feature_extraction"], result["augmented_epoch"], result["precision_cost"]
    rows = [("feature extraction vs the lecture's code", f"{fe['speedup']}x", 3.5 if fast else 2.0, fe["speedup"]),
            ("feature extraction with augmentation, one epoch, vs the lecture's model.fit with a frozen base",
             f"{aug['fe_aug_speedup']}x", 3.5 if fast else 2.0, aug["fe_aug_speedup"]),
            ("fine-tuning with augmentation, epoch time vs the lecture's", f"{aug['ft_aug_speedup']}x",
             2.0 if fast else 1.5, aug["ft_aug_speedup"])]
    out = [{"figure": f, "value": v, "goal": f">= {g}x", "met": m >= g} for f, v, g, m in rows]
    out.append({"figure": f"accuracy cost of the chosen precision ({prec['backbone']} feature extraction, validation)",
                "value": f"{prec['cost_points']} points ({prec['float32']} float32, {prec['auto']} auto)",
                "goal": "<= 1 point", "met": prec["cost_points"] <= 1})
    out.append({"figure": "engine's frozen pass vs the best bare forward pass on the host",
                "value": f"{fe['engine_fraction_of_ceiling']:.0%} (of {fe['ceiling']})", "goal": ">= 85%",
                "met": fe["engine_fraction_of_ceiling"] >= 0.85})
    return out
