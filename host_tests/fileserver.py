"""An HTTP server on loopback for OTA updates: files served by path, each with a
behaviour (whole, truncated, reset, stalled), and publish_update() to serve an update's
files with their manifest, as the `ota` command fetches them (test_ota.py,
bench/heap_floor.py)."""
import hashlib
import http.server
import json
import socket
import struct
import threading

STALL_LIMIT_S = 30  # a stalled response is held at most this long (the device gives up after 10 s)


class FileServer:
    """An HTTP server on loopback serving bytes by path, each with a behaviour:
    "ok", "truncate" (half the body, then close), "reset" (half, then a TCP RST),
    "stall" (half, then silence)."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, mode = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "ok":
                    self.wfile.write(body)
                    return
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                if mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif mode == "stall":
                    server.stop.wait(STALL_LIMIT_S)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], path)

    def publish_update(self, name, files, version, wrong_hash=(), modes=None, claimed_size=None):
        """Serve files ({path: bytes}) and their manifest under /name/; returns the ota
        command's parameters."""
        entries = []
        for path, body in files.items():
            digest = hashlib.sha256(body).hexdigest()
            if path in wrong_hash:
                digest = hashlib.sha256(body + b"#").hexdigest()
            entries.append({"path": path, "sha256": digest, "size": claimed_size or len(body)})
            self.routes[f"/{name}/{path}"] = (body, (modes or {}).get(path, "ok"))
        manifest = json.dumps({"version": version, "files": entries}).encode()
        self.routes[f"/{name}/manifest.json"] = (manifest, "ok")
        return {"url": self.url(f"/{name}/manifest.json"), "sha256": hashlib.sha256(manifest).hexdigest()}

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
