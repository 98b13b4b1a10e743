#!/usr/bin/env python3
"""Validate workflow YAML files against the workflow JSON Schema with Python's jsonschema,
an implementation independent of Pratica's. Exit 0 if all valid, 1 if not, 3 if the
required Python packages are missing."""
import pathlib
import sys

try:
    import jsonschema
    import yaml
except ImportError as e:  # pragma: no cover
    print(f"missing Python package: {e.name} (pip install jsonschema pyyaml)", file=sys.stderr)
    sys.exit(3)

schema_path, *targets = sys.argv[1:]
schema = __import__("json").loads(pathlib.Path(schema_path).read_text())
validator = jsonschema.Draft202012Validator(schema)
files = []
for t in map(pathlib.Path, targets):
    files += sorted(p for p in t.rglob("*.y*ml") if ".test." not in p.name) if t.is_dir() else [t]
failed = 0
for f in files:
    errors = sorted(validator.iter_errors(yaml.safe_load(f.read_text())), key=lambda e: list(e.path))
    for e in errors:
        print(f"{f}: /{'/'.join(map(str, e.path))}: {e.message}")
    failed += bool(errors)
print(f"{len(files) - failed} of {len(files)} valid")
sys.exit(1 if failed or not files else 0)
