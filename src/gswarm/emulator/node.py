"""GSwarm's emulated RL Swarm node (stdlib only; a copy lives in every emulated checkout).

Why one big file: it is copied verbatim to ``<checkout>/.gswarm-emulator/emu_node.py``
and must run under any bare Python 3 (a node venv without gswarm), so it cannot
import anything but the standard library. The generation's real entry point
(e.g. ``code_gen_exp/runner/swarm_launcher.py``) is a thin file calling :func:`main`.

Behaviour follows ``shared/rlswarm/generations.md``: log formats and markers of
§3–§9/§12 (E0–E2 ``LEVEL:logger:msg`` on stderr, E2 ``logs/swarm.log``; E3–E6
``[ts][logger][LEVEL] - msg`` on stdout and ``logs/swarm_launcher.log``), a
p2pd-like grandchild in the same process group (§13.10), SIGTERM ends the child
and then the node dies of SIGTERM like an unhandled Python node.

Environment:
  GSWARM_EMU_PACE        seconds per step (default 1.0)
  GSWARM_EMU_FAULTS      fault schedule, e.g. ``crash:cuda_oom@2#1,sigkill@30`` (see parse_faults)
  GSWARM_EMU_ROUNDS      rounds before a normal end with exit 0 (default: endless)
  GSWARM_EMU_START_ROUND first round of a fresh checkout (default 1000)
  GSWARM_EMU_MODAL_URL   testnet generations POST ``/api/register-peer`` there (optional)

Every start appends one JSON line to ``.gswarm-emulator/starts.jsonl`` (:meth:`Node.record_start`): the
run number, argv, the environment the trainer got (values of names that look secret masked as ``***``)
and whether the modal-login files were in place — so tests can see what each trainer start received.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

EMU_DIR = ".gswarm-emulator"
KINDS = ("crash", "sigkill", "hang", "exit0", "flood", "stall", "swallowed", "reject")
_PY_DIR = re.compile(r"python3\.\d+(?=/)")  # "lib/python3.12/" in the failure texts' traceback frames
_PY_NOW = f"python{sys.version_info[0]}.{sys.version_info[1]}"
_FAULT_RE = re.compile(r"^(?P<kind>[a-z0-9_]+)(?::(?P<arg>[\w.-]+))?(?:@(?P<at>\d+(?:\.\d+)?))?(?:#(?P<run>\d+))?$")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ADJ = ("agile", "bold", "calm", "dapper", "eager", "fierce", "gentle", "hairy", "icy", "jolly", "keen",
        "lively", "mighty", "nimble", "quick", "rapid", "shy", "tall", "vocal", "wild", "zealous", "sly")
_ANIMALS = ("otter", "badger", "crane", "dingo", "eagle", "ferret", "gecko", "heron", "ibis", "jackal",
            "koala", "lemur", "mole", "newt", "okapi", "panda", "quail", "raven", "seal", "tapir")
_P2PD = "import time\nwhile True:\n    time.sleep(3600)\n"
_BOOT = "/ip4/38.101.215.12/tcp/30011/p2p/QmQ2gEXoPJg6iMBSUFWGzAabS2VhnzuS782Y637hGjfsRJ"


class Fault:
    """One scheduled fault: ``kind[:arg]@seconds[#run]`` (``run`` = only on that start, 1-based)."""

    def __init__(self, kind: str, arg: str | None, at: float, run: int | None) -> None:
        self.kind, self.arg, self.at, self.run, self.fired = kind, arg, at, run, False

    def __repr__(self) -> str:
        return f"Fault({self.kind!r}, {self.arg!r}, {self.at}, {self.run})"


def parse_faults(text: str) -> list[Fault]:
    """Parse a schedule: items separated by commas/whitespace, each ``kind[:arg][@seconds][#run]``.

    Kinds: crash:<category>, sigkill, hang, exit0, flood:<lines>, stall, swallowed, reject.
    ``seconds`` counts from the node's start (default 0). Raises ValueError naming the bad item.
    """
    out = []
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        m = _FAULT_RE.match(item)
        if not m or m["kind"] not in KINDS:
            raise ValueError(f"GSWARM_EMU_FAULTS: bad item {item!r}; expected kind[:arg][@seconds][#run] with kind in {', '.join(KINDS)}")
        if m["kind"] == "crash" and not m["arg"]:
            raise ValueError(f"GSWARM_EMU_FAULTS: {item!r} needs a category, e.g. crash:cuda_oom@5")
        if m["kind"] == "flood" and not (m["arg"] or "").isdigit():
            raise ValueError(f"GSWARM_EMU_FAULTS: {item!r} needs a line count, e.g. flood:10000@5")
        out.append(Fault(m["kind"], m["arg"], float(m["at"] or 0), int(m["run"]) if m["run"] else None))
    return out


def peer_id_of(material: bytes) -> str:
    """A 46-character base58 ``Qm…`` peer id derived from ``material`` (like a CIDv0 multihash)."""
    n = int.from_bytes(hashlib.sha256(material).digest(), "big")
    chars = ""
    while n:
        n, r = divmod(n, 58)
        chars = _B58[r] + chars
    return "Qm" + chars.rjust(44, "1")[:44]


def animal_of(peer_id: str) -> str:
    """"adj adj animal" from the MD5 of the peer id, per generations.md §2.5 (emulator word lists)."""
    h = hashlib.md5(peer_id.encode()).hexdigest()
    n0, n1, n2 = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"{_ADJ[n2 % len(_ADJ)]} {_ADJ[n1 % len(_ADJ)]} {_ANIMALS[n0 % len(_ANIMALS)]}"


def _now(fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    t = datetime.datetime.now()
    return t.strftime(fmt) + f",{t.microsecond // 1000:03d}"


def _number(env: dict, name: str, default: float) -> float:
    """A non-negative number from ``env[name]`` (default when unset); ValueError naming the variable."""
    raw = env.get(name) or ""
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number; unset it or give seconds/counts like 0.5") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


def _arg(argv: list[str], name: str, default: str | None = None) -> str | None:
    if name in argv and argv.index(name) + 1 < len(argv):
        return argv[argv.index(name) + 1]
    return default


class Node:
    """One run of the emulated node of ``generation`` in checkout ``root``."""

    def __init__(self, generation: str, root: str, argv: list[str], env: dict) -> None:
        self.gen, self.root, self.argv, self.env = generation, root, argv, env
        self.genrl = generation in ("E3", "E4", "E5", "E6")
        self.pace = _number(env, "GSWARM_EMU_PACE", 1.0)
        faults = parse_faults(env.get("GSWARM_EMU_FAULTS", ""))
        rounds = env.get("GSWARM_EMU_ROUNDS")
        self.rounds_left = int(_number(env, "GSWARM_EMU_ROUNDS", 0)) if rounds else None
        self.state_path = os.path.join(root, EMU_DIR, "state.json")
        state = self._load_state()
        self.run_no = int(state.get("runs", 0)) + 1
        self.round = int(state.get("round", _number(env, "GSWARM_EMU_START_ROUND", 1000)))
        self._save_state()
        self.faults = [f for f in faults if f.run in (None, self.run_no)]
        self.t0 = time.monotonic()
        self.mode: set[str] = set()
        self.child: subprocess.Popen | None = None
        self.logfile = None
        self.animal_log = None  # E3/E4 logs/training_<adj_adj_animal>.log (gone in E5 from 08-21, §8.6)
        self.peer = self.animal = ""
        self.logger = ("genrl_swarm" if generation == "E3" else "genrl") + ".logging_utils.global_defs"

    # ---- state and output
    def _load_state(self) -> dict:
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        os.makedirs(os.path.dirname(self.state_path), exist_ok=True)
        tmp = self.state_path + f".{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"runs": self.run_no, "round": self.round}, fh)
        os.replace(tmp, self.state_path)

    def record_start(self) -> None:
        """Append this start to ``.gswarm-emulator/starts.jsonl`` (see the module docstring)."""
        secret = ("TOKEN", "SECRET", "PASSWORD", "KEY")
        env = {k: ("***" if any(w in k.upper() for w in secret) and v not in ("", "None") else v)
               for k, v in sorted(self.env.items())}
        temp = os.path.join(self.root, "modal-login", "temp-data")
        rec = {"run": self.run_no, "argv": self.argv, "env": env,
               "login": all(os.path.isfile(os.path.join(temp, n)) for n in ("userData.json", "userApiKey.json"))}
        with open(os.path.join(self.root, EMU_DIR, "starts.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")

    def _open_log(self) -> None:
        logs = os.path.join(self.env.get("ROOT") or os.getcwd(), "logs")
        os.makedirs(logs, exist_ok=True)
        info = f"[---------] SYSTEM INFO [---------]\nPython: {sys.version.split()[0]}\nPlatform: {sys.platform} (GSwarm emulator)\n"
        if self.gen == "E2":
            self.logfile = open(os.path.join(logs, "swarm.log"), "w", encoding="utf-8")  # truncated per start (§5.3)
            self.logfile.write(info)
        elif self.genrl:
            self.logfile = open(os.path.join(logs, "swarm_launcher.log"), "a", encoding="utf-8")
            os.makedirs(os.path.join(logs, ".hydra"), exist_ok=True)  # Hydra's run files (§6.6)
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                with open(os.path.join(logs, ".hydra", name), "w", encoding="utf-8") as fh:
                    fh.write("# GSwarm emulator\n")
            with open(os.path.join(logs, "system_info.txt"), "w", encoding="utf-8") as fh:
                fh.write(info)

    def out(self, text: str, err: bool = False) -> None:
        """Write one line to stdout (or stderr) and flush."""
        stream = sys.stderr if err else sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def log(self, msg: str, level: str = "INFO", logger: str | None = None) -> None:
        """One log record in the generation's console format (and its log file)."""
        if self.genrl:
            line = f"[{_now()}][{logger or self.logger}][{level}] - {msg}"
            self.out(line)
            if self.logfile:
                self.logfile.write(line + "\n")
                self.logfile.flush()
            if self.animal_log:
                self.animal_log.write(f"[{self.animal.replace(' ', '_')}] {_now()} {level}: {msg}\n")
                self.animal_log.flush()
            return
        name = logger or f"hivemind_exp.trainer.hivemind_grpo_trainer:{self.animal}"
        self.out(f"{level}:{name}:{msg}", err=True)
        if self.logfile:
            self.logfile.write(f"{_now()} - {level} - {name}:{random.randint(40, 400)} - {msg}\n")
            self.logfile.flush()

    def hivemind(self, msg: str) -> None:
        """A hivemind-format INFO line on stderr ("Mon DD HH:MM:SS.mmm [INFO] …", §2.6); silent in E6."""
        if self.gen != "E6":  # E6 silences the hivemind logger (§9.6)
            t = datetime.datetime.now()
            self.out(t.strftime("%b %d %H:%M:%S.") + f"{t.microsecond // 1000:03d} [INFO] {msg}", err=True)

    # ---- pacing and faults
    def step(self, factor: float = 1.0) -> None:
        """Fire due faults, then wait one pace (seconds) times ``factor``."""
        elapsed = time.monotonic() - self.t0
        for fault in self.faults:
            if not fault.fired and elapsed >= fault.at:
                fault.fired = True
                self.fire(fault)
        time.sleep(self.pace * factor)

    def fire(self, fault: Fault) -> None:
        """Carry out ``fault`` now (may end the process)."""
        kind = fault.kind
        if kind == "crash":
            self.crash(fault.arg or "unknown")
        elif kind == "sigkill":
            self.die_sigkill()
        elif kind == "hang":
            self.hang()
        elif kind == "exit0":
            self.finish(0)
        elif kind == "flood":
            for i in range(int(fault.arg or 0)):
                sys.stdout.write(f"Map: 100%|##########| {i % 97 + 1}/{i % 97 + 1} [00:00<00:00, {200 + i % 50}.00 examples/s]\n")
            sys.stdout.flush()
        else:
            self.mode.add(kind)  # stall, swallowed, reject change the round loop

    def crash(self, category: str) -> None:
        """Print ``category``'s text from failure_texts.json and end as its ``ending`` says."""
        texts = self._failure_texts()
        entry = texts.get(category) or {
            "lines": ["Traceback (most recent call last):", '  File "<gswarm-emulator>", line 1, in <module>',
                      f"RuntimeError: emulated failure {category!r} (no text in failure_texts.json)"],
            "ending": "exit1"}
        for line in entry.get("lines", []):
            line = _PY_DIR.sub(_PY_NOW, line)  # the texts' python3.X paths name the Python the node really runs
            self.out(line, err=True)
            if self.logfile:  # so log-file followers see the failure too
                self.logfile.write(line + "\n")
        if self.logfile:
            self.logfile.flush()
        ending = entry.get("ending", "exit1")
        if ending == "sigkill":
            self.die_sigkill()
        elif ending == "hang":
            self.hang()
        elif ending in ("exit0", "exit1"):
            self.finish(0 if ending == "exit0" else 1)

    def _failure_texts(self) -> dict:
        for path in (os.path.join(self.root, EMU_DIR, "failure_texts.json"),
                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "failure_texts.json")):
            try:
                with open(path, encoding="utf-8") as fh:
                    return json.load(fh)
            except (OSError, ValueError):
                continue
        return {}

    def die_sigkill(self) -> None:
        """SIGKILL this process (returncode -9)."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # like the OOM killer: no traceback, child left behind

    def hang(self) -> None:
        """Stay alive without output (SIGTERM still ends the node)."""
        while True:
            time.sleep(3600)

    def stop_child(self) -> None:
        """Terminate the p2pd stand-in (SIGTERM, 5 s grace, then SIGKILL) and reap it."""
        if self.child and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(5)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()

    def finish(self, code: int) -> None:
        """End the child, close logs, exit with ``code`` at once."""
        self.stop_child()
        if self.logfile:
            self.logfile.close()
        sys.stdout.flush()
        os._exit(code)

    def on_sigterm(self, signum: int, frame: object) -> None:
        """End the p2pd child, then die of the same signal like an unhandled Python node."""
        self.stop_child()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    # ---- the node's life
    def identity(self) -> None:
        """Load or create the identity file (0600) and derive peer id and animal name (§2.5)."""
        path = self.env.get("IDENTITY_PATH", "") if self.genrl else (_arg(self.argv, "--identity_path", "") or "")
        if not path:
            material = uuid.uuid4().bytes  # E0 default: fresh random identity per run (§2.5)
        elif os.path.exists(path):
            self.hivemind(f"Checking that identity from `{path}` is not used by other peers")
            with open(path, "rb") as fh:
                material = fh.read()
        else:
            self.hivemind(f"Generating new identity to be saved in `{path}`")
            material = os.urandom(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"-----BEGIN GSWARM EMULATED KEY-----\n" + material.hex().encode() + b"\n-----END GSWARM EMULATED KEY-----\n")
            with open(path, "rb") as fh:
                material = fh.read()
        self.peer = peer_id_of(material)
        self.animal = animal_of(self.peer)

    def spawn_p2pd(self) -> None:
        """Start the p2pd stand-in: a sleeping Python child in the same process group."""
        self.child = subprocess.Popen([sys.executable, "-c", _P2PD, "gswarm-emu-p2pd"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def fail_startup(self, lines: list[str]) -> None:
        """Print a start-up traceback (Hydra-wrapped for E3-E6) and exit 1."""
        if self.genrl:
            lines = ["Error executing job with overrides: []", "Traceback (most recent call last):",
                     '  File "swarm_launcher.py", line 12, in main'] + lines
        for line in lines:
            self.out(line, err=True)
        self.finish(1)

    def check_config(self) -> None:
        """E3-E6: Hydra config dir/name and ORG_ID like the real launcher; E1/E2 testnet args."""
        if self.genrl:
            cfg = os.path.join(_arg(self.argv, "--config-path", "") or "", _arg(self.argv, "--config-name", "") or "")
            if not os.path.isfile(cfg):
                self.fail_startup([f"hydra.errors.MissingConfigException: Cannot find primary config '{cfg}'"])
            if not self.env.get("ORG_ID"):
                self.fail_startup(["omegaconf.errors.InterpolationResolutionError: ValidationError raised while "
                                   "resolving interpolation: Environment variable 'ORG_ID' not found"])

    def register(self) -> None:
        """POST register-peer to the modal stand-in when GSWARM_EMU_MODAL_URL is set (§2.4, §10)."""
        base = self.env.get("GSWARM_EMU_MODAL_URL")
        testnet = self.genrl or _arg(self.argv, "--modal_org_id")
        if not base or not testnet:
            return
        org = self.env.get("ORG_ID", "") if self.genrl else (_arg(self.argv, "--modal_org_id") or "")
        body = json.dumps({"orgId": org, "peerId": self.peer}).encode()  # orgId in every body (§2.4)
        req = urllib.request.Request(base.rstrip("/") + "/api/register-peer", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            if exc.code == 400 and "PeerIdAlreadyRegistered" in body and self.gen != "E1":
                self.log(f"Peer ID [{self.peer}] is already registered! Continuing.",
                         logger=None if self.genrl else "hivemind_exp.chain_utils")
                return
            self.fail_startup(["Traceback (most recent call last):", '  File "coordinator.py", line 70, in register_peer',
                               f"requests.exceptions.HTTPError: {exc.code} Client Error: for url: {base}/api/register-peer"])
        except OSError as exc:
            self.fail_startup(["Traceback (most recent call last):",
                               f"requests.exceptions.ConnectionError: HTTPConnectionPool(host='localhost', port=3000): "
                               f"Max retries exceeded with url: /api/register-peer ({exc})"])


def _startup(n: Node) -> None:
    """The start-up lines of each generation (§3.6, §4.6, §5.6, §6.6, §7.6, §9.6)."""
    if not n.genrl:
        if n.gen == "E0" or not _arg(n.argv, "--modal_org_id"):
            peers = _arg(n.argv, "--initial_peer") or _arg(n.argv, "--initial_peers") or ""
            n.out(f"Joining swarm with initial_peer = {peers}" if n.gen == "E0" else f"🐝 Joining swarm with initial_peers = ['{peers}']")
        else:
            n.log("✅ Connected to Gensyn Testnet", logger="hivemind_exp.chain_utils")
            runner = "hivemind_exp.runner.gensyn.testnet_grpo_runner"
            n.log(f"Retrieved initial peers from chain: ['{_BOOT}']", logger=runner)
            n.log(f"🐝 Joining swarm with initial_peers = ['{_BOOT}']", logger=runner)
            n.log(f"Registering self with peer ID: {n.peer}", logger=runner)
            n.register()
        n.log(f"🐱 Hello 🐈 [{n.animal}] 🦮 [{n.peer}]!", logger="hivemind_exp.runner.grpo_runner")
        n.log(f"Starting training {_now()[:19]} for 1 epochs", logger="hivemind_exp.runner.grpo_runner")
        return
    model = n.env.get("MODEL_NAME") or ("Qwen/Qwen2.5-Coder-0.5B-Instruct" if n.gen == "E6" else "Gensyn/Qwen2.5-0.5B-Instruct")
    n.log(f"bootnodes: ['{_BOOT}']")
    n.register()
    if n.gen == "E6":
        n.log("============!!!Joining CodeZero Swarm!!!============")
        n.log(f"🐝 Hello [{n.animal}] [{n.peer}]!")
    else:
        n.log(f"🐱 Hello 🐈 [{n.animal}] 🦮 [{n.peer}]!")
    if n.gen in ("E4", "E5"):
        n.log("Reasoning Gym Data Manager initialized with config: rgym_exp/src/datasets.yaml")
        n.log("Loaded composite dataset with 1000 samples")
    n.log(f"Using Model: {model}")


def _hivemind_round(n: Node, r: int) -> None:
    """E0-E2: a round of three stages (§3.6, §4.6)."""
    tag = f"[F-{uuid.uuid4()}] " if n.gen == "E0" else ""
    n.log(f"{tag}{'' if tag else '🐝 '}Joining round: {r} starting at stage: 0")
    for stage in range(3):
        n.step()
        if "swallowed" in n.mode:
            n.log("Encountered error during training!", level="ERROR")
            continue
        n.log(f"{tag}{'' if tag else '📈 '}Training round: {r} stage: {stage}")
        n.out("{'loss': 0.0%d, 'reward': %.3f, 'reward_std': 0.1, 'kl': 0.0004, 'epoch': %d.0}" % (stage + 1, random.random(), stage))
        if not tag:
            n.log(f"📉 Finished training round: {r} stage: {stage}")
    if n.gen != "E0" and _arg(n.argv, "--modal_org_id"):
        n.log(f"🏆 Submitting winners for round {r}: ['{n.peer}']")
    n.step()
    n.log(f"{tag}Already finished round: {r}." + (" Skipping." if tag else " Next check in 5.0s."))


def _reject(n: Node) -> None:
    """v0.5.8 chain-submission failure shape (§7.7; shared/failures 029)."""
    n.log("Failed to submit to chain.\nThis is most likely transient and will recover.\nThere is no need to kill the program.", level="ERROR")
    for line in ("Traceback (most recent call last):", '  File "rgym_exp/src/manager.py", line 141, in _try_submit_to_chain',
                 "    self.coordinator.submit_reward(",
                 "requests.exceptions.HTTPError: 400 Client Error: Bad Request for url: http://localhost:3000/api/submit-reward"):
        n.out(line)


def _genrl_round(n: Node, r: int) -> None:
    """E3-E6: one stage per round, then the wait for the swarm (§6.6, §7.6, §8.6)."""
    n.log(f"🐝 Joining round: {r}")
    n.log(f"Starting round: {r}/1000000.")
    n.step()
    if "swallowed" in n.mode:
        n.log("Error occurred during training, continuing...", level="ERROR")
    if n.gen == "E5" and n.env.get("PRG_GAME", "true") == "true":
        game = r // 10
        n.log(f"New clue received for PRG: {{'game_id': {game}, 'clue_id': {r % 10}, 'rounds_remaining': {9 - r % 10}}}")
        bet = f"Game {game} Round {r % 10}: Peer {n.peer} placed bet of {random.uniform(1, 9):.2f} tokens on choice - B"
        n.log(bet)
        lines = [bet]
        if r % 10 == 0 and game > 0:
            lines.append(f"successfully claimed reward for previous game {game - 1}")
            n.log(lines[-1])
        with open(os.path.join(n.env.get("ROOT") or os.getcwd(), "logs", "prg_record.txt"), "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))  # one line per bet/claim (§8.6)
    if "reject" in n.mode:
        _reject(n)
    n.step()
    n.log(f"Already finished round: {r}. Next check in 5.0s.")


def run(n: Node) -> int:
    """The node's life: identity, p2pd child, start-up lines, then rounds until a fault or the round budget."""
    signal.signal(signal.SIGTERM, n.on_sigterm)
    n.record_start()
    n.check_config()
    n._open_log()
    n.identity()
    if n.gen in ("E3", "E4"):
        logs = os.path.join(n.env.get("ROOT") or os.getcwd(), "logs")
        n.animal_log = open(os.path.join(logs, f"training_{n.animal.replace(' ', '_')}.log"), "a", encoding="utf-8")
    n.spawn_p2pd()
    _startup(n)
    n.step()
    try:
        while n.rounds_left is None or n.rounds_left > 0:
            if "stall" in n.mode:
                n.log(f"Already finished round: {n.round - 1}. Next check in 5.0s.")
                n.step()
                continue
            (_genrl_round if n.genrl else _hivemind_round)(n, n.round)
            n.round += 1
            n._save_state()
            if n.rounds_left is not None:
                n.rounds_left -= 1
            n.step()
    except KeyboardInterrupt:
        n.finish(130)
    n.log("Training timed out!" if n.gen != "E0" else "*** Training complete! ***")
    n.finish(0)
    return 0


def main(generation: str, argv: list[str] | None = None, root: str | None = None) -> int:
    """Run the emulated node of ``generation`` (E0-E6) with the real entry point's ``argv`` (default sys.argv[1:]).

    ``root`` is the checkout (state, failure texts); default the current folder. Ends the process.
    """
    try:
        node = Node(generation, root or os.getcwd(), list(sys.argv[1:] if argv is None else argv), dict(os.environ))
    except ValueError as exc:
        sys.stderr.write(f"gswarm emulator: {exc}\n")
        return 2
    return run(node)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "--emu-generation":
        sys.stderr.write("usage: node.py --emu-generation E0..E6 [entry point args]\n")
        sys.exit(2)
    sys.exit(main(sys.argv[2], sys.argv[3:]))
