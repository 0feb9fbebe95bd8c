"""The secret witness: which values it keeps from requests and answers, and what it serves."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from werkzeug.test import Client

from tests.platform.witness import (
    WITNESS_PATH,
    Witness,
    carried,
    disguises,
    secrets_in,
    witnessed,
)

JSON = "application/x-amz-json-1.1"
DB_VALUE = json.dumps({"engine": "mysql", "host": "db", "port": 3306, "username": "wp_acme",
                       "dbname": "wp_acme", "password": "p" * 43})


def test_a_json_secret_yields_its_secret_keys_only() -> None:
    assert secrets_in(DB_VALUE) == [("p" * 43, "password")]
    assert secrets_in(json.dumps({"client_secret": "s" * 50})) == [("s" * 50, "client_secret")]
    assert secrets_in("a plain secret string") == [("a plain secret string", "")]
    assert secrets_in("[1, 2]") == [("[1, 2]", "")]


def test_what_each_call_carries() -> None:
    created = carried("secretsmanager.CreateSecret",
                      {"Name": "wpenv/acme/database", "SecretString": DB_VALUE})
    assert created == [("p" * 43, "CreateSecret wpenv/acme/database password")]
    password = carried("secretsmanager.GetRandomPassword", {"RandomPassword": "r" * 32})
    assert password == [("r" * 32, "GetRandomPassword")]
    client = carried("AWSCognitoIdentityProviderService.DescribeUserPoolClient",
                     {"UserPoolClient": {"ClientId": "abc", "ClientSecret": "c" * 51}})
    assert client == [("c" * 51, "DescribeUserPoolClient abc")]
    assert carried("AWSCognitoIdentityProviderService.DescribeUserPoolClient",
                   {"UserPoolClient": {"ClientId": "abc"}}) == []


def test_the_server_half_keeps_request_and_answer_values_and_serves_them() -> None:
    answers = {"secretsmanager.PutSecretValue": b"{}",
               "AWSCognitoIdentityProviderService.CreateUserPoolClient":
               json.dumps({"UserPoolClient": {"ClientId": "id1",
                                              "ClientSecret": "k" * 51}}).encode()}
    read: list[bytes] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        read.append(environ["wsgi.input"].read())  # the body is still there for moto
        start_response("200 OK", [])
        return [answers[environ["HTTP_X_AMZ_TARGET"]]]

    client = Client(witnessed(app, Witness()))
    put = json.dumps({"SecretId": "arn:x", "SecretString": DB_VALUE}).encode()
    answer = client.post("/", data=put, headers={
        "X-Amz-Target": "secretsmanager.PutSecretValue", "Content-Type": JSON})
    assert answer.data == b"{}" and read == [put]
    answer = client.post("/", data=b"{}", headers={
        "X-Amz-Target": "AWSCognitoIdentityProviderService.CreateUserPoolClient",
        "Content-Type": JSON})
    assert b"k" * 51 in answer.data
    assert client.get(WITNESS_PATH).json == {"secrets": [
        {"value": "p" * 43, "sources": ["PutSecretValue arn:x password"]},
        {"value": "k" * 51, "sources": ["CreateUserPoolClient id1"]},
    ]}


def test_a_value_keeps_every_source_once() -> None:
    witness = Witness()
    witness.saw([("v" * 40, "CreateUserPoolClient c1"), ("v" * 40, "CreateSecret s")])
    witness.saw([("v" * 40, "CreateSecret s")])
    assert witness.secrets() == [
        {"value": "v" * 40, "sources": ["CreateUserPoolClient c1", "CreateSecret s"]}]


@pytest.mark.parametrize("before", ["", "a", "ab", "abc", '{"password": "'])
def test_a_secret_inside_any_base64_text_is_found(before: str) -> None:
    secret = "Zx9_-secretvalue-0123456789abcdefghijklmno"
    forms = disguises(secret)
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(f"{before}{secret}\"}}".encode()).decode()
        assert any(form in text for form in forms.values()), (before, encode)
    assert not any(form in base64.b64encode(b"something else entirely").decode()
                   for form in forms.values())


def test_encoded_forms() -> None:
    forms = disguises("a/b+c d&e")
    assert forms["percent-encoded"] == "a%2Fb%2Bc%20d%26e"
    assert forms["form-encoded"] == "a%2Fb%2Bc+d%26e"
    assert disguises('q"\\')["JSON-escaped"] == 'q\\"\\\\'
