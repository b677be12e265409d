"""The stages a fetched record passes, from decode to done."""
