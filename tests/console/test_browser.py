"""The console in a real browser (Debian's chromium driven by Playwright): the eventing tutorial
walked through the console of `pyjetstream up`, and the hostile cases (escaping with no script
run, CSRF from another page refused, the token gate).

Set PYJETSTREAM_CONSOLE_SCREENSHOTS=DIR to save the screenshots of docs/console.md there.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from eventing.conftest import VENV_BIN
from servers import free_port

from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore
from pyjetstream.eventing.testing import FlakySink, wait_until

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
SHOTS = os.environ.get("PYJETSTREAM_CONSOLE_SCREENSHOTS")
EXPECT_TIMEOUT = 20_000  # ms: the dispatcher's retries and the 1 s sampling, on a loaded machine


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield b
        finally:
            await b.close()


class Watched:
    """A page whose dialogs (alert/confirm: a script ran) and console errors are recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []

        async def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    async def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def start_up(tmp_path: Path) -> tuple[asyncio.subprocess.Process, dict[str, str], list[str]]:
    ports = {k: free_port() for k in ("nats", "mon", "proxy", "console")}
    proc = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "pyjetstream"), "up", "-a", "127.0.0.1", "-p", str(ports["nats"]), "-m", str(ports["mon"]),
        "-sd", str(tmp_path / "data"), "--publish-port", str(ports["proxy"]), "--console-port", str(ports["console"]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            lines.append(line.decode(errors="replace").rstrip())

    asyncio.get_running_loop().create_task(read())
    await wait_until(lambda: any("pyjetstream up: console" in x for x in lines) or proc.returncode is not None,
                     timeout=30, what="up to print the console URL")
    found = next((x for x in lines if "pyjetstream up: console" in x), "")
    assert found.endswith(f"http://127.0.0.1:{ports['console']}"), "\n".join(lines)
    urls = {"nats": f"nats://127.0.0.1:{ports['nats']}", "proxy": f"http://127.0.0.1:{ports['proxy']}",
            "console": f"http://127.0.0.1:{ports['console']}"}
    return proc, urls, lines


async def stop_up(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def tutorial_subscription(sink: str) -> Subscription:
    """examples/lastorder-sub.yaml with a test sink and short retry delays (and 400 = give up)."""
    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "lastorder-sub.yaml").read_text())
    doc["spec"]["sink"] = sink
    doc["spec"]["config"].update({"backoffDelay": "200ms", "backoffMax": "1s", "noRetryStatusCodes": "400"})
    return Subscription.from_manifest(doc)


async def publish_with_form(w: Watched, console: str, event_id: str) -> None:
    page = w.page
    await page.goto(f"{console}/publish")
    await page.fill("input[name=id]", event_id)
    await page.click("#publish-form button[type=submit]")
    await page.wait_for_url(f"{console}/publish")
    assert "published: 204" in await page.inner_text(".flash")


async def test_tutorial_through_the_console(browser, tmp_path):
    expect = playwright_api.expect
    sink = FlakySink()
    await sink.start()
    proc, urls, lines = await start_up(tmp_path)
    console = urls["console"]
    nc = await nats.connect(urls["nats"])
    try:
        w = Watched(await browser.new_page(viewport={"width": 1360, "height": 900}))
        page = w.page
        # The sap stream is listed.
        await page.goto(f"{console}/streams")
        await expect(page.locator('tr[data-stream="sap"]')).to_be_visible()
        await expect(page.locator("#live-status")).to_have_text("live", timeout=EXPECT_TIMEOUT)

        # Subscribe while the Subscriptions page is open: it turns up, Ready, without a reload.
        await page.goto(f"{console}/subscriptions")
        await page.evaluate("window.__noReload = 1")
        store = await SubscriptionStore.open(nc)
        await store.apply(tutorial_subscription(sink.url))
        row = page.locator('tr[data-subscription="default/lastorder-sub"]')
        await expect(row.locator("td.ready")).to_have_text("True", timeout=EXPECT_TIMEOUT)

        # Publish through the console's form: delivered.
        await publish_with_form(w, console, "ev-1")
        await wait_until(lambda: "ev-1" in sink.ids(), timeout=20, what="delivery of ev-1")

        # Sink down: the next event waits, 1 pending, and the delivery error shows.
        await sink.stop()
        await publish_with_form(w, console, "ev-2")
        await page.goto(f"{console}/subscriptions")
        await page.evaluate("window.__noReload = 1")
        await expect(row.locator("td.pending")).to_have_text("1", timeout=EXPECT_TIMEOUT)
        # The dispatcher's own words, from the Subscription's status (not derived from counters).
        await expect(row.locator("td.last-error .error-text")).to_have_text("connection refused",
                                                                            timeout=EXPECT_TIMEOUT)
        await w.shot("subscriptions")
        await page.goto(f"{console}/streams")
        await expect(page.locator('tr[data-stream="sap"] td.messages')).to_have_text("1")
        await page.goto(f"{console}/subscriptions")
        await page.evaluate("window.__noReload = 1")

        # Sink back: the retry delivers and the page drains to 0 by itself.
        await sink.start()
        await expect(row.locator("td.pending")).to_have_text("0", timeout=EXPECT_TIMEOUT)
        await wait_until(lambda: "ev-2" in sink.ids(), timeout=20, what="redelivery of ev-2")
        # ... and the error is marked recovered, still without a reload.
        await expect(row.locator("td.last-error .recovered")).to_have_text("recovered", timeout=EXPECT_TIMEOUT)
        await expect(row.locator("td.last-error .error-text")).to_have_count(0)
        await expect(row.locator("td.last-error")).to_contain_text("last error: connection refused")
        assert await page.evaluate("window.__noReload") == 1, "the page was reloaded"

        # An event the sink refuses with 400 is dead-lettered; the Replay button delivers it.
        sink.mode, sink.fail_status = "fail", 400
        await publish_with_form(w, console, "ev-3")
        await page.goto(f"{console}/dead-letters")
        letter = page.locator("#dead-letters tbody tr")
        await expect(letter).to_have_count(1, timeout=EXPECT_TIMEOUT)
        await expect(letter).to_contain_text("NonRetryableStatus")
        await expect(letter).to_contain_text("400")
        await w.shot("dead-letters")
        sink.mode = "ok"
        await letter.locator("button.replay").click()
        await page.wait_for_url(f"{console}/dead-letters")
        await expect(page.locator(".flash")).to_contain_text("replayed 1 of 1")
        await wait_until(lambda: "ev-3" in sink.ids(), timeout=20, what="delivery of the replayed ev-3")
        await expect(page.locator("#dead-letters")).to_have_count(0, timeout=EXPECT_TIMEOUT)

        if SHOTS:
            for path, name in (("/", "overview"), ("/streams", "streams"), ("/streams/sap?mode=seq&start=1", "stream"),
                               ("/streams/sap/consumers", "consumers"),
                               ("/subscriptions/default/lastorder-sub", "subscription"), ("/publish", "publish")):
                await page.goto(console + path)
                await page.wait_for_timeout(1200)
                await w.shot(name)
        assert not w.dialogs and not w.errors, (w.dialogs, w.errors)
    finally:
        await nc.close()
        await stop_up(proc)
        await sink.stop()
    assert proc.returncode == 0, "\n".join(lines)


HOSTILE = "<script>alert('payload')</script><img src=x onerror=alert('img')><svg onload=alert('svg')>"


async def test_hostile_content_csrf_and_token_in_the_browser(browser, make_console, nats_server):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="hostile", subjects=["hostile.>"])
    await js.publish("hostile.x", HOSTILE.encode(), headers={"X-Evil": "\"><script>alert('hdr')</script>"})
    store = await SubscriptionStore.open(nc)
    await store.apply(Subscription.from_manifest({
        "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
        "metadata": {"name": "evil", "namespace": "default"},
        "spec": {"sink": "http://127.0.0.1:9/\"><script>alert('sink')</script>", "source": "myapp",
                 "types": ["order.received.v1"]}}))
    await nc.close()
    console = await make_console(token="tok-123")
    w = Watched(await browser.new_page())
    page = w.page

    # Token required: the page sends us to the login form; a wrong token does not get in.
    response = await page.goto(console.url + "/streams/hostile")
    assert re.search(r"/login\?next=", page.url) and response.status == 200
    await page.fill("input[name=secret]", "wrong")
    await page.click("form.login button")
    await playwright_api.expect(page.locator(".flash.error")).to_contain_text("Wrong token")
    await page.fill("input[name=secret]", "tok-123")
    await page.click("form.login button")
    await page.wait_for_url(console.url + "/streams/hostile")

    # Hostile payload and header: shown as text, nothing runs, no element injected.
    await playwright_api.expect(page.locator("pre.payload").first).to_contain_text("<script>alert('payload')</script>")
    await playwright_api.expect(page.locator("table.headers")).to_contain_text("<script>alert('hdr')</script>")
    await page.goto(console.url + "/subscriptions")
    await playwright_api.expect(page.locator('tr[data-subscription="default/evil"]')).to_contain_text(
        "<script>alert('sink')</script>", timeout=EXPECT_TIMEOUT)
    await page.wait_for_timeout(1500)  # a few live updates swap the hostile table in again
    for path in ("/streams/hostile", "/subscriptions"):
        await page.goto(console.url + path)
        assert await page.locator("script").count() == 1  # console.js only
        assert await page.locator("img, svg[onload]").count() == 0
    assert w.dialogs == [], w.dialogs

    # CSRF: another page posting a purge in the user's browser is refused (its SameSite cookie
    # stays home, and neither origin nor token would pass); nothing is purged.
    attacker = await browser.new_page()
    await attacker.goto(f"data:text/html,<form method=post action='{console.url}/streams/hostile/purge'>"
                        "<input name=confirm value=hostile></form>")
    async with attacker.expect_navigation() as navigation:
        await attacker.eval_on_selector("form", "f => f.submit()")
    assert (await navigation.value).status in (401, 403)
    # The same request from the console's own origin, cookie attached but without the token: 403.
    status = await page.evaluate("""async () => (await fetch('/streams/hostile/purge', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'confirm=hostile'})).status""")
    assert status == 403
    info = console.sampler.snapshot.stream("hostile")
    assert info is not None and info["state"]["messages"] == 1


async def test_pages_work_with_javascript_off(browser, make_console, nats_server):
    """Plain HTML tables and forms: the message browser and a purge work with no script at all."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="plain", subjects=["plain.>"])
    for i in range(3):
        await js.publish(f"plain.{i}", f"body-{i}".encode())
    await nc.close()
    console = await make_console()
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(console.url + "/streams")
    await playwright_api.expect(page.locator('tr[data-stream="plain"] td.messages')).to_have_text("3")
    assert await page.locator("noscript").count() == 1  # the refresh that replaces live updates
    await page.click('tr[data-stream="plain"] a')
    await page.select_option("select[name=mode]", "subject")
    await page.fill("input[name=subject]", "plain.1")
    await page.click("form.browser button")
    await playwright_api.expect(page.locator("article.message")).to_have_count(1)
    await playwright_api.expect(page.locator("article.message pre.payload")).to_have_text("body-1")
    await page.click("text=Purge…")
    await page.click("form.confirm button.danger")
    await playwright_api.expect(page.locator(".flash")).to_contain_text("purged 3 message(s)")
    await context.close()
