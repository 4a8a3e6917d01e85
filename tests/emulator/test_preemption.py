"""Low-priority nodes and their preemption, through the real SDKs: the node leaves, the job on it is
queued again and reruns on a replacement node, what it wrote to the share survives, and the sample
resumes from its last checkpoint to the same result as an uninterrupted run."""
from __future__ import annotations

import pytest
from azure.mgmt.batchai import models

import emulator as emulator_package
from batchai_quickstart.steps import create_job
from test_jobs import (EXP, MOUNT_ROOT, RG, WS, job_parameters, make_cluster, output_files, read_output,
                       share, submit, wait_for, wait_for_state, workspace)  # noqa: F401  (share, workspace: fixtures)
from test_sample import ctf_dir  # noqa: F401  (a fixture)
from doc_blocks import code_block

# Each run appends a line to a file on the share, then (on its first run only) waits to be preempted.
ATTEMPTS = ("echo started on $(hostname) >> {root}/attempts.txt; "
            "if [ $(wc -l < {root}/attempts.txt) -lt 2 ]; then sleep 60; fi; echo done").format(root=MOUNT_ROOT)


def node_ids(batchai_client, cluster: str = "cluster") -> list:
    return [node.node_id for node in batchai_client.clusters.list_remote_login_information(RG, WS, cluster)]


def steady_with(batchai_client, count: int, cluster: str = "cluster"):
    current = batchai_client.clusters.get(RG, WS, cluster)
    counts = current.node_state_counts
    ready = current.allocation_state == "steady" and current.current_node_count == count and \
        counts.idle_node_count + counts.running_node_count == count
    return current if ready else None


def attempts(share_client) -> list:
    return share_client.get_file_client("attempts.txt").download_file().readall().decode().splitlines()


def test_a_preempted_job_is_requeued_and_reruns_on_a_replacement_node(batchai_client, workspace, share, emulator):
    cluster = make_cluster(batchai_client, emulator, vm_priority="lowpriority")
    assert cluster.vm_priority == "lowpriority"
    submit(batchai_client, "job", job_parameters(cluster.id, ATTEMPTS))
    wait_for(lambda: len(attempts(share)) == 1 if share.get_file_client("attempts.txt").exists() else None)
    first = wait_for_state(batchai_client, "job", ("running",))
    [first_node] = node_ids(batchai_client)

    assert emulator.preempt_node(RG, WS, "cluster") == first_node
    job = batchai_client.jobs.get(RG, WS, EXP, "job")
    assert job.execution_state == "queued"  # as after creation: no executionInfo until it runs again
    assert job.execution_info is None
    assert first_node not in node_ids(batchai_client)

    job = wait_for_state(batchai_client, "job", timeout=30)
    assert job.execution_state == "succeeded", job.execution_info
    assert job.execution_info.exit_code == 0 and not job.execution_info.errors
    assert job.execution_info.start_time > first.execution_info.start_time  # the latest start
    assert len(attempts(share)) == 2  # the first run's line survived on the share
    [replacement] = wait_for(lambda: steady_with(batchai_client, 1)) and node_ids(batchai_client)
    assert replacement != first_node
    assert read_output(batchai_client, "job", "stdout.txt") == "done\n"
    log = read_output(batchai_client, "job", "execution.log")
    assert "node {} was preempted; the job goes back to the queue".format(first_node) in log


def test_a_multi_node_job_is_requeued_whole_when_one_of_its_nodes_goes(batchai_client, workspace, share, emulator):
    cluster = make_cluster(batchai_client, emulator, nodes=2, vm_priority="lowpriority")
    submit(batchai_client, "job", job_parameters(cluster.id, ATTEMPTS, node_count=2))
    wait_for_state(batchai_client, "job", ("running",))
    wait_for(lambda: share.get_file_client("attempts.txt").exists())
    nodes = node_ids(batchai_client)
    assert emulator.preempt_node(RG, WS, "cluster", nodes[1]) == nodes[1]
    assert batchai_client.jobs.get(RG, WS, EXP, "job").execution_state == "queued"
    cluster_now = batchai_client.clusters.get(RG, WS, "cluster")
    assert nodes[0] in node_ids(batchai_client) and nodes[1] not in node_ids(batchai_client)
    assert cluster_now.node_state_counts.running_node_count == 0  # the job's other node was freed too
    job = wait_for_state(batchai_client, "job", timeout=30)
    assert job.execution_state == "succeeded", job.execution_info
    assert len(wait_for(lambda: steady_with(batchai_client, 2)) and node_ids(batchai_client)) == 2


def test_an_idle_node_is_replaced(batchai_client, workspace, share, emulator):
    make_cluster(batchai_client, emulator, vm_priority="lowpriority")
    [node] = node_ids(batchai_client)
    assert emulator.preempt_node(RG, WS, "CLUSTER") == node  # names compare case-insensitively, as on the service
    wait_for(lambda: steady_with(batchai_client, 1))
    assert node_ids(batchai_client) != [node]


def test_what_cannot_be_preempted_is_refused_in_one_line(batchai_client, workspace, share, emulator):
    make_cluster(batchai_client, emulator)
    make_cluster(batchai_client, emulator, "empty", nodes=0, vm_priority="lowpriority")
    [node] = node_ids(batchai_client)
    cases = [(("cluster",), "cluster cluster has dedicated nodes, which are never preempted; create it with "
                            "vmPriority 'lowpriority'"),
             (("nocluster",), "there is no cluster nocluster in workspace ws of resource group rg"),
             (("empty",), "cluster empty has no idle or running node to preempt (it has no nodes)"),
             (("empty", "tvm-1"), "cluster empty has no node tvm-1")]
    for args, message in cases:
        with pytest.raises(emulator_package.PreemptionRefused) as refused:
            emulator.preempt_node(RG, WS, *args)
        assert str(refused.value) == message
    assert node_ids(batchai_client) == [node]  # the dedicated node stayed
    with pytest.raises(ValueError, match="0 or more preemptions per node-hour"):
        emulator.set_preemption_rate(-1)


def test_random_preemptions_take_only_low_priority_nodes(batchai_client, workspace, share, emulator):
    make_cluster(batchai_client, emulator, "dedicated")
    make_cluster(batchai_client, emulator, "low", vm_priority="lowpriority")
    dedicated, [low] = node_ids(batchai_client, "dedicated"), node_ids(batchai_client, "low")
    emulator.set_preemption_rate(3600 * 1000, seed=1)  # every node every tick: certain within a second
    wait_for(lambda: low not in node_ids(batchai_client, "low"))
    emulator.set_preemption_rate(0)
    wait_for(lambda: steady_with(batchai_client, 1, "low"))
    assert node_ids(batchai_client, "dedicated") == dedicated


def test_a_preemption_rate_given_at_start(tmp_path):
    with pytest.raises(ValueError, match="preemption rate"):
        emulator_package.start(tmp_path / "bad", preemption_rate="often")
    emu = emulator_package.start(tmp_path / "data", preemption_rate=3600 * 1000, preemption_seed=3)
    try:
        from test_jobs import make_workspace, sdk_clients
        batchai_client, resource_client, share_service = sdk_clients(emu)
        make_workspace(resource_client, batchai_client)
        share_service.get_share_client("batchaiquickstart").create_share()
        cluster = make_cluster(batchai_client, emu, "low", vm_priority="lowpriority", wait=False)
        first = wait_for(lambda: node_ids(batchai_client, "low"), timeout=20)
        wait_for(lambda: node_ids(batchai_client, "low") and node_ids(batchai_client, "low") != first, timeout=20)
        assert cluster.vm_priority == "lowpriority"
    finally:
        emu.stop()


# ---- the sample, preempted in the middle of training ---------------------------------------------

EPOCHS = 6


def training_job(batchai_client, name: str, cluster_id: str):
    """The quickstart's job (its create_job step), seeded: ConvNet_MNIST.py on the small MNIST subset."""
    return create_job(batchai_client, RG, WS, EXP, name, cluster_id, "microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0",
                      "mnist", EPOCHS, script_arguments="--seed 7 --engine pytorch")


def test_a_training_preempted_after_a_checkpoint_resumes_to_the_same_result(batchai_client, workspace, share,
                                                                           emulator, ctf_dir):
    pytest.importorskip("torch")
    from sample_checks import SCRIPT, epoch_results
    directory = share.get_directory_client("mnist")
    directory.create_directory()
    for path in sorted(ctf_dir.glob("*-28x28_cntk_text.txt")) + [SCRIPT]:
        with open(path, "rb") as data:
            directory.get_file_client(path.name).upload_file(data)
    dedicated = make_cluster(batchai_client, emulator, "dedicated")
    low = make_cluster(batchai_client, emulator, "low", vm_priority="lowpriority")

    training_job(batchai_client, "uninterrupted", dedicated.id)
    job = wait_for_state(batchai_client, "uninterrupted", timeout=300)
    assert job.execution_state == "succeeded", read_output(batchai_client, "uninterrupted", "stderr.txt")
    expected = epoch_results(read_output(batchai_client, "uninterrupted", "stderr.txt"))
    assert len(expected) == EPOCHS + 1

    training_job(batchai_client, "preempted", low.id)
    wait_for(lambda: "ConvNet_MNIST_0.pt" in output_files(batchai_client, "preempted", "MODEL"), timeout=300,
             interval=0.01)
    emulator.preempt_node(RG, WS, "low")
    assert "Final Results" not in read_output(batchai_client, "preempted", "stderr.txt")  # stopped mid-training
    assert batchai_client.jobs.get(RG, WS, EXP, "preempted").execution_state == "queued"

    job = wait_for_state(batchai_client, "preempted", timeout=300)
    stderr = read_output(batchai_client, "preempted", "stderr.txt")  # both runs: the rerun appends
    assert job.execution_state == "succeeded", stderr
    first_run, _, rerun = stderr.partition("Resumed from ")
    resumed_after = int(rerun.split("ConvNet_MNIST_")[1].split(".pt")[0])
    assert resumed_after >= 0 and "(epoch {} of {} done).".format(resumed_after + 1, EPOCHS) in rerun
    assert epoch_results(first_run)[:resumed_after + 1] == expected[:resumed_after + 1]
    assert epoch_results(rerun) == expected[resumed_after + 1:]  # the same epochs and final test error


def test_docs_preemption_example_runs(batchai_client, workspace, share, emulator):
    """docs/preemption.md's example, run as written against this emulator."""
    make_cluster(batchai_client, emulator, "lowcluster", vm_priority="lowpriority")
    [node] = node_ids(batchai_client, "lowcluster")
    code = code_block("docs/preemption.md", "The emulator's controls")
    scope = {"emu": emulator}
    exec(compile(code, "docs/preemption.md (The emulator's controls)", "exec"), scope)
    assert scope["node_id"] == node
    emulator.set_preemption_rate(0)
    wait_for(lambda: steady_with(batchai_client, 1, "lowcluster"))
    assert node not in node_ids(batchai_client, "lowcluster")


def test_cli_preemption_rate_is_checked(tmp_path, capsys):
    from emulator.__main__ import main

    assert main(["--data-dir", str(tmp_path / "emu"), "--preemption-rate", "-2"]) == 2
    assert main(["--data-dir", str(tmp_path / "emu"), "--preemption-rate", "nan"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: the preemption rate must be 0 or more preemptions per node-hour, not -2.0",
        "error: the preemption rate must be 0 or more preemptions per node-hour, not nan"]


# ---- shrinking a cluster whose nodes are busy: nodeDeallocationOption --------------------------------

@pytest.mark.parametrize("option", ["requeue", "terminate", "waitforjobcompletion"])
def test_a_shrink_of_busy_nodes_follows_the_node_deallocation_option(batchai_client, workspace, share, emulator,
                                                                     option):
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    for name in ("first", "second"):
        submit(batchai_client, name, job_parameters(cluster.id, "echo $$; sleep 60"))
        wait_for_state(batchai_client, name, ("running",))
    batchai_client.clusters.update(RG, WS, "cluster", models.ClusterUpdateParameters(scale_settings=models.ScaleSettings(
        manual=models.ManualScaleSettings(target_node_count=1, node_deallocation_option=option))))
    if option == "waitforjobcompletion":  # the jobs finish first; the cluster stays resizing meanwhile
        assert not wait_for_quiet(lambda: steady_with(batchai_client, 1))
        assert [batchai_client.jobs.get(RG, WS, EXP, n).execution_state for n in ("first", "second")] == [
            "running", "running"]
        batchai_client.jobs.begin_terminate(RG, WS, EXP, "second").result()
        wait_for(lambda: steady_with(batchai_client, 1))
    else:  # the newest node goes at once, and with it the job on it
        wait_for(lambda: steady_with(batchai_client, 1))
        second = wait_for_state(batchai_client, "second", ("queued", "failed"))
        if option == "requeue":
            assert second.execution_state == "queued" and second.execution_info is None
        else:
            assert second.execution_state == "failed"
            assert [e.code for e in second.execution_info.errors] == ["JobTerminatedByResize"]
    assert batchai_client.jobs.get(RG, WS, EXP, "first").execution_state == "running"
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "first").result()
    if option == "requeue":  # it runs again on the node left
        wait_for_state(batchai_client, "second", ("running",))
        batchai_client.jobs.begin_terminate(RG, WS, EXP, "second").result()


def wait_for_quiet(predicate, seconds: float = 1.0):
    """``predicate``'s value if it comes true within ``seconds``, else None (a bounded look, not an assertion)."""
    try:
        return wait_for(predicate, seconds)
    except AssertionError:
        return None


def test_low_priority_node_ids_end_in_p(batchai_client, workspace, share, emulator):
    make_cluster(batchai_client, emulator, "low", vm_priority="lowpriority")
    make_cluster(batchai_client, emulator, "dedicated")
    assert node_ids(batchai_client, "low")[0].endswith("z-p")  # as the service's recorded node ids
    assert node_ids(batchai_client, "dedicated")[0].endswith("z")


def test_preempting_a_node_of_an_mpi_job_ends_every_rank_and_reruns_it(batchai_client, workspace, share, emulator):
    pytest.importorskip("mpi4py")
    from test_distributed import MPI_TIMEOUT, node_dirs, processes_under
    cluster = make_cluster(batchai_client, emulator, nodes=2, vm_priority="lowpriority")
    command = "echo rank $OMPI_COMM_WORLD_RANK; exec sleep 120"
    submit(batchai_client, "mpi", job_parameters(cluster.id, node_count=2, custom_mpi_settings=models.CustomMpiSettings(
        command_line=command)))
    wait_for(lambda: read_output(batchai_client, "mpi", "stdout.txt").count("rank") == 2, timeout=MPI_TIMEOUT)
    nodes = node_ids(batchai_client)
    emulator.preempt_node(RG, WS, "cluster", nodes[0])  # the node mpirun runs on
    assert batchai_client.jobs.get(RG, WS, EXP, "mpi").execution_state == "queued"
    assert processes_under(node_dirs(emulator)) == []  # no rank, daemon or mpirun is left
    wait_for(lambda: read_output(batchai_client, "mpi", "stdout.txt").count("rank") == 4, timeout=MPI_TIMEOUT)
    assert nodes[0] not in node_ids(batchai_client)
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "mpi").result()
    assert processes_under(node_dirs(emulator)) == []


def test_a_restart_right_after_a_preemption_keeps_the_job_queued_and_runs_it(tmp_path):
    """Stopped within the replacement delay (the cluster without its node, the job queued): the job is not
    lost, and runs once the restarted emulator has made up the node."""
    from test_jobs import make_workspace, sdk_clients
    data_dir = tmp_path / "data"
    emu = emulator_package.start(data_dir)
    try:
        batchai_client, resource_client, share_service = sdk_clients(emu)
        share_client = share_service.get_share_client("batchaiquickstart")
        share_client.create_share()
        make_workspace(resource_client, batchai_client)
        cluster = make_cluster(batchai_client, emu, vm_priority="lowpriority")
        submit(batchai_client, "job", job_parameters(cluster.id, ATTEMPTS))
        wait_for(lambda: share_client.get_file_client("attempts.txt").exists())
        emu.preempt_node(RG, WS, "cluster")
        assert batchai_client.jobs.get(RG, WS, EXP, "job").execution_state == "queued"
    finally:
        emu.stop()
    emu = emulator_package.start(data_dir)
    try:
        batchai_client, _, share_service = sdk_clients(emu)
        job = wait_for_state(batchai_client, "job", timeout=30)
        assert job.execution_state == "succeeded", job.execution_info
        assert len(attempts(share_service.get_share_client("batchaiquickstart"))) == 2
        assert wait_for(lambda: steady_with(batchai_client, 1))
    finally:
        emu.stop()
