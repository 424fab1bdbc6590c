"""The Optuna search over penalty, alpha and l1_ratio, scored by k-fold cross-validation.

This is the only module that imports Optuna. It knows nothing of MLflow: each finished
trial is handed, as a plain ``TrialResult``, to the ``on_trial`` callback the caller gives.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import optuna
import pandas as pd
import sqlalchemy
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sqlalchemy.engine import make_url
from threadpoolctl import threadpool_limits

from pipeline import interrupt, sqlite
from pipeline.config import Penalty, SearchConfig, Task, unreachable
from pipeline.cv import FastCV, OnFold
from pipeline.errors import UserError
from pipeline.models import Candidate

log = logging.getLogger(__name__)

# Seconds each trial sleeps before its folds: lets a test kill a worker in mid-trial now
# that a trial takes milliseconds. Never set in production.
PAUSE_IN_TRIAL = "PIPELINE_TEST_PAUSE_IN_TRIAL"
# Trial states that count towards the budget.
DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# The trial's user attribute with its per-fold scores and convergence.
FOLDS = "folds"
FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class SearchSpace:
    """Which penalties, and the ranges alpha and l1_ratio are drawn from (alpha on a log scale)."""

    penalties: tuple[Penalty, ...]
    alpha_low: float
    alpha_high: float
    l1_ratio_low: float
    l1_ratio_high: float

    @classmethod
    def from_config(cls, cfg: SearchConfig) -> SearchSpace:
        return cls(
            penalties=tuple(Penalty(p) for p in cfg.penalties),
            alpha_low=cfg.alpha_low,
            alpha_high=cfg.alpha_high,
            l1_ratio_low=cfg.l1_ratio_low,
            l1_ratio_high=cfg.l1_ratio_high,
        )

    def suggest(self, trial: optuna.Trial) -> Candidate:
        """Draw one candidate; l1_ratio exists only for elasticnet."""
        penalty = Penalty(trial.suggest_categorical("penalty", [p.value for p in self.penalties]))
        alpha = trial.suggest_float("alpha", self.alpha_low, self.alpha_high, log=True)
        l1_ratio = None
        if penalty == Penalty.elasticnet:
            l1_ratio = trial.suggest_float("l1_ratio", self.l1_ratio_low, self.l1_ratio_high)
        return Candidate(penalty, alpha, l1_ratio)

    def contains(self, candidate: Candidate) -> bool:
        return (
            candidate.penalty in self.penalties
            and self.alpha_low <= candidate.alpha <= self.alpha_high
        )


@dataclass(frozen=True)
class CVSetup:
    """What every trial needs: training data, the folds (built once) and the scorer."""

    X: pd.DataFrame
    y: pd.Series
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    scoring: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    max_iter: int
    tol: float
    task: Task = Task.regression
    impute: bool = False
    fast: FastCV = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fast = FastCV(
            self.X,
            self.y,
            self.folds,
            self.scoring,
            self.task,
            self.numeric,
            self.categorical,
            self.impute,
            self.max_iter,
            self.tol,
        )
        object.__setattr__(self, "fast", fast)

    @classmethod
    def build(
        cls,
        X: pd.DataFrame,
        y: pd.Series,
        *,
        n_splits: int,
        random_state: int,
        scoring: str,
        numeric: Sequence[str],
        categorical: Sequence[str],
        max_iter: int,
        tol: float,
        task: Task = Task.regression,
        impute: bool = False,
    ) -> CVSetup:
        """Build the folds once: stratified by class for classification."""
        kind = StratifiedKFold if task == Task.classification else KFold
        folds = tuple(kind(n_splits=n_splits, shuffle=True, random_state=random_state).split(X, y))
        return cls(
            X, y, folds, scoring, tuple(numeric), tuple(categorical), max_iter, tol, task, impute
        )

    def estimator(self, candidate: Candidate | None) -> Pipeline:
        """An unfitted pipeline for ``candidate`` (``None``: unpenalized least squares)."""
        return self.fast.estimator(candidate)

    def fit(self, candidate: Candidate | None) -> Pipeline:
        """``candidate`` fitted on all training rows (convergence warnings silenced)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self.estimator(candidate).fit(self.X, self.y)


@dataclass
class TrialResult:
    """One evaluated candidate: its CV scores and its model refitted on all training rows."""

    number: int
    candidate: Candidate
    cv_scores: list[float]
    fit_time_s: float
    converged: bool
    estimator: Pipeline | None = None
    error: str | None = None
    train_scores: list[float] = field(default_factory=list)
    pruned: bool = False
    retry_of: int | None = None  # the number of the failed trial this one repeats
    started_ms: int | None = None  # when its evaluation started (Unix time, milliseconds)

    @property
    def cv_score_mean(self) -> float:
        return float(np.mean(self.cv_scores)) if self.cv_scores else float("nan")

    @property
    def cv_score_std(self) -> float:
        return float(np.std(self.cv_scores)) if self.cv_scores else float("nan")

    @property
    def ok(self) -> bool:
        return self.error is None and not self.pruned


def _converged(estimator: Pipeline, max_iter: int) -> bool:
    n_iter = getattr(estimator[-1], "n_iter_", None)
    return n_iter is None or bool(np.all(np.asarray(n_iter) < max_iter))


def evaluate(
    setup: CVSetup, candidate: Candidate, *, number: int = -1, on_fold: OnFold | None = None
) -> TrialResult:
    """Cross-validate ``candidate`` on the prepared folds, then refit it on all training rows.

    The scores are those of ``cross_val_score`` on the same folds, computed by the fast
    path of ``pipeline.cv``. Convergence is read from each fit's ``n_iter_``, not from the
    warning, which is silenced so a search over small alphas does not flood the terminal.
    ``on_fold(scores_so_far)`` is called after each fold but the last, and may stop it.
    """
    started_ms = int(time.time() * 1000)
    start = time.perf_counter()
    if pause := os.environ.get(PAUSE_IN_TRIAL):  # fault injection for the kill -9 tests
        time.sleep(float(pause))
    scores = setup.fast.scores(candidate, on_fold=on_fold)
    final, refit_converged = setup.fast.refit_with_status(candidate)
    converged = scores.converged and refit_converged and _converged(final, setup.max_iter)
    elapsed = time.perf_counter() - start
    return TrialResult(
        number,
        candidate,
        scores.cv,
        elapsed,
        converged,
        final,
        None,
        scores.train,
        started_ms=started_ms,
    )


def check_scoring(setup: CVSetup, space: SearchSpace) -> None:
    """Fail at once, with one line, if ``setup.scoring`` cannot score this kind of model.

    One fit on the first fold: cheaper than a study of trials that all fail.
    """
    alpha = float(np.sqrt(space.alpha_low * space.alpha_high))
    ratio = (space.l1_ratio_low + space.l1_ratio_high) / 2
    penalty = space.penalties[0]
    candidate = Candidate(penalty, alpha, ratio if penalty == Penalty.elasticnet else None)
    train, test = setup.folds[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = setup.estimator(candidate).fit(setup.X.iloc[train], setup.y.iloc[train])
            get_scorer(setup.scoring)(model, setup.X.iloc[test], setup.y.iloc[test])
    except Exception as exc:  # any failure here is the scorer's or the data's, not a bug
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"The 'search.scoring' parameter {setup.scoring!r} cannot score a "
            f"{setup.task.value} model here: {first}"
        ) from None


def out_of_fold(setup: CVSetup, candidate: Candidate | None) -> np.ndarray:
    """Each training row's prediction from the fold model that did not see it.

    Class probabilities (columns in sorted class order) for classification, values for
    regression: what the diagnostics plots show, without touching the holdout.
    """
    method = "predict_proba" if setup.task == Task.classification else "predict"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_predict(
            setup.estimator(candidate), setup.X, setup.y, cv=list(setup.folds), method=method
        )


class TrialFailed(Exception):
    """A candidate that could not be fitted or scored; its trial is marked failed."""


def fingerprint(
    *,
    data_digest: str,
    split: dict,
    cfg: SearchConfig,
    task: Task = Task.regression,
    impute: bool = False,
) -> str:
    """Identify a study by its data and every setting that changes what a trial computes."""
    settings = {
        "data": data_digest,
        "task": task.value,
        "impute": impute,
        "split": split,
        "space": asdict(SearchSpace.from_config(cfg)),
        "guess_alpha": cfg.guess_alpha,
        "n_splits": cfg.n_splits,
        "scoring": cfg.scoring,
        "random_state": cfg.random_state,
        "max_iter": cfg.max_iter,
        "tol": cfg.tol,
    }
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _storage(url: str, *, heartbeat_interval: int, grace_period: int) -> optuna.storages.RDBStorage:
    kwargs = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    with warnings.catch_warnings():
        # The heartbeat is marked experimental; it is what fails the trial of a killed process,
        # and the callback queues that trial once more (linked to it by its system attrs).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            storage = optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=1
                ),
                **kwargs,
            )
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise _unreachable(url, exc) from None
    if url.startswith("sqlite"):
        sqlite.write_ahead(storage.engine)
    return storage


def _unreachable(url: str, exc: BaseException) -> UserError:
    return unreachable("search.storage", url, exc)


def shared_storage(url: str) -> bool:
    """Whether several machines can share this storage (a database server, not a file)."""
    return make_url(url).get_backend_name() not in ("sqlite",)


# Advisory lock keys (any two fixed 64-bit numbers): one for creating the stores, the study
# and its parent run, one for asking for a trial within the budget.
CREATE_LOCK = 0x7265677475_01
TRIAL_LOCK = 0x7265677475_02


def study_lock_key(study_name: str) -> int:
    """The lock a process holds while it runs a local study's trials: one per study, so that
    studies sharing a storage file do not wait for each other."""
    return int.from_bytes(hashlib.sha256(f"study:{study_name}".encode()).digest()[:7], "big")


class StorageLock:
    """A lock shared by every process that uses one study storage.

    On PostgreSQL a session-level advisory lock, on SQLite a file lock beside the database
    file: either way the server or the kernel releases it when its process dies (kill -9).
    Other databases get no cross-process lock.
    """

    def __init__(self, url: str):
        self.url = url
        self._backend = make_url(url).get_backend_name()
        self._conn: sqlalchemy.Connection | None = None
        self._local = threading.Lock()

    @contextmanager
    def hold(self, key: int) -> Iterator[None]:
        with self._local:
            if self._backend == "postgresql":
                conn = self._connection()
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            elif self._backend == "sqlite" and make_url(self.url).database not in (
                None,
                "",
                ":memory:",
            ):
                path = f"{make_url(self.url).database}.{key:x}.lock"
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    _flock(fd, path)
                    yield
                finally:
                    os.close(fd)  # closing the descriptor releases the lock
            else:
                yield

    def _connection(self) -> sqlalchemy.Connection:
        if self._conn is None:
            engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
            try:
                self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise _unreachable(self.url, exc) from None
            atexit.register(self._conn.close)
        return self._conn


def _flock(fd: int, path: str) -> None:
    """Take the exclusive lock on ``fd``, waiting for it between checks for Ctrl-C/SIGTERM."""
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not waited:
                log.info("waiting for another process using this study storage (%s)", path)
                waited = True
            interrupt.check()
            time.sleep(0.1)


_locks: dict[str, StorageLock] = {}


def storage_lock(url: str) -> StorageLock:
    """The process's lock object for ``url`` (one database connection per storage)."""
    if url not in _locks:
        _locks[url] = StorageLock(url)
    return _locks[url]


@contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Hold while creating store schemas, the study and its parent run: once, for all workers."""
    with storage_lock(url).hold(CREATE_LOCK):
        yield


@contextmanager
def _heartbeat(storage: optuna.storages.RDBStorage, trial_id: int, interval: float):
    """Record the trial's heartbeat every ``interval`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except sqlalchemy.exc.SQLAlchemyError as exc:  # a glitch: the next beat may pass
                log.warning("heartbeat of trial %d not recorded: %s", trial_id, exc)

    thread = threading.Thread(target=beat, name="trial-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class FoldPruner:
    """Stops a trial whose every fold so far is clearly worse than the best trial's.

    "Clearly": on each fold scored so far, the trial trails the best trial's score on the
    same fold by more than the best trial's own spread across folds. The eventual best
    would have to lose to the current best on every one of those folds by more than that
    spread; ``make bench`` re-scores pruned trials in full to check it never happened.
    """

    def __init__(self, best: Sequence[float]):
        self.best = list(best)
        self.margin = max(self.best) - min(self.best)

    def __call__(self, scores: list[float]) -> None:
        deficits = [b - s for b, s in zip(self.best, scores, strict=False)]
        if min(deficits) > self.margin:
            raise Pruned(scores)


class Pruned(Exception):
    """A trial stopped by the ``FoldPruner`` (with its fold scores so far)."""

    def __init__(self, scores: list[float]):
        super().__init__(f"pruned after {len(scores)} folds")
        self.scores = list(scores)


class Study:
    """An Optuna study identified by a fingerprint, resumable across processes."""

    FINGERPRINT = "fingerprint"
    PARENT_RUN = "mlflow_parent_run_id"
    FINISHED = "finished"

    def __init__(
        self,
        study: optuna.Study,
        *,
        resumed: bool,
        backend: optuna.storages.RDBStorage,
        lock: StorageLock,
        heartbeat_interval: float,
        shared: bool = True,
    ):
        self._study = study
        self.resumed = resumed
        self._backend = backend
        self._lock = lock
        self._heartbeat_interval = heartbeat_interval
        self._shared = shared
        # While a local (SQLite) study runs its trials: their copy in memory (see _Replica).
        self._replica: _Replica | None = None

    @classmethod
    def open(
        cls,
        *,
        storage: str,
        study_prefix: str,
        fingerprint: str,
        seed: int | None,
        space: SearchSpace,
        guess_alpha: float,
        fresh: bool,
        heartbeat_interval: int = 10,
        grace_period: int = 30,
    ) -> Study:
        """Resume the newest study with this fingerprint, or create one (always with ``fresh``).

        Call it inside ``creation_lock(storage)`` when several processes may start at once,
        so that only the first one creates the study.
        """
        # Optuna would print a traceback per failed trial; the pipeline logs one line instead.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        backend = _storage(
            storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # With workers in parallel, the constant liar keeps them off each other's candidates.
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=shared_storage(storage))

        def make(study: optuna.Study, resumed: bool) -> Study:
            return cls(
                study,
                resumed=resumed,
                backend=backend,
                lock=storage_lock(storage),
                heartbeat_interval=heartbeat_interval,
                shared=shared_storage(storage),
            )

        if not fresh:
            for summary in sorted(
                optuna.get_all_study_summaries(backend, include_best_trial=False),
                key=lambda s: s._study_id,
                reverse=True,
            ):
                if summary.user_attrs.get(cls.FINGERPRINT) == fingerprint:
                    study = optuna.load_study(
                        study_name=summary.study_name, storage=backend, sampler=sampler
                    )
                    return make(study, True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        taken = set(optuna.get_all_study_names(backend))
        name = f"{study_prefix}-{fingerprint}-{stamp}"
        name = next(
            n
            for i in range(len(taken) + 2)
            if (n := name if i == 0 else f"{name}-{i}") not in taken
        )
        study = optuna.create_study(
            study_name=name, storage=backend, sampler=sampler, direction="maximize"
        )
        study.set_user_attr(cls.FINGERPRINT, fingerprint)
        # The tutorial's guesses are trials too, so the result is never worse than a guess.
        for penalty in (Penalty.l1, Penalty.l2):
            guess = Candidate(penalty, guess_alpha, None)
            if space.contains(guess):
                study.enqueue_trial({"penalty": penalty.value, "alpha": guess_alpha})
            else:
                log.info("the guess %s is outside the search space: a baseline only", guess.label)
        return make(study, False)

    @property
    def name(self) -> str:
        return self._study.study_name

    @property
    def fingerprint(self) -> str:
        return self._study.user_attrs[self.FINGERPRINT]

    @property
    def parent_run_id(self) -> str | None:
        return self._study.user_attrs.get(self.PARENT_RUN)

    @parent_run_id.setter
    def parent_run_id(self, run_id: str) -> None:
        self._study.set_user_attr(self.PARENT_RUN, run_id)

    @property
    def finished(self) -> bool:
        return bool(self._study.user_attrs.get(self.FINISHED))

    def mark_finished(self) -> None:
        self._study.set_user_attr(self.FINISHED, True)

    def n_complete(self) -> int:
        return len(self._complete())

    def n_done(self) -> int:
        """Trials that count towards the budget: complete or pruned."""
        return len(self._study.get_trials(deepcopy=False, states=DONE))

    def counts(self) -> dict[str, int]:
        """How many trials completed, were pruned, and failed."""
        states = [t.state for t in self._study.get_trials(deepcopy=False)]
        return {
            "complete": states.count(optuna.trial.TrialState.COMPLETE),
            "pruned": states.count(optuna.trial.TrialState.PRUNED),
            "failed": states.count(optuna.trial.TrialState.FAIL),
        }

    @staticmethod
    def _best_folds(study: optuna.Study) -> list[float] | None:
        try:
            best = study.best_trial
        except ValueError:  # no complete trial yet
            return None
        return best.user_attrs.get(FOLDS, {}).get("cv")

    def _complete(self) -> list[optuna.trial.FrozenTrial]:
        return self._study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))

    def complete_candidates(self) -> dict[int, Candidate]:
        """Every finished trial's candidate, by trial number."""
        return {t.number: _candidate(t.params) for t in self._complete()}

    def trials_frame(self) -> pd.DataFrame:
        """One row per complete trial: number, penalty, alpha, l1_ratio, CV and train scores."""
        rows = []
        for t in self._complete():
            folds = t.user_attrs.get(FOLDS, {})
            cv = folds.get("cv") or [t.value]
            train = folds.get("train") or [np.nan]
            rows.append(
                {
                    "number": t.number,
                    "penalty": t.params["penalty"],
                    "alpha": t.params["alpha"],
                    "l1_ratio": t.params.get("l1_ratio"),
                    "cv_score": t.value,
                    "cv_std": float(np.std(cv)),
                    "train_score": float(np.mean(train)),
                }
            )
        return pd.DataFrame(rows).sort_values("number", ignore_index=True)

    def param_importances(self) -> dict[str, float]:
        """Optuna's fANOVA importance of each parameter (empty when it cannot be computed)."""
        try:
            return optuna.importance.get_param_importances(self._study, params=["penalty", "alpha"])
        except (RuntimeError, ValueError):
            return {}

    def best(self) -> tuple[int, Candidate, float]:
        """The best trial's number, candidate and CV score."""
        best = self._study.best_trial
        return best.number, _candidate(best.params), float(best.value)

    def optimize(
        self,
        setup: CVSetup,
        space: SearchSpace,
        *,
        n_trials: int,
        timeout: float | None,
        show_progress_bar: bool,
        on_trial: Callable[[TrialResult], None],
        prune: bool = True,
        poll_s: float = 1.0,
    ) -> int:
        """Run trials until ``n_trials`` have completed or been pruned in this study (all
        processes counted).

        A trial is asked for under the storage lock, and only while the done and running
        trials together number fewer than ``n_trials``: any number of workers end with exactly
        ``n_trials`` done. While the last trials run elsewhere this process waits, so a
        trial that fails there (or whose worker dies) is retried here. Failed trials do not
        count towards the budget; this process gives up after as many attempts again as were
        missing, so a search where every fit fails still ends. With ``prune``, a trial clearly
        worse than the best on its first folds stops early (``FoldPruner``). Returns the
        trials completed here.

        Trials run with one BLAS/OpenMP thread: a trial's linear algebra is small, where
        OpenBLAS's extra threads cost more in hand-offs and spinning than they gain (half the
        time of a trial on 500 x 5,000 data, in ``make bench``), and the trial logger needs
        the other core. More cores are used by more workers (``make worker``).

        On SQLite (one machine) the process holds the study's lock throughout and
        runs the trials on a copy of the study in memory, writing each finished trial to the
        storage in one transaction (``_Replica``). Another process on the same study waits
        for the lock, then finds the budget spent.

        ``timeout``: no trial starts after this many seconds (the running one finishes).
        """
        remaining = n_trials - self.n_done()
        if remaining <= 0:
            return 0
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _progress_bar(show_progress_bar, n_trials, n_trials - remaining)
        done = 0
        with threadpool_limits(limits=1), self._live(on_trial) as live:
            try:
                for _ in range(2 * remaining):
                    trial = self._next_trial(live, n_trials, deadline, poll_s, on_trial, bar)
                    if trial is None:
                        break
                    result = self._run_trial(live, trial, setup, space, prune)
                    if result is None:
                        continue
                    done += result.ok
                    if bar is not None and (result.ok or result.pruned):
                        bar.update(1)
                    on_trial(result)
                    interrupt.check()
            finally:
                if bar is not None:
                    bar.close()
        return done

    @contextmanager
    def _live(self, on_trial: Callable[[TrialResult], None]) -> Iterator[optuna.Study]:
        """The study to run trials on: the stored one when processes share it, else a copy in
        memory, under the trial lock held until the block ends."""
        if self._shared:
            yield self._study
            return
        with self._lock.hold(study_lock_key(self.name)):
            # No other process runs this study's trials now: any trial marked running is dead.
            running = self._study.get_trials(deepcopy=False, states=(_RUNNING,))
            for result in self._fail_stale_trials(running, all_dead=True):
                on_trial(result)
            self._replica = _Replica(self._study, self._backend)
            try:
                yield self._replica.study
            finally:
                self._replica = None

    def _next_trial(
        self,
        live: optuna.Study,
        n_trials: int,
        deadline: float | None,
        poll_s: float,
        on_trial: Callable[[TrialResult], None],
        bar,
    ) -> optuna.Trial | None:
        """A new (or queued) trial if the budget has room; None once it is spent or time is up."""
        while True:
            dead: list[TrialResult] = []
            expired = deadline is not None and time.monotonic() >= deadline
            # A local study holds the lock already (see _live).
            with contextlib.nullcontext() if self._replica else self._lock.hold(TRIAL_LOCK):
                trials = live.get_trials(deepcopy=False, states=_LIVE)
                running = [t for t in trials if t.state == _RUNNING]
                if running and self._replica is None:
                    dead = self._fail_stale_trials(running)
                    # some may have been failed (and requeued) just now
                    trials = live.get_trials(deepcopy=False, states=_LIVE)
                complete = sum(t.state in DONE for t in trials)
                trial = None
                if complete < n_trials and len(trials) < n_trials and not expired:
                    with warnings.catch_warnings():
                        # Optuna expects a heartbeat storage to be used by its own optimize();
                        # this loop records the heartbeat itself.
                        warnings.filterwarnings("ignore", message="Heartbeat of storage")
                        trial = live.ask()  # a queued trial (guess or retry) first
                    if self._replica is not None:
                        self._replica.started(trial)
                    else:
                        # At once, so that the trial is found stale if this process dies now.
                        self._backend.record_heartbeat(trial._trial_id)
            for result in dead:
                on_trial(result)
            if bar is not None:
                bar.n = complete
                bar.refresh()
            if trial is not None or complete >= n_trials or expired:
                return trial
            interrupt.check()
            time.sleep(poll_s)  # the last trials run in other processes; one may yet fail

    def _fail_stale_trials(
        self, running_trials: list[optuna.trial.FrozenTrial], *, all_dead: bool = False
    ) -> list[TrialResult]:
        """Fail the running trials (of ``running_trials``, just read) whose process stopped
        beating, or all of them if ``all_dead``; each is queued once more.

        Called under the trial lock, inside which every process asks for a trial and records
        its first heartbeat: a running trial with no heartbeat at all belongs to a process
        that died in between (kill -9). Optuna only fails trials whose heartbeat went
        stale, so those are failed here, at once, with the same retry.
        """
        running = {t.number for t in running_trials}
        if not running:
            return []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._fail(running_trials if all_dead else self._silent(running_trials))
            optuna.storages.fail_stale_trials(self._study)
        trials = self._study.get_trials(deepcopy=False)
        # Failed as dead here, not by their own process (whose tell(FAIL) does not take the
        # lock): those have a retry queued, linked to them.
        retried = {
            t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs
        }
        dead = []
        for t in trials:
            if t.state != optuna.trial.TrialState.FAIL or t.number not in running & retried:
                continue
            reason = "its process stopped sending heartbeats (killed or machine lost); retried once"
            # A queued trial (a guess, a retry) run from memory is stored with its fixed params
            # only, until it finishes (see _Replica).
            params = t.params or t.system_attrs.get("fixed_params", {})
            if {"penalty", "alpha"} <= params.keys():
                dead.append(TrialResult(t.number, _candidate(params), [], 0.0, False, error=reason))
        return dead

    def _silent(self, running: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
        """The running trials that never recorded a heartbeat."""
        ids = [t._trial_id for t in running]
        query = sqlalchemy.text(
            "SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids"
        ).bindparams(sqlalchemy.bindparam("ids", expanding=True))
        with self._backend.engine.connect() as connection:
            beating = {row[0] for row in connection.execute(query, {"ids": ids})}
        return [t for t in running if t._trial_id not in beating]

    def _fail(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        """Fail these running trials, and queue each once more."""
        retry = self._backend.get_heartbeat_stale_trial_callback()
        for trial_id in (t._trial_id for t in trials):
            try:
                self._backend.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # finished meanwhile
            if retry is not None:
                retry(self._study, self._backend.get_trial(trial_id))

    def _run_trial(
        self,
        live: optuna.Study,
        trial: optuna.Trial,
        setup: CVSetup,
        space: SearchSpace,
        prune: bool,
    ) -> TrialResult | None:
        """Evaluate ``trial`` with its heartbeat on and tell the study how it ended.

        None when another process failed the trial meanwhile, its heartbeats having come later
        than ``grace_period`` (an overloaded machine): that process logged and requeued it.
        """
        # Read when the trial was created (a queued retry carries it from the start).
        retry_of = trial._cached_frozen_trial.system_attrs.get("failed_trial")
        try:
            return self._evaluate_and_tell(live, trial, setup, space, retry_of, prune)
        except optuna.exceptions.UpdateFinishedTrialError:
            log.warning(
                "trial %d was failed by another process as stale while it ran here; its result "
                "is dropped (raise search.grace_period on an overloaded machine)",
                trial.number,
            )
            return None

    def _evaluate_and_tell(
        self,
        live: optuna.Study,
        trial: optuna.Trial,
        setup: CVSetup,
        space: SearchSpace,
        retry_of: int | None,
        prune: bool,
    ) -> TrialResult:
        beating = (
            _heartbeat(self._backend, trial._trial_id, self._heartbeat_interval)
            if self._replica is None
            else contextlib.nullcontext()
        )
        with beating:
            try:
                candidate = space.suggest(trial)
                # Pruning needs fold-by-fold scoring; the Gram path scores all folds at once.
                best = self._best_folds(live) if prune and not setup.fast.moments else None
                stopped = None
                try:
                    result = evaluate(
                        setup, candidate, number=trial.number, on_fold=best and FoldPruner(best)
                    )
                    if not np.isfinite(result.cv_score_mean):
                        raise TrialFailed(f"the CV score is {result.cv_score_mean}")
                except (*FIT_ERRORS, TrialFailed) as exc:
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    trial.set_user_attr("fail_reason", reason)
                    stopped = TrialResult(trial.number, candidate, [], 0.0, False, error=reason)
                except Pruned as stop:
                    trial.set_user_attr(FOLDS, {"cv": stop.scores})
                    stopped = TrialResult(
                        trial.number, candidate, stop.scores, 0.0, True, pruned=True
                    )
                if stopped is None:
                    # One attribute, one write: the storage's cost per trial is in its writes.
                    trial.set_user_attr(
                        FOLDS,
                        {
                            "cv": result.cv_scores,
                            "train": result.train_scores,
                            "converged": result.converged,
                        },
                    )
            except BaseException:  # interrupted, or a bug: the trial failed, the error goes up
                live.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                self._saved(trial)
                raise
        if stopped is not None:
            state = "PRUNED" if stopped.pruned else "FAIL"
            live.tell(trial, state=optuna.trial.TrialState[state])
            self._saved(trial)
            stopped.retry_of = retry_of
            return stopped
        live.tell(trial, result.cv_score_mean)
        self._saved(trial)
        result.retry_of = retry_of
        return result

    def _saved(self, trial: optuna.Trial) -> None:
        """Write a finished trial of a local study to its storage."""
        if self._replica is not None:
            self._replica.save(trial.number)


class _Replica:
    """A local study's trials in memory, written to the storage as each one finishes.

    On SQLite, asking, suggesting and telling cost about fifteen storage transactions a
    trial (~14 ms here, ten times a default trial's folds); in memory, microseconds. So the
    process that holds the study's lock runs them on this copy, and writes each new
    finished trial to the storage in one transaction. A queued trial (a guess or a retry)
    is already stored: it is marked running there when it starts, and completed in place
    (a few writes).

    Results are those of the stored study: the same sampler sees the same trials. A process
    killed mid-trial leaves no trace of that trial, except a queued one marked running,
    which the next run fails and queues again (``Study._live``).
    """

    def __init__(self, stored: optuna.Study, backend: optuna.storages.RDBStorage):
        self.stored = stored
        self.backend = backend
        self._stored_trials = list(stored.get_trials(deepcopy=False))
        self.study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            sampler=stored.sampler,
            directions=stored.directions,
        )
        self.study.add_trials(self._stored_trials)

    def started(self, trial: optuna.Trial) -> None:
        """Mark a queued trial running in the storage too, from now."""
        if trial.number < len(self._stored_trials):
            self.backend.set_trial_state_values(
                self._stored_trials[trial.number]._trial_id, _RUNNING
            )

    def save(self, number: int) -> None:
        """Write the finished trial ``number`` to the storage."""
        trial = self.study.get_trials(deepcopy=False)[number]
        if number >= len(self._stored_trials):
            self.stored.add_trial(trial)  # one transaction
            return
        before = self._stored_trials[number]
        trial_id = before._trial_id
        for name, value in trial.params.items():
            if name in before.params:  # a retry is queued with its params
                continue
            distribution = trial.distributions[name]
            internal = distribution.to_internal_repr(value)
            self.backend.set_trial_param(trial_id, name, internal, distribution)
        for key, value in trial.user_attrs.items():
            self.backend.set_trial_user_attr(trial_id, key, value)
        for key, value in trial.system_attrs.items():
            if before.system_attrs.get(key) != value:
                self.backend.set_trial_system_attr(trial_id, key, value)
        for step, value in trial.intermediate_values.items():
            self.backend.set_trial_intermediate_value(trial_id, step, value)
        self.backend.set_trial_state_values(trial_id, trial.state, trial.values)


_RUNNING = optuna.trial.TrialState.RUNNING
# The trials that count towards the budget (DONE, above), and those that may yet count.
_LIVE = (*DONE, _RUNNING)


def _progress_bar(show: bool, total: int, initial: int):
    """A bar of complete trials (every process's), or None."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="trials", unit="trial")


def _candidate(params: dict) -> Candidate:
    return Candidate(Penalty(params["penalty"]), float(params["alpha"]), params.get("l1_ratio"))
