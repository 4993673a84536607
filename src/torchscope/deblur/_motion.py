"""Random camera-shake blur kernels from Boracchi and Foi's trajectory model.

G. Boracchi and A. Foi, *Modeling the performance of image restoration from motion blur*,
IEEE Trans. Image Process. 21(8), 2012: the sensor follows a random path sampled at ``T``
instants with constant speed; at each step the velocity turns by a Gaussian random amount, is
pulled back towards the start (a centripetal term) and, with a small probability, jumps
towards the opposite direction (an abrupt shake). Four random numbers per trajectory set its
character: the anxiety (overall randomness), the centripetal pull, the Gaussian term and the
frequency of abrupt shakes, drawn in the ranges of the authors' code.

The kernel is the time the sensor spends over each pixel: the path is sampled densely and
each sample is spread bilinearly over its four neighbouring pixels.
"""

import numpy as np

from torchscope.deblur._checks import check_int, check_rng

_SAMPLES = 2000


def _trajectory(gen, samples):
    """A Boracchi-Foi random path of unit total length, as complex positions (x + i y)."""
    anxiety = 0.1 * gen.random()
    centripetal = 0.7 * gen.random()
    gaussian_term = 10.0 * gen.random()
    big_shakes = 0.2 * gen.random()
    step = 1.0 / (samples - 1)  # constant speed: the whole path has length 1

    v = np.exp(1j * 2 * np.pi * gen.random()) * step
    if anxiety > 0:
        v = v / step * anxiety
    shake = gen.random(samples - 1) < big_shakes * anxiety
    turn = np.exp(1j * (np.pi + gen.random(samples - 1) - 0.5))
    noise = gen.standard_normal(samples - 1) + 1j * gen.standard_normal(samples - 1)

    x = np.zeros(samples, dtype=np.complex128)
    for t in range(samples - 1):
        jump = 2 * v * turn[t] if shake[t] else 0.0
        v = v + jump + anxiety * (gaussian_term * noise[t] - centripetal * x[t]) * step
        v = v / abs(v) * step
        x[t + 1] = x[t] + v
    return x


def motion_kernel(size, *, rng=None):
    """A random camera-shake blur kernel (Boracchi and Foi 2012 trajectories).

    Parameters
    ----------
    size : int
        Side of the square kernel in pixels, odd. The paper's training kernels span 11 to 55;
        any odd size from 3 to 255 is accepted.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator; the same seed gives the same kernel.

    Returns
    -------
    numpy.ndarray of float64, shape (size, size)
        Non-negative, sums to 1, its trajectory centred in the square.

    Notes
    -----
    Boracchi and Foi fix the trajectory's total length, which leaves many of their kernels as
    small scribbles (the random turns make the path wander in place). Here the size sets the
    extent instead: the trajectory is scaled so that the longer side of its bounding box spans
    ``u * (size - 3)`` pixels, ``u`` uniform in [0.6, 1] (the margin keeps the bilinear
    spreading inside the square). So a kernel's size says how far the blur reaches, as for the
    kernels of Levin et al. used in the test sets.
    """
    size = check_int("size", size, 3, 255, odd=True)
    gen = check_rng(rng)
    path = _trajectory(gen, _SAMPLES)
    room = size - 3
    extent = max(np.ptp(path.real), np.ptp(path.imag))
    path = path * (room * gen.uniform(0.6, 1.0) / extent)
    # centre the bounding box on the centre pixel
    centre = (size - 1) / 2
    x = path.real - (path.real.min() + path.real.max()) / 2 + centre
    y = path.imag - (path.imag.min() + path.imag.max()) / 2 + centre

    kernel = np.zeros((size, size), dtype=np.float64)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(kernel, (y0 + dy, x0 + dx), wy * wx)
    return kernel / kernel.sum()
