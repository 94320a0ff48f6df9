"""The lake's tables: one module per area, every table with its key and its one dedup rule."""
