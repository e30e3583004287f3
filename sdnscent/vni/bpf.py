"""The bpf(2) system call through ctypes: enough to find a loaded program's maps
by id and read, write and delete their entries (no libbpf, no bpftool fork).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Iterator
from pathlib import Path

# System call numbers of bpf(2) per machine.
SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351,
           "riscv64": 280}

# Commands (include/uapi/linux/bpf.h, enum bpf_cmd).
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15

BPF_ANY = 0
INFO_SIZE = 256  # bytes handed to the kernel for bpf_prog_info / bpf_map_info
PROG_NR_MAP_IDS = 52  # offsets in struct bpf_prog_info
PROG_MAP_IDS = 56
MAP_KEY_SIZE = 8  # offsets in struct bpf_map_info
MAP_VALUE_SIZE = 12
MAP_NAME = 24
BPF_OBJ_NAME_LEN = 16
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_PERCPU_HASH = 5


class BpfError(OSError):
    """A bpf(2) call failed."""


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _sys_bpf(cmd: int, attr: ctypes.Array, what: str) -> int:
    number = SYS_BPF.get(platform.machine())
    if number is None:
        raise BpfError(f"bpf(2): unknown system call number on {platform.machine()}")
    ret = _libc.syscall(ctypes.c_long(number), ctypes.c_int(cmd), ctypes.byref(attr),
                        ctypes.c_uint(ctypes.sizeof(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError(err, f"bpf({what}): {os.strerror(err)}")
    return int(ret)


def _attr(*fields: tuple[int, int, int]) -> ctypes.Array:
    """A zeroed union bpf_attr with (offset, size, value) fields set."""
    attr = (ctypes.c_ubyte * 128)()
    for offset, size, value in fields:
        ctypes.memmove(ctypes.byref(attr, offset), value.to_bytes(size, "little"), size)
    return attr


def _addr(buf: ctypes.Array) -> int:
    return ctypes.addressof(buf)


def possible_cpus() -> int:
    """How many CPUs per-CPU maps hold values for (/sys/devices/system/cpu/possible)."""
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def _info(fd: int) -> bytes:
    buf = (ctypes.c_ubyte * INFO_SIZE)()
    _sys_bpf(BPF_OBJ_GET_INFO_BY_FD, _attr((0, 4, fd), (4, 4, INFO_SIZE), (8, 8, _addr(buf))),
             "obj_get_info_by_fd")
    return bytes(buf)


def prog_map_ids(prog_id: int) -> list[int]:
    """The ids of the maps program `prog_id` uses."""
    fd = _sys_bpf(BPF_PROG_GET_FD_BY_ID, _attr((0, 4, prog_id)), f"prog_get_fd_by_id {prog_id}")
    try:
        count = int.from_bytes(_info(fd)[PROG_NR_MAP_IDS:PROG_NR_MAP_IDS + 4], "little")
        ids = (ctypes.c_uint32 * max(count, 1))()
        buf = (ctypes.c_ubyte * INFO_SIZE)()
        ctypes.memmove(ctypes.byref(buf, PROG_NR_MAP_IDS), count.to_bytes(4, "little"), 4)
        ctypes.memmove(ctypes.byref(buf, PROG_MAP_IDS), _addr(ids).to_bytes(8, "little"), 8)
        _sys_bpf(BPF_OBJ_GET_INFO_BY_FD, _attr((0, 4, fd), (4, 4, INFO_SIZE), (8, 8, _addr(buf))),
                 "obj_get_info_by_fd")
        return list(ids[:count])
    finally:
        os.close(fd)


class BpfMap:
    """An open BPF map (by id): get, put, delete and iterate raw byte entries."""

    def __init__(self, map_id: int) -> None:
        self.id = map_id
        self.fd = _sys_bpf(BPF_MAP_GET_FD_BY_ID, _attr((0, 4, map_id)),
                           f"map_get_fd_by_id {map_id}")
        info = _info(self.fd)
        self.type = int.from_bytes(info[0:4], "little")
        self.key_size = int.from_bytes(info[MAP_KEY_SIZE:MAP_KEY_SIZE + 4], "little")
        self.value_size = int.from_bytes(info[MAP_VALUE_SIZE:MAP_VALUE_SIZE + 4], "little")
        self.name = info[MAP_NAME:MAP_NAME + BPF_OBJ_NAME_LEN].split(b"\0", 1)[0].decode()
        percpu = self.type in (BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH)
        # A per-CPU map's value is one 8-byte-aligned slot per possible CPU.
        self.cpus = possible_cpus() if percpu else 1
        self._slot = (self.value_size + 7) // 8 * 8 if percpu else self.value_size

    def close(self) -> None:
        """Close the map's file descriptor (the map lives on while the program does)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> BpfMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, key: bytes) -> ctypes.Array:
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name}: key of {len(key)} bytes, expected {self.key_size}")
        return (ctypes.c_ubyte * len(key)).from_buffer_copy(key)

    def get(self, key: bytes) -> bytes | None:
        """The value under `key` (per-CPU maps: the slots of all CPUs), or None."""
        k = self._key(key)
        value = (ctypes.c_ubyte * (self._slot * self.cpus))()
        try:
            _sys_bpf(BPF_MAP_LOOKUP_ELEM,
                     _attr((0, 4, self.fd), (8, 8, _addr(k)), (16, 8, _addr(value))),
                     f"map_lookup_elem {self.name}")
        except BpfError as exc:
            if exc.errno == 2:  # ENOENT
                return None
            raise
        return bytes(value)

    def per_cpu(self, key: bytes) -> list[bytes]:
        """A per-CPU map's value under `key`, one entry per possible CPU."""
        raw = self.get(key) or b""
        return [raw[i * self._slot:i * self._slot + self.value_size] for i in range(self.cpus)]

    def put(self, key: bytes, value: bytes) -> None:
        """Create or replace the entry under `key`."""
        if len(value) != self.value_size:
            raise ValueError(f"map {self.name}: value of {len(value)} bytes, "
                             f"expected {self.value_size}")
        k = self._key(key)
        v = (ctypes.c_ubyte * len(value)).from_buffer_copy(value)
        _sys_bpf(BPF_MAP_UPDATE_ELEM, _attr((0, 4, self.fd), (8, 8, _addr(k)), (16, 8, _addr(v)),
                                            (24, 8, BPF_ANY)), f"map_update_elem {self.name}")

    def delete(self, key: bytes) -> bool:
        """Remove the entry under `key`; False if there was none."""
        k = self._key(key)
        try:
            _sys_bpf(BPF_MAP_DELETE_ELEM, _attr((0, 4, self.fd), (8, 8, _addr(k))),
                     f"map_delete_elem {self.name}")
        except BpfError as exc:
            if exc.errno == 2:
                return False
            raise
        return True

    def keys(self) -> Iterator[bytes]:
        """Every key (a hash map changed meanwhile may be walked from the start again)."""
        nxt = (ctypes.c_ubyte * self.key_size)()
        prev: ctypes.Array | None = None
        while True:
            try:
                _sys_bpf(BPF_MAP_GET_NEXT_KEY,
                         _attr((0, 4, self.fd), (8, 8, 0 if prev is None else _addr(prev)),
                               (16, 8, _addr(nxt))), f"map_get_next_key {self.name}")
            except BpfError as exc:
                if exc.errno == 2:
                    return
                raise
            yield bytes(nxt)
            prev = (ctypes.c_ubyte * self.key_size).from_buffer_copy(bytes(nxt))

    def items(self) -> dict[bytes, bytes]:
        """Every entry as {key: value}."""
        out = {}
        for key in list(self.keys()):
            value = self.get(key)
            if value is not None:
                out[key] = value
        return out
