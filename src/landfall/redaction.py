"""Secrets never printed: passwords in URLs (`postgresql://admin:***@db/landfall`) and the storage secrets landfall
was given are masked in every log line, error message and run record.

`redact` is applied where text leaves landfall: the log handlers (a filter on the `landfall` logger), the CLI's
error line, and the error stored in a run record.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
# scheme://user:password@host  ->  scheme://user:***@host  (also a password with no user: scheme://:pw@host),
# and the same as a path once a filesystem has dropped the scheme (`/user:password@bucket/key`)
_URL_PASSWORD = re.compile(
    r"(?P<head>(?:[A-Za-z][A-Za-z0-9+.\-]*://|(?:^|(?<=[\s'\"(`=]))/)[^\s/:@'\"`]*:)(?P<pw>[^\s/@'\"`]+)(?P<at>@)"
)
# key=value pairs that carry secrets (query strings, libpq connection strings, storage options)
_PAIRS = re.compile(
    r"(?P<k>\b(?:password|passwd|pwd|secret|secret_access_key|aws_secret_access_key|token|session_token|"
    r"aws_session_token|sig|signature|x-amz-signature|x-amz-security-token)['\"]?\s*[=:]\s*['\"]?)(?P<v>[^\s&'\",;}]+)",
    re.IGNORECASE,
)
_known: set[str] = set()
_lock = threading.Lock()


def remember(secret: str | None) -> None:
    """Mask this value wherever it appears from now on (a storage secret, a token)."""
    if secret and len(secret) >= 4:
        with _lock:
            _known.add(secret)


def remember_url(url: str | None) -> None:
    """Mask the password of a URL (`postgresql://user:pw@host/db`) wherever it appears from now on."""
    if url and "://" in url:
        from urllib.parse import unquote, urlsplit

        try:
            password = urlsplit(url).password
        except ValueError:
            return
        if password:
            remember(password)
            remember(unquote(password))


def redact(text: str) -> str:
    """`text` with URL passwords, secret-looking `key=value` pairs and remembered secrets masked."""
    if not text:
        return text
    out = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('at')}", text)
    out = _PAIRS.sub(lambda m: f"{m.group('k')}{MASK}", out)
    for secret in sorted(_known, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message (arguments included) and the exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for the handler to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            import traceback

            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return True
