"""The walk of the review: imports, attributes and calls checked against the allowed world.

core/allowlist.py says what the world holds and why; core/review_names.py which names the code
reads before it sets them; core/code_review.py turns what this walk flags into findings.
"""

from __future__ import annotations

import ast
import re

from . import allowlist as world
from .review_text import check_renderer, plotting_backend, review_pandas_text, style

_MEMORY = {"io.StringIO", "io.BytesIO"}
_ATTRGETTERS = {"operator.attrgetter", "operator.methodcaller"}
_STYLE_CALLS = {"matplotlib.style.use", "matplotlib.style.context"}
_REPR_HOOK = re.compile(r"^_(repr_\w*|ipython_\w+)_$")


class Reviewer(ast.NodeVisitor):
    """Calls `flag(node, why, category)` for each thing outside the allowed world."""

    def __init__(self, flag, bound_somewhere: set[str], frames: set[str]):
        self.flag = flag
        self.bound_somewhere = bound_somewhere
        self.frames = frames
        self.modules: dict[str, str] = {}  # local name -> the allowed module it holds
        self.objects: dict[str, str] = {}  # local name -> `module.name` it was imported as
        self.memory: set[str] = set()  # names holding an in-memory buffer (io.StringIO/BytesIO)
        self.static_dicts: set[str] = set()  # names holding a dict literal with literal keys

    def review(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):  # imports first: a module may be used above its import in a def
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.bind_import(node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if isinstance(node.value, ast.Call) and self.called_name(node.value.func) in _MEMORY:
                    self.memory.add(node.targets[0].id)
                if isinstance(node.value, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.value.keys):
                    self.static_dicts.add(node.targets[0].id)
        self.visit(tree)

    # ---- imports
    def bind_import(self, node) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.modules[alias.asname or alias.name.split(".")[0]] = (
                    alias.asname and alias.name or alias.name.split(".")[0]
                )
            return
        if node.level or not node.module:
            return
        for alias in node.names:
            kind, real = world.module_attribute(node.module, alias.name) if alias.name != "*" else ("", None)
            if kind == "module" and real:
                self.modules[alias.asname or alias.name] = real
            elif alias.name != "*":
                self.objects[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not world.is_allowed_module(alias.name):
                self.outside_module(node, alias.name, "imports")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        if node.level or not world.is_allowed_module(module):
            self.outside_module(node, module, "imports from")
            return
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, f"imports every name of {module}: what it binds cannot be reviewed", "outside")
                continue
            kind, real = world.module_attribute(module, alias.name)
            if kind == "module":
                if not world.is_allowed_module(real):
                    self.outside_module(node, real, f"imports {module}.{alias.name}, which is")
            else:
                self.check_module_name(node, module, alias.name)
                self.check_attribute(node, alias.name, called=True)

    def outside_module(self, node, module: str, verb: str) -> None:
        category = world.outside_category(module)
        self.flag(node, f"{verb} {module}: outside the modules plotting code may use", category)

    def check_module_name(self, node, module: str, name: str) -> bool:
        """A name taken from an allowed module (`np.save`, `io.open`): False if flagged."""
        if not world.allowed_name(module, name):
            category = world.outside_category(module)
            self.flag(node, f"uses {module}.{name}: outside the part of {module} plotting code may use", category)
            return False
        if f"{module}.{name}" in world.QUALIFIED_CALLS:
            why, category = world.QUALIFIED_CALLS[f"{module}.{name}"]
            self.flag(node, f"uses {module}.{name}: it {why}", category)
            return False
        return True

    # ---- attributes
    def visit_Attribute(self, node: ast.Attribute, called: bool = False) -> None:
        root, attrs = _chain(node)
        if isinstance(root, ast.Name) and root.id in self.modules:
            rest = self.walk_module(node, self.modules[root.id], attrs, called)
        else:
            self.visit(root)
            rest = attrs
            if "style" in rest:
                self.flag(node, "uses .style: a pandas Styler shows the table's text as raw HTML", "display")
        for i, attr in enumerate(rest):
            self.check_attribute(node, attr, called=called and i == len(rest) - 1)

    def walk_module(self, node, module: str, attrs: list[str], called: bool) -> list[str]:
        """Follow `np.random.seed` through modules; returns the attributes left once an object is reached."""
        if not world.is_allowed_module(module):  # its import is flagged; so is each use
            self.outside_module(node, f"{module}.{attrs[0]}", "uses")
            return []
        for i, attr in enumerate(attrs):
            if attr.startswith("_") and attr not in world.SAFE_DUNDERS:
                return attrs[i:]
            kind, real = world.module_attribute(module, attr)
            if kind == "module":
                if not world.is_allowed_module(real):
                    category = world.outside_category(real)
                    self.flag(
                        node,
                        f"reaches the module {real} through {module}.{attr}: outside the modules plotting code may use",
                        category,
                    )
                    return []
                module = real
                continue
            if kind == "object" and not self.check_module_name(node, module, attr):
                return []
            return attrs[i:]
        self.flag(node, f"passes the module {module} around: what is reached through it cannot be reviewed", "outside")
        return []

    def check_attribute(self, node, attr: str, called: bool) -> None:
        if attr.startswith("__") and attr.endswith("__"):
            if attr not in world.SAFE_DUNDERS and not (attr == "__init__" and _on_super(node)):
                self.flag(node, f"uses .{attr}: it reaches Python's internals", "dynamic")
        elif _REPR_HOOK.match(attr):
            self.flag(node, f"uses .{attr}: it shows raw HTML or JavaScript in the notebook", "display")
        elif attr.startswith("_"):
            self.flag(node, f"uses the private .{attr}: outside the libraries' public API", "outside")
        elif world.INTERPRETER_INTERNALS.match(attr):
            self.flag(node, f"uses .{attr}: it reaches the interpreter's frames", "dynamic")
        elif attr in world.FORMULA_NAMES:
            self.flag(node, f"uses .{attr}: a formula is Python run in the session's namespace", "dynamic")
        elif attr == "post_script":
            self.flag(node, "uses .post_script: it runs JavaScript in the notebook", "display")
        elif not called and (attr in world.TEXT_WRITERS or attr in world.EVALUATED_TEXT or world.io_name(attr)):
            self.flag(node, f"takes .{attr} without calling it: where it reads or writes cannot be reviewed", "file")
        elif called and world.io_name(attr) and not attr.startswith("read_"):  # reads: by their source
            self.flag(node, f"calls .{attr}(...): it reads or writes outside memory", "file")

    # ---- names
    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        if node.id in self.modules:
            self.flag(
                node,
                f"passes the module {self.modules[node.id]} around: what is reached through it cannot be reviewed",
                "outside",
            )
        elif node.id in world.REFLECTION:
            self.flag(node, f"takes {node.id} without calling it with a literal name", "dynamic")
        elif node.id in world.UNSAFE_BUILTINS:
            why, category = world.UNSAFE_BUILTINS[node.id]
            self.flag(node, f"uses {node.id}: it {why}", category)
        elif node.id in self.objects:
            module, _, name = self.objects[node.id].rpartition(".")
            if not world.is_allowed_module(module):
                self.outside_module(node, f"{module}.{name}", "uses")
            elif world.io_name(name) or name in world.TEXT_WRITERS:
                self.flag(node, f"uses {module}.{name}: it reads or writes outside memory", "file")

    # ---- definitions and assignments
    def visit_FunctionDef(self, node) -> None:
        if _REPR_HOOK.match(node.name):
            self.flag(node, f"defines {node.name}: it shows raw HTML or JavaScript in the notebook", "display")
        declared = {n for inner in ast.walk(node) if isinstance(inner, ast.Global) for n in inner.names}
        for inner in ast.walk(node):
            if isinstance(inner, ast.Delete):
                for target in inner.targets:
                    if isinstance(target, ast.Name) and target.id in declared and target.id in self.frames:
                        self.flag(target, f"deletes `{target.id}`: it is your session's own frame", "undefined")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node) -> None:
        for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
            self.check_target(target, node.value)
        self.generic_visit(node)

    visit_AugAssign = visit_AnnAssign = visit_Assign

    def check_target(self, target, value) -> None:
        if isinstance(target, ast.Attribute):
            owner = self.module_of(target.value)
            if owner:
                self.flag(
                    target,
                    f"changes {owner}.{target.attr}: it rewires the library for the rest of the session",
                    "outside",
                )
            elif self.qualified(target) == "plotly.io.renderers.default":
                check_renderer(self.flag, target, value)
            elif target.attr == "backend":  # pd.options.plotting.backend
                plotting_backend(self.flag, target, value)
        elif (
            isinstance(target, ast.Subscript) and _names_rc(target.value) and not isinstance(target.slice, ast.Constant)
        ):
            self.flag(target, "sets a matplotlib setting named at run time", "outside")
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.check_target(element, None)

    # ---- calls
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = self.called_name(func)
        if isinstance(func, ast.Name) and func.id in world.REFLECTION:
            self.reflection(node)
        elif name in _ATTRGETTERS:
            self.visit(func)
            texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if len(texts) < len(node.args[: 1 if name.endswith("methodcaller") else None]) or not node.args:
                self.flag(node, f"calls {name} with a name computed at run time", "dynamic")
            for text in texts[:1] if name.endswith("methodcaller") else texts:
                for attr in text.split("."):
                    self.check_attribute(node, attr, called=True)
        elif isinstance(func, ast.Attribute):
            self.visit_Attribute(func, called=True)
            self.call_arguments(node, func.attr, name)
        else:
            self.visit(func)
        if name in _STYLE_CALLS:
            style(self.flag, node)
        if (isinstance(func, ast.Name) and func.id == "display" or name == "IPython.display.display") and any(
            k.arg == "raw" for k in node.keywords
        ):
            self.flag(node, "calls display(..., raw=True): it shows raw HTML or JavaScript", "display")
        for keyword in node.keywords:
            self.keyword(node, keyword)
        if not isinstance(func, ast.Name) or func.id not in world.REFLECTION:
            for arg in node.args:
                self.visit(arg)
        for keyword in node.keywords:
            self.visit(keyword.value)

    def call_arguments(self, node: ast.Call, method: str, name: str | None) -> None:
        if method in world.TEXT_WRITERS and self.destination(node, world.DESTINATION_KEYWORDS):
            self.flag(node, f"calls .{method}(...) with a destination: it writes a file", "file")
        elif method.startswith("read_") and not self.in_memory(node):
            self.flag(node, f"calls .{method}(...) of a path or URL: it reads outside memory", "file")
        elif method in world.EVALUATED_TEXT:
            self.evaluated_text(node, method, pandas_eval=name == "pandas.eval")
        elif method == "show":  # fig.show('browser'), pio.show(fig, 'browser'), renderer=...
            given = node.args[1:2] if name == "plotly.io.show" else node.args[:1]
            renderer = next((k.value for k in node.keywords if k.arg == "renderer"), None)
            for value in [*given, renderer]:
                if value is not None and not (isinstance(value, ast.Constant) and not isinstance(value.value, str)):
                    check_renderer(self.flag, node, value)
        elif method == "update" and _names_rc(node.func.value):
            for arg in node.args:
                if not isinstance(arg, ast.Dict) and not (isinstance(arg, ast.Name) and arg.id in self.static_dicts):
                    self.flag(node, "sets matplotlib settings named at run time", "outside")
        elif method == "set_option" and node.args and isinstance(node.args[0], ast.Constant):
            if str(node.args[0].value).endswith("backend"):
                plotting_backend(self.flag, node, node.args[1] if len(node.args) > 1 else None)
        elif method == "rc" and node.args and isinstance(node.args[0], ast.Constant):
            group = str(node.args[0].value)
            if world.PROGRAM_SETTINGS.match(group + ".") or any(
                k.arg and world.PROGRAM_SETTINGS.match(f"{group}.{k.arg}") for k in node.keywords
            ):
                self.flag(node, f"sets matplotlib's {group} settings: they run a program", "process")

    def keyword(self, node: ast.Call, keyword: ast.keyword) -> None:
        if keyword.arg == "post_script" or (
            keyword.arg in ("include_plotlyjs", "include_mathjax")
            and not (isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, bool))
        ):
            self.flag(node, f"passes {keyword.arg}=: it loads or runs JavaScript in the notebook", "display")
        elif keyword.arg == "backend":
            plotting_backend(self.flag, node, keyword.value)
        elif keyword.arg == "usetex":
            self.flag(node, "passes usetex=: matplotlib runs LaTeX", "process")
        elif keyword.arg == "rc" and not isinstance(keyword.value, ast.Dict):
            if not (isinstance(keyword.value, ast.Name) and keyword.value.id in self.static_dicts):
                self.flag(node, "sets matplotlib settings named at run time", "outside")

    def reflection(self, node: ast.Call) -> None:
        """`getattr(obj, 'name')` is `obj.name`; with a name built at run time it cannot be reviewed."""
        how = node.func.id
        attribute = node.args[1] if len(node.args) > 1 else None
        if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
            self.flag(node, f"calls {how} with a name computed at run time", "dynamic")
            for arg in node.args:
                self.visit(arg)
            return
        target = ast.Attribute(node.args[0], attribute.value, ast.Store() if how == "setattr" else ast.Load())
        ast.copy_location(target, node)
        if how == "setattr":
            self.check_target(target, node.args[2] if len(node.args) > 2 else None)
        self.visit_Attribute(target, called=False if how != "hasattr" else True)
        for arg in node.args[2:]:
            self.visit(arg)

    def destination(self, node: ast.Call, keywords) -> bool:
        """Written somewhere other than memory: a first argument or a destination keyword."""
        given = [*node.args[:1], *(k.value for k in node.keywords if k.arg in keywords or k.arg is None)]
        given = [g for g in given if not (isinstance(g, ast.Constant) and g.value is None)]
        return any(not self.is_memory(g) for g in given) or any(isinstance(a, ast.Starred) for a in node.args)

    def in_memory(self, node: ast.Call) -> bool:
        sources = [*node.args[:1], *(k.value for k in node.keywords if k.arg in world.SOURCE_KEYWORDS or k.arg is None)]
        return bool(sources) and all(self.is_memory(s) for s in sources)

    def is_memory(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            return self.called_name(node.func) in _MEMORY
        return isinstance(node, ast.Name) and node.id in self.memory

    def evaluated_text(self, node: ast.Call, method: str, pandas_eval: bool) -> None:
        review_pandas_text(
            node, method, pandas_eval, self.flag, self.check_attribute, self.bound_somewhere | self.frames
        )

    # ---- helpers
    def qualified(self, node: ast.AST) -> str | None:
        """`np.random.seed` -> 'numpy.random.seed', `StringIO` imported from io -> 'io.StringIO'."""
        root, attrs = _chain(node)
        if not isinstance(root, ast.Name):
            return None
        if root.id in self.modules:
            return ".".join([self.modules[root.id], *attrs])
        if root.id in self.objects:
            return ".".join([self.objects[root.id], *attrs])
        return None

    def called_name(self, func: ast.AST) -> str | None:
        """The real name of what is called: `plt.style.use` -> 'matplotlib.style.use'."""
        if isinstance(func, ast.Attribute):
            owner = self.module_of(func.value)
            if owner:
                return f"{owner}.{func.attr}"
        if isinstance(func, ast.Name) and func.id in self.objects:
            return self.objects[func.id]
        return self.qualified(func)

    def module_of(self, node: ast.AST) -> str | None:
        """The allowed module an expression is (`plt`, `mpl.pyplot`), or None."""
        root, attrs = _chain(node)
        if not isinstance(root, ast.Name) or root.id not in self.modules:
            return None
        module = self.modules[root.id]
        for attr in attrs:
            kind, real = world.module_attribute(module, attr)
            if kind != "module":
                return None
            module = real
        return module


def _chain(node: ast.AST) -> tuple[ast.AST, list[str]]:
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return node, attrs[::-1]


def _on_super(node: ast.AST) -> bool:
    root = node.func if isinstance(node, ast.Call) else node
    value = root.value if isinstance(root, ast.Attribute) else None
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"


def _names_rc(node: ast.AST) -> bool:
    root, attrs = _chain(node)
    last = attrs[-1] if attrs else (root.id if isinstance(root, ast.Name) else "")
    return last == "rcParams"
