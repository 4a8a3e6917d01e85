"""Jobs cannot read what is not theirs, and cannot outlive their job (emulator.runner.sandbox).

A job's processes run as the emulator's OS user; the sandbox keeps them from the rest of the data
directory (the database with the token, the TLS key, other jobs' nodes, shares not mounted for them),
from other jobs' processes, and finds every process they start, also one that cleared its environment
and left its session. Where this kernel lacks the mechanism a test needs, it is skipped with the reason.
"""
from __future__ import annotations

import os
import secrets
import signal
import tempfile

import pytest
from azure.mgmt.batchai import models

from emulator.runner import sandbox
from test_jobs import (RG, WS, EXP, error_codes, job_parameters, make_cluster, make_share,
                       make_workspace, read_output, running_pid, submit, wait_for, wait_for_state)

LANDLOCK, PID_NAMESPACE = sandbox.capabilities()
needs_landlock = pytest.mark.skipif(not LANDLOCK, reason="this kernel has no Landlock: jobs can read the data "
                                                         "directory (docs/safety-sandbox.md)")
needs_pid_namespace = pytest.mark.skipif(not PID_NAMESPACE, reason="no PID namespace can be made here (neither root "
                                                                   "nor unprivileged user namespaces)")

# Reads each path given; prints "<path> read" or "<path> refused".
PROBE = 'for f in "$@"; do if cat "$f" > /dev/null 2>&1; then echo "$f read"; else echo "$f refused"; fi; done'


@pytest.fixture
def cluster(resource_client, batchai_client, share_service, emulator) -> models.Cluster:
    make_workspace(resource_client, batchai_client)
    make_share(share_service)
    return make_cluster(batchai_client, emulator)


def probe(batchai_client, cluster, name: str, paths: list) -> dict:
    """{path: "read" or "refused"} as a job on ``cluster`` found them."""
    command = "sh -c '{}' probe {}".format(PROBE, " ".join(str(path) for path in paths))
    submit(batchai_client, name, job_parameters(cluster.id, command))
    assert wait_for_state(batchai_client, name, timeout=30).execution_state == "succeeded"
    lines = read_output(batchai_client, name, "stdout.txt").split("\n")
    return dict(line.rsplit(" ", 1) for line in lines if line)


def tagged(tag: str) -> list:
    """Pids of the live processes (not zombies) that have ``tag`` as a word of their command line."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/{}/cmdline".format(entry), "rb") as handle:
                words = handle.read().split(b"\0")
            with open("/proc/{}/stat".format(entry)) as handle:
                state = handle.read().rsplit(")", 1)[-1].split()[0]
        except OSError:  # gone meanwhile
            continue
        if tag.encode() in words and state != "Z":
            pids.append(int(entry))
    return pids


def kill_tagged(tag: str) -> None:
    for pid in tagged(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@needs_landlock
def test_a_job_cannot_read_the_database_or_the_tls_key(emulator, batchai_client, cluster):
    data = emulator.data_dir
    targets = [data / "emulator.db", data / "tls" / "key.pem"]
    assert all(path.exists() for path in targets)
    assert probe(batchai_client, cluster, "thief", targets) == {str(path): "refused" for path in targets}


@needs_landlock
def test_a_job_cannot_read_another_jobs_node_but_reads_its_own(emulator, batchai_client, cluster):
    other = make_cluster(batchai_client, emulator, name="other")
    submit(batchai_client, "victim", job_parameters(
        cluster.id, 'echo $$; echo secret > "$AZ_BATCHAI_JOB_TEMP/mine.txt"; echo "$AZ_BATCHAI_JOB_TEMP" >&2; '
                    "exec sleep 300"))
    running_pid(batchai_client, "victim")  # it wrote its file
    victims_file = wait_for(lambda: read_output(batchai_client, "victim", "stderr.txt").strip()) + "/mine.txt"
    assert os.path.exists(victims_file)
    own = "$AZ_BATCHAI_JOB_TEMP/own.txt"
    submit(batchai_client, "thief", job_parameters(
        other.id, 'echo own > "{}"; sh -c \'{}\' probe "{}" {}'.format(own, PROBE, own, victims_file)))
    assert wait_for_state(batchai_client, "thief", timeout=30).execution_state == "succeeded"
    found = [line.rsplit(" ", 1)[1] for line in read_output(batchai_client, "thief", "stdout.txt").split("\n") if line]
    assert found == ["read", "refused"]
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "victim").result()


@needs_landlock
def test_a_job_cannot_read_a_share_its_cluster_does_not_mount(emulator, batchai_client, share_service, cluster):
    make_share(share_service, "private").get_file_client("secret.txt").upload_file(b"not yours")
    files = emulator.services["files"].backend
    secret = files.share_path("private") / "secret.txt"
    mounted = files.share_path("batchaiquickstart") / "mounted.txt"
    mounted.write_text("yours")
    assert probe(batchai_client, cluster, "thief", [secret, mounted]) == {str(secret): "refused",
                                                                           str(mounted): "read"}


@needs_pid_namespace
def test_a_job_cannot_read_another_jobs_environment(emulator, batchai_client, cluster):
    other = make_cluster(batchai_client, emulator, name="other")
    value = secrets.token_hex(16)
    submit(batchai_client, "victim", job_parameters(cluster.id, "echo $$; exec sleep 300", secrets=[
        models.EnvironmentVariableWithSecretValue(name="VICTIM_SECRET", value=value)]))
    victim = running_pid(batchai_client, "victim")
    with open("/proc/{}/environ".format(victim), "rb") as handle:  # the test itself can: it is there
        assert value.encode() in handle.read()
    command = ("cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c {v}; "
               "cat /proc/{pid}/environ 2>/dev/null | tr '\\0' '\\n' | grep -c {v}; true").format(v=value, pid=victim)
    submit(batchai_client, "thief", job_parameters(other.id, command))
    assert wait_for_state(batchai_client, "thief", timeout=30).execution_state == "succeeded"
    assert read_output(batchai_client, "thief", "stdout.txt").split() == ["0", "0"]
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "victim").result()


def test_a_job_has_a_temporary_directory_it_can_use(batchai_client, cluster):
    """Where the data directory lies in the machine's temporary directory (as here), the sandbox could not
    let jobs create files there: each job gets a TMPDIR of its own, gone when it ends."""
    command = ("python3 -c 'import tempfile; f = tempfile.NamedTemporaryFile(); f.write(b\"x\"); f.flush(); "
               "print(open(f.name).read(), f.name)'")
    submit(batchai_client, "temp", job_parameters(cluster.id, command))
    assert wait_for_state(batchai_client, "temp", timeout=30).execution_state == "succeeded"
    text, name = read_output(batchai_client, "temp", "stdout.txt").split()
    assert text == "x"
    assert not os.path.exists(os.path.dirname(name)) or os.path.dirname(name) == tempfile.gettempdir()


# ``env -i setsid`` in a subshell: the process has no parent in the job, no session, no environment (it
# touches "$AZ_BATCHAI_JOB_TEMP/started" first, passed as an argument).
def escaper(tag: str) -> str:
    return ("(env -i setsid sh -c 'touch \"$0\"; exec sleep {}' \"$AZ_BATCHAI_JOB_TEMP/started\" "
            "> /dev/null 2>&1 &); while [ ! -e \"$AZ_BATCHAI_JOB_TEMP/started\" ]; do sleep 0.02; done; ").format(tag)


def unique_tag() -> str:
    """A sleep duration no other process of this machine has on its command line."""
    return "{}.{}".format(900 + secrets.randbelow(99), secrets.randbelow(10 ** 9))


def test_cancel_ends_a_process_that_cleared_its_environment(batchai_client, cluster):
    tag = unique_tag()
    submit(batchai_client, "escaping", job_parameters(cluster.id, escaper(tag) + "echo $$; exec sleep 300"))
    running_pid(batchai_client, "escaping")  # it printed after its escaper started
    try:
        assert tagged(tag)
        batchai_client.jobs.begin_terminate(RG, WS, EXP, "escaping").result()
        assert error_codes(batchai_client.jobs.get(RG, WS, EXP, "escaping")) == ["JobTerminated"]
        wait_for(lambda: not tagged(tag), timeout=10)
    finally:
        kill_tagged(tag)


def test_the_end_of_a_job_ends_a_process_that_cleared_its_environment(batchai_client, cluster):
    tag = unique_tag()
    submit(batchai_client, "escaping", job_parameters(cluster.id, escaper(tag) + "echo done"))
    try:
        assert wait_for_state(batchai_client, "escaping", timeout=30).execution_state == "succeeded"
        assert read_output(batchai_client, "escaping", "stdout.txt") == "done\n"
        wait_for(lambda: not tagged(tag), timeout=10)
    finally:
        kill_tagged(tag)


def test_the_emulator_says_which_sandbox_is_in_force(caplog, tmp_path):
    import emulator as emulator_package

    with caplog.at_level("INFO", logger="emulator"):
        with emulator_package.start(tmp_path / "data"):
            pass
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("job sandbox:")]
    assert len(lines) == 1
    assert ("Landlock ABI {}".format(LANDLOCK) in lines[0]) == bool(LANDLOCK)
    assert ("a PID namespace per job" in lines[0]) == PID_NAMESPACE
