"""The Ray executor: with $TUNELAB_RAY_ADDRESS set, each run the queue starts trains on a Ray cluster's node.

The lab keeps its own queue, limits and owners (`core.runs.runner.kick` decides what starts); this module only
hands a started run to Ray, as one detached actor per run named `tunelab-run-<id>` that declares the resources
it needs ($TUNELAB_RAY_CPUS, default 1; $TUNELAB_RAY_GPUS, default 0) and so lands on whichever node has them.
The actor records its node in the run store, then runs the same worker as a local process would
(`python -m core worker RUN --lease N`, in the actor's own process, with TensorFlow's thread pools sized to its
CPUs) and exits when the run ends. Every node needs the project and `TUNELAB_HOME` on shared storage and, for a
cluster of machines, the PostgreSQL run store ($TUNELAB_DB_URL); the actor gets them through its runtime
environment. A worker whose node dies stops sending heartbeats; the queue then marks its run interrupted and
queues it again (at most $TUNELAB_RAY_MAX_RETRIES times, default 3, then it is failed, saying so), and it
continues on another node from its last checkpoint. A run no node takes within $TUNELAB_RAY_PLACE_TIMEOUT_S
(default 600 s) is failed with a sentence naming the resources it asked for.
Imports Ray only when a run is started; never TensorFlow or Streamlit.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "tunelab"
PASSED_ENV = ("TUNELAB_HOME", "TUNELAB_DB_URL", "TUNELAB_HEARTBEAT_STALE_S", "TUNELAB_MAX_RUNS", "TUNELAB_USER",
              "TUNELAB_TEACHERS", "TUNELAB_RAY_ADDRESS", "TUNELAB_RAY_CPUS", "TUNELAB_RAY_GPUS", "KERAS_HOME",
              "TUNELAB_DATA_ROOTS", "TUNELAB_RAY_MAX_RETRIES", "TUNELAB_RAY_PLACE_TIMEOUT_S",
              "TUNELAB_USER_MAX_RUNNING", "TUNELAB_USER_MAX_QUEUED")
_lock = threading.Lock()


def address() -> str:
    """$TUNELAB_RAY_ADDRESS (e.g. 127.0.0.1:6379, or "auto"), or "" for local worker processes."""
    return os.environ.get("TUNELAB_RAY_ADDRESS", "").strip()


def executor() -> str:
    """"ray" when $TUNELAB_RAY_ADDRESS is set, else "local"."""
    return "ray" if address() else "local"


def resources() -> dict:
    """The resources each run declares to Ray: {"num_cpus": .., "num_gpus": ..}."""
    out = {}
    for key, name, default in (("num_cpus", "TUNELAB_RAY_CPUS", 1.0), ("num_gpus", "TUNELAB_RAY_GPUS", 0.0)):
        text = os.environ.get(name, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            value = -1.0
        if value < 0:
            raise ValueError(f"{name} must be a number of {key[4:]}s, 0 or more (got {text!r}): set it to e.g. "
                             f"{int(default)}, or unset it.")
        out[key] = value
    return out


def max_retries() -> int:
    """How many times a run whose node died is queued again ($TUNELAB_RAY_MAX_RETRIES, default 3; 0: never)."""
    text = os.environ.get("TUNELAB_RAY_MAX_RETRIES", "").strip()
    if not text:
        return 3
    if not text.isdigit():
        raise ValueError(f"TUNELAB_RAY_MAX_RETRIES must be a whole number of re-queues, 0 or more (got {text!r}): set "
                         f"it to e.g. 3, or unset it.")
    return int(text)


def place_timeout() -> float:
    """Seconds a run handed to Ray may wait for a node before it is failed ($TUNELAB_RAY_PLACE_TIMEOUT_S, 600)."""
    text = os.environ.get("TUNELAB_RAY_PLACE_TIMEOUT_S", "").strip()
    try:
        value = float(text) if text else 600.0
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"TUNELAB_RAY_PLACE_TIMEOUT_S must be a number of seconds above 0 (got {text!r}): set it to "
                         f"e.g. 600, or unset it.")
    return value


def unplaced_error(run_id: str, waited: float | None) -> str:
    """The sentence a run gets when Ray started it on no node within `place_timeout()`."""
    need = resources()
    return (f"Ray started run {run_id} on no node within {waited or 0:.0f} s (TUNELAB_RAY_PLACE_TIMEOUT_S is "
            f"{place_timeout():g}): no node offered the {need['num_cpus']:g} CPUs and {need['num_gpus']:g} GPUs it "
            f"asks for (TUNELAB_RAY_CPUS, TUNELAB_RAY_GPUS), or the cluster is full; add a node or lower them, then "
            f"resume the run.")


def cancel(run_id: str) -> None:
    """Remove the run's actor if Ray still holds it (best effort: its lease has moved on, so it could not write)."""
    if executor() != "ray":
        return
    try:
        ray = _connect()
        ray.kill(ray.get_actor(actor_name(run_id)))
    except Exception:  # noqa: BLE001 - no such actor, or Ray unreachable: nothing to remove
        pass


def _connect():
    import ray
    with _lock:
        if not ray.is_initialized():
            ray.init(address=address(), namespace=NAMESPACE, log_to_driver=False, include_dashboard=False,
                     configure_logging=False)
    return ray


def actor_name(run_id: str) -> str:
    return f"tunelab-run-{run_id}"


def start(run_id: str, token: int, thread_env: dict[str, str]) -> None:
    """Hand run `run_id` (lease `token`) to Ray as a detached actor; returns at once."""
    ray = _connect()
    need = resources()
    cpus = max(1, int(need["num_cpus"]))
    env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
    from core.runs import store
    env.update(TUNELAB_HOME=str(store.home()), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
               TF_NUM_INTRAOP_THREADS=str(cpus), TF_NUM_INTEROP_THREADS=str(min(2, cpus)), OMP_NUM_THREADS=str(cpus))
    name = actor_name(run_id)
    try:  # a previous attempt's actor of this run (its node died, or it ended): replace it
        ray.kill(ray.get_actor(name))
    except ValueError:
        pass
    RunActor = ray.remote(_RunActor)
    RunActor.options(name=name, lifetime="detached", max_restarts=0, num_cpus=need["num_cpus"],
                     num_gpus=need["num_gpus"], runtime_env={"env_vars": env}).remote(run_id, token)


class _RunActor:
    """One run on one Ray node: records the node, then runs the worker in this process and exits with it."""

    def __init__(self, run_id: str, token: int):
        import ray
        node = ray.get_runtime_context().get_node_id()
        from core.runs import store
        store.update_run(run_id, executor="ray", node=node)
        store.log(run_id, f"started by Ray on node {node}")
        threading.Thread(target=self._work, args=(run_id, token), daemon=True).start()

    @staticmethod
    def _work(run_id: str, token: int) -> None:
        from core.cli import main
        code = 1
        try:
            code = main(["worker", run_id, "--lease", str(token)])
        finally:
            try:  # the actor ends with its run (and is not started again)
                import ray
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
            finally:
                os._exit(code or 0)

    def ping(self) -> str:
        return "ok"
