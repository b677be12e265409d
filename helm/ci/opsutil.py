"""Helpers for scripts/ops-checks.sh that shell tools cannot do alone.

k8s-schemas    unpack one Kubernetes version's strict JSON schemas from the kubernetes-validate
               wheel (PyPI) into a directory kubeconform reads offline. The wheel's schemas
               reference ``/api/_definitions.json`` under an ``https://kubernetes.io/api/`` base,
               which kubeconform would fetch over the network: the references are made relative
               to the file and the ``$id`` kept only as a comment.
rule-spec      read ``helm template`` output, check that the PrometheusRule's spec is exactly
               files/alerts.yaml, and write the spec out for ``promtool check rules``.
dashboard-rules  write every PromQL expression of the Grafana dashboard as a recording rule, so
               ``promtool check rules`` parses them (Grafana's $variables replaced first).
pod-from-deployment  read ``helm template`` output and print the Deployment's pod template as a
               Pod (JSON), for scripts/k8s-check.sh: Pod Security only *warns* about a
               Deployment, but it *enforces* on a Pod, so a dry-run create of this Pod in a
               restricted namespace is the real verdict on the pods the Deployment would make.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

_WHEEL_SCHEMAS = "kubernetes_validate/kubernetes-json-schema"
_ABSOLUTE_DEFINITIONS = '"/api/_definitions.json#'
_ID_LINE = re.compile(r'^(\s*)"\$id": "https://kubernetes\.io/api/', re.MULTILINE)
_GRAFANA_RANGE = re.compile(r"\$__(?:rate_)?interval|\$__range")


def k8s_schemas(wheel: Path, kube_version: str, out: Path) -> None:
    prefix = f"{_WHEEL_SCHEMAS}/v{kube_version}-local-strict/"
    target = out / f"v{kube_version}-local-strict"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        staging = Path(tmp) / target.name
        staging.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".json")]
            if not names:
                sys.exit(f"{wheel.name} has no schemas for Kubernetes {kube_version}")
            for name in names:
                text = archive.read(name).decode("utf-8")
                text = text.replace(_ABSOLUTE_DEFINITIONS, '"_definitions.json#')
                text = _ID_LINE.sub(r'\1"$comment": "https://kubernetes.io/api/', text)
                (staging / name.removeprefix(prefix)).write_text(text, encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


def rule_spec(manifests: str, source: Path, out: Path) -> None:
    rules = [
        doc
        for doc in yaml.safe_load_all(manifests)
        if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule"
    ]
    if len(rules) != 1:
        sys.exit(f"expected one PrometheusRule in the rendered chart, found {len(rules)}")
    spec = rules[0]["spec"]
    if spec != yaml.safe_load(source.read_text(encoding="utf-8")):
        sys.exit(f"the rendered PrometheusRule differs from {source}")
    out.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def _expressions(panels: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for panel in panels:
        found += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
        found += _expressions(panel.get("panels", []))
    return found


def dashboard_rules(dashboard: Path, out: Path) -> None:
    board = json.loads(dashboard.read_text(encoding="utf-8"))
    exprs = _expressions(board["panels"])
    if not exprs:
        sys.exit(f"{dashboard} has no PromQL expression")
    rules = [
        {"record": f"dashboard:expr_{n}", "expr": _GRAFANA_RANGE.sub("5m", expr)}
        for n, expr in enumerate(exprs)
    ]
    document = {"groups": [{"name": "dashboard", "rules": rules}]}
    out.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def pod_from_deployment(manifests: str) -> dict[str, Any]:
    deployments = [
        doc
        for doc in yaml.safe_load_all(manifests)
        if isinstance(doc, dict) and doc.get("kind") == "Deployment"
    ]
    if len(deployments) != 1:
        sys.exit(f"expected one Deployment in the rendered chart, found {len(deployments)}")
    template = deployments[0]["spec"]["template"]
    metadata = {"name": deployments[0]["metadata"]["name"], **template.get("metadata", {})}
    # The chart's ServiceAccount exists only in the dry run, and the ServiceAccount admission
    # would refuse the Pod for that before Pod Security judges it (which ignores the account):
    # the Pod runs as the namespace's default account instead.
    spec = {k: v for k, v in template["spec"].items() if k != "serviceAccountName"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    schemas = commands.add_parser("k8s-schemas")
    schemas.add_argument("wheel", type=Path)
    schemas.add_argument("kube_version")
    schemas.add_argument("out", type=Path)
    spec = commands.add_parser("rule-spec", help="helm template output on stdin")
    spec.add_argument("source", type=Path)
    spec.add_argument("out", type=Path)
    board = commands.add_parser("dashboard-rules")
    board.add_argument("dashboard", type=Path)
    board.add_argument("out", type=Path)
    commands.add_parser("pod-from-deployment", help="helm template output on stdin")
    args = parser.parse_args()
    if args.command == "k8s-schemas":
        k8s_schemas(args.wheel, args.kube_version, args.out)
    elif args.command == "rule-spec":
        rule_spec(sys.stdin.read(), args.source, args.out)
    elif args.command == "pod-from-deployment":
        json.dump(pod_from_deployment(sys.stdin.read()), sys.stdout)
    else:
        dashboard_rules(args.dashboard, args.out)


if __name__ == "__main__":
    main()
