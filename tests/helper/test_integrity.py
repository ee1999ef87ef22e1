"""Detection integrity: text a client can put into the Plex log can neither frame another address,
hide an attacker, impersonate a user, nor cost unbounded CPU or memory (issue 14's attack classes).

Each test feeds hostile lines of its own through the one pipeline; the first one also runs them
through a live helper to show that no ban is recorded against the victim.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from plex_security_helper.logwatch.detect import RULE_SPAN, is_probe
from plex_security_helper.logwatch.logwrites import LINGER, MAX_TAINTED
from plex_security_helper.logwatch.pipeline import Pipeline
from plex_security_helper.logwatch.plexlog import MAX_PATH, forwarded_client
from plex_security_helper.logwatch.scan import ScanReport, scan_files, scan_lines
from plex_security_helper.thresholds import DetectConfig
from tests.helperproc import HelperProcess
from tests.mixedlog import log_write
from tests.plexlines import exchange, failed_login, stamp

WRITER = "192.0.2.66"
VICTIM = "198.51.100.7"
ATTACKER = "203.0.113.66"
T0 = datetime.now() - timedelta(minutes=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def verdicts(lines: list[str], **kwargs: object) -> dict[str, tuple[str, list[str]]]:
    report = scan_lines(lines, DetectConfig(), **kwargs)  # type: ignore[arg-type]
    return {row["ip"]: (row["verdict"], row["reasons"]) for row in report.as_json()["addresses"]}


def forged_burst(victim: str, when: datetime, count: int = 8) -> list[str]:
    """What a forger writes to frame *victim*: WAN Requests and their 401s, in Plex's shape."""
    return [line for n in range(count) for line in failed_login(victim, when=when, port=9000 + n)]


# -- 1. framing through /log ---------------------------------------------------------------


def test_a_forged_block_that_opens_with_a_fake_log_request_frames_nobody(helper: HelperProcess) -> None:
    # The forged block starts with the victim's own fake /log Request and a fake 200 for it,
    # then the burst: the writer's window must not pass to the victim.
    fake_log = exchange(VICTIM, 200, "/log?message=x", when=at(0), port=8999, user="victim")
    message = "\n".join([*fake_log, *forged_burst(VICTIM, at(0))])
    lines = log_write(WRITER, f"note\n{message}", when=at(0), port=40000, user="mallory")
    found = verdicts(lines)
    assert VICTIM not in found
    assert found[WRITER] == ("ban", ["log_injection"])

    helper.append(*lines)
    helper.wait_for(lambda s: s["monitor"]["access_lines"] >= 2)
    body = helper.get("/api/v1/alerts?after=0&wait=5")
    assert {a["kind"] for a in body["alerts"] if a["ip"] == WRITER} >= {"log_injection"}
    assert not [a for a in body["alerts"] if a["ip"] == VICTIM]
    assert [b["ip"] for b in helper.get("/api/v1/bans")["bans"]] == [WRITER]
    assert helper.get("/api/v1/status")["monitor"]["forged_lines"] == len(fake_log) + 16


def _write_with(message: str, when: datetime, port: int, headers: str = "") -> list[str]:
    """A GET /log write as Plex logs it, with a verbose header dump after the Request's flags."""
    path = f"/log?level=2&source=web&message={quote(message, safe='')}"  # message: the last parameter
    request, completed = exchange(WRITER, 200, path, user="mallory", when=when, port=port)
    first, *rest = message.split("\n")
    return [request + headers, f"{stamp(when)} [1] INFO - [Req#1/web] {first}", *rest, completed]


@pytest.mark.parametrize(
    ("first_line", "headers"),
    [
        # A header holding "(1 live)": the line is ambiguous and its last reading of the path runs
        # into the headers, so the message's last line read from it had the dump stuck to it.
        ("note", " / User-Agent => Mozilla (1 live)"),
        # A message longer than the parser keeps of a path: its lines after the cut were unknown.
        ("note " + "A" * 9000, ""),
    ],
    ids=["marker-in-a-header", "past-max-path"],
)
def test_the_guard_reads_the_message_from_what_plex_wrote(first_line: str, headers: str) -> None:
    forged = forged_burst(VICTIM, at(1), count=6)
    lines = [
        line
        for n, one in enumerate(forged)
        for line in _write_with(f"{first_line}\n{one}", at(1 + n), 41000 + n, headers)
    ]
    found = verdicts(lines)
    assert VICTIM not in found
    assert found[WRITER] == ("ban", ["log_injection"])


def test_a_message_with_bytes_that_do_not_decode_frames_nobody(tmp_path: Path) -> None:
    """'é' sent as %C3 and a raw 0xA9: Plex writes 'é', the reader's line holds U+FFFD, so the
    message's lines cannot be predicted from it; before, the forged lines passed as real."""
    forged = [line.replace("/library/sections", "/caf\u00e9") for line in forged_burst(VICTIM, at(1), count=6)]
    query = quote("note\n" + "\n".join(forged), safe="").encode().replace(b"%C3%A9", b"%C3\xa9")
    request, completed = (line.encode() for line in exchange(WRITER, 200, "PATH", user="mallory", when=at(0)))
    path = b"/log?level=2&message=" + query + b"&source=web"
    log = tmp_path / "bytes.log"
    log.write_bytes(
        b"\n".join(
            [
                request.replace(b"PATH", path),
                f"{stamp(at(0))} [1] INFO - [Req#1/web] note".encode(),
                *(line.encode() for line in forged),
                completed.replace(b"PATH", path),
            ]
        )
        + b"\n"
    )
    report = scan_files([log], DetectConfig())
    assert report.addresses[VICTIM].verdict() != "ban"
    assert report.addresses[VICTIM].tally.failed_auth == 0
    assert report.unverified == len(forged) // 2  # held like a body write: recorded, not evidence


def test_forged_timestamps_past_any_window_frame_nobody() -> None:
    # Timestamps written by the attacker mean nothing: seconds, minutes or a day later.
    for later in (3, 120, 86_000):
        message = "\n".join(forged_burst(VICTIM, at(later)))
        found = verdicts(log_write(WRITER, f"x\n{message}", when=at(0), port=40001, user="mallory"))
        assert VICTIM not in found
        assert found[WRITER] == ("ban", ["log_injection"])


def test_a_forged_completed_for_the_writer_cannot_close_its_window() -> None:
    own_close = exchange(WRITER, 200, "/log?message=x", when=at(0), port=40002, user="mallory")[1]
    message = "\n".join([own_close, *forged_burst(VICTIM, at(0))])
    found = verdicts(log_write(WRITER, f"x\n{message}", when=at(0), port=40002, user="mallory"))
    assert VICTIM not in found


def test_real_traffic_inside_a_log_write_still_counts() -> None:
    # A brute forcer whose real lines arrive while a (harmless) /log write is open.
    lines = exchange(WRITER, 200, "/log?message=hello", when=at(0), port=40003, user="mallory")
    real = [line for n in range(6) for line in failed_login("203.0.113.9", when=at(1 + n), port=9100 + n)]
    found = verdicts([lines[0], *real, lines[1]])
    assert found["203.0.113.9"][0] == "ban"


def test_a_body_write_holds_others_events_as_unverified_never_as_evidence() -> None:
    # POST /log: the body (and whatever it forges) is not in the log; what arrives meanwhile
    # is recorded but bans nobody.
    request, completed = exchange(WRITER, 200, "/log", when=at(0), port=40004, user="mallory")
    request = request.replace(" GET /log", " POST /log")
    completed = completed.replace(" GET /log", " POST /log")
    pipeline = Pipeline(DetectConfig())
    pipeline.feed([request, *forged_burst(VICTIM, at(0)), completed])
    pipeline.finish()
    batch = pipeline.take()
    assert batch.unverified == 8
    assert batch.tallies[VICTIM].requests == 8  # recorded, not discarded
    assert not [a for a in batch.verdicts.alerts if a.ip == VICTIM]


# -- 2. blinding through /log ---------------------------------------------------------------


def _post_log(ip: str, when: datetime, port: int) -> list[str]:
    request, completed = exchange(ip, 200, "/log", when=when, port=port, user="mallory")
    return [request.replace(" GET /log", " POST /log"), completed.replace(" GET /log", " POST /log")]


def test_forged_body_writes_inside_a_body_write_blind_for_a_short_while_only() -> None:
    """A forged POST /log Request line in a body has no Completed: before, it held every line
    after it for 20,000 records (released unverified), and each of thousands cost a look at
    every record. Now at most MAX_TAINTED are tracked, for LINGER records after the real one."""
    request, completed = _post_log(WRITER, at(0), 40010)
    forged = [_post_log(f"198.51.100.{k % 250 + 1}", at(0), 1000 + k)[0] for k in range(1000)]
    pipeline = Pipeline(DetectConfig())
    pipeline.feed([request, *forged, completed])
    assert len(pipeline.guard.windows) <= MAX_TAINTED + 1
    users = [
        line
        for k in range(LINGER)
        for line in exchange(f"192.0.2.{k % 200 + 1}", 200, when=at(1), port=20000 + k, user="u")
    ]
    pipeline.feed(users)  # 2 * LINGER records: the forged writes have ended
    pipeline.feed(forged_burst(ATTACKER, at(2), count=8))
    pipeline.finish()
    alerts = pipeline.take().verdicts.alerts
    assert [(a.kind, a.ip) for a in alerts] == [("failed_login_burst", ATTACKER)]


def test_refused_log_calls_hide_nothing() -> None:
    lines: list[str] = []
    for n in range(480):
        if n % 4 == 0:  # a cheap unauthenticated /log call before every fourth attempt
            lines += exchange("203.0.113.77", 401, "/log?message=x", when=at(n), port=20000 + n)
        lines += failed_login("203.0.113.9", when=at(n), port=30000 + n)
    report = scan_lines(lines, DetectConfig())
    row = report.addresses["203.0.113.9"]
    assert row.tally.failed_auth == 480
    assert row.ban
    assert report.unverified == 0


def test_a_refused_body_write_hides_nothing() -> None:
    request, completed = exchange("203.0.113.77", 401, "/log", when=at(0), port=40005)
    request, completed = (line.replace(" GET /log", " POST /log") for line in (request, completed))
    real = [line for n in range(6) for line in failed_login("203.0.113.9", when=at(n), port=9200 + n)]
    report = scan_lines([request, *real, completed], DetectConfig())
    assert report.addresses["203.0.113.9"].ban
    assert report.unverified == 0


# -- 3. impersonation through header dumps --------------------------------------------------


def test_header_dump_text_never_signs_anyone_in() -> None:
    dumps = [
        " / User-Agent => Signed-in Token (owner)",
        " / User-Agent => x (3 live) #ab GZIP Signed-in Token (owner)",
        " / X-Plex-Device-Name => Signed-in / X-Forwarded-For => 192.0.2.10",
        "  / Accept => */* / User-Agent => Token (owner) Signed-in",
    ]
    lines: list[str] = []
    for n in range(12):
        request, completed = failed_login("203.0.113.61", when=at(n), port=31000 + n)
        lines += [request + dumps[n % len(dumps)], completed]
    # The same client "succeeds" once, header-signed: it must not be learnt as the owner's.
    request, completed = exchange("203.0.113.61", 200, "/library/sections", when=at(20), port=31100)
    lines += [request + dumps[0], completed]
    pipeline = Pipeline(DetectConfig())
    pipeline.feed(lines)
    batch = pipeline.take()
    assert batch.tallies["203.0.113.61"].failed_auth == 12
    assert not batch.verdicts.learned
    assert "failed_login_burst" in {a.kind for a in batch.verdicts.alerts}
    for line in lines[::2]:
        rec = pipeline.parser.parse(line)
        assert rec is not None and not rec.signed_in and rec.user is None and rec.client is None


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxy = "172.30.0.2"
    lines: list[str] = []
    for n in range(6):
        request, completed = failed_login(proxy, when=at(n), port=32000 + n)
        # A client prepends a victim; the proxy appends the real client address.
        lines += [f"{request} / Host => plex / X-Forwarded-For => {VICTIM}, 203.0.113.44", completed]
    untrusted = verdicts(lines)
    assert "203.0.113.44" not in untrusted and VICTIM not in untrusted
    trusted = verdicts(lines, trusted_proxies=["172.30.0.0/24"])
    assert trusted["203.0.113.44"][0] == "ban"
    assert VICTIM not in trusted
    assert proxy not in trusted or trusted[proxy][0] == "ok"


@pytest.mark.parametrize(
    "dump",
    [
        # A fake header inside the client's X-Forwarded-For: the proxy's entry lands behind it.
        f" / X-Forwarded-For => {VICTIM} / Zz => q, 203.0.113.44 / X-Real-Ip => 203.0.113.44",
        # A second X-Forwarded-For written inside another header's value.
        f" / X-Forwarded-For => 203.0.113.44 / X-Plex-Product => a / X-Forwarded-For => {VICTIM}",
    ],
    ids=["fake-header-end", "second-header"],
)
def test_forwarded_for_text_the_client_wrote_frames_nobody(dump: str) -> None:
    """Readings of the dump that name different clients are refused: before, the first one
    framed the victim for the real client's failures."""
    lines: list[str] = []
    for n in range(6):
        request, completed = failed_login("172.30.0.2", when=at(n), port=32100 + n)
        lines += [request + dump, completed]
    found = verdicts(lines, trusted_proxies=["172.30.0.2"])
    assert VICTIM not in found
    assert found["172.30.0.2"] == ("ok", [])  # the proxy's own requests: judged against nobody


@pytest.mark.timeout(30)
def test_a_long_forwarded_for_value_is_read_in_linear_work() -> None:
    # 256 KB of spaces inside the value: the old pattern tried the end of the value at each one.
    dump = " / X-Forwarded-For => 203.0.113.44" + " " * 262_144 + "x / X-Plex-Product => Plex Web"
    assert forwarded_client(dump, lambda ip: ip == "172.30.0.2") is None  # "…x" is no address
    assert (
        forwarded_client(" / X-Forwarded-For => 203.0.113.44 / X-Plex-Product => Plex Web", lambda ip: False)
        == "203.0.113.44"
    )


def test_a_trusted_proxy_without_a_forwarded_address_is_judged_by_nobody() -> None:
    lines = [line for n in range(20) for line in failed_login("172.30.0.2", when=at(n), port=33000 + n)]
    found = verdicts(lines, trusted_proxies=["172.30.0.2"])
    assert found["172.30.0.2"] == ("ok", [])


def test_proxied_bans_are_recorded_for_the_proxy_to_enforce(helper_with_proxy: HelperProcess) -> None:
    lines = []
    for n in range(6):
        request, completed = failed_login("172.30.0.2", port=34000 + n)
        lines += [f"{request} / X-Forwarded-For => 203.0.113.45", completed]
    helper_with_proxy.append(*lines)
    helper_with_proxy.get("/api/v1/alerts?after=0&wait=5")
    bans = helper_with_proxy.wait_for(lambda s: s["bans"]["active"] >= 1)["bans"]["recent"]
    assert [(b["ip"], b["enforce_at"]) for b in bans] == [("203.0.113.45", "proxy")]


# -- 4. slow and spread attacks --------------------------------------------------------------


def test_one_failure_every_160_seconds_bans_at_the_20th() -> None:
    cfg = DetectConfig()
    pipeline = Pipeline(cfg)
    for n in range(30):
        pipeline.feed(failed_login("203.0.113.88", when=at(160 * n), port=35000 + n))
        kinds = {a.kind for a in pipeline.take().verdicts.alerts}
        if n + 1 < cfg.slow_failed_auth_threshold:
            assert not kinds, f"alert at failure {n + 1}"
        elif n + 1 == cfg.slow_failed_auth_threshold:
            assert kinds == {"failed_login_slow"}
            return
    raise AssertionError("never banned")


def test_four_failures_in_each_of_300_slash64s_ban_the_slash48() -> None:
    lines: list[str] = []
    base = ipaddress.IPv6Network("2001:db8:4400::/48")
    for n in range(300):
        ip = str(base.network_address + (n << 64) + 1)
        lines += [line for k in range(4) for line in failed_login(ip, when=at(n + k * 0.1), port=36000 + k)]
    report = scan_lines(lines, DetectConfig())
    spread = [a for a in report.alerts if a["kind"] == "network_spread"]
    assert spread and spread[0]["detail"]["source"] == "2001:db8:4400::/48"
    # It comes when the documented line is crossed: spread_sources distinct /64s.
    assert spread[0]["detail"]["sources"] == DetectConfig().spread_sources
    assert not any(r.ban for ip, r in report.addresses.items() if ip.startswith("2001:db8:4400") and
                   {"failed_login_burst", "failed_login_slow"} & r.reasons)  # fmt: skip


def test_a_residential_slash24_with_a_few_failing_devices_is_not_spread() -> None:
    lines = [
        line for host in range(1, 4) for k in range(3)
        for line in failed_login(f"192.0.2.{host}", when=at(host * 10 + k), port=37000 + k)
    ]  # fmt: skip
    assert not [a for a in scan_lines(lines, DetectConfig()).alerts if a["kind"] == "network_spread"]


# -- 5. algorithmic and memory cost ----------------------------------------------------------


def test_probe_rules_look_at_a_bounded_prefix() -> None:
    hostile = "/x?q=" + "select+" * 10_000  # 70 KB of the pattern that used to be quadratic
    assert is_probe(hostile) == is_probe(hostile[:RULE_SPAN])
    assert not is_probe("/hubs/search?query=select+a+movie+from+1990")  # a title, not SQL
    assert is_probe("/library/sections?id=1%20union%20select%201,2")
    assert is_probe("/library/sections?x=select%20a%20from%20b")


def test_padding_a_path_past_4_kb_hides_no_exploit_and_no_probe() -> None:
    """The rules read all the parser keeps of a path (8 KB): before, 4,100 characters of padding
    before the payload hid an exploit (a ban on the first hit) and every probe after it."""
    pad = "&a=" + "A" * 4100
    lines = exchange(
        "203.0.113.90", 200, f"/photo/:/transcode?width=1{pad}&url=file%3A%2F%2F%2Fetc%2Fpasswd", when=at(0)
    )
    for n in range(3):
        lines += exchange("203.0.113.90", 404, f"/x?{pad}&f=../../../../etc/passwd", when=at(1 + n), port=5100 + n)
    assert len(lines[0]) < MAX_PATH + 200  # within what the parser keeps of the path
    found = verdicts(lines)
    assert found["203.0.113.90"][0] == "ban"
    assert {"exploit", "probe"} <= set(found["203.0.113.90"][1])


def test_per_source_state_is_bounded_under_long_distinct_404_paths() -> None:
    cfg = DetectConfig()
    pipeline = Pipeline(cfg)
    for n in range(200):
        ip = f"2001:db8:77:{n:x}::1"
        lines = [
            line
            for k in range(9)
            for line in exchange(ip, 404, f"/{k}/" + "a" * 8000, when=at(n + k * 0.01), port=38000 + k)
        ]
        pipeline.feed(lines)
        pipeline.take()
    for src in pipeline.detector._sources.values():
        assert len(src.misses) <= 4 * cfg.scan_distinct_paths
        assert all(isinstance(k, int) for k in src.misses)  # hashes, not 8 KB strings
        assert sum(sys.getsizeof(s) for s in src.samples) < 5 * 400


def test_a_log_write_message_is_matched_in_linear_work() -> None:
    # A message of many short lines, and a log of many lines that are not among them.
    message = "\n".join(f"line {n}" for n in range(5000))
    lines = log_write(WRITER, f"x\n{message}", when=at(0), port=40010, user="mallory")
    assert len(lines) == 5003
    assert quote("\n") in lines[0]
    noise = [f"{stamp(at(1))} [1] DEBUG - something {n}" for n in range(5000)]
    report: ScanReport = scan_lines([lines[0], *noise, *lines[1:]], DetectConfig())
    assert WRITER in report.addresses


@pytest.fixture
def helper_with_proxy(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    """A helper whose Plex sits behind a trusted reverse proxy at 172.30.0.2."""
    root = tmp_path / "proxied"
    log = root / "Logs" / "Plex Media Server.log"
    proc = HelperProcess(root, extra_config=f'[monitor]\nlog_path = "{log}"\ntrusted_proxies = ["172.30.0.2"]\n')
    proc.start()
    yield proc
    proc.stop()


# -- virtual patches -------------------------------------------------------------------------


def test_an_exploit_shape_bans_on_the_first_hit_and_is_critical_on_an_affected_build() -> None:
    from plex_security_helper.audit.versions import parse_version

    lines = exchange("203.0.113.90", 200, "/photo/:/transcode?url=file%3A%2F%2F%2Fetc%2Fpasswd", when=at(0))
    for build, severity in (("1.43.3.10828", "critical"), ("1.43.4.10903", "high")):
        pipeline = Pipeline(DetectConfig())
        pipeline.detector.plex_version = parse_version(build)
        pipeline.feed(lines)
        alerts = pipeline.take().verdicts.alerts
        assert [(a.kind, a.detail["verdict"], a.detail["severity"]) for a in alerts] == [("exploit", "ban", severity)]
        assert ("fix" in alerts[0].detail) == (severity == "critical")


def test_a_token_endpoint_from_the_internet_is_watched_not_banned() -> None:
    lines = exchange("203.0.113.91", 200, "/myplex/account", when=at(0), user="shareduser")
    report = scan_lines(lines, DetectConfig())
    assert report.addresses["203.0.113.91"].reasons == {"sensitive_request"}
    assert not report.addresses["203.0.113.91"].ban


def test_a_network_where_a_real_user_signed_in_is_never_banned_whole() -> None:
    lines = exchange("203.0.113.200", 200, "/library/sections", when=at(0), user="alice")
    lines += [
        line for host in range(1, 11) for k in range(3)
        for line in failed_login(f"203.0.113.{host}", when=at(10 + host + k * 0.1), port=39000 + k)
    ]  # fmt: skip
    assert not [a for a in scan_lines(lines, DetectConfig()).alerts if a["kind"] == "network_spread"]
    without_alice = lines[2:]
    assert [a for a in scan_lines(without_alice, DetectConfig()).alerts if a["kind"] == "network_spread"]


def test_a_short_first_message_line_takes_no_real_line_with_it() -> None:
    # The message's first line "GZIP" must not swallow the next real line that ends with GZIP.
    writer = exchange(WRITER, 200, "/log?message=GZIP%0Ahello", when=at(0), port=40020, user="mallory")
    real = [line for n in range(6) for line in failed_login("203.0.113.9", when=at(1 + n), port=9300 + n)]
    report = scan_lines([writer[0], *real, writer[1]], DetectConfig())
    assert report.addresses["203.0.113.9"].tally.failed_auth == 6
    assert report.addresses["203.0.113.9"].ban
