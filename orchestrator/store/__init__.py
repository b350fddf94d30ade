"""The SQLite store: engine, tables, and every statement on them (queries)."""
