"""The literate demos: runnable scripts (`python3 -m fpjko.demos.double_well`, or `fpjko demo NAME`)."""
