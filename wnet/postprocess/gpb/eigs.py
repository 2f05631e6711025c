"""The generalized eigenproblem of sPb, (D - W) v = lambda D v, solved coarse to fine.

The original calls MATLAB's ``eigs`` on the full-resolution problem, which takes minutes. Here:

* the same problem is written as the largest eigenvalues mu = 1 - lambda of the normalised
  affinity D^-1/2 W D^-1/2, with v = D^-1/2 y;
* a pyramid of mPb maps is built by 2x2 max pooling (a contour survives pooling) down to at
  most ``coarsest`` pixels, with the same affinity rule at every level;
* the coarsest level is solved directly (dense ``eigh``, or ARPACK), and its eigenvectors,
  upsampled bilinearly, start a block LOBPCG (:func:`block_eigs`, float32 with explicitly
  orthonormalised blocks) at the next finer level, up to full resolution (the idea of Maire & Yu, "Progressive multigrid eigensolvers for
  multiscale spectral segmentation", ICCV 2013). ``extra`` spare vectors speed convergence.

So the answer solves the full-resolution problem, only its start is approximate: on BSDS500
images 20 LOBPCG iterations per level recover the eigenvalues to about 1e-5 (they are 1e-4 to
2e-3). :func:`arpack_eigs` solves the same problem directly (slow; the reference in the tests).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from wnet.postprocess.gpb.spectral import affinities


def normalized(w: scipy.sparse.spmatrix) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """D^-1/2 W D^-1/2 (float32 CSR) and D^-1/2 (float64), D = diag(row sums of W)."""
    d = np.asarray(w.sum(axis=1)).ravel()
    if (d <= 0).any():
        raise ValueError("every pixel needs a positive degree (W must have a positive diagonal)")
    s = 1.0 / np.sqrt(d)
    a = scipy.sparse.diags(s) @ w.tocsr() @ scipy.sparse.diags(s)
    return a.tocsr().astype(np.float32), s


def _largest(a: scipy.sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs of a small symmetric matrix, largest first."""
    n = a.shape[0]
    if n <= 600:
        mu, y = scipy.linalg.eigh(a.toarray().astype(np.float64))
    else:
        v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: reproducible
        mu, y = scipy.sparse.linalg.eigsh(a.astype(np.float64), k=k, which="LA", v0=v0)
    order = np.argsort(-mu)[:k]
    return mu[order], y[:, order]


def arpack_eigs(w: scipy.sparse.spmatrix, n_vec: int, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """The n_vec smallest generalized eigenpairs, directly. Returns lambdas (n,) ascending, V (N, n)."""
    a, s = normalized(w)
    k = min(n_vec, a.shape[0] - 1)
    v0 = np.random.default_rng(0).standard_normal(a.shape[0])
    mu, y = scipy.sparse.linalg.eigsh(a.astype(np.float64), k=k, which="LA", v0=v0, tol=tol)
    order = np.argsort(-mu)
    return 1.0 - mu[order], y[:, order] * s[:, None]


def pool2(m: np.ndarray) -> np.ndarray:
    """2x2 max pooling, an odd last row / column kept. Shape: (H, W) -> (ceil(H/2), ceil(W/2))."""
    h, w = m.shape
    p = np.pad(m, ((0, h % 2), (0, w % 2)), mode="edge")
    return p.reshape(p.shape[0] // 2, 2, p.shape[1] // 2, 2).max(axis=(1, 3))


def _upsample(v: np.ndarray, coarse: tuple[int, int], fine: tuple[int, int]) -> np.ndarray:
    """Bilinear 2x upsampling of each column, cropped to the fine size. (Nc, k) -> (Nf, k)."""
    (hc, wc), (h, w) = coarse, fine
    out = [
        cv2.resize(c.reshape(hc, wc), (2 * wc, 2 * hc), interpolation=cv2.INTER_LINEAR)[:h, :w] for c in v.T
    ]
    return np.stack([o.ravel() for o in out], 1)


def _orthonormal(v: np.ndarray, *against: np.ndarray) -> np.ndarray:
    """Columns of v made orthogonal to the orthonormal blocks ``against``, then orthonormalised.

    Projection and SVQB (eigendecomposition of the Gram matrix) are each done twice, as float32
    needs; directions below 1e-5 of the largest are dropped, so the result may have fewer columns.
    """
    for _ in range(2):
        for q in against:
            v = v - q @ (q.T @ v)
        w, u = np.linalg.eigh((v.T @ v).astype(np.float64))
        keep = w > 1e-10 * max(w.max(), 1e-30)
        v = v @ (u[:, keep] / np.sqrt(w[keep])).astype(np.float32)
    return v


def block_eigs(a, x: np.ndarray, iters: int, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Largest eigenpairs of the symmetric a, refined from the block x by LOBPCG steps.

    Each step does the Rayleigh-Ritz projection on [X, R, P] (Ritz vectors, residuals, the
    previous update), every block explicitly orthonormalised (QR) so that float32 stays stable;
    stops early when every residual norm is below ``tol``.

    Shape:
        x: (N, m); returns mu (m,) descending and Y (N, m) orthonormal, float64.
    """
    x = _orthonormal(np.asarray(x, np.float32))
    m = x.shape[1]
    blocks, p, ax = [x], None, a @ x
    for it in range(iters + 1):
        s = np.concatenate(blocks, 1)
        as_ = np.concatenate([ax, *(a @ b for b in blocks[1:])], 1)
        h = (s.T @ as_).astype(np.float64)
        theta, q = np.linalg.eigh(0.5 * (h + h.T))
        top = q[:, ::-1][:, :m].astype(np.float32)  # Ritz vectors of the m largest Ritz values
        mu = theta[::-1][:m]
        if len(blocks) > 1:
            p = s[:, m:] @ top[m:]  # the part of the update outside span(X)
        x, ax = s @ top, as_ @ top
        r = ax - x * mu.astype(np.float32)[None, :]
        if it == iters or np.linalg.norm(r, axis=0).max() < tol:
            break
        blocks = [x, _orthonormal(r, x)]
        if p is not None:
            blocks.append(_orthonormal(p, *blocks))
    return mu.astype(np.float64), x.astype(np.float64)


def multigrid_eigs(
    mpb: np.ndarray,
    n_vec: int,
    radius: int,
    rho: float,
    extra: int = 7,
    iters: int = 20,
    coarsest: int = 4000,
) -> tuple[np.ndarray, np.ndarray]:
    """The n_vec smallest generalized eigenpairs of the affinities of ``mpb`` (module docstring).

    Returns:
        lambdas (n_vec,) ascending and vectors (H W, n_vec), D-orthonormal.
    """
    levels = [np.asarray(mpb, np.float64)]
    while levels[-1].size > coarsest and min(levels[-1].shape) > 2 * radius:
        levels.append(pool2(levels[-1]))
    k = min(n_vec + extra, levels[-1].size - 1)
    a, s = normalized(affinities(levels[-1], radius, rho))
    mu, y = _largest(a, k)
    v = y * s[:, None]
    for lvl in range(len(levels) - 2, -1, -1):
        v = _upsample(v, levels[lvl + 1].shape, levels[lvl].shape)
        a, s = normalized(affinities(levels[lvl], radius, rho))
        mu, y = block_eigs(a, v / s[:, None], iters)
        v = y * s[:, None]
    order = np.argsort(-mu)[:n_vec]
    return 1.0 - mu[order], v[:, order]
