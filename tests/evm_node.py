"""A real local EVM for the JSON-RPC tests (anvil from the npm registry, on 127.0.0.1) and a provider
proxy in front of it that refuses ``eth_getLogs`` ranges the way hosted RPCs do and counts calls."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ANVIL = (
    Path(__file__).resolve().parents[1]
    / "tools"
    / "evm"
    / "node_modules"
    / "@foundry-rs"
    / "anvil-linux-amd64"
    / "bin"
    / "anvil"
)
ANVIL_MISSING = "anvil not installed: run tools/evm/setup.sh (npm ci)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def anvil(*, number: int | None = None, chain_id: int = 42161) -> Iterator[str]:
    """An anvil node on a free loopback port (``number``: the genesis block's number); yields its URL."""
    port = free_port()
    cmd = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id), "--silent"]
    if number is not None:
        cmd += ["--number", str(number)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# what hosted providers answer when an eth_getLogs range is too wide (messages as they publish them)
REFUSALS = {
    "infura": (-32005, "query returned more than 10000 results"),
    "alchemy": (
        -32602,
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and "
        "no limit on the response size, or you can request any block range with a cap of 10K logs in "
        "the response. Based on your parameters, this block range should work: [{lo}, {hi}]",
    ),
    "quicknode": (-32614, "eth_getLogs is limited to a {n} range"),
}


class RpcProxy:
    """HTTP JSON-RPC proxy to ``upstream`` refusing ``eth_getLogs`` over more than ``max_blocks`` blocks with
    the ``style`` provider's error; ``calls`` counts the requests it received, by method."""

    def __init__(self, upstream: str, *, max_blocks: int | None = None, style: str = "infura") -> None:
        self.upstream, self.max_blocks, self.style = upstream, max_blocks, style
        self.calls: Counter[str] = Counter()
        self.refused = 0
        self._client = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                answer = proxy.handle(body)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def handle(self, body: dict) -> dict:
        method = body.get("method")
        self.calls[method] += 1
        if method == "eth_getLogs" and self.max_blocks:
            flt = body["params"][0]
            lo, hi = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
            if hi - lo + 1 > self.max_blocks:
                self.refused += 1
                code, text = REFUSALS[self.style]
                text = text.format(lo=hex(lo), hi=hex(lo + self.max_blocks - 1), n=self.max_blocks)
                return {"jsonrpc": "2.0", "id": body.get("id"), "error": {"code": code, "message": text}}
        return self._client.post(self.upstream, json=body).json()

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


def rpc(url: str, method: str, *params):
    """One JSON-RPC call (anvil_* and evm_* methods the web3 API does not wrap)."""
    body = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=30
    ).json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]
