"""Hyperliquid ingest: node files (fills, misc events, snapshots, contexts; formats detected from content), the
archive layouts, the info-API pull and the requester-pays S3 fetch."""
