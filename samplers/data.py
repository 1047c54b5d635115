"""Data sets for training networks by SGD (numpy only): scikit-learn's digits read from the file Debian's
python3-sklearn ships (no download, sklearn is not imported), any (X, y) a user gives (arrays or an .npz file),
a fixed seeded stratified train/test split, standardisation, and the projection on p principal components.

    data = digits()                                   # 1797 8x8 images, 10 classes: 1347 train / 450 test
    data = digits(classes=(0, 1), pca=1)              # two classes, projected on the first principal component
    data = from_arrays(X, y)                          # a user's data (e.g. MNIST from disk)
    data = from_npz("mnist.npz")                      # keys X (n, p) and y (n,)

Every check names the value: NaN or inf in X, X and y of different lengths, a label outside the classes, a
class left empty in a split.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """A train/test split of a classification or regression data set.

    Parameters
    ----------
    X_train : numpy.ndarray, shape (m, p)
        The training inputs (standardised with their mean and standard deviation when asked).
    y_train : numpy.ndarray, shape (m,)
        Class indices 0..C-1 (int), or real targets (float) for regression.
    X_test : numpy.ndarray, shape (k, p)
        The test inputs (standardised with the training part's statistics).
    y_test : numpy.ndarray, shape (k,)
    classes : tuple
        The original labels of the class indices (empty for regression).
    name : str
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple = ()
    name: str = "data"

    @property
    def p(self) -> int:
        """The number of inputs."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """C (0 for regression)."""
        return len(self.classes)

    def targets(self, y: np.ndarray, kind: str = "signs") -> np.ndarray:
        """Real targets of class indices for a square loss: 'signs' (two classes: -1, +1) or 'onehot' (C columns).

        Parameters
        ----------
        y : numpy.ndarray of int, shape (m,)
        kind : {'signs', 'onehot'}

        Returns
        -------
        numpy.ndarray, shape (m,) or (m, C)
        """
        if kind == "signs":
            if self.n_classes != 2:
                raise ValueError(f"signs are the targets of two classes, this data set has {self.n_classes}")
            return 2.0 * np.asarray(y, float) - 1.0
        return np.eye(self.n_classes)[np.asarray(y, int)]


def _check(X, y, what: str):
    X = np.asarray(X, float)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"{what}: X must be a non-empty (n, p) array, got shape {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"{what}: X has {len(X)} rows but y has shape {y.shape} (one label per row)")
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{what}: X[{i}, {j}] = {X[i, j]} is not finite")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        i = int(np.argmax(~np.isfinite(y)))
        raise ValueError(f"{what}: y[{i}] = {y[i]} is not finite")
    return X, y


def split(X, y, test_fraction: float = 0.25, seed: int = 0, classes=None, standardize: bool = True,
          pca: int | None = None, regression: bool = False, name: str = "data") -> Dataset:
    """A fixed, seeded train/test split (stratified by class), standardised, optionally projected.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
        Labels (classification) or real targets (regression=True).
    test_fraction : float
        In (0, 1).
    seed : int
        The split's seed (the same split on every rank and in every run).
    classes : sequence, optional
        The labels to keep, in the order of their class indices (default: every label, sorted). A label of y
        outside them is dropped; a class with no point in the train or the test part is an error.
    standardize : bool
        Centre and scale every input by the training part's mean and standard deviation (a constant input is
        centred only).
    pca : int, optional
        Project the (standardised) inputs on the training part's first pca principal components, each scaled to
        unit variance on the training part.
    regression : bool
        y is a real target: no classes, a random (unstratified) split.
    name : str

    Returns
    -------
    Dataset
    """
    X, y = _check(X, y, name)
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x5EED,)))
    if regression:
        y = y.astype(float)
        order = rng.permutation(len(X))
        k = int(round(test_fraction * len(X)))
        test, train = np.sort(order[:k]), np.sort(order[k:])
        labels = ()
        yi = y
    else:
        labels = tuple(sorted(np.unique(y).tolist())) if classes is None else tuple(classes)
        if len(labels) < 2:
            raise ValueError(f"{name}: a classification needs at least two classes, got {labels}")
        present = set(np.unique(y).tolist())
        missing = [c for c in labels if c not in present]
        if missing:
            raise ValueError(f"{name}: the classes {missing} have no point in y (labels present: {sorted(present)})")
        keep = np.isin(y, labels)
        X, y = X[keep], y[keep]
        yi = np.searchsorted(np.array(labels), y) if all(isinstance(c, (int, np.integer)) for c in labels) else \
            np.array([labels.index(v) for v in y])
        train, test = [], []
        for c in range(len(labels)):
            idx = rng.permutation(np.flatnonzero(yi == c))
            k = int(round(test_fraction * len(idx)))
            if k == 0 or k == len(idx):
                raise ValueError(f"{name}: class {labels[c]!r} has {len(idx)} points: it would be empty in the "
                                 f"{'test' if k == 0 else 'train'} part of a {test_fraction:g} split")
            test.append(idx[:k])
            train.append(idx[k:])
        train, test = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    Xtr, Xte = X[train], X[test]
    if standardize:
        mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    if pca is not None:
        k = int(pca)
        if not 1 <= k <= Xtr.shape[1]:
            raise ValueError(f"pca must be between 1 and the {Xtr.shape[1]} inputs, got {pca!r}")
        mu = Xtr.mean(axis=0)
        _, s, Vt = np.linalg.svd(Xtr - mu, full_matrices=False)
        Vt = Vt[:k] * np.sign(Vt[:k, :1] + 1e-300)             # a fixed sign per component
        scale = s[:k] / np.sqrt(len(Xtr))
        Xtr, Xte = (Xtr - mu) @ Vt.T / scale, (Xte - mu) @ Vt.T / scale
    return Dataset(Xtr, yi[train].astype(int) if not regression else yi[train],
                   Xte, yi[test].astype(int) if not regression else yi[test], labels, name)


def digits_path() -> str:
    """The digits file python3-sklearn ships (sklearn/datasets/data/digits.csv.gz), found without importing sklearn.

    Returns
    -------
    str
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn's digits need the package python3-sklearn (docker/packages.txt); "
                                "or give your own data with from_arrays / from_npz")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no digits data at {path!r}")
    return path


def digits(test_fraction: float = 0.25, seed: int = 0, classes=None, standardize: bool = True,
           pca: int | None = None) -> Dataset:
    """scikit-learn's handwritten digits: 1797 8x8 images (64 inputs, grey levels 0..16), 10 classes.

    Parameters
    ----------
    test_fraction, seed, classes, standardize, pca
        As for split.

    Returns
    -------
    Dataset
    """
    with gzip.open(digits_path(), "rt") as fh:
        raw = np.loadtxt(fh, delimiter=",")
    return split(raw[:, :-1], raw[:, -1].astype(int), test_fraction, seed, classes, standardize, pca,
                 name="digits" if classes is None else f"digits {'/'.join(map(str, classes))}")


def from_arrays(X, y, **kw) -> Dataset:
    """A user's data: split as `split` does (keywords as there).

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    **kw
        split's keywords.

    Returns
    -------
    Dataset
    """
    return split(X, y, **kw)


def from_npz(path: str, **kw) -> Dataset:
    """A data set from an .npz file holding X (n, p) and y (n,) (e.g. MNIST flattened to 784 inputs).

    Parameters
    ----------
    path : str
    **kw
        split's keywords.

    Returns
    -------
    Dataset
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z.files or "y" not in z.files:
                raise ValueError(f"{path!r} must hold the arrays X (n, p) and y (n,), it holds {z.files}")
            X, y = z["X"], z["y"]
    except (OSError, EOFError) as e:
        raise OSError(f"cannot read the data file {path!r}: {e}") from None
    return split(X.reshape(len(X), -1), y, name=kw.pop("name", os.path.basename(path)), **kw)
