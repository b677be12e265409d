"""The reliability suite (issue 10): many faults, an oracle of every expected Redo call, and
a published table (RELIABILITY.md)."""
