"""Multi-node Batch AI jobs on the emulator, through the real SDK: MPI ranks placed on their nodes by a
real mpirun, PyTorch tasks doing an all-reduce with the recipe's command line, the TensorFlow ps/worker
environment, ssh between nodes, the per-node output layout, and no process left after a terminate or a
crashing rank."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from azure.mgmt.batchai import models

from test_jobs import (EXP, MOUNT_ROOT, RG, WS, error_codes, job_parameters, make_cluster, output_files,
                       read_output, submit, wait_for, wait_for_state)
from test_jobs import share, workspace  # noqa: F401  (fixtures)

pytest.importorskip("mpi4py")
MPI_TIMEOUT = 120  # generous: the machine is shared and mpirun starts a daemon per node

RANK_REPORT = (sys.executable + " -c \"import os, socket; from mpi4py import MPI; c = MPI.COMM_WORLD; "
               "print(c.Get_rank(), c.Get_size(), MPI.Get_processor_name(), os.environ['AZ_BATCHAI_JOB_TEMP'], "
               "os.getcwd(), os.environ.get('BATCHAI_EMULATOR_TREE'), flush=True)\"")


@pytest.fixture
def cluster3(workspace, share, batchai_client, emulator) -> models.Cluster:
    return make_cluster(batchai_client, emulator, nodes=3)


def processes_under(directory: Path) -> list:
    """Processes whose working directory is inside ``directory`` (the emulator's nodes)."""
    found = []
    root = str(directory.resolve())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/{}/cwd".format(entry))
            with open("/proc/{}/stat".format(entry)) as stat:
                if stat.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            found.append(int(entry))
    return found


def cluster_nodes(batchai_client, cluster: str = "cluster") -> list:
    """Node ids of a cluster in the order of their IPs (10.0.0.4, ...)."""
    return [login.node_id for login in batchai_client.clusters.list_remote_login_information(RG, WS, cluster)]


def node_dirs(emulator) -> Path:
    return Path(emulator.data_dir) / "nodes"


def test_mpi_job_runs_one_rank_per_node(batchai_client, cluster3, emulator):
    submit(batchai_client, "mpi", job_parameters(cluster3.id, node_count=3, custom_mpi_settings=models.CustomMpiSettings(
        command_line=RANK_REPORT)))
    job = wait_for_state(batchai_client, "mpi", timeout=MPI_TIMEOUT)
    assert (job.execution_state, job.execution_info.exit_code, job.tool_type) == ("succeeded", 0, "custommpi")
    assert job.custom_mpi_settings.process_count == 3  # the default, nodeCount, echoed
    ranks = sorted(line.split() for line in read_output(batchai_client, "mpi", "stdout.txt").splitlines())
    assert [(r[0], r[1], r[2]) for r in ranks] == [("0", "3", "10.0.0.4"), ("1", "3", "10.0.0.5"),
                                                   ("2", "3", "10.0.0.6")]
    # each rank ran in its own node's directory, with its own node's environment
    assert len({r[3] for r in ranks}) == 3 and all(r[4] == r[3] for r in ranks)
    # and carries the job's process-tree marker, by which the runner finds every process of the job
    assert {r[5] for r in ranks} == {"job-" + job.job_output_directory_path_segment.rsplit("/", 1)[1]}
    nodes = cluster_nodes(batchai_client)
    files = output_files(batchai_client, "mpi")
    assert sorted(files) == sorted(["execution-{}.log".format(n) for n in nodes] + ["stderr.txt", "stdout.txt"])
    for rank, node in zip(ranks, nodes):
        assert "/{}/".format(node) in rank[3]
    assert "Permanently added '10.0.0.5'" in read_output(batchai_client, "mpi", "stderr.txt")


def test_host_file_ssh_and_environment_of_each_node(batchai_client, cluster3, emulator):
    command = ("cat $AZ_BATCHAI_MPI_HOST_FILE; echo hosts $AZ_BATCH_HOST_LIST; "
               "ssh 10.0.0.5 'echo on $(hostname) $AZ_BATCHAI_TASK_INDEX $PWD' && ssh 10.0.0.6 echo done")
    submit(batchai_client, "ssh", job_parameters(cluster3.id, command, node_count=3))
    job = wait_for_state(batchai_client, "ssh", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", job.execution_info
    lines = read_output(batchai_client, "ssh", "stdout.txt").splitlines()
    assert lines[:4] == ["10.0.0.4 slots=1", "10.0.0.5 slots=1", "10.0.0.6 slots=1", "hosts 10.0.0.4,10.0.0.5,10.0.0.6"]
    node = cluster_nodes(batchai_client)[1]
    on, host, index, cwd = lines[4].split()
    assert (on, index) == ("on", "0") and "/{}/".format(node) in cwd
    assert lines[5] == "done"
    assert "Warning: Permanently added '10.0.0.5' (ECDSA) to the list of known hosts." in read_output(
        batchai_client, "ssh", "stderr.txt")


def test_terminating_an_mpi_job_leaves_no_process(batchai_client, cluster3, emulator):
    submit(batchai_client, "long", job_parameters(cluster3.id, node_count=3, custom_mpi_settings=models.CustomMpiSettings(
        command_line="echo rank $OMPI_COMM_WORLD_RANK; exec sleep 120")))
    wait_for(lambda: read_output(batchai_client, "long", "stdout.txt").count("rank") == 3, timeout=MPI_TIMEOUT)
    assert len(processes_under(node_dirs(emulator))) >= 3 + 3  # ranks, and mpirun with a daemon per node
    start = time.monotonic()
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "long").result()
    assert time.monotonic() - start < 15
    job = batchai_client.jobs.get(RG, WS, EXP, "long")
    assert (job.execution_state, error_codes(job)) == ("failed", ["JobTerminated"])
    assert processes_under(node_dirs(emulator)) == []
    wait_for(lambda: batchai_client.clusters.get(RG, WS, "cluster").node_state_counts.idle_node_count == 3)


def test_a_crashing_rank_fails_the_job_and_ends_every_rank(batchai_client, cluster3, emulator):
    crash = ("if [ $OMPI_COMM_WORLD_RANK = 1 ]; then sleep 1; echo rank 1 dies >&2; exit 3; fi; exec sleep 120")
    submit(batchai_client, "crash", job_parameters(cluster3.id, node_count=3, custom_mpi_settings=models.CustomMpiSettings(
        command_line=crash)))
    job = wait_for_state(batchai_client, "crash", timeout=MPI_TIMEOUT)
    assert (job.execution_state, job.execution_info.exit_code) == ("failed", 3)
    assert [(e.code, e.message) for e in job.execution_info.errors] == [
        ("JobFailed", "Job failed with non-zero exit code")]
    assert "rank 1 dies" in read_output(batchai_client, "crash", "stderr.txt")
    assert processes_under(node_dirs(emulator)) == []


def test_pytorch_job_all_reduces_with_the_recipe_command_line(batchai_client, workspace, share, emulator):
    pytest.importorskip("torch")
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    share.get_file_client("allreduce.py").upload_file(b"""\
import argparse, os, torch, torch.distributed as dist
parser = argparse.ArgumentParser()
parser.add_argument("--world-size", type=int)
parser.add_argument("--dist-backend")
parser.add_argument("--dist-url")
parser.add_argument("--rank", type=int)
args = parser.parse_args()
dist.init_process_group(args.dist_backend, init_method=args.dist_url, world_size=args.world_size, rank=args.rank)
value = torch.tensor([float(args.rank + 1)])
dist.all_reduce(value)
print("rank", args.rank, "of", dist.get_world_size(), "sum", value.item(), os.environ["AZ_BATCHAI_JOB_TEMP"])
dist.destroy_process_group()
""")
    settings = models.PyTorchSettings(
        python_script_file_path=MOUNT_ROOT + "/allreduce.py", python_interpreter_path=sys.executable,
        communication_backend="gloo", command_line_args="--world-size 2 --dist-backend $AZ_BATCHAI_PYTORCH_BACKEND "
                                                        "--dist-url $AZ_BATCHAI_PYTORCH_INIT_METHOD --rank $AZ_BATCHAI_TASK_INDEX")
    submit(batchai_client, "torch", job_parameters(cluster.id, node_count=2, py_torch_settings=settings))
    job = wait_for_state(batchai_client, "torch", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", (job.execution_info, read_output(batchai_client, "torch", "stderr-0.txt"))
    assert job.py_torch_settings.process_count == 2
    nodes = cluster_nodes(batchai_client)
    assert {"stdout-0.txt", "stdout-1.txt", "stderr-0.txt", "stderr-1.txt"} <= set(output_files(batchai_client, "torch"))
    for rank in (0, 1):
        words = read_output(batchai_client, "torch", "stdout-{}.txt".format(rank)).split()
        assert words[:6] == ["rank", str(rank), "of", "2", "sum", "3.0"]
        assert "/{}/".format(nodes[rank]) in words[6]


def test_tensorflow_tasks_get_the_ps_and_worker_environment(batchai_client, workspace, share, emulator):
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    share.get_file_client("tf.py").upload_file(b"""\
import os, sys, time
print(" ".join(sys.argv[1:]), os.environ["AZ_BATCHAI_PS_HOSTS"], os.environ["AZ_BATCHAI_WORKER_HOSTS"],
      os.environ["AZ_BATCHAI_TASK_INDEX"], flush=True)
ready = os.path.join(os.environ["AZ_BATCHAI_SHARED_JOB_TEMP"], "ps-ready")
if "--job_name=ps" in sys.argv:
    open(ready, "w").close()
    time.sleep(120)  # a parameter server serves until the workers are done
while not os.path.exists(ready):  # a worker waits for its parameter server
    time.sleep(0.05)
""")
    settings = models.TensorFlowSettings(
        python_script_file_path=MOUNT_ROOT + "/tf.py", python_interpreter_path=sys.executable,
        master_command_line_args="--job_name=worker --task_index=$AZ_BATCHAI_TASK_INDEX master",
        worker_command_line_args="--job_name=worker --task_index=$AZ_BATCHAI_TASK_INDEX",
        parameter_server_command_line_args="--job_name=ps --task_index=$AZ_BATCHAI_TASK_INDEX",
        worker_count=2, parameter_server_count=1)
    submit(batchai_client, "tf", job_parameters(cluster.id, node_count=2, tensor_flow_settings=settings))
    job = wait_for_state(batchai_client, "tf", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", job.execution_info
    files = output_files(batchai_client, "tf")
    assert {"stdout-ps-0.txt", "stdout-wk-0.txt", "stdout-wk-1.txt", "stderr-wk-1.txt"} <= set(files)
    assert "stdout.txt" not in files
    hosts = "10.0.0.4:2222 10.0.0.4:2223,10.0.0.5:2222"
    assert read_output(batchai_client, "tf", "stdout-ps-0.txt") == "--job_name=ps --task_index=0 {} 0\n".format(hosts)
    assert read_output(batchai_client, "tf", "stdout-wk-0.txt") == \
        "--job_name=worker --task_index=0 master {} 0\n".format(hosts)
    assert read_output(batchai_client, "tf", "stdout-wk-1.txt") == "--job_name=worker --task_index=1 {} 1\n".format(hosts)
    assert processes_under(node_dirs(emulator)) == []  # the parameter server was stopped with the job


def test_job_preparation_runs_on_every_node(batchai_client, workspace, share, emulator):
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    submit(batchai_client, "prep", job_parameters(
        cluster.id, "cat $AZ_BATCHAI_JOB_TEMP/prepared; ssh 10.0.0.5 cat '$AZ_BATCHAI_JOB_TEMP/prepared'", node_count=2,
        job_preparation=models.JobPreparation(command_line="echo $AZ_BATCHAI_JOB_TEMP | tee $AZ_BATCHAI_JOB_TEMP/prepared")))
    job = wait_for_state(batchai_client, "prep", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", job.execution_info
    nodes = cluster_nodes(batchai_client)
    files = output_files(batchai_client, "prep")
    assert {"stdout-job_prep-{}.txt".format(n) for n in nodes} <= set(files)
    assert {"stderr-job_prep-{}.txt".format(n) for n in nodes} <= set(files)
    temps = read_output(batchai_client, "prep", "stdout.txt").split()
    assert len(temps) == 2 and ["/{}/".format(n) in t for n, t in zip(nodes, temps)] == [True, True]
    for node, temp in zip(nodes, temps):
        assert read_output(batchai_client, "prep", "stdout-job_prep-{}.txt".format(node)).strip() == temp


@pytest.mark.parametrize("toolkit", ["horovod_settings", "chainer_settings"])
def test_python_mpi_toolkits_place_process_count_ranks_by_the_host_file(batchai_client, workspace, share, emulator,
                                                                       toolkit):
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    share.get_file_client("ranks.py").upload_file(b"""\
import os, sys
from mpi4py import MPI
print(MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size(), os.environ["OMPI_COMM_WORLD_LOCAL_RANK"],
      MPI.Get_processor_name(), " ".join(sys.argv[1:]), flush=True)
""")
    settings_class = {"horovod_settings": models.HorovodSettings, "chainer_settings": models.ChainerSettings}[toolkit]
    settings = settings_class(python_script_file_path=MOUNT_ROOT + "/ranks.py", python_interpreter_path=sys.executable,
                              command_line_args="--out $AZ_BATCHAI_JOB_TEMP", process_count=4)
    submit(batchai_client, "ranks", job_parameters(cluster.id, node_count=2, **{toolkit: settings}))
    job = wait_for_state(batchai_client, "ranks", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", read_output(batchai_client, "ranks", "stderr.txt")
    ranks = sorted(line.split() for line in read_output(batchai_client, "ranks", "stdout.txt").splitlines())
    # two slots per node, filled in order: ranks 0, 1 on 10.0.0.4 and 2, 3 on 10.0.0.5
    assert [r[:4] for r in ranks] == [["0", "4", "0", "10.0.0.4"], ["1", "4", "1", "10.0.0.4"],
                                      ["2", "4", "0", "10.0.0.5"], ["3", "4", "1", "10.0.0.5"]]
    nodes = cluster_nodes(batchai_client)
    assert ["/{}/".format(nodes[int(r[0]) // 2]) in r[5] for r in ranks] == [True] * 4   # each node's own JOB_TEMP


def test_deleting_a_multi_node_job_ends_every_rank(batchai_client, workspace, share, emulator):
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    submit(batchai_client, "doomed", job_parameters(cluster.id, node_count=2, custom_mpi_settings=models.CustomMpiSettings(
        command_line="echo rank $OMPI_COMM_WORLD_RANK; exec sleep 120")))
    wait_for(lambda: read_output(batchai_client, "doomed", "stdout.txt").count("rank") == 2, timeout=MPI_TIMEOUT)
    batchai_client.jobs.begin_delete(RG, WS, EXP, "doomed").result()
    assert processes_under(node_dirs(emulator)) == []
    wait_for(lambda: batchai_client.clusters.get(RG, WS, "cluster").node_state_counts.idle_node_count == 2)


def test_process_count_must_be_positive(batchai_client, workspace, share, emulator):
    from azure.core.exceptions import HttpResponseError
    cluster = make_cluster(batchai_client, emulator, nodes=1)
    with pytest.raises(HttpResponseError) as caught:
        submit(batchai_client, "bad", job_parameters(cluster.id, custom_mpi_settings=models.CustomMpiSettings(
            command_line="true", process_count=0)))
    assert "properties.customMpiSettings.processCount" in caught.value.error.message


def test_mpi_job_without_host_name_isolation(batchai_client, cluster3, emulator, monkeypatch):
    """Where ``unshare --uts`` is not allowed (no root or CAP_SYS_ADMIN) the nodes share the host name:
    the ranks still run on their nodes, talking over TCP."""
    from emulator.runner import launching
    monkeypatch.setattr(launching, "can_isolate_host_names", lambda: False)
    submit(batchai_client, "shared", job_parameters(cluster3.id, node_count=3, custom_mpi_settings=models.CustomMpiSettings(
        command_line=RANK_REPORT)))
    job = wait_for_state(batchai_client, "shared", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", read_output(batchai_client, "shared", "stderr.txt")
    ranks = sorted(line.split() for line in read_output(batchai_client, "shared", "stdout.txt").splitlines())
    assert [(r[0], r[1]) for r in ranks] == [("0", "3"), ("1", "3"), ("2", "3")]
    assert ["/{}/".format(node) in rank[3] for node, rank in zip(cluster_nodes(batchai_client), ranks)] == [True] * 3


def test_after_a_crash_every_rank_of_a_multi_node_job_is_killed(tmp_path):
    """``kill -9`` of the emulator orphans mpirun, its daemons and the ranks (each in a process group of its
    own); the next start kills them all: they carry the job's marker, which entering a node keeps."""
    import json
    import subprocess
    import types

    import emulator as emulator_package
    from conftest import ROOT
    from test_jobs import make_share, make_workspace, sdk_clients

    data_dir = tmp_path / "data"
    server = subprocess.Popen([sys.executable, "-m", "emulator", "--data-dir", str(data_dir)], cwd=str(ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = types.SimpleNamespace(**json.loads(server.stdout.readline()))
        batchai_client, resource_client, share_service = sdk_clients(info)
        make_share(share_service)
        make_workspace(resource_client, batchai_client)
        cluster = make_cluster(batchai_client, info, nodes=2)
        submit(batchai_client, "orphan", job_parameters(cluster.id, node_count=2,
                                                        custom_mpi_settings=models.CustomMpiSettings(
                                                            command_line="echo rank; exec sleep 120")))
        wait_for(lambda: read_output(batchai_client, "orphan", "stdout.txt").count("rank") == 2,
                 timeout=MPI_TIMEOUT)
        server.kill()
        server.wait(10)
        assert len(processes_under(data_dir / "nodes")) >= 2   # nobody stopped them: the emulator died
        with emulator_package.start(data_dir) as emu:
            batchai_client, _, _ = sdk_clients(emu)
            job = batchai_client.jobs.get(RG, WS, EXP, "orphan")
            assert (job.execution_state, error_codes(job)) == ("failed", ["JobInterrupted"])
            wait_for(lambda: processes_under(data_dir / "nodes") == [], timeout=10)
    finally:
        if server.poll() is None:
            server.kill()


def test_caffe2_runs_one_shard_per_node(batchai_client, workspace, share, emulator):
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    share.get_file_client("shard.py").upload_file(b"import os, sys; print(sys.argv[1:], os.getcwd())")
    settings = models.Caffe2Settings(python_script_file_path=MOUNT_ROOT + "/shard.py",
                                     python_interpreter_path=sys.executable,
                                     command_line_args="--shard_id $AZ_BATCHAI_TASK_INDEX --num_shards 2")
    submit(batchai_client, "caffe2", job_parameters(cluster.id, node_count=2, caffe2_settings=settings))
    job = wait_for_state(batchai_client, "caffe2", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", job.execution_info
    nodes = cluster_nodes(batchai_client)
    for shard in (0, 1):
        line = read_output(batchai_client, "caffe2", "stdout-{}.txt".format(shard))
        assert line.startswith("['--shard_id', '{}', '--num_shards', '2'] ".format(shard))
        assert "/{}/".format(nodes[shard]) in line


def test_a_job_can_call_mpirun_itself_over_the_host_file(batchai_client, workspace, share, emulator):
    """As the preview-era Horovod recipe did (customToolkitSettings running mpirun): mpirun is on the job's
    PATH and reaches the nodes with the job's ssh."""
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    command = ("mpirun --allow-run-as-root --hostfile $AZ_BATCHAI_MPI_HOST_FILE --mca btl_tcp_if_include lo "
               "--bind-to none " + RANK_REPORT)
    submit(batchai_client, "own", job_parameters(cluster.id, command, node_count=2))
    job = wait_for_state(batchai_client, "own", timeout=MPI_TIMEOUT)
    assert job.execution_state == "succeeded", read_output(batchai_client, "own", "stderr.txt")
    ranks = sorted(line.split() for line in read_output(batchai_client, "own", "stdout.txt").splitlines())
    assert [r[:3] for r in ranks] == [["0", "2", "10.0.0.4"], ["1", "2", "10.0.0.5"]]
