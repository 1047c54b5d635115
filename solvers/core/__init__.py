"""Shared pieces every solver uses: dolfinx compat, input validation, KSP set-up, functionals, exact solutions."""
