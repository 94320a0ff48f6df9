"""One object-storage layer for everything that reads or writes ``s3://`` (obstore underneath).

* :mod:`.location`: ``s3://bucket/prefix`` URLs and safe object keys;
* :mod:`.stores`: stores built from the environment's AWS credentials and endpoint, one-line errors;
* :mod:`.transfer`: listing, resumable verified downloads, uploads;
* :mod:`.commit`: unique part names plus one committed manifest per input key (object stores have
  no rename, so this is what makes lake writes atomic and idempotent).
"""

from pipelines.storage.location import ObjectUrl, is_object_url, parse_url
from pipelines.storage.stores import StorageError, StoreSettings, open_store

__all__ = ["ObjectUrl", "StorageError", "StoreSettings", "is_object_url", "open_store", "parse_url"]
