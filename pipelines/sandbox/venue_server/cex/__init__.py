"""CEX endpoints for the local venue server (Binance, Bybit, OKX, BitMEX, Deribit, dYdX; REST + WebSocket).

data = generate(start_ms, hours=6, accounts=[Account("binance", key, secret)])
with serve(Scenario(root=tmp), routes=cex_routes(data)) as srv:
    BinanceFuturesClient(srv.base_url, credentials=...)
"""

from pipelines.sandbox.venue_server.cex.data import Account, CexData, add_examples, generate
from pipelines.sandbox.venue_server.cex.routes import cex_routes

__all__ = ["Account", "CexData", "add_examples", "cex_routes", "generate"]
