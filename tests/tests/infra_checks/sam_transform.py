"""Prints a SAM template as CloudFormation deploys it: the AWS::Serverless-2016-10-31
transform applied by the SAM translator that `sam validate` and `sam deploy` use (the tools'
venv), as JSON on stdout. Offline: no AWS call, no managed policy looked up by name.

Usage: python sam_transform.py TEMPLATE [NAME=VALUE ...]   (parameter values)
"""

import json
import sys

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse


def package(template: dict) -> None:
    """Points local code at S3, as `sam package` (or `sam deploy`) does before the transform."""
    functions = [template.get("Globals", {}).get("Function", {})] + [
        resource.get("Properties", {})
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    for properties in functions:
        if isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = "s3://packaged/code.zip"


def main() -> None:
    path, *assignments = sys.argv[1:]
    with open(path, encoding="utf-8") as source:
        template = yaml_parse(source.read())
    parameters = dict(assignment.split("=", 1) for assignment in assignments)
    package(template)
    # A region for the pseudo parameters SAM resolves itself (AWS::Region, AWS::Partition).
    session = boto3.session.Session(region_name="us-east-1")
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session)
    transformed = translator.translate(template, parameter_values=parameters)
    json.dump(transformed, sys.stdout, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main()
