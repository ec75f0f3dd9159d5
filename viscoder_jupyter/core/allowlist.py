"""The small world plotting code lives in: the modules, builtins and library calls the review allows.

The review of generated code (core/code_review.py) allows what is listed here and flags the rest;
it does not look for known bad names. The world:

- Modules. pandas, numpy, matplotlib, seaborn, plotly, scipy and statsmodels for the plot and its
  statistics, and pure helpers of the standard library (math, datetime, collections, itertools,
  textwrap, ...). `ALLOWED_TREES` are allowed with every public submodule under them;
  `ALLOWED_MODULES` only as themselves. Left out on purpose, though they sit inside allowed
  packages: the libraries' own file and network layers (`pandas.io`, `scipy.io`,
  `numpy.lib`/`numpy.ctypeslib`, `matplotlib.backends`, `plotly.io.kaleido`), their test
  suites, compilers and vendored helpers, and `statsmodels.formula` (its formulas are Python
  evaluated in the caller's namespace).
- Attributes of an allowed module follow one rule: an attribute that is itself a module must be
  an allowed module too (`matplotlib.os` is `os`, `np.ctypeslib` is `numpy.ctypeslib`: outside).
  The review decides it on the real module: it imports, in the reviewing process, the allowed
  modules the code imports (the inserted cell imports the same ones in the same kernel a moment
  later, and nothing else is ever imported) and looks each attribute up; where a library cannot
  be imported, an attribute named like a top-level module or a submodule is taken for one.
  Private (`_x`) attributes are outside every library's public API. A few stdlib modules allow
  only some names (`io`: the in-memory buffers; `typing`: its types).
- Builtins. `SAFE_BUILTINS`: no `open`, `eval`, `exec`, `compile`, `__import__`, `input`,
  `breakpoint`, `globals`, `vars`, `help`, `exit`; `getattr`/`setattr`/`delattr`/`hasattr`
  only called with a literal name.
- The libraries' I/O. Calls that read or write outside memory are told by their names, the
  libraries' own naming of their I/O API (`read_*`, `to_<format>`, `write_*`, `save*`,
  `load*`, `dump*`, `*Writer`, `memmap`, `fromfile`, ...), on any object, since a DataFrame or a
  figure is not a module; a text writer (`to_csv`) and a reader (`read_csv`) are allowed with an
  in-memory buffer. `QUALIFIED_CALLS` names the few functions of allowed modules that leave the
  process by another name (`matplotlib.use` picks a backend that may start a server).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
import warnings
from functools import lru_cache

ALLOWED_TREES = frozenset(
    {
        # numpy: arrays and the maths of them, not its file layer (numpy.lib) nor ctypes/f2py/testing
        "numpy.random", "numpy.linalg", "numpy.fft", "numpy.polynomial", "numpy.ma", "numpy.exceptions",
        "numpy.dtypes", "numpy.typing", "numpy.char", "numpy.strings",
        # pandas: frames and their plots, not pandas.io/compat/util/testing/core internals
        "pandas.plotting", "pandas.api.types", "pandas.tseries", "pandas.errors", "pandas.arrays",
        # matplotlib: what draws, not backends, cbook, testing or the TeX/dvi helpers
        "matplotlib.pyplot", "matplotlib.colors", "matplotlib.cm", "matplotlib.colormaps", "matplotlib.ticker",
        "matplotlib.dates", "matplotlib.patches", "matplotlib.lines", "matplotlib.collections",
        "matplotlib.gridspec", "matplotlib.markers", "matplotlib.path", "matplotlib.patheffects",
        "matplotlib.transforms", "matplotlib.text", "matplotlib.font_manager", "matplotlib.legend",
        "matplotlib.legend_handler", "matplotlib.axes", "matplotlib.axis", "matplotlib.figure",
        "matplotlib.colorbar", "matplotlib.scale", "matplotlib.animation", "matplotlib.table", "matplotlib.image",
        "matplotlib.style", "matplotlib.mlab", "matplotlib.projections", "matplotlib.spines",
        "matplotlib.container", "matplotlib.artist", "matplotlib.offsetbox", "matplotlib.sankey", "matplotlib.tri",
        "matplotlib.category", "matplotlib.units", "matplotlib.bezier", "matplotlib.quiver", "matplotlib.contour",
        "matplotlib.hatch", "matplotlib.stackplot", "matplotlib.streamplot", "matplotlib.widgets",
        "matplotlib.colorizer", "matplotlib.cycler", "matplotlib.layout_engine", "matplotlib.rcsetup",
        "mpl_toolkits.mplot3d", "mpl_toolkits.axes_grid1", "mpl_toolkits.axisartist",
        # seaborn: its plotting modules, not seaborn.utils (datasets from the network) or seaborn.external
        "seaborn.objects", "seaborn.axisgrid", "seaborn.categorical", "seaborn.distributions", "seaborn.matrix",
        "seaborn.miscplot", "seaborn.regression", "seaborn.relational", "seaborn.palettes", "seaborn.colors",
        "seaborn.cm", "seaborn.rcmod", "seaborn.algorithms",
        # plotly: figures, not plotly.io's image servers, plotly.tools or plotly.utils
        "plotly.express", "plotly.graph_objects", "plotly.graph_objs", "plotly.subplots", "plotly.figure_factory",
        "plotly.colors", "plotly.data",
        # scipy/statsmodels: statistics, not scipy.io, scipy.datasets (downloads) or statsmodels.formula
        "scipy.stats", "scipy.interpolate", "scipy.signal", "scipy.optimize", "scipy.ndimage", "scipy.cluster",
        "scipy.spatial", "scipy.special", "scipy.linalg", "scipy.integrate", "scipy.fft", "scipy.fftpack",
        "scipy.sparse", "scipy.constants", "scipy.odr",
        "statsmodels.api", "statsmodels.tsa", "statsmodels.graphics", "statsmodels.nonparametric",
        "statsmodels.stats", "statsmodels.regression", "statsmodels.robust", "statsmodels.distributions",
        # the standard library's pure helpers
        "math", "cmath", "statistics", "random", "datetime", "calendar", "zoneinfo", "collections", "itertools",
        "functools", "operator", "textwrap", "string", "re", "decimal", "fractions", "numbers", "copy", "heapq",
        "bisect", "enum", "dataclasses", "json", "colorsys", "warnings", "abc", "__future__",
    }
)  # fmt: skip
# Packages allowed as themselves (their public functions), without their other submodules.
ALLOWED_MODULES = frozenset(
    {"numpy", "pandas", "pandas.api", "matplotlib", "mpl_toolkits", "seaborn", "plotly", "plotly.io",
     "plotly.offline", "scipy", "statsmodels", "io", "typing", "IPython", "IPython.display"}
)  # fmt: skip
# Modules of which only some names are allowed.
ALLOWED_NAMES = {
    "io": frozenset({"StringIO", "BytesIO"}),  # memory, not files
    "IPython": frozenset({"display"}),
    "IPython.display": frozenset({"display", "clear_output"}),  # not HTML, Javascript, Markdown, Image, ...
}
# typing: its types (capitalised) and the helpers that evaluate nothing (get_type_hints evaluates text).
TYPING_HELPERS = frozenset({"cast", "overload", "final", "no_type_check", "TYPE_CHECKING"})

SAFE_BUILTINS = frozenset(
    {
        "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod",
        "complex", "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "id",
        "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct",
        "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted",
        "staticmethod", "str", "sum", "super", "tuple", "type", "zip", "aiter", "anext", "Ellipsis", "NotImplemented",
        "display",  # IPython's builtin in every kernel (raw=True is checked)
        "__name__",  # `if __name__ == '__main__':`
        "BaseException", "Exception", "ArithmeticError", "AssertionError", "AttributeError", "IndexError",
        "KeyError", "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError",
        "StopIteration", "TypeError", "ValueError", "ZeroDivisionError", "ImportError", "ModuleNotFoundError",
        "FloatingPointError", "UnboundLocalError", "RecursionError", "Warning", "UserWarning",
        "DeprecationWarning", "FutureWarning", "RuntimeWarning", "PendingDeprecationWarning",
    }
)  # fmt: skip
# Builtins left out, and why (the rest of what is not defined is "never defined").
UNSAFE_BUILTINS = {
    "eval": ("runs text as code", "dynamic"),
    "exec": ("runs text as code", "dynamic"),
    "compile": ("turns text into code", "dynamic"),
    "__import__": ("imports a module by a name built at run time", "dynamic"),
    "open": ("opens files", "file"),
    "input": ("waits for typed input", "outside"),
    "breakpoint": ("starts the debugger", "outside"),
    "globals": ("reaches the session's own variables", "dynamic"),
    "locals": ("reaches the session's own variables", "dynamic"),
    "vars": ("reaches the session's own variables", "dynamic"),
    "help": ("starts an interactive help", "outside"),
    "exit": ("stops the kernel", "process"),
    "quit": ("stops the kernel", "process"),
    "get_ipython": ("reaches the notebook's own machinery", "ipython"),
    "__builtins__": ("reaches every builtin", "dynamic"),
}
REFLECTION = frozenset({"getattr", "setattr", "delattr", "hasattr"})
SAFE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__", "__version__"})  # text, nothing to call

# The libraries' I/O API, by name, on any object. Text writers are allowed into memory.
TEXT_WRITERS = frozenset({"to_csv", "to_json", "to_html", "to_latex", "to_markdown", "to_string", "to_xml", "to_orc"})
DESTINATION_KEYWORDS = frozenset({"path_or_buf", "path", "buf", "excel_writer", "fname", "file", "filename"})
SOURCE_KEYWORDS = frozenset({"filepath_or_buffer", "path_or_buf", "path", "io", "filepath", "fname", "buf"})
_IO_NAME = re.compile(
    r"^(read_\w+|write_\w+|save\w*|imsave|imread|load|load_\w+|loadtxt|\w+_load|dump|dump_\w+|\w+_dump"
    r"|tofile|fromfile|fromregex|genfromtxt|memmap|open_memmap|DataSource|print_\w+|\w*Writer|ExcelFile"
    r"|HDFStore|PdfPages|addfont|findSystemFonts|get_sample_data|to_html5_video|to_file"
    r"|to_(pickle|excel|parquet|feather|hdf|sql|stata|clipboard|gbq|iceberg))$"
)
# Functions of allowed modules that leave the process under a name that does not say so.
QUALIFIED_CALLS = {
    "matplotlib.use": ("chooses a matplotlib backend (some start a server or a window)", "outside"),
    "matplotlib.pyplot.switch_backend": ("chooses a matplotlib backend (some start a server or a window)", "outside"),
    "matplotlib.rc_file": ("reads settings from a file", "file"),
    "matplotlib.pyplot.rc_file": ("reads settings from a file", "file"),
    "plotly.offline.plot": ("writes an HTML file and opens a browser", "file"),
}
EVALUATED_TEXT = frozenset({"query", "eval"})  # pandas evaluates these strings in the caller's namespace
FORMULA_NAMES = frozenset({"from_formula"})  # statsmodels/patsy formulas are Python in the caller's namespace
INTERPRETER_INTERNALS = re.compile(r"^(f|tb|gi|cr|ag|co)_[a-z]+$")  # frames, tracebacks, generators, code
# plotly renderers that show the figure in the notebook (the others open a browser or write files).
INLINE_RENDERERS = frozenset(
    {"notebook", "notebook_connected", "jupyterlab", "colab", "kaggle", "vscode", "nteract", "png", "jpeg",
     "jpg", "svg", "pdf", "json", "plotly_mimetype", "databricks", "azure", "cocalc", "sphinx_gallery",
     "sphinx_gallery_png"}
)  # fmt: skip
PLOTTING_BACKENDS = frozenset({"matplotlib", "plotly", "plotly.express"})  # pandas' plotting.backend
# matplotlib settings that run a program or start a server (LaTeX, ffmpeg, a backend).
PROGRAM_SETTINGS = re.compile(r"^(text\.usetex|text\.latex\.|pgf\.|animation\.|backend|webagg\.|ps\.usedistiller)")
PROGRAM_SETTINGS_KEY = re.compile(
    r"^(text\.usetex|text\.latex\.\w+|pgf\.\w+|animation\.\w+|backend(_fallback)?|webagg\.\w+|ps\.usedistiller)$"
)

# For the message only: what a module outside the world is known for.
KNOWN_OUTSIDE = {
    "network": {
        "socket", "ssl", "urllib", "urllib2", "urllib3", "http", "requests", "httpx", "aiohttp", "ftplib",
        "smtplib", "telnetlib", "poplib", "imaplib", "xmlrpc", "websocket", "websockets", "paramiko",
        "webbrowser", "socketserver", "asyncssh", "pycurl", "grpc",
    },
    "process": {"subprocess", "pty", "pexpect", "sh", "multiprocessing", "signal", "resource", "os", "sys"},
    "file": {"shutil", "tempfile", "pathlib", "glob", "zipfile", "tarfile", "sqlite3", "gzip", "bz2", "lzma",
             "shelve", "dbm", "fileinput", "csv"},
    "dynamic": {"importlib", "ctypes", "cffi", "marshal", "pickle", "dill", "cloudpickle", "code", "codeop",
                "runpy", "builtins", "types", "inspect", "gc", "pkgutil", "threading", "asyncio"},
    "secrets": {"getpass", "keyring", "pwd", "spwd", "netrc", "secretstorage"},
    "probe": {"platform", "psutil", "viscoder_jupyter"},
}  # fmt: skip


def is_allowed_module(name: str) -> bool:
    if any(part.startswith("_") for part in name.split(".") if part != "__future__"):
        return False
    if name in ALLOWED_MODULES or name in ALLOWED_TREES:
        return True
    return any(name.startswith(tree + ".") for tree in ALLOWED_TREES)


def allowed_name(module: str, name: str) -> bool:
    """May code take `name` from the allowed `module` (before the checks every attribute gets)?"""
    if module == "typing":
        return name[:1].isupper() or name in TYPING_HELPERS
    names = ALLOWED_NAMES.get(module)
    return names is None or name in names


def outside_category(module: str) -> str:
    top = module.split(".")[0]
    if top == "IPython":
        return "display" if module.startswith("IPython.display") else "ipython"
    return next((c for c, names in KNOWN_OUTSIDE.items() if top in names), "outside")


def io_name(name: str) -> bool:
    return bool(_IO_NAME.match(name))


def top_level_module_name(name: str) -> bool:
    """A name Python knows as a top-level module (stdlib, or installed): `os`, `subprocess`."""
    return name in sys.stdlib_module_names or _installed_top_level(name)


@lru_cache(maxsize=512)
def _installed_top_level(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=256)
def loaded_module(name: str) -> types.ModuleType | None:
    """The allowed module `name`, imported in this process (only allowed ones); None if it cannot be."""
    if not is_allowed_module(name):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # not installed here: the code fails at its import anyway
        return None


_MISSING = object()


def module_attribute(module: str, name: str) -> tuple[str, str | None]:
    """What `module.name` is: ("module", its real name), ("object", None) or ("missing", None).

    Looked up on the real module where it can be imported (see the module docstring); otherwise
    a name that is a top-level module or a submodule is taken for a module."""
    mod = loaded_module(module)
    if mod is None:
        if is_allowed_module(f"{module}.{name}") or _submodule_exists(module, name):
            return "module", f"{module}.{name}"
        return ("module", name) if top_level_module_name(name) else ("object", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = getattr(mod, name, _MISSING)
            if value is _MISSING and _submodule_exists(module, name):
                value = importlib.import_module(f"{module}.{name}") if is_allowed_module(f"{module}.{name}") else None
                if value is None:
                    return "module", f"{module}.{name}"
    except Exception:
        return "missing", None
    if value is _MISSING:
        return "missing", None
    if isinstance(value, types.ModuleType):
        return "module", value.__name__
    return "object", None


@lru_cache(maxsize=512)
def _submodule_exists(module: str, name: str) -> bool:
    """A file for `module.name` exists (found without importing it)."""
    try:
        parent = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return False
    if parent is None or not parent.submodule_search_locations:
        return False
    try:
        return importlib.util.find_spec(f"{module}.{name}") is not None
    except (ImportError, ValueError, AttributeError):
        return False
