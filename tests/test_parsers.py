"""Property tests for the parsers: any manifest text gives objects or one InputError, never a
traceback; label selectors agree with a plain reading of their terms."""
from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings, strategies as st
import yaml

from kubectl_gwdup.errors import InputError, UsageError
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.selectors import parse_selector
from kubectl_gwdup.sources.files import load_files

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=8),
                    st.sampled_from(["HTTPS", "SIMPLE", "PASSTHROUGH", "*", "a.example.com", "ns/b.example.com"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["port", "number", "name", "protocol", "hosts", "tls", "mode", "credentialName", "servers",
         "selector", "spec", "metadata", "namespace", "gateways", "http", "match", "data", "items"]),
        inner, max_size=4)), max_leaves=12)
objects = st.fixed_dictionaries({
    "apiVersion": st.sampled_from(["networking.istio.io/v1", "v1", "apps/v1", "networking.istio.io/v1beta1"]),
    "kind": st.sampled_from(["Gateway", "VirtualService", "Secret", "Pod", "Deployment", "Service", "List", "Other"]),
    "metadata": st.one_of(values, st.fixed_dictionaries({"name": st.text(min_size=1, max_size=5),
                                                          "namespace": st.sampled_from(["a", "b"])})),
    "spec": values, "items": values, "data": values,
})
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(st.one_of(objects, values), max_size=4))
def test_any_manifest_loads_or_fails_with_one_input_error(docs) -> None:
    text = yaml.safe_dump_all(docs)
    try:
        raw = load_files(["-"], stdin=io.StringIO(text))
        build_inventory(raw)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)


@SETTINGS
@given(st.text(max_size=60))
def test_any_text_loads_or_fails_with_one_input_error(text) -> None:
    try:
        build_inventory(load_files(["-"], stdin=io.StringIO(text)))
    except InputError as exc:
        assert str(exc).startswith("<stdin>: ")


keys = st.sampled_from(["app", "team", "tier"])
vals = st.sampled_from(["a", "b", "web"])
terms = st.one_of(
    st.tuples(st.just("="), keys, vals), st.tuples(st.just("!="), keys, vals),
    st.tuples(st.just("exists"), keys, st.just("")), st.tuples(st.just("!"), keys, st.just("")),
    st.tuples(st.just("in"), keys, st.lists(vals, min_size=1, max_size=3)),
    st.tuples(st.just("notin"), keys, st.lists(vals, min_size=1, max_size=3)))


def render(term) -> str:
    op, k, v = term
    if op in ("=", "!="):
        return f"{k}{op}{v}"
    if op == "exists":
        return k
    if op == "!":
        return f"!{k}"
    return f"{k} {op} ({','.join(v)})"


def plain(term, labels) -> bool:
    op, k, v = term
    return {"=": lambda: labels.get(k) == v, "!=": lambda: labels.get(k) != v,
            "exists": lambda: k in labels, "!": lambda: k not in labels,
            "in": lambda: labels.get(k) in v, "notin": lambda: labels.get(k) not in v}[op]()


@SETTINGS
@given(st.lists(terms, min_size=1, max_size=4), st.dictionaries(keys, vals))
def test_selector_matches_its_terms(ts, labels) -> None:
    sel = parse_selector(", ".join(render(t) for t in ts))
    assert sel.matches(labels) == all(plain(t, labels) for t in ts)


@SETTINGS
@given(st.text(max_size=20))
def test_selector_parse_never_crashes(text) -> None:
    try:
        parse_selector(text)
    except UsageError:
        pass


def test_certificate_facts(certs) -> None:
    from kubectl_gwdup.certs import CertificateError, parse_pem
    import pytest

    leaf = certs.leaf("B.example.com", "a.example.com", "IP:127.0.0.1", tag="facts")
    cert = parse_pem(leaf.cert_pem)
    assert cert.sans == ("a.example.com", "b.example.com")  # DNS names only, lower-case, sorted
    assert cert.subject == "Common Name: B.example.com" and cert.not_after.endswith("Z")
    assert parse_pem(leaf.cert_pem) is cert  # each distinct PEM is parsed once
    assert "PRIVATE" not in repr(cert) and leaf.key_pem not in cert.der
    with pytest.raises(CertificateError):
        parse_pem(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                    max_leaves=20))
def test_yaml_output_has_no_anchors_and_reads_back(value) -> None:
    """The same object twice in a document (as plans share specs) is written out twice."""
    from kubectl_gwdup.yamldump import dump

    doc = {"a": value, "b": value, "c": [value, value]}
    text = dump(doc)
    assert yaml.safe_load(text) == doc
    assert not anchored(text)


def anchored(text: str) -> bool:
    """Whether a YAML text holds an anchor or an alias, by its parse events (not its look)."""
    return any(isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None) for e in yaml.parse(text))


_docs = st.recursive(st.one_of(_scalars, st.text(alphabet="ab \n:#-'\"", max_size=150)),
                     lambda kids: st.one_of(st.lists(kids, max_size=4),
                                            st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                     max_leaves=25)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(head=st.dictionaries(st.sampled_from(["apiVersion", "kind", "metadata", "x"]), _docs, max_size=3),
       items=st.lists(_docs, max_size=5))
def test_a_list_written_item_by_item_is_the_same_text(head, items) -> None:
    """-o yaml writes a List's items one at a time (memory): one document, the whole dump's
    text but for the document-end marker `...` that libyaml's emitter may add at the end."""
    import io

    from kubectl_gwdup.yamldump import dump, dump_to

    doc = dict(head, items=items)
    out = io.StringIO()
    dump_to(doc, out)
    end = lambda text: text[:-4] if text.endswith("\n...\n") else text
    assert end(out.getvalue()) == end(dump(doc))
    assert yaml.safe_load(out.getvalue()) == doc  # one document: no `...` inside it


def test_the_control_plane_is_read_from_istiods_deployment() -> None:
    """Image tag (with a registry port, a distroless suffix or a digest), else the revision
    label; several revisions: the oldest; the strict-merging switch from istiod's environment."""
    from kubectl_gwdup import controlplane

    def istiod(image, labels=None, env=(), name="istiod"):
        return {"metadata": {"name": name, "namespace": "istio-system", "labels": dict({"app": "istiod"}, **(labels or {}))},
                "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": image,
                                                                "env": [{"name": k, "value": v} for k, v in env]}]}}}}

    read = controlplane.from_deployments
    assert read([istiod("docker.io/istio/pilot:1.31.1")]).version == (1, 31)
    assert read([istiod("registry:5000/istio/pilot:1.30.2-distroless")]).version == (1, 30)
    assert read([istiod("registry:5000/istio/pilot@sha256:abc", {"istio.io/rev": "1-29-0"})]).version == (1, 29)
    both = read([istiod("pilot:1.31.0"), istiod("pilot:1.30.1", name="istiod-1-30")])
    assert both.version == (1, 30) and "istiod-1-30" in both.source and not both.strict_gateway_merging
    off = read([istiod("pilot:1.31.0", env=[("PILOT_ENABLE_STRICT_GATEWAY_MERGING", "false")])])
    assert not off.strict_gateway_merging and "PILOT_ENABLE_STRICT_GATEWAY_MERGING=false" in off.describe()
    assert read([istiod("pilot:1.31.0")]).strict_gateway_merging
    unknown = read([{"metadata": {"name": "web"}}])
    assert unknown.version is None and unknown.assumed == controlplane.NEWEST_MODELLED
    assert "assumed" in unknown.describe() and unknown.strict_gateway_merging
