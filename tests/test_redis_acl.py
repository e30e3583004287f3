"""Store roles on a real redis-server (sdnscent redis-acl): who may write what."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sdnscent.apps.manager import main as manager_main
from sdnscent.cli import main as cli_main
from sdnscent.redisacl import check_controller_access
from sdnscent.redisstore import RedisStore
from sdnscent.store import StoreError, open_store
from sdnscent.trails import Hop, Trail
from tests.redisproc import REDIS_SERVER

pytestmark = [pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
              pytest.mark.usefixtures("restore_logging")]




class AclRedis:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.socket = workdir / "redis.sock"
        self.secrets = workdir / "secrets"

    def password(self, user: str) -> str:
        return (self.secrets / f"{user}.password").read_text().strip()

    def store(self, user: str) -> RedisStore:
        return RedisStore(None, None, username=user, password=self.password(user),
                          unix_socket=str(self.socket))


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    server = AclRedis(tmp_path)
    assert cli_main(["redis-acl", "--out", str(tmp_path / "users.acl"), "--secrets-dir",
                     str(server.secrets), "--node", "web1", "--node", "web2"]) == 0
    proc = subprocess.Popen([REDIS_SERVER, "--port", "0", "--unixsocket", str(server.socket),
                             "--aclfile", str(tmp_path / "users.acl"), "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(unix_socket_path=str(server.socket), username="controller",
                            password=server.password("controller")).ping()
                break
            except redis.RedisError:
                assert proc.poll() is None, "redis-server refused the ACL file"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)


def trail(trail_id: int) -> Trail:
    return Trail(trail_id, 100 + trail_id, "00:00:00:00:00:01", "00:00:00:00:00:02",
                 "10.0.0.1", "10.0.0.2", (Hop(1, 1, 2), Hop(2, 1, 2)))


def test_roles_allow_what_they_need_and_refuse_forbidden_writes(acl_redis: AclRedis) -> None:
    controller = acl_redis.store("controller")
    assert check_controller_access(controller._client) is None
    controller.put(trail(1))
    agent = acl_redis.store("agent-web1")
    agent.put_node_load("web1", {"time": time.time(), "cpu": 0.5, "memory": 0.1}, 5.0)
    assert "web1" in controller.node_loads()
    with pytest.raises(StoreError, match="NOPERM|no permissions"):
        agent.put_node_load("web2", {"time": time.time(), "cpu": 0.9, "memory": 0.9}, 5.0)
    with pytest.raises(StoreError, match="NOPERM|no permissions"):
        agent.put(trail(2))  # a trail record
    with pytest.raises(StoreError, match="NOPERM|no permissions"):
        agent.claim_leader("agent-web1", 10.0)  # the master lease
    tagger = acl_redis.store("tagger")
    assert [t.id for t in tagger.all()] == [1] and tagger.get(1) == trail(1)
    notes: list[dict] = []
    tagger.subscribe(notes.append)  # the tagger follows changes on the channel
    controller.put(trail(3))
    deadline = time.monotonic() + 5
    while not any(n.get("id") == 3 for n in notes) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(n.get("id") == 3 for n in notes)
    with pytest.raises(StoreError, match="NOPERM|no permissions"):
        tagger.put(trail(1).evolve(label=999, version=2))
    with pytest.raises(StoreError, match="NOPERM|no permissions"):
        tagger.delete(1)
    assert controller.get(1).label == 101  # nothing the agent or tagger tried landed
    assert "web2" not in controller.node_loads() and controller.leader() is None


def test_the_controller_refuses_to_start_with_a_restricted_user(
        acl_redis: AclRedis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SDNSCENT_REDIS_PASSWORD_FILE", str(acl_redis.secrets /
                                                           "tagger.password"))
    url = f"redis+unix://tagger@{acl_redis.socket}"
    assert check_controller_access(open_store(url)._client) is not None
    assert manager_main(["--store", url, "--api-listen", "none"]) == 2
    err = capsys.readouterr().err
    assert "may not run SET" in err and "'controller' user" in err
