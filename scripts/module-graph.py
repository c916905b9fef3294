#!/usr/bin/env python3
"""Prints the import graph between the top-level modules of a crate's src/
and fails if two modules import each other (directly or through a longer
cycle). A directory (`capabilities/`) counts as one module; `super::` inside
it stays inside it. Names re-exported by lib.rs (`crate::Error`) count as
imports of the module that defines them.

    scripts/module-graph.py crates/wasmhost/src
    scripts/module-graph.py --ordered crates/wasmhost/src

With --ordered, lib.rs's `mod` declarations are the layering, bottom-up:
a module may import only modules declared before it.
"""
import os
import re
import sys


def top_modules(src):
    mods = {}
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if entry in ("lib.rs", "main.rs"):
            continue
        if entry.endswith(".rs"):
            mods[entry[:-3]] = [path]
        elif os.path.isdir(path):
            files = []
            for root, _, names in os.walk(path):
                files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
            mods[entry] = sorted(files)
    return mods


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def root_exports(src, mods):
    """`pub use x::{A, B}` in lib.rs: name -> module."""
    root = os.path.join(src, "lib.rs")
    if not os.path.exists(root):
        root = os.path.join(src, "main.rs")
    lib = strip_comments(open(root).read())
    names = {}
    for m in re.finditer(r"pub\s+use\s+(\w+)::(\{[^;]*\}|\w+)\s*;", lib):
        module, items = m.group(1), m.group(2)
        if module not in mods:
            continue
        for name in re.findall(r"\b([A-Za-z_]\w*)\b", items):
            names[name] = module
    return names


def uses(text):
    """Every path that starts with `crate::`, with `use crate::{..}` groups expanded."""
    paths = []
    for m in re.finditer(r"crate::(\{(?:[^{}]|\{[^{}]*\})*\}|\w+)", text):
        head = m.group(1)
        if head.startswith("{"):
            inner = head[1:-1]
            depth, cur, parts = 0, "", []
            for ch in inner:
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                if ch == "," and depth == 0:
                    parts.append(cur)
                    cur = ""
                else:
                    cur += ch
            parts.append(cur)
            paths += [p.strip().split("::")[0].strip() for p in parts if p.strip()]
        else:
            paths.append(head)
    return paths


def declared(src):
    """Modules in the order lib.rs declares them."""
    lib = strip_comments(open(os.path.join(src, "lib.rs")).read())
    return re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", lib, flags=re.M)


def main():
    args = sys.argv[1:]
    ordered = "--ordered" in args
    args = [a for a in args if a != "--ordered"]
    src = args[0] if args else "src"
    mods = top_modules(src)
    exports = root_exports(src, mods)
    graph = {m: set() for m in mods}
    for module, files in mods.items():
        for f in files:
            text = strip_comments(open(f).read())
            # Tests may reach anywhere.
            text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]
            for head in uses(text):
                target = head if head in mods else exports.get(head)
                if target and target != module:
                    graph[module].add(target)
    for module in sorted(graph):
        print(f"{module:14} -> {', '.join(sorted(graph[module])) or '-'}")
    failed = False
    if ordered:
        order = declared(src)
        rank = {m: i for i, m in enumerate(order)}
        for module in sorted(graph):
            if module not in rank:
                print(f"{module}: not declared in lib.rs", file=sys.stderr)
                failed = True
                continue
            for target in sorted(graph[module]):
                if rank.get(target, -1) > rank[module]:
                    print(
                        f"{module} imports {target}, which lib.rs declares after it",
                        file=sys.stderr,
                    )
                    failed = True
    # Cycles: strongly connected components of more than one module.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    for comp in sccs:
        print("cycle:", " <-> ".join(comp), file=sys.stderr)
    if sccs or failed:
        sys.exit(1)
    print("no cycles" + (", and every import points down lib.rs's order" if ordered else ""))


if __name__ == "__main__":
    main()
