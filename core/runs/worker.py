"""The training worker: runs one stored run's recipe in this process, resuming from its last epoch.

Started by `core.runs.runner` as `python -m core worker RUN_ID --lease N` in its own process. `run_worker`
sets the run's precision and determinism, has a `core.runs.phases.Job` load the run's recorded data
(`core.runs.job_data`) and train its recipe's phases under the distribution strategy, scores a finished
assignment run on its held-out images, and stores how the run ended. Every write goes through the
worker's lease (`core.runs.lease`): a worker whose run was taken over stops without writing.
"""
from __future__ import annotations

import os
import time
import traceback

from core.data.folders import DataError
from core.models import environment, networks, precision
from core.runs import lease as leases, runcard
from core.runs.callbacks import CheckpointError, StopRequested
from core.runs.lease import Lease, LeaseLost
from core.runs.phases import Job


def distribution_strategy(lease: Lease):
    """MirroredStrategy (data parallel, one replica per GPU) when several GPUs are present, else the default."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        lease.log(f"{len(gpus)} GPUs: training with tf.distribute.MirroredStrategy")
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def run_worker(run_id: str, held: Lease | None = None) -> str:
    """Train run `run_id` to the end; returns its final status, or "fenced" when its lease was taken over
    (from then on nothing was written). Never raises for training errors.

    `held` is the lease a worker process took before loading TensorFlow, its heartbeat already beating;
    without it, the lease is claimed here and the heartbeat kept for the duration of the call."""
    beating = None
    if held is None:
        held = leases.claim(run_id)
        beating = leases.keep_alive(held)
    try:
        return _train(run_id, held)
    except LeaseLost:
        return "fenced"
    finally:
        if beating is not None:
            beating.set()


def score_heldout(run_id: str, lease: Lease) -> None:
    """Score a finished assignment run on the assignment's held-out images and store it, so the leaderboard only
    reads; a failure is logged (the run stays finished, `python -m core leaderboard` scores it later)."""
    from core.analysis import leaderboard
    lease.progress(stage="scoring on the assignment's held-out images", time=time.time())
    started = time.time()
    try:
        result = leaderboard.score_run(run_id, holding=lease.token)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - the training itself succeeded: keep it, say why there is no score
        lease.log(f"held-out scoring failed ({type(exc).__name__}: {exc}); `python -m core leaderboard` scores the "
                  f"run later")
        return
    lease.log(f"held-out score: accuracy {result['accuracy']:.4f} on {result['n']} images "
              f"({time.time() - started:.1f} s)")


def _train(run_id: str, lease: Lease) -> str:
    status, error, job = "finished", None, None
    try:
        job = Job(run_id, lease)
        policy = precision.apply(job.spec.precision)
        runcard.determinism(job.spec.seed, job.spec.deterministic)
        lease.update(precision_used=policy,
                     weights_used=environment.describe_weights(job.spec.weights) if job.spec.uses_backbone else
                     "random initialisation (trained from scratch)")
        job.run["precision_used"] = policy
        lease.log(f"worker pid {os.getpid()}, precision {policy}, starting at epoch {job.done}")
        job.load_data()
        runcard.write(run_id, runcard.build(run_id, job.spec, policy), lease)
        with distribution_strategy(lease).scope():
            if job.spec.uses_backbone:
                job.run_backbone()
            else:
                job.run_scratch()
    except LeaseLost:
        raise
    except StopRequested:
        status = "stopped"
        job.finalise(None)
    except (DataError, networks.WeightsError, ValueError, CheckpointError) as exc:
        status, error = "failed", str(exc)
    except OSError as exc:  # disk full or unwritable while caching images or features, a file gone since the scan
        status, error = "failed", (f"Could not read or write {exc.filename or 'a file'} ({exc.strerror or exc}): "
                                   f"free some space or check permissions, then resume the run.")
        lease.log(traceback.format_exc()[-3000:])
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        lease.log(traceback.format_exc()[-3000:])
    if status == "finished" and job.run.get("assignment"):
        score_heldout(run_id, lease)
    lease.set_status(status, error)
    lease.update(stop_requested=0, progress={})
    lease.log(f"run {status}" + (f": {error}" if error else ""))
    return status
