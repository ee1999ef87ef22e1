"""TLS for the API: a self-signed certificate made at ``init``, and its fingerprint.

Home Assistant pins the certificate's SHA-256 fingerprint (shown by ``init`` and confirmed in
the config flow), so no certificate authority is involved and a swapped certificate is refused.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
from pathlib import Path


class TlsError(Exception):
    """The certificate could not be made or loaded."""


def make_self_signed(cert: Path, key: Path, names: list[str]) -> None:
    """An EC P-256 certificate for ten years with *names* as subject alternative names."""
    san = ",".join(f"IP:{n}" if n.replace(".", "").isdigit() or ":" in n else f"DNS:{n}" for n in names)
    argv = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "3650",
        "-subj",
        "/CN=plex-security-helper",
        "-addext",
        f"subjectAltName={san}",
    ]
    # The key is born 0600 (openssl truncates and keeps the mode), never readable for a moment.
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603 - fixed argument list
    except FileNotFoundError:
        raise TlsError("openssl is not installed: cannot make a certificate") from None
    except subprocess.CalledProcessError as err:
        raise TlsError(f"openssl failed: {err.stderr.decode(errors='replace')[:300]}") from None
    key.chmod(0o600)


def fingerprint(cert: Path) -> str:
    """SHA-256 of the certificate (DER), as colon-separated upper-case hex."""
    try:
        der = ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii"))
    except (OSError, ValueError) as err:
        raise TlsError(f"cannot read certificate {cert}: {err}") from None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise TlsError(f"cannot load {cert} / {key}: {err}") from None
    return context
