"""The OpenAPI document is complete enough to be read without the code: described, with examples."""

from __future__ import annotations


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, op


def test_every_parameter_is_described_with_an_example(world):
    spec = world.client.get("/openapi.json").json()
    missing = []
    for path, method, op in _operations(spec):
        for param in op.get("parameters", []):
            if param["in"] == "header":
                continue
            schema = param.get("schema", {})
            has_example = "example" in param or "examples" in param or "examples" in schema
            has_example = has_example or "enum" in schema or schema.get("type") == "boolean"
            if not param.get("description") or not has_example:
                missing.append(f"{method.upper()} {path} {param['in']}:{param['name']}")
    assert not missing, "parameters without a description or example:\n" + "\n".join(missing)


def test_every_operation_has_a_summary_and_problem_responses(world):
    spec = world.client.get("/openapi.json").json()
    for path, method, op in _operations(spec):
        assert op.get("summary"), f"{method.upper()} {path} has no summary"
        if path.startswith("/api/v1"):
            statuses = set(op["responses"])
            assert statuses & {"400", "401", "403", "404", "422", "429"}, f"{method.upper()} {path}"
