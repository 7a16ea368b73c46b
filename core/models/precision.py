"""Numeric precision: detect whether this machine computes fast in bfloat16/float16, and apply the choice.

CPUs with AMX or AVX512-BF16 compute bfloat16 natively and run convolutions much faster in it than in
float32 (`python -m core bench` measures by how much on the host it runs on); GPUs use float16 or
bfloat16. Elsewhere reduced precision is slower, so "auto" falls back to float32. `host()` names the
CPU kind (AMX, AVX512-BF16, AVX2-only) that every benchmark figure is reported with.

TensorFlow's and OpenVINO's kernels (oneDNN) use at most the instruction set named by ONEDNN_MAX_CPU_ISA where it
is set (`AVX2` makes an AMX machine compute as an AVX2-only one: bfloat16 kernels are then refused), so the flags
above that cap do not count: the detection follows what the kernels will really use.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA, by prefix: the longer names first) and the rank of the highest flag each
# still allows; avx_vnni (int8 dot products on AVX2 CPUs without AVX-512, e.g. Intel's laptops since 2021) sits
# between AVX2 and AVX-512
_CAP_RANKS = (("AVX10_1_512_AMX", 40), ("AVX512_CORE_AMX", 40), ("AVX10_1_512", 30), ("AVX512_CORE_FP16", 30),
              ("AVX512_CORE_BF16", 30), ("AVX512_CORE", 20), ("AVX2_VNNI", 11), ("AVX2", 10), ("AVX", 0),
              ("SSE41", 0))
_FLAG_RANKS = {"avx2": 10, "avx_vnni": 11, "avx512f": 20, "avx512_bf16": 30, "amx_tile": 40, "amx_bf16": 40}


def isa_cap() -> str | None:
    """ONEDNN_MAX_CPU_ISA when it caps the kernels (None when unset, ALL or DEFAULT)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return cap if cap not in ("", "ALL", "DEFAULT") else None


def capped(flags: frozenset[str], cap: str | None) -> frozenset[str]:
    """`flags` without the ones above oneDNN's ISA `cap` (an unknown cap leaves them all)."""
    rank = next((r for prefix, r in _CAP_RANKS if cap and cap.startswith(prefix)), None)
    if rank is None:
        return flags
    return frozenset(f for f in flags if _FLAG_RANKS.get(f, 0) <= rank)


@lru_cache(maxsize=1)
def _proc_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_flags() -> frozenset[str]:
    """The CPU's flags that the kernels may use: /proc/cpuinfo's, capped by ONEDNN_MAX_CPU_ISA."""
    return capped(_proc_flags(), isa_cap())


def cpu_kind(flags: frozenset[str] | None = None) -> str:
    """The CPU kind that decides the fast precision: "AMX", "AVX512-BF16", "AVX-512", "AVX2+VNNI" (no AVX-512, int8
    dot products: OpenVINO int8 ran 4.2x TensorFlow float32 there, against 1.8x on AVX2 alone, in
    docs/engine-choice-results/), "AVX2-only" or "other"."""
    flags = cpu_flags() if flags is None else flags
    for flag, kind in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                       ("avx_vnni", "AVX2+VNNI"), ("avx2", "AVX2-only")):
        if flag in flags:
            return kind
    return "other"


def host() -> dict:
    """The machine a figure was measured on: CPU model, kind (naming an ONEDNN_MAX_CPU_ISA cap that lowers it),
    the ISA flags the kernels may use, cores."""
    model = "unknown"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    isa = [f for f in ("avx2", "avx_vnni", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in cpu_flags()]
    kind = cpu_kind()
    if isa_cap() and cpu_kind(_proc_flags()) != kind:  # say so: the figures are this CPU computing as a lesser kind
        kind += f" (an {cpu_kind(_proc_flags())} CPU capped by ONEDNN_MAX_CPU_ISA={isa_cap()})"
    return {"cpu": model, "kind": kind, "isa": isa, "cores": os.cpu_count()}


def gpus() -> list:
    import tensorflow as tf
    return tf.config.list_physical_devices("GPU")


def detect() -> tuple[str, str]:
    """(policy, reason) for "auto": the fastest precision that keeps accuracy on this hardware."""
    found = gpus()
    if found:
        import tensorflow as tf
        details = tf.config.experimental.get_device_details(found[0])
        major = (details.get("compute_capability") or (0, 0))[0]
        if major >= 8:
            return "mixed_bfloat16", f"GPU with compute capability {major}.x: bfloat16 tensor cores"
        if major >= 7:
            return "mixed_float16", f"GPU with compute capability {major}.x: float16 tensor cores"
        return "float32", "GPU without tensor cores"
    flags = cpu_flags()
    for flag in ("amx_bf16", "avx512_bf16"):
        if flag in flags:
            return "mixed_bfloat16", f"CPU supports {flag}"
    if isa_cap() and {"amx_bf16", "avx512_bf16"} & _proc_flags():
        return "float32", f"ONEDNN_MAX_CPU_ISA={isa_cap()} keeps the kernels off this CPU's bfloat16 instructions"
    return "float32", "CPU without bfloat16 instructions (AMX or AVX512-BF16)"


def resolve(choice: str) -> str:
    """The Keras policy that trains: "auto" and "int8" (which only concerns frozen passes) train in the host's."""
    return detect()[0] if choice in ("auto", "int8") else choice


# Images a frozen model must pass before int8 has won back what it costs a run once (conversion, quantization
# on 32 images, the check against float32): `python -m core.tools.engine_choice` prints the figure for the host
# it runs on, against TensorFlow in that host's training policy. Rounded up from its runs on AMX (bfloat16) and
# on the same CPU capped with ONEDNN_MAX_CPU_ISA=AVX2 (float32), kept in docs/engine-choice-results/.
INT8_PAYS_AFTER = {"float32": 300, "mixed_bfloat16": 2000}


def frozen_pass(choice: str, images: int | None = None) -> str:
    """The precision of a frozen model's forward passes for a run's `choice`: float32, bfloat16 or int8.

    On a CPU "auto" asks for int8 on the inference engine (OpenVINO, calibrated on the run's own training
    images), the fastest correct pass `python -m core.tools.engine_choice` measured on AMX and AVX2-only CPUs,
    when the model will pass enough `images` (None: many) to win back int8's one-off cost (INT8_PAYS_AFTER);
    otherwise TensorFlow in the training policy (bfloat16 where native, else float32). `core.models.inference`
    also falls back to that when int8's outputs disagree with float32's or the engine is not installed. On a GPU
    the frozen passes run in the training policy. "float32" is the lecture's float32 TensorFlow pass."""
    if choice == "int8":
        return "int8"
    policy = resolve(choice)
    if choice == "auto" and not gpus() and (images is None or images >= INT8_PAYS_AFTER.get(policy, 0)):
        return "int8"
    return "float32" if policy == "float32" else "bfloat16"


def apply(choice: str) -> str:
    """Set Keras's global dtype policy for this process; returns the policy used."""
    import keras
    policy = resolve(choice)
    keras.mixed_precision.set_global_policy(policy)
    return policy
