#!/usr/bin/env python3
"""A real SMTP server for the email connector tests (aiosmtpd).

Usage: smtp_sink.py OUTDIR [--user USER --password PASSWORD]

Listens on a free port of 127.0.0.1 and prints `READY <port>` on stdout once it accepts
connections. Every message it accepts is parsed with Python's `email` package and written
to OUTDIR/<n>.json (written to a temporary name first, then renamed) with the fields
`mail_from`, `rcpt_tos`, `from`, `to`, `cc`, `reply_to`, `subject`, `message_id`,
`idempotency_key`, `date`, `text`, `html`, `content_type` and `auth_login`.

Recipients whose local part starts with `reject` are refused with `550 5.1.1`, those that
start with `busy` with `451 4.3.0`. With --user/--password the server requires AUTH
(PLAIN or LOGIN, allowed without TLS since it is on loopback). It stops when its standard
input closes (the test process ended) or when it is killed.
"""

import argparse
import email
import email.policy
import json
import logging
import os
import socket
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("busy"):
            return "451 4.3.0 <%s>: mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        auth = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(msg["from"]) if msg["from"] else None,
            "to": str(msg["to"]) if msg["to"] else None,
            "cc": str(msg["cc"]) if msg["cc"] else None,
            "reply_to": str(msg["reply-to"]) if msg["reply-to"] else None,
            "subject": str(msg["subject"]) if msg["subject"] else None,
            "message_id": str(msg["message-id"]) if msg["message-id"] else None,
            "idempotency_key": str(msg["x-pratica-idempotency-key"]) if msg["x-pratica-idempotency-key"] else None,
            "date": str(msg["date"]) if msg["date"] else None,
            "content_type": msg.get_content_type(),
            "text": text.get_content().replace("\r\n", "\n") if text is not None else None,
            "html": html.get_content().replace("\r\n", "\n") if html is not None else None,
            "auth_login": auth.login.decode() if isinstance(auth, LoginPassword) else None,
        }
        with self.lock:
            self.count += 1
            n = self.count
        path = os.path.join(self.outdir, "%04d.json" % n)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.replace(path + ".tmp", path)
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    options = {}
    if args.user is not None:
        expected = LoginPassword(args.user.encode(), (args.password or "").encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=auth_data == expected, handled=False, auth_data=auth_data)

        # Loopback only, so AUTH without TLS is what the test wants: no warnings about it.
        warnings.simplefilter("ignore")
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        options = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}

    port = free_port()
    controller = Controller(Sink(args.outdir), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print("READY %d" % port, flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
