"""Redis with a password or an ACL user, from the store URL: a real redis-server
(requirepass and ACL SETUSER), the right credentials work, wrong ones are a
StoreError that never shows the password."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from sdnscent.store import StoreError, open_store
from sdnscent.trails import Hop, Trail
from tests.redisproc import RedisServer, free_port

PASSWORD = "s3cret-requirepass-42"
USER, USER_PASSWORD = "sdnscent", "acl-user-pw-0123456789"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed")


@pytest.fixture
def server(tmp_path) -> Iterator[RedisServer]:
    """redis-server with requirepass and an ACL user limited to sdnscent's commands."""
    srv = RedisServer(free_port(), tmp_path)
    srv.start()
    client = srv.client()
    client.execute_command("ACL", "SETUSER", USER, "on", f">{USER_PASSWORD}", "~*", "&*",
                           "+@all", "-@dangerous", "+info")
    client.config_set("requirepass", PASSWORD)
    client.close()
    try:
        yield srv
    finally:
        srv.stop()


def trail() -> Trail:
    return Trail(1, 16, "00:00:00:00:00:01", "00:00:00:00:00:02", "10.0.0.1", "10.0.0.2",
                 (Hop(1, 1, 2),))


@pytest.mark.parametrize("creds", [f":{PASSWORD}", f"default:{PASSWORD}",
                                   f"{USER}:{USER_PASSWORD}"],
                         ids=["requirepass", "default-user", "acl-user"])
def test_store_url_credentials_open_a_protected_redis(server, creds: str) -> None:
    store = open_store(f"redis://{creds}@127.0.0.1:{server.port}/0")
    try:
        store.put(trail())
        assert store.get(1) == trail()
    finally:
        store.close()


@pytest.mark.parametrize("creds", ["", ":wrong-password", f"{USER}:wrong-password"],
                         ids=["none", "wrong-password", "wrong-acl-password"])
def test_missing_or_wrong_credentials_are_a_store_error_without_the_password(
        server, creds: str) -> None:
    url = f"redis://{creds + '@' if creds else ''}127.0.0.1:{server.port}/0"
    with pytest.raises(StoreError) as exc:
        open_store(url).ping()
    assert "wrong-password" not in str(exc.value) and PASSWORD not in str(exc.value)
