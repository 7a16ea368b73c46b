"""`worker RUN --lease N`: the hidden sub-command the queue (or a Ray actor) starts once per run; it claims the run's
lease before TensorFlow loads, keeps it alive while it trains, and exits without writing if a newer worker took over.
"""
from __future__ import annotations

import os
import sys

from core.cli.common import add_command


def _size_thread_pools() -> None:
    """Apply the queue's share of the cores (TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS) before any op runs."""
    intra, inter = os.environ.get("TF_NUM_INTRAOP_THREADS"), os.environ.get("TF_NUM_INTEROP_THREADS")
    if not (intra or inter):
        return
    import tensorflow as tf
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra))
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(int(inter))


def cmd_worker(a):
    from core.runs import lease
    try:
        held = lease.claim(a.run, a.lease)  # before TensorFlow loads, so that the heartbeat starts at once
    except lease.LeaseLost as exc:
        print(f"worker for run {a.run} not started: {exc}", file=sys.stderr)
        return lease.EXIT_FENCED
    beating = lease.keep_alive(held, exit_when_fenced=True)
    _size_thread_pools()
    from core.runs.runner import kick
    from core.runs.worker import run_worker
    status = run_worker(a.run, held)
    beating.set()
    if status == "fenced":  # taken over by a newer worker: end without writing (not even kick's bookkeeping)
        print(f"worker pid {os.getpid()} fenced: run {a.run} was taken over; exiting without writing",
              file=sys.stderr)
        return lease.EXIT_FENCED
    kick()
    return 0 if status in ("finished", "stopped") else 1


def register(sub) -> None:
    s = add_command(sub, "worker", cmd_worker, None, "run")
    s.add_argument("--lease", type=int, help="the lease number the queue reserved for this worker")
