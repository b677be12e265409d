"""Getting one Redo call to a final outcome: retries, breakers, rate limit."""
