"""``python -m pipeline [overrides]``: compose the Hydra config and run the tuning job.

User errors (bad config, bad data) print one line to stderr and exit 2; Ctrl-C exits 130
and SIGTERM 143, each after marking the trial in flight failed and ending the job's MLflow
runs as KILLED.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeline import interrupt
from pipeline.lock import Locked

EXIT_USER_ERROR = 2
EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later
EXIT_IO = 74  # EX_IOERR: a store could not be written mid-run


def _dispatch(cfg) -> int:
    """Run the job ``cfg.job`` names; return the exit code."""
    from pipeline import report
    from pipeline.config import Job

    if cfg.job == Job.predict:
        from pipeline import predict

        result = predict.run(cfg)
        print(
            f"wrote {result.rows} predictions of {result.model} "
            f"v{result.version} to {result.output}"
        )
        return 0
    if cfg.job in (Job.verify, Job.rollback):
        return _registry_job(cfg)
    from pipeline import tune
    from pipeline.summary import StudySummary, WorkerSummary

    summary = tune.run(cfg)
    if isinstance(summary, WorkerSummary):
        t = summary.trials
        print(
            f"worker done: study {summary.study}: {t['complete']}/{summary.n_trials} "
            f"trials complete ({summary.trials_here} here, {t['failed']} failed); "
            f"parent run {summary.parent_run_id}",
            flush=True,
        )
        return 0
    print(report.summary_text(summary), flush=True)
    promotion = summary.promotion if isinstance(summary, StudySummary) else None
    rejected = promotion is not None and promotion.status == "rejected"
    return cfg.registry.reject_exit_code if rejected else 0


def _registry_job(cfg) -> int:
    """``job=verify`` (the champion's files are those registered) or ``job=rollback``."""
    from pipeline import config, constraints, registry
    from pipeline.config import Job
    from pipeline.model_store import Registry

    cfg = constraints.validate(cfg)
    store = Registry.open(cfg.tracking.uri, timeout=cfg.tracking.connect_timeout)
    name = config.model_name(cfg)
    if cfg.job == Job.verify:
        version = store.verify(name, cfg.predict.alias)
        print(f"{name}@{cfg.predict.alias} is version {version}: its files are the ones registered")
        return 0
    interrupt.check()
    old, new = registry.rollback(store, name, reason=cfg.registry.reason)
    print(f"champion of {name}: version {old} -> {new}")
    return 0


def _one_line(exc: BaseException) -> str:
    """A Hydra/OmegaConf error as one line naming the key (and the choices, if any)."""
    cause = exc.__cause__ or exc
    lines = [ln.strip() for ln in str(cause).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(cause).__name__
    key = getattr(cause, "full_key", None)
    if key and key not in text:
        text = f"{key}: {text}"
    override = str(exc).strip().splitlines()[0] if cause is not exc else ""
    if override.startswith("Error merging override "):
        detail = text.removeprefix(f"{key}: ") if key else text
        text = f"{override.removeprefix('Error merging override ')}: {detail}"
    elif override.startswith("Could not override"):
        text = f"{override} {text}"
    options = _options(lines)
    if options:
        text = f"{text} (choose one of: {', '.join(options)})"
    return text


def _options(lines: list[str]) -> list[str]:
    """The choices Hydra lists under 'Available options in ...', schemas left out."""
    found: list[str] = []
    listing = False
    for line in lines:
        if line.startswith("Available options"):
            listing = True
        elif listing and (" " in line or line.endswith(":")):
            break
        elif listing and not line.endswith("_schema"):
            found.append(line)
    return found


def _user_error(exc: BaseException) -> SystemExit:
    from pipeline.errors import UserError

    prefix = "error" if isinstance(exc, UserError) else "config error"
    text = str(exc) if isinstance(exc, UserError) else _one_line(exc)
    print(f"{prefix}: {text}", file=sys.stderr)
    return SystemExit(getattr(exc, "exit_code", EXIT_USER_ERROR))


def _scrub_hydra_files(cfg) -> None:
    """Hydra saved the config and the overrides as given (``.hydra/*.yaml``); the store
    URLs with a password in them are masked, as everywhere else the pipeline writes."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from pipeline import stores

    secrets = stores.secret_urls(OmegaConf.to_container(cfg, resolve=False))
    hydra = HydraConfig.get()
    if not secrets or hydra.output_subdir is None:
        return
    for path in (Path(hydra.runtime.output_dir) / hydra.output_subdir).glob("*.yaml"):
        text = path.read_text()
        for url in sorted(secrets, key=len, reverse=True):
            text = text.replace(url, secrets[url])
        path.write_text(text)


def main() -> int:
    # Hydra re-raises composition errors instead of printing them, so they are reported here.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    import hydra
    from hydra.errors import HydraException
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from pipeline import config, constraints, log_pool
    from pipeline.errors import StoreWriteError, UserError

    config.register_configs()

    @hydra.main(config_path="../conf", config_name="config", version_base=None)
    def _run(cfg: DictConfig) -> None:
        # Raised inside the job, an exception would make Hydra print its own lines first.
        try:
            _scrub_hydra_files(cfg)  # first: before any error can end the job
            job = OmegaConf.to_object(cfg)
            constraints.check_known_keys(
                OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False), job
            )
            code = _dispatch(job)
        except (UserError, OmegaConfBaseException) as exc:
            raise _user_error(exc) from None
        except Locked as exc:
            print(f"locked: another retraining job is running ({exc})", file=sys.stderr)
            raise SystemExit(EXIT_LOCKED) from None
        except BrokenPipeError:  # stdout closed early (`| head`): not a store's failure
            raise
        except (StoreWriteError, OSError) as exc:  # mid-run: a full disk, a read-only folder
            text = " ".join(str(exc).split()) or type(exc).__name__
            print(f"error: writing the stores failed: {text}", file=sys.stderr)
            raise SystemExit(EXIT_IO) from None
        finally:
            log_pool.discard()  # idle workers need not finish starting before the job ends
        if code:
            raise SystemExit(code)

    interrupt.install()
    try:
        _run()
    except (HydraException, OmegaConfBaseException) as exc:
        raise _user_error(exc) from None
    except KeyboardInterrupt as exc:
        why = str(exc) or "SIGINT"
        print(f"stopped by {why}: run the same command again to resume the study", file=sys.stderr)
        return exc.exit_code if isinstance(exc, interrupt.Interrupted) else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
