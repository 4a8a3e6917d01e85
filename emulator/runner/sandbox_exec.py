"""The sandbox every process of a job (or a node's setup task) runs in.

    sandbox_exec.py POLICY_JSON COMMAND [ARG ...]

POLICY_JSON: {"hidden": [DIR, ...], "allowed": [DIR, ...], "read_only": [DIR, ...], "landlock": bool,
"pid_namespace": bool}.
This process
- becomes a child subreaper: whatever the job starts, also with ``env -i setsid cmd &`` and double
  forks, stays its descendant while it lives (orphans are re-parented to it, not to init);
- with ``landlock``, starts COMMAND in a Landlock domain (Linux 5.13+, unprivileged) that allows
  every file of the machine except those under ``hidden`` (the emulator's data directory, its jobs'
  temporary directories), of which it allows only the ``allowed`` directories (the job's own) and, to read
  and run, the ``read_only`` ones (shared between jobs: built environments). Landlock also refuses the
  job ptrace access to processes outside its domain (so ``/proc/<pid>/environ``, ``/fd`` and
  ``/mem`` of the emulator and of other jobs), and, from ABI 6, signals and abstract UNIX sockets
  outside it: the job cannot kill this process, so it cannot shed it;
- waits for COMMAND, reaping orphans, then kills everything left below it and exits with
  COMMAND's status (128 + N if a signal N ended it).
Signals: SIGTERM is ignored here (the runner sends it to every process of the tree itself).
Standalone: the standard library only (``emulator.runner.sandbox`` imports the Landlock part).
"""
import ctypes
import json
import os
import signal
import sys

# Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every architecture.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36
# Access rights to files (ABI 1: bits 0-12; REFER in ABI 2, TRUNCATE in 3, IOCTL_DEV in 5).
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV  # the rights a rule on a file may hold
_READ_RIGHTS = _EXECUTE | _READ_FILE | _READ_DIR  # a shared directory a job may use but not change
# Scopes (ABI 6): no connecting to abstract UNIX sockets, no signals, outside the domain.
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SandboxError(OSError):
    pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers (1, 2, ...), 0 where it has none or it is disabled."""
    try:
        version = _libc().syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                                  ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def granted_paths(hidden: list, allowed: list) -> list:
    """Every path but those under ``hidden``, as rules can say it (a rule allows a whole hierarchy and
    nothing can be taken out of it): the entries, as they are now, of each directory above a hidden one,
    except those towards it; then the ``allowed`` paths."""
    hidden = [os.path.realpath(path) for path in hidden]
    paths = []

    def visit(directory: str) -> None:
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            path = os.path.join(directory, name)
            if path in hidden:
                continue
            if any(other.startswith(path + "/") for other in hidden):
                visit(path)
            else:
                paths.append(path)

    visit("/")
    return paths + list(allowed)


def landlock_ruleset(abi: int, paths: list, read_only: list = ()) -> int:
    """A ruleset fd allowing all access under each of ``paths``, and reading and running under each of
    ``read_only`` (never through a symbolic link) and, from ABI 6, scoping signals and abstract UNIX
    sockets to the domain."""
    libc = _libc()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, 0, (_SCOPE_SIGNAL | _SCOPE_ABSTRACT_UNIX_SOCKET) if abi >= 6 else 0)
    ruleset = libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(ctypes.get_errno(), "landlock_create_ruleset: " + os.strerror(ctypes.get_errno()))
    for path, allowed in [(path, handled) for path in paths] + [(path, _READ_RIGHTS) for path in read_only]:
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # gone since it was listed
        try:
            mode = os.fstat(fd).st_mode
            if (mode & 0o170000) == 0o120000:  # a symbolic link: what it points to has rules of its own, or none
                continue
            rights = allowed if (mode & 0o170000) == 0o040000 else allowed & _FILE_RIGHTS
            rule = _PathBeneathAttr(rights, fd)
            libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                         ctypes.byref(rule), ctypes.c_uint32(0))
        finally:
            os.close(fd)
    return ruleset


def restrict_self(ruleset: int) -> None:
    """Enter the ruleset's domain, for good (this process and everything it starts)."""
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS): " + os.strerror(ctypes.get_errno()))
    if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        raise SandboxError(ctypes.get_errno(), "landlock_restrict_self: " + os.strerror(ctypes.get_errno()))


# ---- the process that holds a job ---------------------------------------------------------------

def _parents() -> dict:
    """{pid: parent pid} of the live processes (a process that ends while it is read is left out)."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/{}/stat".format(name)) as handle:
                fields = handle.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields and fields[0] not in ("Z", "X"):
            parents[int(name)] = int(fields[1])
    return parents


def descendants(root: int) -> set:
    """Pids of the live processes below ``root``."""
    children: dict = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def end_all_below() -> None:
    """SIGKILL every process below this one and reap them, until it has no child left (all of them are
    re-parented here as their parents die, so no child left means nothing left)."""
    while True:
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _status(status: int) -> int:
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(errno, "{}: {}".format(what, os.strerror(errno)))


def enter_pid_namespace() -> None:
    """Unshare a PID and a mount namespace (with a user namespace that maps only our own ids, where we
    are not root); the next child forked is PID 1 of the new namespace."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    flags = _CLONE_NEWPID | _CLONE_NEWNS | (0 if uid == 0 else _CLONE_NEWUSER)
    _check(libc.unshare(ctypes.c_int(flags)), "unshare")
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", "{0} {0} 1".format(uid)),
                           ("gid_map", "{0} {0} 1".format(gid))):
            with open("/proc/self/" + name, "w") as handle:
                handle.write(text)


def mount_own_proc() -> None:
    """In the new namespaces: a /proc that shows only the namespace's processes (mounted over the old
    one, never propagated back)."""
    libc = _libc()
    _check(libc.mount(None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None), "mount --make-rprivate /")
    _check(libc.mount(b"proc", b"/proc", b"proc", ctypes.c_ulong(_MS_NOSUID | _MS_NODEV | _MS_NOEXEC), None),
           "mount proc")


def _hold(child: int) -> int:
    """Wait for ``child`` (reaping every orphan meanwhile), then end everything left below; its status."""
    code = None
    while code is None:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            code = 127
            break
        if pid == child:
            code = _status(status)
    end_all_below()
    return code


def _start_job(command: list, ruleset) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if ruleset is not None:
                restrict_self(ruleset)
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, "sandbox: cannot start {}: {}\n".format(command[0], exc.strerror or exc).encode())
            os._exit(126 if isinstance(exc, SandboxError) else 127)
    if ruleset is not None:
        os.close(ruleset)
    return pid


def _ruleset(policy: dict):
    if not policy.get("landlock"):
        return None
    return landlock_ruleset(landlock_abi(), granted_paths(policy["hidden"], policy.get("allowed", [])),
                            policy.get("read_only", []))


def main(argv: list) -> int:
    if len(argv) < 3:
        sys.stderr.write("usage: sandbox_exec.py POLICY_JSON COMMAND [ARG ...]\n")
        return 125
    policy = json.loads(argv[1])
    command = argv[2:]
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # a handler, not SIG_IGN: exec resets it
    _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        if not policy.get("pid_namespace"):
            return _hold(_start_job(command, _ruleset(policy)))
        enter_pid_namespace()
    except OSError as exc:
        sys.stderr.write("sandbox: cannot sandbox {}: {}\n".format(command[0], exc))
        return 126
    init = os.fork()
    if init == 0:  # PID 1 of the namespace: when it ends, the kernel kills every process left in it
        try:
            mount_own_proc()
            ruleset = _ruleset(policy)
        except OSError as exc:
            sys.stderr.write("sandbox: cannot sandbox {}: {}\n".format(command[0], exc))
            os._exit(126)
        os._exit(_hold(_start_job(command, ruleset)))
    return _hold(init)


def probe() -> dict:
    """What works here: {"landlock": ABI version or 0, "pid_namespace": bool}, tried in a child process."""
    result = {"landlock": landlock_abi(), "pid_namespace": False}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = b"0"
        try:
            os.close(read)
            enter_pid_namespace()
            init = os.fork()
            if init == 0:
                try:
                    mount_own_proc()
                    os._exit(0 if os.listdir("/proc").count("1") == 1 and os.getpid() == 1 else 1)
                except BaseException:
                    os._exit(1)
            ok = b"1" if os.waitpid(init, 0)[1] == 0 else b"0"
        except BaseException:
            pass
        finally:
            os.write(write, ok)
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        result["pid_namespace"] = handle.read() == b"1"
    os.waitpid(pid, 0)
    return result


if __name__ == "__main__":
    if sys.argv[1:] == ["--probe"]:
        print(json.dumps(probe()))
        sys.exit(0)
    sys.exit(main(sys.argv))
