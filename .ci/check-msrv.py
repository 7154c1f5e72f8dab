#!/usr/bin/env python3
"""The MSRV check of `.ci/run`.

CI machines have one toolchain (no older rustc can be fetched), so the MSRV
is checked from both sides it can be checked without one:
- every package in the locked dependency graph declares a `rust-version` no
  newer than the workspace's (a dependency that needs a newer rustc would
  make ours a lie);
- `cargo clippy` (run by `.ci/run` with `-D warnings`) denies
  `clippy::incompatible_msrv`: no std API newer than `rust-version`.
What neither catches (language features newer than the MSRV) is kept small
by edition 2021.
"""
import json
import subprocess
import sys


def version(text):
    parts = [int(p) for p in text.split("+")[0].split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
members = [p for p in meta["packages"] if p["id"] in set(meta["workspace_members"])]
declared = {p["rust_version"] for p in members if p.get("rust_version")}
if len(declared) != 1 or len(members) != sum(1 for p in members if p.get("rust_version")):
    sys.exit(f"every workspace member must declare the same rust-version, found {declared}")
msrv = version(declared.pop())
newer = [
    f"{p['name']} {p['version']} needs rustc {p['rust_version']}"
    for p in meta["packages"]
    if p.get("rust_version") and version(p["rust_version"]) > msrv
]
if newer:
    sys.exit("dependencies newer than the MSRV " + ".".join(map(str, msrv)) + ":\n  " + "\n  ".join(newer))
print(f"MSRV {'.'.join(map(str, msrv))}: {len(meta['packages'])} locked packages declare no newer rust-version")
