"""The database archive's pure parts: option files, messages, checks, DEFINER rewriting."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from wpenv import mysql
from wpenv.archive import database as db
from wpenv.archive.database import DefinerRewriter, TableCheck
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.mysql import DatabaseServer
from wpenv.plan import sql_identifier

SERVER = DatabaseServer("db.example", 3306, "admin", 'p"a\\ss#w\nrd')

# What mariadb-dump 10.11 writes for a table with a trigger, an event, a procedure and a
# view (abridged), plus a row whose text looks like a definer clause.
DUMP = b"""/*M!999999\\- enable the sandbox mode */
DROP TABLE IF EXISTS `t`;
CREATE TABLE `t` (
  `id` int(11) NOT NULL,
  `s` text DEFAULT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO `t` VALUES
(1,'CREATE DEFINER=`evil`@`%` PROCEDURE'),
(2,'/*!50013 DEFINER=`x`@`%` SQL SECURITY DEFINER */');
DELIMITER ;;
<trigger>
*/;;
DELIMITER ;
DELIMITER ;;
<event>
*/ ;;
DELIMITER ;
DELIMITER ;;
CREATE DEFINER=`wp_acme`@`%` PROCEDURE `p`()
SELECT 1
;;
DELIMITER ;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`we``ird`@`10.0.0.%` SQL SECURITY DEFINER */
/*!50001 VIEW `v` AS select `t`.`id` AS `id` from `t` */;
""".replace(
    b"<trigger>",
    b"/*!50003 CREATE*/ /*!50017 DEFINER=`wp_acme`@`%`*/ /*!50003 TRIGGER trg"
    b" BEFORE INSERT ON t FOR EACH ROW SET NEW.s=NEW.s",
).replace(
    b"<event>",
    b"/*!50106 CREATE*/ /*!50117 DEFINER=`wp_acme`@`%`*/ /*!50106 EVENT `e`"
    b" ON SCHEDULE EVERY 1 DAY STARTS '2026-11-27 14:40:54' ON COMPLETION NOT PRESERVE"
    b" ENABLE DO SELECT 1",
)


def _rewrite(data: bytes, splits: list[int], disable_events: bool = False) -> bytes:
    rewriter = DefinerRewriter(disable_events=disable_events)
    chunks, last = [], 0
    for cut in [*sorted(splits), len(data)]:
        chunks.append(data[last:cut])
        last = cut
    return b"".join(rewriter.filter(chunks))


def test_definers_become_current_user_and_rows_are_left_alone() -> None:
    out = _rewrite(DUMP, [])
    assert out.count(b"DEFINER=CURRENT_USER") == 4
    assert b"wp_acme" not in out and b"we``ird" not in out
    assert b"(1,'CREATE DEFINER=`evil`@`%` PROCEDURE')," in out
    assert b"(2,'/*!50013 DEFINER=`x`@`%` SQL SECURITY DEFINER */');" in out
    assert b"ON COMPLETION NOT PRESERVE ENABLE DO" in out  # events keep their status
    assert out.replace(b"DEFINER=CURRENT_USER", b"") == _strip_definers(DUMP)


def _strip_definers(data: bytes) -> bytes:
    for account in (b"`wp_acme`@`%`", b"`we``ird`@`10.0.0.%`"):
        data = data.replace(b"DEFINER=" + account, b"")
    return data


def test_any_chunking_gives_the_same_result() -> None:
    whole = _rewrite(DUMP, [], disable_events=True)
    for cut in range(len(DUMP) + 1):  # every single split point
        assert _rewrite(DUMP, [cut], disable_events=True) == whole
    rng = random.Random(1)
    for _ in range(200):
        cuts = rng.sample(range(len(DUMP)), rng.randint(2, 40))
        assert _rewrite(DUMP, cuts, disable_events=True) == whole
    byte_by_byte = DefinerRewriter(disable_events=True)
    assert b"".join(byte_by_byte.filter(DUMP[i : i + 1] for i in range(len(DUMP)))) == whole


def test_events_are_disabled_for_a_scratch_copy() -> None:
    out = _rewrite(DUMP, [], disable_events=True)
    assert b"ON COMPLETION NOT PRESERVE DISABLE DO SELECT 1" in out
    assert b"ENABLE" not in out.replace(b"ENABLE KEYS", b"")
    odd = b"/*!50106 CREATE*/ /*!50117 DEFINER=`a`@`%`*/ /*!50106 EVENT `e` DO SELECT 1\n"
    with pytest.raises(ArchiveVerificationError, match="event"):
        _rewrite(odd, [], disable_events=True)


def test_long_row_lines_stream_through_without_being_held() -> None:
    rewriter = DefinerRewriter()
    row = b"(" + b"A" * 1000
    assert rewriter.feed(b"INSERT INTO `t` VALUES\n" + row) == b"INSERT INTO `t` VALUES\n" + row
    for _ in range(5000):  # 5 MB of one line, every chunk passed on at once
        assert rewriter.feed(b"B" * 1000) == b"B" * 1000
    assert rewriter.feed(b"');\nCREATE DEFINER=`u`@`h` PROCEDURE p()\n") == (
        b"');\nCREATE DEFINER=CURRENT_USER PROCEDURE p()\n"
    )
    assert rewriter.finish() == b""


def test_a_definer_line_without_end_is_bounded() -> None:
    rewriter = DefinerRewriter()
    rewriter.feed(b"CREATE DEFINER=`u`@`h` PROCEDURE p() ")

    def feed_two_mib() -> None:
        for _ in range(2048):
            rewriter.feed(b"x" * 1024)

    with pytest.raises(ArchiveError, match="longer than"):
        feed_two_mib()


def test_option_values_escape_everything_the_client_parses() -> None:
    assert db.option_value("plain") == '"plain"'
    assert db.option_value('a"b\\c#d\ne\tf\rg') == '"a\\"b\\\\c#d\\ne\\tf\\rg"'
    text = db.option_file_text(SERVER)
    assert text.startswith("[client]\n") and "protocol=TCP\n" in text
    assert 'password="p\\"a\\\\ss#w\\nrd"\n' in text
    [line] = [line for line in text.splitlines() if line.startswith("password=")]  # one line
    assert line == 'password="p\\"a\\\\ss#w\\nrd"'


def test_option_files_make_either_client_verify_the_server_over_tls_1_2_or_newer() -> None:
    server = DatabaseServer("db.example", 3306, "admin", "pw", "/etc/rds/bundle #1.pem")
    mariadb = db.option_file_text(server, mariadb=True).splitlines()
    assert {'ssl-ca="/etc/rds/bundle #1.pem"', "ssl", "ssl-verify-server-cert",
            'tls-version="TLSv1.2,TLSv1.3"'} <= set(mariadb)
    assert not [line for line in mariadb if line.startswith("ssl-mode")]
    mysql8 = db.option_file_text(server, mariadb=False).splitlines()
    assert {'ssl-ca="/etc/rds/bundle #1.pem"', 'ssl-mode="VERIFY_IDENTITY"',
            'tls-version="TLSv1.2,TLSv1.3"'} <= set(mysql8)
    assert "ssl-verify-server-cert" not in mysql8  # MySQL 8's client refuses it


def test_without_a_bundle_the_clients_trust_the_system_store() -> None:
    text = db.option_file_text(DatabaseServer("db.example", 3306, "admin", "pw"))
    system = mysql.system_ca_file()
    assert (f"ssl-ca={db.option_value(system)}" in text.splitlines()) == bool(system)
    assert "ssl-verify-server-cert" in text.splitlines()


def test_options_reach_the_client_through_a_pipe_never_a_file() -> None:
    with db.option_pipe(SERVER) as fd:
        assert stat.S_ISFIFO(os.fstat(fd).st_mode)
        assert not os.get_inheritable(fd), "only the client it is passed to inherits it"
        text = os.read(fd, db.OPTION_TEXT_MAX + 1).decode()
        assert text == db.option_file_text(SERVER) and "password=" in text
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # closed when the block ends
    with pytest.raises(RuntimeError), db.option_pipe(SERVER) as fd:
        raise RuntimeError
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def test_option_files_an_earlier_run_left_are_removed_and_nothing_else(
    tmp_path: Path,
) -> None:
    left = tmp_path / "wpenv-mysql-abc123.cnf"
    left.write_text("[client]\npassword=secret\n")
    left.chmod(0o600)
    other = tmp_path / "wpenv-mysql-notes.txt"
    other.write_text("kept")
    assert db.sweep_stale_option_files(str(tmp_path)) == [left]
    assert not left.exists() and other.exists()
    assert db.sweep_stale_option_files(str(tmp_path)) == []


def test_password_stays_out_of_reprs_and_child_environments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SERVER.password not in repr(SERVER)
    monkeypatch.setenv("MYSQL_PWD", "leak")
    monkeypatch.setenv("MYSQL_HOST", "elsewhere")
    env = db.child_env()
    assert "MYSQL_PWD" not in env and "MYSQL_HOST" not in env
    assert env["PATH"] == os.environ["PATH"]


def test_dump_problems() -> None:
    assert db.dump_problem(0, "") == ""
    assert db.dump_problem(0, "Warning: something harmless\n") == ""
    assert db.dump_problem(0, "mariadb-dump: Error: 'oops' when dumping\n") == (
        "mariadb-dump: Error: 'oops' when dumping"
    )
    assert db.dump_problem(2, "mariadb-dump: Got error: 1049: Unknown database\n") == (
        "exit status 2: mariadb-dump: Got error: 1049: Unknown database"
    )
    assert db.dump_problem(3, "") == "exit status 3"
    assert len(db.dump_problem(1, "error " + "x" * 1000)) < 330


def test_load_problems_name_the_code_and_line_but_never_the_data() -> None:
    stderr = "ERROR 1062 (23000) at line 42: Duplicate entry 'alice@example.com' for key 'PRIMARY'"
    assert db.load_problem(1, stderr) == "MySQL error 1062 at line 42 of the dump"
    assert db.load_problem(1, "ERROR 2013 (HY000): Lost connection") == "MySQL error 2013"
    assert db.load_problem(1, "Segmentation fault") == "the client exited with status 1"


def test_compare_checks_names_every_difference() -> None:
    original = {
        "same": TableCheck(1, 10),
        "rows": TableCheck(5, 10),
        "sum": TableCheck(1, 10),
        "gone": TableCheck(0, 0),
    }
    archive = {
        "same": TableCheck(1, 10),
        "rows": TableCheck(4, 10),
        "sum": TableCheck(1, 11),
        "new": TableCheck(0, 0),
    }
    assert db.compare_checks(original, archive) == [
        "table gone is missing from the archive",
        "table new is in the archive but not in the original",
        "table rows has 5 rows in the original, 4 in the archive",
        "table sum has another checksum in the archive",
    ]
    assert db.compare_checks(original, dict(original)) == []


def test_scratch_names_are_stable_short_and_never_a_tenants() -> None:
    name = db.scratch_database_name("wp_acme", "s3://b/a/database.sql.gz")
    assert name == db.scratch_database_name("wp_acme", "s3://b/a/database.sql.gz")
    assert name != db.scratch_database_name("wp_acme", "s3://b/other/database.sql.gz")
    assert name != db.scratch_database_name("wp_other", "s3://b/a/database.sql.gz")
    assert name.startswith("wpv_") and len(name) <= 64
    assert sql_identifier(name) == f"`{name}`"


def test_table_names_are_quoted_safely() -> None:
    assert db.quote_table("wp_acme", "wp_posts") == "`wp_acme`.`wp_posts`"
    assert db.quote_table("wp_acme", "wp-stats") == "`wp_acme`.`wp-stats`"
    assert db.quote_table("wp_acme", "a`b; DROP") == "`wp_acme`.`a``b; DROP`"
    with pytest.raises(ArchiveError, match="cannot be quoted"):
        db.quote_table("wp_acme", "x" * 65)
    with pytest.raises(ValueError, match="identifier"):
        db.quote_table("wp`acme", "t")


def test_mysql_only_flags_are_added_for_mysqls_own_dump_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(db, "is_mariadb_client", lambda program: program.endswith("mariadb-dump"))
    assert db.dump_options("/usr/bin/mariadb-dump") == db.DUMP_OPTIONS
    assert db.dump_options("/usr/bin/mysqldump")[-2:] == db.MYSQL_DUMP_OPTIONS
    assert "--databases" not in db.DUMP_OPTIONS and "--all-databases" not in db.DUMP_OPTIONS


def test_missing_client_programs_are_named() -> None:
    with pytest.raises(ArchiveError, match="none of no-such-dump is installed") as caught:
        db.find_program(["no-such-dump"])
    assert caught.value.reason == "MySQLClientMissing"
