#!/usr/bin/env python3
"""An external worker for Pratica, in plain Python (standard library only).

It works the tasks of one topic (default `documents.ocr`): long-polls the server for a task,
"reads" the document (a fictitious OCR and classification computed from the task input),
and completes the task with `{document_id, pages, classification, language, processed_by}`.

    python3 worker.py --url http://127.0.0.1:8080 --topic documents.ocr
    python3 worker.py --once                      # one task, then exit
    python3 worker.py --once --fail-with document.unreadable
    python3 worker.py --once --hold-ms 5000 --lock-ms 1000   # lose the lock on purpose

Human-readable logs go to standard error; standard output gets one JSON line per task
handled: {"task", "instance", "attempt", "idempotency_key", "result"}, where result is
"completed", "failed", "lock_lost" or "unreported".
A result refused with 409 lock_lost means the lock expired and another worker has the task:
the result is dropped and the worker moves on.

The protocol is described in docs/CONNECTORS.md; this file is meant to be copied.
"""

import argparse
import json
import math
import os
import socket
import sys
import time
import urllib.error
import urllib.request

API = "/api/v1/external-tasks"


class Problem(Exception):
    """An error answer of the server (application/problem+json)."""

    def __init__(self, status, body):
        self.status = status
        self.code = body.get("code", "") if isinstance(body, dict) else ""
        self.detail = body.get("detail", "") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status} {self.code}: {self.detail}")


class BusinessError(Exception):
    """The document cannot be processed; retrying will not help (a `catch` can match it)."""

    def __init__(self, code, message):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def log(args, message):
    print(f"[{args.worker}] {message}", file=sys.stderr, flush=True)


def report(task, result):
    line = {"task": task["id"], "instance": task["instance_id"], "attempt": task["attempt"], "idempotency_key": task["idempotency_key"], "result": result}
    print(json.dumps(line), flush=True)


def post(args, path, body, timeout_s):
    """POSTs JSON; returns the decoded answer (None for 204) or raises Problem."""
    request = urllib.request.Request(
        args.url.rstrip("/") + path,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json", "Authorization": f"Bearer {args.token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"detail": raw.decode("utf-8", "replace")}
        raise Problem(e.code, body) from None


def fetch_and_lock(args):
    body = {
        "worker": args.worker,
        "topic": args.topic,
        "max_tasks": args.max_tasks,
        "lock_ms": args.lock_ms,
        "wait_ms": args.wait_ms,
    }
    # The server may hold the request for wait_ms: allow for it.
    return post(args, f"{API}/fetch-and-lock", body, args.wait_ms / 1000 + 30)


def ocr(document):
    """The fictitious OCR: page count from the size, class from the name and text."""
    if not isinstance(document, dict) or not isinstance(document.get("document_id"), str):
        raise BusinessError("document.invalid_input", "the task input needs a string `document_id`")
    size = document.get("size_bytes", 0)
    if not isinstance(size, int) or size <= 0:
        raise BusinessError("document.unreadable", "the document is empty or its size is unknown")
    name = str(document.get("filename", "")).lower()
    text = str(document.get("text", "")).lower()
    words = name + " " + text
    if "naspi" in words or "disoccupazione" in words:
        classification = "naspi-application"
    elif "iban" in words or "bonifico" in words:
        classification = "payment-details"
    elif "pec" in words or name.endswith(".eml"):
        classification = "certified-mail"
    else:
        classification = "other"
    return {
        "document_id": document["document_id"],
        "pages": max(1, math.ceil(size / 50_000)),
        "classification": classification,
        "language": "it",
    }


def handle(args, task):
    """Works one task; returns "completed", "failed" or "lock_lost"."""
    ident = {"worker": args.worker, "lock": task["lock"]}
    log(args, f"locked task {task['id']} of instance {task['instance_id']} step {task['step_id']} "
              f"(attempt {task['attempt']}, key {task['idempotency_key']}, lock until {task['lock_expires']})")
    try:
        if args.fail_with:
            raise BusinessError(args.fail_with, f"failing on request (--fail-with {args.fail_with})")
        output = ocr(task["input"])
        output["processed_by"] = args.worker
        if args.hold_ms:
            log(args, f"holding task {task['id']} for {args.hold_ms} ms")
            time.sleep(args.hold_ms / 1000)
        post(args, f"{API}/{task['id']}/complete", {**ident, "output": output}, 30)
        log(args, f"completed task {task['id']}: {output['classification']}, {output['pages']} page(s)")
        return "completed"
    except BusinessError as e:
        failure = {**ident, "code": e.code, "message": e.message, "retryable": args.retryable}
        post(args, f"{API}/{task['id']}/fail", failure, 30)
        log(args, f"failed task {task['id']} with {e.code}")
        return "failed"


def handle_safely(args, task):
    try:
        result = handle(args, task)
    except Problem as e:
        if e.status == 409 and e.code == "lock_lost":
            log(args, f"task {task['id']}: lock lost, result dropped ({e.detail})")
            result = "lock_lost"
        else:
            raise
    except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
        # The lock will expire and the task will be fetched again (same idempotency key).
        log(args, f"task {task['id']}: could not report the result ({e}); it will be retried after the lock expires")
        result = "unreported"
    report(task, result)


def run(args):
    backoff = 0.5
    while True:
        try:
            tasks = fetch_and_lock(args)
            backoff = 0.5
        except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
            log(args, f"server unavailable ({e}); retrying in {backoff:.1f} s")
            time.sleep(backoff)
            backoff = min(backoff * 2, 30)
            continue
        for task in tasks:
            handle_safely(args, task)
        if args.once and tasks:
            return


def main(argv=None):
    parser = argparse.ArgumentParser(description="Pratica external worker: fictitious document OCR and classification.")
    parser.add_argument("--url", default=os.environ.get("PRATICA_URL", "http://127.0.0.1:8080"), help="the server (default $PRATICA_URL or http://127.0.0.1:8080)")
    parser.add_argument("--token", default=os.environ.get("PRATICA_TOKEN", ""), help="an API token of role worker (default $PRATICA_TOKEN; `pratica token create --role worker`)")
    parser.add_argument("--topic", default="documents.ocr", help="the topic to work (default documents.ocr)")
    parser.add_argument("--worker", default=f"ocr-{socket.gethostname()}-{os.getpid()}", help="this worker's name (default ocr-HOST-PID)")
    parser.add_argument("--once", action="store_true", help="handle the first task(s) fetched, then exit")
    parser.add_argument("--fail-with", metavar="CODE", help="fail every task with this business error code (e.g. document.unreadable)")
    parser.add_argument("--retryable", action="store_true", help="with --fail-with: report the failure as retryable")
    parser.add_argument("--hold-ms", type=int, default=0, metavar="N", help="sleep N ms before completing (to see a lock expire)")
    parser.add_argument("--lock-ms", type=int, default=60_000, metavar="N", help="lock tasks for N ms (default 60000)")
    parser.add_argument("--wait-ms", type=int, default=30_000, metavar="N", help="long-poll up to N ms per fetch (default 30000)")
    parser.add_argument("--max-tasks", type=int, default=1, metavar="N", help="tasks per fetch (default 1)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except Problem as e:
        log(args, f"refused by the server: {e}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
