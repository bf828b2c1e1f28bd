"""A seccomp filter for the sandbox: no new namespaces, no mounts.

Unprivileged user namespaces let any process become "root" of a namespace of its own and
mount a tmpfs there, which would take memory past the work dir's size cap (and widens the
kernel's attack surface). Under bubblewrap's own user namespace ``--disable-userns`` stops
that; when bwrap runs as root without one, this filter does, and it stays on in both modes.

:data:`INSTALL` is Python source run inside the sandbox before any untrusted code (it cannot
import this package). It builds a classic BPF program and loads it with
``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`` (bwrap has set ``no_new_privs``, so no privilege
is needed) that answers ``EPERM`` to ``unshare``, ``setns``, ``mount``, ``umount2``,
``pivot_root``, the new mount API (``open_tree``, ``move_mount``, ``fsopen``, ``fsconfig``,
``fsmount``, ``fspick``, ``mount_setattr``) and to ``clone`` with any ``CLONE_NEW*`` flag;
``ENOSYS`` to ``clone3`` (whose flags live in memory a filter cannot read; glibc then falls back
to ``clone``, so threads and ``fork`` work); and ``ENOSYS`` to system calls of another ABI
(x32, or 32-bit calls from a 64-bit process), which would dodge the number checks. Syscall
numbers for x86-64 and aarch64 (``linux/unistd.h``); on other machines the filter is skipped and
the sandbox says so on stderr.
"""

INSTALL = r'''
def _install_seccomp():
    import ctypes, platform, struct, sys
    arches = {  # audit arch, blocked syscalls, clone, clone3, first number of another ABI (or None)
        "x86_64": (0xC000003E, (272, 308, 165, 166, 155, 428, 429, 430, 431, 432, 433, 442), 56, 435, 0x40000000),
        "aarch64": (0xC00000B7, (97, 268, 40, 39, 41, 428, 429, 430, 431, 432, 433, 442), 220, 435, None),
    }
    spec = arches.get(platform.machine())
    if spec is None:
        print("sandbox: no seccomp filter on " + platform.machine(), file=sys.stderr)
        return
    arch, blocked, clone, clone3, other_abi = spec
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    NEW_NS = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
    prog = [("ld", 4), ("jne", arch, "nosys"), ("ld", 0)]
    if other_abi is not None:
        prog.append(("jge", other_abi, "nosys"))
    prog += [("jeq", nr, "deny") for nr in blocked]
    prog += [("jeq", clone3, "nosys"), ("jeq", clone, "clone"), ("ret", ALLOW),
             ("clone:",), ("ld", 16), ("jset", NEW_NS, "deny"), ("ret", ALLOW),
             ("deny:",), ("ret", EPERM), ("nosys:",), ("ret", ENOSYS)]
    labels, pc = {}, 0
    for ins in prog:
        if ins[0].endswith(":"):
            labels[ins[0][:-1]] = pc
        else:
            pc += 1
    code, pc = [], 0
    for ins in prog:
        if ins[0].endswith(":"):
            continue
        op = ins[0]
        if op == "ld":
            code.append((LD, 0, 0, ins[1]))
        elif op == "ret":
            code.append((RET, 0, 0, ins[1]))
        else:
            off = labels[ins[2]] - pc - 1
            kind = {"jeq": JEQ, "jne": JEQ, "jge": JGE, "jset": JSET}[op]
            code.append((kind, 0, off, ins[1]) if op == "jne" else (kind, off, 0, ins[1]))
        pc += 1
    raw = b"".join(struct.pack("HBBI", *c) for c in code)
    buf = ctypes.create_string_buffer(raw)

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    fprog = Prog(len(code), ctypes.cast(buf, ctypes.c_void_p))
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise SystemExit("sandbox: could not load the seccomp filter (errno %d)" % ctypes.get_errno())


_install_seccomp()
del _install_seccomp
'''
