"""Numeric precision: detect whether this machine computes fast in bfloat16/float16, and apply the choice.

CPUs with AMX or AVX512-BF16 compute bfloat16 natively and run convolutions much faster in it than in
float32 (`python -m core bench` measures by how much on the host it runs on); GPUs use float16 or
bfloat16. Elsewhere reduced precision is slower, so "auto" falls back to float32. `host()` names the
CPU kind (AMX, AVX512-BF16, AVX2-only) that every benchmark figure is reported with.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_kind(flags: frozenset[str] | None = None) -> str:
    """The CPU kind that decides the fast precision: "AMX", "AVX512-BF16", "AVX-512", "AVX2-only" or "other"."""
    flags = cpu_flags() if flags is None else flags
    for flag, kind in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                       ("avx2", "AVX2-only")):
        if flag in flags:
            return kind
    return "other"


def host() -> dict:
    """The machine a figure was measured on: CPU model, kind, the ISA flags that matter, cores."""
    import os
    model = "unknown"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in cpu_flags()]
    return {"cpu": model, "kind": cpu_kind(), "isa": isa, "cores": os.cpu_count()}


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
    return "float32", "CPU without bfloat16 instructions (AMX or AVX512-BF16)"


def resolve(choice: str) -> str:
    """The Keras policy that trains: "auto" and "int8" (which only concerns frozen passes) train in the host's."""
    return detect()[0] if choice in ("auto", "int8") else choice


def frozen_pass(choice: str) -> str:
    """The precision of forward passes through frozen layers for a run's `choice`: float32, bfloat16 or int8.

    "auto" keeps TensorFlow's native bfloat16 where the CPU has it (no calibration, no accuracy check; but the
    idle AMX run of `python -m core bench` in docs/benchmarks.md measured OpenVINO's int8 bare pass faster, so
    the choice there is open), the training policy on a GPU, and int8 on the inference engine
    elsewhere (2.4x float32 on an AVX2-only CPU, issue 12); `core.models.inference` falls back to float32 when
    int8 features disagree with float32's, and to TensorFlow when the engine is not installed."""
    policy = resolve(choice)
    if choice == "int8":
        return "int8"
    if policy != "float32" or choice == "float32":
        return "float32" if policy == "float32" else "bfloat16"
    return "int8"


def apply(choice: str) -> str:
    """Set Keras's global dtype policy for this process; returns the policy used."""
    import keras
    policy = resolve(choice)
    keras.mixed_precision.set_global_policy(policy)
    return policy
