"""Speed and accuracy benchmarks: each script prints a table and writes JSON (python3 -m benchmarks.NAME)."""
