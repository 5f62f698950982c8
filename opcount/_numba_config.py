"""Compilation flags of opcount's numba kernels, in one place.

``cache=True`` stores compiled kernels next to the source (or in numba's user cache when that is
not writable), so a warm ``tosim score`` pays no compile time. ``fastmath`` stays off: results
must match the plain-numpy reference to 1e-12 relative, so the summation order is left alone.
"""
NJIT = dict(cache=True, nogil=True, fastmath=False)
NJIT_PARALLEL = dict(NJIT, parallel=True)
#: Small helpers called from inside the sweep kernels: inlined at the numba IR level, because a
#: call that shares reference-counted arrays made the MLP sweep about 10x slower.
NJIT_INLINE = dict(NJIT, inline="always")
