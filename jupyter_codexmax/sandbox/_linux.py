"""The Linux system calls the launcher needs and the standard library lacks (Python 3.10):
``unshare``, ``mount``, ``mount_setattr``, ``prctl``, and bringing the loopback interface
up.

Every function raises :class:`OSError` with the call's errno. Imported only by the launcher
(``sandbox/exec.py``), in the short-lived process that becomes the sandboxed command.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import socket
import struct
from functools import lru_cache

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

#: The per-mount options of /proc/self/mountinfo a remount must keep (a user namespace
#: locks them: a remount that drops one is refused).
_KEPT_OPTIONS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}

#: ``mount_setattr`` (Linux 5.12+; the same number on every architecture since 5.1's
#: unified numbering) and its arguments.
SYS_MOUNT_SETATTR = 442
MOUNT_ATTR_RDONLY = 0x1
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_FDCWD = -100

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36

#: Capabilities a command run as root loses (it keeps the file ones, which Landlock
#: fences): loading modules, raw I/O, ptrace, mounts and namespaces, rebooting, the clock,
#: device nodes, raw sockets, network and security administration, BPF.
DROPPED_CAPABILITIES = (
    8,  # setpcap
    9,  # linux_immutable
    12,  # net_admin
    13,  # net_raw
    16,  # sys_module
    17,  # sys_rawio
    18,  # sys_chroot
    19,  # sys_ptrace
    20,  # sys_pacct
    21,  # sys_admin
    22,  # sys_boot
    25,  # sys_time
    26,  # sys_tty_config
    27,  # mknod
    30,  # audit_control
    31,  # setfcap
    32,  # mac_override
    33,  # mac_admin
    34,  # syslog
    37,  # audit_read
    38,  # perfmon
    39,  # bpf
    40,  # checkpoint_restore
)


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
    ]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.syscall.restype = ctypes.c_long
    return libc


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc().unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    _check(_libc().mount(raw(source), raw(target), raw(fstype), flags, None), f"mount {target}")


def prctl(option: int, value: int) -> None:
    _check(_libc().prctl(option, value, 0, 0), f"prctl {option}")


def map_user(uid: int, gid: int) -> None:
    """In a new user namespace, be the same user and group as outside it."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def bind_read_only(path: str) -> None:
    """Make ``path`` (a file or a folder) read-only in this mount namespace."""
    mount(path, path, None, MS_BIND | MS_REC)
    mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def mount_points() -> list[tuple[str, int]]:
    """Every mount point of this mount namespace (/proc/self/mountinfo, in order), with
    the per-mount flags a remount must keep."""
    found = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 6:
                continue
            kept = 0
            for option in fields[5].decode("ascii", "replace").split(","):
                kept |= _KEPT_OPTIONS.get(option, 0)
            found.append((_unescape(fields[4]), kept))
    return found


def _unescape(raw: bytes) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes come as octal escapes."""
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), raw))


def make_read_only(path: str, kept: int) -> None:
    """Make the mount at ``path`` read-only (that mount only, its other flags unchanged):
    ``mount_setattr`` where the kernel has it, else a bind remount keeping ``kept``."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT
    libc = _libc()
    result = libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(AT_FDCWD),
        os.fsencode(path),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if result == 0:
        return
    err = ctypes.get_errno()
    if err != errno.ENOSYS:
        raise OSError(err, f"mount_setattr {path}: {os.strerror(err)}")
    mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | kept)


def hide_folder(path: str) -> None:
    """Put an empty, read-only folder over ``path`` in this mount namespace."""
    mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def loopback_up() -> None:
    """Bring ``lo`` up in a new network namespace (it starts down)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), siocgifflags, request))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def drop_capabilities() -> None:
    """Take the dangerous capabilities out of the bounding set (a root command then
    cannot get them back at exec). Ignored where not permitted or not known."""
    for cap in DROPPED_CAPABILITIES:
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            continue


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (``pid`` is this single-threaded process)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found
