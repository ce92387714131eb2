"""Run the notebooks of a profile with papermill and leave a report folder behind.

reports/<profile>/<notebook>/ gets the executed notebook, its HTML, its results.csv,
claims.csv, headline.png and status.json; reports/<profile>/ gets index.html and the
concatenated results.csv and claims.csv of every notebook run into it so far.

Everything that can be wrong with the request (notebook names, parameter files, the
kernel) is checked before the first notebook starts. A failing notebook does not stop the
others; `run_study` returns every record and the caller decides the exit status.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from . import compute, report
from . import params as params_mod
from .cache import Cache, check_writable, default_root

REPO = Path(__file__).resolve().parents[2]
DEFAULT_KERNELS = ("python3", "transferlab")
# Notebooks that read the other notebooks' claims.csv (factors.claims_summary).
READS_SIBLINGS = ("09_optimized",)


def default_notebooks_dir() -> Path:
    return REPO / "notebooks"


def find_notebooks(notebooks_dir: Path) -> list[Path]:
    """The study notebooks `NN_name.ipynb` of a folder, in order."""
    found = sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise ValueError(f"no notebooks named NN_*.ipynb in {notebooks_dir}")
    return found


def _short(stem: str) -> str:
    return stem.split("_", 1)[1]


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str]) -> list[Path]:
    """The notebooks named in `only` ("01_width" or "width"); all of them if `only` is empty."""
    if not only:
        return list(notebooks)
    by_name = {nb.stem: nb for nb in notebooks} | {_short(nb.stem): nb for nb in notebooks}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        valid = [nb.stem for nb in notebooks]
        raise ValueError(f"--only {unknown} names no notebook; valid names: {valid}")
    wanted = {by_name[name] for name in only}
    return [nb for nb in notebooks if nb in wanted]


# --- the kernel -------------------------------------------------------------------------
# papermill starts the kernel that the kernelspec of `kernel_name` describes. jupyter_client
# replaces a bare "python"/"python3" in its argv by the runner's sys.executable, but a spec
# with an absolute path (typically ~/.local/share/jupyter/kernels/python3 left by another
# environment, which shadows this environment's own) runs another interpreter, where
# transferlab may be missing or stale. So the chosen spec must run this very interpreter.


def _spec_python(kernel_name: str) -> str:
    """The interpreter the kernelspec `kernel_name` would start."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        known = sorted(manager.find_kernel_specs())
        raise ValueError(f"kernel={kernel_name!r} is not installed; installed: {known}") from None
    if spec.language.lower() != "python" or not spec.argv:
        raise ValueError(f"kernel={kernel_name!r} is a {spec.language!r} kernel, not Python")
    major, minor = sys.version_info[:2]
    if spec.argv[0] in {"python", f"python{major}", f"python{major}.{minor}"}:
        return sys.executable  # what jupyter_client's KernelManager substitutes
    return spec.argv[0]


def _same_interpreter(python: str) -> bool:
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return True
    # Another spelling (bin/python3.11 for bin/python) of the same environment is fine.
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.prefix)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and os.path.realpath(out.stdout.strip()) == os.path.realpath(
        sys.prefix
    )


def resolve_kernel(kernel_name: str | None = None) -> str:
    """A kernel name whose kernelspec runs this interpreter (sys.executable).

    With no name: "python3", else "transferlab" (what `make install` registers).
    Raises ValueError saying which interpreter a spec runs and how to register a good one.
    """
    candidates = [kernel_name] if kernel_name else list(DEFAULT_KERNELS)
    seen = []
    for name in candidates:
        try:
            python = _spec_python(name)
        except ValueError as err:
            if kernel_name:
                raise
            seen.append(str(err))
            continue
        if _same_interpreter(python):
            return name
        seen.append(f"kernel {name!r} runs {python}")
    fix = f"{sys.executable} -m ipykernel install --sys-prefix --name transferlab"
    raise ValueError(
        f"no kernel runs this interpreter ({sys.executable}): {'; '.join(seen)}. "
        f"Register one with `{fix}` and pass --kernel transferlab"
    )


# --- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One notebook to run: its file, its parameters, where its outputs go.

    The notebook runs into `staging` (its `output_dir`); only a successful run replaces
    `folder`, so a failed rerun leaves the previous report where it was.
    """

    notebook: Path
    parameters: dict[str, Any]
    folder: Path

    @property
    def name(self) -> str:
        return self.notebook.stem

    @property
    def staging(self) -> Path:
        return staging_folder(self.folder)


def staging_folder(folder: Path) -> Path:
    """Where a notebook of `folder` runs before its report replaces `folder` (hidden)."""
    return folder.with_name(f".{folder.name}.new")


def describe_failure(err: BaseException) -> str:
    """One line naming the failing cell (for papermill errors) and the exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        first = next((ln for ln in err.source.splitlines() if ln.strip()), "")
        return f"cell In [{err.exec_count}] ({first.strip()[:80]!r}): {err.ename}: {err.evalue}"
    return f"{type(err).__name__}: {err}"


# The kernels run on this machine, over loopback: their start-up warning that TCP is not
# encrypted would only bury the run's own messages (errors still show).
_KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def _execute(job: Job, title: str, kernel: str, cwd: Path, log_output: bool,
             progress_bar: bool) -> str:
    """Run the notebook into job.staging and render its HTML; the error, or ""."""
    import papermill

    executed = job.staging / f"{job.name}.ipynb"
    error = ""
    try:
        papermill.execute_notebook(
            str(job.notebook),
            str(executed),
            parameters=job.parameters,
            kernel_name=kernel,
            language="python",
            cwd=str(cwd),
            progress_bar=progress_bar,
            log_output=log_output,
            start_timeout=180,
            extra_arguments=_KERNEL_ARGUMENTS,
        )
    except Exception as err:  # any failure of one notebook must not stop the others
        error = describe_failure(err)
    if executed.exists():
        try:
            report.render_html(executed, job.staging / f"{job.name}.html", title)
        except Exception as err:
            error = error or f"HTML rendering failed: {type(err).__name__}: {err}"
    return error


def replace_folder(old: Path, new: Path) -> None:
    """Put folder `new` where `old` is, never leaving neither behind."""
    if old.exists():
        trash = old.with_name(f".{old.name}.old")
        shutil.rmtree(trash, ignore_errors=True)
        old.rename(trash)
        new.rename(old)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        new.rename(old)


def run_job(
    job: Job, kernel: str, cwd: Path, log_output: bool = True, progress_bar: bool = True
) -> report.RunRecord:
    """Execute one notebook, render its HTML (partial if it failed), save its status.

    A success replaces the notebook's report folder. A failure replaces it only when there
    was no earlier report; otherwise the earlier one stays and the failed run is kept in
    `.NAME.failed/` beside it (its path is in the record's error).
    """
    shutil.rmtree(job.staging, ignore_errors=True)  # no stale tables from a killed run
    job.staging.mkdir(parents=True)
    title = report.notebook_title(job.notebook)
    start = time.perf_counter()
    error = _execute(job, title, kernel, cwd, log_output, progress_bar)
    record = report.RunRecord(
        name=job.name,
        title=title,
        status="failed" if error else "ok",
        seconds=round(time.perf_counter() - start, 2),
        finished=datetime.now().isoformat(timespec="seconds"),
        error=error,
    )
    record.save(job.staging)
    previous = report.RunRecord.load(job.folder)
    if error and previous is not None and previous.status == "ok":
        failed = job.folder.with_name(f".{job.folder.name}.failed")
        shutil.rmtree(failed, ignore_errors=True)
        job.staging.rename(failed)
        return replace(record, error=f"{error} (previous report kept; this run: {failed})")
    replace_folder(job.folder, job.staging)
    return record


def plan(
    profile: str,
    only: Sequence[str] = (),
    out: Path | str = "reports",
    notebooks_dir: Path | None = None,
    params_dir: Path | None = None,
    overrides: dict[str, Any] | None = None,
    stderr: TextIO | None = None,
) -> list[Job]:
    """The jobs of a run, every request checked; raises ValueError before any run.

    Each notebook's parameters are validated by its schema, then by the study
    (factors.check_request: task names, levels, data_root); the cache must be writable.
    """
    from . import factors  # the study and the world: only for a request that parses
    from .study import Unavailable

    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    selected = select_notebooks(find_notebooks(notebooks_dir), only)
    profile_dir = Path(out).resolve() / profile
    check_writable()
    jobs, skipped = [], []
    for nb in selected:
        values = params_mod.load_params(profile, nb.stem, params_dir)
        folder = profile_dir / nb.stem
        values |= dict(overrides or {})
        values |= {"profile": profile, "output_dir": str(staging_folder(folder))}
        checked = params_mod.validate(nb.stem, values)
        try:
            factors.check_request(nb.stem, checked)
        except (Unavailable, FileNotFoundError) as err:
            # A level this backend cannot produce, or weights not on this machine: a bad
            # request when the notebook was asked for by name, else a notebook to skip.
            if only:
                raise ValueError(f"notebook {nb.stem}: {err}") from None
            skipped.append(f"{nb.stem}: {err}")
            continue
        except ValueError as err:
            raise ValueError(f"notebook {nb.stem}: {err}") from None
        jobs.append(Job(notebook=nb.resolve(), parameters=values, folder=folder))
    if not jobs:
        raise ValueError(f"no notebook can run on profile {profile!r}: " + "; ".join(skipped))
    for why in skipped:
        print(f"skipping {why}", file=stderr or sys.stderr)
    return jobs


def study_plan(jobs: Sequence[Job]):
    """The expensive units (transferlab.plan) the notebooks of `jobs` will need."""
    from . import plan as plan_mod

    return plan_mod.build((job.name, params_mod.validate(job.name, job.parameters)) for job in jobs)


def compute_plan(jobs: Sequence[Job], cluster, progress_bar: bool = True,
                 stderr: TextIO | None = None) -> None:
    """Fill the cache with what `jobs` need, on the Dask cluster `cluster` (a ClusterConfig)."""
    from . import parallel
    from . import plan as plan_mod

    stderr = stderr or sys.stderr
    units = study_plan(jobs)
    print(f"plan: {len(units.pending)} of {len(units.units)} units to compute", file=stderr)
    if not units.pending:
        return  # warm: no cluster to start
    with parallel.connect(cluster, default_root().resolve(), stderr) as client:
        done = parallel.execute(units, client, progress_bar, stderr)
    plan_mod.remember_rates(Cache(), units, done.seconds)  # the next plan here is priced by it
    failures = done.failures
    for line in failures[:10]:
        print(f"unit failed (its notebook will compute it): {line}", file=stderr)
    if len(failures) > 10:
        print(f"... and {len(failures) - 10} more failed units", file=stderr)


def run_jobs(jobs: Sequence[Job], kernel: str, cwd: Path, at_once: int = 1,
             log_output: bool = True, progress_bar: bool = True,
             stderr: TextIO | None = None) -> list[report.RunRecord]:
    """Run the notebooks of `jobs`, `at_once` at a time; their records in the order of `jobs`.

    Several at a time, their cell output and progress bars would interleave: each says only
    when it starts and ends.
    """
    from concurrent.futures import ThreadPoolExecutor

    stderr = stderr or sys.stderr
    quiet = at_once > 1

    def one(i: int, job: Job) -> report.RunRecord:
        print(f"[{i}/{len(jobs)}] {job.name} ({job.parameters['profile']}, kernel {kernel})",
              file=stderr)
        record = run_job(job, kernel, cwd, log_output and not quiet, progress_bar and not quiet)
        if record.status != "ok":
            print(f"FAILED {job.name}: {record.error}", file=stderr)
        elif quiet:
            print(f"done {job.name} ({record.seconds:.0f} s)", file=stderr)
        return record

    # A notebook that reads its siblings' reports runs once they are all written.
    first = [(i, j) for i, j in enumerate(jobs, 1) if j.name not in READS_SIBLINGS]
    last = [(i, j) for i, j in enumerate(jobs, 1) if j.name in READS_SIBLINGS]
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        done = dict(zip([i for i, _ in first], pool.map(one, *zip(*first, strict=True)),
                        strict=True)) if first else {}
    done |= {i: one(i, j) for i, j in last}
    return [done[i] for i in sorted(done)]


@contextlib.contextmanager
def exported(env: dict[str, str]) -> Iterator[None]:
    """`env` in os.environ (where not already set) while the block runs: kernels inherit it.

    The runner exports its precision policy so that every kernel and local worker names
    cache keys as the runner's plan did, without importing torch to ask the CPU
    (compute.child_policy_env).
    """
    with compute.environ_restored(env):
        os.environ.update({k: v for k, v in env.items() if k not in os.environ})
        yield


def run_study(
    profile: str,
    only: Sequence[str] = (),
    out: Path | str = "reports",
    kernel: str | None = None,
    notebooks_dir: Path | None = None,
    params_dir: Path | None = None,
    log_output: bool = True,
    progress_bar: bool = True,
    stderr: TextIO | None = None,
    overrides: dict[str, Any] | None = None,
    workers: int | None = 0,
    scheduler: str | None = None,
) -> list[report.RunRecord]:
    """Run the profile's notebooks (or those in `only`) into out/<profile>/ and index them.

    `workers` 0 (and no `scheduler`): each notebook computes what it needs, one after the
    other. Otherwise the plan's units are computed first on Dask (`workers` local processes,
    None: one per core; or the cluster at `scheduler`), then the notebooks run several at a
    time and read the cache. Returns the records of the notebooks run now; failures are also
    named on `stderr`.
    """
    from .parallel import ClusterConfig, cores

    stderr = stderr or sys.stderr
    cluster = ClusterConfig(workers, scheduler)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    with exported(compute.child_policy_env()):  # for the plan's keys, kernels and workers
        jobs = plan(profile, only, out, notebooks_dir, params_dir, overrides, stderr)
        kernel_name = resolve_kernel(kernel)
        profile_dir = Path(out).resolve() / profile
        if not cluster.serial:
            compute_plan(jobs, cluster, progress_bar, stderr)
        at_once = 1 if cluster.serial else max(1, min(len(jobs), cluster.workers or cores()))
        records = run_jobs(jobs, kernel_name, notebooks_dir.resolve(), at_once, log_output,
                           progress_bar, stderr)
    every = [nb.stem for nb in find_notebooks(notebooks_dir)]
    indexed = report.collect(profile_dir, every)
    report.write_tables(profile_dir, indexed)
    index = report.write_index(profile_dir, profile, indexed)
    failed = [r.name for r in records if r.status != "ok"]
    summary = f"{len(records) - len(failed)}/{len(records)} notebooks ok; report: {index}"
    print(summary + (f"; failed: {failed}" if failed else ""), file=stderr)
    return records
