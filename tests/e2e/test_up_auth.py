"""`pyjetstream up` with a config that lists several users: the embedded eventing picks the
first user without permissions (here the second one listed) and events flow to the sink."""

from __future__ import annotations

import pytest

from pyjetstream.cli.up import embedded_user
from pyjetstream.eventing.testing import free_port
from pyjetstream.server.options import Permissions, User

from .conftest import _own_server_missing, subscribe_ready
from .test_readme_scenario import CLI, Proc, wait_http
from .test_reliability import all_arrive, publish_many

CONF = """
authorization {
  users = [
    { user: reader, password: r1, permissions: { publish: "_INBOX.>", subscribe: "reports.>" } }
    { user: ops, password: o1 }
  ]
}
"""


def test_embedded_user_choice() -> None:
    limited = User("a", "x", "$G", Permissions())
    free_other = User("b", "y", "ACC")
    free_global = User("c", "z", "$G")
    assert embedded_user([limited, free_other, free_global]) is free_global
    assert embedded_user([limited, free_other]) is free_other
    assert embedded_user([limited]) is limited


@pytest.mark.skipif(_own_server_missing() is not None, reason=str(_own_server_missing()))
async def test_up_with_several_users_delivers_events(tmp_path, sink):
    import nats

    conf = tmp_path / "users.conf"
    conf.write_text(CONF)
    port, mon, proxy = free_port(), free_port(), free_port()
    up = await Proc(CLI, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon), "-sd", str(tmp_path / "data"),
                    "-c", str(conf), "--publish-port", str(proxy)).start()
    try:
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        assert any("connects as user ops" in line for line in up.lines), up.output()
        nc = await nats.connect(f"nats://127.0.0.1:{port}", user="ops", password="o1")
        await subscribe_ready(nc, sink.url)
        await nc.close()
        accepted = await publish_many(lambda: proxy, [f"auth-{i}" for i in range(20)], 4)
        assert len(accepted) == 20
        await all_arrive(sink, accepted, timeout=30)
    finally:
        await up.stop()
    assert up.proc is not None and up.proc.returncode == 0, up.output()
