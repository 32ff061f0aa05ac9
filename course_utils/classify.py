"""Linear SVMs trained the way the paper trains them, on images that may have several views.

* Multi-label data (VOC objects, attributes): one-vs-rest, one binary SVM per label column.
* Mutually exclusive classes (MIT-67, CUB, Flowers): one-vs-one with voting (the paper's choice) or one-vs-rest.
* Views: features shaped ``(N, V, D)`` make every view a training sample carrying its image's label; at test time
  the SVM scores of an image's views are summed (the paper's choice) or their maximum is taken.
* Solver: liblinear through scikit-learn's ``LinearSVC`` (primal when training vectors outnumber dimensions, as the
  paper's CNNaug-SVM did), or ``solver="torch"``: the same squared-hinge objective minimised by a batched Newton
  method on CPU or GPU, many binary problems at once (all one-vs-rest classes; one-vs-one pairs by class groups).
* C: :func:`select_C` cross-validates on the training split only, folds splitting whole images (all views
  together); the values the paper reports are in each dataset's record
  (``course_utils.datasets.specs.get(name).paper.C``).

The exact rules (how view sums meet voting, tie breaks, the objective) are in ``docs/protocols.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from .metrics import average_precision, mean_class_accuracy
from .normalize import check_features, check_n_features, is_positive_number

if TYPE_CHECKING:
    import torch

# A decade grid through both of the paper's values.
DEFAULT_CS: tuple[float, ...] = (0.02, 0.2, 2.0, 20.0)
# C when the training images are too few to cross-validate (see cv_shortfall): the paper's value for its single-label
# datasets (MIT-67, CUB, Flowers), the kind of data a small folder of one's own photos is.
FALLBACK_C = 2.0

MULTICLASS_STRATEGIES = ("ovr", "ovo")
AGGREGATES = ("sum", "max")
SOLVERS = ("liblinear", "torch")
LOSSES = ("squared_hinge", "hinge")

# Upper bound on the elements of one (vectors x problems) score block, so that scoring 19,900 one-vs-one pairs
# on 16 views of thousands of images, or training many pairs with the torch solver, stays within a few hundred MB.
_BLOCK_ELEMENTS = 1 << 24
# The torch solver stops at a gradient this much smaller than liblinear's rule asks for: liblinear's last Newton step
# usually lands far inside its tolerance, and stopping right at the rule leaves weights ~0.5% away from its answer.
_TORCH_TOL_FACTOR = 0.01


def use_dual(n_vectors: int, n_features: int, loss: str = "squared_hinge") -> bool:
    """Whether liblinear should solve the dual: only when vectors do not outnumber dimensions (or for hinge loss,
    which liblinear solves only in the dual). The primal's cost grows with dimensions, the dual's with vectors."""
    return loss == "hinge" or n_vectors <= n_features


class LinearSVMClassifier(ClassifierMixin, BaseEstimator):
    """Linear SVMs on ``(N, D)`` or ``(N, V, D)`` features; labels ``(N,)`` classes or ``(N, K)`` 0/1 columns.

    Parameters
    ----------
    C : float
        Weight of the training loss against ``||w||^2 / 2`` (the paper's values: each dataset record's ``paper.C``; :func:`select_C`).
    multiclass : ``"ovr"`` or ``"ovo"``
        For single-label data with more than two classes: one SVM per class against the rest (highest score
        wins) or one per pair of classes with voting. Multi-label ``y`` always uses one SVM per column.
    aggregate : ``"sum"`` or ``"max"``
        How an image's view scores combine at test time. For one-vs-one, ``"max"`` keeps, per pair, the view
        value of largest magnitude (a plain maximum would always favour the pair's first class).
    solver : ``"liblinear"`` or ``"torch"``
        ``"torch"`` minimises the same squared-hinge objective as liblinear's primal solver (bias included in the
        regulariser) with a batched Newton-CG method; it is faster for one-vs-rest and multi-label training and
        can use a GPU. One-vs-one pairs are solved in blocks of class groups (:func:`ovo_column_blocks`); on a
        CPU, liblinear is usually the better choice for one-vs-one with many classes.
    loss : ``"squared_hinge"`` (liblinear's primal, CNNaug-SVM) or ``"hinge"`` (the paper's eq. 1, liblinear dual).
    tol, max_iter : stopping rule of either solver.
    random_state : seed of liblinear's dual coordinate descent (the primal and the torch solver are deterministic).
    device : torch device for ``solver="torch"`` (default: :func:`course_utils.config.device`).

    Attributes
    ----------
    classes_ : class labels (single-label) or column indices (multi-label).
    coef_, intercept_ : ``(P, D)`` float32 and ``(P,)``, one row per binary problem: the positive class for
        binary data, each class (ovr), each label column (multi-label) or each pair of :attr:`pairs_` (ovo,
        positive = the pair's first class).
    pairs_ : ``(P, 2)`` class indices of each one-vs-one pair, or ``None`` for the other strategies.
    task_ : ``"binary"``, ``"multiclass"`` or ``"multilabel"``.

    ``aggregate`` is read at test time only, so it can be switched on a fitted model to compare sum and max.
    n_features_in_, n_views_ : feature width and views per training image.
    """

    def __init__(
        self,
        C: float = 1.0,
        multiclass: str = "ovr",
        aggregate: str = "sum",
        solver: str = "liblinear",
        loss: str = "squared_hinge",
        tol: float = 1e-4,
        max_iter: int = 1000,
        random_state: int | None = 0,
        device: str | None = None,
    ) -> None:
        self.C = C
        self.multiclass = multiclass
        self.aggregate = aggregate
        self.solver = solver
        self.loss = loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ training
    def fit(self, X: object, y: object) -> LinearSVMClassifier:
        """Train on every view of every image (each view carries its image's label)."""
        self._check_params()
        array = check_features(X)
        if y is None:
            raise ValueError("LinearSVMClassifier requires y to be passed, but the target y is None.")
        targets = self._encode_targets(np.asarray(y), array.shape[0])
        n_views = 1 if array.ndim == 2 else array.shape[1]
        rows = array.reshape(-1, array.shape[-1])
        targets = np.repeat(targets, n_views, axis=0)  # rows are image-major: image i owns rows i*V .. i*V+V-1
        if self.solver == "torch":
            blocks = None if self.pairs_ is None else ovo_column_blocks(self.pairs_)
            coef, intercept = _fit_squared_hinge_torch(
                rows, targets, self.C, self.tol, self.max_iter, self.device, blocks
            )
        else:
            coef, intercept = self._fit_liblinear(rows, targets)
        self.coef_ = np.asarray(coef, dtype=np.float32)
        self.intercept_ = np.asarray(intercept, dtype=np.float32)
        self.n_features_in_ = array.shape[-1]
        self.n_views_ = n_views
        return self

    def _check_params(self) -> None:
        for name, value, allowed in (
            ("multiclass", self.multiclass, MULTICLASS_STRATEGIES),
            ("aggregate", self.aggregate, AGGREGATES),
            ("solver", self.solver, SOLVERS),
            ("loss", self.loss, LOSSES),
        ):
            if value not in allowed:
                raise ValueError(f"LinearSVMClassifier: {name} must be one of {allowed}; got {value!r}.")
        if not is_positive_number(self.C):
            raise ValueError(f"LinearSVMClassifier: C must be a finite number > 0; got {self.C!r}.")
        if self.solver == "torch" and self.loss != "squared_hinge":
            raise ValueError("LinearSVMClassifier: solver='torch' minimises the squared hinge only; use "
                             "solver='liblinear' for loss='hinge'.")

    def _encode_targets(self, y: np.ndarray, n_images: int) -> np.ndarray:
        """One int8 column per binary problem: +1 positive, -1 negative, 0 not part of that problem (ovo)."""
        if y.shape[0] != n_images or y.ndim not in (1, 2):
            raise ValueError(
                f"y must be (images,) class labels or (images, labels) 0/1 columns matching X's {n_images} images; "
                f"got shape {y.shape}."
            )
        if y.ndim == 2:
            if not np.isin(y, (0, 1)).all():
                raise ValueError("Multi-label y must hold only 0 and 1.")
            if self.multiclass == "ovo":
                raise ValueError("One-vs-one needs single-label y (one class per image); multi-label y (2-D) is "
                                 "always trained one-vs-rest, so use multiclass='ovr'.")
            constant = np.flatnonzero(y.min(axis=0) == y.max(axis=0))
            if constant.size:
                raise ValueError(f"Label column(s) {constant.tolist()} have only one value in the training data; "
                                 "an SVM needs positives and negatives, so drop those columns.")
            self.task_, self.classes_, self.pairs_ = "multilabel", np.arange(y.shape[1]), None
            return np.where(y == 1, 1, -1).astype(np.int8)
        if type_of_target(y) == "continuous":
            raise ValueError("Unknown label type: continuous. y must hold class labels (ints or strings), one per "
                             "image.")
        self.classes_, class_index = np.unique(y, return_inverse=True)
        self.pairs_ = None
        n_classes = self.classes_.size
        if n_classes < 2:
            raise ValueError(f"y has 1 class ({self.classes_.tolist()}); a classifier needs at least two.")
        if n_classes == 2:
            self.task_ = "binary"
            return np.where(class_index == 1, 1, -1).astype(np.int8)[:, None]
        self.task_ = "multiclass"
        if self.multiclass == "ovr":
            return np.where(class_index[:, None] == np.arange(n_classes), 1, -1).astype(np.int8)
        self.pairs_ = np.array([(a, b) for a in range(n_classes) for b in range(a + 1, n_classes)])
        first = (class_index[:, None] == self.pairs_[:, 0]).astype(np.int8)
        return first - (class_index[:, None] == self.pairs_[:, 1]).astype(np.int8)

    def _fit_liblinear(self, rows: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.task_ == "multiclass" and self.pairs_ is None:
            # liblinear trains its own one-vs-rest loop; one call avoids copying the data once per class.
            svc = self._liblinear(rows.shape).fit(rows, targets.argmax(axis=1))
            return svc.coef_, svc.intercept_
        coefs, intercepts = [], []
        for column in targets.T:
            member = column != 0
            subset = rows if member.all() else rows[member]
            svc = self._liblinear(subset.shape).fit(subset, column[member])
            coefs.append(svc.coef_[0])
            intercepts.append(svc.intercept_[0])
        return np.stack(coefs), np.array(intercepts)

    def _liblinear(self, shape: tuple[int, int]) -> LinearSVC:
        return LinearSVC(
            C=self.C, loss=self.loss, dual=use_dual(*shape, self.loss), tol=self.tol, max_iter=self.max_iter,
            random_state=self.random_state,
        )

    # ------------------------------------------------------------------ scoring
    def problem_scores(self, X: object) -> np.ndarray:
        """``(N, P)`` scores of each binary problem, combined over each image's views by :attr:`aggregate`."""
        check_is_fitted(self, "coef_")
        self._check_params()
        array = check_features(X)
        check_n_features(self, array)
        n_images, n_views = array.shape[0], (1 if array.ndim == 2 else array.shape[1])
        rows = array.reshape(-1, array.shape[-1])
        n_problems = self.coef_.shape[0]
        combined = np.empty((n_images, n_problems))
        images_per_block = max(1, _BLOCK_ELEMENTS // (n_views * n_problems))
        for start in range(0, n_images, images_per_block):
            stop = min(start + images_per_block, n_images)
            block = rows[start * n_views : stop * n_views].astype(np.float32) @ self.coef_.T + self.intercept_
            block = block.reshape(stop - start, n_views, n_problems)
            if self.aggregate == "sum":
                combined[start:stop] = block.sum(axis=1)
            elif self.pairs_ is not None:
                strongest = np.abs(block).argmax(axis=1)[:, None, :]
                combined[start:stop] = np.take_along_axis(block, strongest, axis=1)[:, 0, :]
            else:
                combined[start:stop] = block.max(axis=1)
        return combined

    def decision_function(self, X: object) -> np.ndarray:
        """Per image: ``(N,)`` for binary data, else ``(N, n_classes)``.

        One-vs-one returns ``votes + confidence / (3 * (|confidence| + 1))``: the integer vote count plus a tie
        breaker below 1/3, where a class's confidence is the sum of its view-combined pairwise values.
        """
        scores = self.problem_scores(X)
        if self.task_ == "binary":
            return scores[:, 0]
        if self.pairs_ is not None:
            return ovo_votes(scores, self.pairs_, self.classes_.size)
        return scores

    def predict(self, X: object) -> np.ndarray:
        """Class labels (``(N,)``), or ``(N, K)`` 0/1 decisions (score > 0) for multi-label data."""
        scores = self.decision_function(X)
        if self.task_ == "multilabel":
            return (scores > 0).astype(int)
        if self.task_ == "binary":
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]


def ovo_votes(pair_scores: np.ndarray, pairs: np.ndarray, n_classes: int) -> np.ndarray:
    """One-vs-one voting: each pair ``(a, b)`` votes ``a`` when its score is > 0, else ``b``.

    Returns ``votes + confidence / (3 * (|confidence| + 1))``, where ``confidence[c]`` sums the pair scores in
    ``c``'s favour. The fraction is below 1/3, so it only breaks ties between equal vote counts (a remaining exact
    tie goes to the lower class index under ``argmax``).
    """
    first = np.eye(n_classes)[pairs[:, 0]]  # (P, K): which class is each pair's first one
    second = np.eye(n_classes)[pairs[:, 1]]
    votes = (pair_scores > 0) @ first + (pair_scores <= 0) @ second
    confidence = pair_scores @ (first - second)
    return votes + confidence / (3 * (np.abs(confidence) + 1))


# ---------------------------------------------------------------------- torch solver
def ovo_column_blocks(pairs: np.ndarray, classes_per_group: int = 8) -> list[np.ndarray]:
    """Indices of the one-vs-one pairs grouped so that each group touches few classes.

    Classes are cut into groups of ``classes_per_group``; a block holds the pairs between two groups (or within
    one), so it needs only those groups' training vectors: for K classes this cuts the torch solver's work about
    K / (2 * classes_per_group) times compared with solving every pair on all vectors.
    """
    groups = np.asarray(pairs) // classes_per_group
    keys = groups[:, 0] * (groups.max() + 1) + groups[:, 1]
    return [np.flatnonzero(keys == key) for key in np.unique(keys)]


def _fit_squared_hinge_torch(
    rows: np.ndarray,
    targets: np.ndarray,
    C: float,
    tol: float,
    max_iter: int,
    device: str | None,
    column_blocks: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise, for every target column p independently,
    ``1/2 (||w_p||^2 + b_p^2) + C * sum_i max(0, 1 - t_ip (w_p . x_i + b_p))^2`` over the rows with ``t_ip != 0``.

    That is liblinear's primal L2-loss SVM (``-s 2``, bias as an extra regularised feature of value 1), so both
    solvers reach the same optimum. The columns of a block are solved together (one matrix product serves all of
    them) on the rows that take part in any of them, in chunks that bound memory.
    """
    import torch

    from .config import device as default_device

    device = device or default_device()
    features = torch.as_tensor(np.ascontiguousarray(rows, dtype=np.float32), device=device)
    n_rows, n_problems = targets.shape
    coef = np.empty((n_problems, rows.shape[1]), dtype=np.float32)
    intercept = np.empty(n_problems, dtype=np.float32)
    for columns in column_blocks or [np.arange(n_problems)]:
        members = np.flatnonzero((targets[:, columns] != 0).any(axis=1))
        subset = features if members.size == n_rows else features[torch.as_tensor(members, device=device)]
        per_chunk = max(1, _BLOCK_ELEMENTS // members.size)
        for start in range(0, columns.size, per_chunk):
            chunk = columns[start : start + per_chunk]
            block = torch.as_tensor(targets[np.ix_(members, chunk)], dtype=torch.float32, device=device)
            weights = _newton_squared_hinge(subset, block, C, tol, max_iter)
            coef[chunk] = weights[:-1].T.cpu().numpy()
            intercept[chunk] = weights[-1].cpu().numpy()
    return coef, intercept


def _newton_squared_hinge(
    features: torch.Tensor, targets: torch.Tensor, C: float, tol: float, max_iter: int
) -> torch.Tensor:
    """Batched Newton-CG with Armijo backtracking (the modified finite Newton method of Keerthi & DeCoste, 2005).

    The squared hinge is once differentiable; its generalised Hessian ``I + 2C X_S^T X_S`` (``S``: rows with a
    positive margin loss) is positive definite, so conjugate gradients find each Newton step. Stops a column when
    its gradient norm falls below liblinear's rule ``tol * max(min(#pos, #neg), 1) / #rows * ||grad_0||`` times
    ``_TORCH_TOL_FACTOR``, or when float32 precision allows no further decrease.
    """
    import torch

    n_rows, n_features = features.shape
    member = (targets != 0).to(features.dtype)

    def linear(weights: torch.Tensor) -> torch.Tensor:  # (D+1, P) weights -> (n, P) scores, bias last
        return features @ weights[:-1] + weights[-1]

    def transpose_times(residual: torch.Tensor) -> torch.Tensor:  # X~^T r for the bias-augmented X~
        return torch.cat([features.T @ residual, residual.sum(0, keepdim=True)])

    def evaluate(weights: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        slack = torch.clamp(1 - targets * scores, min=0) * member
        objective = 0.5 * (weights**2).sum(0) + C * (slack**2).sum(0)
        return slack, objective

    weights = torch.zeros(n_features + 1, targets.shape[1], dtype=features.dtype, device=features.device)
    scores = linear(weights)
    slack, objective = evaluate(weights, scores)
    gradient = weights - 2 * C * transpose_times(targets * slack)
    positives, negatives = (targets > 0).sum(0), (targets < 0).sum(0)
    balance = torch.clamp(torch.minimum(positives, negatives), min=1) / member.sum(0).clamp(min=1)
    initial_norm = gradient.norm(dim=0)
    threshold = _TORCH_TOL_FACTOR * tol * balance * initial_norm
    running = initial_norm > threshold
    for _ in range(max_iter):
        if not running.any():
            break
        support = (slack > 0).to(features.dtype)

        def hessian_times(v: torch.Tensor, support: torch.Tensor = support) -> torch.Tensor:
            return v + 2 * C * transpose_times(support * linear(v))

        # forcing term min(0.1, sqrt(|g| / |g0|)): loose Newton steps far away, exact ones near the optimum
        forcing = torch.sqrt(gradient.norm(dim=0) / initial_norm.clamp(min=torch.finfo(features.dtype).tiny))
        step = _conjugate_gradient(hessian_times, -gradient, running, forcing.clamp(max=0.1))
        step_scores = linear(step)  # X~ s, reused for every trial step length

        def objective_at(length: torch.Tensor, at: tuple = (weights, scores, step, step_scores)) -> torch.Tensor:
            return evaluate(at[0] + length * at[2], at[1] + length * at[3])[1]

        length, accepted = _armijo_lengths(objective_at, objective, (gradient * step).sum(0), running)
        length = torch.where(running & accepted, length, torch.zeros_like(length))
        weights = weights + length * step
        scores = scores + length * step_scores
        slack, objective = evaluate(weights, scores)
        gradient = weights - 2 * C * transpose_times(targets * slack)
        # a column whose line search found no decrease is at float precision's limit: stop it too
        running = running & accepted & (gradient.norm(dim=0) > threshold)
    return weights


def _armijo_lengths(
    objective_at: Callable[[torch.Tensor], torch.Tensor], objective: torch.Tensor, slope: torch.Tensor,
    running: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backtracking line search, column-wise: step lengths 1, 1/2, 1/4, ... (at most 40 halvings) until the Armijo
    condition ``f(w + t s) <= f(w) + 1e-4 t g.s`` holds with a strict decrease; returns the lengths and which columns
    found one. ``objective_at(t)`` is the objective at step lengths ``t`` (one per column)."""
    import torch

    length = torch.ones_like(objective)
    accepted = torch.zeros_like(running)
    for _ in range(40):
        trial_objective = objective_at(length)
        decrease = trial_objective < objective  # strict: equal values mean float32 precision is exhausted
        accepted = accepted | (decrease & (trial_objective <= objective + 1e-4 * length * slope))
        if accepted[running].all():
            break
        length = torch.where(accepted, length, length / 2)
    return length, accepted


def _conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    active: torch.Tensor,
    rtol: torch.Tensor,
    max_iter: int = 250,
) -> torch.Tensor:
    """Solve ``matvec(x) = rhs`` column-wise for the ``active`` columns (others get 0), column p until its
    residual is below ``rtol[p]`` times its initial norm."""
    import torch

    solution = torch.zeros_like(rhs)
    residual = rhs * active
    direction = residual.clone()
    squared = (residual**2).sum(0)
    target = rtol**2 * squared
    running = active & (squared > 0)
    tiny = torch.finfo(rhs.dtype).tiny
    for _ in range(max_iter):
        if not running.any():
            break
        product = matvec(direction)
        alpha = torch.where(running, squared / (direction * product).sum(0).clamp(min=tiny), 0.0)
        solution = solution + alpha * direction
        residual = residual - alpha * product
        new_squared = (residual**2).sum(0)
        beta = torch.where(running, new_squared / squared.clamp(min=tiny), 0.0)
        direction = residual + beta * direction
        squared = new_squared
        running = running & (squared > target)
    return solution


# ---------------------------------------------------------------------- choosing C
@dataclass(frozen=True)
class CSelection:
    """Outcome of :func:`select_C`: the chosen C and every fold's validation score per candidate."""

    C: float
    Cs: tuple[float, ...]
    fold_scores: np.ndarray  # (len(Cs), n_folds)

    @property
    def mean_scores(self) -> np.ndarray:
        return self.fold_scores.mean(axis=1)


def cv_folds(
    y: object, cv: int = 3, groups: object = None, random_state: int | None = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``cv`` (train, validation) index pairs over *images* (never views), so all views of an image share a fold.

    Single-label y is stratified by class; ``groups`` (e.g. several photos of one object) keeps each group in one
    fold. Shuffled with ``random_state`` so that class-sorted data still gives mixed folds.
    """
    y = np.asarray(y)
    placeholder = np.zeros((len(y), 1))
    if y.ndim == 1:
        splitter = (StratifiedKFold if groups is None else StratifiedGroupKFold)(
            n_splits=cv, shuffle=True, random_state=random_state
        )
    elif groups is None:
        splitter = KFold(n_splits=cv, shuffle=True, random_state=random_state)
    else:
        splitter = GroupKFold(n_splits=cv)
    return list(splitter.split(placeholder, y if y.ndim == 1 else None, groups))


def cv_shortfall(
    y: object, cv: int = 3, groups: object = None, class_names: Sequence[str] | None = None
) -> str | None:
    """Why ``cv``-fold cross-validation cannot choose C on these training labels, or ``None`` when it can.

    Every training fold must hold every class, so single-label data need at least ``cv`` images per class;
    multi-label data need ``cv`` images, and with ``groups`` there must be ``cv`` groups. Below that,
    scikit-learn's folds fail ("n_splits=3 > n_samples=2") or train models that have never seen a class.
    ``class_names`` (indexed by label) names the class in the message.
    """
    y = np.asarray(y)
    shortfall = f"too few training images for {cv}-fold cross-validation"
    if y.ndim == 1:
        classes, counts = np.unique(y, return_counts=True)
        if counts.size and counts.min() < cv:
            label = classes[np.argmin(counts)]
            shown = repr(class_names[label]) if class_names else label
            return f"{shortfall}: class {shown} has {counts.min()}"
    elif len(y) < cv:
        return f"{shortfall}: {len(y)} images"
    if groups is not None and np.unique(np.asarray(groups)).size < cv:
        return f"{shortfall}: {np.unique(np.asarray(groups)).size} groups"
    return None


def default_score(estimator: LinearSVMClassifier, X: np.ndarray, y: np.ndarray) -> float:
    """Validation score used by :func:`select_C`: mean class accuracy (single-label) or, for multi-label data,
    mean non-interpolated AP over the label columns that have a positive in the validation fold."""
    if y.ndim == 1:
        return mean_class_accuracy(y, estimator.predict(X))
    scores = estimator.decision_function(X)
    usable = np.flatnonzero(y.any(axis=0))
    return float(np.mean([average_precision(scores[:, k], y[:, k]) for k in usable]))


def select_C(
    X: object,
    y: object,
    Cs: Sequence[float] = DEFAULT_CS,
    cv: int = 3,
    groups: object = None,
    *,
    scoring: Callable[[LinearSVMClassifier, np.ndarray, np.ndarray], float] = default_score,
    random_state: int | None = 0,
    **svm_params: object,
) -> CSelection:
    """Choose C by ``cv``-fold cross-validation on the data given, which must be the *training* split only.

    Each candidate is scored by ``scoring(fitted_estimator, X_val, y_val)`` on image-level folds
    (:func:`cv_folds`) by scikit-learn's ``GridSearchCV`` (which indexes ``(N, V, D)`` arrays by image, so the
    views of an image stay together); the best mean wins and ties go to the smallest C (the more regularised
    model). ``svm_params`` go to :class:`LinearSVMClassifier` (e.g. ``multiclass="ovo"``, ``solver="torch"``).
    """
    array = check_features(X)
    y = np.asarray(y)
    candidates = tuple(sorted(float(c) for c in Cs))
    if not candidates or min(candidates) <= 0:
        raise ValueError(f"select_C: Cs must be a non-empty list of positive numbers; got {list(Cs)!r}.")
    folds = cv_folds(y, cv, groups, random_state)
    search = GridSearchCV(LinearSVMClassifier(random_state=random_state, **svm_params), {"C": list(candidates)},
                          scoring=scoring, cv=folds, refit=False, error_score="raise").fit(array, y)
    fold_scores = np.column_stack([search.cv_results_[f"split{j}_test_score"] for j in range(len(folds))])
    best = int(np.argmax(fold_scores.mean(axis=1)))  # argmax takes the first, i.e. smallest, of equal means
    return CSelection(C=candidates[best], Cs=candidates, fold_scores=fold_scores)


def fit_on_split(
    X: object,
    y: object,
    split: object,
    *,
    C: float | str = "cv",
    train_splits: Sequence[str] = ("train", "val"),
    Cs: Sequence[float] = DEFAULT_CS,
    cv: int = 3,
    groups: object = None,
    random_state: int | None = 0,
    **svm_params: object,
) -> tuple[LinearSVMClassifier, CSelection | None]:
    """Train on the images whose ``split`` is in ``train_splits``; the other rows are never read.

    ``C="cv"`` chooses C with :func:`select_C` on those training images only (the paper's protocol); when they
    are too few to cross-validate (:func:`cv_shortfall`), C is :data:`FALLBACK_C` and a ``UserWarning`` says why. A
    number (e.g. the paper's ``2.0`` for MIT-67) is used as given. Returns the fitted classifier and the selection (or
    ``None``: C given, or fallen back).
    """
    split = np.asarray(split)
    train = np.flatnonzero(np.isin(split, list(train_splits)))
    if train.size == 0:
        raise ValueError(f"fit_on_split: no image has a split in {list(train_splits)}; splits present: "
                         f"{sorted(set(split.tolist()))}.")
    X_train, y_train = np.asarray(X)[train], np.asarray(y)[train]  # a memmap's test rows are never read
    groups_train = None if groups is None else np.asarray(groups)[train]
    selection = None
    shortfall = cv_shortfall(y_train, cv, groups_train) if C == "cv" else None
    if shortfall:
        warnings.warn(f"C fixed at {FALLBACK_C:g} ({shortfall}).", UserWarning, stacklevel=2)
        C = FALLBACK_C
    elif C == "cv":
        selection = select_C(X_train, y_train, Cs, cv, groups_train, random_state=random_state, **svm_params)
        C = selection.C
    elif isinstance(C, str):
        raise ValueError(f"fit_on_split: C must be a number or 'cv'; got {C!r}.")
    model = LinearSVMClassifier(C=C, random_state=random_state, **svm_params).fit(X_train, y_train)
    return model, selection
