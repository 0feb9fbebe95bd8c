"""The shared MySQL access without a server: error mapping, logins that hide passwords."""

from __future__ import annotations

import socket

import pymysql
import pytest

from wpenv import mysql
from wpenv.errors import TransientError
from wpenv.settings import Settings

SECRET_WORD = "not-a-real-password"


def _free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("code", sorted(mysql.UNREACHABLE_CODES))
def test_an_unreachable_server_becomes_transient(code: int) -> None:
    with pytest.raises(TransientError) as caught, mysql.reachable():
        raise pymysql.err.OperationalError(code, f"gone, login {SECRET_WORD}")
    assert caught.value.reason == "DatabaseUnreachable"
    assert str(caught.value) == mysql.UNREACHABLE
    assert SECRET_WORD not in str(caught.value)


def test_a_refused_login_is_not_called_unreachable() -> None:
    with pytest.raises(pymysql.err.OperationalError) as caught, mysql.reachable():
        raise pymysql.err.OperationalError(1045, "Access denied")
    assert mysql.error_code(caught.value) == 1045


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(pymysql.err.ProgrammingError), mysql.reachable():
        raise pymysql.err.ProgrammingError(2003, "not an OperationalError")
    with pytest.raises(ValueError, match="unrelated"), mysql.reachable():
        raise ValueError("unrelated")


def test_a_real_refused_connection_is_unreachable() -> None:
    """pymysql's own error for a closed port (2003) maps, and names no password."""
    with pytest.raises(TransientError) as caught, mysql.reachable():
        mysql.connect("127.0.0.1", _free_port(), "admin", SECRET_WORD, connect_timeout=2)
    assert caught.value.reason == "DatabaseUnreachable"
    assert SECRET_WORD not in str(caught.value)


def test_error_codes() -> None:
    assert mysql.error_code(pymysql.err.OperationalError(2013, "lost")) == 2013
    assert mysql.error_code(pymysql.err.InterfaceError("no number")) is None
    assert mysql.error_code(ValueError()) is None
    assert mysql.is_unreachable(pymysql.err.OperationalError(1040, "too many"))
    assert not mysql.is_unreachable(pymysql.err.OperationalError(1045, "denied"))


def test_a_login_never_shows_its_password() -> None:
    server = mysql.DatabaseServer("db.example", 3306, "admin", SECRET_WORD)
    assert SECRET_WORD not in repr(server)
    assert SECRET_WORD not in str(server)


def test_no_master_secret_is_transient_and_needs_no_aws() -> None:
    settings = Settings(db_master_secret_arn="")
    with pytest.raises(mysql.MasterSecretUnsetError) as caught:
        mysql.master_server(settings, clients=None)
    assert isinstance(caught.value, TransientError)
    assert caught.value.reason == "MasterSecretMissing"
    assert str(caught.value) == mysql.MASTER_UNSET
    with pytest.raises(mysql.MasterSecretUnsetError):
        mysql.master_connection(settings, clients=None)
