"""``ssh`` into a node of a job, without sshd or keys: the job's ``ssh`` and mpirun's remote shell.

    node_shell.py NODES_JSON [ssh options] [user@]HOST [COMMAND ...]

HOST is a node's private IP (or node id) from the job's node table. COMMAND runs in that node's
directory with that node's environment (and its own host name where the kernel allows a UTS
namespace), through ``/bin/sh -c`` as sshd would run it. Standalone: the standard library only,
so it starts fast and is importable by ``leader.py``.
"""
import json
import os
import sys

# ssh options that take a value (OpenSSH's getopt string); all others are flags.
_WITH_VALUE = set("BbcDEeFIiJLlmOoPpQRSWw")
SHELL = "/bin/sh"


def load_table(path):
    with open(path) as handle:
        return json.load(handle)


def find_node(table, host):
    for node in table["nodes"]:
        if host in (node["ip"], node["node_id"]):
            return node
    return None


def node_environment(table, env):
    """``env`` plus what the caller's environment passes on to every node (the process tree's marker)."""
    passed = {name: os.environ[name] for name in table.get("inherit", ()) if name in os.environ}
    return dict(env, **passed)


def entering(table, node, argv):
    """``argv`` wrapped so that it runs as on ``node``: its own host name when isolation works."""
    if not table.get("isolate"):
        return list(argv)
    script = 'hostname "$0" && exec "$@"'
    return ["unshare", "--uts", SHELL, "-c", script, node["ip"]] + list(argv)


def parse(args):
    """(host, command words, quiet) from ssh's command line."""
    quiet = False
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "--":
        option = args[index]
        letters = option[1:]
        for position, letter in enumerate(letters):
            if letter in _WITH_VALUE:
                value = letters[position + 1:] or (args[index + 1] if index + 1 < len(args) else "")
                if not letters[position + 1:]:
                    index += 1
                if letter == "o" and value.replace(" ", "").lower() in ("loglevel=error", "loglevel=quiet"):
                    quiet = True
                break
            if letter == "q":
                quiet = True
        index += 1
    if index < len(args) and args[index] == "--":
        index += 1
    if index >= len(args):
        return None, [], quiet
    return args[index].rsplit("@", 1)[-1], args[index + 1:], quiet


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: ssh [options] host [command]\n")
        return 255
    table = load_table(argv[1])
    host, words, quiet = parse(argv[2:])
    if host is None:
        sys.stderr.write("usage: ssh [options] host [command]\n")
        return 255
    node = find_node(table, host)
    if node is None:
        sys.stderr.write("ssh: Could not resolve hostname {}: Name or service not known\n".format(host))
        return 255
    if not quiet:  # as on the service: host keys are not kept between connections
        sys.stderr.write("Warning: Permanently added '{}' (ECDSA) to the list of known hosts.\r\n".format(node["ip"]))
        sys.stderr.flush()
    command = [SHELL, "-c", " ".join(words)] if words else [SHELL]
    os.chdir(node["cwd"])
    final = entering(table, node, command)
    os.execvpe(final[0], final, node_environment(table, node["env"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
