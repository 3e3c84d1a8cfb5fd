"""`pyjetstream up` restarted mid-stream: nothing the proxy accepted is lost."""

from __future__ import annotations

import asyncio

from servers import free_port

from pyjetstream.eventing.testing import wait_until

from .conftest import subscribe_ready
from .test_readme_scenario import CLI, Proc, wait_http
from .test_reliability import all_arrive, publish_many


async def test_up_restarted_mid_stream_loses_nothing(tmp_path, sink):
    import nats

    port, mon, proxy = free_port(), free_port(), free_port()
    args = (CLI, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon), "-sd", str(tmp_path / "data"),
            "--publish-port", str(proxy))
    up = await Proc(*args).start()
    try:
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        await subscribe_ready(nc, sink.url)
        await nc.close()
        sink.mode = "fail"  # keep events in the stream across the restart
        publishing = asyncio.create_task(publish_many(lambda: proxy, [f"up-{i}" for i in range(400)], 4))
        await wait_until(lambda: sum(sink.attempts.values()) >= 20, timeout=20, what="events flowing")
        await up.stop()
        assert up.proc.returncode == 0, up.output()
        up = await Proc(*args).start()
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        accepted = await publishing
        assert len(accepted) >= 20
        sink.mode = "ok"
        await all_arrive(sink, accepted, timeout=40)
    finally:
        await up.stop()
