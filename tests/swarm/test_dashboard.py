"""The live dashboard in a real headless Chromium (Debian's package; .ci/run
installs it): during a swarm run on the simulator the page connects, shows live
numbers that change, the provider actors with their breakers, the rate-limit
buckets, and the token stream of the agent picked in the page. Driven over the
Chrome DevTools Protocol with trio-websocket."""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trio_websocket

from swarm.dashboard.page import render_page
from swarm.run import demo_spec, run_spec

pytestmark = pytest.mark.anyio

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1400",
]


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # trio-websocket


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture
def profile_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


class DevTools:
    """A page's DevTools connection: evaluate JavaScript, take screenshots."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        await self.ws.send_message(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.get_message())
            if reply.get("id") == n:
                assert "error" not in reply, reply
                return reply["result"]  # type: ignore[no-any-return]

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def text(self, element: str) -> str:
        return str(await self.js(f"document.getElementById({element!r}).textContent"))


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    """Poll ``check`` (the browser has no event to wait on) until it holds."""
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110 - polling another process's state
            await anyio.sleep(0.05)


@asynccontextmanager
async def attached(metrics_url: str) -> AsyncIterator[str]:
    """``swarm dash``'s dashboard attached to ``metrics_url`` for the block; its URL."""
    from swarm.dashboard.attach import run_attached

    urls: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: run_attached(
                metrics_url, host="127.0.0.1", port=0, seconds=30, announce=urls.append
            )
        )
        with anyio.fail_after(10):
            while not urls:  # noqa: ASYNC110 - the callback has no event
                await anyio.sleep(0.01)
        yield urls[0]
        tg.cancel_scope.cancel()


def page_ws_port(page: str) -> int:
    """The WebSocket port the page's script connects to (``":" + PORT + "/ws"``)."""
    return int(page.split('":" + ', 1)[1].split(" ", 1)[0])


def number(text: str) -> int:
    return int(text.replace(",", ""))


async def test_the_dashboard_shows_a_live_run_in_chromium(chromium: str, profile_dir: Path) -> None:
    out = io.StringIO()
    seen: dict[str, Any] = {}

    async def browse() -> None:
        while "dashboard at " not in out.getvalue():  # noqa: ASYNC110 - a StringIO
            await anyio.sleep(0.02)
        url = out.getvalue().split("dashboard at ", 1)[1].split()[0]
        browser = await anyio.open_process(
            [chromium, *FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = anyio.Path(profile_dir / "DevToolsActivePort")
        pages: list[dict[str, Any]] = []
        try:

            async def port_known() -> bool:
                return await port_file.exists() and bool((await port_file.read_text()).strip())

            await until(port_known)
            port = int((await port_file.read_text()).split()[0])
            async with httpx.AsyncClient() as http:

                async def page_open() -> bool:
                    targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                    pages[:] = [
                        t
                        for t in targets
                        if t.get("type") == "page"
                        and t.get("url", "").startswith(url.split("?")[0])
                    ]
                    return bool(pages)

                await until(page_open)
            async with trio_websocket.open_websocket_url(pages[0]["webSocketDebuggerUrl"]) as ws:
                page = DevTools(ws)

                async def live() -> bool:
                    return await page.text("status") == "live"

                await until(live)
                first = number(await page.text("done"))

                async def moved() -> bool:
                    return number(await page.text("done")) > first

                await until(moved)
                seen["first"], seen["later"] = first, number(await page.text("done"))
                seen["tps"] = await page.text("tps")
                seen["providers"] = await page.js(
                    "[...document.querySelectorAll('#providers tbody tr')].map(r => r.innerText)"
                )
                seen["limits"] = await page.js(
                    "document.querySelectorAll('#limits tbody tr').length"
                )
                seen["agents"] = await page.js(
                    "document.querySelectorAll('#agents tbody tr').length"
                )
                # Pick an agent in the page; its tokens appear as it streams them.
                picked = await page.js(
                    "(() => { const p = document.getElementById('pick');"
                    " p.value = p.options[1].value;"
                    " p.dispatchEvent(new Event('change')); return p.value; })()"
                )

                async def streaming() -> bool:
                    return bool((await page.text("tail")).strip())

                await until(streaming)
                seen["picked"], seen["tail"] = picked, await page.text("tail")
                if os.environ.get("SWARM_DASHBOARD_SCREENSHOT"):
                    shot = await page.call("Page.captureScreenshot", format="png")
                    import base64

                    await anyio.Path(os.environ["SWARM_DASHBOARD_SCREENSHOT"]).write_bytes(
                        base64.b64decode(shot["data"])
                    )
        finally:
            browser.terminate()
            with anyio.move_on_after(10):
                await browser.wait()
            await browser.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(browse)
        report = await run_spec(
            demo_spec(12, 30), base=Path.cwd(), progress_out=out, dashboard=("127.0.0.1", 0)
        )
    assert report.answered == 30
    assert seen["later"] > seen["first"] >= 0  # live numbers that change
    assert number(seen["tps"]) >= 0
    rows = " | ".join(seen["providers"])
    assert "sim" in rows and "openai" in rows and "closed" in rows  # actors and breakers
    assert seen["limits"] >= 1 and seen["agents"] >= 1
    assert seen["picked"] and seen["tail"].strip()


async def test_a_dashboard_bound_beyond_loopback_needs_its_token() -> None:
    from swarm import open_engine
    from swarm.dashboard import open_dashboard

    async with open_engine(env={}) as engine:
        async with open_dashboard(engine, host="0.0.0.0") as board, httpx.AsyncClient() as http:
            assert board.token and f"token={board.token}" in board.url
            assert (await http.get(f"http://127.0.0.1:{board.port}/")).status_code == 403
            assert (await http.get(board.url)).status_code == 200
            state = await http.get(f"http://127.0.0.1:{board.port}/state.json?token=nope")
            assert state.status_code == 403
            upgrade = {
                "connection": "Upgrade",
                "upgrade": "websocket",
                "sec-websocket-version": "13",
                "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            }
            refused = await http.get(f"http://127.0.0.1:{board.ws_port}/ws", headers=upgrade)
            assert refused.status_code == 403
            ws_url = f"ws://127.0.0.1:{board.ws_port}/ws?token={board.token}"
            async with trio_websocket.open_websocket_url(ws_url) as ws:
                snapshot = json.loads(await ws.get_message())
                await ws.send_message("not json")  # ignored, the connection lives
                await ws.send_message(json.dumps({"watch": "nobody"}))
                again = json.loads(await ws.get_message())
            assert snapshot["calls"]["completed"] == 0 and again["watching"] is None


def test_the_page_escapes_what_it_embeds() -> None:
    page = render_page("<b>x</b>", 1, "?token=</script>")
    assert "<b>x</b>" not in page and "&lt;b&gt;" in page
    assert '</script>"' not in page


def test_the_page_opens_its_websocket_on_the_host_the_browser_used() -> None:
    # A dashboard on 0.0.0.0 is opened by a LAN name; a host written into the page
    # (the server's 127.0.0.1) would point the viewer's browser at its own machine.
    page = render_page("t", 4321, "?token=abc")
    assert "location.hostname" in page and '":" + 4321 + "/ws" + "?token=abc"' in page
    assert "ws://127.0.0.1" not in page


async def handshake_status(url: str, origin: str) -> int:
    """The status a WebSocket handshake from a page of ``origin`` gets (over httpx:
    trio-websocket's client leaves its socket open when it is refused)."""
    headers = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "origin": origin,
    }
    async with httpx.AsyncClient() as http:
        return (await http.get(url.replace("ws://", "http://", 1), headers=headers)).status_code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_websocket_refuses_other_origins() -> None:
    """A browser lets any page open a WebSocket anywhere: without this check, a site
    the user visits could read a dashboard on 127.0.0.1 (and DNS rebinding could
    reach one by a foreign name)."""
    from swarm import open_engine
    from swarm.dashboard import open_dashboard

    ws_port = free_port()
    async with open_engine(env={}) as engine, open_dashboard(engine, ws_port=ws_port) as board:
        assert board.ws_port == ws_port  # as asked (a firewall can be opened for it)
        url = f"ws://127.0.0.1:{ws_port}/ws"
        page_port = board.port
        for origin in (
            "https://evil.example",
            f"http://evil.example:{page_port}",  # DNS rebinding onto the page's port
            "http://127.0.0.1:1",  # another local page
            "null",  # a sandboxed frame or a file
        ):
            assert await handshake_status(url, origin) == 403, origin
        for origin in (f"http://127.0.0.1:{page_port}", f"http://localhost:{page_port}", None):
            headers = [] if origin is None else [(b"origin", origin.encode())]
            async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
                assert "calls" in json.loads(await ws.get_message())


async def test_beyond_loopback_the_origin_may_be_any_host_on_the_pages_port() -> None:
    from swarm import open_engine
    from swarm.dashboard import open_dashboard

    async with open_engine(env={}) as engine, open_dashboard(engine, host="0.0.0.0") as board:
        url = f"ws://127.0.0.1:{board.ws_port}/ws?token={board.token}"
        lan = [(b"origin", f"http://build-box.lan:{board.port}".encode())]
        async with trio_websocket.open_websocket_url(url, extra_headers=lan) as ws:
            assert "calls" in json.loads(await ws.get_message())
        assert await handshake_status(url, "http://build-box.lan:1") == 403


async def test_swarm_dash_attaches_through_the_metrics_endpoint() -> None:
    from providers import Message, Request
    from providers.sim import RateLimit, SimConfig
    from swarm import open_engine
    from swarm.agents import Agent, open_swarm
    from swarm.observability import open_metrics_server

    sim = SimConfig(rate_limit=RateLimit(rpm=6000))
    request = Request(model="gpt-4o-mini", messages=[Message.user("hi")], max_tokens=8)
    agents = [Agent(f"a{i}", "Answer.", model="gpt-4o-mini") for i in range(3)]
    async with (
        open_engine(env={}, simulator=sim) as engine,
        open_metrics_server(engine) as metrics,
        open_swarm(engine, agents) as crew,
    ):
        metrics.swarm = crew  # the agents' rows come through the endpoint too
        for _ in range(3):
            await engine.complete(request)
        await crew.ask("a0", "one")
        await crew.ask("a0", "two")
        await crew.ask("a2", "three")
        async with attached(metrics.url) as url:
            async with httpx.AsyncClient() as http:
                page = await http.get(url)
                state = (await http.get(url.rstrip("/") + "/state.json")).json()
    assert page.status_code == 200 and "WebSocket" in page.text
    assert state["calls"]["completed"] == 6 and state["calls"]["output_tokens"] > 0  # 3 + 3 asks
    (sim_provider,) = [p for p in state["providers"] if p["name"] == "sim"]
    assert sim_provider["completed"] == 6 and sim_provider["breakers"] == {"gpt-4o-mini": "closed"}
    assert state["rate_limits"][0]["rpm"] == 6000
    assert state["agent_count"] == 3
    rows = {a["name"]: a for a in state["agents"]}
    assert set(rows) == {"a0", "a1", "a2"}
    assert (rows["a0"]["replies"], rows["a1"]["replies"], rows["a2"]["replies"]) == (2, 0, 1)
    assert rows["a0"]["turns"] == 2 and rows["a0"]["busy"] == 0


def test_swarm_dash_refuses_what_it_cannot_attach_to(capsys: pytest.CaptureFixture[str]) -> None:
    from swarm.cli import EXIT_PROBLEM, EXIT_USAGE, main

    assert main(["dash", "localhost:9464"]) == EXIT_USAGE
    assert "is not a URL" in capsys.readouterr().err
    assert main(["dash", "http://127.0.0.1:1/metrics"]) == EXIT_PROBLEM
    assert "cannot scrape" in capsys.readouterr().err


async def test_taps_close_when_the_last_viewer_of_an_agent_leaves() -> None:
    """Picking agents one after another must not leave a tap on each (every tap
    costs an append per token of its agent for the rest of the run)."""
    from swarm import open_engine
    from swarm.agents import Agent, open_swarm
    from swarm.dashboard import open_dashboard

    agents = [Agent(name, "Answer.", model="gpt-4o-mini") for name in ("a", "b", "c")]
    async with (
        open_engine(env={}) as engine,
        open_swarm(engine, agents) as crew,
        open_dashboard(engine, crew) as board,
    ):
        crew.watch("c")  # the application's own tap: the dashboard leaves it alone
        url = f"ws://127.0.0.1:{board.ws_port}/ws"

        async def watch(ws: trio_websocket.WebSocketConnection, name: str) -> None:
            await ws.send_message(json.dumps({"watch": name}))
            while json.loads(await ws.get_message())["watching"] != (name or None):
                pass

        async with trio_websocket.open_websocket_url(url) as one:
            await watch(one, "a")
            await watch(one, "b")
            assert crew.watched == {"b", "c"}  # a's tap closed when one moved on
            async with trio_websocket.open_websocket_url(url) as two:
                await watch(two, "b")
                await watch(two, "c")
                await watch(one, "")
                assert crew.watched == {"c"}  # nobody watches b now
                await watch(one, "a")
            await eventually(lambda: crew.watched == {"a", "c"})  # two left: c stays
        await eventually(lambda: crew.watched == {"c"})


async def eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    """Wait for the server to see a viewer leave (it has no event to wait on)."""
    with anyio.fail_after(seconds):
        while not check():  # noqa: ASYNC110 - the server's side of a closed socket
            await anyio.sleep(0.01)


def test_swarm_dash_serves_on_the_host_and_ports_asked_for_the_seconds_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command itself (not run_attached): --host, --port, --ws-port, --seconds."""
    import http.server
    import threading

    from swarm.cli import EXIT_OK, main

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # an engine with nothing done yet
            body = b"swarm_calls_total 0\n"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    endpoint = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/metrics"
    page_port, ws_port = free_port(), free_port()
    served: list[int] = []

    def look() -> None:  # while the command serves: both ports answer
        with httpx.Client() as http_client:
            for _ in range(200):
                try:
                    page = http_client.get(f"http://127.0.0.1:{page_port}/")
                except httpx.TransportError:
                    time.sleep(0.02)
                    continue
                served.append(page.status_code)
                with socket.create_connection(("127.0.0.1", ws_port), timeout=2):
                    served.append(ws_port)
                return

    watcher = threading.Thread(target=look)
    watcher.start()
    try:
        args = ["dash", url, "--host", "127.0.0.1", "--port", str(page_port)]
        assert main([*args, "--ws-port", str(ws_port), "--seconds", "1.5"]) == EXIT_OK
    finally:
        watcher.join()
        endpoint.shutdown()
        endpoint.server_close()
    assert f"dashboard at http://127.0.0.1:{page_port}/" in capsys.readouterr().out
    assert served == [200, ws_port]


async def test_swarm_dash_shows_the_picked_agents_text_when_the_engine_serves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from swarm import open_engine
    from swarm.agents import Agent, open_swarm
    from swarm.dashboard.attach import metrics_source
    from swarm.observability import open_metrics_server
    from swarm.observability import server as metrics_module

    agents = [Agent(f"a{i}", "Answer.", model="gpt-4o-mini") for i in range(2)]
    async with (
        open_engine(env={}) as engine,
        open_metrics_server(engine, tails=True) as metrics,
        open_swarm(engine, agents) as crew,
        httpx.AsyncClient() as http,
    ):
        metrics.swarm = crew
        source = metrics_source(http, metrics.url, "t")
        assert (await source("a0"))["tail"] == ""  # watched from its next message on
        await crew.ask("a0", "hello")
        state = await source("a0")
        assert state["watching"] == "a0" and len(state["tail"]) > 10
        assert "no agent 'zz'" in (await source("zz"))["tail"]
        # Through the page's WebSocket, as a viewer picks the agent.
        async with attached(metrics.url) as url:
            ws_port = page_ws_port((await http.get(url)).text)
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{ws_port}/ws") as ws:
                await ws.send_message(json.dumps({"watch": "a0"}))
                with anyio.fail_after(10):
                    while (seen := json.loads(await ws.get_message()))["watching"] != "a0":
                        pass
        assert seen["tail"] == state["tail"]
        # A tap nobody asks for closes: asking for a1 after a0 went idle.
        monkeypatch.setattr(metrics_module, "TAIL_IDLE", -1.0)
        await source("a1")
        assert crew.watched == {"a1"}


async def test_without_tails_the_endpoint_says_how_to_serve_them() -> None:
    from swarm import open_engine
    from swarm.agents import Agent, open_swarm
    from swarm.dashboard.attach import metrics_source
    from swarm.observability import open_metrics_server

    async with (
        open_engine(env={}) as engine,
        open_metrics_server(engine) as metrics,
        open_swarm(engine, [Agent("a0", "Answer.", model="gpt-4o-mini")]) as crew,
        httpx.AsyncClient() as http,
    ):
        metrics.swarm = crew
        state = await metrics_source(http, metrics.url, "t")("a0")
        assert "swarm run --metrics-tails" in state["tail"]
        assert crew.watched == frozenset()  # nothing tapped
    with pytest.raises(ValueError, match="loopback only"):
        async with (
            open_engine(env={}) as engine,
            open_metrics_server(engine, host="0.0.0.0", tails=True),
        ):
            pass
