"""Graphon limits of SGD on symmetric matrices: the graphon gradient flow (flow.py) and the graphon
McKean-Vlasov family of reflected 1D Fokker-Planck equations (mckean_vlasov.py)."""
