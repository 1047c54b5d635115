"""Demos: runnable scripts (python3 -m fpjko.demos.NAME) and the `fpjko` command."""
