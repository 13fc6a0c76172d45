"""Storage: engine and transactions (:mod:`.engine`), column types and tables."""
