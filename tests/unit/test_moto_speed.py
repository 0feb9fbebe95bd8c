"""moto_speed: the same answers from moto, without redoing the costly parts."""

from __future__ import annotations

import boto3
import moto.backends
import moto.cognitoidp.models
from moto import mock_aws

from tests.platform import moto_speed


def test_user_pools_share_one_parsed_key_and_still_sign_tokens() -> None:
    uninstall = moto_speed.install()
    try:
        with mock_aws():
            idp = boto3.client("cognito-idp", region_name="eu-west-1")
            ids = [idp.create_user_pool(PoolName=f"p{i}")["UserPool"]["Id"] for i in range(2)]
            pools = moto.cognitoidp.models.cognitoidp_backends["123456789012"]["eu-west-1"]
            first, second = (pools.user_pools[i] for i in ids)
            assert first.json_web_key is second.json_web_key
            client = idp.create_user_pool_client(
                UserPoolId=ids[0], ClientName="c", ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"],
            )["UserPoolClient"]["ClientId"]
            idp.admin_create_user(UserPoolId=ids[0], Username="u", TemporaryPassword="Tmp-pass1!")
            idp.admin_set_user_password(UserPoolId=ids[0], Username="u",
                                        Password="Real-pass1!", Permanent=True)
            answer = idp.admin_initiate_auth(
                UserPoolId=ids[0], ClientId=client, AuthFlow="ADMIN_NO_SRP_AUTH",
                AuthParameters={"USERNAME": "u", "PASSWORD": "Real-pass1!"})
            assert answer["AuthenticationResult"]["IdToken"].count(".") == 2
    finally:
        uninstall()
    assert vars(moto.cognitoidp.models)["jwk"].RSAKey.import_key.__module__.startswith("joserfc")


def test_the_module_listing_is_read_once_and_unchanged() -> None:
    before = list(moto.backends.list_of_moto_modules())
    uninstall = moto_speed.install()
    try:
        assert list(moto.backends.list_of_moto_modules()) == before
        assert "ecs" in before
    finally:
        uninstall()
    assert moto.backends.list_of_moto_modules.__module__ == "moto.backends"
