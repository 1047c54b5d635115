"""Demos: runnable scripts (python3 -m demos.NAME) and the `fpjko` command."""
