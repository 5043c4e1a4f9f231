"""The hostile app of test_sandbox_attacks.py (SANDBOX.md section 6).

It runs as a hosted user ("alice") inside the real sandboxed lodge-worker
started by lodged, and every request runs one attack from here, in the
worker process itself (or, where the attack needs a single-threaded
process or a fork, in a /usr/bin/python3 child, which is inside the same
sandbox).  The answer is always 200 with a JSON object describing what
happened, never a judgement: the test decides.

Outcome of one probe (see outcome() and sysc()):
    {"ok": VALUE}                      the call worked (VALUE: its result)
    {"errno": "ENOENT", "exc": ..., "msg": ...}   it failed with an errno
    {"exc": "MemoryError", "msg": ...}            another exception

Raw system calls go through ctypes syscall(2) with x86_64 numbers, with
arguments chosen so that a call the seccomp filter lets through fails with
a *different* errno (EFAULT, EINVAL) or succeeds harmlessly, never with the
EPERM the filter gives (the bwrap try-syscall approach, SANDBOX.md 5).

Query parameters: GET /ATTACK?name=value&...
"""

import ctypes
import errno
import json
import mmap
import os
import resource
import socket
import subprocess
import threading
import time
import urllib.parse

PY = "/usr/bin/python3"

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# x86_64 system call numbers.
NR = {
    "ioctl": 16, "getpid": 39, "clone": 56, "kill": 62, "ptrace": 101,
    "syslog": 103, "personality": 135, "vhangup": 153, "modify_ldt": 154,
    "pivot_root": 155, "chroot": 161, "acct": 163, "settimeofday": 164,
    "mount": 165, "umount2": 166, "swapon": 167, "reboot": 169,
    "sethostname": 170, "iopl": 172, "ioperm": 173, "init_module": 175,
    "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212,
    "mbind": 237, "set_mempolicy": 238, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "migrate_pages": 256,
    "unshare": 272, "move_pages": 279, "perf_event_open": 298,
    "fanotify_init": 300, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
    "seccomp": 317, "kexec_file_load": 320, "bpf": 321,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438,
    "process_madvise": 440, "mount_setattr": 442,
}
X32_SYSCALL_BIT = 0x40000000

CLONE_NEWNS = 0x00020000
CLONE_FS = 0x00000200
CLONE_THREAD = 0x00010000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWCGROUP = 0x02000000
SIGCHLD = 17
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
PR_GET_DUMPABLE = 3
AT_FDCWD = -100


def ename(e):
    return errno.errorcode.get(e, str(e))


def outcome(fn, *args, **kw):
    """Runs fn and describes what happened (JSON-able)."""
    try:
        r = fn(*args, **kw)
    except OSError as e:
        return {"errno": ename(e.errno) if e.errno else None,
                "exc": type(e).__name__, "msg": str(e)}
    except BaseException as e:  # MemoryError, RuntimeError, ...
        return {"exc": type(e).__name__, "msg": str(e)}
    if isinstance(r, bytes):
        r = r.decode("latin-1")
    try:
        json.dumps(r)
    except (TypeError, ValueError):
        r = repr(r)
    return {"ok": r}


def _arg(a):
    if isinstance(a, int):
        return ctypes.c_ulong(a & 0xFFFFFFFFFFFFFFFF)
    if isinstance(a, str):
        return ctypes.c_char_p(a.encode())
    return a


def sysc(name_or_nr, *args):
    """syscall(2) through ctypes: {"ok": result} or {"errno": NAME}."""
    nr = NR[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[_arg(a) for a in args])
    if r == -1:
        return {"errno": ename(ctypes.get_errno())}
    return {"ok": r}


def close_if_fd(res):
    if "ok" in res and isinstance(res["ok"], int) and res["ok"] > 2:
        try:
            os.close(res["ok"])
        except OSError:
            pass


def run_child(code, timeout=60):
    """Runs Python code in a child process (inside the same sandbox)."""
    p = subprocess.run([PY, "-c", code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout,
                       close_fds=True)
    out = p.stdout.decode("utf-8", "replace")
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = None
    return {"returncode": p.returncode, "result": result, "stdout": out,
            "stderr": p.stderr.decode("utf-8", "replace")[-2000:]}


# ---------------------------------------------------------------------------
# The attacks.  Each takes the query (a dict of str) and returns a dict.


def a_ping(q):
    return {"uid": os.getuid(), "pid": os.getpid(), "user": os.environ.get(
        "USER"), "home": os.environ.get("HOME")}


def a_read(q):
    """Rows 1-2: read a file; also stat and list its directory."""
    path = q["path"]
    return {
        "read": outcome(lambda: open(path, "rb").read(200)),
        "stat": outcome(lambda: list(os.stat(path))[:7]),
        "listdir_parent": outcome(os.listdir, os.path.dirname(path)),
    }


def a_listdir(q):
    return outcome(lambda: sorted(os.listdir(q["path"])))


def a_proc_pid(q):
    """Rows 3-4: another process's /proc entries."""
    pid = q["pid"]
    res = {}
    for what in ("cmdline", "environ", "maps", "status", "stat", "mem"):
        res[what] = outcome(lambda: open("/proc/%s/%s" % (pid, what),
                                         "rb").read(200))
    for what in ("fd", "ns", "task"):
        res[what] = outcome(os.listdir, "/proc/%s/%s" % (pid, what))
    res["exe"] = outcome(os.readlink, "/proc/%s/exe" % pid)
    res["cwd"] = outcome(os.readlink, "/proc/%s/cwd" % pid)
    return res


def a_proc_scan(q):
    """Rows 3, 7: every process this sandbox can see, and whether any
    mentions the needle (another user's name) in its argv or environment."""
    needle = q.get("needle", "").encode()
    seen, hits = {}, []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        info = {}
        for what in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (name, what), "rb") as f:
                    data = f.read()
                if what == "cmdline":
                    info["cmdline"] = data.replace(b"\0", b" ").decode(
                        "latin-1")[:300]
                if needle and needle in data:
                    hits.append([int(name), what])
            except OSError as e:
                info[what + "_err"] = ename(e.errno)
        try:
            info["uid"] = os.stat("/proc/" + name).st_uid
        except OSError as e:
            info["uid_err"] = ename(e.errno)
        seen[name] = info
    return {"pids": seen, "hits": hits}


def a_mem_write(q):
    """Row 8: open another same-uid process's memory for writing."""
    pid = q["pid"]

    def attempt():
        fd = os.open("/proc/%s/mem" % pid, os.O_RDWR)
        os.close(fd)
        return "opened O_RDWR"
    return {"open_rdwr": outcome(attempt),
            "exists": os.path.exists("/proc/%s" % pid)}


def a_proc_net(q):
    """Row 5: the sockets this network namespace shows."""
    res = {}
    for what in ("unix", "tcp", "tcp6", "udp"):
        res[what] = outcome(lambda: open("/proc/net/" + what).read())
    return res


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def a_xproc(q):
    """Row 6: ptrace, process_vm_readv, pidfd_getfd, kcmp.  Targets are a
    child of ours (same uid, dumpable, no Yama: the kernel alone would
    allow ptrace) and ourselves (the kernel always allows reading one's
    own memory, kcmp and pidfd_getfd on oneself): only the filter can say
    EPERM."""
    res = {}
    child = subprocess.Popen(["/bin/sleep", "30"])
    me = os.getpid()
    try:
        time.sleep(0.05)
        r = sysc("ptrace", 16, child.pid, 0, 0)        # PTRACE_ATTACH
        res["ptrace_attach_child"] = r
        if "ok" in r:
            sysc("ptrace", 17, child.pid, 0, 0)        # PTRACE_DETACH
        res["ptrace_attach_init"] = sysc("ptrace", 16, 1, 0, 0)

        src = ctypes.create_string_buffer(b"secret-bytes-123", 16)
        dst = ctypes.create_string_buffer(16)
        local = IOVec(ctypes.cast(dst, ctypes.c_void_p), 16)
        remote = IOVec(ctypes.cast(src, ctypes.c_void_p), 16)
        res["process_vm_readv_self"] = sysc(
            "process_vm_readv", me, ctypes.byref(local), 1,
            ctypes.byref(remote), 1, 0)
        res["process_vm_readv_child"] = sysc(
            "process_vm_readv", child.pid, ctypes.byref(local), 1,
            ctypes.byref(remote), 1, 0)
        res["process_vm_writev_child"] = sysc(
            "process_vm_writev", child.pid, ctypes.byref(local), 1,
            ctypes.byref(remote), 1, 0)

        pfd = sysc("pidfd_open", child.pid, 0)
        res["pidfd_open_child"] = pfd
        selfpfd = sysc("pidfd_open", me, 0)
        if "ok" in selfpfd:
            r = sysc("pidfd_getfd", selfpfd["ok"], 0, 0)
            res["pidfd_getfd_self"] = r
            close_if_fd(r)
            os.close(selfpfd["ok"])
        else:
            res["pidfd_getfd_self"] = {"skipped": selfpfd}
        if "ok" in pfd:
            r = sysc("pidfd_getfd", pfd["ok"], 0, 0)
            res["pidfd_getfd_child"] = r
            close_if_fd(r)
            os.close(pfd["ok"])
        res["kcmp_self"] = sysc("kcmp", me, me, 1, 0, 0)       # KCMP_VM
        res["kcmp_child"] = sysc("kcmp", me, child.pid, 0, 0, 0)  # FILE
        res["process_madvise"] = sysc("process_madvise", -1, 0, 0, 0, 0)
    finally:
        child.kill()
        child.wait()
    return res


def a_kill(q):
    """Rows 7, 31: signal 0 (the same permission checks as a real signal,
    without harm if it got through) and pidfd_open."""
    pid = int(q["pid"])
    res = {"kill0": outcome(os.kill, pid, 0)}
    r = sysc("pidfd_open", pid, 0)
    close_if_fd(r)
    res["pidfd_open"] = r
    return res


def a_kill_all(q):
    """Row 7: kill(-1, SIGKILL) from a child: everything the sandbox can
    signal dies (our own worker included); nothing outside must."""
    code = ("import os, signal\n"
            "os.kill(-1, signal.SIGKILL)\n")
    subprocess.run([PY, "-c", code], timeout=30)
    return {"survived": True}


def connect_outcome(family, addr, timeout=3):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        return outcome(lambda: s.connect(addr) or "connected")
    finally:
        s.close()


def a_connect(q):
    """Rows 10-12: connect to a TCP port, an abstract or a path socket."""
    res = {}
    if "port" in q:
        res["tcp"] = connect_outcome(
            socket.AF_INET, (q.get("host", "127.0.0.1"), int(q["port"])))
    if "abstract" in q:
        res["abstract"] = connect_outcome(socket.AF_UNIX,
                                          "\0" + q["abstract"])
    if "path" in q:
        res["path"] = connect_outcome(socket.AF_UNIX, q["path"])
        res["stat"] = outcome(lambda: list(os.stat(q["path"]))[:7])
    return res


def a_loopback(q):
    """Row 10: what loopback mode leaves: our own 127.0.0.1, no route out."""
    res = {}

    def own():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        c = socket.create_connection(srv.getsockname(), timeout=3)
        a, _ = srv.accept()
        c.sendall(b"hi")
        data = a.recv(2)
        for s in (a, c, srv):
            s.close()
        return data
    res["own_loopback"] = outcome(own)
    res["outside"] = connect_outcome(socket.AF_INET, ("192.0.2.1", 80))
    res["interfaces"] = outcome(lambda: [n for _, n in
                                         socket.if_nameindex()])
    return res


def a_sockets(q):
    """Rows 13-14: socket families and types a web app has no use for."""
    tests = {
        "raw_inet_icmp": (socket.AF_INET, socket.SOCK_RAW, 1),
        "raw_inet6": (socket.AF_INET6, socket.SOCK_RAW, 58),
        "packet": (17, socket.SOCK_RAW, 0x0300),            # AF_PACKET
        "packet_dgram": (17, socket.SOCK_DGRAM, 0x0300),
        "ping_icmp_dgram": (socket.AF_INET, socket.SOCK_DGRAM, 1),
        "vsock": (40, socket.SOCK_STREAM, 0),                # AF_VSOCK
        "alg": (38, socket.SOCK_SEQPACKET, 0),               # AF_ALG
        "netlink_audit": (16, socket.SOCK_RAW, 9),           # NETLINK_AUDIT
        "netlink_uevent": (16, socket.SOCK_RAW, 15),         # KOBJECT_UEVENT
        "netlink_route": (16, socket.SOCK_RAW, 0),           # allowed
        "bluetooth": (31, socket.SOCK_STREAM, 0),
        "can": (29, socket.SOCK_RAW, 1),
        "x25": (9, socket.SOCK_SEQPACKET, 0),
        "unix": (socket.AF_UNIX, socket.SOCK_STREAM, 0),     # allowed
        "inet_tcp": (socket.AF_INET, socket.SOCK_STREAM, 0),  # allowed
    }
    res = {}
    for name, (fam, typ, proto) in tests.items():
        def make():
            s = socket.socket(fam, typ, proto)
            s.close()
            return "created"
        res[name] = outcome(make)
    res["ping_group_range"] = outcome(
        lambda: open("/proc/sys/net/ipv4/ping_group_range").read().strip())
    return res


def a_mounts(q):
    """Row 15: mount, chroot, setns and friends."""
    res = {}
    res["mount_tmpfs"] = sysc("mount", "none", "/tmp", "tmpfs", 0, 0)
    res["mount_bind_etc"] = sysc("mount", "/etc", "/tmp", 0, 0x1000, 0)
    res["umount2_proc"] = sysc("umount2", "/proc", 2)           # MNT_DETACH
    res["umount2_home"] = sysc("umount2", os.environ.get("HOME", "/"), 2)
    res["chroot"] = sysc("chroot", "/")
    res["pivot_root"] = sysc("pivot_root", "/", "/")
    res["open_tree"] = sysc("open_tree", AT_FDCWD, "/", 1)      # CLONE
    close_if_fd(res["open_tree"])
    res["fsopen"] = sysc("fsopen", "tmpfs", 0)
    close_if_fd(res["fsopen"])
    res["fspick"] = sysc("fspick", AT_FDCWD, "/", 0)
    close_if_fd(res["fspick"])
    res["move_mount"] = sysc("move_mount", -1, "", -1, "", 0)
    res["mount_setattr"] = sysc("mount_setattr", -1, "", 0, 0, 0)
    for ns in ("net", "mnt", "user", "pid"):
        try:
            fd = os.open("/proc/self/ns/" + ns, os.O_RDONLY)
        except OSError as e:
            res["setns_" + ns] = {"open_errno": ename(e.errno)}
            continue
        try:
            res["setns_" + ns] = sysc("setns", fd, 0)
        finally:
            os.close(fd)
    res["setns_badfd"] = sysc("setns", -1, 0)   # allowed would be EBADF
    return res


USERNS_CHILD = r'''
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
res = {}
def call(name, fn):
    ctypes.set_errno(0)
    r = fn()
    res[name] = {"ok": r} if r != -1 else {
        "errno": errno.errorcode.get(ctypes.get_errno())}
    return r
res["threads"] = len(os.listdir("/proc/self/task"))
if call("unshare_newuser", lambda: libc.unshare(0x10000000)) == 0:
    call("unshare_newns", lambda: libc.unshare(0x00020000))
    call("mount_tmpfs", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0,
                                          None))
call("unshare_newuser_newns", lambda: libc.unshare(0x10000000 | 0x00020000))
call("unshare_newnet", lambda: libc.unshare(0x40000000))
call("unshare_newipc", lambda: libc.unshare(0x08000000))
print(json.dumps(res))
'''


def a_userns(q):
    """Row 16: unshare(CLONE_NEWUSER) then mount.  In the worker (many
    threads: the kernel alone would answer EINVAL) and in a
    single-threaded child (the kernel alone would let it through)."""
    res = {"in_worker": sysc("unshare", CLONE_NEWUSER),
           "in_worker_threads": len(os.listdir("/proc/self/task")),
           "child": run_child(USERNS_CHILD)}
    return res


THREADS_CHILD = r'''
import json, threading
out = []
ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps({"threads_ran": sorted(out)}))
'''


def a_clone(q):
    """Row 17: clone with CLONE_NEW* flags; clone3; threads still work.
    Every clone here also carries a flag combination the kernel refuses
    with EINVAL, so a call the filter lets through creates nothing."""
    res = {}
    res["clone_newuser"] = sysc("clone", CLONE_NEWUSER | CLONE_FS | SIGCHLD,
                                0, 0, 0, 0)
    res["clone_newns"] = sysc("clone", CLONE_NEWNS | CLONE_FS | SIGCHLD,
                              0, 0, 0, 0)
    res["clone_newpid"] = sysc("clone", CLONE_NEWPID | CLONE_THREAD |
                               SIGCHLD, 0, 0, 0, 0)
    res["clone_newnet"] = sysc("clone", CLONE_NEWNET | CLONE_THREAD |
                               SIGCHLD, 0, 0, 0, 0)
    res["clone_newipc"] = sysc("clone", CLONE_NEWIPC | CLONE_THREAD |
                               SIGCHLD, 0, 0, 0, 0)
    res["clone_newuts"] = sysc("clone", CLONE_NEWUTS | CLONE_THREAD |
                               SIGCHLD, 0, 0, 0, 0)
    res["clone_newcgroup"] = sysc("clone", CLONE_NEWCGROUP | CLONE_THREAD |
                                  SIGCHLD, 0, 0, 0, 0)
    # Allowed clone with an invalid combination: the kernel's EINVAL
    # shows the call reached it (the probe's control).
    res["clone_plain_invalid"] = sysc("clone", CLONE_THREAD | SIGCHLD,
                                      0, 0, 0, 0)
    # clone3(NULL, 0): a kernel that sees it answers EINVAL.
    res["clone3"] = sysc("clone3", 0, 0)
    out = []
    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    res["worker_threads_ran"] = sorted(out)
    res["child_threads"] = run_child(THREADS_CHILD)
    return res


def a_ids(q):
    """Row 18: become root or another group."""
    return {
        "setuid0": outcome(os.setuid, 0),
        "setgid0": outcome(os.setgid, 0),
        "setresuid0": outcome(os.setresuid, 0, 0, 0),
        "seteuid0": outcome(os.seteuid, 0),
        "setgroups0": outcome(os.setgroups, [0]),
        "setgroups_empty": outcome(os.setgroups, []),
        "ids": [os.getresuid(), os.getresgid(), os.getgroups()],
    }


def a_suid(q):
    """Row 19: exec a setuid-root binary (a copy of id)."""
    p = subprocess.run([q["path"], "-u"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    full = subprocess.run([q["path"]], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)
    return {"euid": p.stdout.decode().strip(), "rc": p.returncode,
            "stderr": p.stderr.decode()[-500:],
            "id": full.stdout.decode().strip(), "my_uid": os.getuid()}


def a_kernel(q):
    """Row 20: kernel attack surface."""
    res = {}
    res["io_uring_setup"] = sysc("io_uring_setup", 1, 0)      # ok: EFAULT
    close_if_fd(res["io_uring_setup"])
    res["io_uring_enter"] = sysc("io_uring_enter", -1, 0, 0, 0, 0, 0)
    res["io_uring_register"] = sysc("io_uring_register", -1, 0, 0, 0)
    # UFFD_USER_MODE_ONLY | O_CLOEXEC: allowed unprivileged by the kernel.
    res["userfaultfd"] = sysc("userfaultfd", 1 | 0o2000000)
    close_if_fd(res["userfaultfd"])
    res["perf_event_open"] = sysc("perf_event_open", 0, 0, -1, -1, 0)
    res["bpf"] = sysc("bpf", 0, 0, 0)
    # KEYCTL_GET_KEYRING_ID of KEY_SPEC_USER_KEYRING: the kernel allows it.
    res["keyctl"] = sysc("keyctl", 0, -4 & 0xFFFFFFFF, 0)
    res["add_key"] = sysc("add_key", 0, 0, 0, 0, 0)           # ok: EFAULT
    res["request_key"] = sysc("request_key", 0, 0, 0, 0)
    res["personality_query"] = sysc("personality", 0xFFFFFFFF)
    old = res["personality_query"].get("ok", 0)
    for name, val in (("personality_0x0200000", 0x0200000),
                      ("personality_addr_no_randomize", 0x0040000),
                      ("personality_read_implies_exec", 0x0400000)):
        r = sysc("personality", val)
        res[name] = r
        if "ok" in r:
            sysc("personality", old)
    res["kexec_load"] = sysc("kexec_load", 0, 0, 0, 0)
    res["kexec_file_load"] = sysc("kexec_file_load", -1, -1, 0, 0, 0)
    res["init_module"] = sysc("init_module", 0, 0, "")
    res["finit_module"] = sysc("finit_module", -1, "", 0)
    res["delete_module"] = sysc("delete_module", "lodgeatk_none", 0)
    res["acct"] = sysc("acct", 0)
    res["seccomp"] = sysc("seccomp", 2, 0, 0)   # GET_ACTION_AVAIL: EFAULT
    res["name_to_handle_at"] = sysc("name_to_handle_at", AT_FDCWD, "/",
                                    0, 0, 0)    # ok: EFAULT
    res["open_by_handle_at"] = sysc("open_by_handle_at", -1, 0, 0)
    res["fanotify_init"] = sysc("fanotify_init", 0, 0)
    close_if_fd(res["fanotify_init"])
    res["lookup_dcookie"] = sysc("lookup_dcookie", 0, 0, 0)
    res["syslog"] = sysc("syslog", 10, 0, 0)    # SYSLOG_ACTION_SIZE_BUFFER
    res["reboot"] = sysc("reboot", 0, 0, 0, 0)  # bad magic: EINVAL
    res["swapon"] = sysc("swapon", 0, 0)
    res["quotactl"] = sysc("quotactl", 0, 0, 0, 0)
    res["sethostname"] = sysc("sethostname", 0, 0)
    res["settimeofday"] = sysc("settimeofday", 0, 0)
    res["iopl"] = sysc("iopl", 0)
    res["ioperm"] = sysc("ioperm", 0, 0, 0)
    res["modify_ldt"] = sysc("modify_ldt", 0, 0, 0)   # ok: EFAULT/0
    res["vhangup"] = sysc("vhangup")
    res["mbind"] = sysc("mbind", 0, 0, 0, 0, 0, 0)
    res["set_mempolicy"] = sysc("set_mempolicy", 0, 0, 0)
    res["move_pages"] = sysc("move_pages", 0, 0, 0, 0, 0, 0)
    res["migrate_pages"] = sysc("migrate_pages", 0, 0, 0, 0)
    return res


def a_x32(q):
    """Row 21: getpid through the x32 ABI.  The filter's bad-arch action
    kills the whole process: no answer ever comes back."""
    r = sysc(X32_SYSCALL_BIT | NR["getpid"])
    return {"x32_getpid": r, "survived": True}


INT80_CODE = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"  # mov eax,20; int 0x80; ret


def a_int80(q):
    """Row 21: i386 getpid through int 0x80 (only asked when the test has
    seen ia32 emulation work outside the sandbox)."""
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE |
                  mmap.PROT_EXEC)
    m.write(INT80_CODE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    r = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    return {"int80_getpid": r, "survived": True}


def a_fds(q):
    """Row 22: every open descriptor and what it is."""
    fds = {}
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            fds[name] = os.readlink("/proc/self/fd/" + name)
        except FileNotFoundError:
            pass    # the descriptor os.listdir itself used, closed since
        except OSError as e:
            fds[name] = "?" + ename(e.errno)
    flags = {}
    for fd in ("0", "1", "2"):
        try:
            with open("/proc/self/fdinfo/" + fd) as f:
                for line in f:
                    if line.startswith("flags:"):
                        flags[fd] = line.split()[1]
        except OSError:
            pass
    return {"fds": fds, "flags": flags,
            "cwd": outcome(os.readlink, "/proc/self/cwd"),
            "root": outcome(os.readlink, "/proc/self/root"),
            "pid": os.getpid()}


FORK_BOMB = r'''
import errno, json, os, resource, sys, time
cap = int(sys.argv[1])
hold = float(sys.argv[2])
n, err, pids = 0, None, []
t0 = time.monotonic()
while n < cap:
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        time.sleep(hold)
        os._exit(0)
    pids.append(pid)
    n += 1
took = time.monotonic() - t0
time.sleep(hold)
for p in pids:
    os.waitpid(p, 0)
print(json.dumps({"forked": n, "errno": err, "took": round(took, 3),
                  "nproc": resource.getrlimit(resource.RLIMIT_NPROC)}))
'''


def a_forkbomb(q):
    """Row 23: fork until refused (bounded: at most `cap` children, each
    sleeping `hold` seconds, all reaped)."""
    cap = int(q.get("cap", "300"))
    hold = q.get("hold", "3")
    p = subprocess.run([PY, "-c", FORK_BOMB, str(cap), hold],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    try:
        result = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = None
    # Once the bomb is over, the worker can make threads and processes.
    after = outcome(lambda: subprocess.run(["/bin/true"]).returncode)
    return {"returncode": p.returncode, "result": result,
            "stderr": p.stderr.decode("utf-8", "replace")[-1000:],
            "after": after}


def a_memhog(q):
    """Row 24: allocate (and touch) 64 MiB blocks until refused, at most
    `cap` MiB; hold them `hold` seconds, then free them."""
    cap = int(q.get("cap", "3072")) << 20
    hold = float(q.get("hold", "2"))
    blocks, total, err = [], 0, None
    try:
        while total < cap:
            blocks.append(bytearray(64 << 20))   # zero-filled: touched
            total += 64 << 20
    except MemoryError:
        err = "MemoryError"
    except OSError as e:
        err = ename(e.errno)
    time.sleep(hold)
    del blocks
    return {"allocated_mib": total >> 20, "error": err,
            "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)}


def a_memfd_hog(q):
    """Row 24, outside the address space: write `cap` MiB into memfds
    (shmem pages: RLIMIT_AS does not count them; only a cgroup's
    memory.max does), then free them."""
    cap = int(q.get("cap", "2048")) << 20
    chunk = b"z" * (16 << 20)
    fds, written, err = [], 0, None
    try:
        fd = os.memfd_create("lodgeatk-hog")
        fds.append(fd)
        while written < cap:
            written += os.write(fd, chunk)
    except MemoryError:
        err = "MemoryError"
    except OSError as e:
        err = ename(e.errno)
    finally:
        for fd in fds:
            os.close(fd)
    return {"written_mib": written >> 20, "error": err,
            "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)}


def a_fill(q):
    """Row 25: fill a tmpfs until ENOSPC, but only if it is at most `max`
    MiB (an unbounded tmpfs is half the host's RAM: reported, not
    filled)."""
    path = q["path"]
    limit = int(q.get("max", "256")) << 20
    st = os.statvfs(path)
    size = st.f_blocks * st.f_frsize
    mounts = [line for line in open("/proc/self/mountinfo")
              if line.split()[4] == path]
    res = {"size": size, "mountinfo": mounts}
    if size > limit:
        res["filled"] = False
        return res
    name = os.path.join(path, "lodgeatk-fill")
    chunk = b"x" * (1 << 20)
    written, err = 0, None
    try:
        with open(name, "wb") as f:
            while written <= size + (16 << 20):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        err = ename(e.errno)
    finally:
        try:
            os.unlink(name)
        except OSError:
            pass
    res.update(filled=True, written=written, errno=err)
    return res


def a_fsize(q):
    """Row 25: fill the home.  Only attempted with a RLIMIT_FSIZE of at
    most `max` MiB (otherwise this would fill the host's disk)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = int(q.get("max", "256")) << 20
    res = {"rlimit_fsize": [soft, hard]}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("SigIgn:"):
                res["sigxfsz_ignored"] = bool(int(line.split()[1], 16) &
                                              (1 << (25 - 1)))
    if hard == resource.RLIM_INFINITY:
        res["filled"] = False
        return res
    if soft > limit:
        # The bound lodged set (the hard limit) is finite but too big to
        # fill here: prove the mechanism under a lower soft limit (any
        # process may lower its own), so EFBIG, not SIGXFSZ, is shown.
        soft = 8 << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        res["lowered_soft_to"] = soft
    name = os.path.join(os.environ["HOME"], "lodgeatk-fill")
    written, err = 0, None
    try:
        with open(name, "wb") as f:
            chunk = b"y" * (1 << 20)
            while written <= soft + (1 << 20):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        err = ename(e.errno)
    finally:
        try:
            os.unlink(name)
        except OSError:
            pass
    res.update(filled=True, written=written, errno=err)
    return res


SPIN = r'''
import sys, time
t0 = time.monotonic()
while time.monotonic() - t0 < float(sys.argv[1]):
    pass
'''


def a_busy(q):
    """Row 26: spin on the CPU for `seconds` (bounded), here and in
    `procs` child processes."""
    seconds = min(float(q.get("seconds", "5")), 30)
    procs = [subprocess.Popen([PY, "-c", SPIN, str(seconds)])
             for _ in range(min(int(q.get("procs", "0")), 16))]
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        n += 1
    for p in procs:
        p.wait()
    return {"spun": round(time.monotonic() - t0, 2), "loops": n,
            "procs": [p.returncode for p in procs]}


def a_write_sys(q):
    """Row 27: write cgroup files, /etc, /proc/sys."""
    res = {}
    targets = [
        "/sys/fs/cgroup/unified/cgroup.procs",
        "/sys/fs/cgroup/unified/cgroup.subtree_control",
        "/sys/fs/cgroup/pids/cgroup.procs",
        "/sys/fs/cgroup/pids/tasks",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/cpu/cpu.shares",
        "/etc/passwd",
        "/etc/lodgeatk-created",
        "/proc/sys/kernel/hostname",
        "/proc/sysrq-trigger",
    ]
    for path in targets:
        def attempt():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.close(fd)
            return "opened for writing"
        res[path] = outcome(attempt)
    res["mkdir_cgroup"] = outcome(os.mkdir, "/sys/fs/cgroup/unified/lodgeatk")
    return res


def a_tty(q):
    """Row 31: TIOCSTI (plain and with high bits set), TIOCLINUX, and a
    controlling terminal.  On /dev/null the kernel itself would say
    ENOTTY: EPERM is the filter's answer."""
    res = {}
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        ch = ctypes.c_char(b"x")
        res["tiocsti"] = sysc("ioctl", fd, TIOCSTI, ctypes.byref(ch))
        res["tiocsti_high_bits"] = sysc("ioctl", fd, TIOCSTI | (1 << 32),
                                        ctypes.byref(ch))
        res["tioclinux"] = sysc("ioctl", fd, TIOCLINUX, ctypes.byref(ch))
        res["fionread_control"] = sysc("ioctl", fd, 0x541B,
                                       ctypes.byref(ctypes.c_int()))
    finally:
        os.close(fd)
    res["dev_tty"] = outcome(lambda: os.close(os.open("/dev/tty", os.O_RDWR)))
    res["sid"] = [os.getsid(0), os.getpid()]
    return res


def a_status(q):
    """Facts of the sandbox: /proc/self/status, dumpable, ids, env."""
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    rl = {}
    for name in ("RLIMIT_NPROC", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE",
                 "RLIMIT_CORE", "RLIMIT_MEMLOCK"):
        rl[name] = resource.getrlimit(getattr(resource, name))
    return {
        "status": status,
        "dumpable": libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0),
        "resuid": os.getresuid(), "resgid": os.getresgid(),
        "groups": os.getgroups(),
        "environ": dict(os.environ),
        "rlimits": rl,
        "hostname": socket.gethostname(),
        "self_mountinfo": open("/proc/self/mountinfo").read(),
        # lodged starts workers SCHED_BATCH; may the app go back?
        "sched": os.sched_getscheduler(0),
        "sched_set_other": outcome(os.sched_setscheduler, 0,
                                   os.SCHED_OTHER, os.sched_param(0)),
    }


ATTACKS = {name[2:]: fn for name, fn in globals().items()
           if name.startswith("a_") and callable(fn)}


def application(environ, start_response):
    name = environ.get("PATH_INFO", "/").strip("/") or "ping"
    q = {k: v[-1] for k, v in urllib.parse.parse_qs(
        environ.get("QUERY_STRING", "")).items()}
    fn = ATTACKS.get(name)
    if fn is None:
        body = json.dumps({"error": "no attack %r" % name}).encode()
        status = "404 Not Found"
    else:
        try:
            result = fn(q)
        except BaseException as e:
            result = {"crashed": "%s: %s" % (type(e).__name__, e)}
        body = json.dumps(result).encode()
        status = "200 OK"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]
