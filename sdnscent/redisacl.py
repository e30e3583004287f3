"""Redis ACL roles for the store: controller (everything), agent (its node's load), tagger.

`sdnscent redis-acl` writes an ACL file for redis-server (`aclfile` in
redis.conf) and one password file per user (mode 0600). The default user is
switched off. Roles (docs/store.rst):

* ``controller``: every key, command and channel;
* ``agent-<node>``: SET on its own node's load key and ZADD on the node index,
  nothing else (it cannot write trails, hosts or the leader lease, nor another
  node's samples);
* ``tagger``: read-only on trails (the trail keys and their id index) and the
  change channel.

`check_controller_access` runs on the controller's start: it tries on a scratch
key every kind of command the controller uses and names the first refused one.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

from .redisstore import CHANNEL, IDS_KEY, NODES_KEY, PREFIX, load_key

CONTROLLER, TAGGER = "controller", "tagger"
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CONNECT = "+ping +client|setname +select +auth +hello"
CHECK_KEY = f"{PREFIX}:{{meta}}:acl-check"


class AclError(ValueError):
    """Bad input for the ACL file; the message says what."""


def agent_user(node: str) -> str:
    """The ACL user of the agent of `node`."""
    if not _NODE_RE.match(node):
        raise AclError(f"node name {node!r}: letters, digits, '_', '.', '-' only "
                       "(at most 64, starting with a letter or digit)")
    return f"agent-{node}"


def rules(user: str) -> str:
    """The ACL rules (after the password) of `user`."""
    if user == CONTROLLER:
        return "~* &* +@all"
    if user == TAGGER:
        trails = f"%R~{PREFIX}:{{t:*}}:trail %R~{IDS_KEY}"
        return (f"resetchannels &{CHANNEL} -@all {_CONNECT} +subscribe +unsubscribe "
                f"+get +mget +zrange {trails}")
    if user.startswith("agent-"):
        node = user.removeprefix("agent-")
        return (f"resetchannels -@all {_CONNECT} (~{load_key(node)} +set) "
                f"(~{NODES_KEY} +zadd)")
    raise AclError(f"unknown role {user!r}")


def acl_text(users: dict[str, str]) -> str:
    """An ACL file for `users` (name -> password); the default user is off."""
    lines = ["user default off resetkeys resetchannels -@all"]  # no comments: Redis refuses them
    for user, password in users.items():
        digest = hashlib.sha256(password.encode()).hexdigest()
        lines.append(f"user {user} on resetpass #{digest} {rules(user)}")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def write_acl(acl_file: Path, secrets_dir: Path, nodes: list[str]) -> dict[str, Path]:
    """Write the ACL file and a password file per user; return user -> password file.

    A password file that exists is kept (running again adds users without
    changing the others' passwords).
    """
    users = [CONTROLLER, TAGGER] + [agent_user(n) for n in nodes]
    if len(set(users)) != len(users):
        raise AclError("a node is given twice")
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    passwords, files = {}, {}
    for user in users:
        file = secrets_dir / f"{user}.password"
        if file.exists():
            passwords[user] = file.read_text().strip()
        else:
            passwords[user] = secrets.token_urlsafe(24)
            _write_private(file, passwords[user] + "\n")
        files[user] = file
    _write_private(acl_file, acl_text(passwords))
    return files


def check_controller_access(client: Any) -> str | None:
    """None if `client`'s user can do what the controller does, else what it cannot."""
    tries = [
        ("SET", lambda: client.set(CHECK_KEY, "1", px=5000)),
        ("GET", lambda: client.get(CHECK_KEY)),
        ("EVAL (Lua scripts: trail writes, leases)",
         lambda: client.eval("return redis.call('GET', KEYS[1])", 1, CHECK_KEY)),
        ("ZADD/ZRANGE (indexes)", lambda: (client.zadd(CHECK_KEY + "z", {"x": 1}),
                                           client.zrange(CHECK_KEY + "z", 0, -1))),
        ("HSET/HGETALL (hosts, labels)", lambda: (client.hset(CHECK_KEY + "h", "x", "1"),
                                                  client.hgetall(CHECK_KEY + "h"))),
        ("PUBLISH (change notes)", lambda: client.publish(CHANNEL, "{}")),
        ("DEL", lambda: client.delete(CHECK_KEY, CHECK_KEY + "z", CHECK_KEY + "h")),
    ]
    for what, attempt in tries:
        try:
            attempt()
        except Exception as exc:  # NoPermissionError above all: say which command
            if "NOPERM" in str(exc) or type(exc).__name__ == "NoPermissionError":
                return f"its Redis user may not run {what}: {exc}"
            return f"{what} failed while checking its access: {type(exc).__name__}: {exc}"
    return None


def add_parser(sub: Any) -> None:
    """`sdnscent redis-acl` in the command's subparsers."""
    p = sub.add_parser("redis-acl", help="write a Redis ACL file with the store's roles",
                       description="Write a Redis ACL file (for redis.conf's aclfile) with "
                       "the users controller (everything), tagger (reads trails) and "
                       "agent-<node> per --node (writes only its node's load), and one "
                       "password file per user (mode 0600). The default user is off.")
    p.add_argument("--out", required=True, metavar="FILE", help="the ACL file to write")
    p.add_argument("--secrets-dir", required=True, metavar="DIR",
                   help="where <user>.password files go (existing ones are kept)")
    p.add_argument("--node", action="append", default=[], metavar="NAME",
                   help="an agent's node name (repeatable)")


def run(args: Any) -> int:
    """Run `sdnscent redis-acl`."""
    try:
        files = write_acl(Path(args.out), Path(args.secrets_dir), args.node)
    except (AclError, OSError) as exc:
        print(f"sdnscent redis-acl: {exc}")
        return 2
    print(f"wrote {args.out}: users " + ", ".join(files))
    for user, file in files.items():
        print(f"  {user}: password in {file}")
    return 0
