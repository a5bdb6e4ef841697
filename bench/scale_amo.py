#!/usr/bin/env python3
"""amoCRM pushes from N processes stay within the account's 7 requests a second (issue 18).

    python bench/scale_amo.py [--processes 3] [--leads 30] [--without-redis]

Starts ``--processes`` replicas (tests/replica_worker.py `amo-push`: the amo client as the service
builds it, adapters.crm.factory.build_crm, with REDIS_URL so the processes share one pace), each pushing
``--leads`` leads at once as the CRM outbox does (contact search, lead creation, note: 3 requests a
lead), all starting together, against a fake amoCRM on 127.0.0.1 that records when each request
arrived (tests/fake_crm.py, answering everything: the figure is what was sent). Prints the most
requests in any one second at the fake and as the clients stamped them when sending. Target: <= 7.
``--without-redis`` runs the same once more without REDIS_URL (each process paces only itself).

Needs Redis on 127.0.0.1 (SCALE_REDIS_URL, below). tests/test_replicas.py holds the small multi-process test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fake_crm import AMO_LIMIT_PER_SECOND, FakeAmo  # noqa: E402
from tests.replica_worker import AMO_TOKEN  # noqa: E402
from tests.replicas import flush_limits, most_in_any_window, replica_env, replicas  # noqa: E402
from tests.thread_server import ThreadServer  # noqa: E402

# A Redis database of its own (SCALE_REDIS_URL to change it): the service's keys (token totals per user id,
# send budgets) must not meet those of tests or other benchmarks running beside it on the same Redis,
# and the run clears its limits first.
REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/13")
REQUESTS_PER_LEAD = 3


@dataclass
class Outcome:
    processes: int
    leads: int
    shared: bool
    seconds: float
    arrived: int
    created: int
    most_arrived: int  # in any 1 s at the fake
    most_sent: int  # in any 1 s by the clients' own stamps

    @property
    def met(self) -> bool:
        return self.most_arrived <= AMO_LIMIT_PER_SECOND

    def report(self) -> str:
        expected = self.processes * self.leads
        how = "one pace shared through Redis" if self.shared else "WITHOUT Redis (each process paces itself)"
        return "\n".join([
            f"{self.processes} processes × {self.leads} leads pushed at once to a fake amoCRM, {how}:",
            f"  {self.arrived} requests in {self.seconds:.1f} s ({self.arrived / self.seconds:.1f}/s); "
            f"leads created: {self.created}/{expected}",
            f"  most in any 1 s: {self.most_arrived} at amo, {self.most_sent} as sent by the clients   "
            f"[target <= {AMO_LIMIT_PER_SECOND}: {'met' if self.met else 'MISSED'}]",
        ])


def run(processes: int, leads: int, *, shared: bool) -> Outcome:
    if shared:
        flush_limits(REDIS_URL)
    fake = FakeAmo(token=AMO_TOKEN)
    fake.limit_per_second = 1_000_000  # answer everything: the figure is what was sent
    with ThreadServer(fake.app()) as server:
        fake.url = server.url
        args = [["amo-push", fake.url, str(leads), str(n * leads)] for n in range(processes)]
        with replicas(args, replica_env(REDIS_URL if shared else None)) as started:
            pass
        sent = [float(t) for p in started for t in (p.stdout.read() if p.stdout else "").split()]
    arrivals = [entry.at for entry in fake.log]
    return Outcome(
        processes=processes, leads=leads, shared=shared, seconds=max(arrivals) - min(arrivals), arrived=len(arrivals),
        created=len(fake.leads), most_arrived=most_in_any_window(arrivals), most_sent=most_in_any_window(sent),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--leads", type=int, default=30, help="per process")
    parser.add_argument("--without-redis", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    began = time.monotonic()
    outcome = run(args.processes, args.leads, shared=True)
    print(f"load average before {load:.2f}, after {os.getloadavg()[0]:.2f} ({time.monotonic() - began:.0f} s)")
    print(outcome.report())
    ok = outcome.met and outcome.created == args.processes * args.leads
    if args.without_redis:
        print(run(args.processes, args.leads, shared=False).report())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
