"""Starlette routes that serve :class:`CexData` the way each venue does: paths, paging, envelopes,
error bodies and signature checks (a wrong signature gets the venue's own error, so tests prove signing).

Mounted into the local venue server with ``build_app(..., routes=cex_routes(data))`` /
``serve(..., routes=...)``. WebSocket routes (Binance ``/ws/!forceOrder@arr``, Bybit
``/v5/public/linear``) push the data's stream messages and can drop the connection after
``data.ws_drop_after`` messages to exercise reconnects.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pipelines.sandbox.venue_server.cex.data import Account, CexData
from pipelines.venues import signing

__all__ = ["cex_routes"]

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _int(v: str | None, default: int | None = None) -> int | None:
    if v is None or v == "":
        return default
    if not re.fullmatch(r"-?\d{1,19}", v):
        raise ValueError(v)
    return int(v)


# ---------------------------------------------------------------------------------------------------
# Binance
# ---------------------------------------------------------------------------------------------------


def _binance_err(code: int, msg: str, status: int = 400) -> Response:
    return _json({"code": code, "msg": msg}, status)


def _binance_auth(request: Request, data: CexData) -> Account | Response:
    acct = data.account("binance", request.headers.get("X-MBX-APIKEY"))
    if acct is None:
        return _binance_err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    raw = request.url.query
    head, sep, sig = raw.rpartition("&signature=")
    if not sep or signing.binance_signature(acct.secret, head) != sig:
        return _binance_err(-1022, "Signature for this request is not valid.")
    ts = _int(request.query_params.get("timestamp"))
    rw = _int(request.query_params.get("recvWindow"), 5000) or 5000
    if ts is None or abs(time.time() * 1000 - ts) > rw:
        return _binance_err(-1021, "Timestamp for this request is outside of the recvWindow.")
    return acct


def _binance_routes(data: CexData) -> list[BaseRoute]:
    def by_symbol(items: list[dict[str, Any]], request: Request, single: bool) -> Response:
        sym = request.query_params.get("symbol")
        if sym is None:
            return _json(items)
        if not _SYMBOL.match(sym):
            return _binance_err(
                -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
            )
        hit = [i for i in items if i.get("symbol") == sym or sym in (i.get("symbols") or [])]
        if not hit:
            return _binance_err(-1121, "Invalid symbol.")
        return _json(hit[0] if single else hit)

    async def insurance(request: Request) -> Response:
        return by_symbol(data.binance_insurance, request, single=True)

    async def adl_risk(request: Request) -> Response:
        return by_symbol(data.binance_adl_risk, request, single=True)

    async def premium(request: Request) -> Response:
        return by_symbol(data.binance_premium, request, single=True)

    async def open_interest(request: Request) -> Response:
        if "symbol" not in request.query_params:
            return _binance_err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        return by_symbol(data.binance_open_interest, request, single=True)

    async def adl_quantile(request: Request) -> Response:
        acct = _binance_auth(request, data)
        if isinstance(acct, Response):
            return acct
        return by_symbol(data.binance_adl_quantile.get(acct.name, []), request, single=False)

    async def force_orders(request: Request) -> Response:
        acct = _binance_auth(request, data)
        if isinstance(acct, Response):
            return acct
        q = request.query_params
        try:
            end = _int(q.get("endTime"), data.now_ms)
            start = _int(q.get("startTime"), (end or 0) - 7 * 86_400_000)
            limit = _int(q.get("limit"), 50) or 50
        except ValueError:
            return _binance_err(-1100, "Illegal characters found in a parameter.")
        if limit > 100 or limit < 1:
            return _binance_err(-1130, "Data sent for parameter 'limit' is not valid.")
        if end - start >= 7 * 86_400_000:
            return _binance_err(-4166, "Search window is restricted to recent 7 days only.")
        kind = q.get("autoCloseType")
        if kind not in (None, "LIQUIDATION", "ADL"):
            return _binance_err(-1116, "Invalid autoCloseType.")
        rows = [
            o
            for o in data.binance_force_orders.get(acct.name, [])
            if isinstance(o, dict)
            and isinstance(o.get("time"), int)
            and start <= o["time"] <= end
            and (q.get("symbol") is None or o.get("symbol") == q.get("symbol"))
            and (kind is None or (kind == "ADL") == (o.get("clientOrderId") == "adl_autoclose"))
        ]
        rows.sort(key=lambda o: o["time"])
        return _json(rows[:limit])

    return [
        Route("/fapi/v1/insuranceBalance", insurance),
        Route("/fapi/v1/symbolAdlRisk", adl_risk),
        Route("/fapi/v1/premiumIndex", premium),
        Route("/fapi/v1/openInterest", open_interest),
        Route("/fapi/v1/adlQuantile", adl_quantile),
        Route("/fapi/v1/forceOrders", force_orders),
    ]


# ---------------------------------------------------------------------------------------------------
# Bybit
# ---------------------------------------------------------------------------------------------------


def _bybit(result: Any, code: int = 0, msg: str = "OK") -> Response:
    return _json(
        {
            "retCode": code,
            "retMsg": msg,
            "result": result if code == 0 else {},
            "retExtInfo": {},
            "time": int(time.time() * 1000),
        }
    )


def _bybit_auth(request: Request, data: CexData) -> Account | Response:
    key = request.headers.get("X-BAPI-API-KEY")
    acct = data.account("bybit", key)
    if acct is None:
        return _bybit(None, 10003, "API key is invalid.")
    ts = request.headers.get("X-BAPI-TIMESTAMP", "")
    rw = request.headers.get("X-BAPI-RECV-WINDOW", "5000")
    sig = request.headers.get("X-BAPI-SIGN", "")
    payload = request.url.query
    if signing.bybit_signature(acct.secret, ts, acct.key, rw, payload) != sig:
        # the real venue echoes the signed origin string, which contains the API key
        return _bybit(None, 10004, f"error sign! origin_string[{ts}{acct.key}{rw}{payload}]")
    if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > int(rw or 5000):
        return _bybit(None, 10002, "invalid request, please check your server timestamp or recv_window param")
    return acct


def _bybit_routes(data: CexData) -> list[BaseRoute]:
    def cursor_page(items: list[Any], request: Request, max_limit: int, category: str) -> Response:
        try:
            limit = _int(request.query_params.get("limit"), 50) or 50
            offset = _int(request.query_params.get("cursor"), 0) or 0
        except ValueError:
            return _bybit(None, 10001, "params error: cursor invalid")
        if not 1 <= limit <= max_limit:
            return _bybit(None, 10001, "params error: limit invalid")
        page = items[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else ""
        return _bybit({"nextPageCursor": nxt, "category": category, "list": page})

    async def insurance(request: Request) -> Response:
        return _bybit(data.bybit_insurance)

    async def adl_alert(request: Request) -> Response:
        sym = request.query_params.get("symbol")
        items = [a for a in data.bybit_adl_alert if sym is None or a.get("symbol") == sym]
        return _bybit({"updatedTime": str(data.now_ms), "list": items})

    async def executions(request: Request) -> Response:
        acct = _bybit_auth(request, data)
        if isinstance(acct, Response):
            return acct
        q = request.query_params
        if q.get("category") not in ("linear", "inverse", "spot", "option"):
            return _bybit(None, 10001, "params error: Category is invalid")
        try:
            start, end = _int(q.get("startTime"), 0) or 0, _int(q.get("endTime"), data.now_ms) or data.now_ms
        except ValueError:
            return _bybit(None, 10001, "params error: time invalid")
        if end - start > 7 * 86_400_000:
            return _bybit(None, 10001, "params error: The interval between startTime and endTime cannot exceed 7 days")
        et = q.get("execType")
        items = [
            e
            for e in data.bybit_executions.get(acct.name, [])
            if (et is None or e.get("execType") == et)
            and str(e.get("execTime", "")).isdigit()
            and start <= int(e["execTime"]) <= end
        ]
        items.sort(key=lambda e: -int(e["execTime"]))
        return cursor_page(items, request, 100, q["category"])

    async def positions(request: Request) -> Response:
        acct = _bybit_auth(request, data)
        if isinstance(acct, Response):
            return acct
        q = request.query_params
        if not q.get("symbol") and not q.get("settleCoin"):
            return _bybit(None, 10001, "params error: symbol or settleCoin is required")
        return cursor_page(data.bybit_positions.get(acct.name, []), request, 200, q.get("category", "linear"))

    return [
        Route("/v5/market/insurance", insurance),
        Route("/v5/market/adlAlert", adl_alert),
        Route("/v5/execution/list", executions),
        Route("/v5/position/list", positions),
    ]


# ---------------------------------------------------------------------------------------------------
# OKX
# ---------------------------------------------------------------------------------------------------


def _okx(data_: list[Any], code: str = "0", msg: str = "", status: int = 200) -> Response:
    return _json({"code": code, "msg": msg, "data": data_}, status)


def _okx_auth(request: Request, data: CexData) -> Account | Response:
    acct = data.account("okx", request.headers.get("OK-ACCESS-KEY"))
    if acct is None:
        return _okx([], "50111", "Invalid OK-ACCESS-KEY", 401)
    if request.headers.get("OK-ACCESS-PASSPHRASE") != acct.passphrase:
        return _okx([], "50105", "Invalid OK-ACCESS-PASSPHRASE", 401)
    ts = request.headers.get("OK-ACCESS-TIMESTAMP", "")
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if signing.okx_signature(acct.secret, ts, request.method, path, "") != request.headers.get("OK-ACCESS-SIGN"):
        return _okx([], "50113", "Invalid Sign", 401)
    return acct


def _okx_routes(data: CexData) -> list[BaseRoute]:
    def ts_page(items: list[dict[str, Any]], request: Request, inst_family_required: bool) -> Response:
        q = request.query_params
        if q.get("instType") not in ("SWAP", "FUTURES", "MARGIN", "OPTION"):
            return _okx([], "51000", "Parameter instType error", 400)
        if inst_family_required and q["instType"] in ("SWAP", "FUTURES") and not (q.get("instFamily") or q.get("uly")):
            return _okx([], "50015", "Either parameter instFamily or uly is required", 400)
        try:
            after = _int(q.get("after"))
            before = _int(q.get("before"))
            limit = _int(q.get("limit"), 100) or 100
        except ValueError:
            return _okx([], "51000", "Parameter after error", 400)
        fam = q.get("instFamily") or q.get("uly")
        out, n = [], 0
        flat = []
        for item in items:
            if fam and item.get("instFamily") != fam and item.get("uly") != fam:
                continue
            for det in item.get("details") or []:
                ts = det.get("ts") if isinstance(det, dict) else None
                t = int(ts) if isinstance(ts, str) and ts.isdigit() else None
                if t is None:  # malformed: serve it anyway at the top of the first page
                    t = (after or 2**62) - 1
                if (after is None or t < after) and (before is None or t > before):
                    flat.append((t, item, det))
        flat.sort(key=lambda x: -x[0])
        for _t, item, det in flat:
            if n >= limit:
                break
            out.append({**{k: v for k, v in item.items() if k != "details"}, "details": [det]})
            n += 1
        return _okx(out)

    async def instruments(request: Request) -> Response:
        t = request.query_params.get("instType")
        return _okx([i for i in data.okx_instruments if i.get("instType") == t])

    async def liquidations(request: Request) -> Response:
        return ts_page(data.okx_liquidations, request, True)

    async def insurance(request: Request) -> Response:
        return ts_page(data.okx_insurance, request, True)

    async def bills(request: Request) -> Response:
        acct = _okx_auth(request, data)
        if isinstance(acct, Response):
            return acct
        q = request.query_params
        try:
            after = _int(q.get("after"))
            begin, end = _int(q.get("begin"), 0), _int(q.get("end"), 2**62)
            limit = _int(q.get("limit"), 100) or 100
        except ValueError:
            return _okx([], "51000", "Parameter after error", 400)
        rows = [
            b
            for b in data.okx_bills.get(acct.name, [])
            if (q.get("type") is None or b.get("type") == q.get("type"))
            and (after is None or int(b["billId"]) < after)
            and str(b.get("ts", "")).isdigit()
            and begin <= int(b["ts"]) <= end
        ]
        rows.sort(key=lambda b: -int(b["billId"]))
        return _okx(rows[:limit])

    async def positions(request: Request) -> Response:
        acct = _okx_auth(request, data)
        if isinstance(acct, Response):
            return acct
        return _okx(data.okx_positions.get(acct.name, []))

    return [
        Route("/api/v5/public/instruments", instruments),
        Route("/api/v5/public/liquidation-orders", liquidations),
        Route("/api/v5/public/insurance-fund", insurance),
        Route("/api/v5/account/bills-archive", bills),
        Route("/api/v5/account/positions", positions),
    ]


# ---------------------------------------------------------------------------------------------------
# BitMEX, Deribit, dYdX
# ---------------------------------------------------------------------------------------------------


def _bitmex_err(msg: str, status: int = 400) -> Response:
    return _json({"error": {"message": msg, "name": "HTTPError" if status < 500 else "ServerError"}}, status)


def _bitmex_routes(data: CexData) -> list[BaseRoute]:
    def offset_page(items: list[Any], request: Request) -> Response:
        try:
            count = _int(request.query_params.get("count"), 100) or 100
            start = _int(request.query_params.get("start"), 0) or 0
        except ValueError:
            return _bitmex_err("Invalid count or start")
        if count > 1000:
            return _bitmex_err("count: must be less than or equal to 1000")
        return _json(items[start : start + count])

    async def instruments(request: Request) -> Response:
        return _json(data.bitmex_instruments)

    async def liquidation(request: Request) -> Response:
        sym = request.query_params.get("symbol")
        return offset_page([x for x in data.bitmex_liquidations if sym is None or x.get("symbol") == sym], request)

    async def insurance(request: Request) -> Response:
        q = request.query_params
        cur = q.get("symbol")
        items = [x for x in data.bitmex_insurance if cur is None or x.get("currency") == cur]
        lo, hi = q.get("startTime"), q.get("endTime")
        items = [
            x
            for x in items
            if (lo is None or x.get("timestamp", "") >= lo) and (hi is None or x.get("timestamp", "") <= hi)
        ]
        return offset_page(items, request)

    def signed(request: Request) -> Account | Response:
        """BitMEX's documented scheme: hex HMAC-SHA256(secret, verb + path with query + expires + body)."""
        acct = data.account("bitmex", request.headers.get("api-key"))
        if acct is None:
            return _bitmex_err("Invalid API Key.", 401)
        expires = _int(request.headers.get("api-expires"))
        if expires is None or expires < time.time():
            return _bitmex_err(
                f"This request has expired - `expires` is in the past. Current time: {int(time.time())}", 401
            )
        query = request.url.query
        path = request.url.path + (f"?{query}" if query else "")
        if signing.bitmex_signature(acct.secret, request.method, path, expires, "") != request.headers.get(
            "api-signature"
        ):
            return _bitmex_err("Signature not valid.", 401)
        return acct

    async def executions(request: Request) -> Response:
        acct = signed(request)
        if isinstance(acct, Response):
            return acct
        q = request.query_params
        lo, hi = q.get("startTime"), q.get("endTime")
        items = [
            x
            for x in data.bitmex_executions.get(acct.name, [])
            if (lo is None or x["timestamp"] >= lo) and (hi is None or x["timestamp"] <= hi)
        ]
        return offset_page(items, request)

    async def positions(request: Request) -> Response:
        acct = signed(request)
        return acct if isinstance(acct, Response) else _json(data.bitmex_positions.get(acct.name, []))

    return [
        Route("/api/v1/instrument/active", instruments),
        Route("/api/v1/liquidation", liquidation),
        Route("/api/v1/insurance", insurance),
        Route("/api/v1/execution/tradeHistory", executions),
        Route("/api/v1/position", positions),
    ]


def _deribit(result: Any) -> Response:
    now = int(time.time() * 1_000_000)
    return _json({"jsonrpc": "2.0", "result": result, "usIn": now, "usOut": now + 50, "usDiff": 50, "testnet": False})


def _deribit_err(code: int, message: str, status: int = 400) -> Response:
    return _json({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "testnet": False}, status)


def _deribit_trades_page(trades: list[dict[str, Any]], request: Request) -> Response:
    """``..._by_instrument_and_time``: the trades of ``instrument_name`` in the window, ``count`` at most."""
    q = request.query_params
    try:
        start, end = _int(q.get("start_timestamp")), _int(q.get("end_timestamp"))
        count = _int(q.get("count"), 10) or 10
    except ValueError:
        return _deribit_err(-32602, "Invalid params")
    if start is None or end is None or not 1 <= count <= 1000:
        return _deribit_err(-32602, "Invalid params")
    rows = [
        t
        for t in trades
        if t.get("instrument_name", q.get("instrument_name")) == q.get("instrument_name")
        and isinstance(t.get("timestamp"), int)
        and start <= t["timestamp"] <= end
    ]
    return _deribit({"trades": rows[:count], "has_more": len(rows) > count})


def _deribit_routes(data: CexData) -> list[BaseRoute]:
    async def trades(request: Request) -> Response:
        inst = request.query_params.get("instrument_name")
        if inst not in data.deribit_trades:
            return _deribit_err(-32602, "Invalid params")
        return _deribit_trades_page(data.deribit_trades[inst], request)

    async def settlements(request: Request) -> Response:
        q = request.query_params
        inst = q.get("instrument_name")
        if inst not in data.deribit_settlements:
            return _deribit_err(-32602, "Invalid params")
        count = _int(q.get("count"), 20) or 20
        off = int(q.get("continuation") or 0) if (q.get("continuation") or "0").isdigit() else 0
        rows = [s for s in data.deribit_settlements[inst] if s.get("type") == q.get("type", s.get("type"))]
        nxt = str(off + count) if off + count < len(rows) else None
        return _deribit({"settlements": rows[off : off + count], "continuation": nxt})

    async def auth(request: Request) -> Response:
        """``public/auth`` with ``grant_type=client_credentials`` (JSON-RPC POST body, or GET query)."""
        if request.method == "POST":
            try:
                params = (orjson.loads(await request.body()) or {}).get("params") or {}
            except (orjson.JSONDecodeError, AttributeError):
                return _deribit_err(-32700, "Parse error")
        else:
            params = dict(request.query_params)
        if params.get("grant_type") != "client_credentials":
            return _deribit_err(-32602, "Invalid params")
        acct = data.account("deribit", params.get("client_id"))
        if acct is None or not hmac.compare_digest(acct.secret, str(params.get("client_secret", ""))):
            return _deribit_err(13004, "invalid_credentials")
        token = secrets.token_hex(16)
        data.deribit_tokens[token] = acct.name
        return _deribit(
            {
                "access_token": token,
                "expires_in": 900,
                "refresh_token": secrets.token_hex(16),
                "scope": "read",
                "token_type": "bearer",
            }
        )

    def bearer(request: Request) -> str | Response:
        head = request.headers.get("Authorization", "")
        name = data.deribit_tokens.get(head.removeprefix("Bearer ")) if head.startswith("Bearer ") else None
        return name if name is not None else _deribit_err(13009, "unauthorized")

    async def user_trades(request: Request) -> Response:
        name = bearer(request)
        return (
            name
            if isinstance(name, Response)
            else _deribit_trades_page(data.deribit_user_trades.get(name, []), request)
        )

    async def positions(request: Request) -> Response:
        name = bearer(request)
        if isinstance(name, Response):
            return name
        cur = request.query_params.get("currency", "BTC")
        return _deribit([p for p in data.deribit_positions.get(name, []) if p["instrument_name"].startswith(cur)])

    return [
        Route("/api/v2/public/get_last_trades_by_instrument_and_time", trades),
        Route("/api/v2/public/get_last_settlements_by_instrument", settlements),
        Route("/api/v2/public/auth", auth, methods=["GET", "POST"]),
        Route("/api/v2/private/get_user_trades_by_instrument_and_time", user_trades),
        Route("/api/v2/private/get_positions", positions),
    ]


def _dydx_routes(data: CexData) -> list[BaseRoute]:
    def page(items: list[dict[str, Any]], request: Request, key: str) -> Response:
        q = request.query_params
        try:
            limit = _int(q.get("limit"), 100) or 100
            height = _int(q.get("createdBeforeOrAtHeight"))
        except ValueError:
            return _json(
                {"errors": [{"msg": "createdBeforeOrAtHeight must be a non-negative integer", "location": "query"}]},
                400,
            )
        rows = [i for i in items if height is None or int(i.get("createdAtHeight", "0")) <= height]
        rows.sort(key=lambda i: -int(i.get("createdAtHeight", "0")))
        return _json({key: rows[:limit]})

    async def trades(request: Request) -> Response:
        market = request.path_params["market"]
        if market not in data.dydx_trades:
            return _json({"errors": [{"msg": f"{market} is not a valid ticker", "param": "ticker"}]}, 400)
        return page(data.dydx_trades[market], request, "trades")

    async def fills(request: Request) -> Response:
        addr = request.query_params.get("address")
        if not addr or addr not in data.dydx_fills:
            return _json({"errors": [{"msg": "No subaccount found with address and subaccountNumber"}]}, 404)
        return page(data.dydx_fills[addr], request, "fills")

    return [Route("/v4/trades/perpetualMarket/{market}", trades), Route("/v4/fills", fills)]


# ---------------------------------------------------------------------------------------------------
# WebSockets
# ---------------------------------------------------------------------------------------------------


def _ws_routes(data: CexData, interval_s: float) -> list[BaseRoute]:
    _POS: dict[int, int] = {}

    async def binance_ws(ws: WebSocket) -> None:
        await ws.accept()
        start = _POS.get(id(data.binance_ws), 0)
        await _resume(ws, data.binance_ws, start, lambda m: True)

    async def bybit_ws(ws: WebSocket) -> None:
        await ws.accept()
        try:
            sub = orjson.loads(await ws.receive_text())
        except (WebSocketDisconnect, orjson.JSONDecodeError):
            return
        topics = set(sub.get("args") or []) if isinstance(sub, dict) and sub.get("op") == "subscribe" else set()
        await ws.send_text(
            orjson.dumps(
                {
                    "success": bool(topics),
                    "ret_msg": "" if topics else "error:invalid op",
                    "conn_id": "local",
                    "op": "subscribe",
                }
            ).decode()
        )
        start = _POS.get(id(data.bybit_ws), 0)
        await _resume(ws, data.bybit_ws, start, lambda m: m.get("topic") in topics)

    async def _resume(
        ws: WebSocket, messages: list[dict[str, Any]], start: int, keep: Callable[[dict[str, Any]], bool]
    ) -> None:
        data.ws_connections += 1
        sent = 0
        for i in range(start, len(messages)):
            msg = messages[i]
            if not keep(msg):
                _POS[id(messages)] = i + 1
                continue
            if data.ws_drop_after is not None and sent >= data.ws_drop_after:
                await ws.close(code=1011)
                return
            await ws.send_text(orjson.dumps(msg).decode())
            sent += 1
            _POS[id(messages)] = i + 1
            await asyncio.sleep(interval_s)
        try:
            while True:
                text = await ws.receive_text()
                if '"ping"' in text:
                    await ws.send_text(orjson.dumps({"op": "pong", "success": True, "ret_msg": "pong"}).decode())
        except WebSocketDisconnect:
            return

    return [WebSocketRoute("/ws/!forceOrder@arr", binance_ws), WebSocketRoute("/v5/public/linear", bybit_ws)]


def cex_routes(data: CexData, *, ws_interval_s: float = 0.005) -> list[BaseRoute]:
    """Every CEX route (REST + WebSocket) over ``data``."""
    return [
        *_binance_routes(data),
        *_bybit_routes(data),
        *_okx_routes(data),
        *_bitmex_routes(data),
        *_deribit_routes(data),
        *_dydx_routes(data),
        *_ws_routes(data, ws_interval_s),
    ]
