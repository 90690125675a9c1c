#!/usr/bin/env python3
"""Generates crates/cutover-aws/src/shapes/*.rs from AWS's own service models, as botocore ships
them (botocore/data/<service>/<version>/service-2.json.gz): for each service, the request and
response types of the operations Cutover answers (and every shape they reach), the service's
JSON 1.1 target prefix, and the names of all of its operations (so an operation Cutover does not
answer is named in UnknownOperationException, and the docs can list it).

usage: python3 scripts/gen-aws-shapes.py [--check]
  --check  exit 1 if the committed files differ from what this botocore generates
Needs botocore (pip install botocore==VERSION below, or awscli). Shape and member names, which
members are required, enum values and documentation all come from the model: nothing is typed
from memory.
"""
import gzip
import json
import keyword
import pathlib
import re
import subprocess
import sys

import botocore

BOTOCORE = "1.43.11"  # the version the committed files were generated from
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "cutover-aws" / "src" / "shapes"
DATA = pathlib.Path(botocore.__file__).parent / "data"

# The operations Cutover answers (issue 10), per service model.
OPERATIONS = {
    "ecs": [
        "RegisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions",
        "DeregisterTaskDefinition", "CreateService", "UpdateService", "DeleteService",
        "DescribeServices", "ListServices", "ListTasks", "DescribeTasks", "ListClusters",
        "DescribeClusters",
    ],
    "codedeploy": [
        "GetApplication", "ListApplications", "GetDeploymentGroup", "ListDeploymentGroups",
        "CreateDeployment", "GetDeployment", "ListDeployments", "StopDeployment",
        "ContinueDeployment", "PutLifecycleEventHookExecutionStatus", "GetDeploymentConfig",
        "ListDeploymentConfigs", "CreateDeploymentConfig", "DeleteDeploymentConfig",
        # Hosts (issue 12): applications and groups for Server, on-premises
        # instances, deployment targets.
        "CreateApplication", "CreateDeploymentGroup", "RegisterOnPremisesInstance",
        "DeregisterOnPremisesInstance", "GetOnPremisesInstance", "ListOnPremisesInstances",
        "BatchGetOnPremisesInstances", "AddTagsToOnPremisesInstances",
        "RemoveTagsFromOnPremisesInstances", "ListDeploymentTargets",
        "BatchGetDeploymentTargets",
    ],
    "codepipeline": [
        "ListPipelines", "GetPipeline", "GetPipelineState", "StartPipelineExecution",
        "GetPipelineExecution", "ListPipelineExecutions", "StopPipelineExecution",
        "PutApprovalResult", "RetryStageExecution", "EnableStageTransition",
        "DisableStageTransition",
    ],
    "codebuild": [
        "StartBuild", "BatchGetBuilds", "ListBuildsForProject", "ListProjects",
        "BatchGetProjects", "StopBuild",
    ],
    "secretsmanager": [
        "CreateSecret", "GetSecretValue", "PutSecretValue", "ListSecrets", "DeleteSecret",
    ],
    "ssm": [
        "GetParameter", "GetParameters", "GetParametersByPath", "PutParameter", "DeleteParameter",
    ],
    # Issue 11: the shapes are generated; the server answers them once the registry is wired.
    "ecr": [
        "CreateRepository", "DescribeRepositories", "DeleteRepository", "PutImageTagMutability",
        "PutImageScanningConfiguration", "DescribeImages", "ListImages", "BatchGetImage",
        "BatchDeleteImage", "PutLifecyclePolicy", "GetLifecyclePolicy", "DeleteLifecyclePolicy",
        "StartLifecyclePolicyPreview", "GetLifecyclePolicyPreview", "StartImageScan",
        "DescribeImageScanFindings", "GetAuthorizationToken", "BatchCheckLayerAvailability",
    ],
}

PRIMITIVE = {
    "string": "String", "integer": "i32", "long": "i64", "boolean": "bool", "double": "f64",
    "float": "f64", "timestamp": "crate::shapes::Timestamp", "blob": "String",
}
DEFAULTABLE_PRIMITIVES = set(PRIMITIVE.values())


def model(service):
    versions = sorted((DATA / service).iterdir())
    path = versions[-1] / "service-2.json.gz"
    return json.load(gzip.open(path)), versions[-1].name


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    s = re.sub(r"[^a-z0-9_]", "_", s)
    if keyword.iskeyword(s) or s in ("type", "ref", "match", "override", "box", "crate", "self",
                                      "super", "mod", "use", "fn", "impl", "trait", "enum",
                                      "struct", "loop", "move", "mut", "pub", "where", "async",
                                      "await", "dyn", "final", "macro", "priv", "static",
                                      "unsafe", "virtual", "yield", "abstract", "become", "do",
                                      "gen", "typeof", "unsized"):
        s += "_"
    if s[0].isdigit():
        s = "n" + s
    return s


def variant(value, taken):
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", value) if p]
    name = "".join(p[:1].upper() + p[1:].lower() if p.isupper() or p.islower() else p[:1].upper() + p[1:]
                   for p in parts) or "Empty"
    if name[0].isdigit():
        name = "V" + name
    base, n = name, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def doc(text, fallback):
    text = re.sub(r"<[^>]+>", "", text or "")
    text = re.sub(r"\s+", " ", text).strip()
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0] if text else ""
    if not sentence:
        return fallback
    if len(sentence) > 240:
        sentence = sentence[:237].rsplit(" ", 1)[0] + "..."
    return sentence.replace("[", "\\[").replace("]", "\\]")


class Generator:
    def __init__(self, service):
        self.m, self.version = model(service)
        self.service = service
        self.shapes = self.m["shapes"]
        self.input_side = set()
        self.reached = []
        self.seen = set()

    def reach(self, name, input_side):
        if input_side:
            if name in self.input_side:
                return
            self.input_side.add(name)
        elif name in self.seen:
            return
        if name not in self.seen:
            self.seen.add(name)
            self.reached.append(name)
        shape = self.shapes[name]
        for child in self.children(shape):
            self.reach(child, input_side)

    @staticmethod
    def children(shape):
        t = shape["type"]
        if t == "structure":
            return [m["shape"] for m in shape.get("members", {}).values()]
        if t == "list":
            return [shape["member"]["shape"]]
        if t == "map":
            return [shape["key"]["shape"], shape["value"]["shape"]]
        return []

    def is_enum(self, name):
        s = self.shapes[name]
        return s["type"] == "string" and "enum" in s

    def rust_type(self, name):
        s = self.shapes[name]
        t = s["type"]
        if t == "structure" or self.is_enum(name):
            return name
        if t == "list":
            return f"Vec<{self.rust_type(s['member']['shape'])}>"
        if t == "map":
            return f"BTreeMap<String, {self.rust_type(s['value']['shape'])}>"
        return PRIMITIVE[t]

    def defaultable(self, name, stack=()):
        s = self.shapes[name]
        if s["type"] in ("list", "map") or (s["type"] in PRIMITIVE and not self.is_enum(name)):
            return True
        if self.is_enum(name) or name in stack:
            return False
        required = set(s.get("required", [])) if name in self.input_side else set()
        return all(self.defaultable(m["shape"], stack + (name,))
                   for k, m in s.get("members", {}).items() if k in required)

    def recursive(self, owner, target, stack=()):
        if target == owner:
            return True
        if target in stack:
            return False
        return any(self.recursive(owner, c, stack + (target,)) for c in self.children(self.shapes[target]))

    def generate(self):
        ops = self.m["operations"]
        wanted = OPERATIONS[self.service]
        for op in wanted:
            o = ops[op]
            if "input" in o:
                self.reach(o["input"]["shape"], True)
            if "output" in o:
                self.reach(o["output"]["shape"], False)
        md = self.m["metadata"]
        out = [
            f"//! {md.get('serviceFullName', self.service)} ({self.service} {self.version}): the request and response",
            f"//! types of the operations Cutover answers, generated by `scripts/gen-aws-shapes.py` from",
            f"//! botocore {BOTOCORE}'s service model. Do not edit: run the script.",
            "",
            "#![allow(clippy::large_enum_variant, clippy::doc_markdown)]",
            "",
            "use serde::{Deserialize, Serialize};",
            "#[allow(unused_imports)]",
            "use std::collections::BTreeMap;",
            "",
            "/// The `X-Amz-Target` prefix of this service's operations.",
            f"pub const TARGET_PREFIX: &str = {json.dumps(md.get('targetPrefix', ''))};",
            "/// The content type of requests and responses (`application/x-amz-json-VERSION`).",
            f"pub const JSON_VERSION: &str = {json.dumps(md.get('jsonVersion', '1.1'))};",
            "/// The signing name of the service (the credential scope's service).",
            f"pub const SIGNING_NAME: &str = {json.dumps(md.get('signingName', md.get('endpointPrefix', self.service)))};",
            "/// The prefix of the service's AWS endpoint host (`PREFIX.REGION.amazonaws.com`).",
            f"pub const ENDPOINT_PREFIX: &str = {json.dumps(md.get('endpointPrefix', self.service))};",
            "",
            "/// Every operation of the service in AWS's model, answered by Cutover or not.",
            "pub const ALL_OPERATIONS: &[&str] = &[",
        ]
        out += [f"    {json.dumps(op)}," for op in sorted(ops)]
        out += ["];", "", "/// The operations Cutover answers.",
                "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]", "pub enum Operation {"]
        for op in wanted:
            out.append(f"    /// {doc(ops[op].get('documentation'), op)}")
            out.append(f"    {op},")
        out += ["}", "", "impl Operation {", "    /// Every operation Cutover answers.",
                "    pub const ALL: &[Operation] = &["]
        out += [f"        Operation::{op}," for op in wanted]
        out += ["    ];", "", "    /// The operation's name, as in `X-Amz-Target` after the prefix.",
                "    pub fn name(self) -> &'static str {", "        match self {"]
        out += [f"            Operation::{op} => {json.dumps(op)}," for op in wanted]
        out += ["        }", "    }", "",
                "    /// The operation named `name`, if Cutover answers it.",
                "    pub fn from_name(name: &str) -> Option<Operation> {",
                "        Operation::ALL.iter().copied().find(|op| op.name() == name)",
                "    }", "}", ""]
        errors = sorted({e["shape"] for op in wanted for e in ops[op].get("errors", [])})
        out += ["/// The error codes (`__type`) the answered operations may return, per AWS's model.",
                "pub mod errors {"]
        for e in errors:
            const = snake(e).upper().rstrip("_")
            out.append(f"    /// {doc(self.shapes[e].get('documentation'), e)}")
            out.append(f"    pub const {const}: &str = {json.dumps(e)};")
        out += ["}", ""]
        for name in sorted(self.reached):
            s = self.shapes[name]
            if s["type"] == "structure":
                out += self.structure(name, s)
            elif self.is_enum(name):
                out += self.enum(name, s)
        return "\n".join(out) + "\n"

    def structure(self, name, s):
        members = s.get("members", {})
        required = set(s.get("required", [])) if name in self.input_side else set()
        derives = ["Debug", "Clone", "PartialEq", "Serialize", "Deserialize"]
        if self.defaultable(name):
            derives.insert(3, "Default")
        lines = [f"/// {doc(s.get('documentation'), f'`{name}` (AWS shape).')}",
                 f"#[derive({', '.join(derives)})]"]
        if not members:
            lines += [f"pub struct {name} {{}}", ""]
            return lines
        lines.append(f"pub struct {name} {{")
        for member, m in members.items():
            ty = self.rust_type(m["shape"])
            if self.recursive(name, m["shape"]):
                ty = f"Box<{ty}>"
            wire = m.get("jsonName", member)
            lines.append(f"    /// {doc(m.get('documentation'), f'`{member}`.')}")
            if member in required:
                lines.append(f"    #[serde(rename = {json.dumps(wire)})]")
                lines.append(f"    pub {snake(member)}: {ty},")
            else:
                lines.append(f"    #[serde(rename = {json.dumps(wire)}, default, skip_serializing_if = \"Option::is_none\")]")
                lines.append(f"    pub {snake(member)}: Option<{ty}>,")
        lines += ["}", ""]
        return lines

    def enum(self, name, s):
        taken = set()
        lines = [f"/// {doc(s.get('documentation'), f'`{name}` (AWS enum).')}",
                 "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]",
                 f"pub enum {name} {{"]
        for value in s["enum"]:
            lines.append(f"    /// `{value}`")
            lines.append(f"    #[serde(rename = {json.dumps(value)})]")
            lines.append(f"    {variant(value, taken)},")
        lines += ["}", "", f"impl {name} {{", "    /// The value as AWS spells it.",
                  "    pub fn as_str(self) -> &'static str {", "        match self {"]
        taken = set()
        for value in s["enum"]:
            lines.append(f"            {name}::{variant(value, taken)} => {json.dumps(value)},")
        lines += ["        }", "    }", "}", ""]
        return lines


def main():
    check = "--check" in sys.argv[1:]
    if botocore.__version__ != BOTOCORE:
        print(f"note: botocore {botocore.__version__}, the committed files came from {BOTOCORE}",
              file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for service in OPERATIONS:
        text = subprocess.run(["rustfmt", "--edition", "2024"], input=Generator(service).generate(),
                              capture_output=True, text=True, check=True).stdout
        path = OUT / f"{service}.rs"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        print("stale (run scripts/gen-aws-shapes.py): " + ", ".join(stale), file=sys.stderr)
        sys.exit(1)


main()
