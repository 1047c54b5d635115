"""Tables of the benchmarks' JSON (make bench writes them, and copies them to docs/benchmarks/): a directive

    ```{benchmark-table} kernels-n1.json
    :key: fe_pass
    :columns: kernel, dofs, pass_s, rel_error
    ```

renders the list of rows at `key` (dot-separated for nested entries; default "rows"), or a dict as name/value
rows, with numbers to 4 significant digits. The page's numbers are the file's, never typed by hand; a missing file,
key or column fails the build (warnings are errors).
"""

from __future__ import annotations

import json
import math
import os

from docutils import nodes
from docutils.parsers.rst import Directive, directives

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))       # docs/
DATA = os.path.join(HERE, "benchmarks")


def fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "x".join(fmt(x) for x in v) if all(isinstance(x, (int, float)) for x in v) else ", ".join(map(fmt, v))
    if isinstance(v, dict):
        return ", ".join(f"{k} {fmt(x)}" for k, x in v.items())
    return str(v).replace("|", "/")


class BenchmarkTable(Directive):
    required_arguments = 1
    option_spec = {"key": directives.unchanged, "columns": directives.unchanged, "caption": directives.unchanged}

    def run(self):
        path = os.path.join(DATA, self.arguments[0])
        env = self.state.document.settings.env
        env.note_dependency(path)
        env.note_dependency(os.path.abspath(__file__))      # a change here re-renders the tables
        if not os.path.exists(path):
            raise self.error(f"benchmark JSON {path} is missing: run make bench (it writes results/benchmarks/ and "
                             "copies the JSON to docs/benchmarks/)")
        with open(path) as fh:
            data = json.load(fh)
        key = self.options.get("key", "rows")
        for part in key.split("."):
            if not isinstance(data, dict) or part not in data:
                raise self.error(f"{self.arguments[0]} has no entry {key!r}")
            data = data[part]
        if isinstance(data, dict):
            rows, cols = [{"quantity": k, "value": v} for k, v in data.items()], ["quantity", "value"]
        elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
            rows = data
            cols = [c.strip() for c in self.options["columns"].split(",")] if "columns" in self.options else \
                list(dict.fromkeys(k for r in rows for k in r))
        else:
            raise self.error(f"{self.arguments[0]}:{key} is neither a list of rows nor a dict")
        missing = [c for c in cols if all(c not in r for r in rows)]
        if missing:
            raise self.error(f"{self.arguments[0]}:{key} has no column {missing}")
        table = nodes.table(classes=["benchmark-table"])
        tgroup = nodes.tgroup(cols=len(cols))
        table += tgroup
        tgroup.extend(nodes.colspec(colwidth=1) for _ in cols)

        def row(values):
            r = nodes.row()
            for v in values:
                entry = nodes.entry()
                entry += nodes.paragraph(text=v)
                r += entry
            return r

        thead, tbody = nodes.thead(), nodes.tbody()
        thead += row(cols)
        tbody.extend(row([fmt(r.get(c, "")) for c in cols]) for r in rows)
        tgroup += thead
        tgroup += tbody
        if "caption" in self.options:
            table.insert(0, nodes.title(text=self.options["caption"]))
        return [table]

def setup(app):
    app.add_directive("benchmark-table", BenchmarkTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
