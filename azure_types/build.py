"""Rebuild ``data/azure-types.zip`` from the azure-types data set (``shared/azure-types/azure-types.json.gz``).

The data set is one 23 MB JSON document (about 1 s and 200 MB to load). The package ships it split by provider
namespace instead, so that a process reads only the namespaces it meets: one zip entry per namespace
(``microsoft.storage.json``), each with the resource types and functions of that namespace and the type nodes they
reach, renumbered from 0. Nodes shared by several namespaces are repeated in each (127,702 nodes in all against
104,963 in the source). Nothing else changes: node kinds, fields and property flags are the source's
(``format: azure-types/1``, see data/SOURCE.md); resource entries keep ``type``, ``body``, ``readableScopes`` and
``writableScopes`` and drop ``file``; function entries keep ``type``, ``in`` and ``out``.

    python -m azure_types.build ../shared/azure-types/azure-types.json.gz

The output is byte-for-byte reproducible (fixed zip timestamps, sorted entries).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "data" / "azure-types.zip"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _refs(node: dict[str, Any]) -> list[int]:
    kind = node["k"]
    if kind == "arr":
        return [node["item"]]
    if kind == "union":
        return list(node["of"])
    if kind in ("obj", "disc"):
        out = [v[0] for v in node.get("p", {}).values()]
        if "ap" in node:
            out.append(node["ap"])
        if kind == "disc":
            out.extend(node["e"].values())
        return out
    return []


def _renumber(node: dict[str, Any], local: dict[int, int]) -> dict[str, Any]:
    node = dict(node)
    kind = node["k"]
    if kind == "arr":
        node["item"] = local[node["item"]]
    elif kind == "union":
        node["of"] = [local[i] for i in node["of"]]
    elif kind in ("obj", "disc"):
        if "p" in node:
            node["p"] = {name: [local[ref], flags] for name, (ref, flags) in node["p"].items()}
        if "ap" in node:
            node["ap"] = local[node["ap"]]
        if kind == "disc":
            node["e"] = {value: local[ref] for value, ref in node["e"].items()}
    return node


def build(source: Path, output: Path = OUTPUT) -> dict[str, int]:
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("format") != "azure-types/1":
        raise SystemExit(f"{source}: format {doc.get('format')!r}, expected 'azure-types/1'")
    nodes: list[dict[str, Any]] = doc["nodes"]
    shards: dict[str, dict[str, Any]] = defaultdict(lambda: {"resources": {}, "functions": {}})
    for rtype, versions in doc["resources"].items():
        shards[rtype.split("/")[0]]["resources"][rtype] = versions
    for rtype, versions in doc["functions"].items():
        shards[rtype.split("/")[0]]["functions"][rtype] = versions
    output.parent.mkdir(parents=True, exist_ok=True)
    counts = {"namespaces": 0, "nodes": 0}
    tmp = output.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        header = {"format": doc["format"], "source": doc["source"], "counts": doc["counts"], "legend": doc["legend"]}
        _write(zf, "_source.json", header)
        for namespace in sorted(shards):
            shard = shards[namespace]
            roots = [e["body"] for vs in shard["resources"].values() for e in vs.values()]
            roots += [
                ref
                for vs in shard["functions"].values()
                for fs in vs.values()
                for f in fs.values()
                for ref in (f["in"], f["out"])
                if ref is not None
            ]
            seen: set[int] = set()
            stack = list(roots)
            while stack:
                i = stack.pop()
                if i not in seen:
                    seen.add(i)
                    stack.extend(_refs(nodes[i]))
            order = sorted(seen)
            local = {g: i for i, g in enumerate(order)}
            out = {
                "resources": {
                    t: {
                        v: {
                            "type": e["type"],
                            "body": local[e["body"]],
                            "readableScopes": e["readableScopes"],
                            "writableScopes": e["writableScopes"],
                        }
                        for v, e in vs.items()
                    }
                    for t, vs in sorted(shard["resources"].items())
                },
                "functions": {
                    t: {
                        v: {
                            name: {
                                "type": f["type"],
                                "in": None if f["in"] is None else local[f["in"]],
                                "out": local[f["out"]],
                            }
                            for name, f in fs.items()
                        }
                        for v, fs in vs.items()
                    }
                    for t, vs in sorted(shard["functions"].items())
                },
                "nodes": [_renumber(nodes[g], local) for g in order],
            }
            _write(zf, f"{namespace}.json", out)
            counts["namespaces"] += 1
            counts["nodes"] += len(order)
    tmp.replace(output)
    return counts


def _write(zf: zipfile.ZipFile, name: str, value: Any) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, json.dumps(value, separators=(",", ":"), ensure_ascii=False), compresslevel=9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m azure_types.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="azure-types.json.gz (format azure-types/1)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"{args.source}: no such file", file=sys.stderr)
        return 2
    counts = build(args.source, args.output)
    print(
        f"{args.output}: {counts['namespaces']} namespaces, {counts['nodes']} nodes, {args.output.stat().st_size} bytes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
