"""`slamon kafka start|stop|status|fetch`: a local single-node Kafka broker for development.

The broker runs from the Maven jars of deploy/kafka/ (fetched on first start) with the
machine's Java 17+, on 127.0.0.1; its state and log live under `.kafka/<port>/`.
`fetch` only fetches the jars (what `scripts/setup` runs). `start --secure` starts a broker
that accepts only SASL_SSL clients (generated certificates, SCRAM and PLAIN user `slamon`)
and prints the settings that reach it.

Exit status: 0 on success; 1 on an error (message on stderr) -- including `start` while
the broker already runs, which is refused; `status` exits 3 when the broker is not running.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from agents.devkit import localkafka
from agents.settings import SettingsError, add_config_argument, settings_from_args

HELP = "start, stop or show a local single-node Kafka broker (KRaft) for development"

EXIT_NOT_RUNNING = 3
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["start", "stop", "status", "fetch"])
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="client port (default: the port of SLAMON_BROKER / the config's broker when it "
        "is on this machine, else 9092)",
    )
    parser.add_argument(
        "--controller-port", type=int, default=0, help="KRaft controller port (default: port+1)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=localkafka.REPO_ROOT / ".kafka",
        help="where brokers keep their state, one folder per port (default: .kafka/)",
    )
    parser.add_argument("--heap", default="512m", help="JVM maximum heap (default: 512m)")
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for start or stop"
    )
    parser.add_argument("--all", action="store_true", help="stop/status: every broker under --dir")
    parser.add_argument(
        "--secure", action="store_true",
        help="start: clients must use SASL_SSL (generated CA and certificates, SCRAM users); "
        "prints the SLAMON_* settings to use")
    add_config_argument(parser)


def _default_port(broker: str) -> int:
    first = urlsplit(broker.split(";")[0])
    return first.port if first.hostname in _LOOPBACK and first.port else 9092


def _config(args: argparse.Namespace) -> localkafka.BrokerConfig:
    settings = settings_from_args(args)
    return localkafka.BrokerConfig(
        port=args.port or _default_port(settings.broker),
        controller_port=args.controller_port,
        home=args.dir,
        heap=args.heap,
        partitions=settings.partitions,
        start_timeout=args.timeout,
        secure=getattr(args, "secure", False),
    )


def _start(cfg: localkafka.BrokerConfig) -> int:
    began = time.monotonic()
    found = localkafka.start(cfg, say=lambda line: print(line, flush=True))
    print(
        f"Kafka {localkafka.kafka_version(cfg.deploy_dir)} started in "
        f"{time.monotonic() - began:.1f} s: {found.describe()}\n"
        f"log: {cfg.log_dir / 'server.log'}"
    )
    if not cfg.secure:
        print(f"use it with SLAMON_BROKER=kafka://{cfg.bootstrap}")
        return 0
    from agents.devkit.localkafka.secure import client_env

    print("clients must use SASL_SSL; use it with these settings (the password is in the file):")
    print("\n".join(f"  export {name}={value}" for name, value in client_env(cfg).items()))
    return 0


def _stop(cfg: localkafka.BrokerConfig, timeout: float) -> int:
    pid = localkafka.stop(cfg, timeout=timeout)
    if pid is None:
        print(f"no local Kafka broker was running on {cfg.bootstrap}")
    else:
        print(f"stopped the local Kafka broker on {cfg.bootstrap} (pid {pid})")
    return 0


def _fetch(cfg: localkafka.BrokerConfig) -> int:
    localkafka.ensure_jars(cfg, say=lambda line: print(line, flush=True))
    version = localkafka.kafka_version(cfg.deploy_dir)
    print(f"Kafka {version} jars are in {cfg.lib_dir}")
    return 0


def _status(cfg: localkafka.BrokerConfig) -> int:
    found = localkafka.status(cfg)
    print(found.describe())
    return 0 if found.running else EXIT_NOT_RUNNING


def _for_all(args: argparse.Namespace) -> int:
    brokers = localkafka.instances(args.dir)
    if args.action in ("start", "fetch"):
        raise localkafka.LocalKafkaError("--all applies to stop and status only")
    if not brokers:
        print(f"no local Kafka broker under {args.dir}")
        return 0 if args.action == "stop" else EXIT_NOT_RUNNING
    results = [
        _stop(b.config, args.timeout) if args.action == "stop" else _status(b.config)
        for b in brokers
    ]
    return 0 if args.action == "stop" or 0 in results else EXIT_NOT_RUNNING


def run(args: argparse.Namespace) -> int:
    try:
        if args.all:
            return _for_all(args)
        cfg = _config(args)
        if args.action == "start":
            return _start(cfg)
        if args.action == "stop":
            return _stop(cfg, args.timeout)
        if args.action == "fetch":
            return _fetch(cfg)
        return _status(cfg)
    except (localkafka.LocalKafkaError, SettingsError) as exc:
        print(f"slamon kafka {args.action}: {exc}", file=sys.stderr)
        return 1
