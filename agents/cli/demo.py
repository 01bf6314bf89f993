"""`slamon demo`: the monitor at work on one machine, in one command.

Starts a local Kafka broker when the configured one (SLAMON_BROKER or the config's broker)
does not answer and is on this machine, a worker with the demo settings
(config/demo-policies.yaml: targets of seconds; config/demo-portal.yaml: demo tokens), and
a stream of realistic ticket events stamped at the wall clock; prints breaches and warnings
as they fire with a live summary line, and where to open /metrics and the portal. Ctrl-C
(or SIGTERM, or `--duration` running out) stops everything it started. The work is done
by `agents.devkit.demo`, imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys

from agents.settings import add_config_argument, settings_from_args

HELP = "run a demo: a local broker if none answers, a worker and live ticket traffic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after SECONDS of traffic (default: run until Ctrl-C)")
    parser.add_argument("--rate", type=float, default=30.0, metavar="N",
                        help="tickets opened per minute (default: 30)")
    parser.add_argument("--web-port", type=int, default=6066, metavar="PORT",
                        help="the worker's web port for /metrics and the portal (default: "
                        "6066, or a free one if taken)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the ticket traffic")


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.duration is not None and args.duration <= 0 or args.rate <= 0:
        print("slamon demo: --duration and --rate must be positive", file=sys.stderr)
        return 2
    from agents.devkit.demo import Demo, DemoOptions
    from agents.kafkaclients import check_access, client_options

    client = {}
    if settings.security_protocol != "PLAINTEXT":
        check_access(settings)  # a local broker is started only for plaintext settings
        client = client_options(settings)
        del client["bootstrap_servers"]
    options = DemoOptions(broker=settings.bootstrap_servers[0], duration=args.duration,
                          rate=args.rate, web_port=args.web_port, seed=args.seed,
                          client=client, config=args.config and args.config.resolve())
    return Demo(options).run()
