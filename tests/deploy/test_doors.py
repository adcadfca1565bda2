"""The deployment's own doors: every k8s manifest passes ``kubernetes-validate --strict``; every
pod runs as the image's non-root user on a read-only root filesystem, without privilege
escalation or capabilities, under seccomp RuntimeDefault, with a writable mount wherever the
processes write, in a namespace that enforces Pod Security "restricted"; the NetworkPolicies,
evaluated here, allow exactly the connections of the table in deploy/k8s/network-policies.yaml
(between ucx pods only the apis' token introspection at the registry api, where UCX_REGISTRY_URL
leads), and the opt-in deploy/k8s/optional/oidc-egress.yaml adds the apis' https to the OpenID
Connect issuer and nothing else; the partner Ingress routes exactly the partner-facing paths of
the services' OpenAPI documents, over TLS; compose runs every ucx process hardened alike, on
networks that mirror the policies."""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate as kv
import pytest
import yaml

from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring.__main__ import SPEC as SCORING
from servicekit.cli import ServiceSpec

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
OIDC_EGRESS = "optional/oidc-egress.yaml"
"""Opt-in (not among kustomization.yaml's resources): the apis' https to the OIDC issuer."""
NAMESPACE = "ucx"
SPECS: dict[str, ServiceSpec] = {
    "registry": REGISTRY,
    "inspection": INSPECTION,
    "customs": CUSTOMS,
    "scoring": SCORING,
}
PARTNER_SCHEMES = {"enterpriseKey", "stationKey"}
"""The credentials partners hold (shared/API.md); an operation that accepts one of them, or
none (public, or a broker's signed webhook), is partner-facing. Every other scheme is admin."""
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
WRITABLE = {"/tmp", "/app/var"}
"""Where a ucx process writes (deploy/Dockerfile): the rest of the filesystem is read-only."""


def dockerfile(instruction: str) -> str:
    [value] = re.findall(rf"(?m)^{instruction} (\S+)", (DEPLOY / "Dockerfile").read_text())
    return str(value)


def applied() -> list[str]:
    """The files kustomize applies (kustomization.yaml's resources)."""
    resources: list[str] = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    return resources


def k8s_files() -> Iterator[tuple[str, dict[str, Any]]]:
    """(file, resource) for what kustomize applies, the example Secret and the opt-in files."""
    optional = sorted(str(path.relative_to(K8S)) for path in (K8S / "optional").glob("*.yaml"))
    assert OIDC_EGRESS in optional
    for name in [*applied(), "secret.example.yaml", *optional]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                yield name, doc


def k8s_docs() -> list[dict[str, Any]]:
    """What kustomize applies by default."""
    return [doc for name, doc in k8s_files() if name in applied()]


def pod_templates(node: Any, name: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template (or Pod) anywhere in a resource, whatever its kind: (name, template)."""
    if isinstance(node, dict):
        name = node.get("metadata", {}).get("name", name)
        if isinstance(node.get("spec"), dict) and "containers" in node["spec"]:
            yield name, node
        for value in node.values():
            yield from pod_templates(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from pod_templates(value, name)


# -- kubernetes-validate -------------------------------------------------------------------------


def test_every_manifest_passes_kubernetes_validate_strict() -> None:
    version = kv.latest_version()
    resources = list(k8s_files())
    kinds = {doc["kind"] for _, doc in resources}
    assert {"Deployment", "Job", "NetworkPolicy", "Ingress", "Service", "Secret"} <= kinds
    assert {name for name, _ in resources} >= {*applied(), "secret.example.yaml", OIDC_EGRESS}
    for name, doc in resources:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as error:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {error}")
    # strict: a field the schema does not know is an error, not a silent no-op
    [deployment] = [d for _, d in resources if d["kind"] == "Deployment"][:1]
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kv.ValidationError):
        kv.validate(typo, version, strict=True)


# -- pods ----------------------------------------------------------------------------------------


def test_every_pod_runs_non_root_read_only_without_privileges() -> None:
    uid, gid = (int(x) for x in dockerfile("USER").split(":"))
    assert uid != 0 and gid != 0
    docs = k8s_docs()
    [namespace] = [d for d in docs if d["kind"] == "Namespace"]
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = [p for doc in docs for p in pod_templates(doc)]
    workloads = {d["metadata"]["name"] for d in docs if d["kind"] in {"Deployment", "Job"}}
    assert {name for name, _ in pods} == workloads and len(workloads) == 17
    for name, template in pods:
        spec = template["spec"]
        pod = spec.get("securityContext", {})
        assert pod.get("runAsUser") == uid and pod.get("runAsGroup") == gid, name
        assert spec.get("automountServiceAccountToken") is False, name
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"] + spec.get("initContainers", []):
            own = container.get("securityContext", {})
            effective = {**pod, **own}  # the container's fields override the pod's
            where = f"{name}/{container['name']}"
            assert effective.get("runAsNonRoot") is True, where
            assert effective.get("runAsUser") != 0, where
            assert effective.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert own.get("readOnlyRootFilesystem") is True, where
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("privileged", False) is False, where
            assert own.get("capabilities") == {"drop": ["ALL"]}, where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.keys() >= WRITABLE, where
            assert all("emptyDir" in volumes[mounts[path]] for path in WRITABLE), where


def test_what_the_processes_write_by_default_lies_in_the_writable_mounts() -> None:
    """A relative path in the settings is data the process keeps (the SQLite default, the
    generated signing key; faust's data dir var/faust/<service> too), resolved from its
    working directory, the image's WORKDIR: it must lie in a writable mount. Absolute defaults
    point into the installed code (the policy files) and are only read."""
    workdir = Path(dockerfile("WORKDIR"))
    checked = []
    for name, spec in SPECS.items():
        for key, value in spec.settings().model_dump().items():
            if key == "database_url":
                value = value.removeprefix("sqlite:///")
            elif not key.endswith(("_file", "_dir", "_path")) or Path(value).is_absolute():
                continue
            path = workdir / value
            assert any(path.is_relative_to(w) for w in WRITABLE), f"{name}.{key}: {path}"
            checked.append(f"{name}.{key}")
    assert len(checked) == 5, checked


# -- network policies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A pod (or an address outside the cluster) that may connect or be connected to."""

    name: str
    namespace: str | None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ip: str = ""
    ports: tuple[tuple[int, str], ...] = ((443, "TCP"),)  # what it serves
    named: dict[str, int] = field(default_factory=dict, hash=False)  # its named ports

    @property
    def role(self) -> str:
        return self.labels.get("app.kubernetes.io/component", self.name)


NGINX = {"app.kubernetes.io/name": "ingress-nginx"}
PEERS = [  # what these manifests do not deploy, labelled as network-policies.yaml says
    Endpoint("kafka", NAMESPACE, {"app.kubernetes.io/name": "kafka"}, "10.0.2.1", ((9092, "TCP"),)),
    Endpoint(
        "postgresql", NAMESPACE, {"app.kubernetes.io/name": "postgresql"}, "10.0.2.2",
        ((5432, "TCP"),),
    ),
    Endpoint("dns", "kube-system", {"k8s-app": "kube-dns"}, "10.0.3.1", ((53, "UDP"), (53, "TCP"))),
    Endpoint("ingress", "ingress-nginx", NGINX, "10.0.4.1"),
    Endpoint("internal-ingress", "ingress-nginx-internal", NGINX, "10.0.4.2"),
    Endpoint(
        "prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}, "10.0.5.1",
        ((9090, "TCP"),),
    ),
    Endpoint("stranger", "default", {"app": "other"}, "10.0.6.1", ((8080, "TCP"),)),
    Endpoint("internet", None, ip="93.184.215.14", ports=((443, "TCP"), (80, "TCP"))),
    Endpoint("internet6", None, ip="2606:4700::1111", ports=((443, "TCP"), (80, "TCP"))),
    Endpoint("cloud-metadata", None, ip="169.254.169.254", ports=((443, "TCP"), (80, "TCP"))),
    Endpoint("private-host", None, ip="192.168.1.10"),
    Endpoint("cgnat-host", None, ip="100.64.0.10"),
]  # fmt: skip
EGRESS = {
    "api": {"kafka", "postgresql", "dns"},
    "relay": {"kafka", "postgresql", "dns"},
    "worker": {"kafka", "postgresql", "dns"},
    "migrate": {"postgresql", "dns"},
    "topics": {"kafka", "dns"},
    "kafka": {"kafka", "dns"},
    "postgresql": {"dns"},
}
"""Who each pod of the namespace may connect to (the table in network-policies.yaml); the
customs worker also reaches the internet on 443, and REGISTRY_CLIENTS the registry api."""
REGISTRY_CLIENTS = {"inspection-api", "customs-api", "scoring-api"}
"""The apis that ask the registry api who holds an official's token, on each admin call
(POST /v1/principals/introspect at UCX_REGISTRY_URL): the one connection between ucx pods."""
INGRESS = {
    "api": {"ingress", "internal-ingress", "prometheus"},
    "relay": {"prometheus"},
    "worker": {"prometheus"},
}
"""Who from outside the namespace may connect to a ucx pod."""


def ucx_pods() -> list[Endpoint]:
    pods = []
    for i, (name, template) in enumerate(p for d in k8s_docs() for p in pod_templates(d)):
        ports = [p for c in template["spec"]["containers"] for p in c.get("ports", [])]
        pods.append(
            Endpoint(
                name, NAMESPACE, template["metadata"]["labels"], f"10.0.1.{i + 1}",
                tuple((p["containerPort"], p.get("protocol", "TCP")) for p in ports),
                {p["name"]: p["containerPort"] for p in ports if "name" in p},
            )
        )  # fmt: skip
    return pods


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        present, value = e["key"] in labels, labels.get(e["key"])
        ok = {
            "In": present and value in e.get("values", []),
            "NotIn": not (present and value in e.get("values", [])),
            "Exists": present,
            "DoesNotExist": not present,
        }[e["operator"]]
        if not ok:
            return False
    return True


def peer_matches(peer: dict[str, Any], other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block, address = peer["ipBlock"], ipaddress.ip_address(other.ip)
        networks = [ipaddress.ip_network(c) for c in [block["cidr"], *block.get("except", [])]]
        inside, *excepted = [n.version == address.version and address in n for n in networks]
        return inside and not any(excepted)
    if other.namespace is None:
        return False
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = other.namespace == NAMESPACE
    else:
        in_namespace = selects(namespaces, {"kubernetes.io/metadata.name": other.namespace})
    return in_namespace and selects(peer.get("podSelector", {}), other.labels)


def port_matches(rule: dict[str, Any], port: int, protocol: str, server: Endpoint) -> bool:
    for entry in rule.get("ports") or [{"protocol": protocol}]:
        number = entry.get("port", port)
        number = server.named.get(number) if isinstance(number, str) else number
        same_protocol = entry.get("protocol", "TCP") == protocol
        if same_protocol and number is not None and number <= port <= entry.get("endPort", number):
            return True
    return False


def policy_types(spec: dict[str, Any]) -> list[str]:
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


def admits(
    policies: list[dict[str, Any]], subject: Endpoint, other: Endpoint, direction: str,
    port: int, protocol: str, server: Endpoint,
) -> bool:  # fmt: skip
    """Whether the policies selecting ``subject`` let it connect to (Egress) or be reached by
    (Ingress) ``other``. Pods of other namespaces and addresses outside are not ours to judge."""
    if subject.namespace != NAMESPACE:
        return True
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [
        p["spec"]
        for p in policies
        if selects(p["spec"]["podSelector"], subject.labels)
        and direction in policy_types(p["spec"])
    ]
    if not selecting:
        return True
    return any(
        (not rule.get(peers_key) or any(peer_matches(x, other) for x in rule[peers_key]))
        and port_matches(rule, port, protocol, server)
        for spec in selecting
        for rule in spec.get(rules_key, [])
    )


def pairs(endpoints: list[Endpoint]) -> Iterator[tuple[Endpoint, Endpoint, int, str]]:
    """(client, server, port, protocol) on every port any endpoint serves, where at least one
    side is in the namespace (the rest is not these policies' business)."""
    ports = sorted({port for e in endpoints for port in e.ports})
    for client in endpoints:
        for server in endpoints:
            if NAMESPACE in {client.namespace, server.namespace}:
                for port, protocol in ports:
                    yield client, server, port, protocol


def documented(client: Endpoint, server: Endpoint, port: int, protocol: str) -> bool:
    """The table of network-policies.yaml: EGRESS and INGRESS on the ports the server serves,
    the brokers among themselves on any port, the customs worker's webhooks (https to public
    addresses), the registry's clients to the registry api. Not the opt-in OIDC egress."""
    if client.name == server.name == "kafka":
        return True
    if (port, protocol) not in server.ports:
        return False
    if client.name in REGISTRY_CLIENTS and server.name == "registry-api":
        return True
    if client.name == "customs-worker" and server.name in {"internet", "internet6"}:
        return port == 443
    if client.namespace == NAMESPACE:
        return server.role in EGRESS.get(client.role, set())
    return client.name in INGRESS.get(server.role, set())


def connections(
    policies: list[dict[str, Any]], endpoints: list[Endpoint]
) -> set[tuple[str, str, str]]:
    """(client, server, "port/protocol") that the client's egress and the server's ingress allow."""
    return {
        (client.name, server.name, f"{port}/{protocol}")
        for client, server, port, protocol in pairs(endpoints)
        if admits(policies, client, server, "Egress", port, protocol, server)
        and admits(policies, server, client, "Ingress", port, protocol, server)
    }


def network_policies() -> list[dict[str, Any]]:
    """The NetworkPolicies kustomize applies by default."""
    return [d for d in k8s_docs() if d["kind"] == "NetworkPolicy"]


def test_the_network_policies_allow_exactly_the_documented_connections() -> None:
    policies = network_policies()
    deny = [p["spec"] for p in policies if p["metadata"]["name"] == "default-deny"]
    assert deny == [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}]
    pods = ucx_pods()
    for pod in pods:  # each is let out by a policy of its own, beyond default-deny and DNS
        own = [p["spec"] for p in policies if p["spec"]["podSelector"]]
        assert any("egress" in s and selects(s["podSelector"], pod.labels) for s in own), pod
    allowed = connections(policies, pods + PEERS)
    wanted = {
        (client.name, server.name, f"{port}/{protocol}")
        for client, server, port, protocol in pairs(pods + PEERS)
        if documented(client, server, port, protocol)
    }
    assert sorted(allowed - wanted) == [] and sorted(wanted - allowed) == []
    assert {
        ("customs-worker", "internet", "443/TCP"), ("registry-api", "kafka", "9092/TCP"),
        ("ingress", "scoring-api", "8004/TCP"), ("prometheus", "customs-relay", "8203/TCP"),
        ("registry-migrate", "dns", "53/UDP"), ("kafka", "kafka", "9092/TCP"),
        ("customs-api", "registry-api", "8001/TCP"), ("scoring-api", "registry-api", "8001/TCP"),
    } <= allowed  # fmt: skip
    assert not {
        ("customs-worker", "cloud-metadata", "80/TCP"), ("customs-worker", "internet", "80/TCP"),
        ("registry-worker", "internet", "443/TCP"), ("registry-api", "registry-relay", "8201/TCP"),
        ("ingress", "registry-relay", "8201/TCP"), ("stranger", "registry-api", "8001/TCP"),
        ("topics", "postgresql", "5432/TCP"), ("registry-migrate", "kafka", "9092/TCP"),
        ("inspection-worker", "registry-api", "8001/TCP"),
        ("customs-relay", "registry-api", "8001/TCP"),
        ("registry-relay", "registry-api", "8001/TCP"),
        ("registry-api", "inspection-api", "8002/TCP"),
        ("inspection-api", "scoring-api", "8004/TCP"),
        ("customs-api", "registry-worker", "8101/TCP"), ("customs-api", "internet", "443/TCP"),
    } & allowed  # fmt: skip


def registry_url(urls: dict[str, str]) -> tuple[str, int]:
    """(host, port) of the one UCX_REGISTRY_URL the registry's clients are given: a base URL."""
    assert set(urls) == REGISTRY_CLIENTS
    [url] = set(urls.values())
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.path in {"", "/"} and not parts.query, url
    assert parts.hostname and parts.port, url
    return parts.hostname, parts.port


def test_the_registry_url_leads_to_the_registry_api_the_policies_open() -> None:
    """UCX_REGISTRY_URL is set on exactly the apis the policies let reach the registry api, and
    it names the Service whose port leads to that api's port."""
    docs = k8s_docs()
    urls = {
        name: env["value"]
        for doc in docs
        for name, template in pod_templates(doc)
        for container in template["spec"]["containers"] + template["spec"].get("initContainers", [])
        for env in container.get("env", [])
        if env["name"] == "UCX_REGISTRY_URL"
    }
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]  # not on every pod through envFrom
    assert "UCX_REGISTRY_URL" not in config["data"]
    host, port = registry_url(urls)
    [service] = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == host]
    pods = ucx_pods()
    selected = [p for p in pods if selects({"matchLabels": service["spec"]["selector"]}, p.labels)]
    assert [p.name for p in selected] == ["registry-api"]
    [registry_api] = selected
    [entry] = [e for e in service["spec"]["ports"] if e["port"] == port]
    target = entry.get("targetPort", port)
    target = registry_api.named[target] if isinstance(target, str) else target
    assert (target, entry.get("protocol", "TCP")) in registry_api.ports
    allowed = connections(network_policies(), pods)
    reaching = {(client, via) for client, server, via in allowed if server == "registry-api"}
    assert reaching == {(client, f"{target}/TCP") for client in urls}


def test_the_optional_oidc_egress_opens_the_apis_https_to_the_issuer_and_nothing_else() -> None:
    """optional/oidc-egress.yaml is not applied by default (the table above holds without it);
    applied, it adds exactly each api's https (443) to the issuer's range, not port 80, not the
    other ucx pods."""
    assert OIDC_EGRESS not in applied()
    [policy] = [doc for name, doc in k8s_files() if name == OIDC_EGRESS]
    blocks = [peer["ipBlock"] for rule in policy["spec"]["egress"] for peer in rule["to"]]
    assert blocks
    issuers = []
    for i, block in enumerate(blocks):
        network = ipaddress.ip_network(block["cidr"])
        address = network[network.num_addresses // 2]
        issuers.append(
            Endpoint(f"oidc-issuer-{i}", None, ip=str(address), ports=((443, "TCP"), (80, "TCP")))
        )
    endpoints = ucx_pods() + PEERS + issuers
    before = connections(network_policies(), endpoints)
    after = connections([*network_policies(), policy], endpoints)
    apis = {f"{name}-api" for name in SPECS}
    assert before <= after
    assert after - before == {(api, issuer.name, "443/TCP") for api in apis for issuer in issuers}


# -- ingress -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, from its real app."""
    folder = tmp_path_factory.mktemp("openapi")
    documents = {}
    for name, spec in SPECS.items():
        settings = spec.settings().model_copy(
            update={
                "database_url": f"sqlite:///{folder / name}.db",
                "signing_key": base64.b64encode(bytes(32)).decode(),
            }
        )
        documents[name] = spec.create_app(settings).openapi()
    return documents


def partner_facing(operation: dict[str, Any], document: dict[str, Any]) -> bool:
    security = operation.get("security", document.get("security"))
    return not security or any(set(requirement) <= PARTNER_SCHEMES for requirement in security)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def nginx_regex(path: str) -> str:
    """An OpenAPI path as the partner Ingress writes it: each {parameter} one segment."""
    assert re.fullmatch(r"[A-Za-z0-9/_:{}-]+", path), f"{path}: escape it before routing it"
    return re.sub(r"\{[^/}]+\}", "[^/]+", path) + "$"


def routes(ingress: dict[str, Any]) -> dict[str, tuple[str, set[str]]]:
    """host -> (the one Service its paths lead to, its paths)."""
    found = {}
    for rule in ingress["spec"]["rules"]:
        paths = rule["http"]["paths"]
        [service] = {p["backend"]["service"]["name"] for p in paths}
        assert {p["backend"]["service"]["port"]["name"] for p in paths} == {"http"}
        found[rule["host"]] = (service, {p["path"] for p in paths})
    return found


def test_the_partner_ingress_routes_exactly_the_partner_facing_paths_over_tls(
    openapi: dict[str, dict[str, Any]],
) -> None:
    ingresses = {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == "Ingress"}
    partner, internal = ingresses["ucx-partner"], ingresses["ucx-internal"]
    assert partner["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
    hosts = routes(partner)
    assert sorted(service for service, _ in hosts.values()) == sorted(SPECS)
    for name, document in openapi.items():
        [paths] = [paths for service, paths in hosts.values() if service == name]
        by_path: dict[str, list[bool]] = {}
        for path, _method, operation in operations(document):
            by_path.setdefault(path, []).append(partner_facing(operation, document))
        # a path is routed when every method on it is partner-facing (Ingress cannot split
        # methods), and every such path is routed
        assert paths == {nginx_regex(p) for p, facing in by_path.items() if all(facing)}, name
        for path, _method, operation in operations(document):
            if not partner_facing(operation, document):  # as ingress-nginx matches: ~* "^..."
                sample = re.sub(r"\{[^/}]+\}", "X1", path)
                assert not any(re.search("^" + r, sample, re.IGNORECASE) for r in paths), path
    assert hosts["registry.ucx.example"][1] >= {"/v1/enterprises$", "/v1/vehicles:batch$"}
    assert "/v1/webhooks/brokers/[^/]+$" in hosts["customs.ucx.example"][1]
    services = {d["metadata"]["name"] for d in k8s_docs() if d["kind"] == "Service"}
    for ingress in (partner, internal):
        [tls] = ingress["spec"]["tls"]
        assert tls["secretName"] and set(tls["hosts"]) == set(routes(ingress))
        assert {service for service, _ in routes(ingress).values()} == services
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    # admin routes: a controller of another class (internal load balancer), other hosts
    assert partner["spec"]["ingressClassName"] != internal["spec"]["ingressClassName"]
    assert not set(routes(partner)) & set(routes(internal))


# -- compose -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def test_compose_runs_every_ucx_process_non_root_read_only_without_privileges(
    compose: dict[str, Any],
) -> None:
    user = dockerfile("USER")
    services = compose["services"]
    ucx = {name: s for name, s in services.items() if s.get("image") == "ucx:latest"}
    assert len(ucx) == 4 * 4 + 1  # migrate, api, relay, worker per service; topics
    for name, service in ucx.items():
        assert service["user"] == user and not user.startswith("0"), name
        assert service["read_only"] is True, name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["cap_drop"] == ["ALL"] and "cap_add" not in service, name
        assert not service.get("privileged"), name
        assert {entry.split(":")[0] for entry in service["tmpfs"]} >= WRITABLE, name
    for name, service in services.items():  # the others, as far as their images allow
        assert "no-new-privileges:true" in service["security_opt"], name


def test_compose_networks_mirror_the_network_policies(compose: dict[str, Any]) -> None:
    """Kafka, PostgreSQL and the processes share an internal network (no route out); only the
    APIs and the dashboards are on the network with published ports, only the customs worker
    on the one for outbound webhooks."""
    internal = {name for name, n in compose["networks"].items() if (n or {}).get("internal")}
    members: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        networks = set(service["networks"])  # none: the default network, reachable by all
        if service.get("ports"):
            assert networks - internal, f"{name} publishes ports on internal networks only"
        for network in networks:
            members.setdefault(network, set()).add(name)
    assert internal == {"backend"}
    assert members["backend"] == set(compose["services"]) - {"grafana"}
    assert members["edge"] == {f"{s}-api" for s in SPECS} | {"prometheus", "grafana"}
    assert members["egress"] == {"customs-worker"}
    assert set(members) == set(compose["networks"])


def test_compose_gives_the_registry_url_to_the_registry_clients(compose: dict[str, Any]) -> None:
    """The inspection, customs and scoring apis are told the registry api's address and port,
    on a network they share with it."""
    services = compose["services"]
    urls = {
        name: service["environment"]["UCX_REGISTRY_URL"]
        for name, service in services.items()
        if "UCX_REGISTRY_URL" in (service.get("environment") or {})
    }
    host, port = registry_url(urls)
    registry = services[host]
    assert registry["command"] == ["python", "-m", "registry", "api"]
    assert int(registry["environment"]["REGISTRY_PORT"]) == port
    for name in urls:
        assert set(services[name]["networks"]) & set(registry["networks"]), name
        # the rest of the service's environment is its processes' own (the YAML merge)
        others = services[name.replace("-api", "-relay")]["environment"]
        assert {
            k: v for k, v in services[name]["environment"].items() if k != "UCX_REGISTRY_URL"
        } == others
