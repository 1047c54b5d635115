"""Output (VTX/XDMF series, PNGs) and checkpoint/resume."""
