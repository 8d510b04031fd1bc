"""The ClickHouse audit store: one interface (``Store``), two engines (a server over HTTP, or chdb
embedded), versioned migrations, pure row mapping and the saved analytics queries.

Use :func:`store.dsn.open_store` to get a store from a DSN.
"""
