"""The Ray executor (issue 11): with TUNELAB_RAY_ADDRESS set, runs train as detached Ray actors on a cluster's
nodes, the lab keeping its own queue; a run whose node dies is queued again and finishes on another node.

The default run checks the queue's side without Ray (a Ray run whose worker died is queued again, at most
TUNELAB_RAY_MAX_RETRIES times; a run no node takes is failed after TUNELAB_RAY_PLACE_TIMEOUT_S; resources are
read from the environment); the local multi-node cluster (ray.cluster_utils.Cluster, loopback only) is nightly.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from core.config import RunSpec
from core.runs import lease, rayexec, runner, store


def test_a_ray_run_whose_worker_died_is_queued_again_and_started_on_ray(home, monkeypatch):
    monkeypatch.setenv("TUNELAB_RAY_ADDRESS", "127.0.0.1:1")
    handed = []
    monkeypatch.setattr(rayexec, "start", lambda run_id, token, env: handed.append((run_id, token)))
    run_id = runner.submit(RunSpec.from_recipe("scratch", epochs=3, image_size=48), user="alice")
    assert handed == [(run_id, 1)] and store.get_run(run_id)["executor"] == "ray"
    store.update_run(run_id, host=lease.host(), pid=2 ** 22 + 12345, node="node-a")  # claimed, then its node died
    runner.kick()
    run = store.get_run(run_id)
    assert run["status"] == "running" and handed[-1] == (run_id, 3)  # fenced (2), then handed on with lease 3
    messages = [line["message"] for line in store.log_lines(run_id)]
    assert any("Ray node node-a lost: queued again" in m for m in messages)


def test_a_run_that_keeps_losing_its_ray_node_is_failed_after_the_retry_cap(home, monkeypatch):
    monkeypatch.setenv("TUNELAB_RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("TUNELAB_RAY_MAX_RETRIES", "2")
    handed = []
    monkeypatch.setattr(rayexec, "start", lambda run_id, token, env: handed.append(run_id))
    run_id = runner.submit(RunSpec.from_recipe("scratch", epochs=3, image_size=48), user="alice")
    for lost in range(3):
        store.update_run(run_id, host=lease.host(), pid=2 ** 22 + 12345, node=f"node-{lost}")  # started; node dies
        runner.kick()
    run = store.get_run(run_id)
    assert len(handed) == 3 and run["status"] == "failed" and run["requeues"] == 2
    assert run["error"] == (f"Run {run_id} lost its Ray node (last node-2) 3 times and was not queued again "
                            f"(TUNELAB_RAY_MAX_RETRIES is 2): check the cluster's nodes, then resume it, or raise the "
                            f"limit.")
    runner.resume(run_id, user="alice")  # by hand: the count starts afresh
    assert store.get_run(run_id)["requeues"] == 0 and len(handed) == 4
    monkeypatch.setenv("TUNELAB_RAY_MAX_RETRIES", "lots")
    with pytest.raises(ValueError, match="TUNELAB_RAY_MAX_RETRIES must be a whole number of re-queues"):
        rayexec.max_retries()


def test_a_run_ray_never_places_is_failed_with_a_sentence_naming_its_resources(home, monkeypatch):
    monkeypatch.setenv("TUNELAB_RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("TUNELAB_RAY_PLACE_TIMEOUT_S", "30")
    monkeypatch.setenv("TUNELAB_RAY_CPUS", "64")
    cancelled = []
    monkeypatch.setattr(rayexec, "start", lambda run_id, token, env: None)
    monkeypatch.setattr(rayexec, "cancel", cancelled.append)
    run_id = runner.submit(RunSpec.from_recipe("scratch", epochs=3, image_size=48), user="alice")
    store.update_run(run_id, heartbeat=time.time() - 20)  # waiting for a node, within the timeout
    runner.kick()
    assert store.get_run(run_id)["status"] == "running" and store.get_run(run_id)["host"] == runner.RAY_PENDING
    store.update_run(run_id, heartbeat=time.time() - 45)
    runner.kick()
    run = store.get_run(run_id)
    assert run["status"] == "failed" and cancelled == [run_id]
    assert run["error"].startswith(f"Ray started run {run_id} on no node within 45 s (TUNELAB_RAY_PLACE_TIMEOUT_S is "
                                   f"30): no node offered the 64 CPUs and 0 GPUs it asks for")


def test_ray_resources_come_from_the_environment_and_bad_ones_are_named(monkeypatch):
    monkeypatch.setenv("TUNELAB_RAY_CPUS", "2")
    monkeypatch.setenv("TUNELAB_RAY_GPUS", "1")
    assert rayexec.resources() == {"num_cpus": 2.0, "num_gpus": 1.0}
    monkeypatch.setenv("TUNELAB_RAY_GPUS", "many")
    with pytest.raises(ValueError, match="TUNELAB_RAY_GPUS must be a number of gpus"):
        rayexec.resources()


@pytest.fixture
def ray_cluster(monkeypatch):
    """A head (no CPUs: it only schedules) and two worker nodes of 1 CPU each, on 127.0.0.1 with token auth
    (a random token for this test, in the environment: Ray reads its auth settings when it is imported)."""
    import secrets
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    cluster_utils = pytest.importorskip("ray.cluster_utils", reason="ray is not installed (requirements-cluster.txt)")
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    monkeypatch.setenv("TUNELAB_RAY_ADDRESS", cluster.address)
    try:
        yield cluster, nodes
    finally:
        import ray
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.nightly
def test_two_runs_on_two_nodes_and_a_killed_node_s_run_finishes_on_the_other(home, tiny_data, ray_cluster,
                                                                             monkeypatch):
    cluster, nodes = ray_cluster
    monkeypatch.setenv("TUNELAB_MAX_RUNS", "2")
    monkeypatch.setenv("TUNELAB_HEARTBEAT_STALE_S", "20")
    spec = lambda name, epochs: RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=epochs,  # noqa
                                                    batch_size=8, name=name)
    short, long = runner.submit(spec("short", 3), user="alice"), runner.submit(spec("long", 12), user="bob")
    deadline = time.time() + 600
    while len(store.epochs(long)) < 2 or not store.get_run(short)["node"]:
        assert time.time() < deadline, "the long run did not reach epoch 2"
        runner.kick()
        time.sleep(0.5)
    first = {rid: store.get_run(rid)["node"] for rid in (short, long)}
    assert first[short] != first[long]  # one run on each node
    victim = next(n for n in nodes if n.node_id == first[long])
    done_before = len(store.epochs(long))
    cluster.remove_node(victim, allow_graceful=False)
    for rid in (short, long):
        assert runner.wait(rid, poll=0.5)["status"] == "finished", store.get_run(rid)["error"]
    run = store.get_run(long)
    rows = store.epochs(long)
    assert run["node"] != first[long] and [r["epoch"] for r in rows] == list(range(1, 13))
    messages = [line["message"] for line in store.log_lines(long)]
    assert any("lost: queued again" in m for m in messages)
    print(json.dumps({"short_node": first[short][:8], "long_first_node": first[long][:8],
                      "long_final_node": run["node"][:8], "epochs_before_kill": done_before,
                      "epochs_recorded": len(rows)}))
