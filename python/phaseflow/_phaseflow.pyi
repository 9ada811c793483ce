"""Type stubs of phaseflow's native module (Rust, PyO3). `phaseflow` re-exports every name."""

from os import PathLike
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__version__: str

class PhaseflowError(Exception):
    """Base of every error phaseflow raises."""

class SystemError(PhaseflowError):
    """A mistake in a system definition, with its position: `file` (a path, or
    `<equations>` for `System.from_equations`' string), `line` and `column` (1-based)."""

    file: str | None
    line: int | None
    column: int | None

class SpecError(PhaseflowError):
    """A run option that cannot be used; `key` names it (e.g. "solver", "sweep.rho")."""

    key: str | None

class NoAdapterError(PhaseflowError):
    """No GPU adapter: no Vulkan, Metal or DX12 driver (on Linux without a GPU, install
    Mesa's software Vulkan driver, `mesa-vulkan-drivers`)."""

class CancelledError(PhaseflowError):
    """The job was cancelled (`Job.cancel()`, or Ctrl-C while waiting)."""

class RunError(PhaseflowError):
    """The device failed during a run (lost device, out of memory, a driver error)."""

class System:
    """A system of equations: states, parameters and right-hand sides."""

    @staticmethod
    def builtin(name: str) -> System:
        """A built-in system by name (`systems()` lists them)."""
    @staticmethod
    def from_file(path: str | PathLike[str]) -> System:
        """A system file (TOML: name, states, parameters, equations, ...)."""
    @staticmethod
    def from_equations(
        states: dict[str, float] | list[str] | tuple[str, ...],
        parameters: dict[str, float] | list[str] | tuple[str, ...],
        equations: str,
        name: str = "system",
        **extra: Any,
    ) -> System:
        """A system from its parts: `states` and `parameters` map names to default values
        (or list the names, each 0 by default), `equations` holds one line `dx = ...` per state. Other system-file keys (`noise`,
        `events`, `jacobian`, `tspan`, `dt`, `inputs`, ...) may be given as keywords.
        Mistakes raise `SystemError` pointing into `equations` (file `<equations>`)."""
    @property
    def name(self) -> str: ...
    @property
    def assembled_text(self) -> str | None:
        """The system-file text `from_equations` assembled (what a run directory copies
        as system.toml); None for a built-in or a file."""
    @property
    def description(self) -> str: ...
    @property
    def states(self) -> list[str]:
        """State names, in the order of a result's state axis."""
    @property
    def parameters(self) -> list[str]:
        """Parameter names, in the order of the columns of `params`."""
    @property
    def state_defaults(self) -> dict[str, float]: ...
    @property
    def parameter_defaults(self) -> dict[str, float]: ...
    @property
    def equations(self) -> str: ...
    @property
    def stochastic(self) -> bool:
        """Whether the system has a noise term (an SDE)."""
    def jacobian(self) -> dict[str, Any] | None:
        """∂f/∂u as text: `{"entries": {(equation_state, state): expression},
        "temporaries": [(name, expression)]}` over the structurally non-zero entries;
        None where it cannot be derived."""

class Job:
    """A submitted simulation."""

    @property
    def state(self) -> Literal["queued", "running", "succeeded", "failed", "cancelled"]: ...
    def progress(self) -> dict[str, Any]:
        """`{"state", "done", "total", "elapsed_s", "running_s"}`; `done` counts trajectories."""
    def done(self) -> bool: ...
    def cancel(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool:
        """Waits without holding the GIL; True once finished. Ctrl-C cancels the job."""
    def result(self) -> dict[str, Any]:
        """The raw result (arrays moved from Rust, stats, settings); `phaseflow.Result`
        wraps it. Raises the job's error or `CancelledError`; can be taken once."""
    def tables(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Every trajectory's initial state [N, dim] and parameters [N, n_params]."""

class Engine:
    """One device with its compiled-kernel cache and runner threads."""

    def __init__(
        self,
        adapter: str = "auto",
        runners: int = 2,
        memory: int | None = None,
        max_result_bytes: int | None = None,
    ) -> None:
        """`adapter`: "auto", an index into `info()["adapters"]` or part of a name;
        `runners`: jobs run at once; `memory`: device bytes the jobs may plan for;
        `max_result_bytes`: the largest result a job may hand back."""
    @property
    def adapter(self) -> dict[str, Any]: ...
    def submit(
        self,
        system: System | str | PathLike[str],
        u0: npt.NDArray[np.float64] | None = None,
        params: npt.NDArray[np.float64] | None = None,
        **options: Any,
    ) -> Job:
        """Starts a simulation (the keywords of `phaseflow.simulate`) and returns its job."""
    def submit_monte_carlo(
        self,
        system: System | str | PathLike[str],
        u0: npt.NDArray[np.float64] | None = None,
        params: npt.NDArray[np.float64] | None = None,
        quantiles: list[float] | None = None,
        **options: Any,
    ) -> Job:
        """Starts a Monte Carlo run (`phaseflow.monte_carlo`'s keywords); its result is the
        dict `phaseflow.MonteCarlo` wraps."""
    def submit_lyapunov(
        self,
        system: System | str | PathLike[str],
        u0: npt.NDArray[np.float64] | None = None,
        params: npt.NDArray[np.float64] | None = None,
        **options: Any,
    ) -> Job:
        """Starts a Lyapunov-spectrum run (`phaseflow.lyapunov`'s keywords); its result is
        the dict `phaseflow.Lyapunov` wraps."""
    def submit_orbit_diagram(
        self,
        system: System | str | PathLike[str],
        u0: npt.NDArray[np.float64] | None = None,
        params: npt.NDArray[np.float64] | None = None,
        **options: Any,
    ) -> Job:
        """Starts an orbit diagram (`phaseflow.orbit_diagram`'s keywords)."""
    def submit_basins(self, system: System | str | PathLike[str], **options: Any) -> Job:
        """Starts a basins-of-attraction run (`phaseflow.basins`' keywords)."""

class MLP:
    """A trained multilayer perceptron (behind its Fourier-feature encoding) on a device."""

    @staticmethod
    def load(path: str | PathLike[str], engine: Engine | None = None) -> MLP:
        """A checkpoint written by `phaseflow fit -o` (model.safetensors) or `MLP.save`."""
    def predict(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The outputs [rows, outputs] at inputs `x` [rows, inputs]."""
    def save(self, path: str | PathLike[str]) -> None:
        """Writes the checkpoint as `phaseflow fit -o` writes model.safetensors."""
    @property
    def architecture(self) -> dict[str, Any]: ...
    @property
    def parameters(self) -> int: ...

def fit_mlp(
    x: npt.ArrayLike | None = None,
    y: npt.ArrayLike | None = None,
    *,
    engine: Engine,
    test: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    network: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    seed: int = 1,
    expr: str | None = None,
    inputs: int | None = None,
    domain: tuple[float, float] | None = None,
    points: int | None = None,
    image: str | None = None,
    holdout: bool = False,
) -> dict[str, Any]:
    """The fit `phaseflow.fit` wraps."""

def simulate_to_dir(
    system: System | str | PathLike[str], *, engine: Engine, overwrite: bool = False, **options: Any
) -> dict[str, Any]:
    """The run `phaseflow.simulate(..., out=DIR)` streams into DIR."""

def resume_dir(path: str | PathLike[str], *, engine: Engine) -> dict[str, Any]:
    """The run `phaseflow.resume` continues."""

def simulate_to_store(
    system: System | str | PathLike[str],
    *,
    engine: Engine,
    shard: str | tuple[int, int] | None = None,
    zarr_chunk: int | None = None,
    compression: str | None = None,
    overwrite: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """The shard `phaseflow.simulate(..., out="run.zarr", shard=...)` runs into the store."""

def create_store(
    system: System | str | PathLike[str],
    *,
    shards: int | None = None,
    max_shards: int = 64,
    zarr_chunk: int | None = None,
    compression: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Creates (or finds) the store of a run cut into `shards` shards (default: one per
    chunk, at most `max_shards`), nothing computed: `path`, `n`, `n_save`, `dim`, `n_params`,
    `precision`, `chunk_trajectories`, `adaptive`, `shards`, `ranges`."""

def store_status(path: str | PathLike[str]) -> dict[str, Any]:
    """Every shard's progress (`phaseflow store status --json`)."""

def finalize_store(path: str | PathLike[str]) -> dict[str, Any]:
    """`phaseflow store finalize`: the root's record once every shard is complete."""

def systems() -> list[str]:
    """Names of the built-in systems."""

def info() -> dict[str, Any]:
    """`{"version", "adapters": [...], "best": index}`; raises `NoAdapterError` with none."""

class DeepONet:
    """A trained DeepONet on a device: G(u)(y) for input functions u at locations y."""

    @staticmethod
    def load(path: str | PathLike[str], engine: Engine | None = None) -> DeepONet:
        """A checkpoint written by `phaseflow train deeponet` (model.safetensors) or by
        `DeepONet.save`, placed on `engine`'s device (None: the default engine)."""
    def predict(self, functions: npt.ArrayLike, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """G for every function (rows of `functions`, [F, sensors]) at every point (rows
        of `points`, [P, dims]): [F, P, outputs] in the data's units."""
    @property
    def sensors(self) -> int: ...
    @property
    def dims(self) -> int: ...
    @property
    def outputs(self) -> int: ...
    @property
    def parameters(self) -> int: ...
    @property
    def architecture(self) -> dict[str, Any]: ...
    def weights(self) -> dict[str, npt.NDArray[np.float64]]:
        """The weights under their PyTorch state_dict names, in PyTorch's shapes."""
    def save(self, path: str | PathLike[str]) -> None:
        """Writes a safetensors checkpoint (f32 weights, PyTorch names, architecture in the
        metadata), written whole or not at all."""

def train_deeponet(
    config: dict[str, Any] | str | PathLike[str],
    *,
    engine: Engine,
    train: tuple[Any, Any, Any] | dict[str, Any] | None = None,
    test: tuple[Any, Any, Any] | dict[str, Any] | None = None,
    out: str | PathLike[str] | None = None,
    overwrite: bool = False,
    iterations: int | None = None,
    callback: Any = None,
    resume: str | PathLike[str] | None = None,
) -> dict[str, Any]:
    """The native half of `phaseflow.train_deeponet` (which see): a dict with `model`,
    `history`, `summary` and `written`."""

def generate_deeponet_data(
    config: dict[str, Any] | str | PathLike[str], *, engine: Engine
) -> dict[str, Any]:
    """The native half of `phaseflow.generate_deeponet_data` (which see)."""

def estimate_fits(
    system: System | str | PathLike[str],
    observations: Any,
    times: Any,
    fit: dict[str, Any],
    *,
    engine: Engine,
    mask: Any = None,
    start: Any = None,
    weights: dict[str, float] | None = None,
    shared: bool = False,
    segments: int = 1,
    max_iterations: int | None = None,
    sensitivity_error: str | None = None,
    u0: Any = None,
    params: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """The native half of `phaseflow.estimate` (which see): a dict of arrays and settings."""
