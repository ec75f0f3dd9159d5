"""Which names the reviewed code uses before it has set them itself.

The inserted cell runs in the user's namespace: a name the code reads but has not bound yet is
whatever the user's session holds under it (a `subprocess` the user imported, say), although in
the child kernel the same line raised NameError (perhaps inside a try/except, so the plot still
drew). So a name read at module level must be bound on every path before the read: by an
assignment, an import, a def, a for/with/except target that surely ran, or be one of the frames
the code was given or a safe builtin. A function's free names are checked where the function can
be reached: at each later read of its name (and at its def when a decorator receives it), with
what is bound at that point; a lambda's and a comprehension's where they stand. Branches are
joined by what both bind; loop bodies and except clauses may not have run; a `raise` ends a path.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_ALL = None  # a path that ended (raise): joins as "everything"

Report = Callable[[ast.Name, bool], None]  # (the read, whether the code binds the name somewhere)


def check_names(tree: ast.Module, known: set[str], report: Report) -> None:
    """Call `report` for each read of a name that may not be bound by the code at that point."""
    bound_somewhere = {n for node in ast.walk(tree) for n in _binds(node)}
    _Flow(known, report, bound_somewhere).block(tree.body, set())


def _binds(node: ast.AST) -> Iterable[str]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        yield node.id
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(node, ast.ExceptHandler) and node.name:
        yield node.name
    elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        yield node.name
    elif isinstance(node, ast.arg):
        yield node.arg


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


class _Flow:
    def __init__(self, known: set[str], report: Report, bound_somewhere: set[str]):
        self.known = known
        self.report = report
        self.bound_somewhere = bound_somewhere
        self.needs: dict[str, set[str]] = {}  # module-level def/class -> the globals it reads when called

    # ---- statements: each returns what is surely bound after it (None: the path ended)
    def block(self, body: list[ast.stmt], bound: set[str] | None) -> set[str] | None:
        for stmt in body:
            if bound is None:
                return None
            bound = self.stmt(stmt, bound)
        return bound

    def stmt(self, s: ast.stmt, bound: set[str]) -> set[str] | None:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return self.definition(s, bound)
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            return bound | set(_binds(s))
        if isinstance(s, ast.If):
            self.expr(s.test, bound)
            return _join(self.block(s.body, set(bound)), self.block(s.orelse, set(bound)))
        if isinstance(s, (ast.For, ast.AsyncFor)):
            self.expr(s.iter, bound)
            self.block(s.body, bound | _targets(s.target))  # may run no time
            self.block(s.orelse, set(bound))
            return bound
        if isinstance(s, ast.While):
            self.expr(s.test, bound)
            self.block(s.body, set(bound))
            self.block(s.orelse, set(bound))
            return bound
        if isinstance(s, (ast.Try, ast.TryStar)):
            after = self.block(s.orelse, self.block(s.body, set(bound)))
            for handler in s.handlers:
                if handler.type is not None:
                    self.expr(handler.type, bound)
                caught = bound | ({handler.name} if handler.name else set())
                after = _join(after, self.block(handler.body, caught))
            final = self.block(s.finalbody, set(bound))
            if after is None or final is None:
                return None
            return after | final
        if isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.expr(item.context_expr, bound)
                if item.optional_vars is not None:
                    self.target(item.optional_vars, bound)
                    bound = bound | _targets(item.optional_vars)
            return self.block(s.body, bound)
        if isinstance(s, ast.Match):
            self.expr(s.subject, bound)
            for case in s.cases:
                inner = bound | {n for node in ast.walk(case.pattern) for n in _binds(node)}
                if case.guard is not None:
                    self.expr(case.guard, inner)
                self.block(case.body, inner)
            return bound
        if isinstance(s, ast.Raise):
            for part in (s.exc, s.cause):
                if part is not None:
                    self.expr(part, bound)
            return None
        if isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if s.value is not None:
                self.expr(s.value, bound)
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name):  # `x += 1` reads x first
                self.read(ast.Name(s.target.id, ast.Load(), lineno=s.lineno, col_offset=s.col_offset), bound)
            if isinstance(s, ast.AnnAssign) and s.value is None:
                targets = []  # `x: int` binds nothing
            for target in targets:
                self.target(target, bound)
            return bound | {n for t in targets for n in _targets(t)} | _walrus(s)
        if isinstance(s, ast.Delete):
            for target in s.targets:
                self.target(target, bound)
                if isinstance(target, ast.Name) and target.id not in bound:
                    self.report(target, target.id in self.bound_somewhere)  # deletes the session's own name
            return bound
        for child in ast.iter_child_nodes(s):  # Expr, Assert, Return, Global, Pass, ...
            if isinstance(child, ast.expr):
                self.expr(child, bound)
        return bound | _walrus(s)

    def target(self, target: ast.expr, bound: set[str]) -> None:
        """The parts of an assignment target that are read: `a` in `a.b = 1` and `a[i] = 1`."""
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            self.expr(target.value, bound)
            if isinstance(target, ast.Subscript):
                self.expr(target.slice, bound)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.target(element, bound)
        elif isinstance(target, ast.Starred):
            self.target(target.value, bound)

    def definition(self, s, bound: set[str]) -> set[str]:
        """A def or class: what it evaluates now is read now; its body when it is reached."""
        evaluated_now = [*s.decorator_list]
        if isinstance(s, ast.ClassDef):
            evaluated_now += [*s.bases, *(k.value for k in s.keywords)]
            class_names = _locals(s)
            for stmt in s.body:  # the class body runs now
                if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.stmt(stmt, bound | class_names)
            needs = set()
            for stmt in s.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    evaluated_now += stmt.decorator_list + _defaults(stmt)
                    needs |= _free(stmt, set())
        else:
            evaluated_now += _defaults(s)
            needs = _free(s, set())
        for node in evaluated_now:
            self.expr(node, bound)
        self.needs[s.name] = needs - {s.name}
        if s.decorator_list:  # the decorator receives the function now
            self.reached(s, s.name, bound | {s.name})
        return bound | {s.name}

    # ---- expressions
    def expr(self, node: ast.AST, bound: set[str]) -> None:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            self.read(node, bound)
        elif isinstance(node, _FUNCTIONS + _COMPREHENSIONS):
            if isinstance(node, ast.Lambda):
                for default in _defaults(node):
                    self.expr(default, bound)
            for name in sorted(_free(node, set())):
                self.read(ast.Name(name, ast.Load(), lineno=node.lineno, col_offset=node.col_offset), bound)
            if isinstance(node, _COMPREHENSIONS):  # the first iterable is evaluated outside
                self.expr(node.generators[0].iter, bound)
        else:
            for child in ast.iter_child_nodes(node):
                self.expr(child, bound)

    def read(self, node: ast.Name, bound: set[str]) -> None:
        name = node.id
        if name not in bound and name not in self.known:
            self.report(node, name in self.bound_somewhere)
        elif name in self.needs:
            self.reached(node, name, bound)

    def reached(self, node: ast.AST, name: str, bound: set[str], seen: set[str] | None = None) -> None:
        """`name` (a def or class) can be called from here: the globals it reads must be bound."""
        seen = seen if seen is not None else set()
        seen.add(name)
        for needed in sorted(self.needs.get(name, ())):
            if needed not in bound and needed not in self.known:
                self.report(
                    ast.Name(needed, ast.Load(), lineno=node.lineno, col_offset=0), needed in self.bound_somewhere
                )
            elif needed in self.needs and needed not in seen:
                self.reached(node, needed, bound, seen)


def _join(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _walrus(node: ast.AST) -> set[str]:
    """`(n := ...)` outside a function binds at module level."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.NamedExpr) and isinstance(current.target, ast.Name):
            found.add(current.target.id)
        if not isinstance(current, _FUNCTIONS + (ast.ClassDef,)):
            stack.extend(ast.iter_child_nodes(current))
    return found


def _defaults(node) -> list[ast.expr]:
    args = node.args
    found = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    if not isinstance(node, ast.Lambda):
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        found += [a.annotation for a in every if a is not None and a.annotation is not None]
        if node.returns is not None:
            found.append(node.returns)
    return found


def _free(scope: ast.AST, enclosing: set[str]) -> set[str]:
    """The global names a function, lambda, comprehension or class body reads when it runs."""
    local = _locals(scope)
    if isinstance(scope, ast.ClassDef):  # class names are not seen by its methods
        inner_enclosing = enclosing
    else:
        inner_enclosing = enclosing | local
    declared_global = {n for node in _own_nodes(scope) if isinstance(node, ast.Global) for n in node.names}
    free: set[str] = set()
    for node in _own_nodes(scope):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in declared_global or (node.id not in local and node.id not in enclosing):
                free.add(node.id)
        elif node is not scope and isinstance(node, _FUNCTIONS + _COMPREHENSIONS + (ast.ClassDef,)):
            free |= _free(node, inner_enclosing - declared_global)
    return free


def _own_nodes(scope: ast.AST) -> Iterable[ast.AST]:
    """The nodes of `scope` that run in it, down to (and including) nested scopes' nodes, not into them."""
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        roots: list[ast.AST] = list(scope.body)
    elif isinstance(scope, ast.Lambda):
        roots = [scope.body]
    elif isinstance(scope, ast.ClassDef):
        roots = list(scope.body)
    else:  # a comprehension: all but its first iterable
        roots = [scope.elt] if not isinstance(scope, ast.DictComp) else [scope.key, scope.value]
        for i, generator in enumerate(scope.generators):
            roots += [generator.target, *generator.ifs] + ([generator.iter] if i else [])
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _FUNCTIONS + _COMPREHENSIONS + (ast.ClassDef,)):
            # what a nested scope evaluates where it stands (defaults, decorators, first iterable)
            if isinstance(node, _COMPREHENSIONS):
                stack.append(node.generators[0].iter)
            elif isinstance(node, _FUNCTIONS):
                stack.extend(_defaults(node))
                stack.extend(getattr(node, "decorator_list", []))
            else:
                stack.extend([*node.decorator_list, *node.bases])
            continue
        stack.extend(ast.iter_child_nodes(node))


def _locals(scope: ast.AST) -> set[str]:
    names: set[str] = set()
    if isinstance(scope, _FUNCTIONS):
        a = scope.args
        names |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x is not None}
    for node in _own_nodes(scope):
        if node is scope:
            continue
        if isinstance(node, _FUNCTIONS + _COMPREHENSIONS + (ast.ClassDef,)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            if isinstance(node, _COMPREHENSIONS):  # a walrus inside binds here
                names |= {
                    n.target.id
                    for n in ast.walk(node)
                    if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)
                }
            continue
        names |= set(_binds(node))
    if isinstance(scope, _COMPREHENSIONS):
        names = {n for g in scope.generators for n in _targets(g.target)} | (names - _walrus(scope))
    nonlocal_or_global = {
        n for node in _own_nodes(scope) if isinstance(node, (ast.Global, ast.Nonlocal)) for n in node.names
    }
    return names - nonlocal_or_global
