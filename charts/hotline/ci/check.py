#!/usr/bin/env python3
"""Offline checks of the Hotline chart: no cluster, no helm binary.

- renders ci/*-values.yaml and a few variations with the Helm SDK (helm-python-sdk);
- runs `helm lint --strict` with each CI values file;
- validates every rendered object against the Kubernetes OpenAPI schemas in strict
  mode (kubernetes-validate), for the oldest and newest supported Kubernetes;
- checks that every HOTLINE_* variable the chart sets is a key of
  services/hotline/config/default.toml (the binary rejects unknown keys);
- checks that values.schema.json refuses wrong types, misspelt keys and services the
  image does not contain (with `helm template` and `helm lint`), that its list of
  services matches values.yaml's `components`, and that validate.yaml refuses
  contradictory values;
- checks that every value in values.yaml is documented by a `# --` comment (on
  itself, or on each of its children for a grouping key), and that README.md is
  what ci/readme.py generates from those comments (as helm-docs would).

`make chart` then runs checkov over the manifests of the two CI values files
(`--manifests DIR`), in the virtual environment it keeps for these checks.

Usage: pip install -r charts/hotline/ci/requirements.txt
       python3 charts/hotline/ci/check.py [--dump DIR] [--manifests DIR]
Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tomllib
from pathlib import Path

try:
    import helm_python as helm
    import kubernetes_validate
    import yaml

    import readme
except ImportError as error:  # pragma: no cover
    sys.exit(f"missing {error.name}: pip install -r {Path(__file__).with_name('requirements.txt')}")

CHART = Path(__file__).resolve().parent.parent
CI = CHART / "ci"
DEFAULT_TOML = CHART.parent.parent / "services" / "hotline" / "config" / "default.toml"
REPO = CHART.parent.parent
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
# The services the image contains: values.schema.json's components (the one list).
SERVICES = sorted(SCHEMA["properties"]["components"]["properties"])
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
RELEASE, NAMESPACE = "hl", "cc"
# Non-configuration HOTLINE_ variables the binary knows (services/kit config.rs NOT_CONFIG).
NOT_CONFIG = {"HOTLINE_TARGET", "HOTLINE_REQUIRE_INFRA"}

EXTERNAL = {
    "database": {"existingSecret": "backends"},
    "bus": {"existingSecret": "backends"},
    "cache": {"existingSecret": "backends"},
    "piiKey": {"existingSecret": "identity"},
}


def merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(name: str) -> dict:
    return yaml.safe_load((CI / name).read_text()) or {}


SIDECAR = {
    "name": "sidecar",
    "image": "registry.example.invalid/sidecar@sha256:" + "0" * 64,
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
}


def cases() -> list[tuple[str, dict]]:
    every_component = {name: {"enabled": True} for name in SERVICES}
    return [
        ("monolith-values.yaml", load("monolith-values.yaml")),
        ("microservices-values.yaml", load("microservices-values.yaml")),
        ("defaults", {}),
        ("monolith, external backends, HPA", merge(EXTERNAL, {"monolith": {"autoscaling": {"enabled": True}}})),
        ("microservices, every component", merge(EXTERNAL, {"deploymentMode": "microservices", "components": every_component})),
        ("microservices, extra volumes, mounts and containers, an existing ServiceAccount", merge(EXTERNAL, {
            "deploymentMode": "microservices",
            "serviceAccount": {"create": False, "name": "hotline-runner"},
            "extraVolumes": [{"name": "postgres-ca", "secret": {"secretName": "postgres-ca"}}],
            "extraVolumeMounts": [{"name": "postgres-ca", "mountPath": "/etc/postgres-ca", "readOnly": True}],
            "extraContainers": [SIDECAR],
            "components": {"routing": {
                "extraVolumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}],
                "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                "extraContainers": [{**SIDECAR, "name": "routing-sidecar"}],
            }},
        })),
        ("extraEnv replacing chart variables", {"extraEnv": [{"name": "HOTLINE_TELEMETRY__LEVEL", "value": "debug"}],
                                                 "monolith": {"extraEnv": [{"name": "HOTLINE_TELEMETRY__LEVEL", "value": "trace"}]}}),
    ]


def refusals() -> list[tuple[str, dict, str]]:
    micro = merge(EXTERNAL, {"deploymentMode": "microservices"})
    return [
        ("monolith SQLite with 2 replicas", {"monolith": {"replicas": 2}}, "embedded SQLite"),
        ("monolith SQLite with an HPA", {"monolith": {"autoscaling": {"enabled": True}}}, "embedded SQLite"),
        ("monolith, 2 replicas, in-process bus", merge({"database": EXTERNAL["database"], "piiKey": EXTERNAL["piiKey"]}, {"monolith": {"replicas": 2}}), "RabbitMQ"),
        ("microservices without a database", merge(micro, {"database": {"existingSecret": ""}}), "needs PostgreSQL"),
        ("microservices without RabbitMQ", merge(micro, {"bus": {"existingSecret": ""}}), "needs RabbitMQ"),
        ("microservices without Redis", merge(micro, {"cache": {"existingSecret": ""}}), "needs Redis"),
        ("microservices with nothing enabled", merge(micro, {"components": {name: {"enabled": False} for name in SERVICES}}), "no component is enabled"),
        ("PostgreSQL identity without a pii key", merge(micro, {"piiKey": {"existingSecret": ""}}), "encryption key"),
        ("HPA minReplicas > maxReplicas", merge(micro, {"components": {"identity": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}}}), "greater than maxReplicas"),
        ("PDB without a budget", merge(micro, {"components": {"identity": {"podDisruptionBudget": {"maxUnavailable": None}}}}), "podDisruptionBudget"),
        ("grace period too short", {"shutdown": {"terminationGracePeriodSeconds": 30}}, "must exceed"),
        ("unknown mode", {"deploymentMode": "both"}, "'/deploymentMode': value must be one of"),
        ("replicas as text", {"monolith": {"replicas": "two"}}, "'/monolith/replicas': got string, want integer"),
        ("a misspelt key", {"monolith": {"replica": 2}}, "additional properties 'replica' not allowed"),
        ("a misspelt nested key", merge(micro, {"components": {"identity": {"autoscaling": {"maxReplica": 9}}}}), "additional properties 'maxReplica' not allowed"),
        ("a service the image does not contain", merge(micro, {"components": {"knowledge": {"enabled": True, "replicas": 2}}}), "additional properties 'knowledge' not allowed"),
        ("a monolith target the image does not contain", {"monolith": {"target": "identity,knowledge"}}, "which the image does not contain"),
        ("an unknown pull policy", {"image": {"pullPolicy": "Sometimes"}}, "'/image/pullPolicy': value must be one of"),
        ("a log format the binary lacks", {"telemetry": {"logFormat": "xml"}}, "'/telemetry/logFormat': value must be one of"),
        ("a negative replica count", {"monolith": {"replicas": -1}}, "'/monolith/replicas': minimum"),
        ("a non-string annotation", {"podAnnotations": {"sidecar.example/inject": True}}, "'/podAnnotations/sidecar.example~1inject': got boolean, want string"),
        ("an extra volume named like the chart's", {"extraVolumes": [{"name": "data", "emptyDir": {}}]}, "volume \"data\" is given twice"),
        ("an extra volume given twice", merge(micro, {"extraVolumes": [{"name": "ca", "emptyDir": {}}], "components": {"identity": {"extraVolumes": [{"name": "ca", "emptyDir": {}}]}}}), "components.identity: volume \"ca\" is given twice"),
        ("a mount over /data", {"monolith": {"extraVolumes": [{"name": "x", "emptyDir": {}}], "extraVolumeMounts": [{"name": "x", "mountPath": "/data/"}]}}, "mount path /data/ is given twice"),
        ("a mount of a volume the pod lacks", {"monolith": {"extraVolumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}}, "names volume \"nowhere\", which the pod does not have"),
        ("a global mount of a unit's volume", {"extraVolumeMounts": [{"name": "x", "mountPath": "/x"}], "monolith": {"extraVolumes": [{"name": "x", "emptyDir": {}}]}}, "which is not in extraVolumes"),
        ("a sidecar named hotline", {"extraContainers": [{**SIDECAR, "name": "hotline"}]}, "container \"hotline\" is given twice"),
        ("a sidecar without an image", {"extraContainers": [{"name": "x"}]}, "'/extraContainers/0': missing property 'image'"),
        ("an Ingress path for a disabled component", merge(micro, {"ingress": {"enabled": True, "extraPaths": [{"path": "/docs", "component": "ticketing"}]}, "components": {"ticketing": {"enabled": False}}}), "which is not enabled"),
        ("an Ingress path routed twice", {"ingress": {"enabled": True, "extraPaths": [{"path": "/api/v1/tasks"}]}}, "path /api/v1/tasks is routed twice"),
        ("an Ingress with nothing to route", merge(micro, {"ingress": {"enabled": True}, "components": {name: {"enabled": name == "identity", "ingressPaths": []} for name in SERVICES}}), "nothing to route"),
        ("a NetworkPolicy port the pods lack", {"networkPolicy": {"ingress": {"ports": ["metrics"]}}}, "'/networkPolicy/ingress/ports/0': value must be one of"),
        ("an image tag given as a number", {"image": {"tag": 1.0}}, "'/image/tag': got number, want string"),
        ("a digest without its algorithm", {"image": {"digest": "0123abcd"}}, "'/image/digest'"),
    ]


def lint_refusals() -> list[tuple[str, dict, str]]:
    """Values `helm lint` must report as errors (the schema)."""
    return [
        ("replicas as text", {"monolith": {"replicas": "two"}}, "got string, want integer"),
        ("a misspelt key", {"serviceMonitor": {"enabeld": True}}, "additional properties 'enabeld' not allowed"),
    ]


def schema_agrees_with_values() -> list[str]:
    """values.yaml has a components block for each service in the schema, and no other."""
    blocks = sorted(yaml.safe_load((CHART / "values.yaml").read_text())["components"])
    if blocks != SERVICES:
        return [f"values.yaml components {blocks} != values.schema.json components {SERVICES}"]
    return []


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def expectations(label: str, objects: list[dict]) -> list[str]:
    """What particular cases must render, beyond being valid."""
    problems: list[str] = []
    hotline = [c for o in objects for c in containers(o) if c["name"] in ("hotline", "migrate")]
    if label == "defaults" and {(c["image"], c["imagePullPolicy"]) for c in hotline} != {("hotline:0.1.0", "Always")}:
        problems.append("an image given by tag is not pulled Always")
    if label.endswith("-values.yaml"):
        digest = load(label)["image"]["digest"]
        if {(c["image"], c["imagePullPolicy"]) for c in hotline} != {(f"registry.example.invalid/hotline:ci@{digest}", "IfNotPresent")}:
            problems.append("an image given by digest is not registry.example.invalid/hotline:ci@<digest> pulled IfNotPresent")
    for container in hotline:
        if "cpu" not in container.get("resources", {}).get("limits", {}):
            problems.append(f"container {container['name']} has no CPU limit")
    if label == "defaults":
        claims = find(objects, "PersistentVolumeClaim")
        if [c["metadata"].get("annotations", {}).get("helm.sh/resource-policy") for c in claims] != ["keep"]:
            problems.append("the data claim is not annotated helm.sh/resource-policy: keep")
    if label.startswith("microservices, extra volumes"):
        for deployment in find(objects, "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
            volumes = [v["name"] for v in pod["volumes"]]
            mounts = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
            names = [c["name"] for c in pod["containers"]]
            want = (["tmp", "data", "config", "postgres-ca"] + (["scratch"] if component == "routing" else []),
                    ["/tmp", "/data", "/etc/hotline", "/etc/postgres-ca"] + (["/scratch"] if component == "routing" else []),
                    ["hotline", "sidecar"] + (["routing-sidecar"] if component == "routing" else []))
            if (volumes, mounts, names) != want:
                problems.append(f"{component}: volumes {volumes}, mounts {mounts}, containers {names}; wanted {want}")
            if pod.get("serviceAccountName") != "hotline-runner":
                problems.append(f"{component}: serviceAccountName {pod.get('serviceAccountName')!r}, wanted the existing hotline-runner")
        for job in find(objects, "Job"):
            pod = job["spec"]["template"]["spec"]
            if [v["name"] for v in pod["volumes"]] != ["tmp", "data", "postgres-ca"] or len(pod["containers"]) != 1:
                problems.append("the migration Job has not exactly the global extra volumes and no sidecar")
            if pod.get("serviceAccountName") != "hotline-runner":
                problems.append("the migration Job does not run under the existing ServiceAccount")
        if find(objects, "ServiceAccount"):
            problems.append("a ServiceAccount was created with serviceAccount.create=false")
    if label == "microservices-values.yaml":
        accounts = find(objects, "ServiceAccount")
        if [a["metadata"]["name"] for a in accounts] != ["hl-hotline"] or accounts[0].get("automountServiceAccountToken") is not False:
            problems.append("no ServiceAccount hl-hotline without an automounted token")
        for deployment in find(objects, "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            if pod.get("serviceAccountName") != "hl-hotline" or pod.get("automountServiceAccountToken") is not False:
                problems.append(f"{deployment['metadata']['name']} does not run as hl-hotline without a token")
        for job in find(objects, "Job"):
            if "serviceAccountName" in job["spec"]["template"]["spec"]:
                problems.append("the migration hook names the chart's ServiceAccount, which does not exist yet on install")
    if label in ("monolith-values.yaml", "microservices-values.yaml"):
        routed = {(p["path"], p["backend"]["service"]["name"]) for ing in find(objects, "Ingress")
                  for rule in ing["spec"]["rules"] for p in rule["http"]["paths"]}
        services = {name: [f"/{p.lstrip('/')}" for p in block["ingressPaths"]] for name, block in VALUES["components"].items()}
        if label == "monolith-values.yaml":
            want = {(p, "hl-hotline") for paths in services.values() for p in paths}
        else:
            want = {(p, f"hl-hotline-{name}") for name, paths in services.items() for p in paths} | {("/docs", "hl-hotline-identity")}
        if routed != want:
            problems.append(f"Ingress routes {sorted(routed - want)} it should not and misses {sorted(want - routed)}")
        tests = [p for p in find(objects, "Pod") if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
        services = [svc["metadata"]["name"] for svc in find(objects, "Service")]
        urls = [a for t in tests for a in t["spec"]["containers"][0]["args"] if a.startswith("http://")]
        want_urls = [f"http://{name}.{NAMESPACE}.svc:8080/{path}" for name in services for path in ("readyz", "openapi.json")]
        if len(tests) != 1 or sorted(urls) != sorted(want_urls):
            problems.append(f"the helm test pod calls {urls}, wanted {want_urls}")
        policies = find(objects, "NetworkPolicy")
        if len(policies) != 1:
            problems.append(f"{len(policies)} NetworkPolicies, wanted 1")
        elif label == "microservices-values.yaml" and "Egress" not in policies[0]["spec"]["policyTypes"]:
            problems.append("networkPolicy.egress.enabled but the NetworkPolicy does not restrict egress")
    return problems


def ingress_paths_cover_scopes() -> list[str]:
    """Every `web::scope("...")` (and top-level /oauth, /.well-known route) of a service's
    source is under one of its components.<name>.ingressPaths, so a new resource is not
    left unreachable through the Ingress."""
    problems = []
    for name in SERVICES:
        prefixes = VALUES["components"][name]["ingressPaths"]
        found: set[str] = set()
        for source in (REPO / "services" / name / "src").rglob("*.rs"):
            text = source.read_text()
            found |= set(re.findall(r'web::scope\(\s*"([^"]+)"', text))
            found |= set(re.findall(r'#\[(?:get|post|put|patch|delete)\(\s*"(/(?:oauth|\.well-known)/[^"]*)"', text))
        for path in sorted(found):
            if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes):
                problems.append(f"services/{name}/src serves {path}, not under components.{name}.ingressPaths")
    return problems


def config_keys() -> set[str]:
    """HOTLINE_* names of every key in default.toml."""
    def walk(table: dict, prefix: list[str]) -> set[str]:
        names: set[str] = set()
        for key, value in table.items():
            path = [*prefix, key]
            if isinstance(value, dict):
                names |= walk(value, path)
            else:
                names.add("HOTLINE_" + "__".join(part.upper() for part in path))
        return names
    return walk(tomllib.loads(DEFAULT_TOML.read_text()), [])


def containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def check_objects(label: str, objects: list[dict], keys: set[str]) -> list[str]:
    problems: list[str] = []
    for obj in objects:
        what = f"{label}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            if not obj.get("spec", {}).get("endpoints"):
                problems.append(f"{what}: ServiceMonitor without endpoints")
            continue  # CRD: no schema in kubernetes-validate
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{what} (k8s {version}): {error.message} at {'.'.join(map(str, error.path))}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{what}: no schema in Kubernetes {version}")
        for container in containers(obj):
            names = [env["name"] for env in container.get("env", [])]
            duplicates = {name for name in names if names.count(name) > 1}
            if duplicates:
                problems.append(f"{what}: duplicate env {sorted(duplicates)}")
            for name in names:
                if name.startswith("HOTLINE_") and name not in keys and name not in NOT_CONFIG:
                    problems.append(f"{what}: {name} is not a key of {DEFAULT_TOML.name}")
    return problems


def render(chart, values: dict) -> tuple[list[dict], str]:
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict] = []
    notes = ""
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, help="write each case's rendered manifests to DIR")
    parser.add_argument("--manifests", type=Path,
                        help="write the manifests of ci/*-values.yaml to DIR (emptied first), for checkov")
    args = parser.parse_args()

    keys = config_keys()
    passed, failed = 0, 0

    def report(ok: bool, name: str, detail: list[str] | None = None) -> None:
        nonlocal passed, failed
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
        for line in detail or []:
            print(f"     {line}")

    if args.manifests:
        args.manifests.mkdir(parents=True, exist_ok=True)
        for old in args.manifests.glob("*.yaml"):
            old.unlink()

    with helm.Chart.load(CHART) as chart:
        for label, values in cases():
            try:
                objects, notes = render(chart, values)
            except helm.HelmError as error:
                report(False, f"render {label}", [str(error)])
                continue
            problems = check_objects(label, objects, keys) + expectations(label, objects)
            if not notes.strip():
                problems.append("NOTES.txt rendered empty")
            kinds = sorted({obj["kind"] for obj in objects})
            report(not problems, f"render {label}: {len(objects)} objects ({', '.join(kinds)})", problems)
            if args.dump:
                args.dump.mkdir(parents=True, exist_ok=True)
                slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
                (args.dump / f"{slug}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
            if args.manifests and label.endswith("-values.yaml"):
                (args.manifests / label).write_text(yaml.safe_dump_all(objects, sort_keys=False))

        for label, values, expected in refusals():
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                report(False, f"refuses {label}", ["rendered without error"])
            except helm.HelmError as error:
                ok = expected in str(error)
                report(ok, f"refuses {label}", None if ok else [f"expected {expected!r} in: {error}"])

    disagreements = schema_agrees_with_values()
    report(not disagreements, f"values.schema.json and values.yaml list the same services ({', '.join(SERVICES)})", disagreements)

    uncovered = ingress_paths_cover_scopes()
    report(not uncovered, "components.*.ingressPaths cover every scope the services serve", uncovered)

    undocumented = readme.undocumented(readme.parse())
    report(not undocumented, "every value in values.yaml has a `# --` comment", [f"undocumented: {p}" for p in undocumented])

    current = readme.README.read_text() if readme.README.exists() else ""
    fresh = current == readme.render()
    report(fresh, "README.md is what ci/readme.py writes from values.yaml",
           None if fresh else [f"regenerate it: {sys.executable} {Path(readme.__file__)}"])

    for name in ("monolith-values.yaml", "microservices-values.yaml"):
        result = helm.lint(str(CHART), load(name), strict=True, namespace=NAMESPACE)
        messages = [m for m in result.get("messages", []) if m.get("severity", 0) >= 2] if result else []
        errors = [*result.get("errors", []), *(f"{m.get('path')}: {m.get('error')}" for m in messages)] if result else ["no lint result"]
        report(not errors, f"helm lint --strict -f ci/{name}", errors)

    for label, values, expected in lint_refusals():
        result = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE) or {}
        errors = "\n".join(result.get("errors", []))
        report(expected in errors, f"helm lint refuses {label}", None if expected in errors else [f"expected {expected!r} in: {errors or 'no errors'}"])

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
