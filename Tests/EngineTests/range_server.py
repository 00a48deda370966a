#!/usr/bin/env python3
"""A loopback HTTP server for WeightsDownloadTests.swift: serves one file with Range support.

    range_server.py FILE LOG [--cut-after N] [--etag HEX] [--ignore-range]

Binds 127.0.0.1 on a free port and prints the port on its first line of stdout. Every
request appends its Range header (or "-") to LOG. With --cut-after N the first GET sends the
full Content-Length but closes the connection after N bytes (a cut download); later GETs are
whole. --etag sends an ETag header; --ignore-range answers every GET with 200 and the whole
file. The server exits by itself after --lifetime seconds (default 300), so a test that
dies cannot leave it running. Standard library only.
"""
import argparse
import http.server
import os
import re
import threading


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("log")
    parser.add_argument("--cut-after", type=int, default=None)
    parser.add_argument("--etag", default=None)
    parser.add_argument("--ignore-range", action="store_true")
    parser.add_argument("--lifetime", type=float, default=300)
    args = parser.parse_args()
    with open(args.file, "rb") as fh:
        body = fh.read()
    state = {"cut": args.cut_after}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_GET(self):
            requested = self.headers.get("Range")
            with open(args.log, "a") as log:
                log.write((requested or "-") + "\n")
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", requested or "")
            if match and not args.ignore_range:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("Content-Type", "application/octet-stream")
            if args.etag:
                self.send_header("ETag", f'"{args.etag}"')
            self.end_headers()
            payload = body[start:]
            if state["cut"] is not None:
                payload, state["cut"] = payload[:state["cut"]], None
                self.wfile.write(payload)
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
