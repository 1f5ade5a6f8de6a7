"""A throwaway certificate authority and a server certificate for 127.0.0.1 (one day,
EC P-256, made as `farmctl provision` makes them), for TLS tests against mosquitto on
loopback."""
from pathlib import Path

from farmctl.provision import make_ca, make_server_cert


def make_certs(folder, name="test"):
    """ca.crt, server.crt, server.key in folder; returns their paths."""
    ca = make_ca(folder, f"{name} farmnode test CA", days=1)
    cert, key = make_server_cert(Path(folder), ["localhost", "127.0.0.1"], days=1)
    return {"ca": ca, "cert": cert, "key": key}


def tls_listener_config(certs):
    return f"cafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}\n"
