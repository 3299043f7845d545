"""An OpenAPI 3.1 document as a fake's referee: a request is checked against its operation's schemas (answered
in FastAPI's 422 shape, as a FastAPI service answers), and every answer the fake gives is checked against the
response the document declares for its status code, so a fake cannot drift from the published shapes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import referencing
import referencing.jsonschema

DOCUMENT_URI = "urn:openapi-document"


@dataclass(frozen=True)
class Operation:
    method: str
    pattern: re.Pattern  # the path template, `{name}` matching one segment
    template: str
    spec: dict


class Contract:
    def __init__(self, path: Path):
        self.document = json.loads(Path(path).read_text())
        resource = referencing.Resource.from_contents(
            self.document, default_specification=referencing.jsonschema.DRAFT202012
        )
        self.registry = referencing.Registry().with_resource(DOCUMENT_URI, resource)
        self.operations = [
            Operation(
                method.upper(), re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))), template, spec
            )
            for template, item in self.document["paths"].items()
            for method, spec in item.items()
        ]

    def operation(self, method: str, path: str) -> Operation:
        for operation in self.operations:
            if operation.method == method.upper() and operation.pattern.fullmatch(path):
                return operation
        raise KeyError(f"{method} {path} is not in the document")

    def _validator(self, schema: dict) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(schema, registry=self.registry)

    def _resolve(self, schema: dict) -> dict:
        return (
            self.registry.resolver(DOCUMENT_URI).lookup(DOCUMENT_URI + schema["$ref"]).contents
            if "$ref" in schema
            else schema
        )

    def request_problems(self, method: str, path: str, body) -> list[dict]:
        """FastAPI-style validation errors (`{"type", "loc", "msg", "input"}`), empty when the body conforms.
        FastAPI ignores body fields its model lacks; a field the document does not list is a bug on our side
        (silently dropped by the service), so it is refused too."""
        request_body = self.operation(method, path).spec.get("requestBody")
        problems = []
        if request_body:
            schema = request_body["content"]["application/json"]["schema"]
            if body is None and request_body.get("required"):
                return [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
            reference = {"$ref": DOCUMENT_URI + schema["$ref"]} if "$ref" in schema else schema
            for error in sorted(self._validator(reference).iter_errors(body), key=lambda e: list(e.path)):
                if error.validator == "required":  # FastAPI names each missing field; jsonschema repeats the list
                    problems += [
                        {
                            "type": "missing",
                            "loc": ["body", *error.path, name],
                            "msg": "Field required",
                            "input": error.instance,
                        }
                        for name in error.validator_value
                        if name not in error.instance
                        and ["body", *error.path, name] not in [p["loc"] for p in problems]
                    ]
                else:
                    problems.append(_problem(("body", *error.path), error, error.instance))
            if isinstance(body, dict):
                known = self._resolve(schema).get("properties", {})
                problems += [
                    {
                        "type": "extra_forbidden",
                        "loc": ["body", name],
                        "msg": "Extra inputs are not permitted",
                        "input": body[name],
                    }
                    for name in body
                    if name not in known
                ]
        return problems

    def response_problems(self, method: str, path: str, status: int, body) -> list[str]:
        """Why an answer breaks the document: an undeclared status code, or a body unlike its declared schema."""
        operation = self.operation(method, path)
        declared = operation.spec["responses"].get(str(status))
        if declared is None:
            return [f"{method} {operation.template} declares no {status} answer"]
        content = declared.get("content", {}).get("application/json")
        if content is None:
            return []
        reference = {"$ref": DOCUMENT_URI + content["schema"]["$ref"]}
        return [
            f"{status} {'/'.join(map(str, error.path)) or 'body'}: {error.message}"
            for error in self._validator(reference).iter_errors(body)
        ]


def _problem(loc: tuple, error: jsonschema.ValidationError, value) -> dict:
    return {
        "type": error.validator,
        "loc": [str(part) if not isinstance(part, int) else part for part in loc],
        "msg": error.message,
        "input": value,
    }
