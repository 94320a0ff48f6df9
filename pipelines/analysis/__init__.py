"""Analysis glue: read the lake, run the ``forensics`` library, write analytics tables."""
