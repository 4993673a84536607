"""The L-BFGS finish of the automatic schedule (``iterate(..., finish="lbfgs")``).

PIE's full-batch iteration is a gradient step on the amplitude misfit

    L(O, P) = sum_j sum_q (sqrt(sum_p |F{P_p o_j}|^2)(q) - sqrt(I_j(q)))^2,

with the object's step divided by ``gamma max S + (1 - gamma) S`` (``S`` the summed
illumination) and the probe's by ``beta max T + (1 - beta) T`` (``T`` the summed window
intensities). Near convergence such steps crawl along the directions where object and probe
trade places (most of all with several probe modes). The finish keeps that scaling as a fixed
preconditioner, ``x = (O sqrt(wO), P sqrt(wP))``, and runs limited-memory BFGS (Nocedal 1980) on
``L`` in ``x``, object and probe modes together, with a backtracking (Armijo) line search that
starts from the full quasi-Newton step. Its first step is the full-batch rPIE step; each later
one uses the curvature of the last ``HISTORY`` steps. This is the maximum-likelihood refinement
that often follows a projection algorithm (Thibault & Guizar-Sicairos 2012, with conjugate
gradients there), for the amplitude (variance-stabilised Poisson) likelihood.

Gradients are Wirtinger derivatives ``dL/dz*``; for the real inner product
``<u, v> = Re sum conj(u) v`` the real gradient is twice that, so the directional derivative
of ``L`` along ``d`` is ``2 <g, d>``.
"""

import math

from torchscope.backend import to_numpy, to_tensor
from torchscope.ptycho._engines import _power_sum

#: Pairs (step, gradient change) that L-BFGS remembers.
HISTORY = 10
#: Armijo's sufficient-decrease constant, and how many times the line search may halve a step.
ARMIJO = 1e-4
HALVINGS = 12


def _dot(a, b):
    """``Re <a, b>`` over a pair of tensors (object, probe) each: a 0-d tensor on their device
    (the two-loop recursion reads no number on the host)."""
    import torch

    return sum(torch.vdot(u.reshape(-1), v.reshape(-1)).real for u, v in zip(a, b))


class LBFGSFinish:
    """L-BFGS on the engine's object and probe modes (one ``step`` per iteration).

    ``engine`` is a ``_Engine``: its batches serve as chunks of the full-batch evaluation, its
    geometry (whole-pixel corners, sub-pixel Fourier ramps), scatter-add, patterns and mask are
    the forward model's. The engine's tensors hold the current estimate throughout.
    """

    def __init__(self, engine, state=None):
        self.engine = engine
        self.probe_free = engine.opts["alpha_probe"] > 0
        if state is None:
            self.w_obj, self.w_probe = self._preconditioner()
            self.pairs = []  # (s, y, 1 / <s, y>), s and y (object, probe) pairs in x
            self.converged = False
            self.f, self.grad = self._evaluate()
        else:
            def own(array):  # a copy: the state stays reusable (off the CPU one already)
                t = to_tensor(array, device=engine.dev)
                return t.clone() if t.device.type == "cpu" else t

            self.w_obj, self.w_probe = own(state["w_obj"]), own(state["w_probe"])
            self.pairs = [((own(so), own(sp)), (own(yo), own(yp)), own(rho))
                          for (so, sp), (yo, yp), rho in state["pairs"]]
            self.converged = state["converged"]
            self.f = state["f"]
            self.grad = (own(state["grad"][0]), own(state["grad"][1]))

    def state(self):
        def host(t):
            return to_numpy(t, copy=True)

        return {
            "w_obj": host(self.w_obj), "w_probe": host(self.w_probe),
            "pairs": [((host(so), host(sp)), (host(yo), host(yp)), host(rho))
                      for (so, sp), (yo, yp), rho in self.pairs],
            "converged": self.converged, "f": self.f,
            "grad": (host(self.grad[0]), host(self.grad[1])),
        }

    def _preconditioner(self):
        """sqrt of rPIE's denominators, summed over all windows: ``gamma max S + (1 - gamma) S``
        for the object, ``beta max T + (1 - beta) T`` for the probe."""
        e = self.engine
        torch = e.torch
        power = _power_sum(e.probe, 0, torch.empty_like(e.probe))  # sum_p |P_p|^2
        illum = torch.zeros(e.obj_shape, device=e.dev, dtype=e.real)
        windows = torch.zeros(e.win, device=e.dev, dtype=e.real)
        for g in range(len(e.batches)):
            ky, kx, _, _ = e._geometry(g)
            e._scatter_add(illum, ky, kx, power.expand(len(ky), *power.shape))
            crop = e.windows[ky, kx]
            windows += _power_sum(crop, 0, torch.empty_like(crop))
        gamma, beta = e.opts["gamma"], e.opts["beta"]
        w_obj = (illum * (1 - gamma) + gamma * illum.max()).sqrt_()
        w_probe = (windows * (1 - beta) + beta * windows.max()).sqrt_()
        return w_obj, w_probe

    def _evaluate(self):
        """The misfit ``L`` (host float) and its Wirtinger gradient in ``x`` at the engine's
        current object and probe."""
        e = self.engine
        torch = e.torch
        probe = e.probe
        e.err_parts = []
        g_obj = torch.zeros_like(e.obj)
        g_probe = torch.zeros_like(probe)
        for g in range(len(e.batches)):
            ky, kx, _, ramp_c = e._geometry(g)
            ws = e._workspace(len(ky))
            # the engine's forward model and equation 7: psi' - psi = -dL/dpsi*
            win = e._window(g, ws)
            diff = e._exit_corrections(g, win, ws)
            g_probe -= torch.linalg.vecdot(win[:, None], diff, dim=0)
            g_win = -(diff * probe.conj()).sum(1)
            if ramp_c is not None:
                g_win = torch.fft.ifft2(torch.fft.fft2(g_win) * ramp_c)
            e._scatter_add(g_obj, ky, kx, g_win)
        f = float(torch.stack(e.err_parts).sum())  # one host synchronisation per evaluation
        g_obj /= self.w_obj
        if self.probe_free:
            g_probe /= self.w_probe
        else:
            g_probe.zero_()
        return f, (g_obj, g_probe)

    def _direction(self):
        """L-BFGS's two-loop recursion: ``-H g``, with ``H`` from the remembered pairs."""
        q = [t.clone() for t in self.grad]
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * _dot(s, q)
            alphas.append(a)
            for qq, yy in zip(q, y):
                qq.addcmul_(yy, a, value=-1)
        if self.pairs:
            s, y, rho = self.pairs[-1]
            scale = 1.0 / (rho * _dot(y, y))  # <s, y> / <y, y>
            for qq in q:
                qq.mul_(scale)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            b = rho * _dot(y, q)
            for qq, ss in zip(q, s):
                qq.addcmul_(ss, a - b)
        return [qq.neg_() for qq in q]

    def _move(self, start, d, t):
        """Set the engine's estimate to ``start + t d`` (``d`` in x, mapped back to O and P)."""
        e = self.engine
        e.obj.copy_(start[0]).add_(d[0] / self.w_obj, alpha=t)
        if self.probe_free:
            e.probe.copy_(start[1]).add_(d[1] / self.w_probe, alpha=t)

    def step(self):
        """One L-BFGS iteration; returns the normalised misfit at the new estimate."""
        e = self.engine
        if not self.converged:
            d = self._direction()
            slope = 2.0 * float(_dot(self.grad, d))
            if not slope < 0:  # not a descent direction: forget the curvature
                self.pairs = []
                d = [-g for g in self.grad]
                slope = 2.0 * float(_dot(self.grad, d))
            start = (e.obj.clone(), e.probe.clone())
            t = 1.0
            for _ in range(HALVINGS):
                self._move(start, d, t)
                f, grad = self._evaluate()
                if math.isfinite(f) and f <= self.f + ARMIJO * t * slope:
                    break
                t *= 0.5
            else:  # no decrease along d: back to the start
                e.obj.copy_(start[0])
                e.probe.copy_(start[1])
                if not self.pairs:  # not even along the gradient: converged
                    self.converged = True
                self.pairs = []
                return self._error()
            s = [dd.mul_(t) for dd in d]
            y = [a - b for a, b in zip(grad, self.grad)]
            sy = _dot(s, y)
            if float(sy) > 0:  # keep the update positive definite
                self.pairs = (self.pairs + [(s, y, 1.0 / sy)])[-HISTORY:]
            self.f, self.grad = f, grad
        return self._error()

    def _error(self):
        """The normalised misfit at the current estimate, as the engine reports it: a tensor on
        its device (snapshots stack the errors of PIE and L-BFGS iterations together)."""
        return (self.f / self.engine.amp_norm).sqrt()  # on the device: no synchronisation
