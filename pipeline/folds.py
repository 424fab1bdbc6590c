"""Fast cross-validation: the work the folds share is done once per study, not per trial.

A candidate's scores are what ``cross_val_score`` of its estimator pipeline gives on the
study's folds (``tests/test_cv.py`` holds the two together); what changes is where the
work happens. Each fold's preprocessing is fitted once per study. Regression on tall
data (more training rows than features), numbers only, is scored from sums over the rows
(``pipeline.moments``), every fold at once; everything else keeps each fold's
preprocessed arrays (``pipeline.arrayfold``) and warm-starts from the fold's solutions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

from pipeline import interrupt
from pipeline.arrayfold import ArrayFold
from pipeline.config import Task
from pipeline.models import Candidate, make_estimator, make_model, make_preprocessor
from pipeline.moments import Moments
from pipeline.scoring import fitted, roc_auc, score

__all__ = ["FastCV", "OnFold", "Scores", "roc_auc"]


@dataclass
class Scores:
    """One candidate's per-fold validation and training scores."""

    cv: list[float]
    train: list[float]
    converged: bool


# Called after each fold but the last with the validation scores so far; may raise to stop.
OnFold = Callable[[list[float]], None]


@dataclass
class FastCV:
    """Scores candidates on fixed folds; builds the refit on all training rows."""

    X: pd.DataFrame
    y: pd.Series
    folds: Sequence[tuple[np.ndarray, np.ndarray]]
    scoring: str
    task: Task
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    impute: bool
    max_iter: int
    tol: float
    _state: dict = field(default_factory=dict, repr=False)

    @property
    def moments(self) -> bool:
        """Whether the path from sums applies (tall, numeric-only regression, each fold
        training on all rows but its validation rows): it scores all folds at once, so a
        trial cannot be stopped after a fold."""
        p, n = self.X.shape[1], len(self.X)
        return (
            self.task == Task.regression
            and not self.categorical
            and not self.impute
            and all(len(train) > p and len(train) + len(test) == n for train, test in self.folds)
        )

    def model(self, candidate: Candidate):
        """The pipeline's unfitted last step for ``candidate``."""
        return make_model(candidate, task=self.task, max_iter=self.max_iter, tol=self.tol)

    def estimator(self, candidate: Candidate | None) -> Pipeline:
        """The unfitted pipeline for ``candidate`` (``None``: the unpenalized baseline)."""
        return make_estimator(
            candidate,
            task=self.task,
            impute=self.impute,
            numeric=self.numeric,
            categorical=self.categorical,
            max_iter=self.max_iter,
            tol=self.tol,
        )

    def scores(self, candidate: Candidate, *, on_fold: OnFold | None = None) -> Scores:
        """Validation and training score of ``candidate`` on each fold; ``on_fold`` is called
        after each fold but the last (not on the path from sums, see :attr:`moments`)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.moments:
                return self._moment_scores(candidate)
            return self._array_scores(candidate, on_fold)

    def refit(self, candidate: Candidate) -> Pipeline:
        """``candidate``'s pipeline fitted on all training rows."""
        return self.refit_with_status(candidate)[0]

    def refit_with_status(self, candidate: Candidate) -> tuple[Pipeline, bool]:
        """``candidate``'s pipeline fitted on all training rows, and whether it converged."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.moments:
                prep = self._full_scaler()
                sums = self._sums()
                model, converged = sums.model(
                    candidate, sums.full, self.model, max_iter=self.max_iter, tol=self.tol
                )
            else:
                fold = self.fold(-1)
                prep = fold.prep
                model, converged = fold.fit(self, candidate)
        return Pipeline([("prep", prep), ("model", model)]), converged

    def first_fold_fit(self, candidate: Candidate):
        """``candidate``'s model fitted on the first fold's training rows, with that fold's
        preprocessed validation rows and targets: what a scorer can be tried on."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.moments:  # the first fold's model from the sums, on its raw rows
                sums, (_, test) = self._sums(), self.folds[0]
                w, b, _ = sums.weights(candidate, self.model, max_iter=self.max_iter, tol=self.tol)
                model = fitted(self.model(candidate), w[:, 0], b[0], len(w))
                return model, sums.X[test], sums.y[test]
            fold = self.fold(0)
            model, _ = fold.fit(self, candidate)
        return model, fold.X_test, fold.y_test

    def out_of_fold(self, candidate: Candidate) -> np.ndarray:
        """Each training row's prediction by the fold model that did not see it: what
        ``cross_val_predict`` gives (class probabilities, in sorted class order, for
        classification), from the folds' own fits."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.moments:
                sums = self._sums()
                weights, offsets, _ = sums.weights(
                    candidate, self.model, max_iter=self.max_iter, tol=self.tol
                )
                out = np.empty(len(self.X))
                for i, (_, test) in enumerate(self.folds):
                    out[test] = sums.X[test] @ weights[:, i] + offsets[i]
                return out
            return self._array_out_of_fold(candidate)

    def fold_coefficients(self, candidate: Candidate) -> list[np.ndarray]:
        """Each fold's fitted ``coef_`` (standardized features: the pipeline's last step),
        its last axis in the order of the refit's feature names (``get_feature_names_out``
        of the preprocessor fitted on all training rows, as ``evaluate.coefficients``
        names them). A feature the fold's preprocessor never saw (a category absent from
        its training rows) gets 0. Shape (p,) for regression, (classes, p) for logistic."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.moments:
                sums = self._sums()
                fits = [
                    sums.model(candidate, s, self.model, max_iter=self.max_iter, tol=self.tol)
                    for s in sums.stats
                ]
                return [np.array(model.coef_, dtype=np.float64) for model, _ in fits]
            names = pd.Index(self.fold(-1).prep.get_feature_names_out())
            out = []
            for i in range(len(self.folds)):
                interrupt.check()
                fold = self.fold(i)
                model, _ = fold.fit(self, candidate)
                coef = np.asarray(model.coef_, dtype=np.float64)
                where = names.get_indexer(fold.prep.get_feature_names_out())
                aligned = np.zeros((*coef.shape[:-1], len(names)))
                known = where >= 0  # (every fold's features are the refit's, bar oddities)
                aligned[..., where[known]] = coef[..., known]
                out.append(aligned)
            return out

    def _array_out_of_fold(self, candidate: Candidate) -> np.ndarray:
        classes = np.unique(self.y) if self.task == Task.classification else None
        out = np.zeros(len(self.X) if classes is None else (len(self.X), len(classes)))
        for i, (_, test) in enumerate(self.folds):
            interrupt.check()
            fold = self.fold(i)
            model, _ = fold.fit(self, candidate)
            if classes is None:
                out[test] = model.predict(fold.X_test)
            else:  # a class missing from a fold's training rows gets probability 0 there
                columns = np.searchsorted(classes, model.classes_)
                out[np.ix_(test, columns)] = model.predict_proba(fold.X_test)
        return out

    def fold(self, index: int) -> ArrayFold:
        """Fold ``index``'s preprocessed arrays (-1: all rows), built on first use."""
        key = ("fold", index)
        if key not in self._state:
            if index < 0:
                train, test = np.arange(len(self.X)), None
            else:
                train, test = self.folds[index]
            self._state[key] = ArrayFold.build(self, train, test)
        return self._state[key]

    def _full_scaler(self):
        if "scaler" not in self._state:
            self._state["scaler"] = make_preprocessor(self.numeric).fit(self.X)
        return self._state["scaler"]

    def _sums(self) -> Moments:
        if "moments" not in self._state:
            X = self.X.to_numpy(dtype=np.float64)
            y = self.y.to_numpy(dtype=np.float64)
            self._state["moments"] = Moments(X, y, self.folds)
        return self._state["moments"]

    def _moment_scores(self, candidate: Candidate) -> Scores:
        sums = self._sums()
        weights, offsets, converged = sums.weights(
            candidate, self.model, max_iter=self.max_iter, tol=self.tol
        )
        interrupt.check()
        cv, train = sums.scores(self.scoring, weights, offsets)
        return Scores(cv, train, converged)

    def _array_scores(self, candidate: Candidate, on_fold: OnFold | None) -> Scores:
        cv, train, converged = [], [], True
        for i in range(len(self.folds)):
            interrupt.check()
            fold = self.fold(i)
            model, ok = fold.fit(self, candidate)
            converged &= ok
            cv.append(score(self.scoring, self.task, model, fold.X_test, fold.y_test))
            train.append(score(self.scoring, self.task, model, fold.X_train, fold.y_train))
            if on_fold is not None and i < len(self.folds) - 1:
                on_fold(cv)
        return Scores(cv, train, converged)
