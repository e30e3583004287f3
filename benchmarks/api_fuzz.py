"""Schemathesis with the operator's token against a controller that has switches and trails.

    sudo .venv/bin/python -m benchmarks.api_fuzz [--max-examples 100]

A Mininet run (topologies/linear.py 3,3) under a controller started with
--api-token-file; every host pings h1 so trails exist. Then `schemathesis run`
(docs/schemathesis.toml, the token from $SDNSCENT_API_TOKEN) twice: once as is,
once with trail_id fixed to a live trail so the per-trail operations get past
404. Prints each run's summary line; exits 1 if either found a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from mininet_tests.harness import REPO, ping, running_net, wait_for
from topologies.linear import LinearTopo

CONFIG = REPO / "docs" / "schemathesis.toml"


def _schemathesis(api: str, token: str, config: Path, examples: int,
                  workdir: Path) -> tuple[int, str]:
    """(exit code, summary line) of one run."""
    cmd = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config),
           "run", f"{api}/openapi.json", "--url", api.removesuffix("/api/v1"),
           "--max-examples", str(examples), "--no-color"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir,
                          env={**os.environ, "SDNSCENT_API_TOKEN": token})
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = next((line for line in reversed(lines) if "generated" in line), lines[-1])
    failures = [line for line in lines if re.search(r"❌ ST\d+|Failures:", line)]
    return proc.returncode, summary + ("; " + "; ".join(failures) if failures else "")


def main(argv: list[str] | None = None) -> int:
    """Run schemathesis twice against a live fabric; 1 if it found anything."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_fuzz")
    parser.add_argument("--max-examples", type=int, default=100)
    args = parser.parse_args(argv)
    token = secrets.token_hex(16)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"sdnscent-fuzz-{os.getpid()}"
    workdir.mkdir(mode=0o700)
    token_file = workdir / "api.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    codes = []
    try:
        with running_net(LinearTopo(3, 3), ["--api-token-file", str(token_file)]) as net:
            h1 = net.host("h1")
            for n in range(2, 10):
                host = net.host(f"h{n}")
                wait_for(lambda host=host: ping(host, h1.IP()), 20, f"h{n} -> h1")
            trails = net.ctl.get("/trails")["trails"]
            print(f"{len(trails)} trails on {len(net.switch_names)} switches")
            for name, live in (("as is", None), ("trail_id fixed", trails[-1]["id"])):
                config = CONFIG
                if live is not None:
                    config = workdir / "schemathesis.toml"
                    text = CONFIG.read_text()
                    head = 'headers = { Authorization = "Bearer ${SDNSCENT_API_TOKEN}" }\n'
                    config.write_text(text.replace(head, head + f"parameters = {{ trail_id = "
                                                              f"{live} }}\n"))
                code, summary = _schemathesis(net.ctl.api, token, config, args.max_examples,
                                              workdir)
                codes.append(code)
                print(f"schemathesis ({name}): exit {code}: {summary}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
