"""The platform's one request reader: service, action, protocol, operation and parameters.

Requests are rendered by botocore's own serializer (tests/unit/botocore_wire.py), so each
protocol is read the way boto3 writes it.
"""

from __future__ import annotations

import io

from tests.platform.requests import ENVIRON_KEY, describe, operation, parameters, read
from tests.unit.botocore_wire import environ_for


def test_json_requests_are_named_by_target_and_keep_their_body_for_moto() -> None:
    env = environ_for("ecs", "DescribeServices", {"cluster": "c", "services": ["s"]})
    request = read(env)
    assert (request.service, request.action, request.protocol) == (
        "ecs", "DescribeServices", "json")
    assert request.json() == {"cluster": "c", "services": ["s"]}
    assert request.params == {"cluster": "c"}
    assert env["wsgi.input"].read() == request.body  # moto reads the body again
    assert read(env) is request and env[ENVIRON_KEY] is request  # described once


def test_query_and_ec2_parameters_are_decoded_into_their_shapes() -> None:
    tags = [{"Key": "k", "Value": "v"}, {"Key": "k2", "Value": "v2"}]
    request = read(environ_for("iam", "CreateRole", {
        "RoleName": "r", "AssumeRolePolicyDocument": "{}", "Tags": tags}))
    assert (request.action, request.protocol) == ("CreateRole", "query")
    decoded = parameters(request)
    assert decoded is not None and decoded[0].name == "CreateRole"
    assert decoded[1] == {"RoleName": "r", "AssumeRolePolicyDocument": "{}", "Tags": tags}
    ec2 = read(environ_for("ec2", "DescribeSecurityGroups", {
        "GroupIds": ["sg-1", "sg-2"], "MaxResults": 10,
        "Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]}))
    assert ec2.protocol == "ec2"
    decoded = parameters(ec2)
    assert decoded is not None
    assert decoded[1] == {"GroupIds": ["sg-1", "sg-2"], "MaxResults": 10,
                          "Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]}


def test_elbv2_is_told_from_classic_elb_by_its_version() -> None:
    request = read(environ_for("elasticloadbalancing", "DescribeTargetGroups",
                               {"Names": ["a"]}, version="2015-12-01"))
    found = operation(request)
    assert found is not None and found[0].service_model.service_name == "elbv2"


def test_rest_json_operations_are_found_by_their_uri_templates() -> None:
    listing = read(environ_for("elasticfilesystem", "DescribeAccessPoints",
                               {"FileSystemId": "fs-1", "MaxResults": 5}))
    assert listing.protocol == "rest-json"
    assert listing.action == "GET /2015-02-01/access-points?FileSystemId&MaxResults"
    decoded = parameters(listing)
    assert decoded is not None and decoded[0].name == "DescribeAccessPoints"
    assert decoded[1] == {"FileSystemId": "fs-1", "MaxResults": 5}
    delete = parameters(read(environ_for("elasticfilesystem", "DeleteAccessPoint",
                                         {"AccessPointId": "fsap-1"})))
    assert delete is not None and delete[0].name == "DeleteAccessPoint"
    assert delete[1] == {"AccessPointId": "fsap-1"}
    create = parameters(read(environ_for("elasticfilesystem", "CreateAccessPoint", {
        "ClientToken": "t", "FileSystemId": "fs-1", "RootDirectory": {"Path": "/a"}})))
    assert create is not None and create[0].name == "CreateAccessPoint"
    assert create[1]["RootDirectory"] == {"Path": "/a"}


def test_rest_xml_reads_labels_query_keys_headers_and_the_xml_body() -> None:
    env = environ_for("s3", "PutObjectTagging", {
        "Bucket": "b", "Key": "a/b c", "Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}})
    assert read(env).body == b""  # S3 bodies stay streams for moto
    request = describe(env, env["wsgi.input"].read())
    assert (request.protocol, request.action) == ("rest-xml", "PUT /b/a/b c?tagging")
    decoded = parameters(request)
    assert decoded is not None and decoded[0].name == "PutObjectTagging"
    assert decoded[1] == {"Bucket": "b", "Key": "a/b c",
                          "Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}
    # The same path and method: the required copy-source header tells CopyObject apart.
    for name, params in (("PutObject", {"StorageClass": "GLACIER"}),
                         ("CopyObject", {"CopySource": "x/y"})):
        env = environ_for("s3", name, {"Bucket": "b", "Key": "k", **params})
        decoded = parameters(describe(env, b""))
        assert decoded is not None and decoded[0].name == name
        assert decoded[1] == {"Bucket": "b", "Key": "k", **params}


def test_unknown_services_and_paths_are_described_but_not_resolved() -> None:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "wsgi.input": io.BytesIO(b"")}
    request = read(env)
    assert (request.service, request.action, request.protocol) == ("unknown", "GET /x", "")
    assert operation(request) is None and parameters(request) is None
