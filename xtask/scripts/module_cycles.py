#!/usr/bin/env python3
"""Module import graph of a crate's src/ and its cycles (run by `cargo xtask
test` on every crate: no crate may have an import cycle).

Every `crate::a::b` and `super::x` path (in `use` lines and inline, with
`use crate::{a, b::c}` groups expanded) is an edge from the file's module to
the deepest module it names. Test modules (from `#[cfg(test)]` to the end of
the file), test-only modules (`tests`, `test_support`) and lib.rs (the
facade) are left out. Cycles are reported at file
granularity and at top-level granularity (submodules folded into their
top-level module, edges inside one top-level module ignored).
"""
import os, re, sys

src = sys.argv[1]
mods = {}
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith('.rs'):
            continue
        rel = os.path.relpath(os.path.join(root, f), src)
        if rel in ('lib.rs', 'main.rs') or rel.startswith('bin/'):
            continue
        parts = rel[:-3].split('/')
        if parts[-1] == 'mod':
            parts = parts[:-1]
        if any(p in ('tests', 'test_support') for p in parts):
            continue
        mods['::'.join(parts)] = os.path.join(root, f)

def resolve(path):
    """Deepest known module that is a prefix of path (a list of names)."""
    for n in range(len(path), 0, -1):
        m = '::'.join(path[:n])
        if m in mods:
            return m
    return None

def expand(group):
    """Split a brace group at top-level commas."""
    out, depth, cur = [], 0, ''
    for c in group:
        if c == '{': depth += 1
        if c == '}': depth -= 1
        if c == ',' and depth == 0:
            out.append(cur); cur = ''
        else:
            cur += c
    out.append(cur)
    return [o.strip() for o in out if o.strip()]

def paths_of(prefix, rest):
    """All paths of `prefix::rest`, rest possibly a brace group."""
    rest = rest.strip()
    if rest.startswith('{'):
        inner = rest[1:rest.rfind('}')]
        res = []
        for item in expand(inner):
            res += paths_of(prefix, item)
        return res
    m = re.match(r'([A-Za-z_][A-Za-z0-9_]*)(::(.*))?', rest, re.S)
    if not m:
        return [prefix]
    head = prefix + [m.group(1)]
    if m.group(3) is not None:
        return paths_of(head, m.group(3))
    return [head]

edges = {m: set() for m in mods}
for mod, path in mods.items():
    text = open(path).read()
    cut = text.find('#[cfg(test)]')
    if cut >= 0:
        text = text[:cut]
    text = re.sub(r'//[^\n]*', '', text)
    here = mod.split('::')
    is_mod_rs = path.endswith('mod.rs')
    # A parent names its child modules without `crate::` (`watch::serve`,
    # `use self::watch::...`, `use watch::{...}`).
    for child in re.findall(r'^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_0-9]+)\s*;', text, re.M):
        if re.search(r'(?<![A-Za-z0-9_:])(?:self::)?' + child + r'::', text):
            edges[mod].add('::'.join(here + [child]) if mod else child)
    for m in re.finditer(r'\b(crate|super)::(\{[^;]*?\}|[A-Za-z_][A-Za-z0-9_:]*(::\{[^;]*?\})?)', text, re.S):
        kind, rest = m.group(1), m.group(2)
        if kind == 'crate':
            base = []
        else:
            # super of a mod.rs module is its parent; of foo.rs too.
            base = here[:-1]
        for p in paths_of(base, rest):
            target = resolve(p)
            if target and target != mod:
                edges[mod].add(target)

def sccs(graph):
    index, low, stack, on, out, i = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in graph:
        if v not in index:
            visit(v)
    return out

top = {}
for a, bs in edges.items():
    ta = a.split('::')[0]
    top.setdefault(ta, set())
    for b in bs:
        tb = b.split('::')[0]
        if tb != ta:
            top[ta].add(tb)

fc, tc = sccs(edges), sccs(top)
if '--verbose' in sys.argv or fc or tc:
    for a in sorted(edges):
        print(f'  {a} -> {", ".join(sorted(edges[a])) or "-"}')
print(f'{src}: {len(mods)} modules, file-level cycles: {fc or "none"}, top-level cycles: {tc or "none"}')
sys.exit(1 if fc or tc else 0)
