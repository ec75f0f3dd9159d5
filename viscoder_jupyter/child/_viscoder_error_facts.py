"""Runs inside the child kernel as module `_viscoder_error_facts`: when an attempt raises, a few
short, true facts about the live objects at the failure, for the model's feedback turn.

Not imported here: `boot.py` sends this file's text to the kernel (as it does `_viscoder_child.py`)
and sets MIME on it. The traceback says what went wrong; these facts say what is there instead,
read from the installed libraries at the moment of the error (the object's real type and
attribute names, the callee's real keywords, the shapes of the values on the failing line, the
names a colormap or marker may take). Nothing here is a table of versions or of known mistakes.
Gathering facts never fails the attempt and stays within MAX_FACTS lines of MAX_CHARS each.
"""

import ast
import difflib
import inspect
import re
import sys

MIME = ""  # set by the boot code
MAX_FACTS = 6
MAX_CHARS = 240
_CLOSEST = 5


def install(ip):
    # post_run_cell runs after the traceback went out, with the exception still in hand.
    ip.events.register("post_run_cell", lambda result: report(ip, result))


def report(ip, result):
    exc = result.error_in_exec
    if exc is None or not isinstance(exc, Exception) or not result.info.store_history:
        return  # not an attempt (only attempts store history), or an interrupt
    try:
        facts = facts_for(exc, ip.user_ns)
    except Exception:  # a fact is a hint: never a failure of its own
        return
    if facts:
        from IPython.display import publish_display_data

        publish_display_data({MIME: {"facts": facts}})


def facts_for(exc, user_ns):
    """The facts for one exception, most useful first, deduplicated and bounded."""
    frames = _traceback_frames(exc)
    cell = next((f for f, _ in reversed(frames) if f.f_globals is user_ns), None)
    line = _failing_line(frames, user_ns)
    message = str(exc)
    facts = []
    if isinstance(exc, AttributeError):
        facts += _attribute_facts(exc, frames)
    if "unexpected keyword argument" in message:
        facts += _line_keyword_facts(message, line, cell)
    if isinstance(exc, (ValueError, TypeError, IndexError)) and _SHAPE_WORDS.search(message):
        facts += _value_facts(line, cell)
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        facts += _name_facts(message)
    kept = []
    for fact in facts:
        fact = fact if len(fact) <= MAX_CHARS else fact[: MAX_CHARS - 3] + "..."
        if fact not in kept:
            kept.append(fact)
    return kept[:MAX_FACTS]


# ---- where it failed ------------------------------------------------------------------------


def _traceback_frames(exc):
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _failing_line(frames, user_ns):
    """The source line of the attempt's code that was running when it failed."""
    import linecache

    for frame, lineno in reversed(frames):
        if frame.f_globals is user_ns:
            return linecache.getline(frame.f_code.co_filename, lineno).strip()
    return ""


# ---- AttributeError: what the object is, and what it has ------------------------------------


def _attribute_facts(exc, frames):
    name = getattr(exc, "name", None)
    obj = getattr(exc, "obj", None)
    if not name:
        return []
    if obj is None:  # matplotlib's Artist.set raises without obj: the artist is `self` where it raised
        return _artist_property_facts(str(exc), name, frames)
    facts = []
    kind = _kind(obj)
    close = _closest(name, _public_names(obj))
    facts.append(
        f"The object is {kind}; it has no attribute {name!r}"
        + (f"; its closest attributes are {_listed(close)}." if close else ", nor one with a similar name.")
    )
    axes = _axes_array(obj)
    if axes is not None:
        facts.append(
            f"It is a numpy array of Axes with shape {axes.shape} (plt.subplots with several panels returns one): "
            f"index it, e.g. {_index_example(axes.shape)}.{name}(...), or loop over its .flat."
        )
    facts += _where_else(obj, name)
    return facts


def _kind(obj):
    if inspect.ismodule(obj):
        return f"the module {obj.__name__}"
    cls = type(obj)
    described = f"a {cls.__module__.split('.')[0]} {cls.__qualname__}"
    shape = getattr(obj, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        described += f" of shape {shape}"
    return described


def _public_names(obj):
    try:
        return [n for n in dir(obj) if not n.startswith("_")]
    except Exception:
        return []


def _axes_array(obj):
    np = sys.modules.get("numpy")
    Axes = _matplotlib_class("matplotlib.axes", "Axes")
    if np is None or Axes is None or not isinstance(obj, np.ndarray) or obj.dtype != object or not obj.size:
        return None
    return obj if all(isinstance(a, Axes) for a in obj.flat) else None


def _index_example(shape):
    return "axes[" + ", ".join("0" for _ in shape) + "]"


def _where_else(obj, name):  # obj None: nothing to exclude
    """Where the attribute does exist among the objects plotting code confuses: the pyplot
    module, an Axes, a Figure, an Axis, a numpy array, a pandas DataFrame or Series."""
    found = []
    for template, kind, probe in _relatives():
        if kind is None or kind is obj or (obj is not None and isinstance(kind, type) and isinstance(obj, kind)):
            continue
        if hasattr(probe, name):
            found.append(template.format(name=name))
    return [f"{name!r} exists on {_listed(found, quote=False)}."] if found else []


def _relatives():
    """(how to reach it, its class or module, an object to look on). Axes, Figure and Axis set
    most attributes per instance (ax.yaxis), so a scratch figure outside pyplot is looked on."""
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    Figure = _matplotlib_class("matplotlib.figure", "Figure")
    figure = axes = None
    if Figure is not None:
        try:
            figure = Figure()
            axes = figure.add_subplot()
        except Exception:
            pass
    return [
        ("the pyplot module (plt.{name})", sys.modules.get("matplotlib.pyplot"), sys.modules.get("matplotlib.pyplot")),
        (
            "an Axes (ax.{name}, with fig, ax = plt.subplots() or ax = plt.gca())",
            _matplotlib_class("matplotlib.axes", "Axes"),
            axes,
        ),
        ("a Figure (fig.{name}, with fig = plt.gcf())", Figure, figure),
        (
            "an Axis (ax.xaxis.{name}, ax.yaxis.{name})",
            _matplotlib_class("matplotlib.axis", "Axis"),
            getattr(axes, "xaxis", None),
        ),
        ("a numpy ndarray", getattr(np, "ndarray", None), getattr(np, "ndarray", None)),
        ("a pandas DataFrame", getattr(pd, "DataFrame", None), getattr(pd, "DataFrame", None)),
        ("a pandas Series", getattr(pd, "Series", None), getattr(pd, "Series", None)),
    ]


def _matplotlib_class(module, name):
    mod = sys.modules.get(module)
    return getattr(mod, name, None)


def _artist_property_facts(message, name, frames):
    """`Line2D.set() got an unexpected keyword argument 'errorbar'`: the artist's settable properties."""
    match = re.match(r"(\w+)\.set\(\)", message)
    if not match:
        return []
    for frame, _ in reversed(frames):
        artist = frame.f_locals.get("self")
        if artist is not None and type(artist).__name__ == match.group(1):
            properties = _settable_properties(artist)
            if properties:
                return [_keyword_fact(f"A {match.group(1)}", name, properties, "properties")] + _keyword_elsewhere(name)
    return []


def _settable_properties(artist):
    artist_module = sys.modules.get("matplotlib.artist")
    try:
        return sorted(artist_module.ArtistInspector(artist).get_setters())
    except Exception:
        return []


# ---- unexpected keyword: what the callee takes ----------------------------------------------


def _line_keyword_facts(message, line, cell):
    """The calls on the failing line that pass the keyword (seaborn hands an unknown keyword on to
    matplotlib, which names its own artist): what each of them takes."""
    match = re.search(r"unexpected keyword argument '(\w+)'", message)
    if not match or not line or cell is None:
        return []
    keyword = match.group(1)
    try:
        tree = ast.parse(line.rstrip(":"))
    except SyntaxError:
        return []
    scope = {**cell.f_globals, **cell.f_locals}
    facts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(k.arg == keyword for k in node.keywords):
            dotted, function = _resolve(node.func, scope)
            names = _parameters(function)
            close = _closest(keyword, names)
            if close or (names and not _passes_keywords_on(function)):
                facts.append(_keyword_fact(f"{dotted}()", keyword, names, "keywords"))
    if facts and not close:  # a keyword of another call, or a function used as a keyword
        facts += _keyword_elsewhere(keyword)
    return facts


def _resolve(node, scope):
    """`sns.histplot` -> ('sns.histplot', the function): names and attribute chains only."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in scope:
        return "", None
    value = scope[node.id]
    for attr in reversed(parts):
        try:
            value = getattr(value, attr)
        except Exception:
            return "", None
    return ".".join([node.id, *reversed(parts)]), value


def _parameters(function):
    if not callable(function):
        return []
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]


def _passes_keywords_on(function):
    try:
        return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False


def _keyword_fact(what, keyword, names, noun):
    close = _closest(keyword, names)
    if close:
        return f"{what} takes no {keyword!r}; its closest {noun}: {_listed(close)}."
    return f"{what} takes no {keyword!r} nor any of its {noun} like it."


def _keyword_elsewhere(keyword):
    """What does take the keyword, or is named like it, among the plotting APIs loaded: a keyword
    put on the wrong call (`projection` belongs to add_subplot) or a function used as a keyword."""
    found = _where_else(None, keyword)
    takers = []
    for label, holder in _api_owners():
        for attr in _public_names(holder):
            function = getattr(holder, attr, None)
            if callable(function) and _takes(function, keyword):
                takers.append(f"{label}.{attr}")
            if len(takers) >= 6:
                break
    if takers:
        found.append(f"{keyword!r} is a keyword of {_listed(takers)}.")
    return found


def _api_owners():
    owners = [
        ("plt", sys.modules.get("matplotlib.pyplot")),
        ("Axes", _matplotlib_class("matplotlib.axes", "Axes")),
        ("Figure", _matplotlib_class("matplotlib.figure", "Figure")),
        ("sns", sys.modules.get("seaborn")),
    ]
    return [(label, holder) for label, holder in owners if holder is not None]


def _takes(function, keyword):
    """In the signature, or documented as a parameter (passed on through **kwargs)."""
    try:
        parameter = inspect.signature(function).parameters.get(keyword)
    except (TypeError, ValueError):
        parameter = None
    if parameter is not None:
        return parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    doc = getattr(function, "__doc__", None)
    return isinstance(doc, str) and re.search(rf"^\s*{re.escape(keyword)}\s*:", doc, re.M) is not None


# ---- shapes and types of the values on the failing line -------------------------------------

_SHAPE_WORDS = re.compile(
    r"shape|dimension|broadcast|unpack|same (first dimension|size|length)|length of values|"
    r"must be (1-d|2-d|the same)|sizes|array length|does not match|mismatch|setting an array element|"
    r"scalar|1d|2d",
    re.I,
)


def _value_facts(line, cell):
    if not line or cell is None:
        return []
    facts = []
    for label, value in _values_on(line, cell):
        described = _describe_value(value)
        if described:
            facts.append(f"`{label}` is {described}.")
    return facts


def _values_on(line, frame):
    """Names on the line, and constant-key subscripts of pandas objects (df['col']), with their values."""
    try:
        tree = ast.parse(line.rstrip(":"), mode="exec")
    except SyntaxError:
        return []
    scope = {**frame.f_globals, **frame.f_locals}
    pd = sys.modules.get("pandas")
    seen = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in scope and node.id not in seen:
            seen[node.id] = scope[node.id]
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and pd is not None:
            frame_value = scope.get(node.value.id)
            key = _column_key(node.slice, scope)
            if isinstance(frame_value, pd.DataFrame) and key is not None:
                try:  # a column of a frame: reading it runs nothing of the code's
                    seen.setdefault(f"{ast.unparse(node)}", frame_value[key])
                except Exception:
                    pass
    return [(label, value) for label, value in seen.items() if not inspect.ismodule(value) and not callable(value)]


def _column_key(node, scope):
    """The column a subscript names: a literal, or a name holding a string or number (df[column])."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)):
        return node.value
    if isinstance(node, ast.Name) and isinstance(scope.get(node.id), (str, int)):
        return scope[node.id]
    return None


def _describe_value(value):
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    kind = f"a {type(value).__module__.split('.')[0]} {type(value).__name__}"
    if isinstance(shape, tuple):
        described = f"{kind} of shape {shape}"
        if dtype is not None:
            described += f", dtype {dtype}"
        dtypes = getattr(value, "dtypes", None)
        if dtype is None and dtypes is not None:
            described += ", dtypes " + ", ".join(sorted({str(d) for d in dtypes}))[:80]
        return described
    if isinstance(value, (list, tuple, dict, set, range)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, (int, float, str, bool)):
        return f"a {type(value).__name__}: {value!r}"[:80]
    return ""


# ---- names a library takes: colormaps, markers, colours, palettes ---------------------------

_QUOTED = re.compile(r"""['"]([^'"\n]{1,60})['"]""")


def _name_facts(message):
    low = message.lower()
    quoted = _QUOTED.findall(message)
    if not quoted:
        return []
    wrong = quoted[0]
    for words, label, names in _name_sources():
        if any(w in low for w in words):
            choices = names()  # what to match -> what to show
            if choices and wrong not in choices:
                close = _closest(wrong, list(choices))
                if close:
                    shown = ", ".join(choices[c] for c in close)
                    return [f"{wrong!r} is not a {label} here; the closest that are: {shown}."]
    return []


def _name_sources():
    return [
        (("cmap", "colormap"), "colormap", _colormaps),
        (("palette",), "palette", _palettes),
        (("marker",), "marker", _markers),
        (("color", "rgba"), "colour name", _colours),
    ]


def _shown(names):
    return {name: f"`{name}`" for name in names}


def _colormaps():
    return _shown(getattr(sys.modules.get("matplotlib"), "colormaps", []))


def _palettes():
    seaborn_palettes = getattr(sys.modules.get("seaborn.palettes"), "SEABORN_PALETTES", {})
    return {**_shown(seaborn_palettes), **_colormaps()}


def _markers():
    """Marker codes, matched by their names too (`'s'` is a square): a name is what models write."""
    markers = sys.modules.get("matplotlib.markers")
    table = getattr(getattr(markers, "MarkerStyle", None), "markers", {})
    codes = {code: name for code, name in table.items() if isinstance(code, str) and name != "nothing"}
    return {**{name: f"`{code}` ({name})" for code, name in codes.items()}, **_shown(codes)}


def _colours():
    colors = sys.modules.get("matplotlib.colors")
    try:
        return _shown(colors.get_named_colors_mapping())
    except Exception:
        return {}


# ---- words ----------------------------------------------------------------------------------


def _closest(word, names):
    if not names:
        return []
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=_CLOSEST, cutoff=0.6)
    close += [k for k in lowered if word.lower() in k and k not in close][: _CLOSEST - len(close)]
    return [lowered[c] for c in close][:_CLOSEST]


def _listed(names, quote=True):
    return ", ".join(n if not quote else f"`{n}`" for n in names)
