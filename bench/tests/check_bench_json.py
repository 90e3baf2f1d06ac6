#!/usr/bin/env python3
"""Validates clattn-bench's JSON against docs/bench.schema.json, with the
Python standard library only (CI installs no pip packages).

It implements the subset of JSON Schema (2020-12) the schema uses and
refuses any other keyword, so the schema cannot grow a rule that would go
unchecked. Beyond the schema it checks what a schema cannot say: records
point at cases and devices that exist, ok records carry their times, and
the CSV (if given) has the same records.

usage: check_bench_json.py SCHEMA JSON [--csv CSV] [--expect-ok PATH]...
                           [--self-test]
--expect-ok PATH: every record of that path must be ok (e.g. the OpenBLAS
peer when the build found OpenBLAS). --self-test: also check that broken
copies of JSON are rejected, i.e. that this validator can fail.
"""
import copy
import csv
import json
import re
import sys

ANNOTATIONS = {"$schema", "$id", "title", "description"}
KEYWORDS = {"$ref", "$defs", "type", "const", "enum", "required", "properties",
            "additionalProperties", "items", "minItems", "minimum", "pattern"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


class Invalid(Exception):
    pass


def resolve(root, ref):
    if not ref.startswith("#/"):
        raise Invalid(f"unsupported $ref {ref}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def validate(root, schema, value, where="$"):
    unknown = set(schema) - KEYWORDS - ANNOTATIONS
    if unknown:
        raise Invalid(f"schema at {where} uses unsupported keywords {sorted(unknown)}")
    if "$ref" in schema:
        validate(root, resolve(root, schema["$ref"]), value, where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            raise Invalid(f"{where}: {value!r} is not of type {types}")
    if "const" in schema and value != schema["const"]:
        raise Invalid(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise Invalid(f"{where}: missing {key!r}")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                validate(root, props[key], item, f"{where}.{key}")
            elif schema.get("additionalProperties", True) is False:
                raise Invalid(f"{where}: unexpected field {key!r}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise Invalid(f"{where}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                validate(root, schema["items"], item, f"{where}[{i}]")
    if "minimum" in schema and TYPES["number"](value) and value < schema["minimum"]:
        raise Invalid(f"{where}: {value} is below {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        raise Invalid(f"{where}: {value!r} does not match {schema['pattern']}")


def check_links(doc, expect_ok):
    """What the schema cannot express."""
    devices = {d["id"] for d in doc["devices"]}
    for i, c in enumerate(doc["cases"]):
        if c["index"] != i:
            raise Invalid(f"cases[{i}] has index {c['index']}")
        if c["heads_q"] % c["heads_kv"]:
            raise Invalid(f"cases[{i}]: heads_kv does not divide heads_q")
    for i, r in enumerate(doc["records"]):
        where = f"records[{i}]"
        if r["case"] >= len(doc["cases"]) or doc["cases"][r["case"]]["name"] != r["case_name"]:
            raise Invalid(f"{where}: no case {r['case']} named {r['case_name']!r}")
        if r["device"] != "host" and r["device"] not in devices:
            raise Invalid(f"{where}: unknown device {r['device']!r}")
        if r["status"] == "ok":
            for key in ("reps", "timing", "min_ms", "median_ms", "gflops"):
                if r[key] is None:
                    raise Invalid(f"{where}: ok but {key} is null")
            if r["min_ms"] > r["median_ms"]:
                raise Invalid(f"{where}: min_ms above median_ms")
        elif not r["error"]:
            raise Invalid(f"{where}: {r['status']} without an error text")
        if r["path"] in expect_ok and r["status"] != "ok":
            raise Invalid(f"{where}: {r['path']} is {r['status']}: {r['error']}")
    for path in expect_ok:
        if not any(r["path"] == path for r in doc["records"]):
            raise Invalid(f"no record of path {path!r}")


def check_csv(doc, path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(doc["records"]):
        raise Invalid(f"{path}: {len(rows)} rows for {len(doc['records'])} records")
    for i, (row, rec) in enumerate(zip(rows, doc["records"])):
        for key in ("device", "path", "status"):
            if row[key] != str(rec[key]):
                raise Invalid(f"{path} row {i + 1}: {key} {row[key]!r} vs {rec[key]!r}")


def check(schema, doc, expect_ok=()):
    validate(schema, schema, doc)
    check_links(doc, expect_ok)


def self_test(schema, doc):
    """Each broken copy must be rejected."""
    def mutate(fn):
        bad = copy.deepcopy(doc)
        fn(bad)
        return bad
    broken = {
        "records removed": mutate(lambda d: d.pop("records")),
        "newer schema version": mutate(lambda d: d.update(schema_version=3)),
        "unknown top-level field": mutate(lambda d: d.update(extra=1)),
        "bad record status": mutate(lambda d: d["records"][0].update(status="maybe")),
        "time as text": mutate(lambda d: d["records"][0].update(min_ms="fast")),
        "negative GFLOP/s": mutate(lambda d: d["records"][0].update(gflops=-1.0)),
        "record of no case": mutate(lambda d: d["records"][0].update(case=len(d["cases"]))),
        "ok without times": mutate(lambda d: d["records"][0].update(status="ok", min_ms=None)),
        "unknown op": mutate(lambda d: d["cases"][0].update(op="conv")),
    }
    for name, bad in broken.items():
        try:
            check(schema, bad)
        except (Invalid, KeyError, TypeError):
            continue
        raise Invalid(f"self-test: a copy with {name} was accepted")
    print(f"self-test: {len(broken)} broken copies rejected")


def main(argv):
    args, csv_path, expect_ok, selftest = [], None, [], False
    it = iter(argv[1:])
    for a in it:
        if a == "--csv":
            csv_path = next(it)
        elif a == "--expect-ok":
            expect_ok.append(next(it))
        elif a == "--self-test":
            selftest = True
        else:
            args.append(a)
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0]) as f:
        schema = json.load(f)
    with open(args[1]) as f:
        doc = json.load(f)
    try:
        check(schema, doc, expect_ok)
        if csv_path:
            check_csv(doc, csv_path)
        if selftest:
            self_test(schema, doc)
    except Invalid as e:
        print(f"{args[1]}: INVALID: {e}", file=sys.stderr)
        return 1
    print(f"{args[1]}: valid against {args[0]} ({len(doc['records'])} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
