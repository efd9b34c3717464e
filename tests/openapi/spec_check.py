"""The OpenAPI document itself: JSON pointers, the comparison of two documents, the Spec
wrapper the walk reads operations and schemas through, and the structural checks of
check_spec (part of walk_openapi.py; see there)."""

import json
import re
import urllib.parse
import warnings

import jsonschema
from jsonschema import Draft202012Validator

# jsonschema >= 4.18 deprecates RefResolver; Debian 12 ships 4.10, where it is the way to do it.
warnings.filterwarnings("ignore", category=DeprecationWarning)
from jsonschema import RefResolver  # noqa: E402

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def pointer_get(doc, pointer):
    """Resolves a local JSON pointer ("#/a/b"); raises KeyError when it does not resolve."""
    if not pointer.startswith("#"):
        raise KeyError(f"not a local reference: {pointer}")
    node = doc
    frag = pointer[1:]
    if frag == "":
        return node
    if not frag.startswith("/"):
        raise KeyError(f"not a JSON pointer: {pointer}")
    for raw in frag[1:].split("/"):
        part = urllib.parse.unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise KeyError(pointer)
    return node


def first_difference(a, b, where=""):
    """The JSON pointer of the first place where two JSON values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            here = where + "/" + k.replace("~", "~0").replace("/", "~1")
            if k not in a or k not in b:
                return here
            d = first_difference(a[k], b[k], here)
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{where}/{i}")
            if d is not None:
                return d
        return None if len(a) == len(b) else f"{where}/{min(len(a), len(b))}"
    if type(a) is not type(b) or a != b:  # 1 and 1.0, True and 1 differ in a document
        return where or "/"
    return None


class Spec:
    def __init__(self, doc, path=""):
        self.doc = doc
        self.path = path
        self.resolver = RefResolver.from_schema(doc)
        self._validators = {}

    def deref(self, obj):
        """Follows $ref chains of OpenAPI objects (responses, parameters, headers)."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            obj = pointer_get(self.doc, obj["$ref"])
            seen += 1
            if seen > 20:
                raise ValueError("reference loop")
        return obj

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            v = Draft202012Validator(schema, resolver=self.resolver)
            self._validators[key] = v
        return v

    def errors(self, schema, instance):
        v = self.validator(schema)
        return sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))

    def operations(self):
        """[(METHOD, template, operation)] in document order."""
        out = []
        for template, item in self.doc.get("paths", {}).items():
            for method in HTTP_METHODS:
                if method in item:
                    out.append((method.upper(), template, item[method]))
        return out

    def operation(self, method, template):
        return self.doc["paths"][template][method.lower()]

    def path_methods(self, template):
        return {m.upper() for m in HTTP_METHODS if m in self.doc["paths"][template]}

    def required_role(self, op):
        """None for an operation without authentication, else the least role it needs."""
        sec = op.get("security", self.doc.get("security", []))
        if not sec:
            return None
        for req in sec:
            if not req:
                return None  # {} means "no authentication" is one of the alternatives
            roles = req.get("bearerAuth")
            if roles is not None:
                return roles[0] if roles else "viewer"
        return "viewer"

    def request_schema(self, op):
        body = self.deref(op.get("requestBody", {}))
        media = body.get("content", {}).get("application/json")
        return media.get("schema") if media else None


def check_spec(doc):
    """Structural checks of an OpenAPI 3.1 document; returns a list of problems."""
    problems = []
    if doc.get("openapi") != "3.1.0":
        problems.append(f"openapi must be \"3.1.0\", not {doc.get('openapi')!r}")
    info = doc.get("info")
    if not isinstance(info, dict) or not info.get("title") or not info.get("version"):
        problems.append("info needs a title and a version")
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        problems.append("paths must be a non-empty object")
        paths = {}
    components = doc.get("components", {})
    schemes = components.get("securitySchemes", {})

    # Every $ref resolves.
    def walk_refs(node, where):
        if isinstance(node, dict):
            if "$ref" in node and isinstance(node["$ref"], str):
                try:
                    pointer_get(doc, node["$ref"])
                except (KeyError, IndexError, ValueError) as e:
                    problems.append(f"{where}: $ref {node['$ref']} does not resolve ({e})")
            for k, v in node.items():
                walk_refs(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk_refs(v, f"{where}/{i}")

    walk_refs(doc, "#")
    if problems:
        return problems  # the checks below follow references

    spec = Spec(doc)

    # Every schema compiles.
    schema_sites = []
    for name, schema in components.get("schemas", {}).items():
        schema_sites.append((f"#/components/schemas/{name}", schema))

    def collect_schemas(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "schema" and isinstance(v, (dict, bool)):
                    schema_sites.append((f"{where}/schema", v))
                elif k == "x-event-schemas" and isinstance(v, dict):
                    for ek, ev in v.items():
                        schema_sites.append((f"{where}/x-event-schemas/{ek}", ev))
                elif k != "schemas":
                    collect_schemas(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                collect_schemas(v, f"{where}/{i}")

    collect_schemas(paths, "#/paths")
    for section in ("responses", "parameters", "headers", "requestBodies"):
        collect_schemas(components.get(section, {}), f"#/components/{section}")
    for where, schema in schema_sites:
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            problems.append(f"{where}: invalid schema: {e.message}")
            continue
        try:  # every reference inside it can be followed by the validator
            spec.validator(schema).is_valid(None)
        except jsonschema.exceptions.RefResolutionError as e:
            problems.append(f"{where}: {e}")

    # Security requirements name defined schemes.
    def check_security(sec, where):
        if not isinstance(sec, list):
            problems.append(f"{where}: security must be an array")
            return
        for req in sec:
            for name, roles in req.items():
                if name not in schemes:
                    problems.append(f"{where}: security scheme {name} is not defined")
                if not isinstance(roles, list):
                    problems.append(f"{where}: roles of {name} must be an array")

    check_security(doc.get("security", []), "#/security")

    # Operations.
    op_ids = {}
    for template, item in paths.items():
        if not template.startswith("/"):
            problems.append(f"path {template} must start with /")
        names_in_template = set(re.findall(r"\{([^}]+)\}", template))
        path_level = [spec.deref(p) for p in item.get("parameters", [])]
        ops = [(m, item[m]) for m in HTTP_METHODS if m in item]
        if not ops:
            problems.append(f"{template}: no operation")
        for method, op in ops:
            where = f"{method.upper()} {template}"
            oid = op.get("operationId")
            if oid:
                if oid in op_ids:
                    problems.append(f"{where}: operationId {oid} also used by {op_ids[oid]}")
                op_ids[oid] = where
            if "security" in op:
                check_security(op["security"], where)
            params = {(p.get("in"), p.get("name")): p for p in path_level}
            for p in op.get("parameters", []):
                p = spec.deref(p)
                params[(p.get("in"), p.get("name"))] = p
            for (loc, name), p in params.items():
                if loc not in ("query", "header", "path", "cookie") or not name:
                    problems.append(f"{where}: parameter needs a name and in "
                                    f"(got {name!r}, {loc!r})")
                if ("schema" in p) == ("content" in p):
                    problems.append(f"{where}: parameter {name} needs exactly one of "
                                    "schema, content")
                if loc == "path":
                    if p.get("required") is not True:
                        problems.append(f"{where}: path parameter {name} must be required")
                    if name not in names_in_template:
                        problems.append(f"{where}: path parameter {name} is not in the template")
            for name in names_in_template:
                if ("path", name) not in params:
                    problems.append(f"{where}: template parameter {{{name}}} is not described")
            if "requestBody" in op:
                rb = spec.deref(op["requestBody"])
                if not rb.get("content"):
                    problems.append(f"{where}: requestBody needs content")
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                problems.append(f"{where}: no responses")
                continue
            for code, r in responses.items():
                if not re.fullmatch(r"[1-5]([0-9][0-9]|XX)|default", code):
                    problems.append(f"{where}: bad response key {code}")
                r = spec.deref(r)
                if not isinstance(r.get("description"), str):
                    problems.append(f"{where} {code}: response needs a description")
                for media, mt in r.get("content", {}).items():
                    if "schema" not in mt:
                        problems.append(f"{where} {code} {media}: media type needs a schema")
                for hname, h in r.get("headers", {}).items():
                    h = spec.deref(h)
                    if "schema" not in h and "content" not in h:
                        problems.append(f"{where} {code}: header {hname} needs a schema")
    return problems
