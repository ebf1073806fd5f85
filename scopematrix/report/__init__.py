"""The compatibility report: a consumer of CellResult records, independent of pytest."""
