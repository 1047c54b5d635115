"""Mean-field PDEs assembled from the Fokker-Planck and transport solvers: the two-layer network's
limit in parameter space (network), and the Desai-Zwanzig phase transition's reference values
(desai_zwanzig, numpy only)."""
