"""JKO minimizing movement rho_{k+1} = argmin W2^2(rho, rho_k) / (2 tau) + F(rho) by ALG2.

The step is solved in its dynamic (Benamou-Brenier) form on the space-time cylinder
Omega x [0, 1] (meshes.space_time), following the augmented-Lagrangian method ALG2 of Benamou,
Carlier and Laborde (2016). Scaled by tau, the step is

  min_{rho, m} int_0^1 int |m|^2 / (2 rho) + tau F(rho(1))   s.t.  d_t rho + div m = 0, rho(0) = rho_k,

whose dual is a problem in a space-time potential phi; with Lambda phi = (grad_{x,t} phi, -phi(1))
and multipliers (mu = (m, rho), rho_1) the iteration is
  1. phi:  r int int grad phi . grad v + r int_{t=1} phi v
             = int int (r q - mu) . grad v + int_{t=1} (rho_1 - r p) v - int_{t=0} rho_k v   (one LU)
  2. q  = projection of grad phi + mu / r onto {a + |b|^2 / 2 <= 0} (a = d_t, b = grad_x), pointwise;
     rho_1 = prox of r tau F at r (-phi(1) + rho_1 / r), p = -phi(1) + (rho_1_old - rho_1) / r
  3. mu += r (grad phi - q).
rho_1 >= 0 by construction, and the mass is that of rho_k to round-off (imposed in the prox).
Stopping test: the L1 change of rho_1 over the last 10 iterations, relative to the L1 size of the step
||rho_1 - rho_k||_1, is <= tol (default 1e-4; measured on the 1D OU step of tests/test_jko.py: 1e-4 after
about 300 iterations, when rho_1 is within 7% of ALG2's converged discretisation error; the change levels off
near 1e-5, so tol much below that is not reached). The pointwise residuals used before (grad phi - q, the
multiplier's change) level off at 1e-4..1e-3 where rho vanishes and never met their test.
F = int f rho + beta^-1 int rho log rho + c_m int rho^m / (m - 1) + 1/2 iint W(x - y) rho rho. The
interaction is treated exactly: the prox of the terminal density solves
rho + r tau (f + W * rho + ...) = c + lambda by an inner fixed point on W * rho (a contraction for
r tau |W| small; warm-started from the previous ALG2 iteration, so usually one or two passes), with
W * rho the lumped quadrature sum over the top-face nodes (blockwise, fpjko.solvers.fokker_planck.interaction).
phi is P2 (or P1), mu and q are discontinuous P1 (P0) vectors, the densities P1.
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.la
import dolfinx.mesh
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko import meshes
from fpjko.solvers.core import linear, validation
from fpjko.solvers.core.compat import expression, interpolation_points, petsc_vec
from fpjko.solvers.core import moments
from fpjko.solvers.fokker_planck.interaction import KernelInteraction, PolynomialInteraction, as_interaction, check_even, kernel_sum
from fpjko.solvers.fokker_planck.interaction import fingerprint as interaction_fingerprint
from fpjko.solvers.jko.pointwise import project_parabola, prox_energy
from fpjko.solvers.core.protocol import DensitySolver
from fpjko.common.warn import warn


WINDOW = 10        # ALG2 iterations between two checks of the stopping test
# the step's history values before any step (set_initial, and a restored state)
NO_STEP_INFO = {"w2": 0.0, "inner_iterations": 0, "residual": 0.0, "energy_decrease": math.nan}


class JKOSolver(DensitySolver):
    """JKO steps by ALG2 on a space-time mesh Omega x [0, 1] (the module doc).

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        The space-time cylinder, time the last coordinate on [0, 1]: meshes.space_time(comm, lower, upper, h, nt)
        builds it (meshes.space_time_of(spatial_mesh, nt) from a box mesh of Omega).
    tau : float
        The JKO step.
    potential : callable, optional
        f(x), x of shape (3, n), numpy.
    beta, m, cm : float, optional
        Entropy beta^-1 int rho log rho and porous-medium term cm int rho^m / (m - 1).
    interaction : optional
        A polynomial or kernel interaction W(x - y).
    degree : int
        Degree of the potential phi (q and mu are DG of degree - 1).
    r, tol, max_iter : float, float, int
        The augmented-Lagrangian parameter, the stopping test (change of rho_1 over WINDOW iterations relative to
        the step) and the iteration cap.
    petsc_options : dict, optional
        Options of the space-time Poisson solve (under the prefix; the command line wins).
    inner_tol, inner_max : float, int
        The fixed point on W * rho inside each proximal step: its tolerance and pass cap.
    prefix : str, optional
        PETSc options prefix of the space-time Poisson solve (default 'alg2_').

    Notes
    -----
    History: the core keys (iterations: ALG2 iterations) and interaction_energy, w2, inner_iterations,
    min_rho, residual, energy_decrease.
    """

    default_mass_tol = 1e-6
    label = "JKO steps (ALG2)"
    default_prefix = "alg2_"
    extra_keys = ("interaction_energy", "w2", "inner_iterations", "min_rho", "residual", "energy_decrease")
    step_name = "tau"

    def __init__(self, mesh, tau: float, potential=None, beta: float | None = None, m: float | None = None,
                 cm: float = 1.0, interaction=None, degree: int = 2, r: float = 0.3, tol: float = 1e-4,
                 max_iter: int = 3000, petsc_options: dict | None = None, inner_tol: float = 1e-12,
                 inner_max: int = 100, prefix: str | None = None):
        self._init_protocol(mesh.comm, prefix, locals())
        self.tau = validation.positive_number("tau", tau)
        self.r = validation.positive_number("r", r)
        self.eps = 1.0 / validation.positive_number("beta", beta) if beta is not None else 0.0
        if m is not None and not validation.number("m", m) > 1:
            raise ValueError(f"porous-medium exponent must be > 1, got m={m}")
        if self.eps == 0.0 and m is None:
            raise ValueError("F needs an entropy (beta) or a porous-medium term (m)")
        cm = validation.positive_number("cm", cm)
        tol = validation.number("tol", tol, nonnegative=True)       # 0: always max_iter iterations
        max_iter = validation.integer("max_iter", max_iter, 1)
        degree = validation.integer("degree", degree, 1)
        inner_tol = validation.positive_number("inner_tol", inner_tol)
        inner_max = validation.integer("inner_max", inner_max, 1)
        self.m, self.cm, self.tol, self.max_iter = m, cm, tol, max_iter
        meshes.check_space_time(mesh)
        self.mesh = msh = mesh
        self._fp = {"beta": beta, "m": m, "cm": cm, "degree": degree, "r": self.r, "tol": tol, "max_iter": max_iter,
                    "inner_tol": inner_tol, "inner_max": inner_max,
                    "interaction": interaction_fingerprint(as_interaction(interaction, msh.geometry.dim - 1),
                                                           msh.geometry.dim - 1),
                    "num_vertices": msh.topology.index_map(0).size_global}
        self.d = msh.geometry.dim - 1
        tdim = msh.topology.dim
        self.P = dolfinx.fem.functionspace(msh, ("Lagrange", degree))
        self.Q = dolfinx.fem.functionspace(msh, ("DG", degree - 1, (self.d + 1,)))
        self.R = dolfinx.fem.functionspace(msh, ("Lagrange", 1))
        fdim = tdim - 1
        msh.topology.create_connectivity(fdim, tdim)
        top = dolfinx.mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[self.d], 1.0))
        bot = dolfinx.mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[self.d], 0.0))
        facets = np.concatenate([top, bot])
        tags = np.concatenate([np.full(len(top), 1, np.int32), np.full(len(bot), 2, np.int32)])
        order = np.argsort(facets)
        mt = dolfinx.mesh.meshtags(msh, fdim, facets[order], tags[order])
        self.ds = ufl.Measure("ds", domain=msh, subdomain_data=mt)
        self.top = dolfinx.fem.locate_dofs_topological(self.R, fdim, top)
        self.bot = dolfinx.fem.locate_dofs_topological(self.R, fdim, bot)
        X = self.R.tabulate_dof_coordinates()[:, : self.d]
        self._xR = X
        self.n_owned_R = self.R.dofmap.index_map.size_local

        # potential at the P1 nodes
        self._potential = potential
        self.f = (np.asarray(potential(np.vstack([X.T, np.zeros((3 - self.d, len(X)))])), float)
                  if potential is not None else np.zeros(len(X)))
        if self.f.shape == ():
            self.f = np.full(len(X), float(self.f))
        inter = as_interaction(interaction, self.d)
        check_even(inter, self.d, self.comm)
        self.W = _numpy_kernel(inter)
        self.inner_tol, self.inner_max = inner_tol, inner_max

        self.phi = dolfinx.fem.Function(self.P, name="phi")
        self.q, self.mu = dolfinx.fem.Function(self.Q), dolfinx.fem.Function(self.Q)
        self.rho0, self.rho1, self.p = (dolfinx.fem.Function(self.R, name=n) for n in ("rho_k", "rho", "p"))
        self.phiR = dolfinx.fem.Function(self.R)
        self._w = dolfinx.fem.Function(self.Q)
        rr = dolfinx.fem.Constant(msh, self.r)
        u, v = ufl.TrialFunction(self.P), ufl.TestFunction(self.P)
        A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(rr * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
                                                               + rr * u * v * self.ds(1)))
        A.assemble()
        self._A = A
        self._ksp = linear.make_ksp(A, self.prefix, petsc_options)
        self._L = dolfinx.fem.form(ufl.inner(rr * self.q - self.mu, ufl.grad(v)) * ufl.dx
                                   + (self.rho1 - rr * self.p) * v * self.ds(1) - self.rho0 * v * self.ds(2))
        self._b = dolfinx.fem.petsc.create_vector(self._L)
        self._wexpr = expression(ufl.grad(self.phi) + self.mu / rr, self.Q)
        # functionals of the density at t = 1 (and of rho_k at t = 0)
        self._fR = dolfinx.fem.Function(self.R)
        self._fR.x.array[:] = self.f
        rho = self.rho1
        energy = self._fR * rho
        if self.eps:
            energy += self.eps * ufl.conditional(ufl.gt(rho, 0), rho * ufl.ln(ufl.max_value(rho, 1e-300)), 0)
        if m is not None:
            energy += cm * ufl.max_value(rho, 0) ** m / (m - 1)
        self._F = dolfinx.fem.form(energy * self.ds(1))
        self._mass1 = dolfinx.fem.form(self.rho1 * self.ds(1))
        self._mass0 = dolfinx.fem.form(self.rho0 * self.ds(2))
        gx = ufl.as_vector([self.phi.dx(i) for i in range(self.d)])
        self._action = dolfinx.fem.form(ufl.max_value(self.mu[self.d], 0) * ufl.inner(gx, gx) * ufl.dx)
        self._step_info = {}
        mw = dolfinx.fem.assemble_vector(dolfinx.fem.form(ufl.TestFunction(self.R) * self.ds(1)))
        mw.scatter_reverse(dolfinx.la.InsertMode.add)
        self._mw = mw.array[self.top].copy()
        self._top_owned = self.top < self.n_owned_R
        self._xtop = self._xR[self.top]

    # ------------------------------------------------------------------ helpers
    def _sum(self, form) -> float:
        return self.comm.allreduce(dolfinx.fem.assemble_scalar(form), op=MPI.SUM)

    def _face_values(self, dofs, values):
        """Gather (x, value) of the given local face dofs (owned) over all ranks, keyed by x."""
        own = dofs[dofs < self.n_owned_R]
        keys = np.round(self._xR[own], 10)
        parts = self.comm.allgather((keys, values[own]))
        table = {}
        for k, vv in parts:
            for key, val in zip(map(tuple, k), vv):
                table[key] = val
        return table

    def _extend(self, table, dofs=None) -> np.ndarray:
        """Values for all (or the given) R dofs from a table keyed by spatial coordinates."""
        idx = np.arange(len(self._xR)) if dofs is None else dofs
        keys = map(tuple, np.round(self._xR[idx], 10))
        return np.array([table[k] for k in keys])

    def mass(self) -> float:
        """The mass of the current density on the top face (summed over ranks).

        Returns
        -------
        float
        """
        return self._sum(self._mass1)

    def free_energy(self) -> float:
        """F(rho_1) of the current density (summed over ranks).

        Returns
        -------
        float
        """
        return self._sum(self._F) + self.interaction_energy()

    def interaction_energy(self) -> float:
        """1/2 sum_i w_i rho_i (W * rho)_i over the top-face nodes (lumped weights w_i = int phi_i).

        Returns
        -------
        float
        """
        if self.W is None:
            return 0.0
        rho = self.rho1.x.array[self.top]
        own = self._top_owned
        return 0.5 * self.comm.allreduce(float(np.sum(self._mw[own] * rho[own] * self._convolve(rho)[own])))

    def _convolve(self, rho_top: np.ndarray) -> np.ndarray:
        """(W * rho)(x_i) = sum_j W(x_i - x_j) w_j rho_j for the local top-face dofs, the sum over the
        owned top-face nodes of all ranks (each node once)."""
        own = self._top_owned
        parts = self.comm.allgather((self._xtop[own], self._mw[own] * rho_top[own]))
        src = np.concatenate([p[0] for p in parts])
        wts = np.concatenate([p[1] for p in parts])
        return kernel_sum(self._xtop, src, wts, self.W)

    # ------------------------------------------------------------------ set-up
    def _set_initial(self, rho0, normalize: bool = False, mass_tol: float = 1e-6) -> None:
        X3 = np.vstack([self._xR.T, np.zeros((3 - self.d, len(self._xR)))])
        vals = np.asarray(rho0(X3) if callable(rho0) else rho0, float)
        self.rho0.x.array[:] = np.broadcast_to(vals, (len(self._xR),))
        own = slice(0, self.n_owned_R)
        validation.finite_field(self.comm, self.rho0.x.array[own], X3.T[own], "initial density")
        if normalize:
            mass = self._sum(self._mass0)
            if not mass > 0:
                raise ValueError(f"cannot normalise the initial density: its mass is {mass!r}")
            self.rho0.x.array[:] /= mass
        validation.check_density(self.comm, self.rho0.x.array[own], X3.T[own], self._sum(self._mass0),
                                 "initial density", mass_tol, neg_tol=0.0)
        self._reset_mu()
        self._M = self._sum(self._mass0)
        self._lam = 0.0
        self._fR.x.array[:] = self.f
        self._step_info = dict(NO_STEP_INFO)

    def _measure(self) -> dict:
        return {"mass": self.mass(), "energy": self.free_energy(), "interaction_energy": self.interaction_energy(),
                "min_rho": self.comm.allreduce(float(self.rho1.x.array[self.top].min(initial=np.inf)), op=MPI.MIN),
                **self._step_info}

    def _functions(self) -> dict:
        return {"rho_k": self.rho0, "rho": self.rho1, "p": self.p, "phi": self.phi, "q": self.q, "mu": self.mu}

    def _state(self) -> dict:
        return {"scalars": {"M": self._M, "lam": self._lam}}

    def _restore(self, state: dict) -> None:
        self._M, self._lam = float(state["scalars"]["M"]), float(state["scalars"]["lam"])
        self._step_info = dict(NO_STEP_INFO)

    def _fingerprint(self) -> dict:
        if getattr(self, "_potential_fp", None) is None:     # sum f, f^2, f x_k over the owned P1 nodes, once
            own = self.n_owned_R
            self._potential_fp = moments.nodal(self.f[:own], np.ones(own), self._xR[:own], self.comm)
        return {**self._fp, "potential_moments": self._potential_fp}

    def _release(self) -> None:
        self._ksp.destroy()
        self._A.destroy()

    def _reset_mu(self):
        """mu = (0, rho_k) constant in time (the trivial path), as the multiplier's first guess."""
        # rho_k lives on the bottom face; extend it constant in t (also the first guess of rho_1)
        self.rho0.x.array[:] = self._extend(self._face_values(self.bot, self.rho0.x.array))
        self.rho1.x.array[:] = self.rho0.x.array
        comps = [dolfinx.fem.Constant(self.mesh, 0.0)] * self.d + [self.rho0]
        self.mu.interpolate(dolfinx.fem.Expression(ufl.as_vector(comps), interpolation_points(self.Q.element)))
        self.q.x.array[:] = 0.0
        self.p.x.array[:] = 0.0

    # ------------------------------------------------------------------ one step
    def _advance(self) -> dict:
        """One ALG2 JKO step (Solver.step)."""
        r, rt = self.r, self.r * self.tau
        ftop = self.f[self.top]
        dim = self.d + 1
        b = self._b
        it, change, inner = 0, math.inf, 0
        snap = None
        own = self._top_owned
        rk_top = self.rho0.x.array[self.top]
        for it in range(1, self.max_iter + 1):
            with b.localForm() as loc:
                loc.set(0.0)
            dolfinx.fem.petsc.assemble_vector(b, self._L)
            b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            linear.solve(self._ksp, b, petsc_vec(self.phi), "JKO potential (space-time Poisson)")
            self.phi.x.scatter_forward()
            # q and mu, pointwise at the DG nodes
            self._w.interpolate(self._wexpr)
            w = self._w.x.array.reshape(-1, dim)
            qa, qb = project_parabola(w[:, self.d], w[:, : self.d])
            qv = np.column_stack([qb, qa])
            self.q.x.array[:] = qv.ravel()
            self.mu.x.array[:] = (r * (w - qv)).ravel()       # mu + r (grad phi - q)
            # terminal density: prox of r tau F
            self.phiR.interpolate(self.phi)
            z = -self.phiR.x.array[self.top] + self.rho1.x.array[self.top] / r
            old = self.rho1.x.array[self.top].copy()
            new, k = self._prox(r * z, ftop, rt, old)
            inner += k
            self.p.x.array[self.top] = z - new / r
            self.rho1.x.array[self.top] = new
            if it % WINDOW == 0:
                # the stopping test: the L1 change of rho_1 over the last WINDOW iterations relative to the L1
                # size of the step (at least 1e-3 of the mass). ALG2's pointwise residuals (grad phi - q,
                # the multiplier's change) level off at 1e-4..1e-3 where rho vanishes, while rho_1 converges
                if snap is not None:
                    loc = np.array([float(self._mw[own] @ np.abs(new - snap)[own]),
                                    float(self._mw[own] @ np.abs(new - rk_top)[own])])
                    dif, size = self.comm.allreduce(loc, op=MPI.SUM)
                    change = dif / max(size, 1e-3 * self._M)
                    if change <= self.tol:
                        break
                snap = new.copy()
        if not np.all(np.isfinite(self.rho1.x.array[self.top])):
            raise FloatingPointError(f"ALG2 diverged in JKO step {self.steps + 1} (tau={self.tau}, r={self.r})")
        F_old = self.history["energy"][-1]
        w2 = math.sqrt(max(self._sum(self._action), 0.0))
        # move rho_1 to the bottom face: the next step starts from it
        tab = self._face_values(self.top, self.rho1.x.array)
        self.rho0.x.array[:] = self._extend(tab)
        converged = change <= self.tol
        self._step_info = {"w2": w2, "inner_iterations": inner, "residual": change,
                           "energy_decrease": F_old - self.free_energy()}
        return {"converged": bool(converged), "iterations": it,
                "why": None if converged else f"the change of rho_1 over {WINDOW} iterations is {change:.3e} of the "
                                              f"step > tol={self.tol:g} after max_iter={self.max_iter} ALG2 iterations"}

    def _prox_fixed_mass(self, c, ftop, rt):
        """The prox with the mass of rho_k imposed: rho_i = prox(c_i + lam), the scalar lam found by
        safeguarded Newton on sum_i w_i rho_i = M (the exact minimiser has this mass anyway; imposing it
        keeps every iterate, hence every step, mass-conserving to round-off)."""
        own = self._top_owned
        w = self._mw
        M = self._M
        kw = dict(eps=self.eps, m=self.m, cm=self.cm)

        def mass_and_slope(lam):
            rho = prox_energy(c + lam, ftop, rt, **kw)
            if self.eps:
                # d rho / d lam from rho + rt (eps log rho + cm m/(m-1) rho^(m-1)) = c + lam
                drho = rho / (rho + rt * self.eps + (rt * self.cm * self.m * rho ** (self.m - 1) if self.m else 0.0))
            else:
                drho = (rho > 0) / (1.0 + rt * self.cm * self.m * np.maximum(rho, 0) ** (self.m - 2))
            loc = np.array([np.dot(w[own], rho[own]), np.dot(w[own], drho[own])])
            return rho, self.comm.allreduce(loc, op=MPI.SUM)

        lam, lo, hi = self._lam, -np.inf, np.inf
        for _ in range(100):
            rho, (mass, slope) = mass_and_slope(lam)
            g = mass - M
            if abs(g) <= 1e-14 * M:
                break
            if g > 0:
                hi = lam
            else:
                lo = lam
            step = -g / slope if slope > 0 else (-1.0 if g > 0 else 1.0)
            new = lam + step
            if not (lo < new < hi):
                if np.isfinite(lo) and np.isfinite(hi):
                    new = 0.5 * (lo + hi)
                else:
                    new = lam + 2 * step if step else lam + 1.0
            lam = new
        self._lam = lam
        return rho

    def _prox(self, c, ftop, rt, guess):
        """The prox with the interaction: rho = prox_fixed_mass(c, f + W * rho), by fixed-point passes
        from `guess` until the relative change is <= inner_tol; returns (rho, passes)."""
        if self.W is None:
            return self._prox_fixed_mass(c, ftop, rt), 0
        rho = guess
        for k in range(1, self.inner_max + 1):
            new = self._prox_fixed_mass(c, ftop + self._convolve(rho), rt)
            scale = self.comm.allreduce(float(np.abs(new).max(initial=0.0)), op=MPI.MAX)
            change = self.comm.allreduce(float(np.abs(new - rho).max(initial=0.0)), op=MPI.MAX)
            rho = new
            if change <= self.inner_tol * scale:
                return rho, k
        raise RuntimeError(f"JKO step {self.steps + 1}: the interaction fixed point did not converge in "
                           f"{self.inner_max} passes (last change {change / scale:.3e}); r tau |W| is too large: "
                           f"reduce tau={self.tau} or r={self.r}")

    def density(self):
        """The current density on the top face, gathered from every rank and sorted.

        Returns
        -------
        x : numpy.ndarray, shape (n, d)
        rho : numpy.ndarray, shape (n,)
        """
        tab = self._face_values(self.top, self.rho1.x.array)
        xs = np.array(list(tab.keys()))
        vals = np.array(list(tab.values()))
        order = np.lexsort(xs.T[::-1])
        return xs[order], vals[order]


def _numpy_kernel(W):
    """The numpy W(z), z (..., d) -> (...), of an interaction (None for none)."""
    if W is None:
        return None
    if isinstance(W, PolynomialInteraction):
        return W
    if isinstance(W, KernelInteraction):
        return W.W
    raise ValueError(f"JKOSolver takes a polynomial or kernel interaction W(x - y), got {type(W).__name__}")
