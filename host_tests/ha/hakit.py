"""The real Home Assistant, headless, for a test: its own config folder, http on a free
loopback port, onboarded through its REST API, MQTT set up through its config flow.

Home Assistant runs from the venv tools/ha-venv.sh made (FARMNODE_HA_PYTHON names its
python; `make test-ha` sets it) with --skip-pip: what it would install at its first
start is installed there already, so a test never waits on a package index. Every wait
is bounded; a failure says what was awaited and shows the end of Home Assistant's log."""
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from farmctl.broker import _die_with_parent, free_port
from farmsim.runtime import stop_process

HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 180  # first answer of its http server; about 15 s on two idle cores
RUNNING_TIMEOUT_S = 120  # from then until its core reports RUNNING
REQUEST_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
LOG_TAIL_LINES = 60

# No default_config: only what the REST and websocket APIs, onboarding and the config
# flows need (Home Assistant adds its always-on integrations, the frontend among them).
CONFIGURATION = """\
homeassistant:
  name: farmnode test
  unit_system: metric
  time_zone: UTC
  country: DE
  currency: EUR
  latitude: 52.0
  longitude: 13.0
  elevation: 40
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
websocket_api:
onboarding:
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
"""


class HomeAssistantError(AssertionError):
    """Home Assistant did not do what the test waited for; the message ends with its log."""


class HomeAssistant:
    host = "127.0.0.1"
    username = "farmer"
    password = "farmnode-test-only"

    def __init__(self, python, workdir):
        self.python = str(python)
        self.workdir = Path(workdir)
        self.config_dir = self.workdir / "config"
        self.log_path = self.workdir / "home-assistant.log"
        self.console_path = self.workdir / "console.log"
        self.port = free_port(self.host)
        self.process = None
        self.token = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    # -- life cycle

    def start(self):
        """Until its http server answers (onboarding is served before the core is up)."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        with open(self.console_path, "ab") as console:
            self.process = subprocess.Popen(
                [self.python, "-m", "homeassistant", "--config", str(self.config_dir), "--skip-pip",
                 "--log-file", str(self.log_path), "--log-no-color"],
                stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent)
        self._wait(lambda: self._answers("/api/onboarding"), START_TIMEOUT_S,
                   f"Home Assistant's http server on {self.url}")
        return self

    def stop(self):
        if self.process is not None:
            stop_process(self.process, STOP_TIMEOUT_S)
            self.process = None

    def _answers(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _wait(self, ready, timeout_s, what, interval_s=0.5):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = ready()
            if result:
                return result
            if self.process is not None and self.process.poll() is not None:
                self.fail(f"Home Assistant exited ({self.process.returncode}) while the test waited for {what}")
            time.sleep(interval_s)
        self.fail(f"no {what} within {timeout_s} s")

    def fail(self, message):
        raise HomeAssistantError(f"{message}\n{self.log_tail()}")

    def log_tail(self, lines=LOG_TAIL_LINES):
        """The end of its log file; of its console (the same lines, and what came before
        logging was set up) when it has no log file yet, or has exited."""
        exited = self.process is not None and self.process.poll() is not None
        path = self.console_path if exited or not self.log_path.exists() else self.log_path
        if not path.exists():
            return "(Home Assistant wrote no log)"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- last {len(text)} lines of {path}\n" + "\n".join(text)

    # -- REST

    def request(self, method, path, body=None, form=False, authorized=True):
        """(status, decoded JSON or text). form: body sent url-encoded (the token endpoint)."""
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if authorized and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as reply:
                status, raw = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def call(self, method, path, body=None, **kwargs):
        """The decoded reply of a request that must succeed."""
        status, reply = self.request(method, path, body, **kwargs)
        if status != 200:
            self.fail(f"{method} {path} {json.dumps(body)[:300]} -> HTTP {status}: {str(reply)[:500]}")
        return reply

    def onboard(self):
        """The owner user, then an access token by the authorization-code grant; until the
        core reports RUNNING."""
        client_id = self.url + "/"  # Home Assistant's auth wants a URL as the client id
        created = self.call("POST", "/api/onboarding/users", {
            "client_id": client_id, "name": "Farmer", "username": self.username,
            "password": self.password, "language": "en"}, authorized=False)
        tokens = self.call("POST", "/auth/token", {
            "grant_type": "authorization_code", "code": created["auth_code"], "client_id": client_id},
            form=True, authorized=False)
        self.token = tokens["access_token"]  # 30 minutes, longer than the test
        self._wait(self._running, RUNNING_TIMEOUT_S, "RUNNING state in /api/config")
        return self

    def _running(self):
        status, config = self.request("GET", "/api/config")
        return status == 200 and config.get("state") == "RUNNING"

    def setup_mqtt(self, host, port):
        """The MQTT integration, through the config flow's REST API, on host:port; its
        config entry once loaded."""
        form = self.call("POST", "/api/config/config_entries/flow", {"handler": "mqtt", "show_advanced_options": False})
        if form.get("type") != "form" or form.get("step_id") != "broker":
            self.fail(f"the MQTT config flow began with {form}, not the broker form")
        done = self.call("POST", f"/api/config/config_entries/flow/{form['flow_id']}", {"broker": host, "port": port})
        if done.get("type") != "create_entry":
            self.fail(f"the MQTT config flow ended with {done}")
        entry = done["result"]
        if entry.get("state") != "loaded":
            self.fail(f"the MQTT config entry is {entry.get('state')}: {entry.get('reason')}")
        return entry

    def states(self):
        return {state["entity_id"]: state for state in self.call("GET", "/api/states")}

    def service(self, domain, service, **data):
        return self.call("POST", f"/api/services/{domain}/{service}", data)

    # -- websocket (the registries have no REST endpoint)

    def ws(self, *commands):
        """The results of websocket API commands, sent by ha_ws.py under Home Assistant's python."""
        url = f"ws://{self.host}:{self.port}/api/websocket"
        try:
            done = subprocess.run([self.python, str(HERE / "ha_ws.py"), url, self.token],
                                  input=json.dumps(list(commands)), capture_output=True, text=True,
                                  timeout=60)
        except subprocess.TimeoutExpired:
            self.fail(f"websocket commands {commands} took more than 60 s")
        if done.returncode != 0:
            self.fail(f"websocket commands {commands} failed: {done.stdout[-500:]} {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def registries(self):
        """(devices, entities): the device and entity registries' entries."""
        return tuple(self.ws({"type": "config/device_registry/list"}, {"type": "config/entity_registry/list"}))
