"""`python -m tests.platform up|down|env|crd|operator-kubeconfig|demo`: the local platform.

`up` starts MariaDB, moto (with the simulator) and the control plane, in that order, and
writes `.local/env`; it is idempotent. `down` stops them all. See CONTRACT.md.
`operator-kubeconfig` applies the install's ServiceAccount and ClusterRole, writes a
kubeconfig with a fresh token of that service account and prints its path (`make run`).
"""

from __future__ import annotations

import argparse
import sys

from tests.platform import demo, kube, stack


def main(argv: list[str] | None = None) -> int:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(prog="python -m tests.platform")
    commands = ["up", "down", "env", "crd", "operator-kubeconfig", "demo"]
    parser.add_argument("command", choices=commands)
    args = parser.parse_args(argv)
    local = stack.local_dir()
    if args.command == "up":
        env = stack.up(local)
        print(f"Platform is up; `source {local / 'env'}` to use it "
              f"({len(env)} variables).")
    elif args.command == "down":
        stack.down(local)
        print("Platform is down.")
    elif args.command == "crd":
        kube.install_crd(stack.read_env(local / "env"))
    elif args.command == "operator-kubeconfig":
        env = stack.read_env(local / "env")
        print(kube.operator_env(env, local)["KUBECONFIG"])
    elif args.command == "demo":
        return demo.run(local)
    else:
        sys.stdout.write((local / "env").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
