"""JKO minimizing movements: ALG2 (Benamou-Brenier, the dynamic reference), the entropic variant,
and the pointwise prox/projection kernels they share."""
