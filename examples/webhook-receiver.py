#!/usr/bin/env python3
"""A partner system's webhook endpoint for trying Hotline out: prints each
delivery and whether its Standard Webhooks signature verifies under
WEBHOOK_SECRET. Standard library only; use a Standard Webhooks library
(`pip install standardwebhooks`) in a real receiver.

    WEBHOOK_SECRET=whsec_... python3 examples/webhook-receiver.py 9999
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET", "")
TOLERANCE = 300  # seconds
seen = set()


def verified(headers, body):
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not SECRET.startswith("whsec_") or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE:
        return False
    key = base64.b64decode(SECRET[len("whsec_"):])
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        ok = verified(self.headers, body)
        msg_id = self.headers.get("webhook-id")
        repeat = msg_id in seen
        seen.add(msg_id)
        event = json.loads(body or b"{}")
        order = event.get("data", {})
        print(
            f"{event.get('type')} {order.get('number')} status={order.get('status')}"
            f" signature={'ok' if ok else 'BAD'}{' (repeat)' if repeat else ''}",
            flush=True,
        )
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
